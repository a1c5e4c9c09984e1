//! The store on SQLite, PostgreSQL and MariaDB/MySQL: every test runs on all three. The servers
//! must be running (`.ci/run` starts them); a missing one fails the test, it is never skipped.
//! Override the admin URLs with PEDIA_TEST_POSTGRES_URL / PEDIA_TEST_MYSQL_URL.
#![allow(clippy::unwrap_used)] // test code may panic

use api_types::Gvr;
use api_types::search::{ListOptions, SearchQuery};
use diesel_async::{AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, SimpleAsyncConnection};
use pedia_storage::{Backend, ListRequest, Storage, StorageConfig, StorageError};
use serde_json::{Value, json};

mod common;
use common::{ALL, Db, fresh, pod, pods, with_database};

/// A migration's down.sql for `backend` (the folder has the same name in each backend's set).
macro_rules! down_sql {
    ($backend:expr, $dir:literal) => {
        match $backend {
            Backend::Sqlite => include_str!(concat!("../migrations/sqlite/", $dir, "/down.sql")),
            Backend::Postgres => include_str!(concat!("../migrations/postgres/", $dir, "/down.sql")),
            Backend::Mysql => include_str!(concat!("../migrations/mysql/", $dir, "/down.sql")),
        }
    };
}

fn names(page: &pedia_storage::Page) -> Vec<String> {
    page.items
        .iter()
        .map(|i| {
            let o = i.value().unwrap();
            format!(
                "{}/{}/{}",
                i.cluster,
                o["metadata"]["namespace"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_newer_schemas_are_refused() {
    for backend in ALL {
        let db = fresh(backend).await;
        assert!(db.storage.migrate().await.unwrap().is_empty(), "{backend:?}: nothing left to apply");
        // The latest migration's down runs, and migrating again applies it again.
        let down = down_sql!(backend, "2026-12-02-000006_resource_definitions");
        db.batch_execute(down).await;
        db.batch_execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261202000006'").await;
        assert_eq!(db.storage.migrate().await.unwrap(), ["20261202000006"], "{backend:?}");
        if backend == Backend::Postgres {
            let down = include_str!("../migrations/postgres/2026-12-07-000008_byte_order_keys/down.sql");
            db.batch_execute(down).await;
            db.batch_execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261207000008'").await;
            assert_eq!(db.storage.migrate().await.unwrap(), ["20261207000008"]);
        }
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

/// Names order byte by byte on every backend, as Kubernetes orders them, whatever a PostgreSQL
/// database's locale (under ICU's en-US collation "B" would come last), and pages continue by
/// the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_order_byte_by_byte_whatever_the_locale() {
    for backend in ALL {
        let db = match backend {
            Backend::Postgres => {
                common::fresh_postgres("TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
                    .await
            }
            b => fresh(b).await,
        };
        let given = ["ab", "a0", "B", "a.b", "a", "a-b"];
        let batch: Vec<Value> = given.iter().map(|n| pod("ns", n, "1", json!({}))).collect();
        db.storage.upsert("m1", &pods(), &batch).await.unwrap();
        let list = |query: String| {
            let s = &db.storage;
            async move { s.list(&req(pods(), &query)).await.unwrap() }
        };
        let named = |page: &pedia_storage::Page| -> Vec<String> {
            names(page).iter().map(|n| n.rsplit('/').next().unwrap().to_owned()).collect()
        };
        let bytewise = ["B", "a", "a-b", "a.b", "a0", "ab"];
        assert_eq!(named(&list(String::new()).await), bytewise, "{backend:?}: the default order");
        let reversed: Vec<&str> = bytewise.iter().rev().copied().collect();
        assert_eq!(named(&list("orderby=name%20desc".into()).await), reversed, "{backend:?}");
        let mut paged = Vec::new();
        let mut token = String::new();
        loop {
            let page = list(format!("limit=2&continue={token}")).await;
            paged.extend(named(&page));
            match page.continue_token {
                Some(t) if !t.is_empty() => token = t,
                _ => break,
            }
        }
        assert_eq!(paged, bytewise, "{backend:?}: pages");
        db.cleanup().await;
    }
}

/// The operator and its apiserver sidecar start together on one database: their migrations
/// take turns, all succeed, none runs a migration another one ran, and the schema is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_take_turns() {
    for backend in ALL {
        let db = common::fresh_with(backend, false).await;
        let config = StorageConfig::from_url(&db.url).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let storage = Storage::connect(&config, 1).await.unwrap();
            tasks.push(tokio::spawn(async move { storage.migrate().await }));
        }
        let mut ran = Vec::new();
        for t in tasks {
            ran.extend(t.await.unwrap().unwrap_or_else(|e| panic!("{backend:?}: {e}")));
        }
        ran.sort();
        let mut once = ran.clone();
        once.dedup();
        assert_eq!(ran, once, "{backend:?}: no migration ran twice");
        assert!(!ran.is_empty(), "{backend:?}: the migrations ran");
        // Everything is applied: a migrate afterwards has nothing left to do.
        assert!(db.storage.migrate().await.unwrap().is_empty(), "{backend:?}");
        db.cleanup().await;
    }
}

/// The label index migration converts existing rows (and its down migration converts them back):
/// a store written before it answers label selectors the same afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_index_migration_keeps_existing_labels() {
    for backend in ALL {
        let db = fresh(backend).await;
        let batch: Vec<Value> = (0..6)
            .map(|i| {
                pod(
                    "ns",
                    &format!("p{i}"),
                    "1",
                    json!({"app": if i < 4 { "web" } else { "db" }, "rank": i.to_string()}),
                )
            })
            .collect();
        db.storage.upsert("m1", &pods(), &batch).await.unwrap();
        // Newer migrations of the label index are reverted first, as diesel would.
        let mut reverted = vec!["20261122000003"];
        if backend == Backend::Sqlite {
            db.batch_execute(include_str!("../migrations/sqlite/2026-12-06-000008_label_index_without_fk/down.sql"))
                .await;
            db.batch_execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261206000008'").await;
            reverted.push("20261206000008");
        }
        let down = down_sql!(backend, "2026-11-22-000003_label_index");
        db.batch_execute(down).await;
        db.batch_execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261122000003'").await;
        // A new process migrates the old layout (its label cache starts empty, as at start).
        let s = Storage::connect(&pedia_storage::StorageConfig::from_url(&db.url).unwrap(), 1).await.unwrap();
        assert_eq!(s.migrate().await.unwrap(), reverted, "{backend:?}");
        let count = |q: &'static str| {
            let s = &s;
            async move { s.list(&req(pods(), q)).await.unwrap().items.len() }
        };
        assert_eq!(
            (
                count("labelSelector=app%3Dweb").await,
                count("labelSelector=app%3Ddb%2Crank%3D5").await,
                count("labelSelector=app!%3Dweb").await
            ),
            (4, 1, 2),
            "{backend:?}"
        );
        // Writes after the migration index their labels, old pairs and new ones alike.
        s.upsert("m1", &pods(), &[pod("ns", "p0", "2", json!({"app": "db", "tier": "new"}))]).await.unwrap();
        assert_eq!(
            (
                count("labelSelector=app%3Dweb").await,
                count("labelSelector=app%3Ddb").await,
                count("labelSelector=tier").await
            ),
            (3, 3, 1),
            "{backend:?}"
        );
        drop(s);
        db.cleanup().await;
    }
}

/// SQLite's label index without its foreign key (a trigger removes an object's labels with it):
/// the migration keeps the rows, and deletions, cleaning and relists still take their labels along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_label_rows_go_with_their_objects_after_the_foreign_key_migration() {
    let db = fresh(Backend::Sqlite).await;
    let labelled = |i: usize, rv: &str| pod("ns", &format!("p{i}"), rv, json!({"app": "web", "rank": i.to_string()}));
    let batch: Vec<Value> = (0..4).map(|i| labelled(i, "1")).collect();
    db.storage.upsert("m1", &pods(), &batch).await.unwrap();
    db.batch_execute(include_str!("../migrations/sqlite/2026-12-06-000008_label_index_without_fk/down.sql")).await;
    db.batch_execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261206000008'").await;
    assert_eq!(label_rows(&db).await, 8, "the old layout holds two labels per object");
    let s = Storage::connect(&StorageConfig::from_url(&db.url).unwrap(), 1).await.unwrap();
    assert_eq!(s.migrate().await.unwrap(), ["20261206000008"]);
    assert_eq!(label_rows(&db).await, 8, "the migration keeps every label row");
    let count = |q: &'static str| {
        let s = &s;
        async move { s.list(&req(pods(), q)).await.unwrap().items.len() }
    };
    assert_eq!((count("labelSelector=app%3Dweb").await, count("labelSelector=rank%3D2").await), (4, 1));

    assert!(s.delete("m1", &pods(), "ns", "p0").await.unwrap());
    assert_eq!(label_rows(&db).await, 6, "a deleted object's labels go with it");
    // A relist without p1 deletes it and its labels; p2 changes a label.
    let mut p2 = labelled(2, "2");
    p2["metadata"]["labels"]["rank"] = json!("twenty");
    s.replace_all("m1", &pods(), &[p2, labelled(3, "1")]).await.unwrap();
    assert_eq!(label_rows(&db).await, 4, "the relist's deletions take their labels along");
    assert_eq!((count("labelSelector=rank%3D2").await, count("labelSelector=rank%3Dtwenty").await), (0, 1));
    assert_eq!(s.clean_cluster("m1").await.unwrap(), 2);
    assert_eq!(label_rows(&db).await, 0, "cleaning a cluster takes every label row along");
    drop(s);
    db.cleanup().await;
}

/// Rows left in the label table (SQLite and MySQL keep one; PostgreSQL indexes the JSON).
async fn label_rows(db: &Db) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let q = "SELECT COUNT(*) AS n FROM resource_labels";
    match db.backend {
        Backend::Sqlite => {
            let path = db.file.clone().unwrap();
            let mut c =
                diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<diesel::SqliteConnection>::establish(
                    path.to_str().unwrap(),
                )
                .await
                .unwrap();
            diesel_async::RunQueryDsl::load::<N>(diesel::sql_query(q), &mut c).await.unwrap()[0].n
        }
        Backend::Mysql => {
            let (admin, sql) = db.drop_sql.clone().unwrap();
            let name = sql.split_whitespace().nth(2).unwrap().to_owned();
            let mut c = AsyncMysqlConnection::establish(&with_database(&admin, &name)).await.unwrap();
            diesel_async::RunQueryDsl::load::<N>(diesel::sql_query(q), &mut c).await.unwrap()[0].n
        }
        Backend::Postgres => 0,
    }
}

