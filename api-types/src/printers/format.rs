//! How kube-apiserver's printers write values into cells: label maps and selectors, lists cut
//! after a few items, booleans, quantities and times as Go formats them. Pure.

use crate::table::at;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::table;

/// The string at `pointer` ("" when absent or not a string).
pub(super) fn text<'a>(o: &'a Value, pointer: &str) -> &'a str {
    at(o, pointer).and_then(Value::as_str).unwrap_or_default()
}

/// The integer at `pointer` (0 when absent).
pub(super) fn int(o: &Value, pointer: &str) -> i64 {
    at(o, pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The items of the array at `pointer` (none when absent).
pub(super) fn items<'a>(o: &'a Value, pointer: &str) -> &'a [Value] {
    at(o, pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// `s`, or `<none>` when empty.
pub(super) fn or_none(s: &str) -> String {
    if s.is_empty() { "<none>".into() } else { s.to_owned() }
}

/// `s`, or `<unknown>` when empty.
pub(super) fn or_unknown(s: &str) -> String {
    if s.is_empty() { "<unknown>".into() } else { s.to_owned() }
}

/// Go's `printBoolPtr`: `True`, `False`, or `<unset>` without a value.
pub(super) fn bool_ptr(v: Option<&Value>) -> String {
    match v.and_then(Value::as_bool) {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// A quantity or int-or-string as its text (quantities are serialized in canonical form).
pub(super) fn quantity(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, `<none>` without any.
pub(super) fn labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    or_none(&pairs.join(","))
}

/// `metav1.LabelSelectorAsSelector(s).String()`: requirements sorted by key (`k=v`, `k in (a,b)`,
/// `k notin (a,b)`, `k`, `!k`), empty for a selector that selects everything or nothing; None for
/// an operator Kubernetes does not know.
pub(super) fn selector(s: Option<&Value>) -> Option<String> {
    let Some(s) = s else { return Some(String::new()) };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in s.get("matchLabels").and_then(Value::as_object).into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
    }
    for e in s.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let mut values: Vec<&str> = items(e, "/values").iter().filter_map(Value::as_str).collect();
        values.sort_unstable();
        values.dedup();
        let text = match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        };
        reqs.push((key.to_owned(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(","))
}

/// `metav1.FormatLabelSelector`: [`selector`], `<none>` when empty, `<error>` when invalid.
pub(super) fn label_selector(s: Option<&Value>) -> String {
    match selector(s) {
        Some(t) => or_none(&t),
        None => "<error>".into(),
    }
}

/// `listWithMoreString`: the items joined, `+ N more...` past `max`, `<unset>` without any.
pub(super) fn list_with_more(list: &[String], count: usize, max: usize) -> String {
    let joined = list.join(",");
    if count > max {
        format!("{joined} + {} more...", count - max)
    } else if joined.is_empty() {
        "<unset>".into()
    } else {
        joined
    }
}

/// `translateTimestampSince` of the time at `pointer`: its age, `<unknown>` without one.
pub(super) fn since(o: &Value, pointer: &str, now: Timestamp) -> String {
    table::age(at(o, pointer).and_then(Value::as_str).filter(|t| !t.is_empty()), now)
}

/// A time at `pointer`, when there is one.
pub(super) fn time(o: &Value, pointer: &str) -> Option<Timestamp> {
    at(o, pointer).and_then(Value::as_str).and_then(|t| t.parse().ok())
}

/// `layoutContainerCells`: container names and images, comma-separated.
pub(super) fn containers(o: &Value, pointer: &str) -> (String, String) {
    let cs = items(o, pointer);
    let field = |f: &str| cs.iter().map(|c| c[f].as_str().unwrap_or_default()).collect::<Vec<_>>().join(",");
    (field("name"), field("image"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_as_kubernetes_writes_them() {
        let s = json!({"matchLabels": {"tier": "web", "app": "x"},
                       "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                            {"key": "zz", "operator": "DoesNotExist"},
                                            {"key": "b", "operator": "NotIn", "values": ["1"]},
                                            {"key": "c", "operator": "Exists"}]});
        assert_eq!(selector(Some(&s)).unwrap(), "app=x,b notin (1),c,env in (dev,prod),tier=web,!zz");
        assert_eq!(label_selector(Some(&json!({}))), "<none>");
        assert_eq!(label_selector(None), "<none>");
        assert_eq!(selector(None).unwrap(), "", "a Deployment's empty selector prints empty");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert_eq!((selector(Some(&bad)), label_selector(Some(&bad)).as_str()), (None, "<error>"));
        assert_eq!(labels(Some(&json!({"b": "2", "a": "1"}))), "a=1,b=2");
        assert_eq!(labels(Some(&json!({}))), "<none>");
    }

    #[test]
    fn lists_cut_after_a_few() {
        let l = |n: usize| (0..n.min(3)).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(list_with_more(&l(0), 0, 3), "<unset>");
        assert_eq!(list_with_more(&l(2), 2, 3), "0,1");
        assert_eq!(list_with_more(&l(5), 5, 3), "0,1,2 + 2 more...");
        assert_eq!(bool_ptr(None), "<unset>");
        assert_eq!(bool_ptr(Some(&json!(true))), "True");
    }
}
