//! The backends' own bulk loads, the reference an ingest rate is measured against: exactly the
//! rows the write API stores, loaded by SQLite in one transaction of one prepared insert, by
//! PostgreSQL with COPY and by MariaDB with LOAD DATA. Included by `storage.rs` here and by the
//! sync engine's benchmark (`#[path]`).
#![allow(dead_code)] // not every benchmark uses every helper
#![allow(clippy::unwrap_used)] // a benchmark may panic

use std::io::Write;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, SimpleAsyncConnection};
use pedia_storage::object::{self, Row};
use pedia_storage::{Backend, ChangeOp, Storage, StorageConfig};
use serde_json::Value;

/// A fresh, empty database `name` on `backend`; its URL.
pub async fn fresh_url(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Sqlite => {
            let p = std::env::temp_dir().join(format!("{name}.db"));
            pedia_storage::remove_sqlite(&p);
            format!("sqlite://{}", p.display())
        }
        Backend::Postgres => {
            let mut c = AsyncPgConnection::establish("postgres://postgres@127.0.0.1:5432/postgres").await.unwrap();
            // PostgreSQL runs a multi-statement batch in one transaction, where DROP DATABASE is refused.
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
            c.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
            format!("postgres://postgres@127.0.0.1:5432/{name}")
        }
        Backend::Mysql => {
            let mut c = AsyncMysqlConnection::establish("mysql://root@127.0.0.1:3306/test").await.unwrap();
            // InnoDB reads with O_DIRECT (no OS page cache behind it): a store needs a buffer pool
            // sized to its working set, and a redo log large enough not to stall writers on
            // checkpoints, as any production MySQL has (the defaults are 128 MiB and 96 MiB).
            for setting in [
                "innodb_buffer_pool_size = GREATEST(@@innodb_buffer_pool_size, 6442450944)",
                "innodb_log_file_size = GREATEST(@@innodb_log_file_size, 1073741824)",
            ] {
                if let Err(e) = c.batch_execute(&format!("SET GLOBAL {setting}")).await {
                    println!("mysql: could not set {setting}: {e}");
                }
            }
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}")).await.unwrap();
            format!("mysql://root@127.0.0.1:3306/{name}")
        }
    }
}

/// The rows the write API stores for `sample` in every cluster, one cluster at a time.
fn bulk_rows(sample: &[Value], clusters: usize) -> impl Iterator<Item = (String, Row)> + '_ {
    (0..clusters).flat_map(move |c| {
        let cluster = format!("cluster-{c:03}");
        sample.iter().map(move |o| (cluster.clone(), object::prepare(&cluster, o).unwrap()))
    })
}

/// What a SQLite bulk load writes besides the resource rows (`--bulk-parts`): the write API's
/// label index and change-log rows, and a commit every so many rows instead of one transaction.
#[derive(Clone, Copy, Default)]
pub struct Parts {
    pub labels: bool,
    pub changes: bool,
    pub commit_every: Option<usize>,
}