/// The narrowest label drives the label intersection whatever the selector's order (the store
/// reorders the requirements by estimated size): both orders give the same rows, pages, continue
/// tokens and remaining counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_requirements_in_any_order_give_the_same_pages() {
    for backend in ALL {
        let db = fresh(backend).await;
        let batch: Vec<Value> = (0..40)
            .map(|i| {
                let mut labels = json!({"wide": "y", "tier": if i % 2 == 0 { "a" } else { "b" }});
                if [3, 17, 29, 30].contains(&i) {
                    labels["narrow"] = json!("z");
                }
                pod("ns", &format!("p{i}"), "1", labels)
            })
            .collect();
        db.storage.upsert("m1", &pods(), &batch).await.unwrap();
        // The store's estimates (SQLite: counts; MySQL: EXPLAIN's row estimates) put the narrow
        // label first; PostgreSQL's GIN index takes the requirements as given.
        for selector in ["wide%3Dy,narrow%3Dz", "narrow%3Dz,wide%3Dy"] {
            let order = db.storage.label_order(&req(pods(), &format!("labelSelector={selector}"))).await.unwrap();
            let expected = match backend {
                Backend::Postgres if selector.starts_with("wide") => ["wide", "narrow"],
                _ => ["narrow", "wide"],
            };
            assert_eq!(order, expected, "{backend:?} {selector}");
        }
        let list = |q: String| {
            let s = &db.storage;
            async move { s.list(&req(pods(), &q)).await.unwrap() }
        };
        for (a, b, expected) in [
            ("wide%3Dy", "narrow%3Dz", vec!["p17", "p29", "p3", "p30"]),
            ("wide+in+(y,x)", "narrow%3Dz", vec!["p17", "p29", "p3", "p30"]),
            ("tier%3Db", "narrow", vec!["p17", "p29", "p3"]),
            ("tier!%3Da", "narrow%3Dz,wide%3Dy", vec!["p17", "p29", "p3"]),
        ] {
            for selector in [format!("{a},{b}"), format!("{b},{a}")] {
                let all = list(format!("labelSelector={selector}")).await;
                let got: Vec<String> = names(&all).iter().map(|n| n.rsplit('/').next().unwrap().to_owned()).collect();
                assert_eq!(got, expected, "{backend:?} {selector}");
                // Pages of two: a continue token and a remaining count, from the reordered query.
                let first = list(format!("limit=2&withRemainingCount=true&labelSelector={selector}")).await;
                assert_eq!(first.items.len(), 2, "{backend:?} {selector}");
                assert_eq!(first.remaining, Some(expected.len() as i64 - 2), "{backend:?} {selector}");
                let token = first.continue_token.clone().unwrap();
                let rest = list(format!("limit=2&labelSelector={selector}&continue={token}")).await;
                let mut paged = names(&first);
                paged.extend(names(&rest));
                assert_eq!(paged, names(&all), "{backend:?} {selector}: pages");
            }
        }
        db.cleanup().await;
    }
}

