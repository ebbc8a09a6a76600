//! `dts verify` against two real MariaDB servers: equal data reports equal; each kind of
//! divergence (missing, extra, different, NULL vs empty, one byte, FLOAT digits, trailing space,
//! rows of a keyless table) is found with its key, and nothing else is reported.

use std::process::Command;

use dts_test_support::MariaDb;

fn verify(src: &MariaDb, dst: &MariaDb, tables: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dts"))
        .args(["verify", "--chunk-rows", "1000", "--tables", tables])
        .arg("--source")
        .arg(format!("mysql://root@127.0.0.1:{}", src.port()))
        .arg("--destination")
        .arg(format!("mysql://root@127.0.0.1:{}", dst.port()))
        .output()
        .expect("run dts verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SCHEMA: &str = "CREATE DATABASE v;
    CREATE TABLE v.t (id INT PRIMARY KEY, s VARCHAR(20), c CHAR(5), f FLOAT, d DECIMAL(10,3), b VARBINARY(8), dt DATETIME(6));
    INSERT INTO v.t SELECT seq, CONCAT('s', seq), 'c', seq / 3, seq / 7, UNHEX('00FF'), '2024-01-01 00:00:00.5' FROM v.seq_1_to_5000;
    CREATE TABLE v.nokey (a INT, b VARCHAR(10));
    INSERT INTO v.nokey VALUES (1, 'x'), (1, 'x'), (2, 'y');";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_equal_tables_and_finds_every_divergence_by_key() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    tokio::join!(src.exec(SCHEMA), dst.exec(SCHEMA));
    let (ok, out, err) = verify(&src, &dst, "v");
    assert!(ok, "identical data is consistent:\n{out}\n{err}");
    assert!(err.contains("equal (5000 rows"), "{err}");

    dst.exec(
        "DELETE FROM v.t WHERE id = 10;
         INSERT INTO v.t (id, s) VALUES (9001, 'extra');
         UPDATE v.t SET s = 's20 ' WHERE id = 20;
         UPDATE v.t SET s = '' WHERE id = 30;
         UPDATE v.t SET s = NULL WHERE id = 31;
         UPDATE v.t SET b = UNHEX('00FE') WHERE id = 40;
         UPDATE v.t SET f = f + 0.001 WHERE id = 4000;
         UPDATE v.t SET d = d + 0.001 WHERE id = 4001;
         UPDATE v.t SET dt = '2024-01-01 00:00:00.500001' WHERE id = 4002;
         DELETE FROM v.nokey WHERE a = 1 LIMIT 1;",
    )
    .await;
    let (ok, out, err) = verify(&src, &dst, "v.t,v.nokey");
    assert!(!ok, "divergences make verify fail:\n{out}\n{err}");
    assert!(out.contains("1 missing on the destination: id=10"), "{out}");
    assert!(out.contains("1 extra on the destination: id=9001"), "{out}");
    let different = out.lines().find(|l| l.contains(" different: ")).unwrap_or_else(|| panic!("{out}"));
    for id in [20, 30, 31, 40, 4000, 4001, 4002] {
        assert!(
            different.contains(&format!("id={id};")) || different.ends_with(&format!("id={id}")),
            "id {id}: {different}"
        );
    }
    assert!(different.trim_start().starts_with("7 different"), "{different}");
    assert!(out.contains("`v`.`nokey`: source 3 rows, destination 2 rows"), "{out}");
}
