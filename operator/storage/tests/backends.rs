//! The store on SQLite, PostgreSQL and MariaDB/MySQL: every test runs on all three. The servers
//! must be running (`.ci/run` starts them); a missing one fails the test, it is never skipped.
//! Override the admin URLs with PEDIA_TEST_POSTGRES_URL / PEDIA_TEST_MYSQL_URL.
#![allow(clippy::unwrap_used)] // test code may panic

use api_types::selector::LabelSelector;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, SimpleAsyncConnection};
use pedia_storage::{Backend, Gvr, ListRequest, Storage, StorageConfig, StorageError};
use serde_json::{Value, json};

struct Db {
    storage: Storage,
    backend: Backend,
    drop_sql: Option<(String, String)>,
    file: Option<std::path::PathBuf>,
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("pedia_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

fn admin_url(backend: Backend) -> String {
    match backend {
        Backend::Postgres => std::env::var("PEDIA_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        Backend::Mysql => {
            std::env::var("PEDIA_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
        }
        Backend::Sqlite => String::new(),
    }
}

fn with_database(url: &str, db: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    format!("{base}/{db}")
}

async fn fresh(backend: Backend) -> Db {
    let name = unique();
    let (url, drop_sql, file) = match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            (format!("sqlite://{}", path.display()), None, Some(path))
        }
        Backend::Postgres => {
            let admin = admin_url(backend);
            let mut c = AsyncPgConnection::establish(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is required for the storage tests ({admin}): {e}"));
            c.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
            (with_database(&admin, &name), Some((admin, format!("DROP DATABASE {name} WITH (FORCE)"))), None)
        }
        Backend::Mysql => {
            let admin = admin_url(backend);
            let mut c = AsyncMysqlConnection::establish(&admin)
                .await
                .unwrap_or_else(|e| panic!("MySQL/MariaDB is required for the storage tests ({admin}): {e}"));
            c.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
            (with_database(&admin, &name), Some((admin, format!("DROP DATABASE {name}"))), None)
        }
    };
    let storage = Storage::connect(&StorageConfig::from_url(&url).unwrap(), 1).await.unwrap();
    storage.migrate().await.unwrap();
    Db { storage, backend, drop_sql, file }
}

impl Db {
    async fn cleanup(self) {
        drop(self.storage);
        match (self.backend, self.drop_sql) {
            (Backend::Postgres, Some((admin, sql))) => {
                AsyncPgConnection::establish(&admin).await.unwrap().batch_execute(&sql).await.unwrap()
            }
            (Backend::Mysql, Some((admin, sql))) => {
                AsyncMysqlConnection::establish(&admin).await.unwrap().batch_execute(&sql).await.unwrap()
            }
            _ => {}
        }
        if let Some(f) = self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", f.display()));
            }
        }
    }
}

const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::Mysql];

fn pods() -> Gvr {
    Gvr::new("", "v1", "pods")
}

fn pod(ns: &str, name: &str, rv: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}"), "resourceVersion": rv,
                        "creationTimestamp": "2026-01-01T00:00:00Z", "labels": labels,
                        "managedFields": [{"manager": "kubectl"}],
                        "ownerReferences": [{"uid": format!("rs-{ns}"), "controller": true, "kind": "ReplicaSet", "name": "rs", "apiVersion": "apps/v1"}]},
           "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
}

