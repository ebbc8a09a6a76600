//! Test support for dts: throwaway MariaDB servers (optionally TLS-only, with a throwaway CA), Redis servers, NATS JetStream servers and Kafka-protocol
//! brokers started as child processes, a `dts serve` under test, the Python venvs (the
//! official cloud SDKs; the Kafka broker and clients), and a fake database family for engine
//! tests that need no server.
//!
//! Nothing here is used by the product; integration tests of every crate use it so that they
//! run against real servers on loopback, with unique data directories, stopped afterwards.

pub mod dts_server;
pub mod fake_family;
pub mod kafka;
pub mod mariadb;
pub mod nats;
pub mod port;
mod process;
pub mod python;
pub mod redis;
pub mod tls;

pub use dts_server::{DtsServer, DtsServerOptions};
pub use fake_family::{Action, FakeConnector, FakeSink, FakeWorld, Stage};
pub use kafka::KafkaBroker;
pub use mariadb::{MariaDb, MariaDbOptions, ServerAddr};
pub use nats::NatsServer;
pub use port::free_port;
pub use python::{kafka_python, sdk_python};
pub use redis::{RedisClient, RedisServer, Resp};
pub use tls::TlsFiles;
