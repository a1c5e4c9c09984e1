//! Table columns of built-in kinds, after kube-apiserver's printers
//! (`pkg/printers/internalversion`): the same column names, types and wide (priority 1) columns.

use serde_json::{Value, json};

use crate::table::{CellSource, Column};

fn name() -> Column {
    Column::new("Name", "string", CellSource::Name).describe("Name must be unique within a namespace.")
}

fn age() -> Column {
    Column::new("Age", "string", CellSource::Age)
}

fn path(n: &str, t: &str, p: &str) -> Column {
    Column::new(n, t, CellSource::JsonPath(p.to_owned()))
}

fn func(n: &str, t: &str, f: fn(&Value) -> Value) -> Column {
    Column::new(n, t, CellSource::Func(f))
}

fn str_at<'a>(o: &'a Value, p: &str) -> &'a str {
    o.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn int_at(o: &Value, p: &str) -> i64 {
    o.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn none_if_empty(s: String) -> Value {
    json!(if s.is_empty() { "<none>".to_owned() } else { s })
}

fn containers<'a>(o: &'a Value, spec: &str) -> &'a [Value] {
    o.pointer(spec).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn container_names(spec: &'static str) -> fn(&Value) -> Value {
    match spec {
        "/spec/template/spec/containers" => |o| join_field(o, "/spec/template/spec/containers", "name"),
        _ => |o| join_field(o, "/spec/jobTemplate/spec/template/spec/containers", "name"),
    }
}

fn container_images(spec: &'static str) -> fn(&Value) -> Value {
    match spec {
        "/spec/template/spec/containers" => |o| join_field(o, "/spec/template/spec/containers", "image"),
        _ => |o| join_field(o, "/spec/jobTemplate/spec/template/spec/containers", "image"),
    }
}

fn join_field(o: &Value, spec: &str, field: &str) -> Value {
    json!(containers(o, spec).iter().filter_map(|c| c[field].as_str()).collect::<Vec<_>>().join(","))
}

fn selector(o: &Value) -> Value {
    let labels = o.pointer("/spec/selector/matchLabels").or_else(|| o.pointer("/spec/selector"));
    match labels.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => {
            json!(
                m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(",")
            )
        }
        _ => json!("<none>"),
    }
}

fn pod_ready(o: &Value) -> Value {
    let statuses = containers(o, "/status/containerStatuses");
    let total = containers(o, "/spec/containers").len().max(statuses.len());
    let ready = statuses.iter().filter(|c| c["ready"].as_bool() == Some(true)).count();
    json!(format!("{ready}/{total}"))
}

fn pod_status(o: &Value) -> Value {
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        return json!("Terminating");
    }
    for c in containers(o, "/status/containerStatuses") {
        if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            return json!(r);
        }
        if let Some(r) = c.pointer("/state/terminated/reason").and_then(Value::as_str) {
            return json!(r);
        }
    }
    let reason = str_at(o, "/status/reason");
    json!(if reason.is_empty() { str_at(o, "/status/phase") } else { reason })
}

fn pod_restarts(o: &Value) -> Value {
    json!(
        containers(o, "/status/containerStatuses").iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum::<i64>()
    )
}

fn or_none(p: &'static str) -> fn(&Value) -> Value {
    match p {
        "/status/podIP" => |o| none_if_empty(str_at(o, "/status/podIP").to_owned()),
        "/spec/nodeName" => |o| none_if_empty(str_at(o, "/spec/nodeName").to_owned()),
        _ => |o| none_if_empty(str_at(o, "/status/nominatedNodeName").to_owned()),
    }
}

fn deploy_ready(o: &Value) -> Value {
    json!(format!("{}/{}", int_at(o, "/status/readyReplicas"), int_at(o, "/spec/replicas")))
}

fn count_data(o: &Value) -> Value {
    let n = |p: &str| o.pointer(p).and_then(Value::as_object).map_or(0, |m| m.len());
    json!(n("/data") + n("/binaryData"))
}

fn service_external_ip(o: &Value) -> Value {
    let ingress: Vec<String> = o
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().or_else(|| i["hostname"].as_str()).map(str::to_owned))
        .collect();
    let external: Vec<String> = o
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.as_str().map(str::to_owned))
        .collect();
    let all: Vec<String> = ingress.into_iter().chain(external).collect();
    match (all.is_empty(), str_at(o, "/spec/type")) {
        (false, _) => json!(all.join(",")),
        (true, "LoadBalancer") => json!("<pending>"),
        (true, "ExternalName") => json!(str_at(o, "/spec/externalName")),
        _ => json!("<none>"),
    }
}

