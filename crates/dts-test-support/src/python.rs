//! The Python venv with the official cloud SDKs, made once per machine under `target/`.
//!
//! `sdk_python()` returns `<workspace>/target/dts-test-venv/bin/python`, creating the venv the
//! first time with `python3 -m venv` and installing the pinned Tencent Cloud and Alibaba Cloud
//! SDK packages. Several test processes may call it at once: the one that wins an atomic `mkdir`
//! of a lock directory builds the venv and writes a marker file last; the others wait for it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// The packages (pinned) that the venv must hold.
pub const SDK_PACKAGES: &[&str] = &[
    "tencentcloud-sdk-python-dts==3.1.193",
    "tencentcloud-sdk-python-common==3.1.195",
    "alibabacloud-dts20200101==5.11.7",
    "alibabacloud-tea-openapi==0.4.6",
    "aliyun-python-sdk-core==2.16.1",
    "aliyun-python-sdk-dts==5.1.29",
    "darabonba-core==1.0.9",
    "alibabacloud-credentials==1.0.12",
    "alibabacloud-tea==0.4.3",
    "alibabacloud-tea-util==0.3.15",
    "alibabacloud-gateway-spi==0.0.4",
    "alibabacloud-credentials-api==1.0.1",
];

/// How long a waiter waits for another process to finish the venv.
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(600);
/// A lock directory older than this is left over from a killed process.
const STALE_LOCK: Duration = Duration::from_secs(900);

static PYTHON: OnceLock<PathBuf> = OnceLock::new();

/// The workspace's `target/` directory.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join("target")
}

/// The text the marker file holds: a venv made for other pins is made again.
fn marker_text() -> String {
    SDK_PACKAGES.join("\n") + "\n"
}

/// The path of a venv python with the official Tencent Cloud and Alibaba Cloud DTS SDKs installed.
pub fn sdk_python() -> PathBuf {
    PYTHON.get_or_init(|| ensure_venv(&target_dir().join("dts-test-venv"))).clone()
}

fn ensure_venv(venv: &Path) -> PathBuf {
    let python = venv.join("bin").join("python");
    let marker = venv.join(".dts-sdk-ready");
    let lock = venv.with_extension("lock");
    let ready = || std::fs::read_to_string(&marker).map(|t| t == marker_text()).unwrap_or(false);
    if ready() {
        return python;
    }
    std::fs::create_dir_all(venv.parent().expect("venv has a parent"))
        .unwrap_or_else(|e| panic!("create {}: {e}", venv.parent().unwrap_or(venv).display()));
    let deadline = Instant::now() + WAIT_FOR_OTHERS;
    loop {
        if ready() {
            return python;
        }
        match std::fs::create_dir(&lock) {
            Ok(()) => {
                let result = std::panic::catch_unwind(|| {
                    if !ready() {
                        build_venv(venv, &marker);
                    }
                });
                let _ = std::fs::remove_dir(&lock);
                if let Err(panic) = result {
                    std::panic::resume_unwind(panic);
                }
                return python;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let age = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .unwrap_or_default();
                if age > STALE_LOCK {
                    let _ = std::fs::remove_dir(&lock);
                    continue;
                }
                assert!(
                    Instant::now() < deadline,
                    "waited {WAIT_FOR_OTHERS:?} for another process to make the SDK venv at {} (lock {}); \
                     remove the lock directory if no test is running",
                    venv.display(),
                    lock.display()
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("create lock directory {}: {e}", lock.display()),
        }
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build_venv(venv: &Path, marker: &Path) {
    if venv.exists() {
        std::fs::remove_dir_all(venv).unwrap_or_else(|e| panic!("remove half-made venv {}: {e}", venv.display()));
    }
    let base = std::env::var_os("DTS_TEST_PYTHON3").unwrap_or_else(|| "python3".into());
    run(Command::new(&base).args(["-m", "venv"]).arg(venv), "making the SDK venv with `python3 -m venv`");
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(SDK_PACKAGES)
            .env("PIP_NO_INPUT", "1"),
        "installing the Tencent Cloud and Alibaba Cloud SDKs into the test venv",
    );
    run(
        Command::new(venv.join("bin").join("python")).args([
            "-c",
            "import tencentcloud.dts.v20180330.dts_client, alibabacloud_dts20200101.client, \
             aliyunsdkdts.request.v20200101.StartDtsJobRequest",
        ]),
        "importing the installed Tencent Cloud and Alibaba Cloud DTS SDKs",
    );
    std::fs::write(marker, marker_text()).unwrap_or_else(|e| panic!("write {}: {e}", marker.display()));
}
