//! A search request in typed form: URL parameters and search labels merged.

use super::*;
use crate::gvr::GroupResource;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// An owner filter (`ownerUID` / `ownerName`, optionally `ownerGR` and `ownerSeniority`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerFilter {
    pub uid: Option<String>,
    pub name: Option<String>,
    pub group_resource: Option<GroupResource>,
    /// 0 = direct owner, 1 = the owner's owner, ...
    pub seniority: i64,
}

/// A search request in typed form: URL parameters and search labels merged, the remaining
/// label requirements and the field selector parsed. Both the apiserver and the store use it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    pub clusters: Vec<String>,
    pub exclude_clusters: Vec<String>,
    pub namespaces: Vec<String>,
    pub exclude_namespaces: Vec<String>,
    pub names: Vec<String>,
    pub exclude_names: Vec<String>,
    /// Substrings the name must contain (all of them).
    pub fuzzy_names: Vec<String>,
    /// Real label requirements (search labels removed).
    pub labels: crate::selector::LabelSelector,
    pub fields: crate::fields::FieldPathSelector,
    pub since: Option<Timestamp>,
    pub before: Option<Timestamp>,
    pub owner: Option<OwnerFilter>,
    pub order_by: Vec<OrderBy>,
    pub limit: Option<i64>,
    pub continue_token: Option<String>,
    pub with_remaining_count: bool,
    pub only_metadata: bool,
    pub inject_events: bool,
}

fn label_error(key: &str, reason: impl Into<String>) -> QueryError {
    QueryError::Invalid { param: "labelSelector", value: key.to_owned(), reason: reason.into() }
}

