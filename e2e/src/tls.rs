//! TLS for simulated clusters: a CA generated at start, a serving certificate for loopback, and
//! client certificates (CN = user, O = groups) that authenticate like kube-apiserver's.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls;

use crate::sim::PeerIdentity;

/// Errors while generating or loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("configuring TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("configuring client certificate verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A CA with its key, able to sign serving and client certificates.
pub struct Tls {
    ca_params: CertificateParams,
    ca_key: KeyPair,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: Arc<rustls::ServerConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// A fresh CA and a serving certificate for `127.0.0.1`, `localhost` and `hosts`.
    pub fn generate(name: &str, hosts: &[&str]) -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{name}-ca"));
        ca_params.distinguished_name = dn;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_pem = ca_cert.pem();
        let ca_der = ca_cert.der().clone();

        let mut sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned(), "::1".to_owned()];
        sans.extend(hosts.iter().map(|h| (*h).to_owned()));
        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(sans)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        server_params.distinguished_name = dn;
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der.clone())?;
        // Clients without a certificate are allowed through TLS; they authenticate with tokens.
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![server_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self { ca_params, ca_key, ca_pem, ca_der, server: Arc::new(server) })
    }

    /// The CA certificate (PEM) clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }

    /// A client certificate and key (PEM) for `user` in `group` (the certificate's O), signed
    /// by this CA. (rcgen writes one attribute per type, so a certificate carries one group.)
    pub fn client_cert(&self, user: &str, group: Option<&str>) -> Result<(String, String), TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        if let Some(g) = group {
            dn.push(DnType::OrganizationName, g);
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &Issuer::from_params(&self.ca_params, &self.ca_key))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The user a verified client certificate names: CN is the user, each O a group.
pub fn identity(cert: &CertificateDer<'_>) -> Option<PeerIdentity> {
    kube_x509::identity(cert).map(|id| PeerIdentity { user: id.user, groups: id.groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_carry_user_and_groups() {
        let tls = Tls::generate("test", &[]).unwrap();
        assert!(tls.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let (cert, key) = tls.client_cert("alice", Some("dev")).unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert.as_bytes()).unwrap();
        let id = identity(&der).unwrap();
        assert_eq!(id.user, "alice");
        assert_eq!(id.groups, ["dev"]);
    }
}
