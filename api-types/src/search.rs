//! The search API of `clusterpedia.io/v1beta1`: its URL query parameters, search labels and
//! annotations, and the decoding of a request's query string into [`ListOptions`].
//!
//! Decoding follows Clusterpedia: only the first value of a repeated parameter counts, list values
//! are comma separated, booleans are true unless `false`/`0`. Where Clusterpedia is lenient by
//! accident we are strict and say which parameter is wrong (see `docs/compatibility.md`).

use crate::gvr::GroupResource;
use k8s_openapi::jiff::{Timestamp, civil, tz::TimeZone};
use serde_json::Value;

/// API group of the aggregated search API.
pub const GROUP: &str = "clusterpedia.io";
/// API version of the aggregated search API.
pub const VERSION: &str = "v1beta1";

/// Header that asks the apiserver to forward a request to the member cluster.
pub const FORWARD_HEADER: &str = "x-clusterpedia-forward";

/// Search labels: label-selector keys that carry search options instead of filtering labels.
pub mod labels {
    pub const CLUSTERS: &str = "search.clusterpedia.io/clusters";
    pub const NAMESPACES: &str = "search.clusterpedia.io/namespaces";
    pub const NAMES: &str = "search.clusterpedia.io/names";
    pub const ORDER_BY: &str = "search.clusterpedia.io/orderby";
    pub const LIMIT: &str = "search.clusterpedia.io/limit";
    pub const OFFSET: &str = "search.clusterpedia.io/offset";
    pub const WITH_CONTINUE: &str = "search.clusterpedia.io/with-continue";
    pub const WITH_REMAINING_COUNT: &str = "search.clusterpedia.io/with-remaining-count";
    pub const SINCE: &str = "search.clusterpedia.io/since";
    pub const BEFORE: &str = "search.clusterpedia.io/before";
    pub const OWNER_UID: &str = "search.clusterpedia.io/owner-uid";
    pub const OWNER_NAME: &str = "search.clusterpedia.io/owner-name";
    pub const OWNER_GR: &str = "search.clusterpedia.io/owner-gr";
    pub const OWNER_SENIORITY: &str = "search.clusterpedia.io/owner-seniority";
    pub const INJECT_EVENTS: &str = "search.clusterpedia.io/inject-events";
    pub const FORWARD: &str = "search.clusterpedia.io/forward";
    /// Substring match on the name (`LIKE '%v%'`), several values ANDed.
    pub const FUZZY_NAME: &str = "internalstorage.clusterpedia.io/fuzzy-name";
}

/// Annotations pedia adds to the objects it serves.
pub mod annotations {
    /// The PediaCluster an object comes from.
    pub const CLUSTER_NAME: &str = "shadow.clusterpedia.io/cluster-name";
    /// JSON array of the core/v1 Events of an object (with `inject-events`).
    pub const EVENTS: &str = "shadow.clusterpedia.io/events";
    /// Declared by Clusterpedia, unused there too.
    pub const GVR: &str = "shadow.clusterpedia.io/gvr";
}

/// One `orderby` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    /// A column (`cluster`, `namespace`, `name`, `created_at`, `resource_version`) or a JSON path;
    /// the storage layer decides which are allowed.
    pub field: String,
    pub desc: bool,
}

/// The columns `orderby` names directly; any other field is a path into the object.
pub const ORDER_COLUMNS: [&str; 5] = ["cluster", "namespace", "name", "created_at", "resource_version"];

impl OrderBy {
    /// The field path this item orders by (`None` for a column), or why it is not one.
    pub fn field_path(&self) -> Option<Result<Vec<crate::fields::Segment>, String>> {
        (!ORDER_COLUMNS.contains(&self.field.as_str())).then(|| crate::fields::parse_path(&self.field))
    }
}

/// A search request's options: Kubernetes `ListOptions` plus Clusterpedia's search options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<i64>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub timeout_seconds: Option<i64>,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    pub send_initial_events: Option<bool>,

    pub clusters: Vec<String>,
    pub namespaces: Vec<String>,
    pub names: Vec<String>,
    pub order_by: Vec<OrderBy>,
    pub owner_uid: Option<String>,
    pub owner_name: Option<String>,
    pub owner_group_resource: Option<GroupResource>,
    /// 0 = direct owner, 1 = grandparent, ...
    pub owner_seniority: i64,
    /// `created_at >= since`.
    pub since: Option<Timestamp>,
    /// `created_at < before`.
    pub before: Option<Timestamp>,
    pub inject_events: bool,
    pub with_continue: Option<bool>,
    pub with_remaining_count: Option<bool>,
    pub only_metadata: bool,

    /// Collection resource `any`: `group` or `group/version` items.
    pub groups: Vec<String>,
    /// Collection resource `any`: `group/resource` or `group/version/resource` items.
    pub resources: Vec<String>,
}

