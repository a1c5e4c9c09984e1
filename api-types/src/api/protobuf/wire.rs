//! The protobuf wire format: varints, keys and length-delimited fields.

use super::Error;

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// A cursor over one message's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or(Error::Truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Malformed("a varint longer than 10 bytes".into()))
    }

    /// `(field number, wire type)`.
    pub fn key(&mut self) -> Result<(u32, u8), Error> {
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| Error::Malformed(format!("field number {}", key >> 3)))?;
        Ok((tag, (key & 7) as u8))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = usize::try_from(self.varint()?).map_err(|_| Error::Truncated)?;
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len()).ok_or(Error::Truncated)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn fixed64(&mut self) -> Result<u64, Error> {
        let end = self.pos + 8;
        let b: [u8; 8] =
            self.buf.get(self.pos..end).ok_or(Error::Truncated)?.try_into().map_err(|_| Error::Truncated)?;
        self.pos = end;
        Ok(u64::from_le_bytes(b))
    }

    /// Skips a value of a field the table does not know (a newer Kubernetes' field).
    pub fn skip(&mut self, wire: u8) -> Result<(), Error> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => {
                self.pos = self.pos.checked_add(4).filter(|e| *e <= self.buf.len()).ok_or(Error::Truncated)?;
                Ok(())
            }
            other => Err(Error::Malformed(format!("wire type {other}"))),
        }
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

pub fn put_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(out, tag, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys_round_trip() {
        let mut out = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), (-1i64) as u64] {
            put_varint(&mut out, v);
        }
        put_bytes(&mut out, 3, b"abc");
        let mut r = Reader::new(&out);
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), (-1i64) as u64] {
            assert_eq!(r.varint().unwrap(), v);
        }
        assert_eq!(r.key().unwrap(), (3, LEN));
        assert_eq!(r.bytes().unwrap(), b"abc");
        assert!(r.done());
        assert!(matches!(Reader::new(&[0x80]).varint(), Err(Error::Truncated)));
        assert!(matches!(Reader::new(&[5, b'a']).bytes(), Err(Error::Truncated)));
    }
}
