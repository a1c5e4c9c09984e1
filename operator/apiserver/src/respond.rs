//! Response bodies (pure): lists of stored objects as JSON (concatenated, never decoded), as
//! PartialObjectMetadataList, or as a Table with a leading `Cluster` column; single objects; and
//! watch events, whose objects carry pedia's position as their resourceVersion.

use api_types::api::encode::{self, Shape};
use api_types::api::resources::{self, ResourceInfo};
use api_types::search::annotations;
use api_types::table::{self, CellSource, Column};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// The member's own resourceVersion of an object in a watch event (its `metadata.resourceVersion`
/// is pedia's position there, so that clients resume from it).
pub const MEMBER_RESOURCE_VERSION: &str = "shadow.clusterpedia.io/resource-version";

/// One stored object: its cluster and its JSON text.
pub struct Row<'a> {
    pub cluster: &'a str,
    pub json: &'a str,
}

/// Upstream's first column.
pub fn cluster_column() -> Column {
    Column::new("Cluster", "string", CellSource::Given).describe("The Cluster of resource")
}

/// The columns of a resource's Table: Cluster, then kube-apiserver's columns of the built-in
/// kind, or for custom resources Name, the member CRD's printer columns (from `definition`, its
/// `spec.versions[i]` entry) and Age.
pub fn columns(info: &ResourceInfo, definition: Option<&Value>) -> Vec<Column> {
    let mut cols = vec![cluster_column()];
    if resources::is_builtin(&info.group, &info.resource) {
        cols.extend(table::columns_for_kind(&info.kind));
    } else {
        let printer = definition.map(table::printer_columns).unwrap_or_default();
        cols.extend(table::custom_resource_columns(&printer));
    }
    cols
}

/// Attaches an object's events as upstream does: a JSON array in an annotation.
pub fn with_events(object: &mut Value, events: &[Value]) {
    let meta = &mut object["metadata"];
    if !meta["annotations"].is_object() {
        meta["annotations"] = json!({});
    }
    meta["annotations"][annotations::EVENTS] = json!(Value::from(events.to_vec()).to_string());
}