impl SearchQuery {
    /// Builds the query of a request. `path_cluster` and `path_namespace` come from the URL path
    /// (`/clusters/<c>/...`, `/namespaces/<ns>/...`) and win over parameters and labels.
    pub fn from_options(
        opts: &ListOptions,
        path_cluster: Option<&str>,
        path_namespace: Option<&str>,
    ) -> Result<Self, QueryError> {
        use crate::selector::{LabelSelector, Operator};
        let selector = LabelSelector::parse(opts.label_selector.as_deref().unwrap_or_default())
            .map_err(|e| QueryError::Invalid { param: "labelSelector", value: e.selector.clone(), reason: e.reason })?;
        let fields = crate::fields::FieldPathSelector::parse(opts.field_selector.as_deref().unwrap_or_default())
            .map_err(|e| QueryError::Invalid { param: "fieldSelector", value: e.selector.clone(), reason: e.reason })?;
        let mut q = SearchQuery {
            clusters: opts.clusters.clone(),
            namespaces: opts.namespaces.clone(),
            names: opts.names.clone(),
            fields,
            since: opts.since,
            before: opts.before,
            order_by: opts.order_by.clone(),
            limit: opts.limit.filter(|l| *l > 0),
            continue_token: opts.continue_token.clone(),
            with_remaining_count: opts.with_remaining_count.unwrap_or(false),
            only_metadata: opts.only_metadata,
            inject_events: opts.inject_events,
            ..SearchQuery::default()
        };
        let mut owner = OwnerFilter {
            uid: opts.owner_uid.clone(),
            name: opts.owner_name.clone(),
            group_resource: opts.owner_group_resource.clone(),
            seniority: opts.owner_seniority,
        };
        for r in selector.requirements {
            let key = r.key.as_str();
            if !key.contains("clusterpedia.io") {
                q.labels.requirements.push(r);
                continue;
            }
            let exclude = matches!(r.operator, Operator::NotEquals | Operator::NotIn);
            let one = || -> Result<String, QueryError> {
                match r.values.as_slice() {
                    [v] => Ok(v.clone()),
                    _ => Err(label_error(key, "needs exactly one value")),
                }
            };
            if matches!(
                r.operator,
                Operator::Exists | Operator::DoesNotExist | Operator::GreaterThan | Operator::LessThan
            ) {
                return Err(label_error(key, "search labels take values: use =, in, != or notin"));
            }
            match key {
                labels::CLUSTERS if exclude => q.exclude_clusters.extend(r.values.clone()),
                labels::CLUSTERS if q.clusters.is_empty() => q.clusters = r.values.clone(),
                labels::NAMESPACES if exclude => q.exclude_namespaces.extend(r.values.clone()),
                labels::NAMESPACES if q.namespaces.is_empty() => q.namespaces = r.values.clone(),
                labels::NAMES if exclude => q.exclude_names.extend(r.values.clone()),
                labels::NAMES if q.names.is_empty() => q.names = r.values.clone(),
                labels::CLUSTERS | labels::NAMESPACES | labels::NAMES => {}
                labels::FUZZY_NAME if !exclude => q.fuzzy_names.extend(r.values.clone()),
                labels::ORDER_BY if q.order_by.is_empty() => {
                    q.order_by = r
                        .values
                        .iter()
                        .map(|v| match v.strip_suffix("_desc") {
                            Some(f) => OrderBy { field: f.to_owned(), desc: true },
                            None => OrderBy { field: v.strip_suffix("_asc").unwrap_or(v).to_owned(), desc: false },
                        })
                        .collect();
                }
                labels::LIMIT if q.limit.is_none() => {
                    q.limit = Some(one()?.parse().map_err(|_| label_error(key, "must be an integer"))?);
                }
                labels::WITH_CONTINUE => {}
                labels::WITH_REMAINING_COUNT => q.with_remaining_count = parse_bool(&one()?),
                labels::INJECT_EVENTS => q.inject_events = parse_bool(&one()?),
                labels::SINCE if q.since.is_none() => q.since = Some(parse_time("since", &one()?)?),
                labels::BEFORE if q.before.is_none() => q.before = Some(parse_time("before", &one()?)?),
                labels::OWNER_UID if owner.uid.is_none() => owner.uid = Some(one()?),
                labels::OWNER_NAME if owner.name.is_none() => owner.name = Some(one()?),
                labels::OWNER_GR if owner.group_resource.is_none() => {
                    owner.group_resource = Some(parse_group_resource(&one()?)?)
                }
                labels::OWNER_SENIORITY => {
                    owner.seniority = one()?.parse().map_err(|_| label_error(key, "must be an integer"))?;
                }
                labels::OFFSET => {
                    return Err(label_error(
                        key,
                        "offsets are not supported: pedia pages with opaque continue tokens (use limit and continue)",
                    ));
                }
                labels::FORWARD => {
                    return Err(label_error(key, "forwarding requests to member clusters is not supported"));
                }
                labels::ORDER_BY
                | labels::LIMIT
                | labels::SINCE
                | labels::BEFORE
                | labels::OWNER_UID
                | labels::OWNER_NAME
                | labels::OWNER_GR => {}
                other => return Err(label_error(other, "unknown search label")),
            }
        }
        if let Some(c) = path_cluster {
            q.clusters = vec![c.to_owned()];
        }
        if let Some(ns) = path_namespace {
            q.namespaces = vec![ns.to_owned()];
        }
        if owner.uid.is_some() || owner.name.is_some() {
            if q.clusters.len() != 1 {
                return Err(QueryError::Invalid {
                    param: "ownerUID",
                    value: owner.uid.clone().or(owner.name.clone()).unwrap_or_default(),
                    reason: "searching by owner needs exactly one cluster (clusters=<c> or the /clusters/<c> path)"
                        .into(),
                });
            }
            if owner.seniority < 0 {
                return Err(QueryError::Invalid {
                    param: "ownerSeniority",
                    value: owner.seniority.to_string(),
                    reason: "must be 0 or more".into(),
                });
            }
            q.owner = Some(owner);
        }
        if let (Some(s), Some(b)) = (q.since, q.before)
            && s > b
        {
            return Err(QueryError::SinceAfterBefore { since: s.to_string(), before: b.to_string() });
        }
        Ok(q)
    }
}

impl SearchQuery {
    /// Whether an object of `cluster` matches the query's filters (the in-memory meaning of what
    /// the store compiles to SQL): for watch events, which arrive one by one. Paging and order do
    /// not apply; an owner filter matches direct owners by uid only (seniority and names need
    /// the store).
    pub fn matches(&self, cluster: &str, object: &Value) -> bool {
        let meta = &object["metadata"];
        let text = |k: &str| meta[k].as_str().unwrap_or_default();
        let (namespace, name) = (text("namespace"), text("name"));
        let within = |wanted: &[String], v: &str| wanted.is_empty() || wanted.iter().any(|w| w == v);
        let outside = |excluded: &[String], v: &str| !excluded.iter().any(|e| e == v);
        if !(within(&self.clusters, cluster)
            && outside(&self.exclude_clusters, cluster)
            && within(&self.namespaces, namespace)
            && outside(&self.exclude_namespaces, namespace)
            && within(&self.names, name)
            && outside(&self.exclude_names, name)
            && self.fuzzy_names.iter().all(|f| name.contains(f.as_str())))
        {
            return false;
        }
        let labels: std::collections::BTreeMap<String, String> = meta["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
            .unwrap_or_default();
        if !self.labels.matches(&labels) || !self.fields.matches(object) {
            return false;
        }
        let created = meta["creationTimestamp"].as_str().and_then(|t| t.parse::<Timestamp>().ok());
        if self.since.is_some_and(|s| created.is_none_or(|c| c < s))
            || self.before.is_some_and(|b| created.is_none_or(|c| c >= b))
        {
            return false;
        }
        match self.owner.as_ref().and_then(|o| o.uid.as_deref()) {
            Some(uid) => meta["ownerReferences"].as_array().into_iter().flatten().any(|r| r["uid"] == uid),
            None => true,
        }
    }
}

#[cfg(test)]
mod query_tests {
    use super::*;

