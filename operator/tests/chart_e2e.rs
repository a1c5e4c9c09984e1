//! The chart's containers run as the chart starts them: `helm template` (real helm 4) renders the
//! Deployment, and `pedia operator` and `pedia apiserver` start with its arguments, its
//! environment and its generated serving certificate (only pod paths and ports are mapped to the
//! test's), against a kubesim host and member. They reach Ready, the APIService's CA bundle
//! verifies the serving certificate, kubectl searches the member through the host's aggregated
//! path, and `/metrics` parses with the Prometheus project's own Python parser with every metric
//! docs/operations.md documents.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Kubectl, Pedia, free_port, pedia_command, until};
use kubesim::fleet;
use kubesim::kubeconfig::base64;
use kubesim::seed::SeedSize;
use serde_json::{Value, json};
use tokio::process::Command;

const NS: &str = "pedia-system";

fn render() -> Vec<Value> {
    let helm = common::repo().join(".tools/bin/helm");
    assert!(helm.is_file(), "helm is missing: run `make tools`");
    let chart = common::repo().join("charts/pedia");
    let out = std::process::Command::new(helm)
        .args(["template", "pedia", chart.to_str().unwrap(), "--namespace", NS])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// The container's arguments with the pod's paths and ports replaced by the test's. Every
/// argument naming a pod path or a listen address must be mapped: none runs unmapped.
fn mapped_args(container: &Value, map: &[(&str, String)]) -> Vec<String> {
    let args: Vec<String> =
        container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    args.into_iter()
        .map(|a| match map.iter().find(|(flag, _)| a.split('=').next() == Some(*flag)) {
            Some((flag, value)) => format!("{flag}={value}"),
            None => {
                assert!(
                    !a.contains("/data") && !a.contains("/etc/") && !a.contains("0.0.0.0") && !a.contains("8443"),
                    "unmapped: {a}"
                );
                a
            }
        })
        .collect()
}

fn env_of(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.to_owned(), e["value"].as_str()?.to_owned())))
        .collect()
}

fn spawn(args: &[String], env: &[(String, String)], kubeconfig: &Path, log: PathBuf) -> Pedia {
    Pedia(
        pedia_command(&log)
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("POD_NAME", "pedia-0")
            .spawn()
            .unwrap(),
    )
}

/// `curl --cacert` against the apiserver under the Service's DNS name: the APIService's CA
/// bundle verifies the chart's serving certificate.
async fn verified_readyz(ca: &Path, service_host: &str, port: u16) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{service_host}:{port}:127.0.0.1"))
        .arg(format!("https://{service_host}:{port}/readyz"))
        .output()
        .await
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Metric family and sample names of an OpenMetrics text, by prometheus_client's parser.
async fn parsed_metric_names(text: &str, dir: &Path) -> BTreeSet<String> {
    let python_path = common::repo().join(".tools/python");
    assert!(python_path.join("prometheus_client").is_dir(), "prometheus_client is missing: run `make tools`");
    let file = dir.join("metrics.txt");
    std::fs::write(&file, text).unwrap();
    let script = "import sys, json\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        names = set()\n\
        for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   names.add(f.name)\n\
        \x20   names.update(s.name for s in f.samples)\n\
        print(json.dumps(sorted(names)))\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .env("PYTHONPATH", &python_path)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "the OpenMetrics parser refused /metrics: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<String>>(&out.stdout).unwrap().into_iter().collect()
}