/// A query parameter that cannot be decoded; the apiserver answers 400 with this text.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("invalid query parameter {param}={value:?}: {reason}")]
    Invalid { param: &'static str, value: String, reason: String },
    #[error("invalid query: since ({since}) is after before ({before})")]
    SinceAfterBefore { since: String, before: String },
    #[error(
        "query parameter {0} is not supported: pedia never runs SQL taken from a request; use labelSelector or fieldSelector"
    )]
    RawSql(&'static str),
}

impl QueryError {
    pub fn invalid(param: &'static str, value: &str, reason: impl Into<String>) -> Self {
        QueryError::Invalid { param, value: value.to_owned(), reason: reason.into() }
    }
}

/// The parameters of Kubernetes' own `metav1.ListOptions`.
const KUBE_PARAMS: [&str; 10] = [
    "labelSelector",
    "fieldSelector",
    "limit",
    "continue",
    "resourceVersion",
    "resourceVersionMatch",
    "timeoutSeconds",
    "watch",
    "allowWatchBookmarks",
    "sendInitialEvents",
];

impl ListOptions {
    /// Decodes a URL query string (without the leading `?`): Kubernetes' list options and
    /// Clusterpedia's search options.
    pub fn from_query(query: &str) -> Result<Self, QueryError> {
        Self::decode(query, false)
    }

    /// kube-apiserver's checks of a watch's options, as `(field, message)` causes of a 422
    /// Invalid (empty when valid). `watch_list`: whether streaming lists (the WatchList feature)
    /// are served.
    pub fn watch_errors(&self, watch_list: bool) -> Vec<(String, String)> {
        const NOT_OLDER_THAN: &str = "NotOlderThan";
        let mut causes = Vec::new();
        let mut cause = |field: &str, message: String| causes.push((field.to_owned(), message));
        let rv_match = self.resource_version_match.as_deref();
        if self.send_initial_events.is_some() {
            if rv_match != Some(NOT_OLDER_THAN) {
                cause(
                    "resourceVersionMatch",
                    format!("Forbidden: sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}"),
                );
            }
            if !watch_list {
                cause(
                    "sendInitialEvents",
                    "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
                        .into(),
                );
            }
        }
        if let Some(m) = rv_match {
            if self.send_initial_events.is_none() {
                cause(
                    "resourceVersionMatch",
                    "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
                        .into(),
                );
            }
            if m != NOT_OLDER_THAN {
                cause(
                    "resourceVersionMatch",
                    format!("Unsupported value: {m:?}: supported values: {NOT_OLDER_THAN:?}"),
                );
            }
        }
        causes
    }

    /// Decodes only Kubernetes' own list options (as a Kubernetes API server does; other
    /// parameters are ignored), by the same rules: kubesim's decoder.
    pub fn kube_from_query(query: &str) -> Result<Self, QueryError> {
        Self::decode(query, true)
    }

