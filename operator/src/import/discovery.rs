//! Resolving a policy's group/resource to a served version (version negotiation).

use kube::Client;
use kube::discovery::{self, ApiResource};

/// Finds `resource` of `group` on the server: the first served version (server preference
/// first) that `versions` allows; any version when `versions` is empty.
pub async fn negotiate(
    client: &Client,
    group: &str,
    resource: &str,
    versions: &[String],
) -> Result<ApiResource, String> {
    let what = if group.is_empty() { resource.to_owned() } else { format!("{resource}.{group}") };
    let api_group = discovery::group(client, group)
        .await
        .map_err(|e| format!("{what}: discovery of group {group:?} failed: {e}"))?;
    let mut order: Vec<&str> = api_group.preferred_version().into_iter().collect();
    order.extend(api_group.versions().filter(|v| Some(*v) != api_group.preferred_version()));
    let mut served = Vec::new();
    for version in order {
        let found = api_group.versioned_resources(version).into_iter().find(|(ar, _)| ar.plural == resource);
        if let Some((ar, _)) = found {
            served.push(version.to_owned());
            if versions.is_empty() || versions.iter().any(|v| v == version) {
                return Ok(ar);
            }
        }
    }
    if served.is_empty() {
        Err(format!("{what}: the server does not serve this resource"))
    } else {
        Err(format!("{what}: none of the expected versions {versions:?} is served (served: {served:?})"))
    }
}
