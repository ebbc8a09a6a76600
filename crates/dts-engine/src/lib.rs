//! Job engine of dts: drives every job in an active status (checking, running, stopping,
//! completing) by running its precheck or its stages on the connector its route picks, and
//! releases what deleted, reset and ended jobs hold; progress and state go through the store.
//!
//! The engine knows no database family: it runs jobs through the `dts_core::Connector` traits,
//! and `families` is the one place that maps a route to a family's connector. The store is the
//! only source of truth: the engine keeps no state that a restart would need. After a crash,
//! every job still in status 3 is checked again and every job still in 7, 8 or 12 runs its
//! stages again; the connectors' stages are idempotent and the engine's checkpoints say how far
//! a job got, so the re-run finishes the work instead of duplicating it.

mod check;
mod checkpoints;
mod consistency;
mod drive;
mod error;
mod families;
mod observer;
mod plan;
mod release;
mod scheduler;
mod stages;
mod tracking;
mod two_way;

use dts_core::{ChangeSink, Connector, ConnectorError, Route};

pub use error::EngineError;
pub use families::{AnyConnector, AnyStream, Families};
pub use plan::resolve_plan;
pub use scheduler::{Engine, EngineConfig};

/// Which connector runs a route: the families of this build (`Families`), or a test's fake.
pub trait ConnectorRegistry: Send + Sync + 'static {
    type Connector: Connector + 'static;

    /// The connector of a route's family; an error when this build has none.
    fn connector(&self, route: &Route) -> Result<&Self::Connector, ConnectorError>;

    /// Where change tracking publishes, when the server has a change bus.
    fn change_sink(&self) -> Option<&dyn ChangeSink> {
        None
    }
}
