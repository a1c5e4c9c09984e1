//! The serving certificate (from files, or a self-signed pair as kube-apiserver generates when
//! none is given) and the rustls configuration that asks for client certificates of the
//! trusted CAs without requiring one.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls;

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("configuring TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("configuring client certificate verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A certificate chain and its key.
pub struct ServingCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// PEM of the certificate (what a client trusts for a self-signed one).
    pub pem: String,
}

impl ServingCert {
    /// `--tls-cert-file` / `--tls-private-key-file`.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| TlsError::Read { path: p.display().to_string(), reason: e.to_string() })
        };
        let cert_pem = read(cert)?;
        let chain = kube_x509::certificates(&cert_pem)
            .map_err(|reason| TlsError::Read { path: cert.display().to_string(), reason })?;
        let key = PrivateKeyDer::from_pem_slice(&read(key)?)
            .map_err(|e| TlsError::Read { path: key.display().to_string(), reason: e.to_string() })?;
        Ok(Self { chain, key, pem: String::from_utf8_lossy(&cert_pem).into_owned() })
    }

    /// A self-signed certificate for loopback, `localhost` and `hosts`.
    pub fn self_signed(hosts: &[String]) -> Result<Self, TlsError> {
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        names.extend(hosts.iter().cloned());
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "pedia-apiserver");
        let cert = params.self_signed(&key)?;
        Ok(Self {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            pem: cert.pem(),
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration: HTTP/2 and HTTP/1.1; client certificates of `client_cas` are
/// verified when presented, and clients without one are let through to other credentials.
pub fn server_config(
    cert: ServingCert,
    client_cas: &[CertificateDer<'static>],
) -> Result<rustls::ServerConfig, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let mut config = if client_cas.is_empty() {
        builder.with_no_client_auth().with_single_cert(cert.chain, cert.key)?
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for ca in client_cas {
            roots.add(ca.clone())?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()?;
        builder.with_client_cert_verifier(verifier).with_single_cert(cert.chain, cert.key)?
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pairs_serve() {
        let cert = ServingCert::self_signed(&["pedia.example".into()]).unwrap();
        assert!(cert.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let ca = cert.chain[0].clone();
        let config = server_config(cert, &[ca]).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
    }

    #[test]
    fn files_that_are_not_pem_are_named() {
        let dir = std::env::temp_dir().join(format!("pedia-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, "nope").unwrap();
        std::fs::write(&k, "nope").unwrap();
        let e = ServingCert::load(&c, &k).err().unwrap().to_string();
        assert!(e.contains("c.pem"), "{e}");
        let e = ServingCert::load(&dir.join("missing"), &k).err().unwrap().to_string();
        assert!(e.contains("missing"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