/// Wide labels page by walking the order index (SQLite counts the matches, PostgreSQL asks its
/// planner), narrow ones by looking up their matches; both give the same rows in the same order,
/// page by page with continue tokens and remaining counts, with other filters and requirements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_and_narrow_labels_page_alike() {
    for backend in ALL {
        let db = fresh(backend).await;
        // 3 clusters x 2 namespaces x 1,000 pods: `wide` on every pod, `half` on every other one,
        // `tier` t0/t1/t2 on a third each, `narrow` on 30; `rare` on 600 in the cluster that
        // sorts last.
        let mut expected: Vec<(String, String, String, Value)> = Vec::new();
        for cluster in ["m1", "m2", "m3"] {
            for ns in ["a", "b"] {
                let batch: Vec<Value> = (0..1000)
                    .map(|i| {
                        let mut labels = json!({"wide": "y", "tier": format!("t{}", i % 3)});
                        if i % 2 == 0 {
                            labels["half"] = json!("h");
                        }
                        if i % 100 == 7 && ns == "b" {
                            labels["narrow"] = json!("z");
                        }
                        if cluster == "m3" && i < 300 {
                            labels["rare"] = json!("r");
                        }
                        let name = format!("p{i:04}");
                        expected.push((cluster.to_owned(), ns.to_owned(), name.clone(), labels.clone()));
                        pod(ns, &name, "1", labels)
                    })
                    .collect();
                db.storage.upsert(cluster, &pods(), &batch).await.unwrap();
            }
        }
        let walks = |q: &str| {
            let (s, r) = (&db.storage, req(pods(), q));
            async move { s.walks_order_index(&r).await.unwrap() }
        };
        if backend == Backend::Postgres {
            // Without statistics PostgreSQL's estimates are small (as they are for some wide
            // labels with them): the matches are counted up to the bar.
            assert!(walks("limit=10&labelSelector=wide%3Dy").await, "counted, not estimated");
            assert!(!walks("limit=10&labelSelector=narrow%3Dz").await);
        }
        db.storage.analyze().await.unwrap();
        let ordered = backend != Backend::Mysql;
        assert_eq!(walks("limit=10&labelSelector=wide%3Dy").await, ordered, "{backend:?}: wide");
        assert_eq!(walks("limit=10&labelSelector=half%3Dh,wide%3Dy").await, ordered, "{backend:?}: wide pair");
        assert!(!walks("limit=10&labelSelector=narrow%3Dz").await, "{backend:?}: narrow");
        assert!(!walks("labelSelector=wide%3Dy").await, "{backend:?}: no page size, nothing to stop early");
        assert!(!walks("limit=10&orderby=name&labelSelector=wide%3Dy").await, "{backend:?}: another order");
        let list = |q: String| {
            let s = &db.storage;
            async move { s.list(&req(pods(), &q)).await.unwrap() }
        };
        let want = |f: &dyn Fn(&str, &str, &Value) -> bool| -> Vec<String> {
            expected.iter().filter(|(c, n, _, l)| f(c, n, l)).map(|(c, n, name, _)| format!("{c}/{n}/{name}")).collect()
        };
        let has = |l: &Value, k: &str, v: &str| l[k] == v;
        for (query, rows) in [
            ("labelSelector=wide%3Dy", want(&|_, _, _| true)),
            ("labelSelector=half%3Dh,tier%3Dt1", want(&|_, _, l| has(l, "half", "h") && has(l, "tier", "t1"))),
            ("labelSelector=wide%3Dy,tier!%3Dt0", want(&|_, _, l| !has(l, "tier", "t0"))),
            ("labelSelector=narrow%3Dz,wide%3Dy", want(&|_, _, l| has(l, "narrow", "z"))),
            ("labelSelector=rare%3Dr,wide", want(&|_, _, l| has(l, "rare", "r"))),
            ("labelSelector=wide%3Dy&clusters=m3,m1&namespaces=b", want(&|c, n, _| c != "m2" && n == "b")),
            ("labelSelector=tier+in+(t1,t2)&namespaces=a", want(&|_, n, l| n == "a" && !has(l, "tier", "t0"))),
        ] {
            let mut walked = Vec::new();
            let first = list(format!("limit=499&withRemainingCount=true&{query}")).await;
            assert_eq!(first.remaining, Some(rows.len().saturating_sub(499) as i64), "{backend:?} {query}");
            let mut page = first;
            loop {
                walked.extend(names(&page));
                let Some(token) = page.continue_token.clone() else { break };
                page = list(format!("limit=499&{query}&continue={token}")).await;
            }
            assert_eq!(walked, rows, "{backend:?} {query}: pages of 499");
            assert_eq!(names(&list(query.to_owned()).await), rows, "{backend:?} {query}: one list");
        }
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internalstorage_config_files_connect() {
    for backend in [Backend::Postgres, Backend::Mysql] {
        let db = fresh(backend).await;
        let name = db.drop_sql.as_ref().unwrap().1.split_whitespace().nth(2).unwrap().to_owned();
        let (kind, port, user) =
            if backend == Backend::Postgres { ("postgres", 5432, "postgres") } else { ("mysql", 3306, "root") };
        let text = format!(
            "type: {kind}\nhost: 127.0.0.1\nport: {port}\nuser: {user}\ndatabase: {name}\nsslMode: disable\nconnPool:\n  maxOpenConns: 4\n"
        );
        let config = pedia_storage::internalstorage::from_file(&text, &|_| None).unwrap();
        let storage = Storage::connect(&config, 1).await.unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert!(storage.migrate().await.unwrap().is_empty(), "{backend:?}: same database, already migrated");
        assert!(storage.stats().await.unwrap().rows.is_empty());
        drop(storage);
        db.cleanup().await;
    }
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

        // The label index follows updates.
        let by_label = |l: &'static str| async move {
            s.list(&req(pods(), &format!("clusters=m1&labelSelector={l}"))).await.unwrap().items.len()
        };
        assert_eq!(
            (by_label("app%3Dapi").await, by_label("app%3Dweb").await, by_label("app!%3Dweb").await),
            (1, 6, 1),
            "{backend:?}"
        );

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
        let all = s.list(&req(pods(), "clusters=m1")).await.unwrap();
        assert_eq!(names(&all), ["m1/ns-a/p0", "m1/ns-a/p1", "m1/ns-a/p2"], "{backend:?}");
        assert_eq!((by_label("app").await, by_label("!app").await), (2, 1), "{backend:?}: p2 lost its label");

        // A batch carrying one object twice stores the last one (one INSERT cannot write a key twice).
        let twice = [pod("ns-b", "p9", "1", json!({"app": "old"})), pod("ns-b", "p9", "2", json!({"app": "new"}))];
        assert_eq!(s.upsert("m1", &pods(), &twice).await.unwrap(), 1, "{backend:?}");
        let p9 = s.get("m1", &pods(), "ns-b", "p9").await.unwrap().unwrap();
        assert_eq!(p9["metadata"]["resourceVersion"], "2", "{backend:?}");
        assert_eq!((by_label("app%3Dnew").await, by_label("app%3Dold").await), (1, 0), "{backend:?}");
        assert!(s.delete("m1", &pods(), "ns-b", "p9").await.unwrap());

        let events = vec![
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "ns-a", "uid": "ev-1", "resourceVersion": "3"},
                                 "involvedObject": {"uid": "uid-ns-a-p0", "kind": "Pod", "name": "p0"}, "reason": "Scheduled"}),
        ];
        s.record_events("m1", &events).await.unwrap();
        s.record_events("m1", &events).await.unwrap();
        assert_eq!(s.stats().await.unwrap().events, 1, "{backend:?}: events are keyed");
        let later = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e2", "namespace": "ns-a", "uid": "ev-2", "resourceVersion": "4"},
                           "involvedObject": {"uid": "uid-ns-a-p0"}, "reason": "Pulled"});
        s.record_events("m1", std::slice::from_ref(&later)).await.unwrap();
        s.record_events("m2", &events).await.unwrap();
        // A relist replays what is stored: an event with its stored resourceVersion is not
        // rewritten (the body below differs only to show it), a newer one is.
        let mut replayed = later.clone();
        replayed["reason"] = json!("Replayed");
        s.record_events("m1", &[replayed]).await.unwrap();

        let asked = |c: &str, u: &str| (c.to_owned(), u.to_owned());
        let found = s
            .events_of(&[
                asked("m1", "uid-ns-a-p0"),
                asked("m1", "uid-ns-a-p1"),
                asked("m3", "uid-ns-a-p0"),
                asked("m1", ""),
            ])
            .await
            .unwrap();
        let reasons: Vec<&str> =
            found[&asked("m1", "uid-ns-a-p0")].iter().map(|e| e["reason"].as_str().unwrap()).collect();
        assert_eq!(
            reasons,
            ["Scheduled", "Pulled"],
            "{backend:?}: an object's events, oldest first, replays left alone"
        );
        let mut pulled_again = later;
        pulled_again["metadata"]["resourceVersion"] = json!("7");
        pulled_again["count"] = json!(2);
        s.record_events("m1", &[pulled_again]).await.unwrap();
        let found = s.events_of(&[asked("m1", "uid-ns-a-p0")]).await.unwrap();
        assert_eq!(
            found[&asked("m1", "uid-ns-a-p0")][1]["count"],
            2,
            "{backend:?}: a newer resourceVersion is written"
        );
        assert_eq!(found.len(), 1, "{backend:?}: only objects with events, of the cluster asked: {found:?}");
        assert!(s.events_of(&[]).await.unwrap().is_empty());

        // Definitions: replaced per cluster, read per resource across clusters.
        let widgets = Gvr::new("example.io", "v1", "widgets");
        let gadgets = Gvr::new("example.io", "v1", "gadgets");
        let def = |col: &str| json!({"name": "v1", "additionalPrinterColumns": [{"name": col, "type": "string", "jsonPath": ".spec.size"}]});
        s.replace_definitions("m1", &[(widgets.clone(), def("Old")), (gadgets.clone(), def("G"))]).await.unwrap();
        s.replace_definitions("m1", &[(widgets.clone(), def("Size"))]).await.unwrap();
        s.replace_definitions("m2", &[(widgets.clone(), def("Size2"))]).await.unwrap();
        let of_widgets = s.definitions(Some(&widgets)).await.unwrap();
        let cols: Vec<(&str, &str)> = of_widgets
            .iter()
            .map(|d| (d.cluster.as_str(), d.definition["additionalPrinterColumns"][0]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(cols, [("m1", "Size"), ("m2", "Size2")], "{backend:?}");
        assert!(s.definitions(Some(&gadgets)).await.unwrap().is_empty(), "{backend:?}: replaced, not merged");
        assert_eq!(s.definitions(None).await.unwrap().len(), 2, "{backend:?}");

        assert_eq!(s.clean_resource("m2", &pods()).await.unwrap(), 1);
        assert_eq!(s.clean_cluster("m1").await.unwrap(), 3);
        assert_eq!(label_rows(&db).await, 0, "{backend:?}: label rows go with their objects");
        let stats = s.stats().await.unwrap();
        assert!(stats.rows.is_empty() && stats.events == 1, "{backend:?}: m2's event stays: {stats:?}");
        let left: Vec<String> = s.definitions(None).await.unwrap().into_iter().map(|d| d.cluster).collect();
        assert_eq!(left, ["m2"], "{backend:?}: a cleaned cluster's definitions go");

        // Objects without a name are refused with the reason, and nothing is written.
        let err = s.upsert("m1", &pods(), &[json!({"kind": "Pod", "metadata": {}})]).await.unwrap_err();
        assert!(matches!(err, StorageError::BadObject(..)), "{err}");
        db.cleanup().await;
    }
}

