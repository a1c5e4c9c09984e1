//! The sync engine's metrics, under upstream's names (`clustersynchro_resourcesynchro_*`), with
//! the label scope of `--resource-synchro-metrics-labels`, plus per-cluster health.

use std::time::Duration;

use api_types::Gvr;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A metric's labels: `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

/// Which labels the resource synchro metrics carry (upstream's `--resource-synchro-metrics-labels`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelScope {
    pub cluster: bool,
    pub group_version: bool,
    pub resource: bool,
}

impl std::str::FromStr for LabelScope {
    type Err = String;

    /// `empty` (no labels), or a comma list of `cluster`, `gv` / `groupversion`, `resource`,
    /// `gvr` (= gv + resource).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut scope = LabelScope::default();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "empty" => {}
                "cluster" => scope.cluster = true,
                "gv" | "groupversion" => scope.group_version = true,
                "resource" => scope.resource = true,
                "gvr" => {
                    scope.group_version = true;
                    scope.resource = true;
                }
                other => {
                    return Err(format!(
                        "unknown metrics label {other:?}: use empty, or a comma list of cluster, gv (groupversion), resource, gvr"
                    ));
                }
            }
        }
        Ok(scope)
    }
}

impl LabelScope {
    /// The labels of one resource synchro's series.
    pub fn labels(&self, cluster: &str, gvr: &Gvr) -> Labels {
        let mut l = Vec::new();
        if self.cluster {
            l.push(("cluster".to_owned(), cluster.to_owned()));
        }
        if self.group_version {
            l.push(("group".to_owned(), gvr.group.clone()));
            l.push(("version".to_owned(), gvr.version.clone()));
        }
        if self.resource {
            l.push(("resource".to_owned(), gvr.resource.clone()));
        }
        l
    }
}

#[derive(Clone)]
struct StorageBuckets;

impl MetricConstructor<Histogram> for StorageBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new([0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 1.0, 1.5, 3.0, 5.0, 8.0, 15.0])
    }
}

/// Every metric of the sync engine. Cheap to clone (the families are shared).
#[derive(Clone)]
pub struct Metrics {
    pub scope: LabelScope,
    pub stored: Family<Labels, Gauge>,
    pub added: Family<Labels, Counter>,
    pub updated: Family<Labels, Counter>,
    pub deleted: Family<Labels, Counter>,
    pub failed: Family<Labels, Counter>,
    storage_duration: Family<Labels, Histogram, StorageBuckets>,
    pub cluster_healthy: Family<Labels, Gauge>,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry, scope: LabelScope) -> Self {
        let m = Self {
            scope,
            stored: Family::default(),
            added: Family::default(),
            updated: Family::default(),
            deleted: Family::default(),
            failed: Family::default(),
            storage_duration: Family::new_with_constructor(StorageBuckets),
            cluster_healthy: Family::default(),
        };
        let sub = registry.sub_registry_with_prefix("clustersynchro_resourcesynchro");
        sub.register("storaged_resource_total", "Objects currently stored", m.stored.clone());
        sub.register("resource_added", "Objects added to the store", m.added.clone());
        sub.register("resource_updated", "Objects updated in the store", m.updated.clone());
        sub.register("resource_deleted", "Objects deleted from the store", m.deleted.clone());
        sub.register("resource_failed", "Failed storage attempts", m.failed.clone());
        sub.register("storage_duration_seconds", "Time of one storage write", m.storage_duration.clone());
        registry.register(
            "pedia_cluster_healthy",
            "Whether the member cluster's last health probe succeeded (1) or not (0)",
            m.cluster_healthy.clone(),
        );
        m
    }

    pub fn observe_write(&self, labels: &Labels, took: Duration) {
        self.storage_duration.get_or_create(labels).observe(took.as_secs_f64());
    }

    pub fn set_healthy(&self, cluster: &str, healthy: bool) {
        self.cluster_healthy.get_or_create(&vec![("cluster".to_owned(), cluster.to_owned())]).set(i64::from(healthy));
    }

    /// A cluster is no longer synced here: its health series goes.
    pub fn forget_cluster(&self, cluster: &str) {
        self.cluster_healthy.remove(&vec![("cluster".to_owned(), cluster.to_owned())]);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn label_scopes_parse_as_upstream() {
        assert_eq!("empty".parse::<LabelScope>().unwrap(), LabelScope::default());
        let all: LabelScope = "cluster,gvr".parse().unwrap();
        assert_eq!(all, LabelScope { cluster: true, group_version: true, resource: true });
        assert!("groupversion".parse::<LabelScope>().unwrap().group_version);
        assert!("cluster,bogus".parse::<LabelScope>().unwrap_err().contains("bogus"));
        let labels = all.labels("c", &Gvr::new("apps", "v1", "deployments"));
        assert_eq!(labels.len(), 4);
        assert!(LabelScope::default().labels("c", &Gvr::new("", "v1", "pods")).is_empty());
    }

    #[test]
    fn metrics_encode_with_upstream_names() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry, "cluster".parse().unwrap());
        let labels = m.scope.labels("member-1", &Gvr::new("", "v1", "pods"));
        m.added.get_or_create(&labels).inc_by(3);
        m.stored.get_or_create(&labels).set(3);
        m.observe_write(&labels, Duration::from_millis(30));
        m.set_healthy("member-1", true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"clustersynchro_resourcesynchro_resource_added_total{cluster="member-1"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"clustersynchro_resourcesynchro_storaged_resource_total{cluster="member-1"} 3"#),
            "{text}"
        );
        assert!(text.contains("clustersynchro_resourcesynchro_storage_duration_seconds_bucket"), "{text}");
        assert!(text.contains(r#"pedia_cluster_healthy{cluster="member-1"} 1"#), "{text}");
    }
}
