//! Opaque tokens (continue tokens, cursors): JSON, hex-encoded, with a checksum so a modified
//! token is detected instead of silently changing what a client gets.

use serde_json::Value;

/// FNV-1a, 32 bits: a stable checksum for tokens and short names (not for security).
pub fn fnv(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// Encodes a value as an opaque token.
pub fn encode(value: &Value) -> String {
    let raw = value.to_string();
    let body: String = raw.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{body}{:08x}", fnv(raw.as_bytes()))
}

/// Decodes a token made by [`encode`]; `None` when it is malformed or was modified.
pub fn decode(token: &str) -> Option<Value> {
    if token.len() < 10 || !token.len().is_multiple_of(2) || !token.is_ascii() {
        return None;
    }
    let (body, sum) = token.split_at(token.len() - 8);
    let raw: Vec<u8> =
        (0..body.len()).step_by(2).map(|i| u8::from_str_radix(&body[i..i + 2], 16).ok()).collect::<Option<_>>()?;
    if format!("{:08x}", fnv(&raw)) != sum {
        return None;
    }
    serde_json::from_slice(&raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let v = serde_json::json!({"a": [1, "x"]});
        let t = encode(&v);
        assert_eq!(decode(&t), Some(v));
        let mut bytes = t.clone().into_bytes();
        bytes[2] = if bytes[2] == b'0' { b'1' } else { b'0' };
        assert_eq!(decode(std::str::from_utf8(&bytes).unwrap()), None);
        for bad in ["", "zz", "é", &t[..t.len() - 1], "0123456789zz"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
