//! Printers of cluster and configuration kinds as kube-apiserver has them: nodes, namespaces,
//! events, config maps, secrets, service accounts, role bindings, leases, priority and runtime
//! classes, resource quotas, admission webhooks and policies, certificate signing requests,
//! API services; and the default table of kinds without a printer (Name, Created At).

use crate::table::at;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{int, items, or_unknown, quantity, since, text};
use super::{age, func, integer, name, text_at};
use crate::table::{Column, human_duration};

/// `Ready`/`NotReady` from the Ready condition (`Unknown` without one), `,SchedulingDisabled`
/// when cordoned.
fn node_status(o: &Value) -> String {
    let ready = items(o, "/status/conditions").iter().rev().find(|c| c["type"] == "Ready");
    let mut s = match ready {
        Some(c) if c["status"] == "True" => "Ready".to_owned(),
        Some(_) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if at(o, "/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        s.push_str(",SchedulingDisabled");
    }
    s
}

/// `findNodeRoles`: `node-role.kubernetes.io/<role>` labels and the `kubernetes.io/role` label,
/// sorted, `<none>` without any.
fn node_roles(o: &Value) -> String {
    let mut roles: Vec<&str> = at(o, "/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) => Some(role).filter(|r| !r.is_empty()),
            None if k == "kubernetes.io/role" => v.as_str().filter(|r| !r.is_empty()),
            None => None,
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() { "<none>".into() } else { roles.join(",") }
}

fn node_address(o: &Value, type_: &str) -> String {
    items(o, "/status/addresses")
        .iter()
        .find(|a| a["type"] == type_)
        .and_then(|a| a["address"].as_str())
        .map_or("<none>".into(), str::to_owned)
}

pub(super) fn node() -> Vec<Column> {
    vec![
        name(),
        func("Status", "string", |o, _| json!(node_status(o))).describe("The status of the node"),
        func("Roles", "string", |o, _| json!(node_roles(o))).describe("The roles of the node"),
        age(),
        text_at("Version", "string", "/status/nodeInfo/kubeletVersion"),
        func("Internal-IP", "string", |o, _| json!(node_address(o, "InternalIP"))).priority(1),
        func("External-IP", "string", |o, _| json!(node_address(o, "ExternalIP"))).priority(1),
        func("OS-Image", "string", |o, _| json!(or_unknown(text(o, "/status/nodeInfo/osImage")))).priority(1),
        func("Kernel-Version", "string", |o, _| json!(or_unknown(text(o, "/status/nodeInfo/kernelVersion"))))
            .priority(1),
        func("Container-Runtime", "string", |o, _| {
            json!(or_unknown(text(o, "/status/nodeInfo/containerRuntimeVersion")))
        })
        .priority(1),
    ]
}

pub(super) fn namespace() -> Vec<Column> {
    vec![name(), text_at("Status", "string", "/status/phase").describe("The status of the namespace"), age()]
}

/// First seen: `firstTimestamp`, else `eventTime`.
fn event_first_seen(o: &Value, now: Timestamp) -> String {
    match o["firstTimestamp"].as_str().filter(|t| !t.is_empty()) {
        Some(_) => since(o, "/firstTimestamp", now),
        None => since(o, "/eventTime", now),
    }
}

/// Last seen: the series' last observation, else `lastTimestamp`, else the first seen.
fn event_last_seen(o: &Value, now: Timestamp) -> String {
    if o.get("series").is_some_and(Value::is_object) {
        return since(o, "/series/lastObservedTime", now);
    }
    match o["lastTimestamp"].as_str().filter(|t| !t.is_empty()) {
        Some(_) => since(o, "/lastTimestamp", now),
        None => event_first_seen(o, now),
    }
}

fn event_count(o: &Value) -> i64 {
    if o.get("series").is_some_and(Value::is_object) {
        return int(o, "/series/count");
    }
    match int(o, "/count") {
        0 => 1,
        n => n,
    }
}

/// `kind/name` of the involved object, the kind lower-cased (only the kind without a name).
fn event_object(o: &Value) -> String {
    let kind = text(o, "/involvedObject/kind").to_lowercase();
    match text(o, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    }
}

/// `formatEventSource`: component (or reporting controller), then host (or reporting instance).
fn event_source(o: &Value) -> String {
    let first = |a: &str, b: &str| if a.is_empty() { b.to_owned() } else { a.to_owned() };
    let component = first(text(o, "/source/component"), text(o, "/reportingComponent"));
    let instance = first(text(o, "/source/host"), text(o, "/reportingInstance"));
    if instance.is_empty() { component } else { format!("{component}, {instance}") }
}

pub(super) fn event() -> Vec<Column> {
    vec![
        func("Last Seen", "string", |o, now| json!(event_last_seen(o, now))),
        text_at("Type", "string", "/type"),
        text_at("Reason", "string", "/reason"),
        func("Object", "string", |o, _| json!(event_object(o))),
        text_at("Subobject", "string", "/involvedObject/fieldPath").priority(1),
        func("Source", "string", |o, _| json!(event_source(o))).priority(1),
        func("Message", "string", |o, _| json!(text(o, "/message").trim())),
        func("First Seen", "string", |o, now| json!(event_first_seen(o, now))).priority(1),
        func("Count", "string", |o, _| json!(event_count(o))).priority(1),
        name().priority(1),
    ]
}

/// Entries of the object at `key` (none when absent).
fn entries(o: &Value, key: &str) -> usize {
    o.get(key).and_then(Value::as_object).map_or(0, serde_json::Map::len)
}

pub(super) fn config_map() -> Vec<Column> {
    vec![name(), func("Data", "string", |o, _| json!(entries(o, "data") + entries(o, "binaryData"))), age()]
}

pub(super) fn secret() -> Vec<Column> {
    vec![name(), text_at("Type", "string", "/type"), func("Data", "string", |o, _| json!(entries(o, "data"))), age()]
}

pub(super) fn service_account() -> Vec<Column> {
    vec![name(), func("Secrets", "string", |o, _| json!(items(o, "/secrets").len())), age()]
}

/// `rbac.SubjectsStrings`: the users, groups or service accounts (`namespace/name`) of a binding.
fn subjects(o: &Value, kind: &str) -> String {
    items(o, "/subjects")
        .iter()
        .filter(|s| s["kind"] == kind)
        .map(|s| match kind {
            "ServiceAccount" => format!("{}/{}", text(s, "/namespace"), text(s, "/name")),
            _ => text(s, "/name").to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn role_binding(kind: &str) -> Vec<Column> {
    let of = if kind == "RoleBinding" { "roleBinding" } else { "clusterRoleBinding" };
    vec![
        name(),
        func("Role", "string", |o, _| json!(format!("{}/{}", text(o, "/roleRef/kind"), text(o, "/roleRef/name")))),
        age(),
        func("Users", "string", |o, _| json!(subjects(o, "User"))).priority(1).describe(&format!("Users in the {of}")),
        func("Groups", "string", |o, _| json!(subjects(o, "Group")))
            .priority(1)
            .describe(&format!("Groups in the {of}")),
        func("ServiceAccounts", "string", |o, _| json!(subjects(o, "ServiceAccount")))
            .priority(1)
            .describe(&format!("ServiceAccounts in the {of}")),
    ]
}

pub(super) fn lease() -> Vec<Column> {
    vec![name(), text_at("Holder", "string", "/spec/holderIdentity"), age()]
}

pub(super) fn priority_class() -> Vec<Column> {
    vec![
        name(),
        integer("Value", "integer", "/value"),
        func("Global-Default", "boolean", |o, _| json!(o["globalDefault"].as_bool().unwrap_or(false))),
        age(),
        text_at("PreemptionPolicy", "string", "/preemptionPolicy"),
    ]
}

/// `pods: 3/10, requests.cpu: 500m/2`: used/hard of each quota resource sorted by name, the
/// `limits.*` ones in the Limit column, the rest in the Request column.
fn quota(o: &Value, limits: bool) -> String {
    let hard = at(o, "/status/hard").and_then(Value::as_object);
    let mut names: Vec<&String> = hard.into_iter().flat_map(|h| h.keys()).collect();
    names.sort();
    let is_limit = |n: &str| n.split_once('.').is_some_and(|(first, _)| first == "limits");
    names
        .into_iter()
        .filter(|n| is_limit(n) == limits)
        .map(|n| {
            let used = quantity(at(o, "/status/used").and_then(|u| u.get(n.as_str()))).unwrap_or_else(|| "0".into());
            let hard = quantity(hard.and_then(|h| h.get(n.as_str()))).unwrap_or_else(|| "0".into());
            format!("{n}: {used}/{hard}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn resource_quota() -> Vec<Column> {
    vec![
        name(),
        func("Request", "string", |o, _| json!(quota(o, false)))
            .describe("Request represents a minimum amount of cpu/memory that a container may consume."),
        func("Limit", "string", |o, _| json!(quota(o, true))).describe(
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on \
             the node.",
        ),
        age(),
    ]
}

pub(super) fn runtime_class() -> Vec<Column> {
    vec![name(), text_at("Handler", "string", "/handler"), age()]
}

pub(super) fn webhook_configuration() -> Vec<Column> {
    vec![
        name(),
        func("Webhooks", "integer", |o, _| json!(items(o, "/webhooks").len()))
            .describe("Webhooks indicates the number of webhooks registered in this configuration"),
        age(),
    ]
}

fn param_kind(o: &Value) -> String {
    match at(o, "/spec/paramKind") {
        Some(p) if p.is_object() => format!("{}/{}", text(p, "/apiVersion"), text(p, "/kind")),
        _ => "<unset>".into(),
    }
}

fn param_ref(o: &Value) -> String {
    let Some(r) = at(o, "/spec/paramRef").filter(|r| r.is_object()) else { return "<unset>".into() };
    match (text(r, "/name"), text(r, "/namespace")) {
        ("", _) if r.get("selector").is_some_and(Value::is_object) => {
            super::format::selector(r.get("selector")).unwrap_or_else(|| "<error>".into())
        }
        ("", _) => "<unset>".into(),
        (name, "") => format!("*/{name}"),
        (name, ns) => format!("{ns}/{name}"),
    }
}

pub(super) fn admission_policy(rules: &'static str) -> Vec<Column> {
    let count: super::Cell = match rules {
        "Mutations" => |o, _| json!(items(o, "/spec/mutations").len()),
        _ => |o, _| json!(items(o, "/spec/validations").len()),
    };
    vec![
        name(),
        func(rules, "integer", count),
        func("ParamKind", "string", |o, _| json!(param_kind(o)))
            .describe("ParamKind specifies the kind of resources used to parameterize this policy"),
        age(),
    ]
}

pub(super) fn admission_policy_binding() -> Vec<Column> {
    vec![
        name(),
        text_at("PolicyName", "string", "/spec/policyName"),
        func("ParamRef", "string", |o, _| json!(param_ref(o))),
        age(),
    ]
}

/// `Approved`/`Denied`/`Pending`, then `,Failed` and `,Issued` where they apply.
fn csr_condition(o: &Value) -> String {
    let has = |t: &str| items(o, "/status/conditions").iter().any(|c| c["type"] == t);
    let mut s = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_owned();
    if has("Failed") {
        s.push_str(",Failed");
    }
    if !text(o, "/status/certificate").is_empty() {
        s.push_str(",Issued");
    }
    s
}

pub(super) fn certificate_signing_request() -> Vec<Column> {
    vec![
        name(),
        age(),
        func("SignerName", "string", |o, _| json!(super::format::or_none(text(o, "/spec/signerName")))),
        text_at("Requestor", "string", "/spec/username"),
        func("RequestedDuration", "string", |o, _| {
            json!(at(o, "/spec/expirationSeconds").and_then(Value::as_i64).map_or("<none>".into(), human_duration))
        }),
        func("Condition", "string", |o, _| json!(csr_condition(o))),
    ]
}

/// kube-aggregator's printer: the backing Service (`Local` for built-in groups) and whether it
/// is Available (`False (reason)` when not).
pub(super) fn api_service() -> Vec<Column> {
    vec![
        name(),
        func("Service", "string", |o, _| {
            json!(match at(o, "/spec/service") {
                Some(s) if s.is_object() => format!("{}/{}", text(s, "/namespace"), text(s, "/name")),
                _ => "Local".into(),
            })
        }),
        func("Available", "string", |o, _| {
            let cond = items(o, "/status/conditions").iter().find(|c| c["type"] == "Available");
            json!(match cond {
                None => "Unknown".into(),
                Some(c) => match (text(c, "/status"), text(c, "/reason")) {
                    ("True", _) => "True".into(),
                    (status, "") => status.to_owned(),
                    (status, reason) => format!("{status} ({reason})"),
                },
            })
        }),
        age(),
    ]
}

/// The default table of kube-apiserver for kinds without a printer (RBAC roles, CRDs, limit
/// ranges...): Name and the creation time as RFC 3339.
pub(super) fn default_columns() -> Vec<Column> {
    vec![
        name(),
        func("Created At", "date", |o, _| {
            // Go's zero time when there is none.
            json!(
                super::format::time(o, "/metadata/creationTimestamp")
                    .map_or("0001-01-01T00:00:00Z".into(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            )
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::cells;
    use serde_json::json;

    #[test]
    fn nodes_and_events() {
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "", "kubernetes.io/role": "infra"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian"},
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}});
        let c = cells("Node", &node);
        assert_eq!(c[1..3], [json!("NotReady,SchedulingDisabled"), json!("control-plane,infra")]);
        assert_eq!(
            c[4..],
            [
                json!("v1.33.1"),
                json!("10.0.0.5"),
                json!("<none>"),
                json!("Debian"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
        assert_eq!(cells("Node", &json!({"metadata": {"name": "n"}}))[1..3], [json!("Unknown"), json!("<none>")]);
        let ev = json!({"metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff", "message": " back-off \n",
            "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{web}"},
            "source": {"component": "kubelet", "host": "n1"}, "count": 0});
        let c = cells("Event", &ev);
        assert_eq!(
            c[1..],
            [
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-0"),
                json!("spec.containers{web}"),
                json!("kubelet, n1"),
                json!("back-off"),
                json!("<unknown>"),
                json!(1),
                json!("e1")
            ]
        );
        let new_api = json!({"metadata": {"name": "e2"}, "involvedObject": {"kind": "Node"}, "reportingComponent": "ctrl", "series": {"count": 7}});
        assert_eq!(
            (
                cells("Event", &new_api)[3].clone(),
                cells("Event", &new_api)[5].clone(),
                cells("Event", &new_api)[8].clone()
            ),
            (json!("node"), json!("ctrl"), json!(7))
        );
    }

    #[test]
    fn config_and_rbac() {
        assert_eq!(
            cells("ConfigMap", &json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}}))[1],
            json!(2)
        );
        assert_eq!(
            cells("Secret", &json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}}))[1..3],
            [json!("Opaque"), json!(1)]
        );
        assert_eq!(cells("ServiceAccount", &json!({"metadata": {"name": "sa"}}))[1], json!(0));
        let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"}, {"kind": "User", "name": "bob"},
                         {"kind": "ServiceAccount", "namespace": "ci", "name": "runner"}]});
        assert_eq!(cells("RoleBinding", &rb)[1], json!("ClusterRole/view"));
        assert_eq!(cells("ClusterRoleBinding", &rb)[3..], [json!("alice, bob"), json!("devs"), json!("ci/runner")]);
        // Kinds without a printer: kube-apiserver's default table.
        let role = json!({"metadata": {"name": "r", "creationTimestamp": "2026-01-02T03:04:05Z"}});
        assert_eq!(cells("ClusterRole", &role), [json!("r"), json!("2026-01-02T03:04:05Z")]);
        assert_eq!(cells("CustomResourceDefinition", &role)[1], json!("2026-01-02T03:04:05Z"));
    }

    #[test]
    fn quotas_classes_and_the_rest() {
        let q = json!({"metadata": {"name": "q"}, "status": {"hard": {"requests.cpu": "2", "pods": "10", "limits.memory": "4Gi", "limits.cpu": "4"},
            "used": {"requests.cpu": "500m", "pods": "3", "limits.cpu": "1"}}});
        assert_eq!(
            cells("ResourceQuota", &q)[1..3],
            [json!("pods: 3/10, requests.cpu: 500m/2"), json!("limits.cpu: 1/4, limits.memory: 0/4Gi")]
        );
        let pc =
            json!({"metadata": {"name": "high"}, "value": 1000, "globalDefault": true, "preemptionPolicy": "Never"});
        let c = cells("PriorityClass", &pc);
        assert_eq!((c[1].clone(), c[2].clone(), c[4].clone()), (json!(1000), json!(true), json!("Never")));
        let csr = json!({"metadata": {"name": "c"}, "spec": {"signerName": "kubernetes.io/kubelet-serving", "username": "system:node:n1", "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved"}], "certificate": "Y2VydA=="}});
        assert_eq!(
            cells("CertificateSigningRequest", &csr)[2..],
            [json!("kubernetes.io/kubelet-serving"), json!("system:node:n1"), json!("24h"), json!("Approved,Issued")]
        );
        let api = json!({"metadata": {"name": "v1beta1.clusterpedia.io"}, "spec": {"service": {"namespace": "pedia", "name": "api"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "FailedDiscoveryCheck"}]}});
        assert_eq!(cells("APIService", &api)[1..3], [json!("pedia/api"), json!("False (FailedDiscoveryCheck)")]);
        assert_eq!(
            cells("APIService", &json!({"metadata": {"name": "v1."}}))[1..3],
            [json!("Local"), json!("Unknown")]
        );
        let vap = json!({"metadata": {"name": "p"}, "spec": {"validations": [{}, {}], "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}});
        assert_eq!(cells("ValidatingAdmissionPolicy", &vap)[1..3], [json!(2), json!("v1/ConfigMap")]);
        let binding = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": {"name": "cfg"}}});
        assert_eq!(cells("ValidatingAdmissionPolicyBinding", &binding)[1..3], [json!("p"), json!("*/cfg")]);
    }
}
