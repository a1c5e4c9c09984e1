//! The built-in resources of a Kubernetes 1.33 cluster, as its discovery documents list them
//! (kinds, scope, verbs, short names, categories, subresources). kubesim serves all of them from
//! generic JSON storage; the search apiserver takes their discovery details from here.

/// One discovery line: `group/version resource Kind scope verbs shortNames categories subresources`.
/// scope: N = namespaced, C = cluster. verbs: F = full CRUD + watch, FN = full without
/// deletecollection, C = create only, GL = get,list. `-` = none. Subresources: `status` and
/// `scale` have their usual kinds and verbs; others are `name=verb/verb:Kind`.
const TABLE: &str = "
v1 bindings Binding N C - - -
v1 componentstatuses ComponentStatus C GL cs - -
v1 configmaps ConfigMap N F cm - -
v1 endpoints Endpoints N F ep - -
v1 events Event N F ev - -
v1 limitranges LimitRange N F limits - -
v1 namespaces Namespace C FN ns - status,finalize=update:Namespace
v1 nodes Node C F no - status,proxy=create/delete/get/patch/update:NodeProxyOptions
v1 persistentvolumeclaims PersistentVolumeClaim N F pvc - status
v1 persistentvolumes PersistentVolume C F pv - status
v1 pods Pod N F po all status,attach=create/get:PodAttachOptions,binding=create:Binding,ephemeralcontainers=get/patch/update:Pod,eviction=create:Eviction,exec=create/get:PodExecOptions,log=get:Pod,portforward=create/get:PodPortForwardOptions,proxy=create/delete/get/patch/update:PodProxyOptions,resize=get/patch/update:Pod
v1 podtemplates PodTemplate N F - - -
v1 replicationcontrollers ReplicationController N F rc all status,scale
v1 resourcequotas ResourceQuota N F quota - status
v1 secrets Secret N F - - -
v1 serviceaccounts ServiceAccount N F sa - token=create:TokenRequest
v1 services Service N F svc all status,proxy=create/delete/get/patch/update:ServiceProxyOptions
admissionregistration.k8s.io/v1 mutatingwebhookconfigurations MutatingWebhookConfiguration C F - api-extensions -
admissionregistration.k8s.io/v1 validatingadmissionpolicies ValidatingAdmissionPolicy C F - api-extensions status
admissionregistration.k8s.io/v1 validatingadmissionpolicybindings ValidatingAdmissionPolicyBinding C F - api-extensions -
admissionregistration.k8s.io/v1 validatingwebhookconfigurations ValidatingWebhookConfiguration C F - api-extensions -
apiextensions.k8s.io/v1 customresourcedefinitions CustomResourceDefinition C F crd,crds api-extensions status
apiregistration.k8s.io/v1 apiservices APIService C F - api-extensions status
apps/v1 controllerrevisions ControllerRevision N F - - -
apps/v1 daemonsets DaemonSet N F ds all status
apps/v1 deployments Deployment N F deploy all status,scale
apps/v1 replicasets ReplicaSet N F rs all status,scale
apps/v1 statefulsets StatefulSet N F sts all status,scale
authentication.k8s.io/v1 selfsubjectreviews SelfSubjectReview C C - - -
authentication.k8s.io/v1 tokenreviews TokenReview C C - - -
authorization.k8s.io/v1 localsubjectaccessreviews LocalSubjectAccessReview N C - - -
authorization.k8s.io/v1 selfsubjectaccessreviews SelfSubjectAccessReview C C - - -
authorization.k8s.io/v1 selfsubjectrulesreviews SelfSubjectRulesReview C C - - -
authorization.k8s.io/v1 subjectaccessreviews SubjectAccessReview C C - - -
autoscaling/v2 horizontalpodautoscalers HorizontalPodAutoscaler N F hpa all status
autoscaling/v1 horizontalpodautoscalers HorizontalPodAutoscaler N F hpa all status
batch/v1 cronjobs CronJob N F cj all status
batch/v1 jobs Job N F - all status
certificates.k8s.io/v1 certificatesigningrequests CertificateSigningRequest C F csr - approval=get/patch/update:CertificateSigningRequest,status
coordination.k8s.io/v1 leases Lease N F - - -
discovery.k8s.io/v1 endpointslices EndpointSlice N F - - -
events.k8s.io/v1 events Event N F ev - -
flowcontrol.apiserver.k8s.io/v1 flowschemas FlowSchema C F - - status
flowcontrol.apiserver.k8s.io/v1 prioritylevelconfigurations PriorityLevelConfiguration C F - - status
networking.k8s.io/v1 ingressclasses IngressClass C F - - -
networking.k8s.io/v1 ingresses Ingress N F ing - status
networking.k8s.io/v1 ipaddresses IPAddress C F ip - -
networking.k8s.io/v1 networkpolicies NetworkPolicy N F netpol - -
networking.k8s.io/v1 servicecidrs ServiceCIDR C F - - status
node.k8s.io/v1 runtimeclasses RuntimeClass C F - - -
policy/v1 poddisruptionbudgets PodDisruptionBudget N F pdb - status
rbac.authorization.k8s.io/v1 clusterrolebindings ClusterRoleBinding C F - - -
rbac.authorization.k8s.io/v1 clusterroles ClusterRole C F - - -
rbac.authorization.k8s.io/v1 rolebindings RoleBinding N F - - -
rbac.authorization.k8s.io/v1 roles Role N F - - -
scheduling.k8s.io/v1 priorityclasses PriorityClass C F pc - -
storage.k8s.io/v1 csidrivers CSIDriver C F - - -
storage.k8s.io/v1 csinodes CSINode C F - - -
storage.k8s.io/v1 csistoragecapacities CSIStorageCapacity N F - - -
storage.k8s.io/v1 storageclasses StorageClass C F sc - -
storage.k8s.io/v1 volumeattachments VolumeAttachment C F - - status
";

