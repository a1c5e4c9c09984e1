//! kubesim's continue tokens (the list version and the last key, checksummed). The response
//! encodings both servers share are in [`api_types::api::encode`].

use api_types::status::StatusError;
use serde_json::json;

use crate::store::ObjectKey;

/// A continue token: opaque to clients (the list version and the last key, checksummed).
pub fn continue_token(rv: u64, key: &ObjectKey) -> String {
    api_types::token::encode(&json!({"rv": rv, "ns": key.0, "name": key.1}))
}

/// Decodes [`continue_token`]; anything else is a 400, as with kube-apiserver.
pub fn parse_continue(token: &str) -> Result<(u64, ObjectKey), StatusError> {
    let bad = || StatusError::bad_request(format!("continue key is not valid: {token:?}"));
    let v = api_types::token::decode(token).ok_or_else(bad)?;
    match (v["rv"].as_u64(), v["ns"].as_str(), v["name"].as_str()) {
        (Some(rv), Some(ns), Some(name)) => Ok((rv, (ns.to_owned(), name.to_owned()))),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_tampering() {
        let t = continue_token(5, &("ns".into(), "a".into()));
        assert_eq!(parse_continue(&t).unwrap(), (5, ("ns".into(), "a".into())));
        assert_eq!(parse_continue("zz").unwrap_err().code, 400);
        assert_eq!(parse_continue(&t[..t.len() - 2]).unwrap_err().code, 400);
    }
}
