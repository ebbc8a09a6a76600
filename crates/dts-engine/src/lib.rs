//! Job engine of dts: drives every job that is in an active status (checking, running,
//! stopping, completing) by running its precheck or its migration steps on the connectors,
//! persisting progress and state changes through the store.
//!
//! The store is the only source of truth: the engine keeps no state that a restart would need.
//! After a crash, every job still in status 3 is checked again and every job still in status 7
//! runs its steps again; the connectors' steps are idempotent (see `dts_core::connector`), so
//! the re-run finishes the work instead of duplicating it.

mod consistency;
mod error;
mod plan;
mod two_way;
mod worker;

pub use error::EngineError;
pub use plan::resolve_plan;
pub use worker::{Engine, EngineConfig};