/// A request from a URL query string, through the same decoding the apiserver uses.
fn req(gvr: Gvr, query: &str) -> ListRequest {
    let opts = ListOptions::from_query(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    ListRequest {
        gvr: Some(gvr),
        resource_types: Vec::new(),
        query: SearchQuery::from_options(&opts, None, None).unwrap_or_else(|e| panic!("{query}: {e}")),
    }
}

async fn seed_queries(s: &Storage) {
    for (cluster, ns) in [("m1", "a"), ("m1", "b"), ("m2", "a")] {
        let objs: Vec<Value> = (0..4)
            .map(|i| {
                let mut labels = json!({"app": if i % 2 == 0 { "web" } else { "db" }, "rank": i.to_string()});
                if i == 3 {
                    labels["canary"] = json!("true");
                }
                let mut p =
                    pod(ns, &format!("p{i}"), &format!("{}", 10 * (i + 1) + if ns == "b" { 1 } else { 0 }), labels);
                p["metadata"]["creationTimestamp"] = json!(format!("2026-01-0{}T00:00:00Z", i + 1));
                p["metadata"]["annotations"] = json!({"example.com/tier": if i < 2 { "gold" } else { "silver" }});
                p["spec"]["replicas"] = json!(i);
                p["spec"]["hostNetwork"] = json!(i == 0);
                p["spec"]["containers"] = json!([{"name": format!("c{i}"), "image": "nginx"}]);
                if i == 3 {
                    p["metadata"]["name"] = json!("nginx-canary");
                }
                p
            })
            .collect();
        s.upsert(cluster, &pods(), &objs).await.unwrap();
    }
    // m1/a: deployment d-a owns replicaset rs-a owns the pods of namespace a.
    let rs = json!({"kind": "ReplicaSet", "metadata": {"name": "web-rs", "namespace": "a", "uid": "rs-a", "creationTimestamp": "2026-01-01T00:00:00Z",
        "ownerReferences": [{"uid": "d-a", "controller": true, "kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}]}});
    s.upsert("m1", &Gvr::new("apps", "v1", "replicasets"), &[rs]).await.unwrap();
    s.upsert(
        "m1",
        &Gvr::new("apps", "v1", "deployments"),
        &[json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "a", "uid": "d-a"}})],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_every_backend() {
    for backend in ALL {
        let db = fresh(backend).await;
        let s = &db.storage;
        seed_queries(s).await;
        let count = |query: &'static str| async move {
            s.list(&req(pods(), query)).await.unwrap_or_else(|e| panic!("{backend:?} {query}: {e}")).items.len()
        };
        for (query, expected) in [
            ("", 12),
            ("clusters=m2", 4),
            ("clusters=m1&namespaces=b", 4),
            ("names=p0,p1", 6),
            ("labelSelector=app%3Dweb", 6),
            ("labelSelector=app%20in%20(web%2Cdb)", 12),
            ("labelSelector=app!%3Dweb", 6),
            ("labelSelector=app%20notin%20(web)", 6),
            ("labelSelector=canary", 3),
            ("labelSelector=!canary", 9),
            ("labelSelector=canary!%3Dfalse", 12),
            ("labelSelector=rank%3E1", 6),
            ("labelSelector=rank%3C1", 3),
            ("clusters=m1&namespaces=a&labelSelector=app%3Dweb%2Crank%3E0", 1),
            // Intersections of `exists` and `=`/`in` in either order, and values nothing carries.
            ("labelSelector=canary%2Capp%3Ddb", 3),
            ("labelSelector=app%3Ddb%2Crank%20in%20(1%2C3)%2Ccanary", 3),
            ("labelSelector=canary%2Capp%3Dweb", 0),
            ("labelSelector=app%3Dnothing", 0),
            ("labelSelector=app%20in%20(web%2Cnothing)", 6),
            ("labelSelector=rank%20in%20(0%2Cnothing)%2Capp%3Dweb", 3),
            // Search labels, with exclusion operators honoured.
            ("labelSelector=search.clusterpedia.io%2Fclusters%20notin%20(m2)", 8),
            ("labelSelector=search.clusterpedia.io%2Fnamespaces%3Db", 4),
            ("labelSelector=search.clusterpedia.io%2Fnames%20in%20(p1)", 3),
            ("labelSelector=internalstorage.clusterpedia.io%2Ffuzzy-name%3Dcanary", 3),
            ("labelSelector=internalstorage.clusterpedia.io%2Ffuzzy-name%20in%20(ngin%2Cary)", 3),
            ("labelSelector=internalstorage.clusterpedia.io%2Ffuzzy-name%3DCANARY", 0),
            // Enhanced field selectors.
            ("fieldSelector=status.phase%3DRunning", 12),
            ("fieldSelector=metadata.annotations%5B%27example.com%2Ftier%27%5D%3Dgold", 6),
            ("fieldSelector=spec.replicas%3E1", 6),
            ("fieldSelector=spec.replicas%3D2", 3),
            ("fieldSelector=spec.hostNetwork%3Dtrue", 3),
            ("fieldSelector=spec.containers%5B0%5D.name%3Dc1", 3),
            ("fieldSelector=spec.containers%5B1%5D.name", 0),
            ("fieldSelector=!spec.missing%2Cspec.nodeName!%3Dn2", 12),
            // Time and owner filters.
            ("since=2026-01-03", 6),
            ("before=2026-01-02", 3),
            ("since=2026-01-02&before=2026-01-04", 6),
            ("clusters=m1&ownerUID=rs-a", 4),
            ("clusters=m1&ownerUID=d-a&ownerSeniority=1", 4),
            ("clusters=m1&ownerName=web-rs&ownerGR=replicasets.apps", 4),
            ("clusters=m1&ownerName=web&ownerSeniority=1", 4),
            ("clusters=m2&ownerUID=rs-a", 4),
            ("clusters=m1&ownerUID=nobody", 0),
        ] {
            assert_eq!(count(query).await, expected, "{backend:?}: {query}");
        }

        // Paging in every order returns everything once, ordered, with a remaining count.
        for (query, key) in [
            ("limit=5", "cluster,namespace,name"),
            ("limit=5&orderby=name%20desc%2Ccluster", "name desc"),
            ("limit=3&orderby=resource_version", "resource_version"),
            ("limit=4&orderby=created_at%20desc", "created_at desc"),
            // JSON paths (compared as text): app desc, then the annotation, then rank.
            (
                "limit=2&orderby=metadata.labels%5B%27app%27%5D%20desc%2Cmetadata.annotations%5B%27example.com%2Ftier%27%5D%2Cmetadata.labels.rank",
                "app desc, tier, rank",
            ),
            ("limit=5&orderby=spec.containers%5B0%5D.name%20desc%2Cspec.missing", "container desc"),
            // Ascending only (PostgreSQL continues from a row comparison), absent labels first.
            ("limit=5&orderby=metadata.labels.rank", "rank"),
            // Label pages pick their ids first, then read the objects (matching all 12 here).
            ("limit=5&labelSelector=app%20in%20(web%2Cdb)", "cluster,namespace,name"),
            ("limit=4&labelSelector=rank%2Capp%20in%20(db%2Cweb)&orderby=created_at%20desc", "created_at desc"),
            (
                "limit=2&labelSelector=rank&orderby=metadata.labels%5B%27app%27%5D%20desc%2Cmetadata.annotations%5B%27example.com%2Ftier%27%5D%2Cmetadata.labels.rank",
                "app desc, tier, rank",
            ),
        ] {
            let mut r = req(pods(), &format!("{query}&withRemainingCount=true"));
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let page = s.list(&r).await.unwrap_or_else(|e| panic!("{backend:?} {query}: {e}"));
                pages += 1;
                seen.extend(page.items.iter().map(|i| (i.cluster.clone(), i.value().unwrap())));
                assert_eq!(page.remaining, Some(12 - seen.len() as i64), "{backend:?} {query}: remaining");
                match page.continue_token {
                    Some(t) => r.query.continue_token = Some(t),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 12, "{backend:?} {query}");
            assert!(pages > 2, "{backend:?} {query}: paged");
            let ids: std::collections::HashSet<String> = seen
                .iter()
                .map(|(c, o)| format!("{c}/{}/{}", o["metadata"]["namespace"], o["metadata"]["name"]))
                .collect();
            assert_eq!(ids.len(), 12, "{backend:?} {query}: no repeats");
            let sorted = |f: &dyn Fn(&(String, Value)) -> String, desc: bool| {
                let keys: Vec<String> = seen.iter().map(f).collect();
                let mut want = keys.clone();
                want.sort();
                if desc {
                    want.reverse();
                }
                keys == want
            };
            let ok = match key {
                "name desc" => sorted(&|(_, o)| o["metadata"]["name"].as_str().unwrap().to_owned(), true),
                "resource_version" => {
                    sorted(&|(_, o)| format!("{:>8}", o["metadata"]["resourceVersion"].as_str().unwrap()), false)
                }
                "created_at desc" => {
                    sorted(&|(_, o)| o["metadata"]["creationTimestamp"].as_str().unwrap().to_owned(), true)
                }
                "app desc, tier, rank" => {
                    // "web" > "db"; within each, gold < silver, then rank ascending.
                    let keys: Vec<String> = seen
                        .iter()
                        .map(|(_, o)| {
                            let m = &o["metadata"];
                            format!(
                                "{}/{}/{}",
                                m["labels"]["app"], m["annotations"]["example.com/tier"], m["labels"]["rank"]
                            )
                        })
                        .collect();
                    let mut want = keys.clone();
                    want.sort_by(|a, b| {
                        let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
                        b[0].cmp(a[0]).then(a[1].cmp(b[1])).then(a[2].cmp(b[2]))
                    });
                    keys == want
                }
                "rank" => {
                    sorted(&|(_, o)| o["metadata"]["labels"]["rank"].as_str().unwrap_or_default().to_owned(), false)
                }
                "container desc" => {
                    sorted(&|(_, o)| o["spec"]["containers"][0]["name"].as_str().unwrap().to_owned(), true)
                }
                _ => sorted(
                    &|(c, o)| {
                        format!(
                            "{c}/{}/{}",
                            o["metadata"]["namespace"].as_str().unwrap(),
                            o["metadata"]["name"].as_str().unwrap()
                        )
                    },
                    false,
                ),
            };
            assert!(ok, "{backend:?} {query}: order");
        }
        let exact = s.list(&req(pods(), "limit=12")).await.unwrap();
        assert!(exact.continue_token.is_none(), "no token when nothing follows");

        // Collection queries across resource types.
        let collection = |groups: &[&str], resources: &[&str], query: &str| {
            let mut r = req(pods(), query);
            r.gvr = None;
            r.resource_types = api_types::search::parse_resource_types(
                &groups.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>(),
                &resources.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>(),
            )
            .unwrap();
            r
        };
        let n = |r: ListRequest| async move { s.list(&r).await.unwrap().items.len() };
        assert_eq!(n(collection(&["apps"], &[], "")).await, 2, "{backend:?}: replicaset + deployment");
        assert_eq!(n(collection(&[], &["apps/deployments", "/pods"], "clusters=m1")).await, 9);
        assert_eq!(n(collection(&["apps/v1", "/v1"], &[], "clusters=m1&namespaces=a")).await, 6);
        let workloads = ListRequest {
            gvr: None,
            resource_types: api_types::search::builtin_collection("workloads").unwrap(),
            query: SearchQuery::default(),
        };
        assert_eq!(n(workloads).await, 1, "{backend:?}: workloads are deployments, daemonsets, statefulsets");

        // Metadata-only reads.
        let meta = s.list(&req(pods(), "clusters=m2&names=p0&onlyMetadata=true")).await.unwrap();
        let o = &meta.items[0].value().unwrap();
        assert_eq!(
            (o["apiVersion"].as_str(), o["kind"].as_str(), o["metadata"]["name"].as_str()),
            (Some("v1"), Some("Pod"), Some("p0"))
        );
        assert!(o.get("spec").is_none());

        // Bad input: tampered tokens, tokens of another order, unknown order fields, hostile values.
        let mut tampered = req(pods(), "");
        tampered.query.continue_token = Some("00ff".repeat(5));
        assert!(matches!(s.list(&tampered).await.unwrap_err(), StorageError::InvalidQuery { param: "continue", .. }));
        let first = s.list(&req(pods(), "limit=2")).await.unwrap();
        let mut other = req(pods(), "limit=2&orderby=name");
        other.query.continue_token = first.continue_token;
        assert!(s.list(&other).await.unwrap_err().to_string().contains("different orderby"));
        assert!(matches!(
            s.list(&req(pods(), "orderby=metadata.labels%5B")).await.unwrap_err(),
            StorageError::InvalidQuery { param: "orderby", .. }
        ));
        let err = s.list(&req(pods(), "orderby=a,b.c,d.e%5B0%5D,f")).await.unwrap_err();
        assert!(err.to_string().contains("at most 3"), "{backend:?}: {err}");
        let hostile = req(
            pods(),
            "clusters=m1%27%20OR%20%271%27%3D%271&namespaces=a%22%3B%20DELETE%20FROM%20resources%3B%20--&labelSelector=internalstorage.clusterpedia.io%2Ffuzzy-name%3Dx_y",
        );
        assert_eq!(s.list(&hostile).await.unwrap().items.len(), 0, "{backend:?}: hostile values are data");
        assert_eq!(count("").await, 12, "{backend:?}: nothing was deleted");
        db.cleanup().await;
    }
}

/// TLS to PostgreSQL with libpq's sslmode values. The local server must have `ssl = on`
/// (Debian's default, with its snakeoil certificate for `localhost`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tls_modes() {
    let admin = common::admin_url(Backend::Postgres);
    let plain =
        Storage::connect(&pedia_storage::StorageConfig::from_url(&format!("{admin}?sslmode=disable")).unwrap(), 1)
            .await
            .unwrap();
    assert_eq!(plain.connection_security().await.unwrap(), "plain");
    // The server's own certificate: what verify-ca can trust.
    let cert = {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let mut c = AsyncPgConnection::establish(&admin).await.unwrap();
        let ssl: Vec<Setting> = diesel::sql_query("SELECT current_setting('ssl') AS v").load(&mut c).await.unwrap();
        assert_eq!(ssl[0].v, "on", "PostgreSQL must run with ssl = on for this test (Debian's default)");
        let file: Vec<Setting> =
            diesel::sql_query("SELECT current_setting('ssl_cert_file') AS v").load(&mut c).await.unwrap();
        file[0].v.clone()
    };
    for mode in ["require", "prefer"] {
        let s =
            Storage::connect(&pedia_storage::StorageConfig::from_url(&format!("{admin}?sslmode={mode}")).unwrap(), 1)
                .await
                .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        assert!(s.connection_security().await.unwrap().starts_with("TLS"), "sslmode={mode}");
    }
    let root = url::form_urlencoded::byte_serialize(cert.as_bytes()).collect::<String>();
    let verify_ca =
        pedia_storage::StorageConfig::from_url(&format!("{admin}?sslmode=verify-ca&sslrootcert={root}")).unwrap();
    let s = Storage::connect(&verify_ca, 1).await.unwrap_or_else(|e| panic!("verify-ca with {cert}: {e}"));
    assert!(s.connection_security().await.unwrap().starts_with("TLS"));
    s.migrate().await.unwrap();
    // 127.0.0.1 is not a name in the snakeoil certificate: verify-full refuses, saying why.
    let verify_full =
        pedia_storage::StorageConfig::from_url(&format!("{admin}?sslmode=verify-full&sslrootcert={root}")).unwrap();
    let err = Storage::connect(&verify_full, 1).await.err().unwrap().to_string();
    assert!(err.contains("certificate") && err.contains("not valid for name"), "{err}");
    assert!(!err.contains("password="), "{err}");
    // Roots that did not sign the server's certificate (the public CAs of ca-certificates).
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    assert!(std::path::Path::new(bundle).exists(), "{bundle} (package ca-certificates) is needed");
    let public =
        pedia_storage::StorageConfig::from_url(&format!("{admin}?sslmode=verify-ca&sslrootcert={bundle}")).unwrap();
    let err = Storage::connect(&public, 1).await.err().unwrap().to_string();
    assert!(err.contains("UnknownIssuer"), "{err}");
    let missing =
        pedia_storage::StorageConfig::from_url(&format!("{admin}?sslmode=verify-ca&sslrootcert=/nonexistent.pem"))
            .unwrap();
    let err = Storage::connect(&missing, 1).await.err().unwrap().to_string();
    assert!(err.contains("sslrootcert /nonexistent.pem"), "{err}");
}

/// TLS to MariaDB in every mode, against the local server's certificate (issued for
/// mariadb.pedia.test by the CA in `@@ssl_ca`; `.ci/mariadb-tls` sets it up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_tls_modes() {
    let admin = common::admin_url(Backend::Mysql);
    let setting = |name: &'static str| {
        let admin = admin.clone();
        async move {
            use diesel_async::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Setting {
                #[diesel(sql_type = diesel::sql_types::Text)]
                v: String,
            }
            let mut c = AsyncMysqlConnection::establish(&admin).await.unwrap();
            let rows: Vec<Setting> =
                diesel::sql_query(format!("SELECT CAST(@@{name} AS CHAR) AS v")).load(&mut c).await.unwrap();
            rows[0].v.clone()
        }
    };
    assert_eq!(setting("have_ssl").await, "YES", "MariaDB must serve TLS for this test: run .ci/mariadb-tls");
    let ca = setting("ssl_ca").await;
    let connect = |query: String| async move {
        let config =
            pedia_storage::StorageConfig::from_url(&format!("{}?{query}", common::admin_url(Backend::Mysql))).unwrap();
        Storage::connect(&config, 1).await
    };
    let plain = connect("sslmode=disable".into()).await.unwrap();
    assert_eq!(plain.connection_security().await.unwrap(), "plain");
    for mode in ["require", "prefer", "REQUIRED"] {
        let s = connect(format!("sslmode={mode}")).await.unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        assert!(s.connection_security().await.unwrap().starts_with("TLS"), "sslmode={mode}");
    }
    let root = url::form_urlencoded::byte_serialize(ca.as_bytes()).collect::<String>();
    let s = connect(format!("ssl-mode=VERIFY_CA&ssl-ca={root}"))
        .await
        .unwrap_or_else(|e| panic!("verify-ca with {ca}: {e}"));
    assert!(s.connection_security().await.unwrap().starts_with("TLS"));
    // The certificate names mariadb.pedia.test, not 127.0.0.1: verify-full refuses, saying why.
    let err = connect(format!("sslmode=verify-full&sslrootcert={root}")).await.err().unwrap().to_string();
    assert!(err.contains("NotValidForName") || err.contains("not valid for name"), "{err}");
    // The built-in public roots did not sign it.
    let err = connect("sslmode=verify-ca".into()).await.err().unwrap().to_string();
    assert!(err.contains("UnknownIssuer"), "{err}");
    let err = connect("sslmode=verify-ca&sslrootcert=/nonexistent.pem".into()).await.err().unwrap().to_string();
    assert!(err.contains("sslrootcert /nonexistent.pem"), "{err}");
}

/// Concurrent writers (as sync workers are) on every backend; on SQLite their writes commit in
/// groups. Every write lands once, with its labels, and relists remove only their own rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_all_land() {
    for backend in ALL {
        let db = std::sync::Arc::new(fresh(backend).await);
        db.storage.upsert("c0", &pods(), &[pod("ns", "stale", "1", json!({"app": "old"}))]).await.unwrap();
        let tasks: Vec<_> = (0..6)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    let cluster = format!("c{w}");
                    let batch = |b: usize| -> Vec<Value> {
                        (0..20).map(|i| pod("ns", &format!("p{b}-{i}"), "1", json!({"app": format!("a{w}")}))).collect()
                    };
                    if w == 0 {
                        // A relist of c0: its stale row goes, the listed ones stay.
                        let all: Vec<Value> = (0..5).flat_map(batch).collect();
                        db.storage.replace_all(&cluster, &pods(), &all).await.unwrap();
                    } else {
                        for b in 0..5 {
                            db.storage.upsert(&cluster, &pods(), &batch(b)).await.unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let s = &db.storage;
        let stats = s.stats().await.unwrap();
        assert_eq!(stats.rows.len(), 6, "{backend:?}");
        assert!(stats.rows.iter().all(|(_, _, n)| *n == 100), "{backend:?}: {:?}", stats.rows);
        for w in 0..6 {
            let page = s.list(&req(pods(), &format!("labelSelector=app%3Da{w}"))).await.unwrap();
            assert_eq!(page.items.len(), 100, "{backend:?}: labels of c{w}");
        }
        assert!(s.list(&req(pods(), "labelSelector=app%3Dold")).await.unwrap().items.is_empty(), "{backend:?}");
        // 1 + 600 additions and the stale row's deletion, each logged once.
        assert_eq!(s.log_state().await.unwrap().head, 602, "{backend:?}");
        std::sync::Arc::into_inner(db).unwrap().cleanup().await;
    }
}

/// A write whose future was dropped mid-transaction leaves its connection in that transaction; the
/// next write on it must roll the leftover back, never commit it with its own rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_open_is_rolled_back_by_the_next_write() {
    macro_rules! check {
        ($conn:expr, $backend:expr, $db:expr) => {{
            let mut c = $conn;
            let event = |cluster: &str| {
                format!("INSERT INTO events (cluster, involved_uid, event_uid, resource_version, synced_at, object) VALUES ('{cluster}', 'u', 'e', '1', 0, '{{}}')")
            };
            c.batch_execute(if $backend == Backend::Sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" }).await.unwrap();
            c.batch_execute(&event("half-done")).await.unwrap();
            // The dropped write never got to COMMIT or ROLLBACK; the next one begins on this connection.
            pedia_storage::db::begin(&mut c, $backend).await.unwrap();
            c.batch_execute(&event("next")).await.unwrap();
            pedia_storage::db::finish(&mut c, Ok(())).await.unwrap();
            drop(c);
            assert_eq!($db.storage.stats().await.unwrap().events, 1, "{:?}: only the next write's event", $backend);
        }};
    }
    for backend in ALL {
        let db = fresh(backend).await;
        match backend {
            Backend::Sqlite => check!(
                diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<diesel::SqliteConnection>::establish(
                    db.url.trim_start_matches("sqlite://")
                )
                .await
                .unwrap(),
                backend,
                db
            ),
            Backend::Postgres => check!(AsyncPgConnection::establish(&db.url).await.unwrap(), backend, db),
            Backend::Mysql => check!(AsyncMysqlConnection::establish(&db.url).await.unwrap(), backend, db),
        }
        db.cleanup().await;
    }
}

/// Pages carry the stored JSON undecoded: what comes back decodes to what was written (pruned),
/// metadata-only items are valid JSON objects, and a corrupt stored object is named, not skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_stored_json_undecoded() {
    for backend in ALL {
        let db = fresh(backend).await;
        let s = &db.storage;
        let quoted = pod("ns", "q", "1", json!({"say": "a \"quoted\" \\ value"}));
        s.upsert("m1", &pods(), std::slice::from_ref(&quoted)).await.unwrap();
        let page = s.list(&req(pods(), "clusters=m1")).await.unwrap();
        let item = &page.items[0];
        assert_eq!(item.value().unwrap()["metadata"]["labels"], quoted["metadata"]["labels"], "{backend:?}");
        assert_eq!(
            serde_json::from_str::<Value>(item.object.get()).unwrap(),
            s.get("m1", &pods(), "ns", "q").await.unwrap().unwrap(),
            "{backend:?}: get and list agree"
        );
        let meta = s.list(&req(pods(), "clusters=m1&onlyMetadata=true")).await.unwrap();
        let m = meta.items[0].value().unwrap();
        assert_eq!(m["metadata"]["labels"]["say"], "a \"quoted\" \\ value", "{backend:?}");
        assert_eq!((m["apiVersion"].as_str(), m["kind"].as_str()), (Some("v1"), Some("Pod")), "{backend:?}");
        if backend == Backend::Sqlite {
            // Only SQLite stores text the JSON column types of the servers would refuse.
            db.batch_execute("UPDATE resources SET object = '{\"kind\": ' WHERE name = 'q'").await;
            let err = s.list(&req(pods(), "clusters=m1")).await.unwrap_err();
            assert!(matches!(err, StorageError::BadObject(..)) && err.to_string().contains("ns/q"), "{err}");
        }
        db.cleanup().await;
    }
}

/// Writes on MariaDB take their ids from `INSERT ... RETURNING`; MySQL 8 has none and looks the
/// new rows up instead. Both paths (the second forced on MariaDB) store the same rows, labels and
/// change log for inserts, updates, replays and a relist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_writes_agree_with_and_without_returning() {
    async fn scenario(s: &Storage) -> (Vec<(String, usize)>, Vec<String>) {
        let p = |name: &str, rv: &str, app: &str| pod("ns", name, rv, json!({ "app": app }));
        s.upsert("m1", &pods(), &[p("p0", "1", "web"), p("p1", "1", "db")]).await.unwrap();
        s.upsert("m1", &pods(), &[p("p0", "2", "api"), p("p1", "1", "db"), p("p2", "1", "web")]).await.unwrap();
        s.replace_all("m1", &pods(), &[p("p0", "2", "api"), p("p2", "2", "db")]).await.unwrap();
        let mut labels = Vec::new();
        for app in ["web", "db", "api"] {
            let page = s.list(&req(pods(), &format!("labelSelector=app%3D{app}"))).await.unwrap();
            labels.push((app.to_owned(), page.items.len()));
        }
        let log = s.changes_since(0, &pedia_storage::ChangeFilter::default(), 100).await.unwrap();
        let log = log.changes.iter().map(|c| format!("{:?} {}", c.op, c.name)).collect();
        (labels, log)
    }
    let with = fresh(Backend::Mysql).await;
    let without = fresh(Backend::Mysql).await;
    let plain = Storage::connect(&pedia_storage::StorageConfig::from_url(&without.url).unwrap(), 1)
        .await
        .unwrap()
        .without_returning();
    assert!(with.storage.uses_returning() && !plain.uses_returning(), "MariaDB 10.11 has RETURNING");
    let (a, b) = (scenario(&with.storage).await, scenario(&plain).await);
    assert_eq!(a.0, [("web".to_owned(), 0), ("db".to_owned(), 1), ("api".to_owned(), 1)]);
    // p1's entries are left out of the log once it is deleted (its row is gone).
    assert_eq!(a.1, ["Added p0", "Modified p0", "Added p2", "Modified p2", "Deleted p1"], "with RETURNING");
    assert_eq!(a, b, "without RETURNING");
    with.cleanup().await;
    without.cleanup().await;
}

