//! kubesim: an in-memory Kubernetes API server that behaves like kube-apiserver where pedia,
//! kube-rs and kubectl depend on it (discovery, CRUD, patches, list/watch with resourceVersion,
//! 410 Gone, conflicts, finalizers, status subresource, CRDs, garbage collection, auth), with
//! fault injection. Usable in-process ([`KubeSim::router`], [`KubeSim::client`]) or on a socket.
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod cursor;
pub mod defaults;
pub mod fleet;
pub mod kubeconfig;
pub mod kubectl;
pub mod local_apiservices;
pub mod meta;
pub mod patch;
pub mod registry;
pub mod request_log;
pub mod review;
pub mod seed;
pub mod serve;
pub mod sim;
pub mod store;
pub mod tls;
pub mod watch;

pub use sim::{Config, KubeSim};
