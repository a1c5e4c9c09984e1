//! Kubernetes' protobuf encoding of built-in kinds (`application/vnd.kubernetes.protobuf`): the
//! `k8s\0` envelope around a `runtime.Unknown`, whose `raw` is the object's message. kubectl's
//! generators (`kubectl create namespace|configmap|secret|deployment ...`) send it; custom
//! resources have no protobuf form, as on a real cluster.

mod decode;
mod encode;
#[cfg(test)]
mod generate;
mod special;
pub mod table;
pub(crate) mod wire;

use serde_json::{Value, json};

pub use table::{Table, kubernetes};

/// The media type, without parameters.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the body does not start with the Kubernetes protobuf prefix k8s\\x00")]
    NoEnvelope,
    #[error("the protobuf message ends early")]
    Truncated,
    #[error("malformed protobuf: {0}")]
    Malformed(String),
    /// A kind with no protobuf message: a custom resource, or a kind this version lacks.
    #[error("{api_version}, Kind={kind} has no protobuf encoding")]
    NoMessage { api_version: String, kind: String },
    #[error("field {path}: {reason}")]
    Field { path: String, reason: String },
}

impl Error {
    /// The same error, saying in which field (a dotted JSON path) it happened.
    fn within(self, field: &str) -> Error {
        match self {
            Error::Field { path, reason } => Error::Field { path: format!("{field}.{path}"), reason },
            e => Error::Field { path: field.to_owned(), reason: e.to_string() },
        }
    }
}

/// Whether a Content-Type names the protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

/// Whether an Accept header takes protobuf and nothing else (such a client gets protobuf; one
/// that also takes JSON or `*/*` gets JSON).
pub fn protobuf_only(accept: &str) -> bool {
    let mut ranges = accept.split(',').map(str::trim).filter(|r| !r.is_empty()).peekable();
    ranges.peek().is_some() && ranges.all(is_protobuf)
}

/// `apiVersion` and `kind` of an enveloped object, and its message bytes.
fn open(body: &[u8]) -> Result<(String, String, &[u8]), Error> {
    let rest = body.strip_prefix(MAGIC).ok_or(Error::NoEnvelope)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    let mut r = wire::Reader::new(rest);
    while !r.done() {
        match r.key()? {
            (1, wire::LEN) => {
                let mut t = wire::Reader::new(r.bytes()?);
                while !t.done() {
                    match t.key()? {
                        (1, wire::LEN) => api_version = String::from_utf8_lossy(t.bytes()?).into_owned(),
                        (2, wire::LEN) => kind = String::from_utf8_lossy(t.bytes()?).into_owned(),
                        (_, w) => t.skip(w)?,
                    }
                }
            }
            (2, wire::LEN) => raw = r.bytes()?,
            (_, w) => r.skip(w)?,
        }
    }
    Ok((api_version, kind, raw))
}

/// The `apiVersion` and `kind` an enveloped body names (to refuse a custom resource's before
/// decoding it).
pub fn type_of(body: &[u8]) -> Result<(String, String), Error> {
    open(body).map(|(a, k, _)| (a, k))
}

/// An enveloped object -> its JSON, with `apiVersion` and `kind` from the envelope.
pub fn decode_object(table: &Table, body: &[u8]) -> Result<Value, Error> {
    let (api_version, kind, raw) = open(body)?;
    let message = table
        .message_of_kind(&api_version, &kind)
        .ok_or_else(|| Error::NoMessage { api_version: api_version.clone(), kind: kind.clone() })?;
    let mut object = decode::message(table, message, raw)?;
    if let Value::Object(o) = &mut object {
        o.insert("apiVersion".into(), json!(api_version));
        o.insert("kind".into(), json!(kind));
    }
    Ok(object)
}

