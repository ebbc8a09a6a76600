//! Free loopback ports for servers under test.

use std::net::TcpListener;
use std::sync::Mutex;

static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A port that was free a moment ago and was not handed out before in this process.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port();
        let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains(&port) {
            seen.push(port);
            return port;
        }
    }
}
