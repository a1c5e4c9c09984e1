//! API aggregation, as kube-aggregator does it: requests for an aggregated group-version are
//! proxied to its backend over HTTPS with a front-proxy client certificate and `X-Remote-User` and
//! `X-Remote-Group` headers (kubesim's users carry no extras, so no `X-Remote-Extra-*` is sent; the
//! prefix is published all the same), and the requestheader CA is published in
//! `kube-system/extension-apiserver-authentication` for the backend to verify them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use api_types::status::StatusError;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};
use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls;

use crate::tls::TlsError;

/// kubesim cannot resolve Services to endpoints: an APIService names its backend URL here.
pub const URL_ANNOTATION: &str = "kubesim.pedia.io/url";

/// The status kube-aggregator would give an APIService.
pub fn apiservice_status(apiservice: &serde_json::Value) -> serde_json::Value {
    let now = crate::meta::now();
    let local = apiservice.pointer("/spec/service").is_none_or(serde_json::Value::is_null);
    let url = apiservice.pointer(&format!("/metadata/annotations/{}", URL_ANNOTATION.replace('/', "~1")));
    let (status, reason, message) = match (local, url) {
        (true, _) => ("True", "Local", "Local APIServices are always available".to_owned()),
        (false, Some(u)) => {
            ("True", "Passed", format!("all checks passed (kubesim proxies to {})", u.as_str().unwrap_or_default()))
        }
        (false, None) => (
            "False",
            "ServiceNotFound",
            format!(
                "kubesim cannot resolve Services; annotate the APIService with {URL_ANNOTATION}: https://HOST:PORT"
            ),
        ),
    };
    serde_json::json!({"conditions": [{"type": "Available", "status": status, "reason": reason, "message": message, "lastTransitionTime": now}]})
}

/// The front-proxy identity kubesim presents to aggregated backends.
pub const FRONT_PROXY_USER: &str = "front-proxy-client";

/// Backends by group-version, and the client that reaches them.
pub struct Aggregator {
    targets: RwLock<HashMap<(String, String), String>>,
    front_proxy_ca_pem: String,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
}

impl Aggregator {
    /// A front-proxy CA and its client certificate, and no backends yet.
    pub fn new() -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "front-proxy-ca");
        ca_params.distinguished_name = dn;
        let ca = ca_params.self_signed(&ca_key)?;

        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, FRONT_PROXY_USER);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(kube_x509::NoVerification::new(provider)))
            .with_client_auth_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { targets: RwLock::new(HashMap::new()), front_proxy_ca_pem: ca.pem(), client })
    }

    /// The CA backends must trust for front-proxy client certificates.
    pub fn front_proxy_ca_pem(&self) -> &str {
        &self.front_proxy_ca_pem
    }

    /// Routes `group/version` to `url` (`https://127.0.0.1:PORT`), or stops routing it.
    pub fn set(&self, group: &str, version: &str, url: Option<&str>) {
        let mut t = self.targets.write().unwrap_or_else(|e| e.into_inner());
        let key = (group.to_owned(), version.to_owned());
        match url {
            Some(u) => t.insert(key, u.trim_end_matches('/').to_owned()),
            None => t.remove(&key),
        };
    }

    /// The backend of a group-version.
    pub fn target(&self, group: &str, version: &str) -> Option<String> {
        self.targets.read().unwrap_or_else(|e| e.into_inner()).get(&(group.to_owned(), version.to_owned())).cloned()
    }

    /// Every aggregated group-version.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self.targets.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        v.sort();
        v
    }

    /// Proxies one request to `target`, as `user` in `groups`; the response (watch streams
    /// included) is passed through as it arrives.
    pub async fn proxy(
        &self,
        target: &str,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
        identity: &crate::sim::PeerIdentity,
    ) -> Result<Response<Body>, StatusError> {
        let (user, groups) = (&identity.user, &identity.groups);
        let uri = format!("{target}{path_and_query}");
        let mut req = Request::builder().method(method).uri(&uri);
        for (name, value) in headers {
            // Credentials of the caller never reach the backend; identity travels in headers.
            if name == header::AUTHORIZATION || name == header::HOST || name.as_str().starts_with("x-remote-") {
                continue;
            }
            req = req.header(name, value);
        }
        let value =
            |v: &str| HeaderValue::from_str(v).map_err(|_| StatusError::bad_request(format!("invalid identity {v:?}")));
        req = req.header(HeaderName::from_static("x-remote-user"), value(user)?);
        for g in groups.iter() {
            req = req.header(HeaderName::from_static("x-remote-group"), value(g)?);
        }
        let req = req.body(Body::from(body)).map_err(|e| StatusError::internal(e.to_string()))?;
        let resp = self.client.request(req).await.map_err(|e| {
            StatusError::unavailable(format!("error trying to reach service: {e} (aggregated API at {target})"))
        })?;
        let (parts, body) = resp.into_parts();
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}
