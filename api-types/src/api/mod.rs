//! The Kubernetes API machinery both servers (kubesim and the search apiserver) share, without
//! IO: API paths, the built-in resource table, discovery documents, and list / watch encodings.

pub mod discovery;
pub mod encode;
pub mod openapi;
pub mod openapi_v2;
pub mod path;
pub mod protobuf;
pub mod resources;
