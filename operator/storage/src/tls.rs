//! TLS to PostgreSQL and MySQL/MariaDB with rustls, following libpq's `sslmode` (MySQL's
//! `ssl-mode` names are accepted too): `disable`; `allow`/`prefer` (the default: TLS when the
//! server offers it, certificate not checked); `require` (TLS, certificate not checked unless
//! `sslrootcert` is given); `verify-ca` (the chain must lead to `sslrootcert`, or the system
//! roots; MySQL: the built-in Mozilla roots); `verify-full` (also the host name).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::error::StorageError;

/// libpq's `sslmode`, with the root certificate file where it matters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Tls {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa(Option<String>),
    VerifyFull(Option<String>),
}

impl Tls {
    /// From `sslmode` and `sslrootcert` as libpq reads them, or MySQL's `ssl-mode` values.
    pub fn parse(mode: Option<&str>, root: Option<&str>) -> Result<Self, String> {
        let root = root.map(str::to_owned);
        let mode = mode.unwrap_or("prefer").to_ascii_lowercase();
        Ok(match (mode.as_str(), root) {
            ("disable" | "disabled", _) => Tls::Disable,
            ("allow" | "prefer" | "preferred", _) => Tls::Prefer,
            ("require" | "required", None) => Tls::Require,
            // libpq: `require` with a root certificate verifies the chain, like verify-ca.
            ("require" | "required", Some(r)) => Tls::VerifyCa(Some(r)),
            ("verify-ca" | "verify_ca", r) => Tls::VerifyCa(r),
            ("verify-full" | "verify_identity", r) => Tls::VerifyFull(r),
            (other, _) => {
                return Err(format!(
                    "sslmode {other:?}: use disable, allow, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }

    fn ssl_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode;
        match self {
            Tls::Disable => SslMode::Disable,
            Tls::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        }
    }

    fn client_config(&self) -> Result<ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let roots = |file: &Option<String>| -> Result<RootCertStore, String> {
            let mut store = RootCertStore::empty();
            match file {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| format!("sslrootcert {path}: {e}"))?;
                    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
                        let cert: CertificateDer<'static> = cert.map_err(|e| format!("sslrootcert {path}: {e}"))?;
                        store.add(cert).map_err(|e| format!("sslrootcert {path}: {e}"))?;
                    }
                    if store.is_empty() {
                        return Err(format!("sslrootcert {path}: no certificate in the file"));
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    for cert in found.certs {
                        let _ = store.add(cert);
                    }
                    if store.is_empty() {
                        return Err("no sslrootcert given and no system root certificates found".into());
                    }
                }
            }
            Ok(store)
        };
        let config = match self {
            Tls::Disable | Tls::Prefer | Tls::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(kube_x509::NoVerification::new(provider)))
                .with_no_client_auth(),
            Tls::VerifyCa(file) => {
                let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(file)?), provider)
                    .build()
                    .map_err(|e| e.to_string())?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(kube_x509::AnyName::new(inner)))
                    .with_no_client_auth()
            }
            Tls::VerifyFull(file) => builder.with_root_certificates(roots(file)?).with_no_client_auth(),
        };
        Ok(config)
    }
}

/// Connects to PostgreSQL with `config`'s TLS mode.
pub async fn connect_pg(target: &str, tls: &Tls) -> Result<diesel_async::AsyncPgConnection, diesel::ConnectionError> {
    let bad = |m: String| diesel::ConnectionError::BadConnection(m);
    let mut config: tokio_postgres::Config = target.parse().map_err(|e: tokio_postgres::Error| bad(e.to_string()))?;
    config.ssl_mode(tls.ssl_mode());
    let connector = MakeRustls(Arc::new(tls.client_config().map_err(bad)?));
    let (client, connection) = config.connect(connector).await.map_err(|e| bad(crate::error::with_sources(&e)))?;
    diesel_async::AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

/// Connects to MySQL/MariaDB with `tls`; `prefer` falls back to a plain connection when the
/// server has no TLS (as MySQL clients' PREFERRED does).
pub async fn connect_mysql(
    target: &str,
    tls: &Tls,
) -> Result<diesel_async::AsyncMysqlConnection, diesel::ConnectionError> {
    use mysql_async::{OptsBuilder, SslOpts};
    let bad = |m: String| diesel::ConnectionError::BadConnection(m);
    let opts = mysql_async::Opts::from_url(target).map_err(|e| bad(e.to_string()))?;
    if let Tls::VerifyCa(Some(path)) | Tls::VerifyFull(Some(path)) = tls {
        // mysql_async's own message does not name the file.
        std::fs::metadata(path).map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
    }
    let roots = |root: &Option<String>| match root {
        Some(path) => SslOpts::default()
            .with_root_certs(vec![std::path::PathBuf::from(path).into()])
            .with_disable_built_in_roots(true),
        None => SslOpts::default(),
    };
    let ssl = match tls {
        Tls::Disable => None,
        Tls::Prefer | Tls::Require => Some(SslOpts::default().with_danger_accept_invalid_certs(true)),
        Tls::VerifyCa(root) => Some(roots(root).with_danger_skip_domain_validation(true)),
        Tls::VerifyFull(root) => Some(roots(root)),
    };
    let connect = |ssl: Option<SslOpts>| mysql_async::Conn::new(OptsBuilder::from_opts(opts.clone()).ssl_opts(ssl));
    let conn = match connect(ssl.clone()).await {
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)) if *tls == Tls::Prefer => {
            connect(None).await
        }
        // mysql_async's skip_domain_validation looks for "NotValidForName" in the error text,
        // which rustls 0.23 no longer prints, so verify-ca fails on the name. The chain was
        // verified by then; connecting again with the certificate's own DNS name checks the
        // chain and the name it was issued for. If rustls words it differently, this fails closed.
        Err(e) if matches!(tls, Tls::VerifyCa(_)) => match name_in_certificate(&e.to_string()) {
            Some(name) => connect(ssl.map(|s| s.with_danger_tls_hostname_override(Some(name)))).await,
            None => Err(e),
        },
        other => other,
    };
    let conn = conn.map_err(|e| bad(crate::error::with_sources(&e)))?;
    diesel_async::AsyncMysqlConnection::try_from(conn).await
}

