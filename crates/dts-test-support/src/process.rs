//! A throwaway server's process: its binary found where Debian and local installs put it, its
//! start watched until it answers (a panic with its log when it exits first or takes too long),
//! killed like a crash on demand, and killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// `name` in the system and local binary directories, else `name` for the `PATH`.
pub(crate) fn find_binary(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// A server's child process (none before the first start and after a kill), killed on drop.
#[derive(Default)]
pub(crate) struct ServerProcess {
    child: Option<Child>,
}

/// A start being watched: the process must answer before `deadline`.
pub(crate) struct Starting<'a> {
    what: &'a str,
    port: u16,
    log: PathBuf,
    deadline: Instant,
}

impl<'a> Starting<'a> {
    /// `what` on `port`, its log at `log`, given `limit` to answer.
    pub(crate) fn new(what: &'a str, port: u16, log: &Path, limit: Duration) -> Self {
        Self { what, port, log: log.to_path_buf(), deadline: Instant::now() + limit }
    }
}

impl ServerProcess {
    /// Keeps the started `child` (a running one is killed first).
    pub(crate) fn started(&mut self, child: Child) {
        self.kill();
        self.child = Some(child);
    }

    /// Panics with the server's log when it exited, or when its start is past the deadline.
    pub(crate) fn check(&mut self, start: &Starting<'_>) {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            let log = std::fs::read_to_string(&start.log).unwrap_or_default();
            panic!("{} exited with {status}: {log}", start.what);
        }
        assert!(Instant::now() < start.deadline, "{} on port {} did not become ready", start.what, start.port);
    }

    /// Polls `ready` every `every` until it holds, [`check`](Self::check)ing in between.
    pub(crate) fn wait_ready(&mut self, start: &Starting<'_>, every: Duration, mut ready: impl FnMut() -> bool) {
        while !ready() {
            self.check(start);
            std::thread::sleep(every);
        }
    }

    /// Kills the process (like a crash) and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
