//! Keeps the catalog in step with the host's PediaClusters (a kube-runtime reflector).

use std::sync::Arc;

use api_types::cluster::PediaCluster;
use futures_util::StreamExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::watch;

use crate::catalog::Catalog;

/// Follows the PediaClusters until the host goes away for good; every change rebuilds the
/// catalog. Returns the receiver the server reads and the task that feeds it.
pub fn follow(client: kube::Client) -> (watch::Receiver<Arc<Catalog>>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(Arc::new(Catalog::default()));
    let task = tokio::spawn(async move {
        let api: kube::Api<PediaCluster> = kube::Api::all(client);
        let (reader, writer) = reflector::store();
        let mut events = watcher(api, watcher::Config::default()).default_backoff().reflect(writer).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(_) => {
                    let clusters = reader.state();
                    let catalog = Catalog::build(clusters.iter().map(|c| c.as_ref()));
                    tx.send_if_modified(|current| {
                        let changed = **current != catalog;
                        if changed {
                            *current = Arc::new(catalog);
                        }
                        changed
                    });
                }
                Err(e) => tracing::warn!(error = %e, "watching PediaClusters for the search API"),
            }
        }
    });
    (rx, task)
}
