//! Who is asking (authentication) and may they (authorization), as an aggregated API server does
//! it: the aggregator's front-proxy client certificate plus `X-Remote-*` headers, client
//! certificates of a client CA, static bearer tokens (kube-apiserver's token CSV); decisions by
//! SubjectAccessReview to the host, cached briefly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use rustls_pki_types::CertificateDer;

/// An authenticated user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    /// What the front proxy tells beyond name and groups (`X-Remote-Extra-<key>`), passed on in
    /// SubjectAccessReviews (webhook authorizers and scoped tokens decide on it).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Errors reading authentication settings.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token file line {line}: {reason}")]
    TokenFile { line: usize, reason: String },
    #[error("{what}: {reason}")]
    Ca { what: String, reason: String },
}

/// The front-proxy settings (kube-apiserver's `--requestheader-*`).
#[derive(Debug, Clone, Default)]
pub struct RequestHeader {
    pub cas: Vec<CertificateDer<'static>>,
    /// Common names the front proxy's certificate may have (empty: any the CA signed).
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
    /// Prefixes of the headers that carry extra user information (`X-Remote-Extra-`).
    pub extra_header_prefixes: Vec<String>,
}

impl RequestHeader {
    /// The settings kube-apiserver publishes in `kube-system/extension-apiserver-authentication`
    /// (its `requestheader-*` keys; list values are JSON arrays).
    pub fn from_config_map(data: &std::collections::BTreeMap<String, String>) -> Result<Option<Self>, AuthError> {
        let Some(ca) = data.get("requestheader-client-ca-file") else { return Ok(None) };
        let list = |key: &str, default: &str| -> Result<Vec<String>, AuthError> {
            match data.get(key) {
                None => Ok(vec![default.to_owned()].into_iter().filter(|s| !s.is_empty()).collect()),
                Some(v) => serde_json::from_str(v).map_err(|e| AuthError::Ca {
                    what: format!("extension-apiserver-authentication {key}"),
                    reason: e.to_string(),
                }),
            }
        };
        Ok(Some(Self {
            cas: kube_x509::certificates(ca.as_bytes()).map_err(|reason| AuthError::Ca {
                what: "extension-apiserver-authentication requestheader-client-ca-file".into(),
                reason,
            })?,
            allowed_names: list("requestheader-allowed-names", "")?,
            username_headers: list("requestheader-username-headers", "X-Remote-User")?,
            group_headers: list("requestheader-group-headers", "X-Remote-Group")?,
            extra_header_prefixes: list("requestheader-extra-headers-prefix", "X-Remote-Extra-")?,
        }))
    }
}

/// Parses kube-apiserver's static token file: `token,user,uid[,"group1,group2"]` per line.
pub fn parse_token_file(text: &str) -> Result<HashMap<String, User>, AuthError> {
    let mut tokens = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: &str| AuthError::TokenFile { line: i + 1, reason: reason.to_owned() };
        let fields = csv_fields(line).map_err(|r| bad(&r))?;
        if fields.len() < 3 {
            return Err(bad("needs at least token,user,uid"));
        }
        if fields[0].is_empty() || fields[1].is_empty() {
            return Err(bad("the token and the user may not be empty"));
        }
        let groups = fields
            .get(3)
            .map(|g| g.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        tokens.insert(fields[0].clone(), User { name: fields[1].clone(), groups, ..User::default() });
    }
    Ok(tokens)
}

/// One CSV line with double-quoted fields.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur).trim().to_owned()),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(cur.trim().to_owned());
    Ok(fields)
}

/// The extra user information in a front proxy's headers, as kube-apiserver reads it: the key is
/// the header name after the prefix, percent-decoded and lower-cased; repeated headers add values.
pub fn extra_of(headers: &HeaderMap, prefixes: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        // Header names are lower-case here already.
        let Some(key) = prefixes.iter().find_map(|p| name.as_str().strip_prefix(p.to_ascii_lowercase().as_str()))
        else {
            continue;
        };
        let (Some(key), Ok(value)) = (percent_decode(key), value.to_str()) else { continue };
        if !key.is_empty() {
            extra.entry(key.to_lowercase()).or_default().push(value.to_owned());
        }
    }
    extra
}

