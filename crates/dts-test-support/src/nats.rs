//! Throwaway NATS servers with JetStream (`nats-server -js`) on a free loopback port, with
//! their own store directory, killed and removed on drop.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::port::free_port;
use crate::process::{ServerProcess, Starting, find_binary};

/// A running throwaway NATS server.
pub struct NatsServer {
    /// First: killed before its directory goes.
    process: ServerProcess,
    dir: tempfile::TempDir,
    port: u16,
}

impl NatsServer {
    /// Starts a server and waits until it accepts clients.
    pub fn start() -> NatsServer {
        let dir = tempfile::Builder::new().prefix("dts-nats-").tempdir().expect("tempdir");
        let mut server = NatsServer { process: ServerProcess::default(), dir, port: free_port() };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("nats.log")).expect("create nats.log");
        let child = Command::new(find_binary("nats-server"))
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.dir.path().join("store"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server (apt-get install nats-server)");
        self.process.started(child);
        let start = Starting::new("nats-server", self.port, &self.dir.path().join("nats.log"), Duration::from_secs(30));
        let port = self.port;
        // The server greets every client with an INFO line once it is ready.
        self.process.wait_ready(&start, Duration::from_millis(50), || {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).is_ok() && &buf == b"INFO"
        });
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (like a crash); the store directory stays.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}