/// PostgreSQL plans from statistics only ANALYZE gathers, and this machine runs it without
/// autovacuum: the store analyzes after large writes itself (a relist's key lookup scanned a
/// resource-wide index without statistics).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_is_analyzed_after_large_writes() {
    #[derive(diesel::QueryableByName)]
    struct Tuples {
        #[diesel(sql_type = diesel::sql_types::Double)]
        n: f64,
    }
    let db = fresh(Backend::Postgres).await;
    let reltuples = || async {
        let mut c = AsyncPgConnection::establish(&db.url).await.unwrap();
        let q = diesel::sql_query("SELECT reltuples::float8 AS n FROM pg_class WHERE relname = 'resources'");
        diesel_async::RunQueryDsl::get_result::<Tuples>(q, &mut c).await.unwrap().n
    };
    let batch =
        |from: usize| (from..from + 5_000).map(|i| pod("ns", &format!("p{i}"), "1", json!({}))).collect::<Vec<_>>();
    db.storage.replace_all("m1", &pods(), &batch(0)).await.unwrap();
    db.storage.upsert("m1", &pods(), &batch(5_000)).await.unwrap();
    // In the background, so not necessarily done when the write returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while reltuples().await != 10_000.0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reltuples().await, 10_000.0, "analyzed after 10,000 objects");
    // Without autovacuum (as on the test servers: checked, not assumed) pedia vacuums too, so
    // the visibility map is set and wide label pages scan the order index alone.
    #[derive(diesel::QueryableByName)]
    struct Maintained {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        autovacuum: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        vacuumed: bool,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        visible: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pages: i64,
    }
    let maintained = || async {
        let mut c = AsyncPgConnection::establish(&db.url).await.unwrap();
        let q = diesel::sql_query(
            "SELECT current_setting('autovacuum') = 'on' AS autovacuum, last_vacuum IS NOT NULL AS vacuumed, \
             (SELECT relallvisible::bigint FROM pg_class WHERE relname = 'resources') AS visible, \
             (SELECT relpages::bigint FROM pg_class WHERE relname = 'resources') AS pages \
             FROM pg_stat_user_tables WHERE relname = 'resources'",
        );
        diesel_async::RunQueryDsl::get_result::<Maintained>(q, &mut c).await.unwrap()
    };
    db.storage.analyze().await.unwrap();
    let m = maintained().await;
    assert_eq!(m.vacuumed, !m.autovacuum, "vacuumed by pedia exactly when autovacuum is off");
    if m.vacuumed {
        assert!(m.pages > 0 && m.visible == m.pages, "every page visible after VACUUM: {} of {}", m.visible, m.pages);
    }
    db.cleanup().await;
}

