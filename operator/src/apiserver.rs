//! Wiring of the search apiserver (`pedia apiserver`, and inside `pedia run`): its flags, with
//! kube-apiserver's names, turned into the server's authentication, authorization and TLS.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use pedia_apiserver::auth::{AuthError, Authenticator, Authorizer, RequestHeader};
use pedia_apiserver::tls::{ServingCert, TlsError};
use pedia_storage::Storage;

/// The search apiserver's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address the search API listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// HTTPS port of the search API (0 picks a free one; the log says which).
    #[arg(long, default_value_t = 8443)]
    pub secure_port: u16,
    /// Serving certificate (PEM); without it a self-signed pair is generated at start.
    #[arg(long, value_name = "FILE", requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// Key of --tls-cert-file (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Static bearer tokens, kube-apiserver's CSV format: `token,user,uid,"group1,group2"`.
    #[arg(long, value_name = "FILE")]
    pub token_auth_file: Option<PathBuf>,
    /// CA bundle (PEM) whose client certificates authenticate users (CN = user, O = groups).
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// CA bundle (PEM) of the aggregator's front-proxy client certificate; requests it signs
    /// name their user in X-Remote-User / X-Remote-Group. Default: read from the host's
    /// kube-system/extension-apiserver-authentication ConfigMap, as aggregated API servers do.
    #[arg(long, value_name = "FILE")]
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// Common names the front-proxy certificate may have (comma separated; empty: any).
    #[arg(long, value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,
    /// `delegated`: each request is authorized by a SubjectAccessReview to the host (verbs get,
    /// list, watch on `resources` / `collectionresources` of clusterpedia.io, named by the cluster);
    /// `always-allow`: every authenticated user may read everything.
    #[arg(long, default_value = "delegated")]
    pub authorization_mode: AuthorizationMode,
    /// Serve Secrets with their values emptied (keys stay visible).
    #[arg(long)]
    pub redact_secrets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthorizationMode {
    Delegated,
    AlwaysAllow,
}

/// Errors starting the search apiserver.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("reading kube-system/extension-apiserver-authentication from the host: {0}")]
    AuthenticationConfig(kube::Error),
    #[error("listening on {addr} for the search API: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

fn read(path: &PathBuf) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|e| ServeError::Read { path: path.clone(), reason: e.to_string() })
}

fn cas(path: &PathBuf) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, ServeError> {
    kube_x509::certificates(&read(path)?).map_err(|reason| ServeError::Read { path: path.clone(), reason })
}

/// The authenticator the flags describe (the host fills in the front-proxy settings when no
/// file is given).
async fn authenticator(args: &ServeArgs, host: &kube::Client) -> Result<Authenticator, ServeError> {
    let mut authn = Authenticator::default();
    if let Some(path) = &args.token_auth_file {
        let text = String::from_utf8_lossy(&read(path)?).into_owned();
        authn.tokens = pedia_apiserver::auth::parse_token_file(&text)?;
    }
    if let Some(path) = &args.client_ca_file {
        authn.client_cas = cas(path)?;
    }
    authn.request_header = match &args.requestheader_client_ca_file {
        Some(path) => Some(RequestHeader {
            cas: cas(path)?,
            allowed_names: args.requestheader_allowed_names.clone(),
            username_headers: vec!["X-Remote-User".into()],
            group_headers: vec!["X-Remote-Group".into()],
            extra_header_prefixes: vec!["X-Remote-Extra-".into()],
        }),
        None => {
            let api: kube::Api<ConfigMap> = kube::Api::namespaced(host.clone(), "kube-system");
            match api.get_opt("extension-apiserver-authentication").await {
                Ok(Some(cm)) => {
                    let mut rh = RequestHeader::from_config_map(&cm.data.unwrap_or_default())?;
                    if let Some(rh) = rh.as_mut()
                        && !args.requestheader_allowed_names.is_empty()
                    {
                        rh.allowed_names = args.requestheader_allowed_names.clone();
                    }
                    rh
                }
                Ok(None) => None,
                Err(kube::Error::Api(e)) if e.code == 403 || e.code == 404 => None,
                Err(e) => return Err(ServeError::AuthenticationConfig(e)),
            }
        }
    };
    if authn.request_header.is_none() {
        tracing::info!(
            "no front-proxy CA (kube-system/extension-apiserver-authentication has none, and no \
             --requestheader-client-ca-file): requests through the host's aggregator will get 401"
        );
    }
    if authn.tokens.is_empty() && authn.client_cas.is_empty() && authn.request_header.is_none() {
        tracing::warn!(
            "the search API has no way to authenticate anyone: give --token-auth-file, --client-ca-file \
             or --requestheader-client-ca-file"
        );
    }
    Ok(authn)
}

/// Starts the search apiserver: the catalog follows the host's PediaClusters.
pub async fn start(
    args: &ServeArgs,
    host: kube::Client,
    storage: Arc<Storage>,
) -> Result<pedia_apiserver::Server, ServeError> {
    let authn = authenticator(args, &host).await?;
    let cert = match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(c), Some(k)) => ServingCert::load(c, k)?,
        _ => ServingCert::self_signed(&[])?,
    };
    let tls = pedia_apiserver::tls::server_config(cert, &authn.trusted_cas())?;
    let authz = match args.authorization_mode {
        AuthorizationMode::Delegated => Authorizer::delegated(host.clone()),
        AuthorizationMode::AlwaysAllow => Authorizer::Authenticated,
    };
    let (catalog, _follower) = pedia_apiserver::clusters::follow(host);
    let watch = pedia_apiserver::WatchSettings::default();
    let feed = pedia_apiserver::feed::Feed::start(storage.clone(), watch.poll);
    let state = Arc::new(pedia_apiserver::State {
        storage,
        catalog,
        authn,
        authz,
        redact_secrets: args.redact_secrets,
        watch,
        feed,
    });
    let addr = SocketAddr::new(args.bind_address, args.secure_port);
    let server =
        pedia_apiserver::server::start(addr, tls, state).await.map_err(|source| ServeError::Listen { addr, source })?;
    tracing::info!(address = %server.addr, "serving the search API (clusterpedia.io/v1beta1)");
    Ok(server)
}