    fn q(query: &str) -> Result<SearchQuery, QueryError> {
        SearchQuery::from_options(&ListOptions::from_query(query)?, None, None)
    }

    #[test]
    fn search_labels_are_consumed_and_operators_honoured() {
        let s = q("labelSelector=search.clusterpedia.io%2Fclusters%20in%20(a%2Cb),search.clusterpedia.io%2Fnamespaces%20notin%20(kube-system),app%3Dweb,internalstorage.clusterpedia.io%2Ffuzzy-name%3Dngin,search.clusterpedia.io%2Forderby%20in%20(name_desc%2Ccluster)").unwrap();
        assert_eq!(s.clusters, ["a", "b"]);
        assert_eq!(s.exclude_namespaces, ["kube-system"]);
        assert_eq!(s.fuzzy_names, ["ngin"]);
        assert_eq!(s.labels.to_string(), "app=web");
        assert_eq!(
            s.order_by,
            [OrderBy { field: "name".into(), desc: true }, OrderBy { field: "cluster".into(), desc: false }]
        );
    }

    #[test]
    fn url_parameters_win_and_paths_win_over_both() {
        let s = q("clusters=x&labelSelector=search.clusterpedia.io%2Fclusters%3Dy").unwrap();
        assert_eq!(s.clusters, ["x"]);
        let opts = ListOptions::from_query("clusters=x&namespaces=n").unwrap();
        let s = SearchQuery::from_options(&opts, Some("c"), Some("ns")).unwrap();
        assert_eq!((s.clusters, s.namespaces), (vec!["c".to_owned()], vec!["ns".to_owned()]));
    }

    #[test]
    fn objects_match_in_memory() {
        let pod = serde_json::json!({"metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web"},
            "creationTimestamp": "2026-01-02T00:00:00Z", "ownerReferences": [{"uid": "rs-1"}]},
            "status": {"phase": "Running"}});
        let yes = |query: &str| q(query).unwrap().matches("m1", &pod);
        assert!(yes(""));
        assert!(yes("clusters=m1,m2&namespaces=prod&labelSelector=app%3Dweb&fieldSelector=status.phase%3DRunning"));
        assert!(!yes("clusters=m2"));
        assert!(!yes("labelSelector=search.clusterpedia.io%2Fclusters%21%3Dm1"));
        assert!(!yes("labelSelector=search.clusterpedia.io%2Fnamespaces%20notin%20(prod)"));
        assert!(yes("labelSelector=internalstorage.clusterpedia.io%2Ffuzzy-name%3Deb"));
        assert!(!yes("labelSelector=internalstorage.clusterpedia.io%2Ffuzzy-name%3Ddb"));
        assert!(!yes("labelSelector=app%21%3Dweb"));
        assert!(!yes("fieldSelector=status.phase%3DPending"));
        assert!(yes("since=2026-01-01&before=2026-01-03"));
        assert!(!yes("since=2026-01-03"));
        assert!(!yes("before=2026-01-02"));
        assert!(yes("ownerUID=rs-1&clusters=m1"));
        assert!(!yes("ownerUID=rs-2&clusters=m1"));
    }

    #[test]
    fn owner_filters_need_one_cluster() {
        let err = q("ownerUID=u").unwrap_err();
        assert!(err.to_string().contains("exactly one cluster"), "{err}");
        let s = q("ownerName=web&ownerGR=deployments.apps&ownerSeniority=1&clusters=m1").unwrap();
        let o = s.owner.unwrap();
        assert_eq!((o.name.as_deref(), o.seniority), (Some("web"), 1));
    }

    #[test]
    fn bad_search_labels_are_errors() {
        for (query, needle) in [
            ("labelSelector=search.clusterpedia.io%2Foffset%3D10", "continue"),
            ("labelSelector=search.clusterpedia.io%2Fnope%3D1", "unknown search label"),
            ("labelSelector=search.clusterpedia.io%2Fclusters", "take values"),
            ("labelSelector=search.clusterpedia.io%2Flimit%3Dx", "integer"),
            ("fieldSelector=spec.containers%5B%5D.image%3Dx", "list fields"),
            ("labelSelector=app%3D%3D%3D", "labelSelector"),
        ] {
            let err = q(query).unwrap_err().to_string();
            assert!(err.contains(needle), "{query}: {err}");
        }
    }
}
