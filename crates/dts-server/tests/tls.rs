//! TLS to the databases: a source that accepts only encrypted connections
//! (`require_secure_transport=ON`, a throwaway CA) is migrated by a job whose URL asks for
//! `verify-full` with that CA, and the precheck says the connection is encrypted; a job without
//! TLS, or verifying against the wrong roots, fails its precheck with a message that says why.

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb, MariaDbOptions};
use mysql_async::prelude::Queryable;

fn check(server: &DtsServer, job: &str) -> (bool, String) {
    let out = server.cli(&["job", "check", job, "--json"]);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_only_source_is_migrated_with_verify_full_and_refused_without_tls() {
    let (src, dst) = tokio::join!(
        MariaDb::start_with(MariaDbOptions { require_tls: true, ..MariaDbOptions::default() }),
        MariaDb::start()
    );
    src.exec("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO app.t VALUES (1, 'a'), (2, 'b'); \
         CREATE DATABASE app2; CREATE TABLE app2.t (id INT PRIMARY KEY)")
        .await;
    let ca = src.tls().expect("started with TLS").ca.display().to_string();
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let create = |name: &str, source: String| {
        let objects = if name == "required" { "app2" } else { "app" };
        let destination = format!("mysql://root@127.0.0.1:{}", dst.port());
        server
            .cli_ok(&[
                "job",
                "create",
                "--name",
                name,
                "--migrate-type",
                "2",
                "--source",
                &source,
                "--destination",
                &destination,
                "--objects",
                objects,
            ])
            .trim()
            .to_string()
    };

    let plain = create("plain", format!("mysql://root@127.0.0.1:{}", src.port()));
    let (ok, report) = check(&server, &plain);
    assert!(!ok, "{report}");
    assert!(report.contains("accepts only encrypted connections"), "{report}");
    assert!(report.contains("give the job's source a TLS mode"), "{report}");

    let untrusted = create("untrusted", format!("mysql://root@127.0.0.1:{}?ssl-mode=verify-full", src.port()));
    let (ok, report) = check(&server, &untrusted);
    assert!(!ok, "{report}");
    assert!(report.contains("TLS with source"), "{report}");

    let secure = create("secure", format!("mysql://root@127.0.0.1:{}?ssl-mode=verify-full&ssl-ca={ca}", src.port()));
    assert_eq!(
        server.job(&secure)["MigrateOption"]["ExternParams"].as_str().map(|p| p.contains("SrcSslCa")),
        Some(true)
    );
    let (ok, report) = check(&server, &secure);
    assert!(ok, "{report}");
    assert!(report.contains("the connection is encrypted (TLS"), "{report}");
    assert!(report.contains("the connection is not encrypted (no TLS mode)"), "the destination's is plain: {report}");
    server.cli_ok(&["job", "start", &secure]);
    server.wait_status(&secure, 9).await;
    let mut d = dst.conn().await;
    let rows: Vec<(i32, String)> = d.query("SELECT id, v FROM app.t ORDER BY id").await.unwrap();
    assert_eq!(rows, vec![(1, "a".to_string()), (2, "b".to_string())]);

    let required = create("required", format!("mysql://root@127.0.0.1:{}?ssl-mode=required", src.port()));
    let (ok, report) = check(&server, &required);
    assert!(ok, "required: encrypted, the certificate not checked: {report}");
}
