//! kubeconfig files for simulated clusters.

use serde_json::json;

/// How a kubeconfig user authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    Token(String),
    ClientCert { cert_pem: String, key_pem: String },
}

fn b64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, as kubeconfig `*-data` fields and Secret data use.
pub fn base64(data: &[u8]) -> String {
    b64(data)
}

/// A kubeconfig with one cluster, user and context, all named `name`.
pub fn render(name: &str, server: &str, ca_pem: Option<&str>, credentials: &Credentials) -> String {
    let mut cluster = json!({"server": server});
    match ca_pem {
        Some(ca) => cluster["certificate-authority-data"] = json!(b64(ca.as_bytes())),
        None if server.starts_with("https") => cluster["insecure-skip-tls-verify"] = json!(true),
        None => {}
    }
    let user = match credentials {
        Credentials::None => json!({}),
        Credentials::Token(t) => json!({"token": t}),
        Credentials::ClientCert { cert_pem, key_pem } => json!({
            "client-certificate-data": b64(cert_pem.as_bytes()),
            "client-key-data": b64(key_pem.as_bytes()),
        }),
    };
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    });
    serde_yaml::to_string(&config).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn kubeconfig_has_one_context() {
        let k = render("m1", "https://127.0.0.1:1", Some("CA"), &Credentials::Token("t".into()));
        let v: serde_json::Value = serde_yaml::from_str(&k).unwrap();
        assert_eq!(v["current-context"], "m1");
        assert_eq!(v["users"][0]["user"]["token"], "t");
        assert_eq!(v["clusters"][0]["cluster"]["certificate-authority-data"], "Q0E=");
    }
}
