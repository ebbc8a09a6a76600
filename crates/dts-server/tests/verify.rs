//! `dts verify` against two real MariaDB servers: equal data reports equal; each kind of
//! divergence (missing, extra, different, NULL vs empty, one byte, FLOAT digits, trailing space,
//! rows of a keyless table) is found with its key and differing columns, and nothing else is
//! reported; every column type compares exactly; the repair SQL repairs; a sample samples.

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
        assert!(different.contains(&format!("id={id} [")), "id {id}: {different}");
    }
    assert!(different.trim_start().starts_with("7 different"), "{different}");
    assert!(
        different.contains("id=20 [s]") && different.contains("id=40 [b]") && different.contains("id=4002 [dt]"),
        "{different}"
    );
    assert!(out.contains("`v`.`nokey`: DIFFERENT: source 3 rows, destination 2 rows"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repair_sql_of_verify_makes_the_destination_equal_again() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    tokio::join!(src.exec(SCHEMA), dst.exec(SCHEMA));
    dst.exec(
        "DELETE FROM v.t WHERE id IN (10, 11, 12);
         INSERT INTO v.t (id, s) VALUES (9001, 'extra');
         UPDATE v.t SET s = NULL, b = UNHEX('27'), dt = NULL WHERE id = 20;
         DELETE FROM v.nokey WHERE a = 1 LIMIT 1; INSERT INTO v.nokey VALUES (3, 'z');",
    )
    .await;
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dts"))
        .args(["verify", "--chunk-rows", "1000", "--tables", "v"])
        .arg("--source")
        .arg(format!("mysql://root@127.0.0.1:{}", src.port()))
        .arg("--destination")
        .arg(format!("mysql://root@127.0.0.1:{}", dst.port()))
        .arg("--repair-sql")
        .arg(file.path())
        .output()
        .expect("run dts verify");
    assert!(!out.status.success());
    let sql = std::fs::read_to_string(file.path()).unwrap();
    assert_eq!(
        sql.lines().count(),
        7,
        "3 missing + 1 different + 1 extra in v.t, 1 missing + 1 extra in v.nokey:\n{sql}"
    );
    dst.exec(&sql).await;
    let (ok, out, err) = verify(&src, &dst, "v");
    assert!(ok, "after the repair SQL the tables are equal:\n{out}\n{err}");
}

/// Every column type of the full-load round-trip, one row per column changed by one byte.
const TYPES: &str = "CREATE DATABASE ty;
    CREATE TABLE ty.all_types (
        id INT PRIMARY KEY, ti TINYINT, ub BIGINT UNSIGNED, dec65 DECIMAL(65,30), dbl DOUBLE, fl FLOAT,
        d DATE, tm TIME(3), ts TIMESTAMP(6) NULL, y YEAR, ch CHAR(5), vc VARCHAR(20), l1 VARCHAR(10) CHARACTER SET latin1,
        tx TEXT CHARACTER SET utf8mb4, bl BLOB, e ENUM('a','b'), st SET('x','y'), bt BIT(8), js JSON,
        gen INT AS (ti + 1) VIRTUAL);
    INSERT INTO ty.all_types (id, ti, ub, dec65, dbl, fl, d, tm, ts, y, ch, vc, l1, tx, bl, e, st, bt, js)
    SELECT seq, seq % 100, 18446744073709551615 - seq, CONCAT(seq, '.000000000000000000000000000001'), seq / 3, seq / 7,
        '2024-02-29', '-838:59:58.999', '2024-01-01 00:00:00.000001', 2024, 'ab', 'ab', 'caf\u{e9}', 'emoji \u{1F600}',
        UNHEX('00275C0A0D1AFF'), 'a', 'x,y', b'10101010', '{\"k\": [1, 2]}' FROM ty.seq_1_to_40;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_compares_equal_when_equal_and_different_when_one_byte_differs() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    tokio::join!(src.exec(TYPES), dst.exec(TYPES));
    let (ok, out, err) = verify(&src, &dst, "ty");
    assert!(ok, "identical rows of every type compare equal:\n{out}\n{err}");
    // CHAR pads: 'ab ' is 'ab' in a CHAR(5), so the CHAR column is left out of the one-byte changes.
    let changes: [(u32, &str, &str); 17] = [
        (1, "ti", "ti = 2"),
        (2, "ub", "ub = ub - 1"),
        (3, "dec65", "dec65 = dec65 + 0.000000000000000000000000000001"),
        (4, "dbl", "dbl = dbl + 0.0000001"),
        (5, "fl", "fl = fl + 0.001"),
        (6, "d", "d = '2024-02-28'"),
        (7, "tm", "tm = '-838:59:58.998'"),
        (8, "ts", "ts = '2024-01-01 00:00:00.000002'"),
        (9, "y", "y = 2023"),
        (11, "vc", "vc = 'ab '"),
        (12, "l1", "l1 = 'cafe'"),
        (13, "tx", "tx = ''"),
        (14, "bl", "bl = UNHEX('00275C0A0D1AFE')"),
        (15, "e", "e = 'b'"),
        (16, "st", "st = 'x'"),
        (17, "bt", "bt = b'10101011'"),
        (18, "js", "js = '{\"k\": [1, 3]}'"),
    ];
    for (id, _, set) in changes {
        dst.exec(&format!("UPDATE ty.all_types SET {set} WHERE id = {id}")).await;
    }
    dst.exec("UPDATE ty.all_types SET vc = NULL WHERE id = 19; UPDATE ty.all_types SET vc = '' WHERE id = 20").await;
    src.exec("UPDATE ty.all_types SET vc = '' WHERE id = 19; UPDATE ty.all_types SET vc = NULL WHERE id = 20").await;
    let out = Command::new(env!("CARGO_BIN_EXE_dts"))
        .args(["verify", "--show", "100", "--tables", "ty"])
        .arg("--source")
        .arg(format!("mysql://root@127.0.0.1:{}", src.port()))
        .arg("--destination")
        .arg(format!("mysql://root@127.0.0.1:{}", dst.port()))
        .output()
        .expect("run dts verify");
    let text = String::from_utf8_lossy(&out.stdout);
    let different = text.lines().find(|l| l.contains(" different: ")).unwrap_or_else(|| panic!("{text}"));
    assert!(different.trim_start().starts_with("19 different"), "{different}");
    for (id, column, _) in changes {
        assert!(different.contains(&format!("id={id} [{column}")), "id {id} ({column}): {different}");
    }
    assert!(different.contains("id=19 [vc]") && different.contains("id=20 [vc]"), "NULL vs '': {different}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_verify_compares_about_the_requested_share_of_chunks() {
    let (src, dst) = tokio::join!(MariaDb::start(), MariaDb::start());
    tokio::join!(src.exec(SCHEMA), dst.exec(SCHEMA));
    let out = Command::new(env!("CARGO_BIN_EXE_dts"))
        .args(["verify", "--chunk-rows", "100", "--sample-percent", "20", "--tables", "v.t"])
        .arg("--source")
        .arg(format!("mysql://root@127.0.0.1:{}", src.port()))
        .arg("--destination")
        .arg(format!("mysql://root@127.0.0.1:{}", dst.port()))
        .output()
        .expect("run dts verify");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // 5000 rows in 100-row chunks: about 10 of 50 chunks, about 1000 rows.
    let rows: u64 = err
        .split("equal (")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!((400..=1800).contains(&rows), "a 20% sample compared {rows} of 5000 rows: {err}");
}