/// A JSON object (with `apiVersion` and `kind`) -> the enveloped protobuf.
pub fn encode_object(table: &Table, object: &Value) -> Result<Vec<u8>, Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let message = table
        .message_of_kind(api_version, kind)
        .ok_or_else(|| Error::NoMessage { api_version: api_version.into(), kind: kind.into() })?;
    let raw = encode::message(table, message, object)?;
    let mut type_meta = Vec::new();
    wire::put_bytes(&mut type_meta, 1, api_version.as_bytes());
    wire::put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = MAGIC.to_vec();
    wire::put_bytes(&mut out, 1, &type_meta);
    wire::put_bytes(&mut out, 2, &raw);
    // contentEncoding and contentType are empty: raw is the message itself.
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use prost::Message as _;

    /// What a Go client sends: the prost message in the `k8s\0` envelope.
    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC.to_vec(), unknown.encode_to_vec()].concat()
    }

    #[test]
    fn decodes_what_prost_encodes_into_kube_apiserver_json() {
        let pod = core::Pod {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                // Go writes empty strings of non-pointer fields: JSON leaves them out.
                generate_name: Some(String::new()),
                namespace: Some("shop".into()),
                labels: [("app".to_owned(), "web".to_owned())].into(),
                creation_timestamp: Some(meta::Time { seconds: Some(1_764_759_600), nanos: Some(0) }),
                deletion_timestamp: Some(meta::Time::default()),
                ..Default::default()
            }),
            spec: Some(core::PodSpec {
                containers: vec![core::Container {
                    name: Some("web".into()),
                    image: Some("nginx:1.27".into()),
                    ports: vec![core::ContainerPort {
                        container_port: Some(8080),
                        host_port: Some(0),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    }],
                    resources: Some(core::ResourceRequirements {
                        limits: [("memory".to_owned(), Quantity { string: Some("128Mi".into()) })].into(),
                        ..Default::default()
                    }),
                    readiness_probe: Some(core::Probe {
                        handler: Some(core::ProbeHandler {
                            http_get: Some(core::HttpGetAction {
                                path: Some("/healthz".into()),
                                port: Some(IntOrString {
                                    r#type: Some(1),
                                    int_val: Some(0),
                                    str_val: Some("http".into()),
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        period_seconds: Some(5),
                        ..Default::default()
                    }),
                    security_context: Some(core::SecurityContext {
                        run_as_user: Some(0),
                        privileged: Some(false),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                volumes: vec![core::Volume {
                    name: Some("conf".into()),
                    volume_source: Some(core::VolumeSource {
                        config_map: Some(core::ConfigMapVolumeSource {
                            local_object_reference: Some(core::LocalObjectReference { name: Some("web-conf".into()) }),
                            default_mode: Some(420),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                }],
                ..Default::default()
            }),
            status: Some(core::PodStatus::default()),
        };
        let body = envelope("v1", "Pod", pod.encode_to_vec());
        let json = decode_object(kubernetes(), &body).unwrap();
        assert_eq!(
            json,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "creationTimestamp": "2025-12-03T11:00:00Z"},
                "spec": {
                    "containers": [{
                        "name": "web", "image": "nginx:1.27",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"limits": {"memory": "128Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                        "securityContext": {"runAsUser": 0, "privileged": false}
                    }],
                    "volumes": [{"name": "conf", "configMap": {"name": "web-conf", "defaultMode": 420}}]
                }
            })
        );
        assert_eq!(type_of(&body).unwrap(), ("v1".to_owned(), "Pod".to_owned()));
    }

    /// What `kubectl create <generator>` makes, for every generator kind: encoded here, read by
    /// prost's typed message (fields land where Kubernetes' .proto puts them), encoded again by
    /// prost and decoded back to the same JSON.
    #[test]
    fn generator_kinds_round_trip_through_prost() {
        fn via_prost<M: prost::Message + Default>(body: &[u8], check: impl Fn(&M)) -> Vec<u8> {
            let unknown = Unknown::decode(&body[4..]).unwrap();
            let typed = M::decode(unknown.raw.as_deref().unwrap()).unwrap();
            check(&typed);
            let tm = unknown.type_meta.unwrap();
            envelope(tm.api_version.as_deref().unwrap(), tm.kind.as_deref().unwrap(), typed.encode_to_vec())
        }
        let md = |name: &str| json!({"name": name, "namespace": "shop", "labels": {"app": name}});
        type ProstRound = Box<dyn Fn(&[u8]) -> Vec<u8>>;
        let samples: Vec<(Value, ProstRound)> = vec![
            (
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
                Box::new(|b| {
                    via_prost::<core::Namespace>(b, |n| {
                        assert_eq!(n.metadata.as_ref().unwrap().name.as_deref(), Some("shop"))
                    })
                }),
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": md("a"), "data": {"k": "v", "empty": ""}, "binaryData": {"b": "AAEC"}}),
                Box::new(|b| via_prost::<core::ConfigMap>(b, |c| assert_eq!(c.binary_data["b"], vec![0, 1, 2]))),
            ),
            (
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": md("s"), "type": "Opaque", "data": {"password": "aHVudGVyMg=="}}),
                Box::new(|b| via_prost::<core::Secret>(b, |s| assert_eq!(s.data["password"], b"hunter2"))),
            ),
            (
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": md("robot"), "automountServiceAccountToken": false}),
                Box::new(|b| {
                    via_prost::<core::ServiceAccount>(b, |s| assert_eq!(s.automount_service_account_token, Some(false)))
                }),
            ),
            (
                json!({"apiVersion": "v1", "kind": "Service", "metadata": md("web"), "spec": {"type": "ClusterIP", "selector": {"app": "web"},
                    "ports": [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}),
                Box::new(|b| {
                    via_prost::<core::Service>(b, |s| {
                        let port = &s.spec.as_ref().unwrap().ports[0];
                        assert_eq!((port.port, port.target_port.as_ref().unwrap().int_val), (Some(80), Some(8080)));
                    })
                }),
            ),
            (
                json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": md("q"), "spec": {"hard": {"pods": "10", "requests.cpu": "2"}}}),
                Box::new(|b| {
                    via_prost::<core::ResourceQuota>(b, |q| {
                        assert_eq!(q.spec.as_ref().unwrap().hard["requests.cpu"].string.as_deref(), Some("2"));
                    })
                }),
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md("web"), "spec": {"replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx", "command": ["nginx", "-g"]}]}}}}),
                Box::new(|b| {
                    via_prost::<k8s_pb::api::apps::v1::Deployment>(b, |d| {
                        let spec = d.spec.as_ref().unwrap();
                        assert_eq!(spec.replicas, Some(0));
                        let image = &spec.template.as_ref().unwrap().spec.as_ref().unwrap().containers[0].image;
                        assert_eq!(image.as_deref(), Some("nginx"));
                    })
                }),
            ),
            (
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": md("once"), "spec": {"backoffLimit": 0, "template": {"spec": {
                    "restartPolicy": "Never", "containers": [{"name": "once", "image": "busybox", "command": ["date"]}]}}}}),
                Box::new(|b| {
                    via_prost::<k8s_pb::api::batch::v1::Job>(b, |j| {
                        assert_eq!(j.spec.as_ref().unwrap().backoff_limit, Some(0))
                    })
                }),
            ),
            (
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": md("nightly"), "spec": {"schedule": "0 3 * * *", "jobTemplate": {
                    "metadata": {"name": "nightly"}, "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "n", "image": "busybox"}]}}}}}}),
                Box::new(|b| {
                    via_prost::<k8s_pb::api::batch::v1::CronJob>(b, |c| {
                        assert_eq!(c.spec.as_ref().unwrap().schedule.as_deref(), Some("0 3 * * *"));
                    })
                }),
            ),
            (
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": md("reader"),
                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
                Box::new(|b| {
                    via_prost::<k8s_pb::api::rbac::v1::Role>(b, |r| assert_eq!(r.rules[0].verbs, ["get", "list"]))
                }),
            ),
            (
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "readers"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                    "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "ann"}]}),
                Box::new(|b| {
                    via_prost::<k8s_pb::api::rbac::v1::ClusterRoleBinding>(b, |r| {
                        assert_eq!(r.subjects[0].name.as_deref(), Some("ann"));
                    })
                }),
            ),
            (
                json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": md("pdb"), "spec": {"minAvailable": 0, "selector": {"matchLabels": {"app": "web"}}}}),
                Box::new(|b| {
                    via_prost::<k8s_pb::api::policy::v1::PodDisruptionBudget>(b, |p| {
                        assert_eq!(p.spec.as_ref().unwrap().min_available.as_ref().unwrap().int_val, Some(0));
                    })
                }),
            ),
            (
                json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000, "description": "d", "preemptionPolicy": "Never"}),
                Box::new(|b| {
                    via_prost::<k8s_pb::api::scheduling::v1::PriorityClass>(b, |p| assert_eq!(p.value, Some(1000)))
                }),
            ),
            (
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": md("web"), "spec": {"rules": [{"host": "shop.example",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
                Box::new(|b| {
                    via_prost::<k8s_pb::api::networking::v1::Ingress>(b, |i| {
                        let rule = &i.spec.as_ref().unwrap().rules[0];
                        let http = rule.ingress_rule_value.as_ref().unwrap().http.as_ref().unwrap();
                        assert_eq!(http.paths[0].path.as_deref(), Some("/"));
                    })
                }),
            ),
            (
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": md("run"), "spec": {"containers": [{"name": "run", "image": "nginx",
                    "livenessProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 3},
                    "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}}]}],
                    "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}], "terminationGracePeriodSeconds": 0}}),
                Box::new(|b| {
                    via_prost::<core::Pod>(b, |p| {
                        let spec = p.spec.as_ref().unwrap();
                        let env = &spec.containers[0].env[1];
                        let secret = env.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
                        assert_eq!(secret.local_object_reference.as_ref().unwrap().name.as_deref(), Some("s"));
                        assert!(spec.volumes[0].volume_source.as_ref().unwrap().empty_dir.is_some());
                    })
                }),
            ),
        ];
        for (object, prost_round) in samples {
            let body = encode_object(kubernetes(), &object).unwrap();
            let again = prost_round(&body);
            assert_eq!(decode_object(kubernetes(), &again).unwrap(), object, "{}", object["kind"]);
        }
    }

    #[test]
    fn lists_times_and_errors() {
        let list = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "7", "continue": "abc"},
            "items": [{"metadata": {"name": "a", "creationTimestamp": "2025-12-03T11:00:00Z"}, "data": {"k": "v"}}]});
        let body = encode_object(kubernetes(), &list).unwrap();
        let unknown = Unknown::decode(&body[4..]).unwrap();
        let typed = core::ConfigMapList::decode(unknown.raw.as_deref().unwrap()).unwrap();
        assert_eq!(typed.metadata.as_ref().unwrap().r#continue.as_deref(), Some("abc"));
        assert_eq!(
            typed.items[0].metadata.as_ref().unwrap().creation_timestamp.as_ref().unwrap().seconds,
            Some(1_764_759_600)
        );
        assert_eq!(decode_object(kubernetes(), &body).unwrap(), list);

        let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": "2025-12-03T11:00:00.250000Z",
            "reason": "Pulled", "regarding": {"kind": "Pod", "name": "web"}});
        let round = decode_object(kubernetes(), &encode_object(kubernetes(), &event).unwrap()).unwrap();
        assert_eq!(round, event, "MicroTime keeps microseconds");

        let widget = json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"}});
        assert!(matches!(encode_object(kubernetes(), &widget), Err(Error::NoMessage { .. })));
        assert!(matches!(decode_object(kubernetes(), b"{\"kind\":\"Pod\"}"), Err(Error::NoEnvelope)));
        let truncated = &body[..body.len() - 3];
        let err = decode_object(kubernetes(), truncated).unwrap_err();
        assert!(matches!(err, Error::Truncated | Error::Field { .. }), "{err}");
        let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}});
        let err = encode_object(kubernetes(), &bad).unwrap_err().to_string();
        assert_eq!(err, "field metadata.name: malformed protobuf: a string expected, got 5");
        assert!(is_protobuf("application/vnd.kubernetes.protobuf; charset=x"));
        assert!(!is_protobuf("application/json"));
        assert!(protobuf_only("application/vnd.kubernetes.protobuf"));
        assert!(!protobuf_only("application/vnd.kubernetes.protobuf, */*"));
        assert!(!protobuf_only(""));
    }
}
