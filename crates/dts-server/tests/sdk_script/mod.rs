//! Running the SDK scripts of `tests/py/` with the SDK venv's python: to completion
//! ([`run_script`]), or in the background while the test reads the lines it prints and answers
//! through a phase file ([`Running`]).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, sdk_python};
use tokio::io::AsyncBufReadExt;

/// Longest a single SDK script may run.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// The SDK venv's python, made (once per machine) off the async runtime's threads.
pub async fn python() -> PathBuf {
    tokio::task::spawn_blocking(sdk_python).await.expect("making the SDK venv panicked")
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("py").join(name)
}

fn command(python: &Path, name: &str, env: &[(String, String)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(script(name))
        .current_dir(script("."))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        cmd.env_remove(proxy);
    }
    cmd
}

/// Runs `tests/py/<name>`; panics with its output and the server log unless it exits 0.
/// Returns its stdout.
pub async fn run_script(python: &Path, name: &str, env: &[(String, String)], server: &DtsServer) -> String {
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, command(python, name, env).output())
        .await
        .unwrap_or_else(|_| panic!("{name} ran longer than {SCRIPT_TIMEOUT:?}; server log:\n{}", server.log()))
        .unwrap_or_else(|e| panic!("cannot run {} {name}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- server log ---\n{}",
        out.status,
        server.log()
    );
    println!("--- {name} ---\n{stdout}");
    stdout
}

/// A script running in the background.
pub struct Running {
    name: String,
    child: tokio::process::Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn collect(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = into.lock().unwrap_or_else(|e| e.into_inner());
            text.push_str(&line);
            text.push('\n');
        }
    });
}

impl Running {
    pub fn start(python: &Path, name: &str, env: &[(String, String)]) -> Running {
        let mut child = command(python, name, env)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} {name}: {e}", python.display()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().expect("piped stdout"), stdout.clone());
        collect(child.stderr.take().expect("piped stderr"), stderr.clone());
        Running { name: name.to_string(), child, stdout, stderr }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn report(&self, server: &DtsServer) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}\n--- server log ---\n{}",
            self.stdout(),
            self.stderr.lock().unwrap_or_else(|e| e.into_inner()),
            server.log()
        )
    }

    /// Waits until the script has printed a line equal to `line`; panics if it exits first.
    pub async fn wait_line(&mut self, line: &str, timeout: Duration, server: &DtsServer) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().lines().any(|l| l.trim() == line) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                panic!("{} exited ({status}) before printing {line}\n{}", self.name, self.report(server));
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print {line} within {timeout:?}\n{}",
                self.name,
                self.report(server)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the script to exit 0; returns its stdout.
    pub async fn finish(mut self, server: &DtsServer) -> String {
        let status = tokio::time::timeout(SCRIPT_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} ran longer than {SCRIPT_TIMEOUT:?}\n{}", self.name, self.report(server)))
            .expect("wait for the script");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(status.success(), "{} failed ({status})\n{}", self.name, self.report(server));
        println!("--- {} ---\n{}", self.name, self.stdout());
        self.stdout()
    }
}

pub fn job_id_printed(stdout: &str) -> String {
    printed(stdout, "JOB_ID=")
}

/// The value of the first `PREFIX...` line.
pub fn printed(stdout: &str, prefix: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("the script printed no {prefix}...:\n{stdout}"))
        .trim()
        .to_string()
}

/// The environment of a script that calls `server` (its endpoint and API key), and `extra`.
pub fn api_env(server: &DtsServer, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let api = [
        ("DTS_ENDPOINT", server.endpoint()),
        ("DTS_SECRET_ID", server.secret_id().to_string()),
        ("DTS_SECRET_KEY", server.secret_key().to_string()),
    ];
    with(api.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), extra)
}

/// `env` and `extra`.
pub fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}
