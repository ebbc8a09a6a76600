//! Views, routines and triggers dts creates on the destination do not run with dts's
//! privileges: `SQL SECURITY DEFINER` objects are created (by the structure step and by
//! replayed DDL) with invoker rights, the precheck names them and the triggers that run as dts's
//! login; `PreserveDefiner` keeps the source's definers, and then the precheck requires the
//! definer accounts on the destination.

use std::time::{Duration, Instant};

use dts_test_support::{DtsServer, DtsServerOptions, MariaDb};
use mysql_async::prelude::Queryable;
use serde_json::json;

async fn security(db: &MariaDb, sql: &str) -> Vec<(String, String, String)> {
    let mut c = db.conn().await;
    c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

const VIEWS: &str =
    "SELECT TABLE_NAME, SECURITY_TYPE, DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'app' ORDER BY 1";
const ROUTINES: &str = "SELECT ROUTINE_NAME, SECURITY_TYPE, DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'app' ORDER BY 1";

fn check(server: &DtsServer, job: &str) -> (bool, String) {
    let out = server.cli(&["job", "check", job, "--json"]);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definer_objects_get_invoker_rights_unless_the_job_preserves_definers_that_exist() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    src.exec(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); CREATE TABLE app.log (id INT PRIMARY KEY);
         CREATE SQL SECURITY DEFINER VIEW app.v AS SELECT id FROM app.t;
         CREATE PROCEDURE app.p() SELECT COUNT(*) FROM app.t;
         CREATE TRIGGER app.tr AFTER INSERT ON app.t FOR EACH ROW INSERT IGNORE INTO app.log VALUES (NEW.id);",
    )
    .await;
    let server = DtsServer::start(env!("CARGO_BIN_EXE_dts").as_ref(), DtsServerOptions::default()).await;
    let job = server.create_mysql_job("invoker", 3, src.port(), dst.port(), Some("app"), &[]);
    let (ok, report) = check(&server, &job);
    assert!(ok, "a warning does not fail the precheck: {report}");
    let item = serde_json::from_str::<serde_json::Value>(&report).unwrap()["CheckItems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "definers")
        .cloned()
        .unwrap_or_else(|| panic!("no definers item: {report}"));
    let said = item.to_string();
    assert_eq!(item["outcome"], "warning", "{said}");
    assert!(said.contains("SQL SECURITY INVOKER instead of DEFINER: view `app`.`v`, procedure `app`.`p`"), "{said}");
    assert!(said.contains("dts's login 'root': trigger `app`.`tr`"), "{said}");
    server.cli_ok(&["job", "start", &job]);
    server.wait_status(&job, 8).await;
    let on_destination = security(&dst, VIEWS).await;
    assert_eq!(on_destination.len(), 1);
    assert_eq!(on_destination[0].1, "INVOKER", "{on_destination:?}");
    assert_eq!(security(&dst, ROUTINES).await[0].1, "INVOKER");

    // Replayed DDL: a definer view and function created on the source after the start.
    src.exec(
        "CREATE ALGORITHM=MERGE SQL SECURITY DEFINER VIEW app.v2 AS SELECT id FROM app.t;
         CREATE FUNCTION app.f() RETURNS INT DETERMINISTIC RETURN 1;
         INSERT INTO app.t VALUES (1);",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while security(&dst, VIEWS).await.len() < 2 || security(&dst, ROUTINES).await.len() < 2 {
        assert!(Instant::now() < deadline, "the replayed DDL never arrived: {}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, kind, _) in security(&dst, VIEWS).await.into_iter().chain(security(&dst, ROUTINES).await) {
        assert_eq!(kind, "INVOKER", "{name}");
    }
    assert_eq!(server.job(&job)["Status"], 8);

    // PreserveDefiner: the definer must exist on the destination.
    src.exec(
        "CREATE DATABASE keep; CREATE TABLE keep.t (id INT PRIMARY KEY); CREATE USER 'owner'@'%';
         GRANT SELECT ON keep.* TO 'owner'@'%';
         CREATE DEFINER='owner'@'%' SQL SECURITY DEFINER VIEW keep.v AS SELECT id FROM keep.t;",
    )
    .await;
    let request = json!({
        "JobName": "preserve",
        "MigrateOption": {"RunMode": 1, "MigrateType": 2, "MigrateObject": 2, "ExternParams": json!({"PreserveDefiner": true}).to_string()},
        "SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
        "SrcInfo": {"Ip": "127.0.0.1", "Port": src.port(), "User": "root", "Password": ""},
        "DstDatabaseType": "mysql", "DstAccessType": "cdb",
        "DstInfo": {"Ip": "127.0.0.1", "Port": dst.port(), "User": "root", "Password": "", "Region": "ap-guangzhou"},
        "DatabaseInfo": json!([{"Database": "keep"}]).to_string(),
    });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), request.to_string()).unwrap();
    let preserve = server.cli_ok(&["job", "create", "--request", file.path().to_str().unwrap()]).trim().to_string();
    let (ok, report) = check(&server, &preserve);
    assert!(!ok, "{report}");
    assert!(report.contains("missing on the destination: owner@%"), "{report}");
    dst.exec("CREATE USER 'owner'@'%'").await;
    let (ok, report) = check(&server, &preserve);
    assert!(ok, "{report}");
    server.cli_ok(&["job", "start", &preserve]);
    server.wait_status(&preserve, 9).await;
    let mut c = dst.conn().await;
    let kept: Option<(String, String)> = c
        .query_first("SELECT SECURITY_TYPE, DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'keep'")
        .await
        .unwrap();
    assert_eq!(kept, Some(("DEFINER".to_string(), "owner@%".to_string())));
}