/// The DNS name from rustls' "certificate not valid for name ...; certificate is only valid for
/// DnsName(\"NAME\")" error.
fn name_in_certificate(error: &str) -> Option<String> {
    let (_, rest) = error.split_once("certificate is only valid for DnsName(\"")?;
    rest.split_once('"').map(|(name, _)| name.to_owned())
}

/// Splits `sslmode` and `sslrootcert` out of a PostgreSQL or MySQL URL or a PostgreSQL keyword
/// DSN (tokio-postgres does not know verify-ca/verify-full), returning the rest and the mode.
pub fn extract_tls(target: &str) -> Result<(String, Tls), StorageError> {
    let bad = |m: String| StorageError::Config(m);
    let (mut mode, mut root) = (None, None);
    let rest = if target.contains("://") {
        let mut url = url::Url::parse(target).map_err(|e| bad(format!("--storage: {e}")))?;
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "sslmode" | "ssl-mode" => mode = Some(v.into_owned()),
                "sslrootcert" | "ssl-ca" => root = Some(v.into_owned()),
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        url.to_string()
    } else {
        let mut kept = Vec::new();
        for (k, v) in dsn_pairs(target) {
            match k.as_str() {
                "sslmode" => mode = Some(unquote(&v)),
                "sslrootcert" => root = Some(unquote(&v)),
                _ => kept.push(format!("{k}={v}")),
            }
        }
        kept.join(" ")
    };
    let tls = Tls::parse(mode.as_deref(), root.as_deref()).map_err(bad)?;
    Ok((rest, tls))
}

/// `key=value` pairs of a keyword DSN; values may be single-quoted with backslash escapes.
fn dsn_pairs(dsn: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '=') {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            value.push(chars.next().unwrap_or('\''));
            let mut escaped = false;
            for c in chars.by_ref() {
                value.push(c);
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '\'') => break,
                    _ => {}
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        out.push((key, value));
    }
    out
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace("\\'", "'").replace("\\\\", "\\"),
        None => v.to_owned(),
    }
}

/// tokio-postgres' TLS hooks over tokio-rustls.
#[derive(Clone)]
struct MakeRustls(Arc<ClientConfig>);

struct Connect {
    config: Arc<ClientConfig>,
    name: Result<ServerName<'static>, String>,
}

/// A TLS stream tokio-postgres can use.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> MakeTlsConnect<S> for MakeRustls {
    type Stream = RustlsStream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connect, io::Error> {
        let name = ServerName::try_from(domain.to_owned()).map_err(|e| format!("server name {domain:?}: {e}"));
        Ok(Connect { config: self.0.clone(), name })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsConnect<S> for Connect {
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(io::Error::other)?;
            let tls = tokio_rustls::TlsConnector::from(self.config).connect(name, stream).await?;
            Ok(RustlsStream(tls))
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM channel binding needs the certificate's hash algorithm; without it the
        // connection still authenticates with plain SCRAM.
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_are_taken_out_of_urls_and_dsns() {
        let (rest, tls) =
            extract_tls("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fca.pem&application_name=x").unwrap();
        assert_eq!(rest, "postgres://u@h/db?application_name=x");
        assert_eq!(tls, Tls::VerifyFull(Some("/ca.pem".into())));
        let (rest, tls) = extract_tls("postgres://u@h/db").unwrap();
        assert_eq!((rest.as_str(), tls), ("postgres://u@h/db", Tls::Prefer));
        let (rest, tls) = extract_tls(r"host='h' password='a b\'c' sslmode=require dbname=d").unwrap();
        assert_eq!((rest.as_str(), tls), (r"host='h' password='a b\'c' dbname=d", Tls::Require));
        let (_, tls) = extract_tls("host=h sslmode=require sslrootcert='/r.pem'").unwrap();
        assert_eq!(tls, Tls::VerifyCa(Some("/r.pem".into())), "require + root verifies the chain, as libpq");
        let err = extract_tls("postgres://h/db?sslmode=sometimes").unwrap_err().to_string();
        assert!(err.contains("sslmode \"sometimes\""), "{err}");
        // MySQL's names for the same modes.
        let (rest, tls) = extract_tls("mysql://u@h:3306/db?ssl-mode=VERIFY_CA&ssl-ca=%2Fca.pem").unwrap();
        assert_eq!((rest.as_str(), tls), ("mysql://u@h:3306/db", Tls::VerifyCa(Some("/ca.pem".into()))));
        assert_eq!(extract_tls("mysql://h/db?sslmode=REQUIRED").unwrap().1, Tls::Require);
        assert_eq!(extract_tls("mysql://h/db?ssl-mode=verify_identity").unwrap().1, Tls::VerifyFull(None));
        assert_eq!(extract_tls("mysql://h/db?ssl-mode=disabled").unwrap().1, Tls::Disable);
    }
}