fn service_ports(o: &Value) -> Value {
    let ports: Vec<String> = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(np) => format!("{}:{np}/{proto}", p["port"]),
                None => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    none_if_empty(ports.join(","))
}

fn node_status(o: &Value) -> Value {
    let ready = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| c["status"] == "True");
    let mut s = match ready {
        Some(true) => "Ready".to_owned(),
        _ => "NotReady".to_owned(),
    };
    if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        s.push_str(",SchedulingDisabled");
    }
    json!(s)
}

fn node_roles(o: &Value) -> Value {
    let roles: Vec<&str> = o
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .collect();
    none_if_empty(roles.join(","))
}

fn node_internal_ip(o: &Value) -> Value {
    let ip = o
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .unwrap_or_default();
    none_if_empty(ip.to_owned())
}

fn event_object(o: &Value) -> Value {
    json!(format!("{}/{}", str_at(o, "/involvedObject/kind").to_lowercase(), str_at(o, "/involvedObject/name")))
}

fn event_last_seen(o: &Value) -> Value {
    let t = ["/lastTimestamp", "/eventTime", "/metadata/creationTimestamp"]
        .iter()
        .find_map(|p| o.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()));
    json!(crate::table::age(t, k8s_openapi::jiff::Timestamp::now()))
}

fn job_completions(o: &Value) -> Value {
    json!(format!(
        "{}/{}",
        int_at(o, "/status/succeeded"),
        o.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1)
    ))
}

fn job_status(o: &Value) -> Value {
    let conds = o.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let has = |t: &str| conds.iter().any(|c| c["type"] == t && c["status"] == "True");
    json!(if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if has("Suspended") {
        "Suspended"
    } else {
        "Running"
    })
}

fn lease_holder(o: &Value) -> Value {
    none_if_empty(str_at(o, "/spec/holderIdentity").to_owned())
}

