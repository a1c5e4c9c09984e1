//! Printers of workload controllers as kube-apiserver has them: deployments, replica sets,
//! replication controllers, stateful sets, daemon sets, jobs, cron jobs, pod templates,
//! autoscalers, disruption budgets, controller revisions.

use crate::table::at;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{self, bool_ptr, containers, int, items, label_selector, labels, quantity, since, text, time};
use super::{Cell, age, func, integer, name};
use crate::table::{Column, human_duration};

/// Containers and Images of a pod template at `spec` (wide columns).
fn container_columns(spec: &'static str) -> [Column; 2] {
    // One function per template place: printers are plain function pointers.
    let (names, images): (Cell, Cell) = match spec {
        "/spec/jobTemplate/spec/template/spec/containers" => (
            |o, _| json!(containers(o, "/spec/jobTemplate/spec/template/spec/containers").0),
            |o, _| json!(containers(o, "/spec/jobTemplate/spec/template/spec/containers").1),
        ),
        "/template/spec/containers" => (
            |o, _| json!(containers(o, "/template/spec/containers").0),
            |o, _| json!(containers(o, "/template/spec/containers").1),
        ),
        _ => (
            |o, _| json!(containers(o, "/spec/template/spec/containers").0),
            |o, _| json!(containers(o, "/spec/template/spec/containers").1),
        ),
    };
    [
        func("Containers", "string", names).describe("Names of each container in the template.").priority(1),
        func("Images", "string", images).describe("Images referenced by each container in the template.").priority(1),
    ]
}

fn selector_column() -> Column {
    func("Selector", "string", |o, _| json!(label_selector(at(o, "/spec/selector")))).priority(1)
}

/// Deployments' and StatefulSets' Ready: ready replicas of the wanted ones.
fn ready_of_replicas() -> Column {
    func("Ready", "string", |o, _| json!(format!("{}/{}", int(o, "/status/readyReplicas"), int(o, "/spec/replicas"))))
        .describe("Number of the pod with ready state")
}

pub(super) fn deployment() -> Vec<Column> {
    let mut c = vec![
        name(),
        ready_of_replicas(),
        integer("Up-to-date", "string", "/status/updatedReplicas"),
        integer("Available", "string", "/status/availableReplicas"),
        age(),
    ];
    c.extend(container_columns("/spec/template/spec/containers"));
    // A Deployment prints its selector as is: empty when it has none.
    c.push(
        func("Selector", "string", |o, _| {
            json!(format::selector(at(o, "/spec/selector")).unwrap_or_else(|| "<invalid>".into()))
        })
        .priority(1),
    );
    c
}

pub(super) fn replica_set() -> Vec<Column> {
    let mut c = vec![
        name(),
        integer("Desired", "integer", "/spec/replicas"),
        integer("Current", "integer", "/status/replicas"),
        integer("Ready", "integer", "/status/readyReplicas"),
        age(),
    ];
    c.extend(container_columns("/spec/template/spec/containers"));
    c.push(selector_column());
    c
}

pub(super) fn replication_controller() -> Vec<Column> {
    let mut c = replica_set();
    // Its selector is a plain label map.
    c.pop();
    c.push(func("Selector", "string", |o, _| json!(labels(at(o, "/spec/selector")))).priority(1));
    c
}

pub(super) fn stateful_set() -> Vec<Column> {
    let mut c = vec![name(), ready_of_replicas(), age()];
    c.extend(container_columns("/spec/template/spec/containers"));
    c
}

pub(super) fn daemon_set() -> Vec<Column> {
    let mut c = vec![
        name(),
        integer("Desired", "integer", "/status/desiredNumberScheduled"),
        integer("Current", "integer", "/status/currentNumberScheduled"),
        integer("Ready", "integer", "/status/numberReady"),
        integer("Up-to-date", "integer", "/status/updatedNumberScheduled"),
        integer("Available", "integer", "/status/numberAvailable"),
        func("Node Selector", "string", |o, _| json!(labels(at(o, "/spec/template/spec/nodeSelector")))),
        age(),
    ];
    c.extend(container_columns("/spec/template/spec/containers"));
    c.push(selector_column());
    c
}

