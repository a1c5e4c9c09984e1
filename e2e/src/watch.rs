//! Watch streams: newline-delimited JSON events over a chunked 200 response, with bookmarks,
//! timeouts and the `initial-events-end` bookmark of streaming lists.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use api_types::selector::{FieldSelector, LabelSelector};
use api_types::status::StatusError;
use api_types::table::{self, Column};
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::meta;
use crate::sim::State;
use crate::store::StoredEvent;
use api_types::api::encode;

/// What one watch delivers and how.
pub struct WatchSpec {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: Option<FieldSelector>,
    pub bookmarks: bool,
    pub initial_events_end: bool,
    pub timeout: Duration,
    pub bookmark_interval: Duration,
    pub api_version: String,
    pub kind: String,
    pub relabel: bool,
    pub table_columns: Option<Vec<Column>>,
    pub store_rv: Arc<State>,
}

impl WatchSpec {
    fn wants(&self, e: &StoredEvent) -> bool {
        if self.namespace.as_ref().is_some_and(|ns| *ns != e.namespace) || !self.labels.matches(&e.labels) {
            return false;
        }
        match &self.fields {
            None => true,
            Some(f) => {
                let v: Value = serde_json::from_slice(&e.object).unwrap_or(Value::Null);
                f.matches(|path| meta::field_value(&v, path))
            }
        }
    }

    fn encode(&self, e: &StoredEvent) -> Bytes {
        let object =
            if self.relabel { Bytes::from(encode::relabel(&e.object, &self.api_version)) } else { e.object.clone() };
        match &self.table_columns {
            Some(cols) => {
                let v: Value = serde_json::from_slice(&object).unwrap_or(Value::Null);
                let t =
                    table::build(cols, vec![v], &[], json!({"resourceVersion": e.rv.to_string()}), Timestamp::now());
                encode::watch_line(e.kind.as_str(), &serde_json::to_vec(&t).unwrap_or_default()).into()
            }
            None => encode::watch_line(e.kind.as_str(), &object).into(),
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let object = encode::bookmark(&self.kind, &self.api_version, &rv.to_string(), initial_end);
        encode::watch_line("BOOKMARK", &serde_json::to_vec(&object).unwrap_or_default()).into()
    }
}

fn streaming_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx)) },
        );
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}

/// A watch answered with one ERROR event (410 Expired), as kube-apiserver answers resumes from
/// a compacted version.
pub fn expired_stream(e: StatusError) -> Response {
    let (tx, rx) = mpsc::channel(1);
    let line = encode::watch_line("ERROR", &serde_json::to_vec(&e.to_json()).unwrap_or_default()).into();
    // The channel has room for this one line.
    let _ = tx.try_send(line);
    drop(tx);
    streaming_response(rx)
}

/// Starts streaming: the initial events, then live ones, until timeout or disconnect.
pub fn stream(spec: WatchSpec, initial: Vec<Arc<StoredEvent>>, rx: broadcast::Receiver<Arc<StoredEvent>>) -> Response {
    let (tx, out) = mpsc::channel(256);
    tokio::spawn(run(spec, initial, rx, tx));
    streaming_response(out)
}

async fn run(
    spec: WatchSpec,
    initial: Vec<Arc<StoredEvent>>,
    mut rx: broadcast::Receiver<Arc<StoredEvent>>,
    tx: mpsc::Sender<Bytes>,
) {
    let mut last_rv = 0;
    for e in initial.iter().filter(|e| spec.wants(e)) {
        last_rv = last_rv.max(e.rv);
        if tx.send(spec.encode(e)).await.is_err() {
            return;
        }
    }
    let initial_max = initial.iter().map(|e| e.rv).max().unwrap_or(0);
    if spec.initial_events_end {
        let rv = spec.store_rv.store.current_rv().max(initial_max);
        if tx.send(spec.bookmark(rv, true)).await.is_err() {
            return;
        }
    }
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(spec.bookmark_interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = ticker.tick(), if spec.bookmarks => {
                let rv = last_rv.max(initial_max);
                if rv > 0 && tx.send(spec.bookmark(rv, false)).await.is_err() {
                    return;
                }
            }
            event = rx.recv() => match event {
                Ok(e) => {
                    // Events already sent from history are skipped.
                    if e.rv <= initial_max && !initial.is_empty() {
                        continue;
                    }
                    last_rv = last_rv.max(e.rv);
                    if spec.wants(&e) && tx.send(spec.encode(&e)).await.is_err() {
                        return;
                    }
                }
                // Too slow, or the watch was dropped on purpose: end the stream; the client re-watches.
                Err(_) => return,
            },
            _ = tx.closed() => return,
        }
    }
}
