//! End to end: the real `pedia run` syncs a two-member kubesim fleet into SQLite and serves the
//! search API; the real kubectl reads it directly (bearer token) and through the host's
//! aggregator (front-proxy certificate + SubjectAccessReview), and kube-rs watches it.
//! Asserted: every pod of every member with CLUSTER and kube-apiserver's columns (`-o wide`
//! equal to the member's own), search labels, chunked lists, label and field selectors, a
//! member's change seen by `get -w`, per-cluster discovery, cluster shortcuts, collection
//! resources, 401 / 403 / 400 with Status bodies, and watches (kube-rs, the Python `kubernetes`
//! client) that resume without losing or repeating an event.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use common::{Pedia, pedia_command};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Kubectl, free_port, until};
use futures_util::StreamExt;
use http::Method;
use kube::runtime::watcher;
use kubesim::KubeSim;
use kubesim::fleet::{self, FleetCluster};
use kubesim::kubeconfig::base64;
use kubesim::seed::SeedSize;
use serde_json::{Value, json};
use tokio::process::Command;

const NS: &str = "pedia-system";

fn start_pedia(host_kubeconfig: &Path, dir: &Path, port: u16) -> Pedia {
    let tokens = dir.join("tokens.csv");
    std::fs::write(&tokens, "alice-token,alice,1,dev\neve-token,eve,2\n").unwrap();
    Pedia(
        pedia_command(&dir.join("pedia.log"))
            .args(["run", "--namespace", NS, "--leader-elect=false", "--metrics-bind-address", "127.0.0.1:0"])
            .args(["--bind-address", "127.0.0.1", "--secure-port", &port.to_string()])
            .arg("--token-auth-file")
            .arg(&tokens)
            .arg("--kubeconfig")
            .arg(host_kubeconfig)
            .arg("--storage")
            .arg(format!("sqlite://{}", dir.join("pedia.db").display()))
            .env("RUST_LOG", "info,pedia_apiserver=debug")
            .spawn()
            .unwrap(),
    )
}

/// A kubeconfig with contexts `pedia` (all clusters) and one per member, each on `base`.
fn search_kubeconfig(path: &Path, base: &str, token: &str, members: &[&str]) {
    let mut clusters = vec![
        json!({"name": "pedia", "cluster": {"server": format!("{base}/apis/clusterpedia.io/v1beta1/resources"), "insecure-skip-tls-verify": true}}),
    ];
    let mut contexts = vec![json!({"name": "pedia", "context": {"cluster": "pedia", "user": "u"}})];
    for m in members {
        clusters.push(json!({"name": m, "cluster": {"server": format!("{base}/apis/clusterpedia.io/v1beta1/resources/clusters/{m}"), "insecure-skip-tls-verify": true}}));
        contexts.push(json!({"name": m, "context": {"cluster": m, "user": "u"}}));
    }
    let user = json!({"token": token});
    let kc = json!({"apiVersion": "v1", "kind": "Config", "clusters": clusters, "contexts": contexts,
                    "users": [{"name": "u", "user": user}], "current-context": "pedia"});
    std::fs::write(path, serde_json::to_string(&kc).unwrap()).unwrap();
}

fn pedia_cluster(m: &FleetCluster) -> String {
    json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": m.name},
        "spec": {"apiserver": m.server.url(), "caData": base64(m.server.ca_pem().unwrap().as_bytes()),
                 "tokenData": base64(m.token.as_bytes()),
                 "syncResources": [{"group": "", "resources": ["pods", "configmaps", "namespaces"], "eventsInvolvedResources": ["pods"]},
                                   {"group": "apps", "resources": ["deployments"]},
                                   {"group": "example.com", "resources": ["widgets"]}]}})
    .to_string()
}

async fn member_items(sim: &KubeSim, path: &str) -> Vec<Value> {
    let (code, v) = sim.request(Method::GET, path, None).await;
    assert!(code.is_success(), "{path}: {v}");
    v["items"].as_array().unwrap().clone()
}

fn key(o: &Value) -> (String, String) {
    let m = &o["metadata"];
    (m["namespace"].as_str().unwrap_or_default().to_owned(), m["name"].as_str().unwrap().to_owned())
}

