//! Shared by the change-tracking end-to-end tests (`tests/tracking_*.rs`): a real `dts serve`
//! whose `[change_bus]` is a throwaway NATS server or tansu Kafka broker in a chosen format, with
//! a throwaway MariaDB registered as instance `cdb-src`; a subscription of one database bought
//! and activated through the official Tencent SDK (`tests/py/subscribe_start.py`); and
//! `dts subscribe tail` runs parsed into JSON lines.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dts_bus::{BusConfig, KafkaConfig, NatsConfig};
use dts_test_support::{DtsServer, DtsServerOptions, KafkaBroker, MariaDb, NatsServer};
use serde_json::Value;

use crate::sdk_script::{api_env, printed, python, run_script};

/// The change bus of a test.
pub enum Bus {
    Nats(NatsServer),
    Kafka(KafkaBroker),
}

impl Bus {
    pub fn nats() -> Bus {
        Bus::Nats(NatsServer::start())
    }

    pub async fn kafka() -> Bus {
        Bus::Kafka(tokio::task::spawn_blocking(KafkaBroker::start).await.expect("start the Kafka broker"))
    }

    /// The server's `[change_bus]` section publishing in `format` (`json` or `avro`).
    fn section(&self, format: &str) -> String {
        let place = match self {
            Bus::Nats(n) => format!("kind = \"nats\"\nurl = \"{}\"", n.url()),
            Bus::Kafka(k) => format!("kind = \"kafka\"\nbootstrap = \"{}\"", k.bootstrap()),
        };
        format!("[change_bus]\n{place}\nformat = \"{format}\"\nheartbeat_secs = 3600\n")
    }

    /// The `--bus` argument of `dts subscribe tail`.
    pub fn url(&self) -> String {
        match self {
            Bus::Nats(n) => n.url(),
            Bus::Kafka(k) => format!("kafka://{}", k.bootstrap()),
        }
    }

    /// The bus as the crate's consumer reaches it.
    pub fn config(&self) -> BusConfig {
        match self {
            Bus::Nats(n) => BusConfig::Nats(NatsConfig::new(n.url())),
            Bus::Kafka(k) => BusConfig::Kafka(KafkaConfig::new(k.bootstrap())),
        }
    }
}

/// A running subscription: the source, the server, the bus, the SDK's subscription id (also
/// the default consumer group) and the change-tracking job (the bus's subscription name).
pub struct Tracking {
    pub src: MariaDb,
    pub server: DtsServer,
    pub bus: Bus,
    pub format: String,
    pub sub: String,
    pub job: String,
    pub python: PathBuf,
}

/// Starts a MariaDB, runs `setup` on it, starts `dts serve` publishing to `bus` in `format`,
/// and subscribes database `db` (every table) through the Tencent SDK; returns once the
/// subscription runs.
pub async fn start(bus: Bus, format: &str, setup: &str, db: &str) -> Tracking {
    let (src, python) = tokio::join!(MariaDb::start(), python());
    let config = format!(
        "{}\n[instances.cdb-src]\nengine = \"mariadb\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"root\"\n",
        bus.section(format),
        src.port()
    );
    let server = DtsServer::start(
        Path::new(env!("CARGO_BIN_EXE_dts")),
        DtsServerOptions { config_toml: Some(config), ..Default::default() },
    )
    .await;
    src.exec(setup).await;
    let env = api_env(&server, &[("INSTANCE_ID", "cdb-src"), ("DB_NAME", db)]);
    let stdout = run_script(&python, "subscribe_start.py", &env, &server).await;
    let sub = printed(&stdout, "SUBSCRIBE_ID=");
    let job = printed(&stdout, "CHANNEL=").trim_start_matches("dts.").to_string();
    Tracking { src, server, bus, format: format.to_string(), sub, job, python }
}

impl Tracking {
    /// Runs `dts subscribe tail <job> <args>` on the bus in the subscription's format; returns
    /// its JSON lines (heartbeats included).
    pub fn tail(&self, args: &[&str]) -> Vec<Value> {
        let url = self.bus.url();
        let mut all = vec!["subscribe", "tail", &self.job, "--bus", &url, "--format", &self.format];
        all.extend_from_slice(args);
        let stdout = self.server.cli_ok(&all);
        stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
    }
}

/// Tail lines other than heartbeats.
pub fn changes(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["kind"] != "heartbeat").collect()
}
