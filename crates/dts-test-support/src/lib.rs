//! Test support for dts: throwaway MariaDB servers started as child processes, a `dts serve`
//! under test, and the Python venv with the official cloud SDKs.
//!
//! Nothing here is used by the product; integration tests of every crate use it so that they
//! run against real servers on loopback, with unique data directories, stopped afterwards.

pub mod dts_server;
pub mod mariadb;
pub mod port;
pub mod python;

pub use dts_server::{DtsServer, DtsServerOptions};
pub use mariadb::{MariaDb, MariaDbOptions, ServerAddr};
pub use port::free_port;
pub use python::sdk_python;