/// The metric names in docs/operations.md's table.
fn documented_metrics() -> Vec<String> {
    let doc = std::fs::read_to_string(common::repo().join("docs/operations.md")).unwrap();
    let names: Vec<String> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .map(|n| n.split('{').next().unwrap().to_owned())
        .filter(|n| n.contains('_'))
        .collect();
    assert!(names.len() >= 8, "docs/operations.md lists the metrics: {names:?}");
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_containers_serve_kubectl_through_the_host() {
    let dir = std::env::temp_dir().join(format!("pedia-chart-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let objects = render();
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    let by_name = |n: &str| containers.iter().find(|c| c["name"] == n).unwrap();
    let tls = objects.iter().find(|o| o["kind"] == "Secret" && o["type"] == "kubernetes.io/tls").unwrap();
    let apiservice = objects.iter().find(|o| o["kind"] == "APIService").unwrap();
    let service = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == apiservice["spec"]["service"]["name"]);
    assert!(service.is_some(), "the APIService names the chart's Service");
    for (file, key) in [("tls.crt", "tls.crt"), ("tls.key", "tls.key")] {
        std::fs::write(dir.join(file), base64_decode(tls["data"][key].as_str().unwrap())).unwrap();
    }
    std::fs::write(dir.join("ca.crt"), base64_decode(apiservice["spec"]["caBundle"].as_str().unwrap())).unwrap();

    let fleet = fleet::start(1, &dir.join("fleet"), SeedSize::default()).await.unwrap();
    let member = &fleet.members[0];
    let (sim, host_server, host_kc) = common::search_host(&dir).await;
    let admin = Kubectl::new(host_kc.clone());
    admin.ok(&["apply", "--server-side", "-f", common::repo().join("crds").to_str().unwrap()], None).await;
    admin.apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}).to_string()).await;

    let db = format!("sqlite://{}", dir.join("pedia.db").display());
    let (metrics_port, https_port) = (free_port(), free_port());
    let operator = mapped_args(
        by_name("operator"),
        &[("--storage", db.clone()), ("--metrics-bind-address", format!("127.0.0.1:{metrics_port}"))],
    );
    assert_eq!(operator[0], "operator");
    let apiserver = mapped_args(
        by_name("apiserver"),
        &[
            ("--storage", db),
            ("--secure-port", https_port.to_string()),
            ("--tls-cert-file", dir.join("tls.crt").display().to_string()),
            ("--tls-private-key-file", dir.join("tls.key").display().to_string()),
        ],
    );
    assert_eq!(apiserver[0], "apiserver");
    let _operator = spawn(&operator, &env_of(by_name("operator")), &host_kc, dir.join("operator.log"));
    let _apiserver = spawn(&apiserver, &env_of(by_name("apiserver")), &host_kc, dir.join("apiserver.log"));

    // Ready, as the probes see it; the serving certificate verifies with the APIService's CA.
    until("the operator is ready", 60, || async {
        common::http_get(metrics_port, "/readyz").await.filter(|b| b.contains("ok")).ok_or_else(|| "not yet".to_owned())
    })
    .await;
    let service_host = format!("{}.{NS}.svc", apiservice["spec"]["service"]["name"].as_str().unwrap());
    until("the apiserver is ready behind a verified certificate", 60, || async {
        verified_readyz(&dir.join("ca.crt"), &service_host, https_port).await
    })
    .await;

    // A member, then kubectl through the host's aggregated path.
    let group = apiservice["spec"]["group"].as_str().unwrap();
    let version = apiservice["spec"]["version"].as_str().unwrap();
    sim.aggregate(group, version, &format!("https://127.0.0.1:{https_port}")).await.unwrap();
    admin
        .apply(
            &json!({"apiVersion": "cluster.clusterpedia.io/v1alpha2", "kind": "PediaCluster", "metadata": {"name": "member-1"},
            "spec": {"apiserver": member.server.url(), "caData": base64(member.server.ca_pem().unwrap().as_bytes()),
                     "tokenData": base64(member.token.as_bytes()),
                     "syncResources": [{"group": "", "resources": ["pods"]}, {"group": "apps", "resources": ["deployments"]}]}})
            .to_string(),
        )
        .await;
    let (code, pods) = member.sim.request(http::Method::GET, "/api/v1/pods", None).await;
    assert!(code.is_success());
    let want: BTreeSet<String> =
        pods["items"].as_array().unwrap().iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect();
    assert!(!want.is_empty());
    let kc = dir.join("alice.kubeconfig");
    let server = format!("{}/apis/{group}/{version}/resources", host_server.url());
    std::fs::write(
        &kc,
        json!({"apiVersion": "v1", "kind": "Config", "current-context": "pedia",
               "clusters": [{"name": "pedia", "cluster": {"server": server, "certificate-authority-data": base64(host_server.ca_pem().unwrap().as_bytes())}}],
               "contexts": [{"name": "pedia", "context": {"cluster": "pedia", "user": "alice"}}],
               "users": [{"name": "alice", "user": {"token": "alice-token"}}]})
        .to_string(),
    )
    .unwrap();
    let alice = Kubectl::new(kc);
    until("kubectl through the host lists the member's pods", 90, || async {
        let (ok, out, err) = alice.run(&["get", "pods", "-A", "-o", "json"], None).await;
        if !ok {
            return Err(err);
        }
        let v: Value = serde_json::from_str(&out).unwrap();
        let got: BTreeSet<String> =
            v["items"].as_array().unwrap().iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect();
        if got == want { Ok(()) } else { Err(format!("{} of {}", got.len(), want.len())) }
    })
    .await;
    let table = alice.ok(&["get", "deployments", "-A"], None).await;
    assert!(table.lines().next().unwrap().contains("CLUSTER") && table.contains("member-1"), "{table}");

    // /metrics: valid OpenMetrics with every documented metric.
    let metrics = until("the sync metrics are reported", 30, || async {
        let text = common::http_get(metrics_port, "/metrics").await.ok_or_else(|| "no answer".to_owned())?;
        if text.contains("pedia_cluster_healthy{") { Ok(text) } else { Err("not yet".to_owned()) }
    })
    .await;
    let names = parsed_metric_names(&metrics, &dir).await;
    for documented in documented_metrics() {
        assert!(names.contains(&documented), "{documented} is documented but not served: {names:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
