//! The label index of SQLite and MySQL (PostgreSQL uses a GIN index on its `labels` column).
//!
//! Label pairs are interned in `label_pairs`, so `resource_labels` holds two integers per label
//! (`label_id, resource_id`) instead of the key and value text: cheaper to write, a fraction of
//! the size. Pairs are a dictionary that only grows; ids are cached in memory, and new pairs
//! are added outside the write transaction (an id read inside a transaction that rolls back
//! would otherwise linger in the cache).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};

use crate::config::Backend;
use crate::error::StorageError;
use crate::object::Row;
use crate::sql::{Sql, prepared_chunks};

/// Pairs per statement (two binds each).
const PAIRS_PER_STATEMENT: usize = 1000;
/// The cache forgets everything past this many pairs (labels unique per object, such as a
/// job's controller-uid, would otherwise grow it with the store).
const CACHE_LIMIT: usize = 200_000;

pub(crate) type Pair = (String, String);

/// Label pair ids by pair. foldhash, seeded per map: the writer hashes every label of every
/// object it writes several times, and SipHash was a few percent of SQLite's writer thread.
pub(crate) type PairIds = HashMap<Pair, i64, foldhash::fast::RandomState>;

#[derive(QueryableByName)]
pub(crate) struct PairRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    label_key: String,
    #[diesel(sql_type = Text)]
    label_value: String,
}

/// Ids of label pairs seen by this process.
#[derive(Default)]
pub(crate) struct PairCache(Mutex<PairIds>);

impl PairCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, PairIds> {
        // A poisoned map is still a valid cache.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached ids of the pairs of `rows`, and the pairs that are not cached.
    pub(crate) fn lookup<'r>(&self, rows: impl IntoIterator<Item = &'r Row>) -> (PairIds, Vec<Pair>) {
        let cache = self.lock();
        let (mut found, mut missing) = (PairIds::default(), Vec::new());
        let mut seen = HashSet::<_, foldhash::fast::RandomState>::default();
        for p in rows.into_iter().flat_map(|r| r.labels.iter()) {
            if seen.insert(p) {
                match cache.get(p) {
                    Some(id) => {
                        found.insert(p.clone(), *id);
                    }
                    None => missing.push(p.clone()),
                }
            }
        }
        (found, missing)
    }

    /// Caches `read` and adds it to `found`.
    pub(crate) fn remember(&self, read: Vec<PairRow>, found: &mut PairIds) {
        let mut cache = self.lock();
        if cache.len() + read.len() > CACHE_LIMIT {
            cache.clear();
        }
        for p in read {
            let pair = (p.label_key, p.label_value);
            cache.insert(pair.clone(), p.id);
            found.insert(pair, p.id);
        }
    }
}

/// Statements adding `pairs` to the dictionary (existing ones are left alone).
pub(crate) fn insert_pairs(backend: Backend, pairs: &[Pair]) -> Vec<Sql> {
    pairs
        .chunks(PAIRS_PER_STATEMENT)
        .map(|chunk| {
            let mut s = Sql::new(backend);
            s.push(match backend {
                Backend::Mysql => "INSERT IGNORE INTO label_pairs (label_key, label_value) VALUES ",
                _ => "INSERT OR IGNORE INTO label_pairs (label_key, label_value) VALUES ",
            });
            for (i, (k, v)) in chunk.iter().enumerate() {
                s.push(if i > 0 { ", (" } else { "(" }).text(k).push(", ").text(v).push(")");
            }
            s
        })
        .collect()
}

/// Queries for the ids of `pairs`.
pub(crate) fn select_pairs(backend: Backend, pairs: &[Pair]) -> Vec<Sql> {
    pairs
        .chunks(PAIRS_PER_STATEMENT)
        .map(|chunk| {
            let mut s = Sql::new(backend);
            s.push("SELECT id, label_key, label_value FROM label_pairs WHERE (label_key, label_value) IN (");
            for (i, (k, v)) in chunk.iter().enumerate() {
                s.push(if i > 0 { ", (" } else { "(" }).text(k).push(", ").text(v).push(")");
            }
            s.push(")");
            s
        })
        .collect()
}

