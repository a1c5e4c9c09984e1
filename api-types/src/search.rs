//! The search API of `clusterpedia.io/v1beta1`: its URL query parameters, search labels and
//! annotations, and the decoding of a request's query string into [`ListOptions`].
//!
//! Decoding follows Clusterpedia: only the first value of a repeated parameter counts, list values
//! are comma separated, booleans are true unless `false`/`0`. Where Clusterpedia is lenient by
//! accident we are strict and say which parameter is wrong (see `docs/compatibility.md`).

use k8s_openapi::jiff::{Timestamp, civil, tz::TimeZone};

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

/// A group-resource such as `deployments.apps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
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

fn invalid(param: &'static str, value: &str, reason: impl Into<String>) -> QueryError {
    QueryError::Invalid { param, value: value.to_owned(), reason: reason.into() }
}

impl ListOptions {
    /// Decodes a URL query string (without the leading `?`).
    pub fn from_query(query: &str) -> Result<Self, QueryError> {
        let mut seen: Vec<String> = Vec::new();
        let mut opts = ListOptions::default();
        for (raw_key, raw_value) in query.split('&').filter(|p| !p.is_empty()).map(split_pair) {
            let key = decode_component(raw_key);
            // Clusterpedia reads only the first value of a parameter.
            if seen.contains(&key) {
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

/// Any value but `false` or `0` (case-insensitive) is true, as in Clusterpedia.
pub fn parse_bool(value: &str) -> bool {
    !(value.eq_ignore_ascii_case("false") || value == "0")
}

fn parse_int(param: &'static str, value: &str) -> Result<i64, QueryError> {
    value.trim().parse().map_err(|_| invalid(param, value, "must be an integer"))
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
                _ => Err(invalid(
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
        return Err(invalid("ownerGR", value, "must be `resource.group` (e.g. deployments.apps)"));
    }
    Ok(GroupResource { group: group.to_owned(), resource: resource.to_owned() })
}

/// Clusterpedia's time formats: RFC 3339, `2006-01-02 15:04:05` (UTC), `2006-01-02`, or a Unix
/// timestamp of 10 (seconds) or 13 (milliseconds) digits.
pub fn parse_time(param: &'static str, value: &str) -> Result<Timestamp, QueryError> {
    let bad = |reason: &str| invalid(param, value, reason);
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