/// Whether the job's first condition of `type_` is True (`hasJobCondition`).
fn job_condition(o: &Value, type_: &str) -> bool {
    items(o, "/status/conditions").iter().find(|c| c["type"] == type_).is_some_and(|c| c["status"] == "True")
}

fn job_status(o: &Value) -> &'static str {
    if job_condition(o, "Complete") {
        "Complete"
    } else if job_condition(o, "Failed") {
        "Failed"
    } else if at(o, "/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        "Terminating"
    } else if job_condition(o, "Suspended") {
        "Suspended"
    } else if job_condition(o, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job_completions(o: &Value) -> String {
    let succeeded = int(o, "/status/succeeded");
    match at(o, "/spec/completions").and_then(Value::as_i64) {
        Some(n) => format!("{succeeded}/{n}"),
        None => match int(o, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// From the start to completion, or to now while running; empty before it started.
fn job_duration(o: &Value, now: Timestamp) -> String {
    match (time(o, "/status/startTime"), time(o, "/status/completionTime")) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.as_second() - start.as_second()),
        (Some(start), Some(end)) => human_duration(end.as_second() - start.as_second()),
    }
}

pub(super) fn job() -> Vec<Column> {
    let mut c = vec![
        name(),
        func("Status", "string", |o, _| json!(job_status(o))).describe("Status of the job."),
        func("Completions", "string", |o, _| json!(job_completions(o))),
        func("Duration", "string", |o, now| json!(job_duration(o, now))).describe("Time required to complete the job."),
        age(),
    ];
    c.extend(container_columns("/spec/template/spec/containers"));
    c.push(selector_column());
    c
}

pub(super) fn cron_job() -> Vec<Column> {
    let mut c = vec![
        name(),
        func("Schedule", "string", |o, _| json!(text(o, "/spec/schedule"))),
        func("Timezone", "string", |o, _| json!(format::or_none(text(o, "/spec/timeZone")))),
        func("Suspend", "boolean", |o, _| json!(bool_ptr(at(o, "/spec/suspend")))),
        func("Active", "integer", |o, _| json!(items(o, "/status/active").len())),
        func("Last Schedule", "string", |o, now| match at(o, "/status/lastScheduleTime") {
            Some(Value::String(_)) => json!(since(o, "/status/lastScheduleTime", now)),
            _ => json!("<none>"),
        }),
        age(),
    ];
    c.extend(container_columns("/spec/jobTemplate/spec/template/spec/containers"));
    c.push(
        func("Selector", "string", |o, _| json!(label_selector(at(o, "/spec/jobTemplate/spec/selector")))).priority(1),
    );
    c
}

pub(super) fn pod_template() -> Vec<Column> {
    let [names, images] = container_columns("/template/spec/containers");
    vec![
        name(),
        names.priority(0),
        images.priority(0),
        func("Pod Labels", "string", |o, _| json!(labels(at(o, "/template/metadata/labels"))))
            .describe("The labels for the pod template."),
    ]
}

pub(super) fn pod_disruption_budget() -> Vec<Column> {
    vec![
        name(),
        func("Min Available", "string", |o, _| {
            json!(quantity(at(o, "/spec/minAvailable")).unwrap_or_else(|| "N/A".into()))
        })
        .describe("The minimum number of pods that must be available."),
        func("Max Unavailable", "string", |o, _| {
            json!(quantity(at(o, "/spec/maxUnavailable")).unwrap_or_else(|| "N/A".into()))
        })
        .describe("The maximum number of pods that may be unavailable."),
        integer("Allowed Disruptions", "integer", "/status/disruptionsAllowed")
            .describe("Calculated number of pods that may be disrupted at this time."),
        age(),
    ]
}

/// One metric of an autoscaler: `current/target` as `formatHPAMetrics` writes it.
fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    let unknown = || "<unknown>".to_owned();
    let value = |v: Option<&Value>| quantity(v).unwrap_or_else(unknown);
    let type_ = spec["type"].as_str().unwrap_or_default();
    match type_ {
        "External" | "Object" => {
            let key = if type_ == "External" { "external" } else { "object" };
            let (target, current) = (&spec[key]["target"], status.map(|s| &s[key]["current"]));
            if target.get("averageValue").is_some() {
                let cur = current.and_then(|c| quantity(c.get("averageValue"))).unwrap_or_else(unknown);
                format!("{cur}/{} (avg)", value(target.get("averageValue")))
            } else {
                let cur = current.filter(|c| !c.is_null()).map_or_else(unknown, |c| value(c.get("value")));
                format!("{cur}/{}", value(target.get("value")))
            }
        }
        "Pods" => {
            let cur = status.map_or_else(unknown, |s| value(at(s, "/pods/current/averageValue")));
            format!("{cur}/{}", value(at(spec, "/pods/target/averageValue")))
        }
        "Resource" | "ContainerResource" => {
            let key = if type_ == "Resource" { "resource" } else { "containerResource" };
            let (m, current) = (&spec[key], status.map(|s| &s[key]["current"]));
            let resource = m["name"].as_str().unwrap_or_default();
            if m["target"].get("averageValue").is_some() {
                let cur = current.map_or_else(unknown, |c| value(c.get("averageValue")));
                format!("{resource}: {cur}/{}", value(m["target"].get("averageValue")))
            } else {
                let cur =
                    current.and_then(|c| c["averageUtilization"].as_i64()).map_or_else(unknown, |u| format!("{u}%"));
                let target = m["target"]["averageUtilization"].as_i64().map_or("<auto>".into(), |u| format!("{u}%"));
                format!("{resource}: {cur}/{target}")
            }
        }
        _ => "<unknown type>".into(),
    }
}

/// `formatHPAMetrics`: two metrics at most, `+ N more...` past them; autoscaling/v1's CPU
/// target reads as the resource metric it converts to.
fn hpa_targets(o: &Value) -> String {
    let specs = items(o, "/spec/metrics");
    let statuses = items(o, "/status/currentMetrics");
    if specs.is_empty() {
        return match at(o, "/spec/targetCPUUtilizationPercentage").and_then(Value::as_i64) {
            Some(target) => {
                let cur = at(o, "/status/currentCPUUtilizationPercentage")
                    .and_then(Value::as_i64)
                    .map_or("<unknown>".into(), |u| format!("{u}%"));
                format!("cpu: {cur}/{target}%")
            }
            None => "<none>".into(),
        };
    }
    let list: Vec<String> = specs.iter().enumerate().map(|(i, s)| hpa_metric(s, statuses.get(i))).collect();
    match list.len() {
        n if n > 2 => format!("{} + {} more...", list[..2].join(", "), n - 2),
        _ => list.join(", "),
    }
}

pub(super) fn horizontal_pod_autoscaler() -> Vec<Column> {
    vec![
        name(),
        func("Reference", "string", |o, _| {
            json!(format!("{}/{}", text(o, "/spec/scaleTargetRef/kind"), text(o, "/spec/scaleTargetRef/name")))
        }),
        func("Targets", "string", |o, _| json!(hpa_targets(o))),
        func("MinPods", "string", |o, _| {
            json!(at(o, "/spec/minReplicas").and_then(Value::as_i64).map_or("<unset>".into(), |n| n.to_string()))
        }),
        integer("MaxPods", "string", "/spec/maxReplicas"),
        integer("Replicas", "string", "/status/currentReplicas"),
        age(),
    ]
}

pub(super) fn controller_revision() -> Vec<Column> {
    vec![
        name(),
        func("Controller", "string", |o, _| {
            let owner = items(o, "/metadata/ownerReferences").iter().find(|r| r["controller"] == true);
            json!(owner.map_or("<none>".into(), |r| {
                let group = r["apiVersion"].as_str().unwrap_or_default().rsplit_once('/').map_or("", |(g, _)| g);
                let kind = r["kind"].as_str().unwrap_or_default();
                let kind = if group.is_empty() { kind.to_owned() } else { format!("{kind}.{group}") };
                format!("{}/{}", kind.to_lowercase(), r["name"].as_str().unwrap_or_default())
            }))
        })
        .describe("Controller of the object"),
        integer("Revision", "string", "/revision"),
        age(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::cells;
    use serde_json::json;

    #[test]
    fn deployments_and_sets() {
        let d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}, {"name": "s", "image": "j:2"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(cells("Deployment", &d)[..4], [json!("d"), json!("2/3"), json!(3), json!(2)]);
        assert_eq!(cells("Deployment", &d)[5..], [json!("c,s"), json!("i:1,j:2"), json!("app=x")]);
        let empty = json!({"metadata": {"name": "d"}, "spec": {"selector": {}}});
        assert_eq!(cells("Deployment", &empty)[7], json!(""), "a Deployment prints an empty selector as is");
        assert_eq!(cells("ReplicaSet", &empty)[7], json!("<none>"), "FormatLabelSelector");
        let ds = json!({"metadata": {"name": "ds"}, "spec": {"selector": {"matchLabels": {"k": "v"}},
            "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "c", "image": "i"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}});
        let c = cells("DaemonSet", &ds);
        assert_eq!(c[1..7], [json!(3), json!(3), json!(2), json!(3), json!(2), json!("kubernetes.io/os=linux")]);
        assert_eq!(c[8..], [json!("c"), json!("i"), json!("k=v")]);
        let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 2, "selector": {"app": "web"}}, "status": {"replicas": 2}});
        assert_eq!(cells("ReplicationController", &rc)[7], json!("app=web"));
        let sts = json!({"metadata": {"name": "s"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 1}});
        assert_eq!(cells("StatefulSet", &sts)[1], json!("1/3"));
    }

    #[test]
    fn jobs_and_cron_jobs() {
        let job = |spec: serde_json::Value, status: serde_json::Value| json!({"metadata": {"name": "j", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec, "status": status});
        // Completions as kube-apiserver writes them; duration from start to completion.
        let done = job(
            json!({"completions": 3}),
            json!({"succeeded": 3, "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:03:20Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}),
        );
        assert_eq!(cells("Job", &done)[1..4], [json!("Complete"), json!("3/3"), json!("3m20s")]);
        let parallel = job(json!({"parallelism": 4}), json!({"succeeded": 1}));
        assert_eq!(cells("Job", &parallel)[1..4], [json!("Running"), json!("1/1 of 4"), json!("")]);
        let failed = job(json!({}), json!({"conditions": [{"type": "Failed", "status": "True"}]}));
        assert_eq!(cells("Job", &failed)[1..3], [json!("Failed"), json!("0/1")]);
        let target = job(json!({}), json!({"conditions": [{"type": "FailureTarget", "status": "True"}]}));
        assert_eq!(cells("Job", &target)[1], json!("FailureTarget"));
        let cj = json!({"metadata": {"name": "cj"}, "spec": {"schedule": "*/5 * * * *", "suspend": false,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}},
            "status": {"active": [{"name": "a"}]}});
        let c = cells("CronJob", &cj);
        assert_eq!(c[1..6], [json!("*/5 * * * *"), json!("<none>"), json!("False"), json!(1), json!("<none>")]);
        assert_eq!(c[7..], [json!("c"), json!("i"), json!("<none>")]);
    }

    #[test]
    fn autoscalers_budgets_revisions() {
        let hpa = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}]},
            "status": {"currentReplicas": 3, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "450m"}}}]}});
        let c = cells("HorizontalPodAutoscaler", &hpa);
        assert_eq!(
            c[1..6],
            [json!("Deployment/web"), json!("cpu: 45%/80%, <unknown>/1k + 1 more..."), json!("2"), json!(10), json!(3)]
        );
        let v1 = json!({"metadata": {"name": "h"}, "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
        assert_eq!(cells("HorizontalPodAutoscaler", &v1)[2..4], [json!("cpu: <unknown>/50%"), json!("<unset>")]);
        let pdb =
            json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(cells("PodDisruptionBudget", &pdb)[1..4], [json!("50%"), json!("N/A"), json!(1)]);
        let rev = json!({"metadata": {"name": "r", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "controller": true}]}, "revision": 4});
        assert_eq!(cells("ControllerRevision", &rev)[1..3], [json!("daemonset.apps/fluentd"), json!(4)]);
    }
}
