//! Throwaway NATS servers with JetStream (`nats-server -js`) on a free loopback port, with
//! their own store directory, killed and removed on drop.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::port::free_port;

/// A running throwaway NATS server.
pub struct NatsServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
}

fn nats_binary() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join("nats-server");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("nats-server")
}

impl NatsServer {
    /// Starts a server and waits until it accepts clients.
    pub fn start() -> NatsServer {
        let dir = tempfile::Builder::new().prefix("dts-nats-").tempdir().expect("tempdir");
        let mut server = NatsServer { dir, child: None, port: free_port() };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("nats.log")).expect("create nats.log");
        let child = Command::new(nats_binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.dir.path().join("store"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server (apt-get install nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The server greets every client with an INFO line once it is ready.
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4];
                if s.read_exact(&mut buf).is_ok() && &buf == b"INFO" {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let log = std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default();
                panic!("nats-server exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "nats-server on port {} did not become ready", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
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
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
