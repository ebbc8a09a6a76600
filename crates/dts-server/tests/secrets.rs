//! Secrets on the machine running dts: the data dir is 0700 and the store's files (`dts.db`,
//! its WAL and SHM) 0600 from the first start, and a CLI error about a database URL never
//! shows the URL's password.

use std::os::unix::fs::PermissionsExt;

use dts_test_support::{DtsServer, DtsServerOptions};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn the_data_dir_and_the_store_files_are_readable_by_their_owner_only() {
    let mut server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    server.cli_ok(&["job", "list"]);
    let check = |dir: &std::path::Path| {
        assert_eq!(mode(dir), 0o700);
        for file in ["dts.db", "dts.db-wal", "dts.db-shm", "secret.key"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
    };
    check(server.data_dir());
    // A data dir of an older release (umask 022): narrowed at the next start.
    let dir = server.data_dir().to_path_buf();
    server.kill();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for file in ["dts.db", "dts.db-wal", "dts.db-shm"] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    server.restart().await;
    server.cli_ok(&["job", "list"]);
    check(server.data_dir());
}

#[tokio::test]
async fn a_bad_database_url_is_reported_without_its_password() {
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let out = server.cli(&[
        "job",
        "create",
        "--name",
        "x",
        "--source",
        "mysql://dts:TopSecret-9931@[bad-host:3306",
        "--destination",
        "mysql://root@127.0.0.1:1",
        "--objects",
        "shop",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("bad database URL mysql://dts:***@[bad-host:3306"), "{stderr}");
    assert!(!stderr.contains("TopSecret-9931") && !stdout.contains("TopSecret-9931"), "{stderr}{stdout}");
}
