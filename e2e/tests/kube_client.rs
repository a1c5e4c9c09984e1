//! kube-rs against kubesim: watchers survive dropped watches and 410 Gone, conflicts, server-side
//! apply of status, finalizers, garbage collection, paging, auth over TLS, and faults.
#![allow(clippy::unwrap_used)] // test code may panic

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_types::cluster::PediaCluster;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::{Client, CustomResourceExt};
use kubesim::auth::Auth;
use kubesim::kubeconfig::{self, Credentials};
use kubesim::tls::Tls;
use kubesim::{Config, KubeSim};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"n": name}}, "data": {"k": "v"}})).unwrap()
}

type Log = Arc<Mutex<Vec<String>>>;

/// Runs a watcher in the background, recording what it yields.
fn record(api: Api<ConfigMap>, config: watcher::Config) -> Log {
    let log: Log = Arc::default();
    let out = log.clone();
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, config).boxed();
        while let Some(ev) = stream.next().await {
            let entry = match ev {
                Ok(Event::Init) => "Init".to_owned(),
                Ok(Event::InitApply(o)) => format!("InitApply:{}", o.metadata.name.unwrap_or_default()),
                Ok(Event::InitDone) => "InitDone".to_owned(),
                Ok(Event::Apply(o)) => format!("Apply:{}", o.metadata.name.unwrap_or_default()),
                Ok(Event::Delete(o)) => format!("Delete:{}", o.metadata.name.unwrap_or_default()),
                Err(e) => format!("Err:{e}"),
            };
            out.lock().unwrap().push(entry);
        }
    });
    log
}

async fn wait_for(log: &Log, what: &str, pred: impl Fn(&[String]) -> bool) {
    for _ in 0..400 {
        if pred(&log.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}; watcher saw {:?}", log.lock().unwrap());
}

fn count(log: &[String], entry: &str) -> usize {
    log.iter().filter(|e| *e == entry).count()
}

#[tokio::test]
async fn watcher_survives_dropped_watches_and_relists_after_410() {
    let sim = KubeSim::new(Config::default());
    let api: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let other: Api<ConfigMap> = Api::namespaced(sim.client(), "kube-system");
    api.create(&PostParams::default(), &cm("first")).await.unwrap();
    let log = record(api.clone(), watcher::Config::default());
    wait_for(&log, "the initial list", |l| l.contains(&"InitDone".into())).await;
    assert!(log.lock().unwrap().contains(&"InitApply:first".into()));

    // A dropped watch resumes from the last version: no relist, the next change is an Apply.
    sim.drop_watches();
    api.create(&PostParams::default(), &cm("after-drop")).await.unwrap();
    wait_for(&log, "Apply:after-drop", |l| l.contains(&"Apply:after-drop".into())).await;
    assert_eq!(count(&log.lock().unwrap(), "Init"), 1);

    // A change this watcher does not see moves the global version on; after compaction its
    // resume answers 410 Gone and the watcher relists.
    other.create(&PostParams::default(), &cm("elsewhere")).await.unwrap();
    sim.compact();
    sim.drop_watches();
    wait_for(&log, "a relist", |l| count(l, "Init") == 2 && count(l, "InitDone") == 2).await;
    api.create(&PostParams::default(), &cm("after-410")).await.unwrap();
    wait_for(&log, "Apply:after-410", |l| l.contains(&"Apply:after-410".into())).await;
    let log = log.lock().unwrap();
    assert!(log.iter().any(|e| e.starts_with("Err:") && (e.contains("410") || e.contains("too old"))), "{log:?}");
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_end() {
    let sim = KubeSim::new(Config::default());
    let api: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let log = record(api.clone(), watcher::Config::default().streaming_lists());
    wait_for(&log, "the initial events", |l| l.contains(&"InitDone".into())).await;
    assert!(log.lock().unwrap().contains(&"InitApply:a".into()));
    api.delete("a", &DeleteParams::default()).await.unwrap();
    wait_for(&log, "Delete:a", |l| l.contains(&"Delete:a".into())).await;
}

#[tokio::test]
async fn replace_with_a_stale_version_is_a_conflict() {
    let sim = KubeSim::new(Config::default());
    let api: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let created = api.create(&PostParams::default(), &cm("c")).await.unwrap();
    let mut fresh = created.clone();
    fresh.data = Some([("k".to_owned(), "v2".to_owned())].into());
    api.replace("c", &PostParams::default(), &fresh).await.unwrap();
    let err = api.replace("c", &PostParams::default(), &created).await.unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("expected a 409, got {other}"),
    }
    let err = api.create(&PostParams::default(), &cm("c")).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"));
    let err = api.get("missing").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"));
}

async fn install_pedia_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in api_types::crd::pedia_crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
}

