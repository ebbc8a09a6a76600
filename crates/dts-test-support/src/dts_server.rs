//! A `dts serve` under test: a child process on a free loopback port with its own data directory,
//! its stderr in a log file, waited for on `/healthz`, killable like `kill -9` and restartable on
//! the same port and data; killed on drop.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::port::free_port;

/// How long `start`/`restart` wait for `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The name of the server's log file inside its data directory.
const LOG_FILE: &str = "dts-server.log";

/// How to start a `dts serve`.
#[derive(Debug, Clone)]
pub struct DtsServerOptions {
    /// The text of a `--config` TOML file (instance registry etc.), if any.
    pub config_toml: Option<String>,
    /// Registered for account `default` through `DTS_SECRET_ID`.
    pub secret_id: String,
    /// Registered for account `default` through `DTS_SECRET_KEY`.
    pub secret_key: String,
    /// Extra environment for the server process.
    pub env: Vec<(String, String)>,
    /// Serve HTTPS with this PEM certificate and key (`--tls-cert`, `--tls-key`).
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for DtsServerOptions {
    /// No config file and a fresh, unique key pair.
    fn default() -> Self {
        let (secret_id, secret_key) = fresh_key_pair();
        Self { config_toml: None, secret_id, secret_key, env: Vec::new(), tls: None }
    }
}

/// A key pair unlikely to be used by any other test: derived from the pid, the clock and a counter.
fn fresh_key_pair() -> (String, String) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let a = mix(seed);
    let b = mix(a);
    let c = mix(b);
    (format!("AKIDtest{a:016x}"), format!("{b:016x}{c:016x}"))
}

/// A running `dts serve`.
pub struct DtsServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    options: DtsServerOptions,
    child: Option<Child>,
}

impl DtsServer {
    /// Starts `bin serve` on a free port with a new data directory and waits for `/healthz`.
    pub async fn start(bin: &Path, options: DtsServerOptions) -> DtsServer {
        let dir = tempfile::Builder::new().prefix("dts-server-").tempdir().expect("tempdir for the dts data dir");
        if let Some(toml) = &options.config_toml {
            std::fs::write(dir.path().join("config.toml"), toml).expect("write config.toml");
        }
        let mut server = DtsServer { bin: bin.to_path_buf(), dir, port: free_port(), options, child: None };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let log = self.open_log();
        let log_out = log.try_clone().expect("clone the log file handle");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve").arg("--listen").arg(self.endpoint()).arg("--data-dir").arg(self.dir.path());
        if self.options.config_toml.is_some() {
            cmd.arg("--config").arg(self.config_path());
        }
        if let Some((cert, key)) = &self.options.tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        cmd.env("DTS_SECRET_ID", &self.options.secret_id)
            .env("DTS_SECRET_KEY", &self.options.secret_key)
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_out))
            .stderr(Stdio::from(log));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {} serve: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready().await;
    }

    fn open_log(&self) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log_path().display()))
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("build an HTTP client");
        let url = format!("http://{}/healthz", self.endpoint());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            // Over HTTPS (no TLS in this client) the server is ready once it accepts.
            if self.options.tls.is_some() && tokio::net::TcpStream::connect(self.endpoint()).await.is_ok() {
                return;
            }
            if let Ok(resp) = client.get(&url).send().await
                && resp.status().is_success()
                && resp.text().await.map(|t| t.trim() == "ok").unwrap_or(false)
            {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                panic!("dts serve exited with {status} before it was ready; its log:\n{}", self.log());
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "dts serve on {} did not answer {url} within {READY_TIMEOUT:?}; its log:\n{}",
                    self.endpoint(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `127.0.0.1:PORT`, what the SDK's `HttpProfile(endpoint=...)` takes.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config file passed with `--config` (it exists only when `config_toml` was given).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// Everything the server wrote to stderr and stdout so far, over all restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_else(|e| format!("(no log at {}: {e})", self.log_path().display()))
    }

    /// The key pair of account `default`.
    pub fn secret_id(&self) -> &str {
        &self.options.secret_id
    }

    pub fn secret_key(&self) -> &str {
        &self.options.secret_key
    }

    /// Creates a key pair for `account` with `dts key create --json`; returns (SecretId, SecretKey).
    pub fn create_key(&self, account: &str) -> (String, String) {
        let out = Command::new(&self.bin)
            .args(["key", "create", "--data-dir"])
            .arg(self.dir.path())
            .args(["--account", account, "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {} key create: {e}", self.bin.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "dts key create --account {account} failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        let v: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("dts key create --json printed no JSON ({e}):\n{stdout}\n{stderr}"));
        let field = |name: &str| {
            v.get(name)
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| panic!("dts key create --json lacks {name}: {v}"))
                .to_string()
        };
        assert_eq!(field("Account"), account, "dts key create --json names another account: {v}");
        (field("SecretId"), field("SecretKey"))
    }

    /// Runs `dts <args>` as a client of this server (its endpoint and key, no proxy).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.bin)
            .args(args)
            .env("DTS_ENDPOINT", format!("http://{}", self.endpoint()))
            .env("DTS_SECRET_ID", self.secret_id())
            .env("DTS_SECRET_KEY", self.secret_key())
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", self.bin.display()))
    }

    /// Like [`DtsServer::cli`], panicking with the output unless the command succeeds; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "dts {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `dts job create` of a MySQL-family job between two loopback servers (as root), with
    /// `--objects objects` (`None`: the whole instance) and any `extra` arguments; returns the
    /// job id.
    pub fn create_mysql_job(
        &self,
        name: &str,
        migrate_type: u8,
        source_port: u16,
        destination_port: u16,
        objects: Option<&str>,
        extra: &[&str],
    ) -> String {
        let (migrate_type, source, destination) = (
            migrate_type.to_string(),
            format!("mysql://root@127.0.0.1:{source_port}"),
            format!("mysql://root@127.0.0.1:{destination_port}"),
        );
        let mut args = vec![
            "job",
            "create",
            "--name",
            name,
            "--migrate-type",
            &migrate_type,
            "--source",
            &source,
            "--destination",
            &destination,
        ];
        if let Some(objects) = objects {
            args.extend(["--objects", objects]);
        }
        args.extend_from_slice(extra);
        self.cli_ok(&args).trim().to_string()
    }

    /// `MigrateJobInfo` of a job, through `dts job show --json`.
    pub fn job(&self, job_id: &str) -> serde_json::Value {
        serde_json::from_str(&self.cli_ok(&["job", "show", job_id, "--json"])).expect("dts job show --json prints JSON")
    }

    /// Polls a job until `done` holds; panics on status 10 (unless waited for), or after 120 s.
    pub async fn wait_job(
        &self,
        job_id: &str,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let job = self.job(job_id);
            if done(&job) {
                return job;
            }
            assert!(job["Status"] != 10, "job {job_id} failed while waiting for {what}: {job}\n{}", self.log());
            assert!(Instant::now() < deadline, "job {job_id}: timed out waiting for {what}: {job}\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls a job until it has `status`.
    pub async fn wait_status(&self, job_id: &str, status: i64) -> serde_json::Value {
        self.wait_job(job_id, &format!("status {status}"), |j| j["Status"] == status).await
    }

    /// The server process's id, while it runs (to read its `/proc` entry, e.g. peak memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the server with SIGKILL (like `kill -9`); it stays down until [`DtsServer::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it runs and starts it again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for DtsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