/// SQLite's bulk load of `rows` into the database at `path` (see `bulk_load`).
fn sqlite_bulk_load(path: &str, rows: &[(String, Row)], settings: Settings, parts: Parts) -> Duration {
    use bulk_tables::{changes as ch, label_pairs as lp, resource_labels as l, resources as t};
    use diesel::connection::SimpleConnection;
    use diesel::{ExpressionMethods, RunQueryDsl};
    let mut c = diesel::SqliteConnection::establish(path).unwrap();
    c.batch_execute("PRAGMA journal_mode = WAL").unwrap();
    if let Settings::SqliteWriter = settings {
        c.batch_execute(pedia_storage::db::SQLITE_SETUP).unwrap();
        c.batch_execute(pedia_storage::db::SQLITE_WRITER_SETUP).unwrap();
    }
    // The label dictionary is written before the clock starts, as the write API keeps it cached.
    let mut pairs: std::collections::HashMap<&(String, String), i64> = std::collections::HashMap::new();
    if parts.labels {
        for pair in rows.iter().flat_map(|(_, r)| &r.labels) {
            let next = pairs.len() as i64 + 1;
            pairs.entry(pair).or_insert(next);
        }
        for ((k, v), id) in &pairs {
            diesel::insert_into(lp::table)
                .values((lp::id.eq(id), lp::label_key.eq(k), lp::label_value.eq(v)))
                .execute(&mut c)
                .unwrap();
        }
    }
    let time = Instant::now();
    let mut id = 0i64;
    for rows in rows.chunks(parts.commit_every.unwrap_or(usize::MAX)) {
        c.transaction::<_, diesel::result::Error, _>(|c| {
            for (cluster, r) in rows {
                id += 1;
                // diesel keeps the statement of a typed insert prepared (a `sql_query` would be
                // parsed again for every row).
                diesel::insert_into(t::table)
                    .values((
                        (t::id.eq(id), t::cluster.eq(cluster), t::api_group.eq(""), t::version.eq("v1")),
                        (t::resource.eq("pods"), t::kind.eq(&r.kind), t::namespace.eq(&r.namespace)),
                        (t::name.eq(&r.name), t::uid.eq(&r.uid), t::owner_uid.eq(&r.owner_uid)),
                        (t::resource_version.eq(&r.resource_version), t::created_at.eq(r.created_at)),
                        (t::synced_at.eq(0i64), t::object.eq(&r.object)),
                    ))
                    .execute(c)?;
                if parts.labels {
                    for pair in &r.labels {
                        diesel::insert_into(l::table)
                            .values((l::label_id.eq(pairs[pair]), l::resource_id.eq(id)))
                            .execute(c)?;
                    }
                }
                if parts.changes {
                    diesel::insert_into(ch::table)
                        .values((
                            (
                                ch::seq.eq(id),
                                ch::op.eq(ChangeOp::Added.as_str()),
                                ch::cluster.eq(cluster),
                                ch::api_group.eq(""),
                            ),
                            (ch::version.eq("v1"), ch::resource.eq("pods"), ch::namespace.eq(&r.namespace)),
                            (ch::name.eq(&r.name), ch::changed_at.eq(0i64)),
                        ))
                        .execute(c)?;
                }
            }
            Ok(())
        })
        .unwrap();
    }
    time.elapsed()
}

/// The backend's own bulk load of exactly the rows the write API stores (same keys, columns and
/// objects, same table and indexes): one SQLite transaction of one prepared insert, PostgreSQL
/// COPY (psql), MariaDB LOAD DATA (mysql client). Only the load is timed, not building the rows.
/// PostgreSQL's rows include their `labels` column; the label tables of SQLite and MariaDB are
/// loaded with `parts.labels` (their label dictionary before the clock starts, as the write API
/// keeps it cached).
async fn bulk_load(
    backend: Backend,
    url: &str,
    sample: &[Value],
    clusters: usize,
    settings: Settings,
    parts: Parts,
) -> Duration {
    match backend {
        Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://").to_owned();
            let rows: Vec<(String, Row)> = bulk_rows(sample, clusters).collect();
            tokio::task::spawn_blocking(move || sqlite_bulk_load(&path, &rows, settings, parts)).await.unwrap()
        }
        Backend::Postgres => {
            let file = tsv_file("resources");
            write_tsv(&file, sample, clusters, |out, _id, cluster, r| {
                resource_tsv(out, None, cluster, r)?;
                // PostgreSQL keeps labels in a JSONB column of the row (GIN-indexed): part of
                // the same row, so the bulk load writes it too.
                let labels: serde_json::Map<String, Value> =
                    r.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                writeln!(out, "\t{}", Value::Object(labels).to_string().replace('\\', "\\\\"))
            });
            let db = url.rsplit('/').next().unwrap().to_owned();
            let copy = format!("\\copy resources ({RESOURCE_COLS}, labels) FROM '{}'", file.display());
            let t = Instant::now();
            run("psql", &["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", &db, "-c", &copy]);
            let elapsed = t.elapsed();
            let _ = std::fs::remove_file(&file);
            elapsed
        }
        Backend::Mysql => {
            let file = tsv_file("resources");
            let labels = tsv_file("labels");
            let mut pairs: std::collections::HashMap<(String, String), i64> = std::collections::HashMap::new();
            let mut label_rows = std::io::BufWriter::new(std::fs::File::create(&labels).unwrap());
            write_tsv(&file, sample, clusters, |out, id, cluster, r| {
                resource_tsv(out, Some(id), cluster, r)?;
                writeln!(out)?;
                if parts.labels {
                    for pair in &r.labels {
                        let next = pairs.len() as i64 + 1;
                        let label = *pairs.entry(pair.clone()).or_insert(next);
                        writeln!(label_rows, "{label}\t{id}")?;
                    }
                }
                Ok(())
            });
            label_rows.flush().unwrap();
            drop(label_rows);
            let db = url.rsplit('/').next().unwrap().to_owned();
            let mysql = |sql: &str| {
                run("mysql", &["--local-infile=1", "-uroot", "-h127.0.0.1", &db, "-e", sql]);
            };
            mysql("SET GLOBAL local_infile = 1");
            let dictionary = tsv_file("pairs");
            let mut out = std::io::BufWriter::new(std::fs::File::create(&dictionary).unwrap());
            for ((k, v), id) in &pairs {
                writeln!(out, "{id}\t{k}\t{v}").unwrap();
            }
            out.flush().unwrap();
            drop(out);
            mysql(&format!(
                "LOAD DATA LOCAL INFILE '{}' INTO TABLE label_pairs (id, label_key, label_value)",
                dictionary.display()
            ));
            let mut load =
                format!("LOAD DATA LOCAL INFILE '{}' INTO TABLE resources (id, {RESOURCE_COLS})", file.display());
            if parts.labels {
                load.push_str(&format!(
                    "; LOAD DATA LOCAL INFILE '{}' INTO TABLE resource_labels (label_id, resource_id)",
                    labels.display()
                ));
            }
            let t = Instant::now();
            mysql(&load);
            let elapsed = t.elapsed();
            for f in [file, labels, dictionary] {
                let _ = std::fs::remove_file(f);
            }
            elapsed
        }
    }
}