/// `%XX` escapes decoded (None when malformed, as Go's `url.PathUnescape` refuses them).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// How requests authenticate.
#[derive(Debug, Default)]
pub struct Authenticator {
    pub tokens: HashMap<String, User>,
    pub client_cas: Vec<CertificateDer<'static>>,
    pub request_header: Option<RequestHeader>,
}

impl Authenticator {
    /// The CAs the TLS layer must accept client certificates from.
    pub fn trusted_cas(&self) -> Vec<CertificateDer<'static>> {
        let mut cas = self.client_cas.clone();
        cas.extend(self.request_header.iter().flat_map(|r| r.cas.iter().cloned()));
        cas
    }

    /// The user of a request: front proxy, then client certificate, then bearer token, as
    /// kube-apiserver's union authenticator; None is 401.
    pub fn authenticate(&self, peer: Option<&CertificateDer<'_>>, headers: &HeaderMap) -> Option<User> {
        if let (Some(cert), Some(rh)) = (peer, &self.request_header)
            && rh.cas.iter().any(|ca| kube_x509::issued_by(cert, ca))
        {
            let proxy = kube_x509::identity(cert)?;
            if !rh.allowed_names.is_empty() && !rh.allowed_names.contains(&proxy.user) {
                return None;
            }
            let first = |names: &[String]| {
                names.iter().find_map(|h| headers.get(h.as_str()).and_then(|v| v.to_str().ok()).map(str::to_owned))
            };
            let name = first(&rh.username_headers).filter(|u| !u.is_empty())?;
            let groups = rh
                .group_headers
                .iter()
                .flat_map(|h| headers.get_all(h.as_str()).iter())
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            return Some(User { name, groups, extra: extra_of(headers, &rh.extra_header_prefixes) });
        }
        if let Some(cert) = peer
            && self.client_cas.iter().any(|ca| kube_x509::issued_by(cert, ca))
        {
            let id = kube_x509::identity(cert)?;
            return Some(User { name: id.user, groups: id.groups, ..User::default() });
        }
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))?;
        self.tokens.get(token.trim()).cloned()
    }
}

/// What a request does, in the terms of the host's RBAC: a verb on `resources` or
/// `collectionresources` of `clusterpedia.io`, named by the cluster (or collection) it reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub verb: String,
    pub resource: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// How requests are authorized.
pub enum Authorizer {
    /// Every authenticated user may read everything (standalone, without a host).
    Authenticated,
    /// SubjectAccessReviews to the host, cached for `ttl`.
    Delegated { client: kube::Client, ttl: Duration, cache: Mutex<HashMap<(User, Attributes), (Instant, Decision)>> },
}

/// An authorization decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

impl Authorizer {
    pub fn delegated(client: kube::Client) -> Self {
        Authorizer::Delegated { client, ttl: Duration::from_secs(10), cache: Mutex::new(HashMap::new()) }
    }

    pub async fn authorize(&self, user: &User, attrs: &Attributes) -> Result<Decision, kube::Error> {
        let Authorizer::Delegated { client, ttl, cache } = self else { return Ok(Decision::Allow) };
        let key = (user.clone(), attrs.clone());
        if let Some((at, d)) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && at.elapsed() < *ttl
        {
            return Ok(d.clone());
        }
        let api: kube::Api<SubjectAccessReview> = kube::Api::all(client.clone());
        let answer = api.create(&kube::api::PostParams::default(), &review(user, attrs)).await?;
        let status = answer.status.unwrap_or_default();
        let decision = if status.allowed { Decision::Allow } else { Decision::Deny(status.reason.unwrap_or_default()) };
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), decision.clone()));
        Ok(decision)
    }
}

/// The review that asks the host whether `user` may do `attrs`.
pub fn review(user: &User, attrs: &Attributes) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            groups: Some(user.groups.clone()),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(api_types::search::GROUP.to_owned()),
                version: Some(api_types::search::VERSION.to_owned()),
                resource: Some(attrs.resource.clone()),
                verb: Some(attrs.verb.clone()),
                name: attrs.name.clone(),
                namespace: attrs.namespace.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The Forbidden message kube-apiserver gives.