#[tokio::test]
async fn server_side_apply_of_status_keeps_spec_and_generation() {
    let sim = KubeSim::new(Config::default());
    let client = sim.client();
    install_pedia_crds(&client).await;
    let api: Api<PediaCluster> = Api::all(client);
    let pc: PediaCluster = serde_json::from_value(json!({
        "apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "m1"},
        "spec": {"apiserver": "https://m1:6443", "syncResources": [{"group": "", "resources": ["pods"]}]}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &pc).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let status = json!({
        "apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster",
        "status": {"version": "v1.33.1", "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "ok",
                   "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    let patched = api.patch_status("m1", &PatchParams::apply("pedia").force(), &Patch::Apply(&status)).await.unwrap();
    assert_eq!(patched.status.unwrap().version.as_deref(), Some("v1.33.1"));
    assert_eq!(patched.metadata.generation, Some(1), "status writes do not bump generation");
    assert_eq!(patched.spec.apiserver.as_deref(), Some("https://m1:6443"));

    // A spec change through the main resource bumps generation and keeps status.
    let spec_patch = json!({"spec": {"shardingName": "s1"}});
    let p = api.patch("m1", &PatchParams::default(), &Patch::Merge(&spec_patch)).await.unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    assert!(p.status.is_some());

    // The CRD schema is enforced: a bad condition status is a 422 naming the field.
    let bad = json!({"status": {"conditions": [{"type": "Ready", "status": "Maybe", "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    let err = api.patch_status("m1", &PatchParams::default(), &Patch::Merge(&bad)).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(s.message.contains("status.conditions[0].status"), "{}", s.message);
        }
        other => panic!("{other}"),
    }
    assert_eq!(PediaCluster::crd().spec.names.kind, "PediaCluster");
}

#[tokio::test]
async fn finalizers_hold_deletion_and_gc_removes_dependents() {
    let sim = KubeSim::new(Config::default());
    kubesim::seed::seed(&sim, "m", kubesim::seed::SeedSize::default()).await.unwrap();
    let client = sim.client();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "shop-0");
    let before = pods.list(&ListParams::default().labels("app.kubernetes.io/name=web")).await.unwrap().items.len();
    assert_eq!(before, 2);
    let deploys: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), "shop-0");
    deploys.delete("web", &DeleteParams::background()).await.unwrap();
    let after = pods.list(&ListParams::default().labels("app.kubernetes.io/name=web")).await.unwrap().items.len();
    assert_eq!(after, 0, "pods of the deleted deployment are garbage collected");
    assert_eq!(pods.list(&ListParams::default().labels("app.kubernetes.io/name=api")).await.unwrap().items.len(), 2);

    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = cms.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    let clear = json!({"metadata": {"finalizers": null}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&clear)).await.unwrap();
    assert!(cms.get_opt("held").await.unwrap().is_none(), "removing the last finalizer deletes the object");
}

#[tokio::test]
async fn paged_lists_return_everything_and_selectors_filter() {
    let sim = KubeSim::new(Config::default());
    let api: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    for i in 0..23 {
        let mut c = cm(&format!("c{i:02}"));
        c.metadata.labels = Some([("parity".to_owned(), if i % 2 == 0 { "even" } else { "odd" }.to_owned())].into());
        api.create(&PostParams::default(), &c).await.unwrap();
    }
    let mut names = Vec::new();
    // `default` also holds kube-root-ca.crt, as on a real cluster; it has no parity label.
    let mut lp = ListParams::default().limit(5).labels("parity");
    loop {
        let page = api.list(&lp).await.unwrap();
        names.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(names.len(), 23);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let odd = api.list(&ListParams::default().labels("parity=odd")).await.unwrap();
    assert_eq!(odd.items.len(), 11);
    let notin = api.list(&ListParams::default().labels("parity notin (odd)")).await.unwrap();
    assert_eq!(notin.items.len(), 13, "notin also matches objects without the label (kube-root-ca.crt)");
    let by_name = api.list(&ListParams::default().fields("metadata.name=c07")).await.unwrap();
    assert_eq!(by_name.items.len(), 1);
    let err = api.list(&ListParams::default().labels("parity in odd")).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 400));
}

#[tokio::test]
async fn tls_tokens_and_client_certificates_authenticate() {
    let mut auth = Auth { anonymous: false, ..Auth::default() };
    auth.add_token("good", "admin", &["system:masters"]);
    let sim = KubeSim::new(Config { auth, ..Config::default() });
    let tls = Tls::generate("t", &[]).unwrap();
    let (cert, key) = tls.client_cert("alice", Some("dev")).unwrap();
    let server = sim.serve_tls("127.0.0.1:0".parse().unwrap(), tls).await.unwrap();
    let make = |creds: Credentials| {
        let text = kubeconfig::render("t", &server.url(), server.ca_pem(), &creds);
        async move {
            let kc = kube::config::Kubeconfig::from_yaml(&text).unwrap();
            let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
            Client::try_from(config).unwrap()
        }
    };
    let ok: Api<ConfigMap> = Api::namespaced(make(Credentials::Token("good".into())).await, "default");
    ok.list(&ListParams::default()).await.unwrap();
    let bad: Api<ConfigMap> = Api::namespaced(make(Credentials::Token("bad".into())).await, "default");
    let err = bad.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 401), "wrong token is 401");
    let anon: Api<ConfigMap> = Api::namespaced(make(Credentials::None).await, "default");
    assert!(anon.list(&ListParams::default()).await.is_err(), "anonymous is refused when disabled");
    let cert_client = make(Credentials::ClientCert { cert_pem: cert, key_pem: key }).await;
    let who: serde_json::Value = cert_client
        .request(
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header("content-type", "application/json")
                .body(
                    serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}))
                        .unwrap(),
                )
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "alice");
    server.shutdown().await;
}