/// A row of the label index.
#[derive(QueryableByName)]
pub(crate) struct LinkRow {
    #[diesel(sql_type = BigInt)]
    label_id: i64,
    #[diesel(sql_type = BigInt)]
    resource_id: i64,
}

/// The label rows of the stored objects `ids` (None for none): an update compares them with its
/// labels and writes only the difference.
pub(crate) fn links_sql(backend: Backend, ids: &[i64]) -> Option<Sql> {
    let mut s = Sql::new(backend);
    s.push("SELECT label_id, resource_id FROM resource_labels WHERE resource_id IN ").int_list(ids.iter().copied());
    (!ids.is_empty()).then_some(s)
}

/// Statements deleting the label rows `stale`.
fn push_deletes(backend: Backend, stale: &[(i64, i64)], out: &mut Vec<Sql>) {
    for chunk in stale.chunks(PAIRS_PER_STATEMENT) {
        let mut delete = Sql::new(backend);
        delete.push("DELETE FROM resource_labels WHERE ");
        for (i, (label, resource)) in chunk.iter().enumerate() {
            delete.push(if i > 0 { " OR (label_id = " } else { "(label_id = " }).int(*label);
            delete.push(" AND resource_id = ").int(*resource).push(")");
        }
        out.push(delete);
    }
}

/// Statements writing the label rows of `rows` (by `(namespace, name)` in `ids`), given the
/// rows `old` the label index holds for them: only rows that are not there are inserted and
/// only those no longer wanted are deleted, so an update that keeps its labels (most do)
/// writes nothing here. A row without an id or a label without a pair id is an error, never an
/// object left out of the index.
pub(crate) fn write_statements(
    backend: Backend,
    rows: &[&Row],
    ids: &HashMap<(String, String), i64>,
    old: &[LinkRow],
    pairs: &PairIds,
) -> Result<Vec<Sql>, StorageError> {
    let missing = |r: &Row, what: String| StorageError::BadObject(format!("{}/{}", r.namespace, r.name), what);
    let mut wanted: Vec<(i64, i64)> = Vec::with_capacity(rows.iter().map(|r| r.labels.len()).sum());
    for r in rows {
        let id = *ids
            .get(&(r.namespace.clone(), r.name.clone()))
            .ok_or_else(|| missing(r, "its row id was not found after writing it".into()))?;
        for p in &r.labels {
            let pair = pairs.get(p).ok_or_else(|| missing(r, format!("label {}={} has no pair id", p.0, p.1)))?;
            wanted.push((*pair, id));
        }
    }
    let mut out = Vec::new();
    // In index order: each pair's new ids land together at the end of its range.
    let links: Vec<(i64, i64)> = if old.is_empty() {
        // New rows only (an initial list): nothing to compare with.
        let mut links: Vec<(i64, i64)> = wanted;
        links.sort_unstable();
        links.dedup();
        links
    } else {
        let wanted: HashSet<(i64, i64)> = wanted.into_iter().collect();
        let stored: HashSet<(i64, i64)> = old.iter().map(|l| (l.label_id, l.resource_id)).collect();
        let mut stale: Vec<(i64, i64)> = stored.difference(&wanted).copied().collect();
        stale.sort_unstable();
        push_deletes(backend, &stale, &mut out);
        let mut links: Vec<(i64, i64)> = wanted.difference(&stored).copied().collect();
        links.sort_unstable();
        links
    };
    for chunk in prepared_chunks(&links, &[PAIRS_PER_STATEMENT * 2]) {
        let mut insert = Sql::new(backend);
        insert.reuse_prepared().push("INSERT INTO resource_labels (label_id, resource_id) VALUES ");
        for (i, (label, resource)) in chunk.iter().enumerate() {
            insert.push(if i > 0 { ", (" } else { "(" }).int(*label).push(", ").int(*resource).push(")");
        }
        out.push(insert);
    }
    Ok(out)
}

