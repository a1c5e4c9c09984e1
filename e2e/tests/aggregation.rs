//! Aggregation as kube-aggregator does it: kubesim proxies an APIService's group-version to a
//! backend over HTTPS with the front-proxy client certificate and X-Remote-* identity headers;
//! the backend verifies the certificate with the CA published in
//! kube-system/extension-apiserver-authentication.
#![allow(clippy::unwrap_used)] // test code may panic

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kubesim::auth::Auth;
use kubesim::kubeconfig::{self, Credentials};
use kubesim::kubectl::Kubectl;
use kubesim::tls::{self, Tls};
use kubesim::{Config, KubeSim};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio_rustls::rustls;

/// An HTTPS backend that requires a client certificate signed by `client_ca_pem` and echoes
/// what it received.
async fn backend(client_ca_pem: &str) -> std::net::SocketAddr {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(client_ca_pem.as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().unwrap();
    // The backend's serving certificate: any, kubesim skips verification (insecureSkipTLSVerify).
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().self_signed(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let peer =
                    tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(tls::identity).map(|p| p.user);
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let peer = peer.clone();
                    async move {
                        let h = req.headers();
                        let all = |n: &str| {
                            h.get_all(n).iter().map(|v| v.to_str().unwrap_or_default().to_owned()).collect::<Vec<_>>()
                        };
                        let body = if req.uri().path() == "/apis/clusterpedia.io/v1beta1" {
                            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "clusterpedia.io/v1beta1",
                                   "resources": [{"name": "resources", "namespaced": false, "kind": "Resources", "verbs": []}]})
                        } else {
                            json!({"user": all("x-remote-user"), "groups": all("x-remote-group"), "path": req.uri().to_string(),
                                   "authorization": h.contains_key("authorization"), "peer": peer})
                        };
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(bytes::Bytes::from(body.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn aggregated_requests_reach_the_backend_with_front_proxy_identity() {
    let mut auth = Auth { anonymous: false, ..Auth::default() };
    auth.add_token("t", "alice", &["dev"]);
    let sim = KubeSim::new(Config { auth, ..Config::default() });
    let server = sim.serve_tls("127.0.0.1:0".parse().unwrap(), Tls::generate("host", &[]).unwrap()).await.unwrap();
    let kc = kubeconfig::render("host", &server.url(), server.ca_pem(), &Credentials::Token("t".into()));
    let config =
        kube::Config::from_custom_kubeconfig(kube::config::Kubeconfig::from_yaml(&kc).unwrap(), &Default::default())
            .await
            .unwrap();
    let client = kube::Client::try_from(config).unwrap();

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let auth_cm = cms.get("extension-apiserver-authentication").await.unwrap();
    let data = auth_cm.data.unwrap();
    assert_eq!(data["requestheader-username-headers"], r#"["X-Remote-User"]"#);
    assert!(data["client-ca-file"].contains("BEGIN CERTIFICATE"));
    let backend_addr = backend(&data["requestheader-client-ca-file"]).await;

    let apiservice = sim.aggregate("clusterpedia.io", "v1beta1", &format!("https://{backend_addr}")).await.unwrap();
    assert_eq!(apiservice["status"]["conditions"][0]["status"], "True");

    let get = |path: &str| {
        let client = client.clone();
        let path = path.to_owned();
        async move { client.request::<Value>(http::Request::get(path).body(Vec::new()).unwrap()).await }
    };
    let echoed = get("/apis/clusterpedia.io/v1beta1/resources/api/v1/pods?limit=3").await.unwrap();
    assert_eq!(echoed["user"], json!(["alice"]));
    assert_eq!(echoed["groups"], json!(["dev", "system:authenticated"]));
    assert_eq!(echoed["path"], "/apis/clusterpedia.io/v1beta1/resources/api/v1/pods?limit=3");
    assert_eq!(echoed["authorization"], false, "the caller's token is not forwarded");
    assert_eq!(echoed["peer"], "front-proxy-client");

    let groups = get("/apis").await.unwrap();
    assert!(groups["groups"].as_array().unwrap().iter().any(|g| g["name"] == "clusterpedia.io"));
    let resources = get("/apis/clusterpedia.io/v1beta1").await.unwrap();
    assert_eq!(resources["resources"][0]["name"], "resources");

    // kubectl discovers the aggregated group through kubesim.
    let dir = std::env::temp_dir().join(format!("kubesim-agg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("kc"), &kc).unwrap();
    let kubectl = Kubectl::new(dir.join("kc"));
    let (ok, text, err) = kubectl.run(&["get", "--raw", "/apis/clusterpedia.io/v1beta1/resources/version"], None).await;
    assert!(ok && text.contains("front-proxy-client"), "{text} {err}");

    // A backend that is gone is a 503 with the reason (asked with kubectl: kube-rs would retry 503s).
    sim.aggregate("example.io", "v1", "https://127.0.0.1:1").await.unwrap();
    let (ok, _, err) = kubectl.run(&["get", "--raw", "/apis/example.io/v1/things"], None).await;
    assert!(!ok && err.contains("ServiceUnavailable") && err.contains("error trying to reach service"), "{err}");

    // Deleting the APIService stops the proxying.
    let (code, _) = sim
        .request(http::Method::DELETE, "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.clusterpedia.io", None)
        .await;
    assert!(code.is_success());
    match get("/apis/clusterpedia.io/v1beta1/resources/version").await.unwrap_err() {
        kube::Error::Api(s) => assert_eq!(s.code, 404),
        other => panic!("{other}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown().await;
}