/// A subresource as discovery lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    pub name: String,
    pub kind: String,
    /// `(group, version)` of the subresource's kind when it differs (`scale` is autoscaling/v1).
    pub group_version: Option<(String, String)>,
    pub verbs: Vec<String>,
}

/// One resource of one group-version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<Subresource>,
}

impl ResourceInfo {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s.name == "status")
    }

    /// Only create (reviews, bindings): nothing is stored.
    pub fn create_only(&self) -> bool {
        self.verbs == ["create"]
    }

    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

fn list(field: &str) -> Vec<String> {
    if field == "-" { Vec::new() } else { field.split(',').map(str::to_owned).collect() }
}

fn verbs(code: &str) -> Vec<String> {
    let v: &[&str] = match code {
        "F" => &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "FN" => &["create", "delete", "get", "list", "patch", "update", "watch"],
        "C" => &["create"],
        _ => &["get", "list"],
    };
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn subresource(spec: &str, kind: &str) -> Subresource {
    let three = |a: &str, b: &str, c: &str| vec![a.to_owned(), b.to_owned(), c.to_owned()];
    match spec.split_once('=') {
        None if spec == "scale" => Subresource {
            name: "scale".into(),
            kind: "Scale".into(),
            group_version: Some(("autoscaling".into(), "v1".into())),
            verbs: three("get", "patch", "update"),
        },
        None => Subresource {
            name: spec.to_owned(),
            kind: kind.to_owned(),
            group_version: None,
            verbs: three("get", "patch", "update"),
        },
        Some((name, rest)) => {
            let (verbs, kind) = rest.split_once(':').unwrap_or((rest, kind));
            Subresource {
                name: name.to_owned(),
                kind: kind.to_owned(),
                group_version: None,
                verbs: verbs.split('/').map(str::to_owned).collect(),
            }
        }
    }
}

/// Every built-in resource, in discovery order.
pub fn builtin() -> Vec<ResourceInfo> {
    TABLE
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [gv, resource, kind, scope, verb_code, short, categories, subs] = f.as_slice() else {
                return None;
            };
            let (group, version) = gv.split_once('/').unwrap_or(("", gv));
            Some(ResourceInfo {
                group: group.to_owned(),
                version: version.to_owned(),
                resource: (*resource).to_owned(),
                singular: kind.to_lowercase(),
                kind: (*kind).to_owned(),
                namespaced: *scope == "N",
                verbs: verbs(verb_code),
                short_names: list(short),
                categories: list(categories),
                subresources: list(subs).iter().map(|s| subresource(s, kind)).collect(),
            })
        })
        .collect()
}

/// Whether `group/resource` is a built-in resource (any version).
pub fn is_builtin(group: &str, resource: &str) -> bool {
    static ALL: std::sync::OnceLock<Vec<ResourceInfo>> = std::sync::OnceLock::new();
    ALL.get_or_init(builtin).iter().any(|r| r.group == group && r.resource == resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_completely() {
        let all = builtin();
        let lines = TABLE.lines().filter(|l| !l.trim().is_empty()).count();
        assert_eq!(all.len(), lines, "every line of the table is well formed");
        let pods = all.iter().find(|r| r.resource == "pods").unwrap();
        assert!(pods.namespaced && pods.has_status() && pods.short_names == ["po"]);
        let exec = pods.subresources.iter().find(|s| s.name == "exec").unwrap();
        assert_eq!((exec.kind.as_str(), exec.verbs.len()), ("PodExecOptions", 2));
        let tr = all.iter().find(|r| r.resource == "tokenreviews").unwrap();
        assert!(tr.create_only() && !tr.namespaced);
        let deploy = all.iter().find(|r| r.resource == "deployments").unwrap();
        let scale = deploy.subresources.iter().find(|s| s.name == "scale").unwrap();
        assert_eq!(scale.group_version, Some(("autoscaling".into(), "v1".into())));
        assert!(all.iter().any(|r| r.resource == "customresourcedefinitions" && r.short_names == ["crd", "crds"]));
        assert!(all.iter().any(|r| r.resource == "leases" && r.group == "coordination.k8s.io"));
        assert!(is_builtin("apps", "deployments") && is_builtin("", "pods"));
        assert!(!is_builtin("example.com", "widgets") && !is_builtin("apps", "pods"));
    }
}
