//! Events of synced objects (`eventsInvolvedResources`): a watch on the member's core Events of
//! the resource's kind, started after the resource's initial list; Events whose involved object
//! is stored are written with `record_events`, the others ignored. Switching the option on or off
//! takes effect at once (upstream needs a restart). Event deletions are not propagated (as
//! upstream): the store keeps what an object went through.

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use serde_json::Value;
use tokio::sync::watch;

use crate::resource::Shared;
use crate::versions::Versions;

fn events_resource() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Event".into(),
        plural: "events".into(),
    }
}

/// The stored key of the object an Event is about.
fn involved(e: &DynamicObject) -> (&str, &str) {
    let o = &e.data["involvedObject"];
    let s = |k: &str| o[k].as_str().unwrap_or_default();
    (s("namespace"), s("name"))
}

/// Runs until `stop` changes; watches while `enabled` is true.
pub async fn run(
    client: kube::Client,
    shared: Arc<Shared>,
    kind: String,
    versions: Arc<Mutex<Versions>>,
    mut enabled: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        while !*enabled.borrow_and_update() {
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                changed = enabled.changed() => if changed.is_err() { return },
            }
        }
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &events_resource());
        let config = watcher::Config::default().fields(&format!("involvedObject.kind={kind}"));
        let mut stream = pin!(watcher(api, config).default_backoff().ready_chunks(500));
        tracing::debug!(cluster = %shared.cluster, %kind, "watching the Events of synced objects");
        loop {
            let chunk = tokio::select! {
                biased;
                _ = stop.changed() => return,
                changed = enabled.changed() => {
                    if changed.is_err() { return }
                    if *enabled.borrow() { continue } else { break }
                }
                chunk = stream.next() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let mut batch: Vec<Value> = Vec::new();
            for event in chunk {
                match event {
                    Ok(Event::InitApply(e) | Event::Apply(e)) => {
                        let (namespace, name) = involved(&e);
                        if !crate::lock(&versions).contains(namespace, name) {
                            continue;
                        }
                        let mut e = e;
                        e.metadata.managed_fields = None;
                        match serde_json::to_value(&e) {
                            Ok(mut v) => {
                                v["apiVersion"] = "v1".into();
                                v["kind"] = "Event".into();
                                batch.push(v);
                            }
                            Err(err) => {
                                tracing::warn!(cluster = %shared.cluster, error = %err, "an Event does not serialize; left out")
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(cluster = %shared.cluster, %kind, error = %e, "watching Events failed; retrying with backoff")
                    }
                }
            }
            if batch.is_empty() {
                continue;
            }
            let mut delay = Duration::from_millis(500);
            loop {
                match shared.storage.record_events(&shared.cluster, &batch).await {
                    Ok(_) => break,
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(cluster = %shared.cluster, error = %e, "storing Events failed; retrying");
                        tokio::select! {
                            biased;
                            _ = stop.changed() => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                    Err(e) => {
                        tracing::error!(cluster = %shared.cluster, error = %e, events = batch.len(), "Events not stored");
                        break;
                    }
                }
            }
        }
    }
}