/// MariaDB's tables are page-compressed (the migration's `/*M!` statements), and the store's
/// size is what their files take on disk: less than the pages once they are written out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_tables_are_compressed_on_disk() {
    #[derive(diesel::QueryableByName)]
    struct Options {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        create_options: String,
    }
    let db = fresh(Backend::Mysql).await;
    let mut c = AsyncMysqlConnection::establish(&db.url).await.unwrap();
    let q = "SELECT CAST(table_name AS CHAR) AS table_name, CAST(create_options AS CHAR) AS create_options FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('resources', 'events', 'resource_labels')";
    let options = diesel_async::RunQueryDsl::load::<Options>(diesel::sql_query(q), &mut c).await.unwrap();
    let mut compressed: Vec<(&str, bool)> = options
        .iter()
        .map(|o| (o.table_name.as_str(), o.create_options.to_lowercase().contains("`page_compressed`='1'")))
        .collect();
    compressed.sort();
    assert_eq!(compressed, [("events", true), ("resource_labels", false), ("resources", true)]);
    // 4,000 pods with a repetitive spec (as real pods are): about 10 MiB of pages.
    let batch: Vec<Value> = (0..4_000)
        .map(|i| {
            let mut p = pod("ns", &format!("p{i:05}"), "1", json!({"app": format!("a{}", i % 10)}));
            p["spec"]["containers"] = json!([{"name": "main", "image": "registry.example.com/team/app:1.27.3",
                "env": (0..20).map(|e| json!({"name": format!("SETTING_{e}"), "value": "a value that repeats itself"})).collect::<Vec<_>>()}]);
            p
        })
        .collect();
    for chunk in batch.chunks(500) {
        db.storage.upsert("m1", &pods(), chunk).await.unwrap();
    }
    c.batch_execute("FLUSH TABLES resources FOR EXPORT; UNLOCK TABLES").await.unwrap();
    // The size of the pages comes from InnoDB's statistics, refreshed in the background.
    db.storage.analyze().await.unwrap();
    let stats = db.storage.stats().await.unwrap();
    let (disk, pages) = (stats.size_bytes.unwrap(), stats.uncompressed_bytes.unwrap());
    assert!(pages > 8 << 20, "pages: {pages} bytes");
    assert!(disk > 0 && disk * 2 < pages, "on disk {disk} bytes, pages {pages} bytes");
    // The pages are read back whole.
    let page = db.storage.list(&req(pods(), "labelSelector=app%3Da3")).await.unwrap();
    assert_eq!(page.items.len(), 400);
    assert_eq!(page.items[0].value().unwrap()["spec"]["containers"][0]["env"][19]["name"], "SETTING_19");
    drop(c);
    db.cleanup().await;
}

