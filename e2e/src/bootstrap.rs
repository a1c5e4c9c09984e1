//! What a fresh kubeadm cluster holds before anyone uses it, so a member looks like a real one:
//! per namespace the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap (the
//! controllers add them to every new namespace), the bootstrap RBAC roles and bindings, the API
//! priority and fairness configuration, kube-system's DNS, and a Lease per node. Pure builders.

use serde_json::{Value, json};

/// The objects the namespace controllers add to namespace `ns`; `ca` is the cluster CA (PEM).
pub fn namespace_objects(ns: &str, ca: &str) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}),
        root_ca(ns, ca),
    ]
}

/// `kube-root-ca.crt` of a namespace.
pub fn root_ca(ns: &str, ca: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                     "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
        "data": {"ca.crt": ca}})
}

const RBAC: &str = "rbac.authorization.k8s.io/v1";

fn bootstrap_labels() -> Value {
    json!({"kubernetes.io/bootstrapping": "rbac-defaults"})
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn cluster_role(name: &str, rules: Vec<Value>, aggregate_to: &[&str]) -> Value {
    let mut labels = bootstrap_labels();
    for a in aggregate_to {
        labels[format!("rbac.authorization.k8s.io/aggregate-to-{a}")] = json!("true");
    }
    json!({"apiVersion": RBAC, "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels, "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules})
}

fn binding(name: &str, role: &str, subject_kind: &str, subject: &str) -> Value {
    json!({"apiVersion": RBAC, "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": bootstrap_labels(), "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": subject_kind, "name": subject}]})
}

fn rbac() -> Vec<Value> {
    let read = ["get", "list", "watch"];
    let write = ["create", "delete", "deletecollection", "patch", "update"];
    let all_verbs: Vec<&str> = read.iter().chain(write.iter()).copied().collect();
    let workloads =
        ["pods", "services", "configmaps", "secrets", "persistentvolumeclaims", "serviceaccounts", "endpoints"];
    let apps = ["deployments", "replicasets", "statefulsets", "daemonsets"];
    vec![
        cluster_role(
            "cluster-admin",
            vec![rule(&["*"], &["*"], &["*"]), json!({"nonResourceURLs": ["*"], "verbs": ["*"]})],
            &[],
        ),
        cluster_role(
            "admin",
            vec![
                rule(&[""], &workloads, &all_verbs),
                rule(&["apps"], &apps, &all_verbs),
                rule(&["rbac.authorization.k8s.io"], &["roles", "rolebindings"], &all_verbs),
            ],
            &[],
        ),
        cluster_role("edit", vec![rule(&[""], &workloads, &all_verbs), rule(&["apps"], &apps, &all_verbs)], &["admin"]),
        cluster_role(
            "view",
            vec![
                rule(&[""], &["pods", "services", "configmaps", "endpoints", "persistentvolumeclaims"], &read),
                rule(&["apps"], &apps, &read),
            ],
            &["edit"],
        ),
        cluster_role(
            "system:basic-user",
            vec![
                rule(&["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"], &["create"]),
                rule(&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"]),
            ],
            &[],
        ),
        cluster_role(
            "system:discovery",
            vec![
                json!({"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}),
            ],
            &[],
        ),
        cluster_role(
            "system:public-info-viewer",
            vec![
                json!({"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}),
            ],
            &[],
        ),
        cluster_role(
            "system:node",
            vec![
                rule(&[""], &["nodes", "nodes/status", "pods", "pods/status", "events"], &all_verbs),
                rule(&["coordination.k8s.io"], &["leases"], &all_verbs),
            ],
            &[],
        ),
        cluster_role(
            "system:kube-scheduler",
            vec![rule(&[""], &["pods", "nodes", "bindings", "events"], &all_verbs)],
            &[],
        ),
        cluster_role(
            "system:kube-controller-manager",
            vec![rule(&["*"], &["*"], &read), rule(&[""], &["events", "serviceaccounts", "secrets"], &all_verbs)],
            &[],
        ),
        cluster_role(
            "system:coredns",
            vec![
                rule(&[""], &["endpoints", "services", "pods", "namespaces"], &["list", "watch"]),
                rule(&["discovery.k8s.io"], &["endpointslices"], &["list", "watch"]),
            ],
            &[],
        ),
        binding("cluster-admin", "cluster-admin", "Group", "system:masters"),
        binding("system:basic-user", "system:basic-user", "Group", "system:authenticated"),
        binding("system:discovery", "system:discovery", "Group", "system:authenticated"),
        binding("system:public-info-viewer", "system:public-info-viewer", "Group", "system:unauthenticated"),
        binding("system:kube-scheduler", "system:kube-scheduler", "User", "system:kube-scheduler"),
        binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            "User",
            "system:kube-controller-manager",
        ),
        json!({"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": "system:coredns", "labels": bootstrap_labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]}),
    ]
}

const FLOWCONTROL: &str = "flowcontrol.apiserver.k8s.io/v1";

fn priority_level(name: &str, shares: Option<i64>) -> Value {
    let spec = match shares {
        None => json!({"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}),
        Some(s) => json!({"type": "Limited", "limited": {"nominalConcurrencyShares": s, "lendablePercent": 0,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 64, "handSize": 6, "queueLengthLimit": 50}}}}),
    };
    json!({"apiVersion": FLOWCONTROL, "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}}, "spec": spec})
}

fn flow_schema(name: &str, level: &str, precedence: i64, group: &str) -> Value {
    json!({"apiVersion": FLOWCONTROL, "kind": "FlowSchema",
        "metadata": {"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}},
        "spec": {"priorityLevelConfiguration": {"name": level}, "matchingPrecedence": precedence,
                 "distinguisherMethod": {"type": "ByUser"},
                 "rules": [{"subjects": [{"kind": "Group", "group": {"name": group}}],
                            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}],
                            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}})
}

fn flowcontrol() -> Vec<Value> {
    vec![
        priority_level("exempt", None),
        priority_level("system", Some(30)),
        priority_level("node-high", Some(40)),
        priority_level("leader-election", Some(10)),
        priority_level("workload-high", Some(40)),
        priority_level("workload-low", Some(100)),
        priority_level("global-default", Some(20)),
        priority_level("catch-all", Some(5)),
        flow_schema("exempt", "exempt", 1, "system:masters"),
        flow_schema("system-nodes", "system", 500, "system:nodes"),
        flow_schema("kube-controller-manager", "workload-high", 800, "system:kube-controller-manager"),
        flow_schema("service-accounts", "workload-low", 9000, "system:serviceaccounts"),
        flow_schema("global-default", "global-default", 9900, "system:unauthenticated"),
        flow_schema("catch-all", "catch-all", 10000, "system:authenticated"),
    ]
}

fn dns() -> Vec<Value> {
    let labels = json!({"k8s-app": "kube-dns"});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": "kube-system"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": ".:53 {\n    errors\n    health\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf\n    cache 30\n    loop\n    reload\n    loadbalance\n}\n"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"serviceAccountName": "coredns", "priorityClassName": "system-cluster-critical",
                        "containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.0", "args": ["-conf", "/etc/coredns/Corefile"],
                                        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}, {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}, {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}]}]}}},
            "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2, "observedGeneration": 1}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
            "spec": {"clusterIP": "10.96.0.10", "selector": labels,
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}, {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}, {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}),
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-cluster-critical"},
            "value": 2_000_000_000, "globalDefault": false, "description": "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."}),
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-node-critical"},
            "value": 2_000_001_000, "globalDefault": false, "description": "Used for system critical pods that must not be moved from their current node."}),
    ]
}