pub fn forbidden_message(user: &User, attrs: &Attributes, reason: &str) -> String {
    let target = match &attrs.name {
        Some(n) => format!("resource \"{}\" in API group \"{}\" ({n})", attrs.resource, api_types::search::GROUP),
        None => format!("resource \"{}\" in API group \"{}\"", attrs.resource, api_types::search::GROUP),
    };
    let scope = match &attrs.namespace {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_owned(),
    };
    let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
    format!("User \"{}\" cannot {} {target}{scope}{why}", user.name, attrs.verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_like_kube_apiserver() {
        let t = parse_token_file("# comment\nt1,alice,u1,\"dev,ops\"\n\nt2,bob,u2\n").unwrap();
        assert_eq!(t["t1"], User { name: "alice".into(), groups: vec!["dev".into(), "ops".into()], ..User::default() });
        assert!(t["t2"].groups.is_empty());
        for (bad, needle) in [("t1,alice", "at least"), (",alice,u", "empty"), ("t,\"a,u", "not closed")] {
            let e = parse_token_file(bad).unwrap_err().to_string();
            assert!(e.contains("line 1") && e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn bearer_tokens_authenticate() {
        let auth = Authenticator { tokens: parse_token_file("s3cret,alice,1,dev").unwrap(), ..Default::default() };
        let mut h = HeaderMap::new();
        assert!(auth.authenticate(None, &h).is_none(), "no credentials: 401");
        h.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert_eq!(auth.authenticate(None, &h).unwrap().name, "alice");
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert!(auth.authenticate(None, &h).is_none());
        // Without the front proxy's certificate, X-Remote-User means nothing.
        let mut h = HeaderMap::new();
        h.insert("x-remote-user", "admin".parse().unwrap());
        assert!(auth.authenticate(None, &h).is_none());
    }

    #[test]
    fn extra_headers_become_review_extras() {
        let mut h = HeaderMap::new();
        h.append("x-remote-extra-scopes", "view".parse().unwrap());
        h.append("x-remote-extra-scopes", "list".parse().unwrap());
        h.append("x-remote-extra-example.org%2Fteam", "Blue".parse().unwrap());
        h.append("x-remote-extra-bad%zz", "x".parse().unwrap());
        h.append("x-remote-user", "alice".parse().unwrap());
        let extra = extra_of(&h, &["X-Remote-Extra-".to_owned()]);
        assert_eq!(extra.keys().collect::<Vec<_>>(), ["example.org/team", "scopes"], "malformed keys are dropped");
        assert_eq!(extra["scopes"], ["view", "list"]);
        assert_eq!(extra["example.org/team"], ["Blue"], "values keep their case");
        assert!(extra_of(&h, &[]).is_empty(), "no prefix, no extras");
        let user = User { name: "alice".into(), groups: vec!["dev".into()], extra };
        let a =
            Attributes { verb: "get".into(), resource: "resources".into(), name: Some("m1".into()), namespace: None };
        let spec = review(&user, &a).spec;
        assert_eq!(spec.extra.unwrap()["scopes"], ["view", "list"]);
        assert_eq!(spec.resource_attributes.unwrap().name.as_deref(), Some("m1"));
        let plain = review(&User { name: "bob".into(), ..User::default() }, &a).spec;
        assert!(plain.extra.is_none(), "no extra field without extras");
    }

    #[test]
    fn request_header_settings_from_the_config_map() {
        let mut data = std::collections::BTreeMap::new();
        assert!(RequestHeader::from_config_map(&data).unwrap().is_none());
        data.insert("requestheader-client-ca-file".into(), "not pem".into());
        assert!(RequestHeader::from_config_map(&data).is_err());
    }

    #[test]
    fn forbidden_messages_name_user_verb_and_target() {
        let u = User { name: "eve".into(), ..User::default() };
        let a = Attributes { verb: "list".into(), resource: "resources".into(), name: None, namespace: None };
        assert_eq!(
            forbidden_message(&u, &a, ""),
            "User \"eve\" cannot list resource \"resources\" in API group \"clusterpedia.io\" at the cluster scope"
        );
    }
}