/// SQLite's WAL is copied into the database file in the background as objects are written, not
/// only when the writer reaches its 256 MiB checkpoint (a store that never checkpoints in the
/// background keeps everything in the WAL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_in_the_background() {
    async fn database_growth(every: u64) -> u64 {
        let db = fresh(Backend::Sqlite).await;
        let file = db.file.clone().unwrap();
        let s = Storage::connect(&pedia_storage::StorageConfig::from_url(&db.url).unwrap(), 1)
            .await
            .unwrap()
            .checkpoint_every(every);
        let before = std::fs::metadata(&file).unwrap().len();
        for chunk in 0..4 {
            let batch: Vec<Value> = (0..250)
                .map(|i| {
                    let mut p = pod("ns", &format!("p{chunk}-{i}"), "1", json!({"app": "web"}));
                    p["spec"]["padding"] = json!("x".repeat(2_000));
                    p
                })
                .collect();
            s.upsert("m1", &pods(), &batch).await.unwrap();
        }
        // The checkpoint runs after the write returns; give it a moment.
        let mut grown = 0;
        for _ in 0..30 {
            grown = std::fs::metadata(&file).unwrap().len() - before;
            if grown > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(s.list(&req(pods(), "labelSelector=app%3Dweb")).await.unwrap().items.len(), 1_000);
        drop(s);
        db.cleanup().await;
        grown
    }
    let background = database_growth(100).await;
    assert!(background > 1 << 20, "the database file grew by {background} bytes");
    assert_eq!(database_growth(u64::MAX).await, 0, "without background checkpoints the pages stay in the WAL");
}