/// The status code of a plain HTTP/1.1 GET, or "000" when the connection fails.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return "000".into() };
    let req = format!("GET {path} HTTP/1.1\r\nHost: kubesim\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return "000".into();
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).split_whitespace().nth(1).unwrap_or("000").to_owned()
}

#[tokio::test]
async fn faults_fail_requests_and_make_the_server_unreachable() {
    let sim = KubeSim::new(Config::default());
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.addr;
    let http = |path: &'static str| raw_get(addr, path);
    let code = |c: String| c;
    assert_eq!(code(http("/api/v1/namespaces").await), "200");
    sim.faults().fail_next(2, 503);
    assert_eq!(code(http("/api/v1/namespaces").await), "503");
    assert_eq!(code(http("/api/v1/namespaces").await), "503");
    assert_eq!(code(http("/api/v1/namespaces").await), "200");
    sim.faults().set_ready(false);
    assert_eq!(code(http("/readyz").await), "500");
    sim.faults().set_ready(true);
    assert_eq!(code(http("/readyz").await), "200");
    sim.faults().set_unreachable(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(code(http("/readyz").await), "000", "connections are refused while unreachable");
    sim.faults().set_unreachable(false);
    let mut back = false;
    for _ in 0..50 {
        if code(http("/readyz").await) == "200" {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the server comes back on the same port");
    server.shutdown().await;
}

/// Local APIServices, as kube-aggregator keeps them: one per served group-version, available,
/// without a service; a CRD's comes and goes with it, and a watcher sees both.
#[tokio::test]
async fn local_apiservices_follow_crds() {
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
    let sim = KubeSim::new(Config::default());
    let client = sim.client();
    let api: Api<APIService> = Api::all(client.clone());
    let listed = api.list(&ListParams::default()).await.unwrap();
    let names: Vec<String> = listed.items.iter().filter_map(|a| a.metadata.name.clone()).collect();
    for want in ["v1.", "v1.apps", "v1.batch", "v2.autoscaling", "v1.apiextensions.k8s.io"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let core = listed.items.iter().find(|a| a.metadata.name.as_deref() == Some("v1.")).unwrap();
    assert!(core.spec.as_ref().unwrap().service.is_none());
    let available = &core.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
    assert_eq!(
        (available.type_.as_str(), available.status.as_str(), available.reason.as_deref()),
        ("Available", "True", Some("Local"))
    );

    let seen: Log = Arc::default();
    let out = seen.clone();
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = stream.next().await {
            match ev {
                Event::Apply(a) => out.lock().unwrap().push(format!("Apply:{}", a.metadata.name.unwrap_or_default())),
                Event::Delete(a) => out.lock().unwrap().push(format!("Delete:{}", a.metadata.name.unwrap_or_default())),
                Event::InitDone => out.lock().unwrap().push("InitDone".into()),
                _ => {}
            }
        }
    });
    wait_for(&seen, "the initial list", |l| l.contains(&"InitDone".to_owned())).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let crd: CustomResourceDefinition = serde_json::from_value(kubesim::seed::widget_crd()).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    wait_for(&seen, "the CRD's APIService", |l| l.contains(&"Apply:v1.example.com".to_owned())).await;
    crds.delete("widgets.example.com", &DeleteParams::default()).await.unwrap();
    wait_for(&seen, "its removal", |l| l.contains(&"Delete:v1.example.com".to_owned())).await;
    assert_eq!(count(&seen.lock().unwrap(), "Delete:v1."), 0, "built-in ones stay");
}

/// A member looks like a fresh kubeadm cluster: bootstrap RBAC, API priority and fairness,
/// kube-system's DNS, and per namespace (new ones too) the default ServiceAccount and the CA.
#[tokio::test]
async fn a_fresh_cluster_holds_what_kubeadm_creates() {
    use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let sim = KubeSim::new(Config::default());
    let client = sim.client();
    let roles: Api<ClusterRole> = Api::all(client.clone());
    for r in ["cluster-admin", "admin", "edit", "view", "system:basic-user"] {
        roles.get(r).await.unwrap_or_else(|e| panic!("{r}: {e}"));
    }
    let binding = Api::<ClusterRoleBinding>::all(client.clone()).get("cluster-admin").await.unwrap();
    assert_eq!(binding.subjects.unwrap()[0].name, "system:masters");
    let (code, flows) = sim.request(http::Method::GET, "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", None).await;
    assert!(code.is_success() && flows["items"].as_array().unwrap().len() >= 5, "{flows}");
    let dns = Api::<Service>::namespaced(client.clone(), "kube-system").get("kube-dns").await.unwrap();
    assert_eq!(dns.spec.unwrap().cluster_ips.unwrap(), ["10.96.0.10"]);

    for ns in ["default", "kube-system"] {
        Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .get("default")
            .await
            .unwrap_or_else(|e| panic!("{ns}: {e}"));
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get("kube-root-ca.crt")
            .await
            .unwrap_or_else(|e| panic!("{ns}: {e}"));
    }
    let fresh: Namespace = serde_json::from_value(json!({"metadata": {"name": "fresh"}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &fresh).await.unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), "fresh").get("default").await.unwrap();
    let ca = Api::<ConfigMap>::namespaced(client.clone(), "fresh").get("kube-root-ca.crt").await.unwrap();
    assert!(ca.data.unwrap().contains_key("ca.crt"));

    // Over TLS the ConfigMap carries the CA clients verify the server with.
    let server = sim.serve_tls("127.0.0.1:0".parse().unwrap(), Tls::generate("fresh", &[]).unwrap()).await.unwrap();
    let ca = Api::<ConfigMap>::namespaced(client, "fresh").get("kube-root-ca.crt").await.unwrap();
    assert_eq!(ca.data.unwrap()["ca.crt"], server.ca_pem().unwrap());
    server.shutdown().await;
}
