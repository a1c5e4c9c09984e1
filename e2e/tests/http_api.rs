//! kubesim over raw HTTP: watch bookmarks and timeouts, reviews and the authorization policy,
//! the admin fault API, latency, and a restart that keeps the data.
#![allow(clippy::unwrap_used)] // test code may panic

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kubesim::auth::{Auth, PolicyFile};
use kubesim::{Config, KubeSim};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request; returns the status code and the body (chunked encoding removed by
/// reading it as lines of JSON is not needed: we only look for substrings).
async fn call(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: kubesim\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_bookmarks_and_ends_at_its_timeout() {
    let sim = KubeSim::new(Config { bookmark_interval: Duration::from_millis(200), ..Config::default() });
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}});
    sim.create(cm).await.unwrap();
    let started = Instant::now();
    let (code, text) = call(
        server.addr,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=1",
        None,
        None,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(code, 200);
    assert!(text.contains(r#""type":"ADDED""#), "initial events: {text}");
    assert!(text.contains(r#""type":"BOOKMARK""#), "bookmarks: {text}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "the watch ended at its timeout ({took:?})"
    );
    // Without allowWatchBookmarks there are none.
    let (_, text) =
        call(server.addr, "GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1", None, None).await;
    assert!(!text.contains("BOOKMARK"), "{text}");
    // A resume from a compacted version is a 200 stream with one 410 ERROR event.
    sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "default"}}))
        .await
        .unwrap();
    sim.compact();
    let (code, text) =
        call(server.addr, "GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1", None, None).await;
    assert_eq!(code, 200);
    assert!(text.contains(r#""type":"ERROR""#) && text.contains(r#""code":410"#) && text.contains("Expired"), "{text}");
    // List options follow Kubernetes' decoding: any boolean but false/0 is true, a malformed
    // number is a 400 naming the parameter, other parameters are not list options.
    let (code, text) =
        call(server.addr, "GET", "/api/v1/namespaces/default/configmaps?watch=True&timeoutSeconds=1", None, None).await;
    assert!(code == 200 && text.contains(r#""type":"ADDED""#), "watch=True watches: {text}");
    for bad in ["timeoutSeconds=abc&watch=1", "limit=ten"] {
        let (code, text) = call(server.addr, "GET", &format!("/api/v1/configmaps?{bad}"), None, None).await;
        let param = bad.split('=').next().unwrap();
        assert!(code == 400 && text.contains("BadRequest") && text.contains(param), "{bad}: {text}");
    }
    let (code, _) = call(server.addr, "GET", "/api/v1/configmaps?orderby=x&since=nope", None, None).await;
    assert_eq!(code, 200, "search options mean nothing to a member");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_rules_reviews_and_unauthorized_bodies() {
    let policy: PolicyFile = serde_yaml::from_str(
        "tokens:\n  admin: {name: admin, groups: [system:masters]}\n  dev: {name: dana, groups: [dev]}\n\
         rules:\n  - {groups: [system:masters], verbs: ['*'], resources: ['*']}\n  - {groups: [dev], verbs: [get, list], resources: [pods]}\n",
    )
    .unwrap();
    let sim = KubeSim::new(Config { auth: Auth::from_policy(policy), ..Config::default() });
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let a = server.addr;
    let (code, text) = call(a, "GET", "/api/v1/namespaces/default/pods", None, None).await;
    assert_eq!(code, 401);
    assert!(text.contains(r#""reason":"Unauthorized""#) && text.contains(r#""kind":"Status""#), "{text}");
    assert_eq!(call(a, "GET", "/api/v1/namespaces/default/pods", Some("dev"), None).await.0, 200);
    let (code, text) = call(a, "GET", "/api/v1/namespaces/default/secrets", Some("dev"), None).await;
    assert_eq!(code, 403);
    assert!(text.contains("Forbidden") && text.contains("dana"), "{text}");
    assert_eq!(call(a, "GET", "/api/v1/namespaces/default/secrets", Some("admin"), None).await.0, 200);

    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "dev"}});
    let (code, text) =
        call(a, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", Some("admin"), Some(&review)).await;
    assert_eq!(code, 201);
    assert!(text.contains(r#""authenticated":true"#) && text.contains(r#""username":"dana""#), "{text}");
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "dana", "groups": ["dev"], "resourceAttributes": {"verb": "delete", "resource": "pods"}}});
    let (_, text) =
        call(a, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", Some("admin"), Some(&sar)).await;
    assert!(text.contains(r#""allowed":false"#), "{text}");
    // A read-only user from the policy file: get and list, nothing else; `kubectl auth can-i`
    // (a self review) agrees with what the server does.
    let (code, _) = call(a, "DELETE", "/api/v1/namespaces/default/pods/x", Some("dev"), None).await;
    assert_eq!(code, 403);
    let can_i = |verb: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": "pods", "namespace": "default"}}})
    };
    for (verb, allowed) in [("get", true), ("delete", false)] {
        let (code, text) =
            call(a, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", Some("dev"), Some(&can_i(verb)))
                .await;
        assert!(code == 201 && text.contains(&format!(r#""allowed":{allowed}"#)), "{verb}: {text}");
    }
    server.shutdown().await;

    // Without rules (every authenticated user may do everything) an anonymous review is denied
    // while anonymous access is off, as the server itself answers 401.
    let mut auth = Auth { anonymous: false, ..Auth::default() };
    auth.add_token("admin", "admin", &["system:masters"]);
    let sim = KubeSim::new(Config { auth, ..Config::default() });
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert_eq!(call(server.addr, "GET", "/api/v1/pods", None, None).await.0, 401);
    let anonymous = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "system:anonymous", "groups": ["system:unauthenticated"], "resourceAttributes": {"verb": "list", "resource": "pods"}}});
    let (_, text) = call(
        server.addr,
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some("admin"),
        Some(&anonymous),
    )
    .await;
    assert!(text.contains(r#""allowed":false"#) && text.contains("anonymous"), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_latency_and_restart_with_data_kept() {
    let sim = KubeSim::new(Config::default());
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.addr;
    assert_eq!(call(addr, "POST", "/kubesim/fail?count=1&code=429", None, None).await.0, 200);
    let (code, text) = call(addr, "GET", "/api/v1/namespaces", None, None).await;
    assert_eq!(code, 429);
    assert!(text.contains("TooManyRequests"), "{text}");
    assert_eq!(call(addr, "POST", "/kubesim/latency?ms=300", None, None).await.0, 200);
    let t = Instant::now();
    assert_eq!(call(addr, "GET", "/api/v1/namespaces", None, None).await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    call(addr, "POST", "/kubesim/latency?ms=0", None, None).await;
    assert_eq!(call(addr, "POST", "/kubesim/ready?value=false", None, None).await.0, 200);
    assert_eq!(call(addr, "GET", "/readyz", None, None).await.0, 500);
    call(addr, "POST", "/kubesim/ready?value=true", None, None).await;
    assert_eq!(call(addr, "POST", "/kubesim/nonsense", None, None).await.0, 400);

    sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "default"}}))
        .await
        .unwrap();
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "stopped");
    let server = sim.serve(addr).await.unwrap();
    let (code, text) = call(server.addr, "GET", "/api/v1/namespaces/default/configmaps/kept", None, None).await;
    assert_eq!(code, 200, "the data outlives a restart of the server: {text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_logged_when_asked() {
    let path = std::env::temp_dir().join(format!("kubesim-http-requests-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let log = std::sync::Arc::new(kubesim::request_log::RequestLog::file(&path).unwrap());
    let mut auth = Auth { anonymous: false, ..Auth::default() };
    auth.add_token("admin", "admin", &["system:masters"]);
    let sim = KubeSim::new(Config { name: "logged".into(), auth, request_log: Some(log), ..Config::default() });
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert_eq!(call(server.addr, "GET", "/api/v1/namespaces?limit=2", Some("admin"), None).await.0, 200);
    assert_eq!(call(server.addr, "GET", "/api/v1/pods", None, None).await.0, 401);
    server.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("logged GET /api/v1/namespaces?limit=2 content-type=application/json status=200 bytes=")
    );
    assert!(lines[0].ends_with("user=admin"), "{}", lines[0]);
    assert!(lines[1].contains("GET /api/v1/pods ") && lines[1].contains("status=401") && lines[1].ends_with("user=-"));
    let _ = std::fs::remove_file(&path);
}
