//! The Redis family of dts, standalone servers and Redis Cluster on either side: dts connects to
//! the source as a replica (`PSYNC`; to every master of a cluster, one shard each), writes the
//! RDB snapshot and then the command stream to the destination (a cluster's keys to the master
//! of their slot), and checkpoints the replication id and offset the destination has applied
//! per shard, so a restart continues the stream (`+CONTINUE`) instead of copying everything
//! again. Exactly-once into a standalone destination (a marker in each batch's transaction),
//! at-least-once into a cluster (see `apply`). Plain TCP or TLS (`tls`) on either side.

pub mod apply;
pub mod checker;
pub mod cluster;
pub mod conn;
pub mod connector;
pub mod dbs;
pub mod dest;
pub mod error;
pub mod fold;
pub mod full_sync;
pub mod pipeline;
pub mod rdb;
pub mod relay;
pub mod relay_master;
pub mod replica;
pub mod resp;
pub mod route;
pub mod settings;
pub mod shards;
pub mod side;
pub mod slots;
pub mod source_config;
pub mod stream;
pub mod sync;
pub mod tls;
pub mod topology;
pub mod verify;

pub use connector::RedisConnector;
pub use error::RedisError;
