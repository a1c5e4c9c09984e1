//! pedia's search apiserver: Clusterpedia's `clusterpedia.io/v1beta1` aggregated API
//! (`resources[/clusters/<c>]/<kube path>`, `collectionresources`) read from pedia-storage, with
//! discovery from the PediaClusters' status, Table output, multi-cluster watch from the change
//! log, and the authentication and authorization of an aggregated API server.
#![forbid(unsafe_code)]

pub mod auth;
pub mod catalog;
pub mod clusters;
pub mod collections;
pub mod feed;
pub mod kube;
pub mod own_api;
pub mod respond;
pub mod route;
pub mod server;
pub mod tls;
pub mod watch;

pub use server::{Server, State, WatchSettings};