/// A label requirement the index answers: `key` present (with one of `values`, when given).
pub(crate) type Wanted<'a> = (&'a str, Option<&'a [String]>);

/// Pair ids per wanted label, read before the query, so the label index is probed by integer
/// (one lookup per candidate) instead of joining `label_pairs` for every candidate. `None` for
/// an `exists` requirement (its pairs can be many: the query joins `label_pairs` for those).
pub(crate) type Resolved = Vec<Option<Vec<i64>>>;

/// The query for the pairs of the `=`/`in` requirements in `all` (None when there are none).
pub(crate) fn wanted_pairs_sql(backend: Backend, all: &[Wanted<'_>]) -> Option<Sql> {
    let mut s = Sql::new(backend);
    s.push("SELECT id, label_key, label_value FROM label_pairs WHERE 1 = 0");
    let mut any = false;
    for (key, values) in all {
        if let Some(values) = values {
            s.push(" OR (label_key = ").text(*key).push(" AND label_value IN ").text_list(values.iter()).push(")");
            any = true;
        }
    }
    any.then_some(s)
}

/// The pair ids of each requirement in `all`, from the rows [`wanted_pairs_sql`] read. An empty
/// list means no stored object can match.
pub(crate) fn resolve(all: &[Wanted<'_>], rows: &[PairRow]) -> Resolved {
    all.iter()
        .map(|(key, values)| {
            values.map(|values| {
                rows.iter().filter(|r| r.label_key == *key && values.contains(&r.label_value)).map(|r| r.id).collect()
            })
        })
        .collect()
}

/// SQLite counts at most this many label rows of a requirement to find the narrowest (a few
/// milliseconds); past it, requirements count as equally wide.
pub(crate) const COUNT_LIMIT: i64 = 50_000;

/// SQLite: label requirements matching at least this many rows (the narrowest, counted) page by
/// walking the order index instead of looking up each match: a match looked up costs some
/// twenty entries walked, and a wide label's page is found early in the order.
pub(crate) const ORDERED_SCAN_FROM: i64 = 2_000;

/// PostgreSQL: the same bar on the planner's estimate of the matches, and on their count (up to
/// the bar) where the estimate is below it: some wide labels are estimated at a few dozen rows.
pub(crate) const PG_ORDERED_SCAN_FROM: i64 = 1_000;

/// The scan for a label page whose requirements match `matches` rows (None: not known).
pub(crate) fn scan_for(matches: Option<i64>, bar: i64) -> crate::query::LabelScan {
    match matches {
        Some(n) if n >= bar => crate::query::LabelScan::Ordered,
        _ => crate::query::LabelScan::Matches,
    }
}

/// A line of PostgreSQL's `EXPLAIN` output.
#[derive(QueryableByName)]
pub(crate) struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

impl PlanLine {
    /// The estimated rows of the plan's top node (`... rows=2244 width=0)`).
    pub(crate) fn rows(&self) -> Option<i64> {
        let at = self.line.find(" rows=")? + " rows=".len();
        self.line[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    }
}

/// The requirements of `ids` whose size is estimated to choose the one that drives: the resolved
/// ones with pairs, when there are two or more (else there is nothing to choose). The others are
/// probed per candidate, so the narrowest first is far cheaper: `tier=canary,app=x` took ten
/// times as long on MariaDB as `app=x,tier=canary`.
pub(crate) fn sizable(ids: &[Option<Vec<i64>>]) -> Vec<usize> {
    let found: Vec<usize> = (0..ids.len()).filter(|i| ids[*i].as_ref().is_some_and(|p| !p.is_empty())).collect();
    if found.len() < 2 { Vec::new() } else { found }
}

/// MySQL: `EXPLAIN` of one select per [`sizable`] requirement, whose row estimates (index dives,
/// no rows read; about twice the real count here, but in the right order) size them.
pub(crate) fn explain_sql(backend: Backend, ids: &[Option<Vec<i64>>], sizable: &[usize]) -> Sql {
    let mut s = Sql::new(backend);
    s.push("EXPLAIN ");
    for (n, i) in sizable.iter().enumerate() {
        if n > 0 {
            s.push(" UNION ALL ");
        }
        s.push("SELECT 1 FROM resource_labels WHERE ");
        label_id_in(&mut s, "resource_labels", ids[*i].as_deref().unwrap_or_default());
    }
    s
}

/// SQLite (which has no row estimates): the rows of one requirement's pairs, counted up to `cap`.
pub(crate) fn count_sql(backend: Backend, pairs: &[i64], cap: i64) -> Sql {
    let mut s = Sql::new(backend);
    s.push("SELECT COUNT(*) AS n FROM (SELECT 1 FROM resource_labels WHERE ");
    label_id_in(&mut s, "resource_labels", pairs);
    s.push(" LIMIT ").int(cap).push(")");
    s
}

/// A row of [`explain_sql`]: one select's estimated rows.
#[derive(QueryableByName)]
pub(crate) struct ExplainRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    rows: Option<Estimate>,
}

/// A row count `EXPLAIN` estimated. MariaDB sends it as text, MySQL 8 as an integer: read as
/// text, an integer's bytes could fail UTF-8 decoding and fail the whole list. Whatever is no
/// number estimates nothing (the selector's order stays).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Estimate(Option<i64>);

impl Estimate {
    fn parse(text: Option<String>) -> Self {
        Estimate(text.and_then(|t| t.trim().parse().ok()))
    }
}

impl diesel::deserialize::FromSql<Text, diesel::mysql::Mysql> for Estimate {
    fn from_sql(value: diesel::mysql::MysqlValue<'_>) -> diesel::deserialize::Result<Self> {
        use diesel::mysql::MysqlType as T;
        Ok(match value.value_type() {
            T::Tiny
            | T::UnsignedTiny
            | T::Short
            | T::UnsignedShort
            | T::Long
            | T::UnsignedLong
            | T::LongLong
            | T::UnsignedLongLong => {
                Estimate(<i64 as diesel::deserialize::FromSql<BigInt, diesel::mysql::Mysql>>::from_sql(value).ok())
            }
            _ => Estimate::parse(
                <String as diesel::deserialize::FromSql<Text, diesel::mysql::Mysql>>::from_sql(value).ok(),
            ),
        })
    }
}

/// SQLite and PostgreSQL never run `EXPLAIN` here; the impls let the generic read compile.
macro_rules! estimate_from_text {
    ($($db:ty),*) => {$(
        impl diesel::deserialize::FromSql<Text, $db> for Estimate {
            fn from_sql(value: <$db as diesel::backend::Backend>::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                Ok(Estimate::parse(<String as diesel::deserialize::FromSql<Text, $db>>::from_sql(value).ok()))
            }
        }
    )*};
}
estimate_from_text!(diesel::sqlite::Sqlite, diesel::pg::Pg);

/// The estimated size of each requirement of `ids` from the rows of [`explain_sql`] (one per
/// select, in the order of `sizable`); None where not estimated. Rows of another shape estimate
/// nothing, so the selector's order stays.
pub(crate) fn explained_sizes(ids: usize, sizable: &[usize], explained: &[ExplainRow]) -> Vec<Option<i64>> {
    let mut out = vec![None; ids];
    if explained.len() == sizable.len() {
        for (i, e) in sizable.iter().zip(explained) {
            out[*i] = e.rows.and_then(|r| r.0);
        }
    }
    out
}

/// `SELECT resource_id ...` of the resources carrying every label in `all` (at least one): the
/// subquery label selectors compile into on SQLite and MySQL. `ids` holds the resolved pair ids
/// (empty, or `None` entries, where not resolved). A resolved label drives; the others are probed
/// in the label index per candidate, so only the intersection's rows are read.
pub(crate) fn resources_with_all(s: &mut Sql, all: &[Wanted<'_>], ids: &[Option<Vec<i64>>]) {
    let resolved = |i: usize| ids.get(i).and_then(Option::as_ref);
    // Resolved (`=`/`in`) labels first: they are usually narrower than `exists`, and cheaper.
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|i| resolved(*i).is_none());
    let Some((&first, rest)) = order.split_first() else { return };
    let label_filter = |s: &mut Sql, pairs: &str, (key, values): &Wanted<'_>| {
        s.push(&format!(" WHERE {pairs}.label_key = ")).text(*key);
        if let Some(values) = values {
            s.push(&format!(" AND {pairs}.label_value IN ")).text_list(values.iter());
        }
    };
    match resolved(first) {
        Some(pair_ids) => {
            s.push("SELECT rl.resource_id FROM resource_labels rl WHERE ");
            label_id_in(s, "rl", pair_ids);
        }
        None => {
            s.push("SELECT rl.resource_id FROM label_pairs lp JOIN resource_labels rl ON rl.label_id = lp.id");
            label_filter(s, "lp", &all[first]);
        }
    }
    for &i in rest {
        match resolved(i) {
            Some(pair_ids) => {
                s.push(" AND EXISTS (SELECT 1 FROM resource_labels r2 WHERE r2.resource_id = rl.resource_id AND ");
                label_id_in(s, "r2", pair_ids);
            }
            None => {
                s.push(" AND EXISTS (SELECT 1 FROM label_pairs p2 JOIN resource_labels r2 ON r2.label_id = p2.id");
                label_filter(s, "p2", &all[i]);
                s.push(" AND r2.resource_id = rl.resource_id");
            }
        }
        s.push(")");
    }
}

/// `{alias}.label_id IN (ids)`; false for no ids (SQL has no empty list).
fn label_id_in(s: &mut Sql, alias: &str, ids: &[i64]) {
    if ids.is_empty() {
        s.push("1 = 0");
    } else {
        s.push(&format!("{alias}.label_id IN ")).int_list(ids.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Bind;

    #[test]
    fn sizes_belong_to_their_requirements() {
        // Requirement 1 is an `exists` (not resolved), 3 has no stored pair: neither is sized.
        let ids: Resolved = vec![Some(vec![7]), None, Some(vec![8, 9]), Some(vec![]), Some(vec![4])];
        assert!(sizable(&ids[..2]).is_empty(), "one resolved requirement: nothing to choose");
        let which = sizable(&ids);
        assert_eq!(which, [0, 2, 4]);
        let explain = explain_sql(Backend::Mysql, &ids, &which);
        assert!(explain.text.starts_with("EXPLAIN SELECT 1 FROM resource_labels"), "{}", explain.text);
        assert_eq!((explain.text.matches("UNION ALL").count(), explain.binds.len()), (2, 4));
        let count = count_sql(Backend::Sqlite, &[8, 9], 11);
        assert_eq!(count.binds, [Bind::Int(8), Bind::Int(9), Bind::Int(11)]);
        // One EXPLAIN row per select, in the order of the sizable requirements.
        let row = |rows: Option<&str>| ExplainRow { rows: rows.map(|r| Estimate::parse(Some(r.into()))) };
        let explained = [row(Some("120")), row(Some("7")), row(None)];
        assert_eq!(explained_sizes(ids.len(), &which, &explained), [Some(120), None, Some(7), None, None]);
        let odd = [row(Some("120")), row(Some("7"))];
        assert_eq!(explained_sizes(ids.len(), &which, &odd), [None; 5], "rows of another shape estimate nothing");
    }

    #[test]
    fn wide_labels_walk_the_order_index() {
        use crate::query::LabelScan;
        assert_eq!(scan_for(Some(ORDERED_SCAN_FROM), ORDERED_SCAN_FROM), LabelScan::Ordered);
        assert_eq!(scan_for(Some(ORDERED_SCAN_FROM - 1), ORDERED_SCAN_FROM), LabelScan::Matches);
        assert_eq!(scan_for(None, ORDERED_SCAN_FROM), LabelScan::Matches, "unknown sizes keep the lookups");
        let line = |l: &str| PlanLine { line: l.into() };
        let top = line("Bitmap Heap Scan on resources  (cost=221.39..8585.15 rows=2244 width=0)");
        assert_eq!(top.rows(), Some(2244));
        assert_eq!(line("Seq Scan on resources  (cost=0.00..1.01 rows=1 width=4)").rows(), Some(1));
        assert_eq!(line("  Filter: (labels @> '{\"rows=\": \"x\"}'::jsonb)").rows(), None, "no number after it");
        assert_eq!(line("Result").rows(), None);
    }

    #[test]
    fn explain_estimates_read_as_text_or_as_integers() {
        use diesel::deserialize::FromSql;
        use diesel::mysql::{Mysql, MysqlType, MysqlValue};
        let read = |raw: &[u8], tpe| <Estimate as FromSql<Text, Mysql>>::from_sql(MysqlValue::new(raw, tpe)).unwrap();
        // MariaDB: text.
        assert_eq!(read(b"120", MysqlType::String), Estimate(Some(120)));
        // MySQL 8: an integer; 200's first byte (0xC8) is no UTF-8, which failed the read as text.
        assert_eq!(read(&200i64.to_ne_bytes(), MysqlType::LongLong), Estimate(Some(200)));
        assert_eq!(read(&20_000u64.to_ne_bytes(), MysqlType::UnsignedLongLong), Estimate(Some(20_000)));
        assert_eq!(read(b"many", MysqlType::String), Estimate(None));
    }

    #[test]
    fn label_rows_need_ids_for_the_object_and_every_pair() {
        let row = crate::object::prepare(
            "m1",
            &serde_json::json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "1", "b": "2"}}}),
        )
        .unwrap();
        let ids = HashMap::from([(("ns".to_owned(), "p".to_owned()), 7)]);
        let mut pairs: PairIds =
            [(("a".to_owned(), "1".to_owned()), 3), (("b".to_owned(), "2".to_owned()), 1)].into_iter().collect();
        let sql = write_statements(Backend::Sqlite, &[&row], &ids, &[], &pairs).unwrap();
        assert_eq!(sql.len(), 1, "a new object: insert its labels");
        assert_eq!(
            sql[0].binds,
            [crate::sql::Bind::Int(1), crate::sql::Bind::Int(7), crate::sql::Bind::Int(3), crate::sql::Bind::Int(7)]
        );
        let twice = write_statements(Backend::Sqlite, &[&row, &row], &ids, &[], &pairs).unwrap();
        assert_eq!(twice[0].binds, sql[0].binds, "a link is written once");
        // Stored: a=1 (pair 3) and c (pair 9); wanted: a=1 and b=2 (pair 1).
        let old = [LinkRow { label_id: 3, resource_id: 7 }, LinkRow { label_id: 9, resource_id: 7 }];
        let sql = write_statements(Backend::Sqlite, &[&row], &ids, &old, &pairs).unwrap();
        assert_eq!(sql.len(), 2, "delete what is gone, insert what is new");
        assert_eq!(sql[0].binds, [crate::sql::Bind::Int(9), crate::sql::Bind::Int(7)]);
        assert_eq!(sql[1].binds, [crate::sql::Bind::Int(1), crate::sql::Bind::Int(7)]);
        let kept = [LinkRow { label_id: 3, resource_id: 7 }, LinkRow { label_id: 1, resource_id: 7 }];
        assert!(write_statements(Backend::Sqlite, &[&row], &ids, &kept, &pairs).unwrap().is_empty(), "unchanged");
        let err = write_statements(Backend::Sqlite, &[&row], &HashMap::new(), &[], &pairs).unwrap_err();
        assert!(err.to_string().contains("ns/p") && err.to_string().contains("row id"), "{err}");
        pairs.remove(&("b".to_owned(), "2".to_owned()));
        let err = write_statements(Backend::Sqlite, &[&row], &ids, &[], &pairs).unwrap_err();
        assert!(err.to_string().contains("label b=2"), "{err}");
    }
}
