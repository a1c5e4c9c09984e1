//! The URL query of a search request: Kubernetes' list options and Clusterpedia's, decoded.

use crate::gvr::GroupResource;
use k8s_openapi::jiff::{Timestamp, civil, tz::TimeZone};

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
