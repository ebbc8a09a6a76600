//! The Redis family of dts (standalone and cluster): dts connects to the source as a replica
//! (`PSYNC`), writes the RDB snapshot and then the command stream to the destination, and
//! checkpoints the replication id and offset the destination has applied.

pub mod rdb;
