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

/// One HTTP/1.1 request with a binary body; returns the status, the response headers and body.
async fn call_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: kubesim\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, head, buf[split + 4..].to_vec())
}

/// A `k8s\0` envelope naming `api_version`/`kind` around `raw` (for kinds our encoder refuses).
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let field = |tag: u8, b: &[u8]| [vec![tag << 3 | 2, b.len() as u8], b.to_vec()].concat();
    let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
    [b"k8s\0".to_vec(), field(1, &type_meta), field(2, raw)].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_bodies_and_answers() {
    use api_types::api::protobuf::{self, decode_object, encode_object, kubernetes};
    let sim = KubeSim::new(Config::default());
    sim.create(kubesim::seed::widget_crd()).await.unwrap();
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let pb = ("Content-Type", protobuf::MEDIA_TYPE);

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pb", "namespace": "default"}, "data": {"k": "v"}});
    let body = encode_object(kubernetes(), &cm).unwrap();
    let (code, _, created) =
        call_bytes(server.addr, "POST", "/api/v1/namespaces/default/configmaps", &[pb], &body).await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&created));
    let stored: Value = serde_json::from_slice(&created).unwrap();
    assert_eq!(stored["data"], json!({"k": "v"}), "answered in JSON to a client that takes */*");

    // A custom resource has no protobuf form: 415, as kube-apiserver answers.
    let widget = envelope("example.com/v1", "Widget", &[]);
    let (code, _, answer) =
        call_bytes(server.addr, "POST", "/apis/example.com/v1/namespaces/default/widgets", &[pb], &widget).await;
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!((code, answer["reason"].as_str()), (415, Some("UnsupportedMediaType")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("application/json"), "{answer}");
    // A cut body is a 400 that says what is wrong.
    let (code, _, answer) =
        call_bytes(server.addr, "POST", "/api/v1/namespaces/default/configmaps", &[pb], &body[..body.len() - 2]).await;
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(code, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("could not be decoded"), "{answer}");

    // A client that accepts protobuf only gets protobuf: objects, lists and Status errors.
    let only = ("Accept", protobuf::MEDIA_TYPE);
    let (code, head, got) =
        call_bytes(server.addr, "GET", "/api/v1/namespaces/default/configmaps/pb", &[only], &[]).await;
    assert_eq!(code, 200);
    assert!(head.contains("application/vnd.kubernetes.protobuf"), "{head}");
    let got = decode_object(kubernetes(), &got).unwrap();
    assert_eq!((got["metadata"]["name"].as_str(), &got["data"]), (Some("pb"), &json!({"k": "v"})));
    assert!(got["metadata"]["resourceVersion"].is_string() && got["metadata"]["uid"].is_string(), "{got}");
    let (_, _, list) = call_bytes(server.addr, "GET", "/api/v1/namespaces/default/configmaps", &[only], &[]).await;
    let list = decode_object(kubernetes(), &list).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    assert!(list["items"].as_array().unwrap().iter().any(|i| i["metadata"]["name"] == "pb"), "{list}");
    let (code, _, missing) =
        call_bytes(server.addr, "GET", "/api/v1/namespaces/default/configmaps/nope", &[only], &[]).await;
    let missing = decode_object(kubernetes(), &missing).unwrap();
    assert_eq!((code, missing["kind"].as_str(), missing["reason"].as_str()), (404, Some("Status"), Some("NotFound")));
    // What has no protobuf form: 406.
    let (code, _, _) = call_bytes(server.addr, "GET", "/apis/example.com/v1/widgets", &[only], &[]).await;
    assert_eq!(code, 406);
    let (code, _, _) =
        call_bytes(server.addr, "GET", "/api/v1/configmaps?watch=1&timeoutSeconds=1", &[only], &[]).await;
    assert_eq!(code, 406, "watch streams are JSON only");
    server.shutdown().await;
}
