//! Client certificates the way kube-apiserver reads them: the subject's CN is the user and each
//! O a group; which CA issued a certificate (a server trusting several CAs for different
//! purposes, such as a client CA and the front-proxy CA, must know which one signed it); PEM
//! bundles; and the verifiers that check less than WebPKI (any certificate; the chain without
//! the host name).
#![forbid(unsafe_code)]

mod verifiers;
pub use verifiers::{AnyName, NoVerification};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The user a client certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// CN = user, each O = a group (None when the certificate does not parse or has no CN).
pub fn identity(cert: &CertificateDer<'_>) -> Option<Identity> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject.iter_organization().filter_map(|o| o.as_str().ok().map(str::to_owned)).collect();
    Some(Identity { user, groups })
}

/// Whether `ca` issued `cert` directly: the issuer names the CA's subject and the CA's key
/// verifies the signature.
pub fn issued_by(cert: &CertificateDer<'_>, ca: &CertificateDer<'_>) -> bool {
    let (Ok((_, cert)), Ok((_, ca))) =
        (x509_parser::parse_x509_certificate(cert.as_ref()), x509_parser::parse_x509_certificate(ca.as_ref()))
    else {
        return false;
    };
    cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// Every certificate of a PEM bundle (errors name the position of the bad block).
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .enumerate()
        .map(|(i, c)| c.map_err(|e| format!("certificate {} of the bundle: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};

    fn ca(name: &str) -> (CertificateParams, KeyPair, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).unwrap();
        (params, key, cert.der().clone())
    }

    fn client(ca: &(CertificateParams, KeyPair, CertificateDer<'static>), user: &str, group: &str) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        dn.push(DnType::OrganizationName, group);
        params.distinguished_name = dn;
        params.signed_by(&key, &Issuer::from_params(&ca.0, &ca.1)).unwrap().pem()
    }

    #[test]
    fn identities_and_issuers() {
        let (a, b) = (ca("a"), ca("b"));
        let pem = client(&a, "alice", "dev");
        let cert = certificates(pem.as_bytes()).unwrap().remove(0);
        assert_eq!(identity(&cert), Some(Identity { user: "alice".into(), groups: vec!["dev".into()] }));
        assert!(issued_by(&cert, &a.2));
        assert!(!issued_by(&cert, &b.2), "another CA did not sign it");
        // Same subject name, other key: the signature decides.
        let a2 = ca("a");
        assert!(!issued_by(&cert, &a2.2));
        assert!(certificates(b"nothing").is_err());
    }
}