fn names(page: &pedia_storage::Page) -> Vec<String> {
    page.items
        .iter()
        .map(|i| {
            format!(
                "{}/{}/{}",
                i.cluster,
                i.object["metadata"]["namespace"].as_str().unwrap(),
                i.object["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_newer_schemas_are_refused() {
    for backend in ALL {
        let db = fresh(backend).await;
        assert!(db.storage.migrate().await.unwrap().is_empty(), "{backend:?}: nothing left to apply");
        db.cleanup().await;
    }
    // A schema from a newer pedia (SQLite is enough to show the check).
    let db = fresh(Backend::Sqlite).await;
    let path = db.file.clone().unwrap();
    let mut conn = diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<diesel::SqliteConnection>::establish(
        path.to_str().unwrap(),
    )
    .await
    .unwrap();
    conn.batch_execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000')").await.unwrap();
    let err = db.storage.migrate().await.unwrap_err();
    assert!(matches!(err, StorageError::Schema(_)) && err.to_string().contains("upgrade pedia"), "{err}");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_api_on_every_backend() {
    for backend in ALL {
        let db = fresh(backend).await;
        let s = &db.storage;
        let batch: Vec<Value> = (0..7).map(|i| pod("ns-a", &format!("p{i}"), "1", json!({"app": "web"}))).collect();
        assert_eq!(s.upsert("m1", &pods(), &batch).await.unwrap(), 7);
        // Replaying the same batch leaves the same rows.
        s.upsert("m1", &pods(), &batch).await.unwrap();
        s.upsert("m2", &pods(), &[pod("ns-a", "p0", "9", json!({}))]).await.unwrap();
        let stats = s.stats().await.unwrap();
        assert_eq!(stats.rows, vec![("m1".into(), pods(), 7), ("m2".into(), pods(), 1)], "{backend:?}");
        assert!(stats.size_bytes.unwrap_or(0) > 0, "{backend:?}: database size");

        // Updates replace the object; managedFields and last-applied are pruned; the cluster is stamped.
        s.upsert("m1", &pods(), &[pod("ns-a", "p1", "2", json!({"app": "api"}))]).await.unwrap();
        let p1 = s.get("m1", &pods(), "ns-a", "p1").await.unwrap().unwrap();
        assert_eq!(p1["metadata"]["labels"]["app"], "api");
        assert!(p1["metadata"].get("managedFields").is_none());
        assert_eq!(p1["metadata"]["annotations"]["shadow.clusterpedia.io/cluster-name"], "m1");

        let rvs = s.resource_versions("m1").await.unwrap();
        assert_eq!(rvs.len(), 7);
        assert_eq!(rvs[&(pods(), "ns-a".to_owned(), "p1".to_owned())], "2");

        assert!(s.delete("m1", &pods(), "ns-a", "p6").await.unwrap());
        assert!(!s.delete("m1", &pods(), "ns-a", "p6").await.unwrap(), "{backend:?}: deleting twice is fine");

        // A relist keeps p0..p2 (p2 changed) and removes the rest, in one transaction.
        let relist = vec![
            pod("ns-a", "p0", "1", json!({"app": "web"})),
            pod("ns-a", "p1", "2", json!({"app": "api"})),
            pod("ns-a", "p2", "5", json!({})),
        ];
        let outcome = s.replace_all("m1", &pods(), &relist).await.unwrap();
        assert_eq!((outcome.upserted, outcome.deleted), (3, 3), "{backend:?}");
        let all = s
            .list(&ListRequest { gvr: Some(pods()), clusters: vec!["m1".into()], ..Default::default() })
            .await
            .unwrap();
        assert_eq!(names(&all), ["m1/ns-a/p0", "m1/ns-a/p1", "m1/ns-a/p2"], "{backend:?}");

        let events = vec![
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "ns-a", "uid": "ev-1", "resourceVersion": "3"},
                                 "involvedObject": {"uid": "uid-ns-a-p0", "kind": "Pod", "name": "p0"}, "reason": "Scheduled"}),
        ];
        s.record_events("m1", &events).await.unwrap();
        s.record_events("m1", &events).await.unwrap();
        assert_eq!(s.stats().await.unwrap().events, 1, "{backend:?}: events are keyed");

        assert_eq!(s.clean_resource("m2", &pods()).await.unwrap(), 1);
        assert_eq!(s.clean_cluster("m1").await.unwrap(), 3);
        let stats = s.stats().await.unwrap();
        assert!(stats.rows.is_empty() && stats.events == 0, "{backend:?}: {stats:?}");

        // Objects without a name are refused with the reason, and nothing is written.
        let err = s.upsert("m1", &pods(), &[json!({"kind": "Pod", "metadata": {}})]).await.unwrap_err();
        assert!(matches!(err, StorageError::BadObject(..)), "{err}");
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_every_backend() {
    for backend in ALL {
        let db = fresh(backend).await;
        let s = &db.storage;
        for (cluster, ns) in [("m1", "a"), ("m1", "b"), ("m2", "a")] {
            let objs: Vec<Value> = (0..4)
                .map(|i| {
                    let mut labels = json!({"app": if i % 2 == 0 { "web" } else { "db" }, "rank": i.to_string()});
                    if i == 3 {
                        labels["canary"] = json!("true");
                    }
                    pod(ns, &format!("p{i}"), "1", labels)
                })
                .collect();
            s.upsert(cluster, &pods(), &objs).await.unwrap();
        }
        s.upsert(
            "m1",
            &Gvr::new("apps", "v1", "deployments"),
            &[json!({"kind": "Deployment", "metadata": {"name": "d", "namespace": "a"}})],
        )
        .await
        .unwrap();
        let q = |clusters: &[&str], namespaces: &[&str], names: &[&str], labels: &str| ListRequest {
            gvr: Some(pods()),
            clusters: clusters.iter().map(|c| (*c).to_owned()).collect(),
            namespaces: namespaces.iter().map(|c| (*c).to_owned()).collect(),
            names: names.iter().map(|c| (*c).to_owned()).collect(),
            labels: LabelSelector::parse(labels).unwrap(),
            ..Default::default()
        };
        let count = |r: ListRequest| async move { s.list(&r).await.unwrap().items.len() };
        assert_eq!(count(q(&[], &[], &[], "")).await, 12, "{backend:?}");
        assert_eq!(count(q(&["m2"], &[], &[], "")).await, 4);
        assert_eq!(count(q(&["m1"], &["b"], &[], "")).await, 4);
        assert_eq!(count(q(&[], &[], &["p0", "p1"], "")).await, 6);
        assert_eq!(count(q(&[], &[], &[], "app=web")).await, 6);
        assert_eq!(count(q(&[], &[], &[], "app in (web,db)")).await, 12);
        assert_eq!(count(q(&[], &[], &[], "app!=web")).await, 6);
        assert_eq!(count(q(&[], &[], &[], "app notin (web)")).await, 6);
        assert_eq!(count(q(&[], &[], &[], "canary")).await, 3);
        assert_eq!(count(q(&[], &[], &[], "!canary")).await, 9);
        assert_eq!(count(q(&[], &[], &[], "canary!=false")).await, 12, "{backend:?}: absent labels match !=");
        assert_eq!(count(q(&[], &[], &[], "rank>1")).await, 6, "{backend:?}");
        assert_eq!(count(q(&[], &[], &[], "rank<1")).await, 3, "{backend:?}");
        assert_eq!(count(q(&["m1"], &["a"], &[], "app=web,rank>0")).await, 1);

        // Paging through continue tokens returns everything once, in a stable order.
        let mut seen = Vec::new();
        let mut req = ListRequest { gvr: Some(pods()), limit: Some(5), ..Default::default() };
        loop {
            let page = s.list(&req).await.unwrap();
            assert!(page.items.len() <= 5);
            seen.extend(names(&page));
            match page.continue_token {
                Some(t) => req.continue_token = Some(t),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(seen, sorted, "{backend:?}: ordered, no duplicates");
        assert_eq!(seen.len(), 12);
        let exact = s.list(&ListRequest { gvr: Some(pods()), limit: Some(12), ..Default::default() }).await.unwrap();
        assert!(exact.continue_token.is_none(), "no token when nothing follows");

        // Tampered tokens and hostile values.
        let err =
            s.list(&ListRequest { continue_token: Some("00ff".repeat(5)), ..Default::default() }).await.unwrap_err();
        assert!(matches!(err, StorageError::InvalidQuery { param: "continue", .. }), "{err}");
        let hostile = q(&["m1' OR '1'='1"], &["a\"; DELETE FROM resources; --"], &["x' UNION SELECT 1 --"], "");
        assert_eq!(count(hostile).await, 0, "{backend:?}: hostile values are data");
        assert_eq!(count(q(&[], &[], &[], "")).await, 12, "{backend:?}: nothing was deleted");
        db.cleanup().await;
    }
}