/// Columns for a built-in kind.
pub fn columns(kind: &str) -> Vec<Column> {
    match kind {
        "Pod" => vec![
            name(),
            func("Ready", "string", pod_ready)
                .describe("The aggregate readiness state of this pod for accepting traffic."),
            func("Status", "string", pod_status).describe("The aggregate status of the containers in this pod."),
            func("Restarts", "string", pod_restarts)
                .describe("The number of times the containers in this pod have been restarted."),
            age(),
            func("IP", "string", or_none("/status/podIP")).priority(1),
            func("Node", "string", or_none("/spec/nodeName")).priority(1),
            func("Nominated Node", "string", or_none("/status/nominatedNodeName")).priority(1),
        ],
        "Deployment" => vec![
            name(),
            func("Ready", "string", deploy_ready),
            path("Up-to-date", "integer", ".status.updatedReplicas"),
            path("Available", "integer", ".status.availableReplicas"),
            age(),
            func("Containers", "string", container_names("/spec/template/spec/containers")).priority(1),
            func("Images", "string", container_images("/spec/template/spec/containers")).priority(1),
            func("Selector", "string", selector).priority(1),
        ],
        "ReplicaSet" | "ReplicationController" => vec![
            name(),
            path("Desired", "integer", ".spec.replicas"),
            path("Current", "integer", ".status.replicas"),
            path("Ready", "integer", ".status.readyReplicas"),
            age(),
            func("Containers", "string", container_names("/spec/template/spec/containers")).priority(1),
            func("Images", "string", container_images("/spec/template/spec/containers")).priority(1),
            func("Selector", "string", selector).priority(1),
        ],
        "StatefulSet" => vec![
            name(),
            func("Ready", "string", deploy_ready),
            age(),
            func("Containers", "string", container_names("/spec/template/spec/containers")).priority(1),
            func("Images", "string", container_images("/spec/template/spec/containers")).priority(1),
        ],
        "DaemonSet" => vec![
            name(),
            path("Desired", "integer", ".status.desiredNumberScheduled"),
            path("Current", "integer", ".status.currentNumberScheduled"),
            path("Ready", "integer", ".status.numberReady"),
            path("Up-to-date", "integer", ".status.updatedNumberScheduled"),
            path("Available", "integer", ".status.numberAvailable"),
            age(),
        ],
        "Service" => vec![
            name(),
            path("Type", "string", ".spec.type"),
            path("Cluster-IP", "string", ".spec.clusterIP"),
            func("External-IP", "string", service_external_ip),
            func("Port(s)", "string", service_ports),
            age(),
            func("Selector", "string", selector).priority(1),
        ],
        "ConfigMap" => vec![name(), func("Data", "integer", count_data), age()],
        "Secret" => vec![name(), path("Type", "string", ".type"), func("Data", "integer", count_data), age()],
        "Namespace" => vec![name(), path("Status", "string", ".status.phase"), age()],
        "Node" => vec![
            name(),
            func("Status", "string", node_status),
            func("Roles", "string", node_roles),
            age(),
            path("Version", "string", ".status.nodeInfo.kubeletVersion"),
            func("Internal-IP", "string", node_internal_ip).priority(1),
            path("OS-Image", "string", ".status.nodeInfo.osImage").priority(1),
            path("Kernel-Version", "string", ".status.nodeInfo.kernelVersion").priority(1),
            path("Container-Runtime", "string", ".status.nodeInfo.containerRuntimeVersion").priority(1),
        ],
        "Event" => vec![
            func("Last Seen", "string", event_last_seen),
            path("Type", "string", ".type"),
            path("Reason", "string", ".reason"),
            func("Object", "string", event_object),
            path("Message", "string", ".message"),
            name().priority(1),
        ],
        "Job" => vec![
            name(),
            func("Status", "string", job_status),
            func("Completions", "string", job_completions),
            age(),
            func("Containers", "string", container_names("/spec/template/spec/containers")).priority(1),
            func("Images", "string", container_images("/spec/template/spec/containers")).priority(1),
        ],
        "CronJob" => vec![
            name(),
            path("Schedule", "string", ".spec.schedule"),
            path("Suspend", "boolean", ".spec.suspend"),
            func("Active", "integer", |o| {
                json!(o.pointer("/status/active").and_then(Value::as_array).map_or(0, Vec::len))
            }),
            age(),
            func("Containers", "string", container_names("/spec/jobTemplate/spec/template/spec/containers"))
                .priority(1),
            func("Images", "string", container_images("/spec/jobTemplate/spec/template/spec/containers")).priority(1),
        ],
        "Lease" => vec![name(), func("Holder", "string", lease_holder), age()],
        "CustomResourceDefinition" => {
            vec![name(), func("Created At", "date", |o| json!(str_at(o, "/metadata/creationTimestamp")))]
        }
        _ => vec![name(), age()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::build;

    fn cells(kind: &str, o: Value) -> Vec<Value> {
        let t = build(&columns(kind), vec![o], &[], json!({}), k8s_openapi::jiff::Timestamp::now());
        t["rows"][0]["cells"].as_array().unwrap().clone()
    }

    #[test]
    fn pod_columns() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "containerStatuses": [{"ready": true, "restartCount": 2}, {"ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let c = cells("Pod", pod);
        assert_eq!(c[0], "p");
        assert_eq!(c[1], "1/2");
        assert_eq!(c[2], "CrashLoopBackOff");
        assert_eq!(c[3], 3);
        assert_eq!((c[5].as_str(), c[6].as_str(), c[7].as_str()), (Some("10.0.0.1"), Some("n1"), Some("<none>")));
    }

    #[test]
    fn service_and_node_columns() {
        let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.1",
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}], "selector": {"app": "web"}}});
        let c = cells("Service", svc);
        assert_eq!(
            (c[1].as_str(), c[3].as_str(), c[4].as_str(), c[6].as_str()),
            (Some("NodePort"), Some("<none>"), Some("80:30080/TCP"), Some("app=web"))
        );
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.33.1"}}});
        let c = cells("Node", node);
        assert_eq!(
            (c[1].as_str(), c[2].as_str(), c[4].as_str()),
            (Some("Ready"), Some("control-plane"), Some("v1.33.1"))
        );
    }

    #[test]
    fn workload_columns() {
        let d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}, "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let c = cells("Deployment", d);
        assert_eq!(c[1], "2/3");
        assert_eq!(c[2], 3);
        assert_eq!((c[5].as_str(), c[6].as_str(), c[7].as_str()), (Some("c"), Some("i:1"), Some("app=x")));
        assert_eq!(cells("ConfigMap", json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}))[1], 2);
        assert_eq!(cells("Unknown", json!({"metadata": {"name": "u"}})).len(), 2);
    }
}
