//! The Helm chart (`charts/pedia`) with the real helm 4 (`make tools`): it lints and renders for
//! each storage choice and for several replicas, refuses what cannot work with a message, its
//! CRDs are `crds/`, the rendered containers' arguments are ones pedia accepts, and the rendered
//! manifests apply to a kubesim host with kubectl, and so do the plain manifests in `deploy/`
//! (`kubectl apply -k`), which are the chart rendered.
#![allow(clippy::unwrap_used)] // test code may panic

mod common;

use std::path::PathBuf;

use common::Kubectl;
use serde_json::{Value, json};

fn helm() -> PathBuf {
    let helm = common::repo().join(".tools/bin/helm");
    assert!(helm.is_file(), "helm is missing at {}: run `make tools`", helm.display());
    helm
}

fn chart() -> PathBuf {
    common::repo().join("charts/pedia")
}

/// `helm template` with `--set` values: the rendered objects, or helm's error output.
fn render(sets: &[&str]) -> Result<Vec<Value>, String> {
    let mut cmd = std::process::Command::new(helm());
    cmd.args(["template", "pedia", chart().to_str().unwrap(), "--namespace", "pedia-system"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Ok(serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect())
}

fn lint(sets: &[&str]) {
    let mut cmd = std::process::Command::new(helm());
    cmd.args(["lint", "--strict", chart().to_str().unwrap()]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "helm lint {sets:?}: {}", String::from_utf8_lossy(&out.stdout));
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn container<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    let d = find(objects, "Deployment")[0];
    d["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()
}

fn args(c: &Value) -> Vec<String> {
    c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect()
}

/// pedia parses the arguments (clap stops at `--help` only when every argument before it is known).
fn pedia_accepts(args: &[String]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pedia")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "pedia refuses {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const POSTGRES: [&str; 3] =
    ["storage.type=postgres", "storage.host=db.example", "storage.password.existingSecret=pedia-db"];

#[test]
fn the_chart_crds_are_the_generated_ones() {
    let names = |dir: PathBuf| {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    let (ours, chart_crds) = (common::repo().join("crds"), chart().join("crds"));
    assert_eq!(names(ours.clone()), names(chart_crds.clone()), "run `make crds`");
    for n in names(ours.clone()) {
        assert_eq!(
            std::fs::read(ours.join(&n)).unwrap(),
            std::fs::read(chart_crds.join(&n)).unwrap(),
            "charts/pedia/crds/{n} is stale: run `make crds`"
        );
    }
}

#[test]
fn the_chart_lints_and_renders_each_storage_choice() {
    lint(&[]);
    lint(&POSTGRES);
    lint(&["storage.type=mysql", "storage.host=db", "replicas=3"]);

    // SQLite (the default): a PVC, one replica, recreated rather than rolled.
    let sqlite = render(&[]).unwrap();
    assert_eq!(find(&sqlite, "PersistentVolumeClaim").len(), 1);
    let deployment = find(&sqlite, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let operator = container(&sqlite, "operator");
    let apiserver = container(&sqlite, "apiserver");
    assert!(args(operator).contains(&"--storage=sqlite:///data/pedia.db".to_owned()));
    assert!(args(apiserver).contains(&"--storage=sqlite:///data/pedia.db".to_owned()));
    pedia_accepts(&args(operator));
    pedia_accepts(&args(apiserver));
    for c in [operator, apiserver] {
        let sc = &c["securityContext"];
        assert_eq!((sc["runAsNonRoot"].as_bool(), sc["readOnlyRootFilesystem"].as_bool()), (Some(true), Some(true)));
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert!(
            c["livenessProbe"]["httpGet"]["path"] == "/healthz" && c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        );
    }
    // The APIService trusts the CA that signed the serving certificate the sidecar mounts.
    let api_service = find(&sqlite, "APIService")[0];
    assert_eq!(api_service["metadata"]["name"], "v1beta1.clusterpedia.io");
    let tls = find(&sqlite, "Secret").into_iter().find(|s| s["type"] == "kubernetes.io/tls").unwrap();
    assert_eq!(api_service["spec"]["caBundle"], tls["data"]["ca.crt"]);
    assert_eq!(api_service["spec"]["service"]["name"], "pedia-apiserver");
    assert!(find(&sqlite, "ServiceMonitor").is_empty());
    // Your own serving Secret and its CA: no generated Secret, the APIService trusts that CA.
    let own = render(&["apiserver.tls.existingSecret=my-tls", "apiserver.tls.caBundle=MY-CA-PEM"]).unwrap();
    assert!(find(&own, "Secret").is_empty());
    assert_eq!(find(&own, "APIService")[0]["spec"]["caBundle"], "TVktQ0EtUEVN");
    let volumes = &find(&own, "Deployment")[0]["spec"]["template"]["spec"]["volumes"];
    assert!(volumes.as_array().unwrap().iter().any(|v| v["secret"]["secretName"] == "my-tls"));
    assert_eq!(find(&sqlite, "PodDisruptionBudget").len(), 1);

    // PostgreSQL: Clusterpedia's config file, the password from an existing Secret, several replicas.
    let pg = render(&[&POSTGRES[..], &["replicas=2", "serviceMonitor.enabled=true"]].concat()).unwrap();
    assert!(find(&pg, "PersistentVolumeClaim").is_empty());
    assert_eq!(find(&pg, "Deployment")[0]["spec"]["replicas"], 2);
    let config = find(&pg, "ConfigMap")[0]["data"]["internalstorage-config.yaml"].as_str().unwrap();
    let config: Value = serde_yaml::from_str(config).unwrap();
    assert_eq!(
        config,
        json!({"type": "postgres", "host": "db.example", "port": 5432, "user": "pedia", "database": "pedia"})
    );
    let operator = container(&pg, "operator");
    assert!(args(operator).contains(&"--storage-config=/etc/pedia/storage/internalstorage-config.yaml".to_owned()));
    assert!(args(operator).contains(&"--leader-elect=true".to_owned()));
    pedia_accepts(&args(operator));
    let env = operator["env"].as_array().unwrap();
    let password = env.iter().find(|e| e["name"] == "DB_PASSWORD").unwrap();
    assert_eq!(password["valueFrom"]["secretKeyRef"], json!({"name": "pedia-db", "key": "password"}));
    assert_eq!(find(&pg, "ServiceMonitor").len(), 1);
    let mysql = render(&["storage.type=mysql", "storage.host=db"]).unwrap();
    let config = find(&mysql, "ConfigMap")[0]["data"]["internalstorage-config.yaml"].as_str().unwrap();
    assert!(config.contains("port: 3306"), "{config}");
}

#[test]
fn what_cannot_work_is_refused_with_a_message() {
    let e = render(&["replicas=2"]).unwrap_err();
    assert!(e.contains("replicas > 1 needs a SQL server"), "{e}");
    let e = render(&["storage.type=postgres"]).unwrap_err();
    assert!(e.contains("storage.host is required"), "{e}");
    let e = render(&["storage.type=etcd"]).unwrap_err();
    assert!(e.contains("/storage/type") && e.contains("sqlite"), "the schema names the field and the choices: {e}");
}

#[test]
fn the_plain_manifests_are_the_rendered_chart() {
    let out = std::process::Command::new(helm())
        .args(["template", "pedia", chart().to_str().unwrap(), "--namespace", "clusterpedia-system", "--include-crds"])
        .args(["--set", "apiserver.tls.selfSigned=true", "--set", "apiserver.apiService.insecureSkipTLSVerify=true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deployed = std::fs::read_to_string(common::repo().join("deploy/pedia.yaml")).unwrap();
    let body = deployed.split_once('\n').map(|(_, rest)| rest).unwrap_or_default();
    assert!(body == String::from_utf8(out.stdout).unwrap(), "deploy/pedia.yaml is stale: run `make deploy`");
    // A self-signed pedia needs an APIService that does not verify it: refused otherwise.
    let e = render(&["apiserver.tls.selfSigned=true"]).unwrap_err();
    assert!(e.contains("insecureSkipTLSVerify"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_manifests_apply_to_a_host() {
    let dir = std::env::temp_dir().join(format!("pedia-chart-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let kubesim::fleet::Fleet { host, .. } =
        kubesim::fleet::start(0, &dir, kubesim::seed::SeedSize::default()).await.unwrap();
    let k = Kubectl::new(host.kubeconfig.clone());
    k.ok(&["apply", "--server-side", "-f", chart().join("crds").to_str().unwrap()], None).await;
    host.sim
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pedia-system"}}))
        .await
        .unwrap();
    for sets in [vec![], POSTGRES.to_vec()] {
        // A stream of documents, as `helm template | kubectl apply -f -` sends it.
        let docs: Vec<String> = render(&sets).unwrap().iter().map(|o| serde_yaml::to_string(o).unwrap()).collect();
        let out = k.ok(&["apply", "-f", "-"], Some(&docs.join("---\n"))).await;
        assert!(out.contains("deployment.apps/pedia"), "{out}");
    }
    let d = k.get(&["deployment", "pedia", "-n", "pedia-system"]).await.unwrap();
    assert_eq!(d["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 2);
    // The plain manifests: `kubectl apply -k deploy/`.
    let out = k.ok(&["apply", "-k", common::repo().join("deploy").to_str().unwrap()], None).await;
    assert!(out.contains("namespace/clusterpedia-system") && out.contains("deployment.apps/pedia"), "{out}");
    let d = k.get(&["deployment", "pedia", "-n", "clusterpedia-system"]).await.unwrap();
    let apiserver = &d["spec"]["template"]["spec"]["containers"][1];
    assert!(!apiserver["args"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().starts_with("--tls-cert-file")));
}

/// The Dockerfile builds what the chart runs: `make image` tags `pedia:<workspace version>`, the
/// chart's default image is `image.repository:appVersion` with appVersion that same version, and
/// the final stage is the binary alone, as the non-root user the chart's securityContext expects.
/// (No Docker engine runs here: `make image` itself is not run.)
#[test]
fn the_image_is_named_and_built_as_the_chart_runs_it() {
    let repo = common::repo();
    let cargo = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    let version = cargo.lines().find_map(|l| l.strip_prefix("version = \"")).unwrap().trim_end_matches('"').to_owned();
    let chart_yaml: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap()).unwrap();
    assert_eq!(chart_yaml["appVersion"], json!(version), "the chart's appVersion is the workspace version");

    let objects = render(&[]).unwrap();
    assert_eq!(container(&objects, "operator")["image"], json!(format!("pedia:{version}")));
    assert_eq!(container(&objects, "apiserver")["image"], json!(format!("pedia:{version}")));
    let out = std::process::Command::new("make").args(["-s", "-n", "image"]).current_dir(&repo).output().unwrap();
    let make = String::from_utf8_lossy(&out.stdout);
    assert!(make.contains(&format!("docker build -t pedia:{version} .")), "{make}");

    let dockerfile = std::fs::read_to_string(repo.join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    assert!(stages.len() >= 2, "a build stage and a runtime stage");
    let last = stages.last().unwrap();
    assert!(last.starts_with("gcr.io/distroless/"), "a minimal base: {last}");
    let copies: Vec<&str> = last.lines().filter(|l| l.starts_with("COPY")).collect();
    assert_eq!(copies, ["COPY --from=build /out/pedia /usr/local/bin/pedia"], "the binary alone");
    let user = last.lines().find_map(|l| l.strip_prefix("USER ")).expect("a USER");
    let uid = user.split(':').next().unwrap();
    assert_ne!(uid, "0");
    let pod = &find(&objects, "Deployment")[0]["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(pod["runAsNonRoot"], true);
    assert_eq!(pod["fsGroup"].to_string(), uid, "the data volume belongs to the image's user");
    assert!(last.contains("ENTRYPOINT [\"/usr/local/bin/pedia\"]"));
}
