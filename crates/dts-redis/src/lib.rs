//! The Redis family of dts (standalone today): dts connects to the source as a replica
//! (`PSYNC`), writes the RDB snapshot and then the command stream to the destination, and
//! checkpoints the replication id and offset the destination has applied, so a restart
//! continues the stream (`+CONTINUE`) instead of copying everything again.

pub mod checker;
pub mod conn;
pub mod connector;
pub mod dbs;
pub mod error;
pub mod full_sync;
pub mod pipeline;
pub mod rdb;
pub mod replica;
pub mod resp;
pub mod settings;
pub mod source_config;
pub mod stream;
pub mod sync;
pub mod verify;

pub use connector::RedisConnector;
pub use error::RedisError;