fn decode(rows: &[Row<'_>]) -> Result<Vec<Value>, serde_json::Error> {
    rows.iter().map(|r| serde_json::from_str(r.json)).collect()
}

/// The Table rows of stored objects. Decoding the objects is most of a Table page's cost (a page of
/// 500 pods: about 1.4 MB of JSON), so a large page is decoded and built on two threads.
fn table_rows(columns: &[Column], rows: &[Row<'_>]) -> Result<Vec<Value>, serde_json::Error> {
    const PER_THREAD: usize = 128;
    let now = Timestamp::now();
    let build = |part: &[Row<'_>]| -> Result<Vec<Value>, serde_json::Error> {
        let objects = decode(part)?;
        let given: Vec<Vec<Value>> = part.iter().map(|r| vec![json!(r.cluster)]).collect();
        Ok(table::rows(columns, objects, &given, now))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2).min(rows.len() / PER_THREAD);
    if threads <= 1 {
        return build(rows);
    }
    let size = rows.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = rows.chunks(size).map(|part| scope.spawn(move || build(part))).collect();
        let mut all = Vec::with_capacity(rows.len());
        for part in parts {
            all.extend(part.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
        }
        Ok(all)
    })
}

/// A list body in the shape the client asked for (`columns` for a Table, see [`columns`]).
pub fn list(
    info: &ResourceInfo,
    shape: Shape,
    meta: Value,
    rows: &[Row<'_>],
    columns: &[Column],
) -> Result<Vec<u8>, serde_json::Error> {
    match shape {
        Shape::Full => {
            let items: Vec<&[u8]> = rows.iter().map(|r| r.json.as_bytes()).collect();
            Ok(encode::list(&format!("{}List", info.kind), &info.api_version(), &meta, &items))
        }
        Shape::Metadata => serde_json::to_vec(&encode::metadata_list(meta, &decode(rows)?)),
        Shape::Table => serde_json::to_vec(&table::from_rows(columns, table_rows(columns, rows)?, meta)),
    }
}

/// One object in the shape the client asked for.
pub fn object(shape: Shape, cluster: &str, object: &Value, columns: &[Column]) -> Result<Vec<u8>, serde_json::Error> {
    match shape {
        Shape::Full => serde_json::to_vec(object),
        Shape::Metadata => serde_json::to_vec(&encode::metadata_only(object)),
        Shape::Table => serde_json::to_vec(&table::build(
            columns,
            vec![object.clone()],
            &[vec![json!(cluster)]],
            json!({}),
            Timestamp::now(),
        )),
    }
}

/// An object as a watch event carries it: `metadata.resourceVersion` is `position` (the change
/// log sequence a client resumes from), the member's own version moves to an annotation.
pub fn at_position(mut object: Value, position: i64) -> Value {
    let meta = &mut object["metadata"];
    if !meta.is_object() {
        *meta = json!({});
    }
    let member = meta.get("resourceVersion").cloned();
    meta["resourceVersion"] = json!(position.to_string());
    if let Some(rv) = member {
        if !meta["annotations"].is_object() {
            meta["annotations"] = json!({});
        }
        meta["annotations"][MEMBER_RESOURCE_VERSION] = rv;
    }
    object
}

/// One watch line for an object at a position.
pub fn watch_event(
    columns: &[Column],
    shape: Shape,
    kind: &str,
    cluster: &str,
    object: Value,
    position: i64,
) -> Result<Vec<u8>, serde_json::Error> {
    let object = at_position(object, position);
    let body = match shape {
        Shape::Table => table::build(
            columns,
            vec![object],
            &[vec![json!(cluster)]],
            json!({"resourceVersion": position.to_string()}),
            Timestamp::now(),
        ),
        Shape::Metadata => encode::metadata_only(&object),
        Shape::Full => object,
    };
    Ok(encode::watch_line(kind, &serde_json::to_vec(&body)?))
}

/// A BOOKMARK line at a position.
pub fn bookmark(info: &ResourceInfo, position: i64, initial_events_end: bool) -> Vec<u8> {
    let object = encode::bookmark(&info.kind, &info.api_version(), &position.to_string(), initial_events_end);
    encode::watch_line("BOOKMARK", object.to_string().as_bytes())
}

/// The cluster an object was synced from (the annotation every stored object carries).
pub fn cluster_of(object: &Value) -> &str {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(annotations::CLUSTER_NAME))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::api::resources::builtin;

    fn pods() -> ResourceInfo {
        builtin().into_iter().find(|r| r.resource == "pods").unwrap()
    }

    fn widget() -> ResourceInfo {
        ResourceInfo { group: "example.com".into(), resource: "widgets".into(), kind: "Widget".into(), ..pods() }
    }

    const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"prod","resourceVersion":"77","creationTimestamp":"2026-01-01T00:00:00Z","annotations":{"shadow.clusterpedia.io/cluster-name":"m1"}},"status":{"phase":"Running","podIP":"10.0.0.1"}}"#;

    #[test]
    fn lists_in_every_shape() {
        let rows = [Row { cluster: "m1", json: POD }];
        let meta = encode::list_meta("5", Some("next"), None);
        let full: Value =
            serde_json::from_slice(&list(&pods(), Shape::Full, meta.clone(), &rows, &[]).unwrap()).unwrap();
        assert_eq!((full["kind"].as_str(), full["apiVersion"].as_str()), (Some("PodList"), Some("v1")));
        assert_eq!(full["items"][0]["metadata"]["resourceVersion"], "77", "list objects keep the member's version");
        assert_eq!(full["metadata"]["continue"], "next");
        let t: Value =
            serde_json::from_slice(&list(&pods(), Shape::Table, meta.clone(), &rows, &columns(&pods(), None)).unwrap())
                .unwrap();
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(&names[..5], ["Cluster", "Name", "Ready", "Status", "Restarts"]);
        assert_eq!(t["rows"][0]["cells"][0], "m1");
        assert_eq!(t["rows"][0]["cells"][1], "web");
        assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "prod");
        let m: Value = serde_json::from_slice(&list(&pods(), Shape::Metadata, meta, &rows, &[]).unwrap()).unwrap();
        assert_eq!(m["kind"], "PartialObjectMetadataList");
        assert!(m["items"][0].get("status").is_none());
        let w: Value = serde_json::from_slice(
            &list(&widget(), Shape::Table, json!({}), &rows, &columns(&widget(), None)).unwrap(),
        )
        .unwrap();
        let names: Vec<&str> =
            w["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Cluster", "Name", "Age"]);
    }

    #[test]
    fn large_table_pages_keep_their_order_and_report_bad_objects() {
        // Enough rows for the page to be built in parts.
        let texts: Vec<String> = (0..301)
            .map(|i| {
                let mut pod: Value = serde_json::from_str(POD).unwrap();
                pod["metadata"]["name"] = json!(format!("web-{i:03}"));
                pod.to_string()
            })
            .collect();
        let clusters: Vec<String> = (0..301).map(|i| format!("m{}", i % 7)).collect();
        let rows: Vec<Row<'_>> = texts.iter().zip(&clusters).map(|(json, cluster)| Row { cluster, json }).collect();
        let cols = columns(&pods(), None);
        let t: Value = serde_json::from_slice(&list(&pods(), Shape::Table, json!({}), &rows, &cols).unwrap()).unwrap();
        let got: Vec<(String, String)> = t["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["cells"][0].as_str().unwrap().to_owned(), r["cells"][1].as_str().unwrap().to_owned()))
            .collect();
        let want: Vec<(String, String)> = (0..301).map(|i| (format!("m{}", i % 7), format!("web-{i:03}"))).collect();
        assert_eq!(got, want);
        let mut broken: Vec<Row<'_>> = rows.iter().map(|r| Row { cluster: r.cluster, json: r.json }).collect();
        broken[250] = Row { cluster: "m1", json: "{not json" };
        assert!(list(&pods(), Shape::Table, json!({}), &broken, &cols).is_err());
    }

    #[test]
    fn custom_resources_show_their_printer_columns() {
        let def = json!({"name": "v1", "additionalPrinterColumns": [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}]});
        let cols = columns(&widget(), Some(&def));
        let rows = [Row { cluster: "m1", json: POD }];
        let t: Value =
            serde_json::from_slice(&list(&widget(), Shape::Table, json!({}), &rows, &cols).unwrap()).unwrap();
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Cluster", "Name", "Phase", "Age"]);
        assert_eq!(t["rows"][0]["cells"][2], "Running");
        assert_eq!(columns(&pods(), Some(&def)).len(), columns(&pods(), None).len(), "built-ins keep their printer");
    }

    #[test]
    fn events_ride_in_an_annotation() {
        let mut pod: Value = serde_json::from_str(POD).unwrap();
        with_events(&mut pod, &[json!({"reason": "Scheduled"})]);
        let text = pod["metadata"]["annotations"][annotations::EVENTS].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), json!([{"reason": "Scheduled"}]));
        assert_eq!(pod["metadata"]["annotations"][annotations::CLUSTER_NAME], "m1", "other annotations stay");
        let mut bare = json!({});
        with_events(&mut bare, &[]);
        assert_eq!(bare["metadata"]["annotations"][annotations::EVENTS], "[]");
    }

    #[test]
    fn watch_objects_carry_the_position() {
        let pod: Value = serde_json::from_str(POD).unwrap();
        let line = watch_event(&[], Shape::Full, "MODIFIED", "m1", pod.clone(), 42).unwrap();
        let e: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(e["type"], "MODIFIED");
        assert_eq!(e["object"]["metadata"]["resourceVersion"], "42");
        assert_eq!(e["object"]["metadata"]["annotations"][MEMBER_RESOURCE_VERSION], "77");
        assert_eq!(e["object"]["metadata"]["annotations"][annotations::CLUSTER_NAME], "m1");
        let t: Value = serde_json::from_slice(
            &watch_event(&columns(&pods(), None), Shape::Table, "ADDED", "m1", pod.clone(), 43).unwrap(),
        )
        .unwrap();
        assert_eq!(t["object"]["kind"], "Table");
        assert_eq!(t["object"]["rows"][0]["cells"][0], "m1");
        let b: Value = serde_json::from_slice(&bookmark(&pods(), 44, true)).unwrap();
        assert_eq!(
            (b["type"].as_str(), b["object"]["metadata"]["resourceVersion"].as_str()),
            (Some("BOOKMARK"), Some("44"))
        );
        assert_eq!(cluster_of(&pod), "m1");
        assert_eq!(at_position(json!({}), 3)["metadata"]["resourceVersion"], "3");
    }
}