/// Cluster-wide objects of a fresh cluster (its namespaces exist already).
pub fn cluster_objects() -> Vec<Value> {
    let mut out = rbac();
    out.extend(flowcontrol());
    out.extend(dns());
    out
}

/// The heartbeat Lease of a node in `kube-node-lease`.
pub fn node_lease(node: &str, node_uid: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease",
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}]},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": crate::meta::now_micro()}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_cluster_has_what_kubeadm_creates() {
        let objects = cluster_objects();
        let names = |kind: &str| -> Vec<String> {
            objects
                .iter()
                .filter(|o| o["kind"] == kind)
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
                .collect()
        };
        for role in ["cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery"] {
            assert!(names("ClusterRole").contains(&role.to_owned()), "{role}");
        }
        let admin_binding = objects
            .iter()
            .find(|o| o["kind"] == "ClusterRoleBinding" && o["metadata"]["name"] == "cluster-admin")
            .unwrap();
        assert_eq!(admin_binding["subjects"][0]["name"], "system:masters");
        assert!(names("FlowSchema").contains(&"catch-all".to_owned()));
        assert!(names("PriorityLevelConfiguration").contains(&"exempt".to_owned()));
        assert_eq!(names("Service"), ["kube-dns", "kubernetes"]);
        let ns = namespace_objects("shop", "PEM");
        assert_eq!(ns[0]["metadata"]["name"], "default");
        assert_eq!(ns[1]["data"]["ca.crt"], "PEM");
        assert_eq!(node_lease("n1", "u1")["metadata"]["namespace"], "kube-node-lease");
    }
}