/// SQLite's writer commits queued writes together; when such a group fails, each of its writes
/// runs alone, so only the bad write's caller gets the error and the others are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_failure_fails_only_the_bad_write() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let db = fresh(Backend::Sqlite).await;
    let file = db.file.clone().unwrap();
    // A trigger stands in for a write the database refuses (a constraint, a full disk).
    diesel::SqliteConnection::establish(file.to_str().unwrap())
        .unwrap()
        .batch_execute(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON resources WHEN NEW.name = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
    let batch = |prefix: &str, n: usize| -> Vec<Value> {
        (0..n).map(|i| pod("ns", &format!("{prefix}-{i}"), "1", json!({"app": "web"}))).collect()
    };
    // The first write holds the writer while the others queue up behind it; the writer then
    // takes the older half of the queue (the bad write and the first good one) as one group.
    let (big, bad, good) = (batch("big", 2_000), vec![pod("ns", "bad", "1", json!({"app": "web"}))], batch("good", 10));
    let writes = [&big, &bad, &good, &good, &good];
    let clusters = ["m1", "m1", "m2", "m3", "m4"];
    let gvr = pods();
    let results = futures_util::future::join_all(
        writes.iter().zip(clusters).map(|(objects, cluster)| db.storage.upsert(cluster, &gvr, objects)),
    )
    .await;
    let err = results[1].as_ref().expect_err("the refused write fails");
    assert!(err.to_string().contains("refused by the test"), "{err}");
    for (i, r) in results.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(r.as_ref().map_err(ToString::to_string), Ok(&writes[i].len()), "write {i}");
    }
    let listed = db.storage.list(&req(pods(), "labelSelector=app%3Dweb&limit=5000")).await.unwrap().items;
    assert_eq!(listed.len(), 2_000 + 3 * 10, "every write but the refused one is stored");
    db.cleanup().await;
}

/// SQLite's writer task keeps the writer connection while writes are queued, and gives it back
/// between groups often enough that the writer pool's other writes (a deletion, as a watch
/// delivers) complete during a stream of upserts that never lets the queue run dry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_beside_a_stream_of_upserts_get_their_turn() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let db = std::sync::Arc::new(fresh(Backend::Sqlite).await);
    db.storage.upsert("m0", &pods(), &[pod("ns", "doomed", "1", json!({"app": "web"}))]).await.unwrap();
    let (stop, written) = (std::sync::Arc::new(AtomicBool::new(false)), std::sync::Arc::new(AtomicUsize::new(0)));
    let streams: Vec<_> = (0..6)
        .map(|w| {
            let (db, stop, written) = (db.clone(), stop.clone(), written.clone());
            tokio::spawn(async move {
                let mut round = 0;
                while !stop.load(Ordering::SeqCst) {
                    round += 1;
                    let batch: Vec<Value> = (0..50)
                        .map(|i| pod("ns", &format!("p{i}"), &round.to_string(), json!({"app": "web"})))
                        .collect();
                    db.storage.upsert(&format!("m{}", w + 1), &pods(), &batch).await.unwrap();
                    written.fetch_add(batch.len(), Ordering::SeqCst);
                }
            })
        })
        .collect();
    while written.load(Ordering::SeqCst) < 1_000 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Well under the pool's wait for a connection: a deletion starved by the stream would fail.
    let deleted =
        tokio::time::timeout(std::time::Duration::from_secs(20), db.storage.delete("m0", &pods(), "ns", "doomed"))
            .await
            .expect("the deletion got the writer connection while the stream went on");
    assert_eq!(deleted.map_err(|e| e.to_string()), Ok(true));
    let at_deletion = written.load(Ordering::SeqCst);
    while written.load(Ordering::SeqCst) < at_deletion + 1_000 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for s in streams {
        s.await.unwrap();
    }
    let stats = db.storage.stats().await.unwrap();
    assert_eq!(stats.rows.iter().map(|r| r.2).sum::<i64>(), 6 * 50, "every stream's pods, the deleted one gone");
    std::sync::Arc::into_inner(db).unwrap().cleanup().await;
}
