//! The `dts job` and `dts key` commands against a real `dts serve` and real MariaDB servers:
//! a structure migration through the CLI, an instance-registry job, a scheduled job that is
//! stopped while it waits, and readable errors.

use std::process::Command;
use std::time::Duration;

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;
use serde_json::Value;

async fn source_with_schema() -> MariaDb {
    let src = MariaDb::start().await;
    src.exec(
        "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
         CREATE TABLE shop.customers (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(190) NOT NULL UNIQUE,
           name VARCHAR(100) CHARACTER SET latin1 COLLATE latin1_swedish_ci) AUTO_INCREMENT=500;
         CREATE TABLE shop.orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(12,2),
           placed_at DATETIME(6), KEY k_customer (customer_id),
           CONSTRAINT fk_c FOREIGN KEY (customer_id) REFERENCES shop.customers (id));
         CREATE VIEW shop.big_orders AS SELECT id, total FROM shop.orders WHERE total > 100;",
    )
    .await;
    src
}

async fn show_create(db: &MariaDb, table: &str) -> String {
    let mut c = db.conn().await;
    let row: Option<(String, String)> = c.query_first(format!("SHOW CREATE TABLE {table}")).await.unwrap();
    row.unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_a_structure_migration_from_create_to_success() {
    let (src, dst) = tokio::join!(source_with_schema(), MariaDb::start());
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let job = server
        .cli_ok(&[
            "job",
            "create",
            "--name",
            "cli-shop",
            "--source",
            &format!("mysql://root@127.0.0.1:{}", src.port()),
            "--destination",
            &format!("mysql://root:@127.0.0.1:{}", dst.port()),
            "--objects",
            "shop",
        ])
        .trim()
        .to_string();
    assert!(job.starts_with("dts-"), "{job}");
    let check = server.cli_ok(&["job", "check", &job]);
    assert!(check.contains("passed") && check.contains("destination_conflicts"), "{check}");
    server.cli_ok(&["job", "start", &job]);
    let done = server.wait_status(&job, 9).await;
    assert_eq!(done["Detail"]["Progress"], "100");
    for t in ["shop.customers", "shop.orders"] {
        assert_eq!(show_create(&src, t).await, show_create(&dst, t).await, "{t}");
    }
    let list = server.cli_ok(&["job", "list"]);
    assert!(list.contains(&job) && list.contains("9 Success"), "{list}");
    let text = server.cli_ok(&["job", "show", &job]);
    assert!(text.contains("structure migration") && text.contains("done"), "{text}");

    // A finished job cannot be checked again; the CLI says why.
    let out = server.cli(&["job", "check", &job]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FailedOperation.StatusInConflict") && stderr.contains("status 9"), "{stderr}");

    // A new job over the same objects fails its check: the tables exist on the destination now.
    let again = server
        .cli_ok(&[
            "job",
            "create",
            "--name",
            "cli-shop-again",
            "--source",
            &format!("mysql://root@127.0.0.1:{}", src.port()),
            "--destination",
            &format!("mysql://root@127.0.0.1:{}", dst.port()),
            "--objects",
            "shop.customers",
        ])
        .trim()
        .to_string();
    let out = server.cli(&["job", "check", &again]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL") && stdout.contains("`shop`.`customers`"), "{stdout}");
    assert_eq!(server.job(&again)["Status"], 5);

    server.cli_ok(&["job", "delete", &job]);
    let out = server.cli(&["job", "show", &job]);
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_waits_for_its_expect_time_and_can_be_stopped_meanwhile() {
    let (src, dst) = tokio::join!(source_with_schema(), MariaDb::start());
    let config = format!(
        "[instances.cdb-src]\nengine = \"mariadb\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"root\"\n\n\
         [instances.cdb-dst]\nengine = \"mariadb\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"root\"\n",
        src.port(),
        dst.port()
    );
    let server = DtsServer::start(
        env!("CARGO_BIN_EXE_dts").as_ref(),
        DtsServerOptions { config_toml: Some(config), ..DtsServerOptions::default() },
    )
    .await;
    let request = serde_json::json!({
        "JobName": "later",
        "MigrateOption": {"RunMode": 2, "ExpectTime": "2099-01-01 00:00:00", "MigrateType": 1, "MigrateObject": 2},
        "SrcDatabaseType": "mariadb", "SrcAccessType": "cdb", "SrcInfo": {"InstanceId": "cdb-src"},
        "DstDatabaseType": "mariadb", "DstAccessType": "cdb", "DstInfo": {"Region": "ap-guangzhou", "InstanceId": "cdb-dst"},
        "DatabaseInfo": "[{\"Database\":\"shop\",\"Table\":[\"customers\"]}]"
    });
    let file = server.data_dir().join("create.json");
    std::fs::write(&file, request.to_string()).unwrap();
    let job = server.cli_ok(&["job", "create", "--request", file.to_str().unwrap()]).trim().to_string();
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = server.job(&job);
    assert_eq!(waiting["Status"], 7);
    assert_eq!(waiting["Detail"]["StepInfo"][0]["Status"], 4, "nothing runs before ExpectTime: {waiting}");
    server.cli_ok(&["job", "stop", &job]);
    let stopped = server.wait_status(&job, 10).await;
    assert!(stopped["ErrorInfo"][0]["ErrorLog"].as_str().unwrap().contains("stopped"), "{stopped}");
    let mut c = dst.conn().await;
    let n: Option<i64> =
        c.query_first("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'").await.unwrap();
    assert_eq!(n, Some(0), "a stopped job created nothing");

    // A stopped job may be modified (it goes back to 1) and run now through the registry.
    let modify = server.data_dir().join("modify.json");
    std::fs::write(&modify, r#"{"MigrateOption": {"RunMode": 1, "MigrateType": 1, "MigrateObject": 2}}"#).unwrap();
    server.cli_ok(&["job", "modify", &job, "--request", modify.to_str().unwrap()]);
    assert_eq!(server.job(&job)["Status"], 1);
    server.cli_ok(&["job", "check", &job]);
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 9).await;
    assert_eq!(show_create(&src, "shop.customers").await, show_create(&dst, "shop.customers").await);
    let n: Option<i64> =
        c.query_first("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'").await.unwrap();
    assert_eq!(n, Some(1), "only the selected table was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_errors_name_the_api_code_and_keys_can_be_managed_while_the_server_runs() {
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let out = server.cli(&["job", "start", "dts-nosuchjb"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ResourceNotFound.JobNotExist") && err.contains("RequestId"), "{err}");

    let data_dir = server.data_dir().to_str().unwrap().to_string();
    let created: Value =
        serde_json::from_str(&server.cli_ok(&["key", "--data-dir", &data_dir, "create", "--account", "ops", "--json"]))
            .unwrap();
    let listed = server.cli_ok(&["key", "--data-dir", &data_dir, "list"]);
    assert!(listed.contains(created["SecretId"].as_str().unwrap()) && listed.contains("ops"), "{listed}");
    assert!(!listed.contains(created["SecretKey"].as_str().unwrap()), "list never shows secrets");
    let out = Command::new(env!("CARGO_BIN_EXE_dts"))
        .args(["job", "list", "--json"])
        .env("DTS_ENDPOINT", format!("http://{}", server.endpoint()))
        .env("DTS_SECRET_ID", created["SecretId"].as_str().unwrap())
        .env("DTS_SECRET_KEY", created["SecretKey"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.cli_ok(&["key", "--data-dir", &data_dir, "delete", created["SecretId"].as_str().unwrap()]);
    let out = Command::new(env!("CARGO_BIN_EXE_dts"))
        .args(["job", "list"])
        .env("DTS_ENDPOINT", format!("http://{}", server.endpoint()))
        .env("DTS_SECRET_ID", created["SecretId"].as_str().unwrap())
        .env("DTS_SECRET_KEY", created["SecretKey"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("AuthFailure.SecretIdNotFound"));
}
