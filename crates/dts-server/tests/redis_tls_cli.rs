//! Redis over TLS through dts's command line, against a real `dts serve` and `redis-server`s
//! that speak TLS on a port of their own: `dts job create` with a `rediss://` source (its CA read
//! from a file) and a `redis://...?ssl-mode=required` destination runs a full migration to
//! Success without showing or logging the password; `dts verify` over TLS reports the database
//! equal, then names the key changed on the destination.

use std::path::Path;
use std::process::Command;

use dts_test_support::{DtsServer, DtsServerOptions, RedisClient, RedisServer};

const SRC_PASSWORD: &str = "src-Tls-Pw-31";

fn fill(c: &mut RedisClient) {
    let mut cmds: Vec<Vec<Vec<u8>>> = (0..3000)
        .map(|i| vec![b"SET".to_vec(), format!("k{i}").into_bytes(), format!("value-{i}").into_bytes()])
        .collect();
    cmds.push(vec![b"HSET".to_vec(), b"h".to_vec(), b"f".to_vec(), b"v".to_vec()]);
    cmds.push(vec![b"SET".to_vec(), b"ttl".to_vec(), b"v".to_vec(), b"EX".to_vec(), b"3600".to_vec()]);
    c.pipeline(&cmds);
}

fn verify(source: &str, dest: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dts"))
        .args(["verify", "--source", source, "--destination", dest])
        .output()
        .expect("run dts verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_migrates_redis_over_tls_to_success_and_verifies_it_over_tls() {
    let source = RedisServer::start_tls(&["--requirepass", SRC_PASSWORD]);
    let dest = RedisServer::start_tls(&[]);
    let mut s = source.client();
    s.run(&["AUTH", SRC_PASSWORD]);
    fill(&mut s);
    let ca = source.tls_files().expect("TLS").ca.display().to_string();
    let src_url = format!("rediss://:{SRC_PASSWORD}@127.0.0.1:{}?ssl-ca={ca}", source.tls_port().expect("TLS"));
    let dst_url = format!("redis://127.0.0.1:{}?ssl-mode=required", dest.tls_port().expect("TLS"));

    let server = DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), DtsServerOptions::default()).await;
    let job = server
        .cli_ok(&[
            "job",
            "create",
            "--name",
            "redis-tls",
            "--source",
            &src_url,
            "--destination",
            &dst_url,
            "--migrate-type",
            "2",
        ])
        .trim()
        .to_string();
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    let done = server.wait_status(&job, 9).await;
    assert_eq!(done["Detail"]["Progress"], "100", "{done}");
    let shown = server.cli_ok(&["job", "show", &job]);
    // (The CA is no secret: the job's ExternParams show it, as for MySQL.)
    assert!(!shown.contains(SRC_PASSWORD) && !done.to_string().contains(SRC_PASSWORD), "the password shown: {shown}");
    assert!(!server.log().contains(SRC_PASSWORD), "the password is logged");
    let mut d = dest.client();
    assert_eq!(s.snapshot(0), d.snapshot(0));

    let (ok, out, err) = verify(&src_url, &dst_url);
    assert!(ok, "equal over TLS:\n{out}\n{err}");
    assert!(err.contains("database 0: equal (3002 keys)"), "{err}");
    d.run(&["SET", "k7", "changed"]);
    let (ok, out, err) = verify(&src_url, &dst_url);
    assert!(!ok, "a changed key makes verify fail:\n{out}\n{err}");
    assert!(out.contains("k7"), "{out}");
    // The same servers with another CA: refused, in dts's words.
    let other = RedisServer::start_tls(&[]);
    let wrong_ca = format!(
        "rediss://:{SRC_PASSWORD}@127.0.0.1:{}?ssl-ca={}",
        source.tls_port().expect("TLS"),
        other.tls_files().expect("TLS").ca.display()
    );
    let (ok, out, err) = verify(&wrong_ca, &dst_url);
    assert!(!ok && err.contains("TLS handshake failed"), "{out}\n{err}");
}