    fn decode(query: &str, kube_only: bool) -> Result<Self, QueryError> {
        let mut seen: Vec<String> = Vec::new();
        let mut opts = ListOptions::default();
        for (raw_key, raw_value) in query.split('&').filter(|p| !p.is_empty()).map(split_pair) {
            let key = decode_component(raw_key);
            // Kubernetes and Clusterpedia read only the first value of a parameter.
            if seen.contains(&key) || (kube_only && !KUBE_PARAMS.contains(&key.as_str())) {
                continue;
            }
            let value = decode_component(raw_value);
            opts.set(&key, &value)?;
            seen.push(key);
        }
        if let (Some(since), Some(before)) = (opts.since, opts.before)
            && since > before
        {
            return Err(QueryError::SinceAfterBefore { since: since.to_string(), before: before.to_string() });
        }
        Ok(opts)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), QueryError> {
        match key {
            "labelSelector" => self.label_selector = non_empty(value),
            "fieldSelector" => self.field_selector = non_empty(value),
            "limit" => self.limit = Some(parse_int("limit", value)?),
            "continue" => self.continue_token = non_empty(value),
            "resourceVersion" => self.resource_version = non_empty(value),
            "resourceVersionMatch" => self.resource_version_match = non_empty(value),
            "timeoutSeconds" => self.timeout_seconds = Some(parse_int("timeoutSeconds", value)?),
            "watch" => self.watch = parse_bool(value),
            "allowWatchBookmarks" => self.allow_watch_bookmarks = parse_bool(value),
            "sendInitialEvents" => self.send_initial_events = Some(parse_bool(value)),
            "clusters" => self.clusters = split_list(value),
            "namespaces" => self.namespaces = split_list(value),
            "names" => self.names = split_list(value),
            "orderby" => self.order_by = parse_order_by(value)?,
            "ownerUID" => self.owner_uid = non_empty(value),
            "ownerName" => self.owner_name = non_empty(value),
            "ownerGR" => self.owner_group_resource = Some(parse_group_resource(value)?),
            "ownerSeniority" => self.owner_seniority = parse_int("ownerSeniority", value)?,
            "since" => self.since = Some(parse_time("since", value)?),
            "before" => self.before = Some(parse_time("before", value)?),
            "injectEvents" => self.inject_events = parse_bool(value),
            "withContinue" => self.with_continue = Some(parse_bool(value)),
            "withRemainingCount" => self.with_remaining_count = Some(parse_bool(value)),
            "onlyMetadata" => self.only_metadata = parse_bool(value),
            "groups" => self.groups = split_list(value),
            "resources" => self.resources = split_list(value),
            "whereSQL" => return Err(QueryError::RawSql("whereSQL")),
            "whereSQLStatement" => return Err(QueryError::RawSql("whereSQLStatement")),
            "whereSQLParam" => return Err(QueryError::RawSql("whereSQLParam")),
            "whereSQLJSONParams" => return Err(QueryError::RawSql("whereSQLJSONParams")),
            // Anything else (`timeout`, `pretty`, ...) is not a search option.
            _ => {}
        }
        Ok(())
    }
}

