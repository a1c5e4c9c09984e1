//! The search API of `clusterpedia.io/v1beta1`: its URL query parameters, search labels and
//! annotations, and the decoding of a request's query string into [`ListOptions`].
//!
//! Decoding follows Clusterpedia: only the first value of a repeated parameter counts, list values
//! are comma separated, booleans are true unless `false`/`0`. Where Clusterpedia is lenient by
//! accident we are strict and say which parameter is wrong (see `docs/compatibility.md`).

mod collection;
mod options;
mod query;

pub use collection::*;
pub use options::*;
pub use query::*;

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
