//! Property test: random objects and random label/field selectors give the same result set on
//! SQLite, PostgreSQL, MariaDB and the in-memory reference evaluator (api-types' matching).
#![allow(clippy::unwrap_used)] // test code may panic

use std::collections::BTreeSet;

use api_types::Gvr;
use api_types::fields::FieldPathSelector;
use api_types::search::SearchQuery;
use api_types::selector::LabelSelector;
use pedia_storage::ListRequest;
use serde_json::{Value, json};

mod common;

/// xorshift64*: deterministic, so a failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const KEYS: [&str; 4] = ["app", "tier", "example.com/team", "n"];
const VALUES: [&str; 6] = ["web", "db", "x", "1", "2", "10"];
const PHASES: [&str; 3] = ["Running", "Pending", "Failed"];

fn random_object(rng: &mut Rng, i: usize) -> (String, Value) {
    let mut labels = serde_json::Map::new();
    for k in KEYS {
        if rng.chance(60) {
            labels.insert(k.to_owned(), json!(rng.pick(&VALUES)));
        }
    }
    let ns = format!("ns{}", rng.next() % 3);
    let mut spec = json!({"nodeName": format!("node-{}", rng.next() % 3)});
    if rng.chance(70) {
        spec["replicas"] = json!(rng.next() % 5);
    }
    if rng.chance(50) {
        spec["paused"] = json!(rng.chance(50));
    }
    let cluster = format!("c{}", rng.next() % 2);
    let object = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("obj-{i}"), "namespace": ns, "uid": format!("u{i}"), "resourceVersion": "1", "labels": labels},
        "spec": spec, "status": {"phase": rng.pick(&PHASES)}});
    (cluster, object)
}

fn random_requirement(rng: &mut Rng, key: &str, values: &[&str]) -> String {
    match rng.next() % 8 {
        0 => format!("{key}={}", rng.pick(values)),
        1 => format!("{key}!={}", rng.pick(values)),
        2 => format!("{key} in ({},{})", rng.pick(values), rng.pick(values)),
        3 => format!("{key} notin ({})", rng.pick(values)),
        4 => key.to_owned(),
        5 => format!("!{key}"),
        6 => format!("{key}>{}", rng.next() % 4),
        _ => format!("{key}<{}", rng.next() % 4),
    }
}

fn random_query(rng: &mut Rng) -> (String, String) {
    let mut labels = Vec::new();
    for _ in 0..(rng.next() % 3) {
        let key = *rng.pick(&KEYS);
        labels.push(random_requirement(rng, key, &VALUES));
    }
    let mut fields = Vec::new();
    for _ in 0..(rng.next() % 3) {
        let (path, values): (&str, &[&str]) = match rng.next() % 4 {
            0 => ("status.phase", &PHASES),
            1 => ("spec.replicas", &["0", "1", "3"]),
            2 => ("spec.paused", &["true", "false"]),
            _ => ("metadata.labels['example.com/team']", &VALUES),
        };
        fields.push(random_requirement(rng, path, values));
    }
    (labels.join(","), fields.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_agree_on_every_backend_and_the_reference() {
    let seed =
        std::env::var("PEDIA_PROPTEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9E37_79B9_7F4A_7C15_u64);
    let mut rng = Rng(seed);
    let objects: Vec<(String, Value)> = (0..150).map(|i| random_object(&mut rng, i)).collect();
    let gvr = Gvr::new("", "v1", "pods");
    let mut stores = Vec::new();
    for backend in common::ALL {
        let db = common::fresh(backend).await;
        for cluster in ["c0", "c1"] {
            let objs: Vec<Value> = objects.iter().filter(|(c, _)| c == cluster).map(|(_, o)| o.clone()).collect();
            db.storage.upsert(cluster, &gvr, &objs).await.unwrap();
        }
        stores.push(db);
    }
    let mut non_trivial = 0;
    for case in 0..200 {
        let (labels, fields) = random_query(&mut rng);
        let label_sel = LabelSelector::parse(&labels).unwrap_or_else(|e| panic!("case {case}: {labels}: {e}"));
        let field_sel = FieldPathSelector::parse(&fields).unwrap_or_else(|e| panic!("case {case}: {fields}: {e}"));
        let expected: BTreeSet<String> = objects
            .iter()
            .filter(|(_, o)| {
                let l: std::collections::BTreeMap<String, String> = o["metadata"]["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                label_sel.matches(&l) && field_sel.matches(o)
            })
            .map(|(c, o)| format!("{c}/{}", o["metadata"]["name"].as_str().unwrap()))
            .collect();
        if !expected.is_empty() && expected.len() < objects.len() {
            non_trivial += 1;
        }
        let query = SearchQuery { labels: label_sel.clone(), fields: field_sel.clone(), ..SearchQuery::default() };
        for db in &stores {
            let backend = db.backend;
            let page = db
                .storage
                .list(&ListRequest { gvr: Some(gvr.clone()), resource_types: Vec::new(), query: query.clone() })
                .await
                .unwrap();
            let got: BTreeSet<String> = page
                .items
                .iter()
                .map(|i| format!("{}/{}", i.cluster, i.value().unwrap()["metadata"]["name"].as_str().unwrap()))
                .collect();
            assert_eq!(got, expected, "seed {seed:#x} case {case} on {backend:?}: labels {labels:?} fields {fields:?}");
        }
    }
    assert!(non_trivial > 50, "the generator produces selective queries ({non_trivial} of 200)");
    for db in stores {
        db.cleanup().await;
    }
}