/// The columns of a resource row the server bulk loads write.
const RESOURCE_COLS: &str = "cluster, api_group, version, resource, kind, namespace, name, uid, owner_uid, resource_version, created_at, synced_at, object";

fn tsv_file(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pedia-bench-{}-{what}.tsv", std::process::id()))
}

/// Writes `sample`'s rows in every cluster to `file`, one `line(out, id, cluster, row)` each (ids
/// from 1, as the rows are loaded into an empty table).
fn write_tsv(
    file: &std::path::Path,
    sample: &[Value],
    clusters: usize,
    mut line: impl FnMut(&mut std::io::BufWriter<std::fs::File>, i64, &str, &Row) -> std::io::Result<()>,
) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
    for (id, (cluster, r)) in bulk_rows(sample, clusters).enumerate() {
        line(&mut out, id as i64 + 1, &cluster, &r).unwrap();
    }
    out.flush().unwrap();
}

/// A resource row's `RESOURCE_COLS` (after its id, if given), tab-separated, no line end.
fn resource_tsv(out: &mut impl Write, id: Option<i64>, cluster: &str, r: &Row) -> std::io::Result<()> {
    if let Some(id) = id {
        write!(out, "{id}\t")?;
    }
    let escaped = r.object.replace('\\', "\\\\");
    write!(
        out,
        "{cluster}\t\tv1\tpods\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t0\t{escaped}",
        r.kind, r.namespace, r.name, r.uid, r.owner_uid, r.resource_version, r.created_at
    )
}

/// Runs a database client; a failure ends the benchmark.
fn run(program: &str, args: &[&str]) {
    let status = std::process::Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} failed");
}

/// Lets the server write out what the previous phase left in its WAL before the next phase is
/// timed (PostgreSQL: a CHECKPOINT), so a phase does not pay for the one before it.
pub async fn settle(backend: Backend) {
    if backend == Backend::Postgres {
        let mut c = AsyncPgConnection::establish("postgres://postgres@127.0.0.1:5432/postgres").await.unwrap();
        c.batch_execute("CHECKPOINT").await.unwrap();
    }
}

/// How a bulk load is configured. The servers have one configuration for everything; SQLite's is
/// per connection, and its bulk load runs twice: with SQLite's defaults (a 2 MiB page cache, which
/// the "plain SQLite inserts" figure matches) and with the settings of pedia's writer
/// connection (its page cache among them: with the writer's 32 MiB of the time, the load ran 1.7x
/// as fast as with the defaults at 400,000 pods).
#[derive(Clone, Copy)]
pub enum Settings {
    Server,
    SqliteDefaults,
    SqliteWriter,
}