/// `cluster/namespace/name` of every item of a kubectl JSON list.
fn names(list: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(list).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            format!(
                "{}/{}/{}",
                m["annotations"]["shadow.clusterpedia.io/cluster-name"].as_str().unwrap(),
                m["namespace"].as_str().unwrap_or_default(),
                m["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// Rows of a kubectl table, split on runs of spaces.
fn rows(table: &str) -> Vec<Vec<String>> {
    table.lines().map(|l| l.split_whitespace().map(str::to_owned).collect()).collect()
}

async fn raw(k: &Kubectl, path: &str) -> (bool, String) {
    let (ok, out, err) = k.run(&["get", "--raw", path], None).await;
    (ok, if ok { out } else { err })
}

/// The Python `kubernetes` client watching configmaps (`fixtures/watch_configmaps.py`).
struct PyWatch {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl PyWatch {
    /// Starts the watch and waits until it has listed.
    async fn start(python_path: &Path, args: &[&str]) -> PyWatch {
        let mut child = Command::new("python3")
            .arg(common::repo().join("operator/tests/fixtures/watch_configmaps.py"))
            .args(args)
            .env("PYTHONPATH", python_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap();
        assert_eq!(first.as_deref(), Some("ready"));
        PyWatch { child, lines }
    }

    /// Reads to the end: how often each configmap named `prefix*` was ADDED, and the client's
    /// closing summary (`watches`, `broken`). Fails when the client did.
    async fn finish(mut self, prefix: &str) -> (BTreeMap<String, usize>, Value) {
        let mut events: BTreeMap<String, usize> = BTreeMap::new();
        let mut summary = Value::Null;
        while let Some(line) =
            tokio::time::timeout(Duration::from_secs(30), self.lines.next_line()).await.unwrap().unwrap()
        {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("watches").is_some() {
                summary = v;
            } else if v["type"] == "ADDED" && v["name"].as_str().unwrap().starts_with(prefix) {
                *events.entry(v["name"].as_str().unwrap().to_owned()).or_default() += 1;
            }
        }
        assert!(self.child.wait().await.unwrap().success(), "the Python watch failed");
        (events, summary)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_searches_every_member_through_pedia() {
    let dir = std::env::temp_dir().join(format!("pedia-search-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fleet = fleet::start(2, &dir.join("fleet"), SeedSize::default()).await.unwrap();
    let members = &fleet.members;
    let (host, host_server, host_kc) = common::search_host(&dir).await;
    let admin = Kubectl::new(host_kc.clone());
    admin.ok(&["apply", "--server-side", "-f", common::repo().join("crds").to_str().unwrap()], None).await;
    admin.apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}).to_string()).await;
    for m in members {
        admin.apply(&pedia_cluster(m)).await;
    }
    let port = free_port();
    let _pedia = start_pedia(&host_kc, &dir, port);
    let base = format!("https://127.0.0.1:{port}");
    let member_names = ["member-1", "member-2"];
    search_kubeconfig(&dir.join("alice.kubeconfig"), &base, "alice-token", &member_names);
    let alice = Kubectl::new(dir.join("alice.kubeconfig"));

    // Every pod of every member, with CLUSTER.
    let mut want: BTreeSet<String> = BTreeSet::new();
    for m in members {
        for p in member_items(&m.sim, "/api/v1/pods").await {
            let (ns, name) = key(&p);
            want.insert(format!("{}/{ns}/{name}", m.name));
        }
    }
    assert!(want.len() >= 16, "the fleet has pods: {want:?}");
    until("pedia serves every pod", 90, || async {
        let (ok, out, err) = alice.run(&["get", "pods", "-A", "-o", "json"], None).await;
        if !ok {
            return Err(err);
        }
        let got: BTreeSet<String> = names(&out).into_iter().collect();
        if got == want { Ok(()) } else { Err(format!("got {} of {}", got.len(), want.len())) }
    })
    .await;
    let table = alice.ok(&["get", "pods", "-A"], None).await;
    assert_eq!(rows(&table)[0], ["NAMESPACE", "CLUSTER", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(rows(&table).len(), want.len() + 1);

    // `-o wide` equals the member's own printer, column by column (AGE aside).
    let wide = alice.ok(&["--context", "member-1", "get", "pods", "-A", "-o", "wide"], None).await;
    let own = Kubectl::new(members[0].kubeconfig.clone()).ok(&["get", "pods", "-A", "-o", "wide"], None).await;
    let (wide, own) = (rows(&wide), rows(&own));
    assert_eq!(wide[0][0..2], ["NAMESPACE", "CLUSTER"]);
    assert_eq!(wide[0][2..], own[0][1..], "the same columns after CLUSTER");
    let strip_age = |r: &[String], age: usize| -> Vec<String> {
        r.iter().enumerate().filter(|(i, _)| *i != age).map(|(_, c)| c.clone()).collect()
    };
    let ours: BTreeSet<Vec<String>> = wide[1..].iter().map(|r| strip_age(&[&r[0..1], &r[2..]].concat(), 5)).collect();
    let theirs: BTreeSet<Vec<String>> = own[1..].iter().map(|r| strip_age(r, 5)).collect();
    assert_eq!(ours, theirs);
    assert!(wide[1..].iter().all(|r| r[1] == "member-1"));

    // Chunked listing returns every object exactly once.
    let chunked = names(&alice.ok(&["get", "pods", "-A", "--chunk-size=7", "-o", "json"], None).await);
    assert_eq!(chunked.len(), want.len());
    assert_eq!(chunked.iter().cloned().collect::<BTreeSet<_>>(), want);

    // Search labels.
    let only = |prefix: &str| want.iter().filter(|w| w.starts_with(prefix)).cloned().collect::<BTreeSet<_>>();
    let search = |sel: &str| {
        let alice = &alice;
        let sel = sel.to_owned();
        async move { names(&alice.ok(&["get", "pods", "-A", "-l", &sel, "-o", "json"], None).await) }
    };
    let m2: BTreeSet<String> = search("search.clusterpedia.io/clusters=member-2").await.into_iter().collect();
    assert_eq!(m2, only("member-2/"));
    let not_m2: BTreeSet<String> = search("search.clusterpedia.io/clusters!=member-2").await.into_iter().collect();
    assert_eq!(not_m2, only("member-1/"), "!= excludes");
    let ns0: BTreeSet<String> = search("search.clusterpedia.io/namespaces=shop-0").await.into_iter().collect();
    assert_eq!(ns0, want.iter().filter(|w| w.contains("/shop-0/")).cloned().collect());
    let one = want.iter().next().unwrap().clone();
    let one_name = one.rsplit('/').next().unwrap();
    let named = search(&format!("search.clusterpedia.io/names={one_name}")).await;
    assert_eq!(named, std::slice::from_ref(&one));
    let ordered = search("search.clusterpedia.io/orderby=name_desc").await;
    let pod_names: Vec<&str> = ordered.iter().map(|n| n.rsplit('/').next().unwrap()).collect();
    let mut sorted = pod_names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(pod_names, sorted, "orderby name_desc");
    let fuzzy: BTreeSet<String> = search("internalstorage.clusterpedia.io/fuzzy-name=web").await.into_iter().collect();
    assert_eq!(fuzzy, want.iter().filter(|w| w.rsplit('/').next().unwrap().contains("web")).cloned().collect());
    // Owner: the pods of one ReplicaSet of member-1.
    let pod = member_items(&members[0].sim, "/api/v1/pods").await.remove(0);
    let owner = pod["metadata"]["ownerReferences"][0]["uid"].as_str().unwrap().to_owned();
    let owned =
        search(&format!("search.clusterpedia.io/clusters=member-1,search.clusterpedia.io/owner-uid={owner}")).await;
    let want_owned: Vec<String> = member_items(&members[0].sim, "/api/v1/pods")
        .await
        .iter()
        .filter(|p| p["metadata"]["ownerReferences"][0]["uid"] == owner.as_str())
        .map(|p| format!("member-1/{}/{}", key(p).0, key(p).1))
        .collect();
    assert_eq!(owned.iter().cloned().collect::<BTreeSet<_>>(), want_owned.into_iter().collect());

    // Label and field selectors, against the members' own answers.
    let mut want_web: BTreeSet<String> = BTreeSet::new();
    for m in members {
        let path = "/api/v1/pods?labelSelector=app.kubernetes.io%2Fname%3Dweb%2Ctier%21%3Ddata&fieldSelector=status.phase%3DRunning";
        for p in member_items(&m.sim, path).await {
            want_web.insert(format!("{}/{}/{}", m.name, key(&p).0, key(&p).1));
        }
    }
    assert!(!want_web.is_empty());
    let web = names(
        &alice
            .ok(
                &[
                    "get",
                    "pods",
                    "-A",
                    "-l",
                    "app.kubernetes.io/name=web,tier!=data",
                    "--field-selector",
                    "status.phase=Running",
                    "-o",
                    "json",
                ],
                None,
            )
            .await,
    );
    assert_eq!(web.into_iter().collect::<BTreeSet<_>>(), want_web);

    // Per-cluster discovery, and one object through a cluster shortcut.
    let resources = alice.ok(&["--context", "member-1", "api-resources"], None).await;
    let resources = rows(&resources);
    assert!(resources.iter().any(|r| r[0] == "pods" && r[1] == "po"), "{resources:?}");
    assert!(resources.iter().any(|r| r[0] == "deployments" && r[1] == "deploy" && r[2] == "apps/v1"));
    let (ns, name) = key(&pod);
    let got = alice.ok(&["--context", "member-1", "get", "pod", &name, "-n", &ns, "-o", "json"], None).await;
    let got: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["metadata"]["uid"], pod["metadata"]["uid"]);
    assert_eq!(got["metadata"]["annotations"]["shadow.clusterpedia.io/cluster-name"], "member-1");
    let (ok, _, err) = alice.run(&["get", "pod", &name, "-n", &ns], None).await;
    assert!(!ok && err.contains("please specify the cluster name"), "{err}");
    let all = alice.ok(&["--context", "member-2", "get", "all", "-A"], None).await;
    assert!(all.contains("pod/") && all.contains("deployment.apps/"), "{all}");

    // Custom resources: the member CRD's printer columns after CLUSTER, values as the member shows them.
    let mut want_widgets = 0;
    for m in members {
        want_widgets += member_items(&m.sim, "/apis/example.com/v1/widgets").await.len();
    }
    assert!(want_widgets > 0, "the fleet has widgets");
    let widgets = until("pedia serves every widget", 30, || async {
        let out = alice.ok(&["get", "widgets", "-A"], None).await;
        if rows(&out).len() == want_widgets + 1 { Ok(out) } else { Err(out) }
    })
    .await;
    assert_eq!(rows(&widgets)[0], ["NAMESPACE", "CLUSTER", "NAME", "SIZE", "PHASE", "AGE"]);
    let own = Kubectl::new(members[0].kubeconfig.clone()).ok(&["get", "widgets", "-A"], None).await;
    let own_rows: BTreeSet<Vec<String>> = rows(&own)[1..].iter().map(|r| r[..4].to_vec()).collect();
    let ours: BTreeSet<Vec<String>> =
        rows(&widgets)[1..].iter().filter(|r| r[1] == "member-1").map(|r| [&r[0..1], &r[2..5]].concat()).collect();
    assert_eq!(ours, own_rows, "NAMESPACE NAME SIZE PHASE as on the member");

    // `kubectl explain` from pedia's OpenAPI: built-in kinds and the member CRD's schema.
    let explained = alice.ok(&["explain", "pods.spec.containers"], None).await;
    assert!(explained.contains("image") && explained.contains("<[]Container>"), "{explained}");
    let explained = alice.ok(&["--context", "member-1", "explain", "widgets.spec"], None).await;
    assert!(explained.contains("size") && explained.contains("color"), "{explained}");
    // And from the v2 document (gnostic protobuf), which kubectl reads for what v3 cannot cover.
    let explained = alice.ok(&["explain", "deployments.spec.replicas", "--output=plaintext-openapiv2"], None).await;
    assert!(explained.contains("KIND:     Deployment") && explained.contains("<integer>"), "{explained}");
    let explained =
        alice.ok(&["--context", "member-1", "explain", "widgets.spec", "--output=plaintext-openapiv2"], None).await;
    assert!(explained.contains("size"), "the member CRD's schema in v2: {explained}");

    // Events ride along with injectEvents (URL parameter and search label), for get and list.
    let event_reasons = |o: &Value| -> Vec<String> {
        let text = o["metadata"]["annotations"]["shadow.clusterpedia.io/events"].as_str().unwrap_or("null");
        let events: Value = serde_json::from_str(text).unwrap();
        events
            .as_array()
            .map(|a| a.iter().map(|e| e["reason"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let with_events = until("pedia stores the pods' events", 30, || async {
        let path = format!(
            "/apis/clusterpedia.io/v1beta1/resources/clusters/member-1/api/v1/namespaces/{ns}/pods/{name}?injectEvents=true"
        );
        let (ok, out) = raw(&alice, &path).await;
        let got: Value = serde_json::from_str(&out).map_err(|e| format!("{ok} {out}: {e}"))?;
        if event_reasons(&got).contains(&"Scheduled".to_owned()) { Ok(got) } else { Err(out) }
    })
    .await;
    assert_eq!(with_events["metadata"]["uid"], pod["metadata"]["uid"]);
    // Every seeded pod has its one event (their events may still be on their way).
    until("a list carries every pod's events", 30, || async {
        let listed = alice
            .ok(&["get", "pods", "-A", "-l", "search.clusterpedia.io/inject-events=true", "-o", "json"], None)
            .await;
        let listed: Value = serde_json::from_str(&listed).unwrap();
        let items = listed["items"].as_array().unwrap();
        let without: Vec<&Value> = items.iter().filter(|p| event_reasons(p) != ["Scheduled"]).collect();
        if items.len() == want.len() && without.is_empty() {
            Ok(())
        } else {
            Err(format!("{} of {} without", without.len(), items.len()))
        }
    })
    .await;
    let plain = alice.ok(&["--context", "member-1", "get", "pod", &name, "-n", &ns, "-o", "json"], None).await;
    assert!(!plain.contains("shadow.clusterpedia.io/events"), "no events unless asked");
    // A watch's events carry them too (its initial ADDED events here; the watch ends after 2 s).
    let (ok, watched) = raw(
        &alice,
        "/apis/clusterpedia.io/v1beta1/resources/clusters/member-1/api/v1/pods?watch=1&injectEvents=true&timeoutSeconds=2",
    )
    .await;
    assert!(ok, "{watched}");
    let added: Vec<Value> = watched.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect();
    assert!(!added.is_empty() && added.iter().all(|e| e["type"] == "ADDED"), "{watched}");
    assert!(added.iter().all(|e| event_reasons(&e["object"]) == ["Scheduled"]), "{watched}");

    // Collection resources.
    let (ok, workloads) = raw(&alice, "/apis/clusterpedia.io/v1beta1/collectionresources/workloads").await;
    assert!(ok, "{workloads}");
    let workloads: Value = serde_json::from_str(&workloads).unwrap();
    let mut want_deploys = 0;
    for m in members {
        want_deploys += member_items(&m.sim, "/apis/apps/v1/deployments").await.len();
    }
    assert_eq!(workloads["items"].as_array().unwrap().len(), want_deploys);
    assert_eq!(workloads["resourceTypes"][0]["resource"], "deployments");
    let (ok, any) =
        raw(&alice, "/apis/clusterpedia.io/v1beta1/collectionresources/any?resources=apps/deployments,/pods&limit=5")
            .await;
    assert!(ok, "{any}");
    let any: Value = serde_json::from_str(&any).unwrap();
    assert_eq!(any["items"].as_array().unwrap().len(), 5);
    assert!(any["continue"].is_string(), "a full page has a continue token");
    let list = alice.ok(&["get", "--raw", "/apis/clusterpedia.io/v1beta1/collectionresources"], None).await;
    assert!(list.contains("kuberesources"), "{list}");

    // Malformed parameters: 400 with the parameter named.
    for (query, needle) in [
        ("limit=abc", "limit"),
        ("labelSelector=search.clusterpedia.io%2Fnope%3D1", "unknown search label"),
        ("watch=1&resourceVersion=abc", "resourceVersion"),
        ("orderby=name%3B%20DROP%20TABLE%20resources", "orderby"),
        ("whereSQL=1%3D1", "whereSQL"),
        ("since=yesterday", "since"),
        ("orderby=x", "orderby"),
        ("orderby=x", "pods (v1) have no field x"),
        ("fieldSelector=status.phaze%3DRunning", "fieldSelector"),
        ("fieldSelector=status.phaze%3DRunning", "pods (v1) have no field status.phaze"),
    ] {
        let (ok, err) = raw(&alice, &format!("/apis/clusterpedia.io/v1beta1/resources/api/v1/pods?{query}")).await;
        assert!(!ok && (err.contains("BadRequest") || err.contains("400")), "{query}: {err}");
        assert!(err.contains(needle), "{query}: {err}");
    }
    // Paths are checked against the kind's schema: the member CRD's for custom resources.
    let (ok, err) =
        raw(&alice, "/apis/clusterpedia.io/v1beta1/resources/apis/example.com/v1/widgets?orderby=spec.colour").await;
    assert!(!ok && err.contains("widgets (example.com/v1) have no field spec.colour"), "{err}");
    for path in ["/apis/example.com/v1/widgets?orderby=spec.size%20desc", "/api/v1/pods?orderby=status.podIP&limit=3"] {
        let (ok, out) = raw(&alice, &format!("/apis/clusterpedia.io/v1beta1/resources{path}")).await;
        assert!(ok && out.contains("\"items\""), "{path}: {out}");
    }
    let (ok, err) = raw(&alice, "/apis/clusterpedia.io/v1beta1/collectionresources/any").await;
    assert!(!ok && err.contains("groups"), "{err}");
    let (ok, err) = raw(&alice, "/apis/clusterpedia.io/v1beta1/collectionresources/nope").await;
    assert!(!ok && err.contains("NotFound"), "{err}");
    let (ok, err) = raw(&alice, "/apis/clusterpedia.io/v1beta1/resources/clusters/nope/api/v1/pods").await;
    assert!(!ok && err.contains("could not find the requested cluster"), "{err}");

    // Unauthenticated: 401; a user the host denies: 403.
    let mut config = kube::Config::new(base.parse().unwrap());
    config.accept_invalid_certs = true;
    let anonymous = kube::Client::try_from(config).unwrap();
    let request = http::Request::get("/apis/clusterpedia.io/v1beta1/resources/api/v1/pods").body(Vec::new()).unwrap();
    match anonymous.request::<Value>(request).await {
        Err(kube::Error::Api(status)) => assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized")),
        other => panic!("an anonymous request: {other:?}"),
    }
    search_kubeconfig(&dir.join("eve.kubeconfig"), &base, "eve-token", &[]);
    let eve = Kubectl::new(dir.join("eve.kubeconfig"));
    let (ok, err) = raw(&eve, "/apis/clusterpedia.io/v1beta1/resources/api/v1/pods").await;
    assert!(!ok && err.contains("Forbidden") && err.contains("eve"), "{err}");

    // `kubectl get -w` sees a change made on a member.
    let mut watch = tokio::process::Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(&alice.kubeconfig)
        .args(["get", "configmaps", "-A", "-w", "-o", "name"])
        .env("HOME", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(watch.stdout.take().unwrap()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    members[1]
        .sim
        .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen-by-watch", "namespace": "default"}}))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("seen-by-watch") {
                return;
            }
        }
        panic!("kubectl get -w ended without the change");
    })
    .await
    .expect("kubectl get -w saw the member's change");
    drop(watch);

    // kube-rs: a watcher across re-watches (timeoutSeconds=2 ends each watch) gets every change
    // exactly once.
    let mut config = kube::Config::new(format!("{base}/apis/clusterpedia.io/v1beta1/resources").parse().unwrap());
    config.accept_invalid_certs = true;
    config.auth_info.token = Some("alice-token".to_owned().into());
    let client = kube::Client::try_from(config).unwrap();
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::all(client);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let task = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default().timeout(2)).boxed();
            while let Some(e) = events.next().await {
                if let Ok(watcher::Event::Apply(cm)) = e {
                    seen.lock().unwrap().push(cm.metadata.name.unwrap_or_default());
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..6 {
        let m = &members[i % 2];
        m.sim
            .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("rewatch-{i}"), "namespace": "default"}}))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    let counts = until("the watcher saw every change", 30, || async {
        let seen = seen.lock().unwrap().clone();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for s in seen.iter().filter(|s| s.starts_with("rewatch-")) {
            *counts.entry(s.clone()).or_default() += 1;
        }
        if counts.len() == 6 { Ok(counts) } else { Err(format!("{counts:?}")) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    task.abort();
    assert!(counts.values().all(|n| *n == 1), "each change exactly once: {counts:?}");

    // The Python `kubernetes` client (PyPI, installed by `make tools`): list, then watches that
    // end every two seconds and resume from the last resourceVersion; every change exactly once.
    let python_path = common::repo().join(".tools/python");
    assert!(python_path.join("kubernetes").is_dir(), "the Python kubernetes client is missing: run `make tools`");
    let url = format!("{base}/apis/clusterpedia.io/v1beta1/resources");
    let py = PyWatch::start(&python_path, &[&url, "alice-token", "10"]).await;
    for i in 0..5 {
        members[i % 2]
            .sim
            .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("py-{i}"), "namespace": "default"}}))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let (py_events, summary) = py.finish("py-").await;
    let watches = summary["watches"].as_u64().unwrap_or_default();
    assert!(watches >= 3, "the Python client re-watched ({watches} watches)");
    assert_eq!(py_events.len(), 5, "{py_events:?}");
    assert!(py_events.values().all(|n| *n == 1), "each change exactly once: {py_events:?}");

    // Dropped connections: kube-rs and the Python client watch through a TCP proxy that cuts
    // every live connection after each change; both resume from their last resourceVersion and
    // get every change exactly once.
    let proxy = common::Proxy::start(&format!("127.0.0.1:{port}")).await;
    let proxied = format!("https://127.0.0.1:{}/apis/clusterpedia.io/v1beta1/resources", proxy.port);
    let mut config = kube::Config::new(proxied.parse().unwrap());
    config.accept_invalid_certs = true;
    config.auth_info.token = Some("alice-token".to_owned().into());
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::all(kube::Client::try_from(config).unwrap());
    let cut_seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let errors = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let task = {
        let (seen, errors) = (cut_seen.clone(), errors.clone());
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(e) = events.next().await {
                match e {
                    Ok(watcher::Event::Apply(cm)) => seen.lock().unwrap().push(cm.metadata.name.unwrap_or_default()),
                    Ok(_) => {}
                    Err(_) => {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };
    let py = PyWatch::start(&python_path, &[proxied.as_str(), "alice-token", "12", "300"]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..5 {
        members[i % 2]
            .sim
            .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cut-{i}"), "namespace": "default"}}))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        proxy.cut().await;
    }
    let counts = until("the kube-rs watcher saw every change across cut connections", 30, || async {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for s in cut_seen.lock().unwrap().iter().filter(|s| s.starts_with("cut-")) {
            *counts.entry(s.clone()).or_default() += 1;
        }
        if counts.len() == 5 { Ok(counts) } else { Err(format!("{counts:?}")) }
    })
    .await;
    let (py_events, summary) = py.finish("cut-").await;
    let broken = summary["broken"].as_u64().unwrap_or_default();
    task.abort();
    assert!(errors.load(std::sync::atomic::Ordering::Relaxed) >= 3, "kube-rs's connection was cut");
    assert!(counts.values().all(|n| *n == 1), "kube-rs: each change exactly once: {counts:?}");
    assert!(broken >= 3, "the Python client's connection was cut ({broken} times)");
    assert_eq!(py_events.len(), 5, "{py_events:?}");
    assert!(py_events.values().all(|n| *n == 1), "Python: each change exactly once: {py_events:?}");

    // The aggregated path: kubectl -> host -> pedia, as alice (allowed) and eve (denied).
    host.aggregate("clusterpedia.io", "v1beta1", &base).await.unwrap();
    let host_base = host_server.url();
    search_kubeconfig(&dir.join("agg-alice.kubeconfig"), &host_base, "alice-token", &member_names);
    let agg = Kubectl::new(dir.join("agg-alice.kubeconfig"));
    let via_host = names(&agg.ok(&["get", "pods", "-A", "-o", "json"], None).await);
    assert_eq!(via_host.into_iter().collect::<BTreeSet<_>>(), want);
    let shortcut = agg.ok(&["--context", "member-2", "get", "deployments", "-A"], None).await;
    assert!(rows(&shortcut).iter().skip(1).all(|r| r[1] == "member-2"), "{shortcut}");
    search_kubeconfig(&dir.join("agg-eve.kubeconfig"), &host_base, "eve-token", &[]);
    let agg_eve = Kubectl::new(dir.join("agg-eve.kubeconfig"));
    let (ok, err) = raw(&agg_eve, "/apis/clusterpedia.io/v1beta1/resources/api/v1/pods").await;
    assert!(!ok && err.contains("Forbidden"), "{err}");
    // The host's OpenAPI takes pedia's own group from pedia, as kube-aggregator does.
    let explained = admin.ok(&["explain", "collectionresources.resourceTypes"], None).await;
    assert!(explained.contains("GROUP:      clusterpedia.io") && explained.contains("resource"), "{explained}");

    let _ = std::fs::remove_dir_all(&dir);
}
