//! The change log behind multi-cluster watch, on SQLite, PostgreSQL and MariaDB.
#![allow(clippy::unwrap_used)] // test code may panic

use std::time::Duration;

use api_types::search::{ListOptions, SearchQuery};

use api_types::Gvr;
use pedia_storage::{ChangeFilter, ChangeOp, ListRequest, LogState, Retention, Storage, StorageError};
use serde_json::{Value, json};

mod common;
use common::{ALL, fresh, pod, pods};

/// `(seq, op, cluster/ns/name, resourceVersion of the object sent)`.
async fn since(s: &Storage, after: i64, filter: &ChangeFilter) -> Vec<(i64, ChangeOp, String, String)> {
    s.changes_since(after, filter, 1000)
        .await
        .unwrap()
        .changes
        .into_iter()
        .map(|c| {
            let rv = c.value().unwrap()["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_owned();
            (c.seq, c.op, format!("{}/{}/{}", c.cluster, c.namespace, c.name), rv)
        })
        .collect()
}

fn all() -> ChangeFilter {
    ChangeFilter::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_is_logged_in_commit_order() {
    use ChangeOp::{Added, Deleted, Modified};
    for backend in ALL {
        let db = fresh(backend).await;
        let s = &db.storage;
        assert_eq!(s.log_state().await.unwrap(), LogState { head: 0, horizon: 0 });
        let batch: Vec<Value> = (0..3).map(|i| pod("ns", &format!("p{i}"), "1", json!({}))).collect();
        s.upsert("m1", &pods(), &batch).await.unwrap();
        // A replayed batch changes nothing, so it logs nothing.
        s.upsert("m1", &pods(), &batch).await.unwrap();
        assert_eq!(s.log_state().await.unwrap().head, 3, "{backend:?}");
        s.upsert("m1", &pods(), &[pod("ns", "p1", "2", json!({}))]).await.unwrap();

        let page = s.list(&ListRequest { gvr: Some(pods()), ..ListRequest::default() }).await.unwrap();
        assert_eq!(page.resource_version, 4, "{backend:?}: a list carries the log head");

        assert!(s.delete("m1", &pods(), "ns", "p0").await.unwrap());
        assert!(!s.delete("m1", &pods(), "ns", "p0").await.unwrap());
        let outcome = s
            .replace_all("m1", &pods(), &[pod("ns", "p1", "2", json!({})), pod("ns", "p3", "7", json!({}))])
            .await
            .unwrap();
        assert_eq!(outcome.deleted, 1);
        s.upsert("m2", &Gvr::new("", "v1", "configmaps"), &[pod("ns", "cm", "1", json!({}))]).await.unwrap();

        let expected = vec![
            // p0 and p2 were deleted since: their upserts are left out, their DELETED entries kept.
            (2, Added, "m1/ns/p1".to_owned(), "2".to_owned()),
            (4, Modified, "m1/ns/p1".into(), "2".into()),
            (5, Deleted, "m1/ns/p0".into(), "1".into()),
            (6, Added, "m1/ns/p3".into(), "7".into()),
            (7, Deleted, "m1/ns/p2".into(), "1".into()),
            (8, Added, "m2/ns/cm".into(), "1".into()),
        ];
        assert_eq!(since(s, 0, &all()).await, expected, "{backend:?}");
        assert_eq!(since(s, 5, &all()).await, expected[3..], "{backend:?}: resuming");
        // A limit counts log entries; the position says where to go on.
        let limited = s.changes_since(0, &all(), 2).await.unwrap();
        assert_eq!(limited.changes.iter().map(|c| c.seq).collect::<Vec<_>>(), [2], "{backend:?}: limit");
        assert_eq!(limited.position, 2);
        let skipped_only = s.changes_since(0, &all(), 1).await.unwrap();
        assert!(skipped_only.changes.is_empty() && skipped_only.position == 1, "{backend:?}: {skipped_only:?}");
        let nothing = s.changes_since(8, &all(), 5).await.unwrap();
        assert!(nothing.changes.is_empty() && nothing.position == 8, "{backend:?}: {nothing:?}");
        let deleted = s.changes_since(4, &all(), 1).await.unwrap().changes;
        assert_eq!(
            deleted[0].value().unwrap()["metadata"]["labels"],
            json!({}),
            "{backend:?}: the last object is kept"
        );

        let pods_of_m2 = ChangeFilter { gvr: Some(pods()), clusters: vec!["m2".into()] };
        assert!(since(s, 0, &pods_of_m2).await.is_empty(), "{backend:?}");
        let configmaps = ChangeFilter { gvr: Some(Gvr::new("", "v1", "configmaps")), clusters: Vec::new() };
        assert_eq!(since(s, 0, &configmaps).await, expected[5..], "{backend:?}");

        assert_eq!(s.clean_cluster("m1").await.unwrap(), 2);
        let cleaned = since(s, 8, &all()).await;
        let names: Vec<_> = cleaned.iter().map(|c| (c.0, c.1, c.2.as_str())).collect();
        assert_eq!(names, [(9, Deleted, "m1/ns/p1"), (10, Deleted, "m1/ns/p3")], "{backend:?}");
        db.cleanup().await;
    }
}

/// One batch of new, changed, replayed and re-added objects logs each as what it is (SQLite and
/// MariaDB tell them apart by what their upserts return, without looking the keys up first), the
/// replay is not rewritten and the label index follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_logs_each_object_as_what_it_is() {
    use ChangeOp::{Added, Modified};
    for backend in ALL {
        let db = fresh(backend).await;
        let s = &db.storage;
        let first = [
            pod("ns", "a", "1", json!({"app": "x"})),
            pod("ns", "b", "1", json!({"app": "x"})),
            pod("ns", "c", "1", json!({})),
            pod("ns", "e", "1", json!({"app": "x", "tier": "web"})),
        ];
        s.upsert("m1", &pods(), &first).await.unwrap();
        // c had the largest id; a new row must still count as new after it is gone.
        assert!(s.delete("m1", &pods(), "ns", "c").await.unwrap());
        let head = s.log_state().await.unwrap().head;
        // A replay is not rewritten, even where it differs (same resourceVersion).
        let mut replayed = pod("ns", "a", "1", json!({"app": "x"}));
        replayed["spec"]["nodeName"] = json!("n2");
        let mixed = [
            replayed,
            pod("ns", "b", "2", json!({"app": "y"})),
            pod("ns", "c", "1", json!({})),
            pod("ns", "d", "1", json!({"app": "y"})),
            // Changed, labels kept: its label rows stay as they are.
            pod("ns", "e", "2", json!({"app": "x", "tier": "web"})),
        ];
        s.upsert("m1", &pods(), &mixed).await.unwrap();
        let mut logged: Vec<_> = since(s, head, &all()).await.into_iter().map(|c| (c.1, c.2, c.3)).collect();
        logged.sort_by(|x, y| x.1.cmp(&y.1));
        let expected =
            [(Modified, "m1/ns/b", "2"), (Added, "m1/ns/c", "1"), (Added, "m1/ns/d", "1"), (Modified, "m1/ns/e", "2")];
        let expected: Vec<_> = expected.into_iter().map(|(op, k, rv)| (op, k.to_owned(), rv.to_owned())).collect();
        assert_eq!(logged, expected, "{backend:?}");
        assert_eq!(s.log_state().await.unwrap().head, head + 4, "{backend:?}: nothing else logged");
        let a = s.get("m1", &pods(), "ns", "a").await.unwrap().unwrap();
        assert_eq!(a["spec"]["nodeName"], "n1", "{backend:?}: the replay was written");
        let by_label = |l: &'static str| async move {
            let opts = ListOptions::from_query(&format!("labelSelector={l}")).unwrap();
            let query = SearchQuery::from_options(&opts, None, None).unwrap();
            let page = s.list(&ListRequest { gvr: Some(pods()), query, ..ListRequest::default() }).await.unwrap();
            let mut names: Vec<String> = page
                .items
                .iter()
                .map(|i| i.value().unwrap()["metadata"]["name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(by_label("app%3Dx").await, ["a", "e"], "{backend:?}");
        assert_eq!(by_label("app%3Dx%2Ctier%3Dweb").await, ["e"], "{backend:?}");
        assert_eq!(by_label("app%3Dy").await, ["b", "d"], "{backend:?}");
        db.cleanup().await;
    }
}

/// Writes of odd sizes are split into statements of a few sizes kept prepared (the change log
/// in 500 + 250 + 16 + 8 + 2 + 1 entries, the label index likewise): every entry and every label
/// row is written, numbered without gaps, and the second write runs the kept statements again
/// with other values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_any_size_log_and_index_every_object() {
    const N: usize = 777;
    for backend in ALL {
        let db = fresh(backend).await;
        let s = &db.storage;
        let batch = |rv: &str, tier: &str| -> Vec<Value> {
            (0..N).map(|i| pod("ns", &format!("p{i:03}"), rv, json!({"app": "web", "tier": tier}))).collect()
        };
        for (round, (rv, tier, op)) in
            [("1", "a", ChangeOp::Added), ("2", "b", ChangeOp::Modified)].into_iter().enumerate()
        {
            let head = s.log_state().await.unwrap().head;
            s.upsert("m1", &pods(), &batch(rv, tier)).await.unwrap();
            let logged = since(s, head, &all()).await;
            let seqs: Vec<i64> = logged.iter().map(|c| c.0).collect();
            let first = head + 1;
            assert_eq!(seqs, (first..first + N as i64).collect::<Vec<_>>(), "{backend:?} round {round}: no gaps");
            assert!(logged.iter().all(|c| c.1 == op && c.3 == rv), "{backend:?} round {round}: {logged:?}");
            let mut names: Vec<&str> = logged.iter().map(|c| c.2.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), N, "{backend:?} round {round}: every object once");
            let count = |selector: &str| {
                let opts = ListOptions::from_query(&format!("labelSelector={selector}")).unwrap();
                let query = SearchQuery::from_options(&opts, None, None).unwrap();
                async move {
                    s.list(&ListRequest { gvr: Some(pods()), query, ..ListRequest::default() })
                        .await
                        .unwrap()
                        .items
                        .len()
                }
            };
            assert_eq!(count(&format!("app%3Dweb%2Ctier%3D{tier}")).await, N, "{backend:?} round {round}");
            assert_eq!(
                count("tier%3Da").await,
                if tier == "a" { N } else { 0 },
                "{backend:?} round {round}: old labels gone"
            );
        }
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_bounds_the_log_and_old_resume_points_expire() {
    for backend in ALL {
        let db = fresh(backend).await;
        let s = &db.storage;
        for i in 0..10 {
            s.upsert("m1", &pods(), &[pod("ns", &format!("p{i}"), "1", json!({}))]).await.unwrap();
        }
        let keep_four = Retention { max_age: Duration::from_secs(3600), max_entries: 4 };
        assert_eq!(s.compact_changes(&keep_four).await.unwrap(), 6, "{backend:?}");
        assert_eq!(s.compact_changes(&keep_four).await.unwrap(), 0, "{backend:?}: nothing more to drop");
        assert_eq!(s.log_state().await.unwrap(), LogState { head: 10, horizon: 6 });
        let err = s.changes_since(5, &all(), 100).await.unwrap_err();
        assert!(matches!(err, StorageError::Expired { requested: 5, horizon: 6 }), "{backend:?}: {err}");
        assert!(err.to_string().contains("too old resource version"), "{err}");
        let seqs: Vec<i64> = since(s, 6, &all()).await.into_iter().map(|c| c.0).collect();
        assert_eq!(seqs, [7, 8, 9, 10], "{backend:?}");

        // By age: everything older than now goes, the head stays.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let by_age = Retention { max_age: Duration::ZERO, max_entries: 1_000_000 };
        assert_eq!(s.compact_changes(&by_age).await.unwrap(), 4, "{backend:?}");
        assert_eq!(s.log_state().await.unwrap(), LogState { head: 10, horizon: 10 });
        assert!(since(s, 10, &all()).await.is_empty());
        assert!(matches!(s.changes_since(9, &all(), 10).await, Err(StorageError::Expired { .. })));
        // Numbering goes on after the horizon.
        s.upsert("m1", &pods(), &[pod("ns", "p0", "2", json!({}))]).await.unwrap();
        assert_eq!(since(s, 10, &all()).await[0].0, 11, "{backend:?}");
        db.cleanup().await;
    }
}

/// Concurrent writers on the server databases: a reader polling the log only ever sees a
/// gap-free prefix (what lets a watch resume from any number it was given).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_leave_gaps_behind_a_reader() {
    for backend in ALL {
        let db = std::sync::Arc::new(fresh(backend).await);
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    for b in 0..15 {
                        let batch: Vec<Value> =
                            (0..7).map(|i| pod("ns", &format!("w{w}-b{b}-{i}"), "1", json!({}))).collect();
                        db.storage.upsert(&format!("c{w}"), &pods(), &batch).await.unwrap();
                    }
                })
            })
            .collect();
        let total = 4 * 15 * 7;
        let mut last = 0;
        let mut polls = 0;
        while last < total {
            let read = db.storage.changes_since(last, &all(), 50).await.unwrap();
            for c in &read.changes {
                assert_eq!(c.seq, last + 1, "{backend:?}: poll {polls} skipped past a change");
                last = c.seq;
            }
            assert_eq!(read.position, last, "{backend:?}: nothing was left out");
            polls += 1;
            assert!(polls < 100_000, "{backend:?}: the log never reached {total}");
        }
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(db.storage.log_state().await.unwrap().head, total, "{backend:?}");
        std::sync::Arc::into_inner(db).unwrap().cleanup().await;
    }
}