impl Settings {
    pub fn label(self, backend: Backend) -> &'static str {
        match (self, backend) {
            (Settings::SqliteDefaults, _) => "SQLite's default settings",
            (Settings::SqliteWriter, _) => "the writer's settings",
            (Settings::Server, Backend::Postgres) => "COPY",
            (Settings::Server, _) => "LOAD DATA",
        }
    }
}

/// A bulk load an ingest rate is compared with: how it is configured and what it writes.
#[derive(Clone, Copy)]
pub struct Reference {
    pub settings: Settings,
    pub parts: Parts,
}

impl Reference {
    /// The references of `backend`. Each loads the rows the write API stores for an object: its
    /// resource row and its labels (PostgreSQL keeps them in a column of that row, SQLite and
    /// MariaDB in the label index's table, so there the label rows are loaded too). SQLite's
    /// last reference loads the resource rows alone, as the bulk load did before 2026-12-07.
    pub fn of(backend: Backend) -> &'static [Reference] {
        const LABELS: Parts = Parts { labels: true, changes: false, commit_every: None };
        const ROWS: Parts = Parts { labels: false, changes: false, commit_every: None };
        match backend {
            Backend::Sqlite => &[
                Reference { settings: Settings::SqliteDefaults, parts: LABELS },
                Reference { settings: Settings::SqliteWriter, parts: LABELS },
                Reference { settings: Settings::SqliteWriter, parts: ROWS },
            ],
            Backend::Postgres => &[Reference { settings: Settings::Server, parts: ROWS }],
            Backend::Mysql => &[Reference { settings: Settings::Server, parts: LABELS }],
        }
    }

    pub fn label(self, backend: Backend) -> String {
        let settings = self.settings.label(backend);
        match backend {
            Backend::Sqlite if !self.parts.labels => format!("{settings}, resource rows alone"),
            _ => settings.to_owned(),
        }
    }
}

/// The backend's own bulk loads of `sample` in every cluster (one per `Reference::of`), each into
/// a fresh database emptied again afterwards; returns their rows per second. No other connection
/// of this process may be open: SQLite's page caches share one pool in a process (the bundled
/// library is built with SQLITE_ENABLE_MEMORY_MANAGEMENT), so a bulk load beside a store's idle
/// connections takes their cached pages for its own and ran 60% faster.
pub async fn bulk_rates(backend: Backend, name: &str, sample: &[Value], clusters: usize) -> Vec<f64> {
    let mut rates = Vec::new();
    for r in Reference::of(backend) {
        rates.push(bulk_rate(backend, name, sample, clusters, r.settings, r.parts).await);
    }
    rates
}

/// One bulk load into a fresh database, emptied again afterwards; rows per second.
pub async fn bulk_rate(
    backend: Backend,
    name: &str,
    sample: &[Value],
    clusters: usize,
    settings: Settings,
    parts: Parts,
) -> f64 {
    let url = fresh_url(backend, &format!("{name}_bulk")).await;
    let s = Storage::connect(&StorageConfig::from_url(&url).unwrap(), 3).await.unwrap();
    s.migrate().await.unwrap();
    drop(s);
    settle(backend).await;
    let t = bulk_load(backend, &url, sample, clusters, settings, parts).await;
    // Leave no second copy behind (fresh_url empties the database).
    fresh_url(backend, &format!("{name}_bulk")).await;
    (sample.len() * clusters) as f64 / t.as_secs_f64()
}

/// The tables the SQLite bulk load writes with typed (prepared) inserts.
mod bulk_tables {
    diesel::table! {
        resources (id) {
            id -> BigInt,
            cluster -> Text,
            api_group -> Text,
            version -> Text,
            resource -> Text,
            kind -> Text,
            namespace -> Text,
            name -> Text,
            uid -> Text,
            owner_uid -> Text,
            resource_version -> Text,
            created_at -> BigInt,
            synced_at -> BigInt,
            object -> Text,
        }
    }

    diesel::table! {
        label_pairs (id) {
            id -> BigInt,
            label_key -> Text,
            label_value -> Text,
        }
    }

    diesel::table! {
        resource_labels (label_id, resource_id) {
            label_id -> BigInt,
            resource_id -> BigInt,
        }
    }

    diesel::table! {
        changes (seq) {
            seq -> BigInt,
            op -> Text,
            cluster -> Text,
            api_group -> Text,
            version -> Text,
            resource -> Text,
            namespace -> Text,
            name -> Text,
            changed_at -> BigInt,
        }
    }
}
