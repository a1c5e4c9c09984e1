//! pedia's store: the only state that outlives a process. Sync workers write member-cluster
//! objects into it, the search apiserver reads from it. SQLite is the embedded default,
//! PostgreSQL (JSONB) and MySQL/MariaDB (JSON) serve production. Every statement is
//! parameterised: values from requests travel as binds only.
#![forbid(unsafe_code)]

pub mod changelog;
mod checkpoint;
pub mod config;
pub mod db;
pub mod definitions;
pub mod error;
pub mod events;
pub mod internalstorage;
mod labels;
pub mod object;
pub mod query;
mod runner;
pub mod sql;
pub mod store;
pub mod tls;

pub use changelog::{Change, ChangeFilter, ChangeOp, Changes, LogState, Retention};
pub use config::{Backend, StorageConfig};
pub use db::remove_sqlite;
pub use definitions::Definition;
pub use error::StorageError;
pub use events::EventsOf;
pub use object::{Field, Incoming};
pub use query::{Item, ListRequest, Page};
pub use store::{PREPARED_BATCH, Storage, WriteShape};
