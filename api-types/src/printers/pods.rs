//! The pod printer of kube-apiserver (`printPod`): ready containers (restartable init containers
//! count), the status a person reads (init progress, waiting and terminated reasons, scheduling
//! gates, terminating, lost nodes), restarts with the time of the last one, readiness gates.

use crate::table::at;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{items, or_none, text, time};
use super::{age, func, name};
use crate::table::{self, Column};

pub(super) fn columns() -> Vec<Column> {
    vec![
        name(),
        func("Ready", "string", |o, now| json!(summary(o, now).ready))
            .describe("The aggregate readiness state of this pod for accepting traffic."),
        func("Status", "string", |o, now| json!(summary(o, now).status))
            .describe("The aggregate status of the containers in this pod."),
        func("Restarts", "string", |o, now| json!(summary(o, now).restarts)).describe(
            "The number of times the containers in this pod have been restarted and when the last container in this \
             pod has restarted.",
        ),
        age(),
        func("IP", "string", |o, _| json!(or_none(ip(o)))).priority(1),
        func("Node", "string", |o, _| json!(or_none(text(o, "/spec/nodeName")))).priority(1),
        func("Nominated Node", "string", |o, _| json!(or_none(text(o, "/status/nominatedNodeName")))).priority(1),
        func("Readiness Gates", "string", |o, _| json!(readiness_gates(o))).priority(1),
    ]
}

/// The first of the pod's IPs.
fn ip(o: &Value) -> &str {
    items(o, "/status/podIPs").first().and_then(|p| p["ip"].as_str()).unwrap_or_default()
}