fn split_pair(pair: &str) -> (&str, &str) {
    pair.split_once('=').unwrap_or((pair, ""))
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode_component(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// Any value but `false` or `0` (case-insensitive) is true, as in Kubernetes' query parameter
/// conversion (and so in Clusterpedia).
pub fn parse_bool(value: &str) -> bool {
    !(value.eq_ignore_ascii_case("false") || value == "0")
}

fn parse_int(param: &'static str, value: &str) -> Result<i64, QueryError> {
    value.trim().parse().map_err(|_| QueryError::invalid(param, value, "must be an integer"))
}

/// Comma-separated values; the whole string is trimmed, the items are not.
fn split_list(value: &str) -> Vec<String> {
    let value = value.trim();
    if value.is_empty() { Vec::new() } else { value.split(',').map(str::to_owned).collect() }
}

/// `name desc,namespace`: each item is a field, optionally followed by `desc` or `asc`.
pub fn parse_order_by(value: &str) -> Result<Vec<OrderBy>, QueryError> {
    split_list(value)
        .iter()
        .map(|item| {
            let words: Vec<&str> = item.split_whitespace().collect();
            match words.as_slice() {
                [field] => Ok(OrderBy { field: (*field).to_owned(), desc: false }),
                [field, dir] if dir.eq_ignore_ascii_case("desc") => {
                    Ok(OrderBy { field: (*field).to_owned(), desc: true })
                }
                [field, dir] if dir.eq_ignore_ascii_case("asc") => {
                    Ok(OrderBy { field: (*field).to_owned(), desc: false })
                }
                _ => Err(QueryError::invalid(
                    "orderby",
                    value,
                    format!("item {item:?} must be `field`, `field asc` or `field desc`"),
                )),
            }
        })
        .collect()
}

/// `resource.group`, e.g. `deployments.apps`; a bare resource is in the core group.
pub fn parse_group_resource(value: &str) -> Result<GroupResource, QueryError> {
    let (resource, group) = value.split_once('.').unwrap_or((value, ""));
    if resource.is_empty() {
        return Err(QueryError::invalid("ownerGR", value, "must be `resource.group` (e.g. deployments.apps)"));
    }
    Ok(GroupResource { group: group.to_owned(), resource: resource.to_owned() })
}

/// Clusterpedia's time formats: RFC 3339, `2006-01-02 15:04:05` (UTC), `2006-01-02`, or a Unix
/// timestamp of 10 (seconds) or 13 (milliseconds) digits.
pub fn parse_time(param: &'static str, value: &str) -> Result<Timestamp, QueryError> {
    let bad = |reason: &str| QueryError::invalid(param, value, reason);
    const FORMATS: &str =
        "a valid datetime format: RFC3339, Datetime(2006-01-02 15:04:05), Date(2006-01-02), Unix Timestamp";
    if value.contains('T') {
        value.parse::<Timestamp>().map_err(|_| bad(FORMATS))
    } else if value.contains(' ') {
        let dt: civil::DateTime = value.parse().map_err(|_| bad(FORMATS))?;
        dt.to_zoned(TimeZone::UTC).map(|z| z.timestamp()).map_err(|_| bad(FORMATS))
    } else if value.contains('-') {
        let d: civil::Date = value.parse().map_err(|_| bad(FORMATS))?;
        d.to_zoned(TimeZone::UTC).map(|z| z.timestamp()).map_err(|_| bad(FORMATS))
    } else {
        let n: i64 = value.parse().map_err(|_| bad(FORMATS))?;
        match value.len() {
            10 => Timestamp::from_second(n).map_err(|_| bad(FORMATS)),
            13 => Timestamp::from_millisecond(n).map_err(|_| bad(FORMATS)),
            _ => Err(bad("only Unix timestamps of 10 (seconds) or 13 (milliseconds) digits are supported")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_options_alone_by_the_same_rules() {
        let o = ListOptions::kube_from_query("watch=True&timeoutSeconds=5&orderby=x%3By&whereSQL=1&since=nope&limit=3")
            .unwrap();
        assert!(o.watch, "Kubernetes' booleans: anything but false/0");
        assert_eq!((o.timeout_seconds, o.limit), (Some(5), Some(3)));
        assert!(o.order_by.is_empty() && o.since.is_none(), "search options are not Kubernetes'");
        let err = ListOptions::kube_from_query("timeoutSeconds=abc").unwrap_err();
        assert!(err.to_string().contains("timeoutSeconds"), "{err}");
        assert!(!ListOptions::kube_from_query("watch=0").unwrap().watch);
        assert!(!ListOptions::kube_from_query("watch=FALSE").unwrap().watch);
    }

    #[test]
    fn watch_options_are_checked_as_kube_apiserver_does() {
        let errors = |q: &str, watch_list| ListOptions::kube_from_query(q).unwrap().watch_errors(watch_list);
        let streaming = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true";
        assert!(errors(streaming, true).is_empty());
        assert!(errors("watch=1&resourceVersion=5", false).is_empty(), "a plain watch needs no feature");
        let off = errors(streaming, false);
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].0, "sendInitialEvents");
        assert!(off[0].1.contains("WatchList feature gate"), "{off:?}");
        let fields: Vec<String> = errors("watch=1&sendInitialEvents=true", true).into_iter().map(|c| c.0).collect();
        assert_eq!(fields, ["resourceVersionMatch"]);
        let exact = errors("watch=1&resourceVersionMatch=Exact", true);
        assert_eq!(exact.len(), 2, "{exact:?}");
        assert!(
            exact[0].1.contains("unless sendInitialEvents is provided") && exact[1].1.contains("Unsupported value")
        );
    }

    #[test]
    fn decodes_every_parameter() {
        let o = ListOptions::from_query(
            "labelSelector=app%3Dnginx&fieldSelector=status.phase%3DRunning&limit=10&continue=abc\
             &resourceVersion=5&resourceVersionMatch=NotOlderThan&timeoutSeconds=30&watch=true\
             &allowWatchBookmarks=1&sendInitialEvents=false&clusters=a,b&namespaces=ns1&names=n1,n2\
             &orderby=name%20desc,cluster&ownerUID=u1&ownerName=o1&ownerGR=deployments.apps&ownerSeniority=1\
             &since=2024-01-02&before=2024-01-03%2000:00:00&injectEvents=true&withContinue=true\
             &withRemainingCount=TRUE&onlyMetadata=yes&groups=apps,&resources=apps/deployments",
        )
        .unwrap();
        assert_eq!(o.label_selector.as_deref(), Some("app=nginx"));
        assert_eq!(o.field_selector.as_deref(), Some("status.phase=Running"));
        assert_eq!(o.limit, Some(10));
        assert_eq!(o.continue_token.as_deref(), Some("abc"));
        assert_eq!(o.resource_version.as_deref(), Some("5"));
        assert_eq!(o.resource_version_match.as_deref(), Some("NotOlderThan"));
        assert_eq!(o.timeout_seconds, Some(30));
        assert!(o.watch && o.allow_watch_bookmarks);
        assert_eq!(o.send_initial_events, Some(false));
        assert_eq!(o.clusters, ["a", "b"]);
        assert_eq!(o.namespaces, ["ns1"]);
        assert_eq!(o.names, ["n1", "n2"]);
        assert_eq!(
            o.order_by,
            [OrderBy { field: "name".into(), desc: true }, OrderBy { field: "cluster".into(), desc: false }]
        );
        assert_eq!(o.owner_uid.as_deref(), Some("u1"));
        assert_eq!(o.owner_name.as_deref(), Some("o1"));
        assert_eq!(
            o.owner_group_resource,
            Some(GroupResource { group: "apps".into(), resource: "deployments".into() })
        );
        assert_eq!(o.owner_seniority, 1);
        assert_eq!(o.since.unwrap().to_string(), "2024-01-02T00:00:00Z");
        assert_eq!(o.before.unwrap().to_string(), "2024-01-03T00:00:00Z");
        assert!(o.inject_events && o.only_metadata);
        assert_eq!(o.with_continue, Some(true));
        assert_eq!(o.with_remaining_count, Some(true));
        assert_eq!(o.groups, ["apps", ""]);
        assert_eq!(o.resources, ["apps/deployments"]);
    }

    #[test]
    fn first_value_wins_and_unknown_parameters_are_ignored() {
        let o = ListOptions::from_query("clusters=a&clusters=b&timeout=32s&pretty=true").unwrap();
        assert_eq!(o.clusters, ["a"]);
    }

    #[test]
    fn bools_are_true_unless_false_or_zero() {
        assert!(parse_bool("true") && parse_bool("yes") && parse_bool(""));
        assert!(!parse_bool("FALSE") && !parse_bool("0"));
    }

    #[test]
    fn time_formats() {
        assert_eq!(parse_time("since", "2024-05-06T07:08:09Z").unwrap().as_second(), 1_714_979_289);
        assert_eq!(parse_time("since", "1714979289").unwrap().as_second(), 1_714_979_289);
        assert_eq!(parse_time("since", "1714979289123").unwrap().as_millisecond(), 1_714_979_289_123);
        let err = parse_time("since", "17149792").unwrap_err().to_string();
        assert!(err.contains("since") && err.contains("10 (seconds) or 13"), "{err}");
        let err = parse_time("before", "2024-13-45").unwrap_err().to_string();
        assert!(err.contains("before") && err.contains("RFC3339"), "{err}");
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (query, param) in [
            ("limit=ten", "limit"),
            ("ownerSeniority=x", "ownerSeniority"),
            ("orderby=a%20b%20c", "orderby"),
            ("orderby=name%20up", "orderby"),
            ("ownerGR=.apps", "ownerGR"),
            ("timeoutSeconds=1.5", "timeoutSeconds"),
        ] {
            let err = ListOptions::from_query(query).unwrap_err();
            assert!(matches!(&err, QueryError::Invalid { param: p, .. } if *p == param), "{query}: {err}");
        }
    }

    #[test]
    fn since_after_before_is_rejected() {
        let err = ListOptions::from_query("since=2024-02-01&before=2024-01-01").unwrap_err();
        assert!(matches!(err, QueryError::SinceAfterBefore { .. }));
    }

    #[test]
    fn raw_sql_is_refused() {
        let err = ListOptions::from_query("whereSQL=1%3D1").unwrap_err();
        assert_eq!(err, QueryError::RawSql("whereSQL"));
    }
}

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

/// One resource type a collection query covers: a group, optionally a version and a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// `None` = every group (`*`).
    pub group: Option<String>,
    pub version: Option<String>,
    pub resource: Option<String>,
}

/// The built-in collection resources, as Clusterpedia serves them.
pub fn builtin_collection(name: &str) -> Option<Vec<ResourceType>> {
    let rt = |g: &str, r: &str| ResourceType { group: Some(g.to_owned()), version: None, resource: Some(r.to_owned()) };
    match name {
        "any" => Some(Vec::new()),
        "workloads" => Some(vec![rt("apps", "deployments"), rt("apps", "daemonsets"), rt("apps", "statefulsets")]),
        "kuberesources" => Some(
            [
                "",
                "admissionregistration.k8s.io",
                "apiextensions.k8s.io",
                "apiregistration.k8s.io",
                "apps",
                "authentication.k8s.io",
                "authorization.k8s.io",
                "autoscaling",
                "batch",
                "certificates.k8s.io",
                "coordination.k8s.io",
                "discovery.k8s.io",
                "events.k8s.io",
                "flowcontrol.apiserver.k8s.io",
                "networking.k8s.io",
                "node.k8s.io",
                "policy",
                "rbac.authorization.k8s.io",
                "scheduling.k8s.io",
                "storage.k8s.io",
            ]
            .iter()
            .map(|g| ResourceType { group: Some((*g).to_owned()), version: None, resource: None })
            .collect(),
        ),
        _ => None,
    }
}

/// The `groups` and `resources` parameters of the `any` collection: `group` or `group/version`
/// (`""` or `/` is core, `*` everything), and `group/resource` or `group/version/resource`
/// (`/pods` and `//pods` are core). One of them is required.
pub fn parse_resource_types(groups: &[String], resources: &[String]) -> Result<Vec<ResourceType>, QueryError> {
    if groups.is_empty() && resources.is_empty() {
        return Err(QueryError::Invalid {
            param: "groups",
            value: String::new(),
            reason: "url query - `groups` or `resources` is required".into(),
        });
    }
    let mut out = Vec::new();
    for g in groups {
        let item = g.trim();
        let t = match item.split('/').collect::<Vec<_>>().as_slice() {
            ["*"] => ResourceType { group: None, version: None, resource: None },
            [group] => ResourceType { group: Some((*group).to_owned()), version: None, resource: None },
            [group, version] => ResourceType {
                group: Some((*group).to_owned()),
                version: (!version.is_empty()).then(|| (*version).to_owned()),
                resource: None,
            },
            _ => {
                return Err(QueryError::Invalid {
                    param: "groups",
                    value: item.to_owned(),
                    reason: "expected group or group/version".into(),
                });
            }
        };
        out.push(t);
    }
    for r in resources {
        let item = r.trim();
        let parts: Vec<&str> = item.split('/').collect();
        let (group, version, resource) = match parts.as_slice() {
            [g, r] => (*g, None, *r),
            [g, v, r] => (*g, (!v.is_empty()).then_some(*v), *r),
            _ => {
                return Err(QueryError::Invalid {
                    param: "resources",
                    value: item.to_owned(),
                    reason: "expected group/resource or group/version/resource".into(),
                });
            }
        };
        if resource.is_empty() {
            return Err(QueryError::Invalid {
                param: "resources",
                value: item.to_owned(),
                reason: "the resource is empty".into(),
            });
        }
        out.push(ResourceType {
            group: Some(group.to_owned()),
            version: version.map(str::to_owned),
            resource: Some(resource.to_owned()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod collection_tests {
    use super::*;

    #[test]
    fn resource_types() {
        let t = parse_resource_types(
            &["apps".into(), "batch/v1".into(), "/".into()],
            &["/pods".into(), "apps/v1/deployments".into()],
        )
        .unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(t[1], ResourceType { group: Some("batch".into()), version: Some("v1".into()), resource: None });
        assert_eq!(t[2], ResourceType { group: Some(String::new()), version: None, resource: None });
        assert_eq!(t[3], ResourceType { group: Some(String::new()), version: None, resource: Some("pods".into()) });
        assert!(parse_resource_types(&[], &[]).unwrap_err().to_string().contains("required"));
        assert!(parse_resource_types(&[], &["apps/".into()]).unwrap_err().to_string().contains("empty"));
        assert!(parse_resource_types(&["a/b/c".into()], &[]).is_err());
        assert_eq!(parse_resource_types(&["*".into()], &[]).unwrap()[0].group, None);
        assert_eq!(builtin_collection("workloads").unwrap().len(), 3);
        assert!(builtin_collection("nope").is_none());
    }
}