/// `true/total` readiness gates whose condition is True, `<none>` without gates.
fn readiness_gates(o: &Value) -> String {
    let gates = items(o, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = items(o, "/status/conditions");
    let met = gates
        .iter()
        .filter(|g| conditions.iter().find(|c| c["type"] == g["conditionType"]).is_some_and(|c| c["status"] == "True"))
        .count();
    format!("{met}/{}", gates.len())
}

/// The Ready, Status and Restarts cells of a pod.
#[derive(Debug, PartialEq)]
pub(super) struct Summary {
    pub(super) ready: String,
    pub(super) status: String,
    pub(super) restarts: String,
}

/// An init container with `restartPolicy: Always` (a sidecar): it counts as a container.
fn restartable(c: Option<&&Value>) -> bool {
    c.is_some_and(|c| c["restartPolicy"] == "Always")
}

fn condition_true(o: &Value, type_: &str) -> bool {
    items(o, "/status/conditions").iter().any(|c| c["type"] == type_ && c["status"] == "True")
}

/// The later of a last restart and a container's last termination.
fn later(last: Option<Timestamp>, c: &Value) -> Option<Timestamp> {
    match (last, time(c, "/lastState/terminated/finishedAt")) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A terminated container's reason, or its signal or exit code.
fn terminated_reason(t: &Value) -> String {
    match t["reason"].as_str().filter(|r| !r.is_empty()) {
        Some(r) => r.to_owned(),
        None if t["signal"].as_i64().unwrap_or(0) != 0 => format!("Signal:{}", t["signal"]),
        None => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
    }
}

pub(super) fn summary(o: &Value, now: Timestamp) -> Summary {
    let phase = text(o, "/status/phase");
    let mut reason = match text(o, "/status/reason") {
        "" => phase.to_owned(),
        r => r.to_owned(),
    };
    if items(o, "/status/conditions").iter().any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated") {
        reason = "SchedulingGated".into();
    }
    let init_specs = items(o, "/spec/initContainers");
    // Init containers are few: found by name without a map.
    let init = |name: &Value| init_specs.iter().find(|c| c["name"] == *name);
    let total = items(o, "/spec/containers").len() + init_specs.iter().filter(|c| restartable(Some(c))).count();
    let (mut ready, mut restarts, mut sidecar_restarts) = (0, 0, 0);
    let (mut last_restart, mut last_sidecar_restart) = (None, None);
    let mut initializing = false;
    for (i, c) in items(o, "/status/initContainerStatuses").iter().enumerate() {
        let count = c["restartCount"].as_i64().unwrap_or(0);
        restarts += count;
        last_restart = later(last_restart, c);
        let sidecar = restartable(init(&c["name"]).as_ref());
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, c);
        }
        let terminated = at(c, "/state/terminated");
        let waiting = text(c, "/state/waiting/reason");
        if terminated.is_some_and(|t| t["exitCode"].as_i64().unwrap_or(0) == 0) {
            continue;
        }
        if sidecar && c["started"] == true {
            if c["ready"] == true {
                ready += 1;
            }
            continue;
        }
        reason = match terminated {
            Some(t) => format!("Init:{}", terminated_reason(t)),
            None if !waiting.is_empty() && waiting != "PodInitializing" => format!("Init:{waiting}"),
            None => format!("Init:{i}/{}", init_specs.len()),
        };
        initializing = true;
        break;
    }
    if !initializing || condition_true(o, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut running = false;
        for c in items(o, "/status/containerStatuses").iter().rev() {
            restarts += c["restartCount"].as_i64().unwrap_or(0);
            last_restart = later(last_restart, c);
            let waiting = text(c, "/state/waiting/reason");
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if let Some(t) = at(c, "/state/terminated") {
                reason = terminated_reason(t);
            } else if c["ready"] == true && at(c, "/state/running").is_some() {
                running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && running {
            reason = if condition_true(o, "Ready") { "Running" } else { "NotReady" }.into();
        }
    }
    let deleting = at(o, "/metadata/deletionTimestamp").is_some_and(|t| !t.is_null());
    if deleting && text(o, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }
    let restarts = match last_restart {
        Some(t) if restarts != 0 => {
            format!("{restarts} ({} ago)", table::human_duration(now.as_second() - t.as_second()))
        }
        _ => restarts.to_string(),
    };
    Summary { ready: format!("{ready}/{total}"), status: reason, restarts }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    fn check(o: Value, ready: &str, status: &str, restarts: &str) {
        let s = summary(&o, now());
        assert_eq!((s.ready.as_str(), s.status.as_str(), s.restarts.as_str()), (ready, status, restarts), "{o}");
    }

    fn running(ready: bool, restarts: i64) -> Value {
        json!({"ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}})
    }

    // Cases as kube-apiserver's printers_test.go states them (TestPrintPod and friends).
    #[test]
    fn statuses_as_kube_apiserver_prints_them() {
        let two = json!([{"name": "a"}, {"name": "b"}]);
        // Running, one of two ready, restarts summed.
        check(
            json!({"spec": {"containers": two}, "status": {"phase": "podPhase",
                "containerStatuses": [running(true, 3), {"restartCount": 3, "state": {"running": {}}}]}}),
            "1/2",
            "podPhase",
            "6",
        );
        // A waiting container's reason wins.
        check(
            json!({"spec": {"containers": two}, "status": {"phase": "podPhase",
                "containerStatuses": [running(true, 3), {"restartCount": 3, "state": {"waiting": {"reason": "ContainerWaitingReason"}}}]}}),
            "1/2",
            "ContainerWaitingReason",
            "6",
        );
        // Terminated without a reason: the exit code, or the signal.
        check(
            json!({"spec": {"containers": two}, "status": {"phase": "podPhase",
                "containerStatuses": [running(true, 3), {"restartCount": 3, "state": {"terminated": {"exitCode": 1}}}]}}),
            "1/2",
            "ExitCode:1",
            "6",
        );
        check(
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "podPhase",
                "containerStatuses": [{"restartCount": 3, "state": {"terminated": {"exitCode": 2, "signal": 9}}}]}}),
            "0/1",
            "Signal:9",
            "3",
        );
        // Completed with a container still running: Running when the pod is ready, else NotReady.
        let completed = |ready: &str| {
            json!({"spec": {"containers": two}, "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": ready}],
                "containerStatuses": [{"restartCount": 0, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}, running(true, 0)]}})
        };
        check(completed("True"), "1/2", "Running", "0");
        check(completed("False"), "1/2", "NotReady", "0");
        // Deleted: Terminating, unless the phase is terminal; a lost node reads Unknown.
        check(
            json!({"metadata": {"deletionTimestamp": "2026-01-01T11:00:00Z"}, "spec": {"containers": [{"name": "a"}]},
                   "status": {"phase": "Running", "containerStatuses": [running(true, 0)]}}),
            "1/1",
            "Terminating",
            "0",
        );
        check(
            json!({"metadata": {"deletionTimestamp": "2026-01-01T11:00:00Z"}, "spec": {"containers": [{"name": "a"}]},
                   "status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {"reason": "Completed"}}}]}}),
            "0/1",
            "Completed",
            "0",
        );
        check(
            json!({"metadata": {"deletionTimestamp": "2026-01-01T11:00:00Z"}, "spec": {"containers": [{"name": "a"}]},
                   "status": {"phase": "Running", "reason": "NodeLost", "containerStatuses": [running(true, 0)]}}),
            "1/1",
            "Unknown",
            "0",
        );
        // Scheduling gates.
        check(
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}),
            "0/1",
            "SchedulingGated",
            "0",
        );
    }

    #[test]
    fn init_containers_and_sidecars() {
        let spec = json!({"initContainers": [{"name": "init"}, {"name": "side", "restartPolicy": "Always"}],
                          "containers": [{"name": "main"}]});
        // The first init container still running: Init:0/2; restarts count init containers.
        check(
            json!({"spec": spec, "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "init", "restartCount": 2, "state": {"running": {}}}, {"name": "side", "state": {"waiting": {}}}],
                "containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
            "0/2",
            "Init:0/2",
            "2",
        );
        // A failed init container, a waiting one with a reason.
        check(
            json!({"spec": spec, "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "init", "restartCount": 1, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}),
            "0/2",
            "Init:Error",
            "1",
        );
        check(
            json!({"spec": spec, "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "init", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}),
            "0/2",
            "Init:ImagePullBackOff",
            "0",
        );
        // Initialized, the sidecar started and ready: it counts as ready; only its restarts stay,
        // with the time of its last one.
        check(
            json!({"spec": spec, "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [
                    {"name": "init", "restartCount": 5, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                     "lastState": {"terminated": {"finishedAt": "2026-01-01T11:59:00Z"}}},
                    {"name": "side", "restartCount": 1, "started": true, "ready": true, "state": {"running": {}},
                     "lastState": {"terminated": {"finishedAt": "2026-01-01T11:00:00Z"}}}],
                "containerStatuses": [{"name": "main", "restartCount": 2, "ready": true, "state": {"running": {}},
                     "lastState": {"terminated": {"finishedAt": "2026-01-01T11:30:00Z"}}}]}}),
            "2/2",
            "Running",
            "3 (30m ago)",
        );
    }

    #[test]
    fn wide_cells() {
        let pod = json!({"spec": {"nodeName": "n1", "readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
            "status": {"podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                       "conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]}});
        assert_eq!((ip(&pod), readiness_gates(&pod).as_str()), ("10.0.0.1", "1/2"));
        assert_eq!(readiness_gates(&json!({})), "<none>");
    }
}
