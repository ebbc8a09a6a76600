//! Full load against real servers: type fidelity, keyless and non-integer keys, chunking and
//! batching of a larger table, resumption from checkpoints, snapshot consistency under
//! concurrent writes, and bad input.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dts_core::{
    CheckpointFuture, Checkpoints, ConnectorError, ErrorClass, FullLoader, LoadSummary, MigrationPlan, Position,
    StructureMigrator,
};
use dts_mysql::{DONE_PREFIX, FullLoadSettings, MySqlConnector, PLAN_KEY, SNAPSHOT_KEY};
use dts_test_support::ServerAddr;
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};

use crate::{databases, no_progress, pair, plan};

/// Checkpoints kept in memory, as the engine keeps them in its store.
#[derive(Default)]
struct MemCheckpoints(Mutex<BTreeMap<String, String>>);

impl MemCheckpoints {
    fn map(&self) -> BTreeMap<String, String> {
        self.0.lock().unwrap().clone()
    }

    fn remove(&self, key: &str) {
        assert!(self.0.lock().unwrap().remove(key).is_some(), "no checkpoint {key}");
    }

    fn done(&self) -> Vec<String> {
        self.map().keys().filter_map(|k| k.strip_prefix(DONE_PREFIX).map(str::to_string)).collect()
    }

    /// The stored chunk plan.
    fn chunks(&self) -> Vec<serde_json::Value> {
        let json = self.map().get(PLAN_KEY).cloned().expect("a stored plan");
        serde_json::from_str(&json).expect("plan json")
    }
}

impl Checkpoints for MemCheckpoints {
    fn get<'a>(&'a self, key: &'a str) -> CheckpointFuture<'a, Option<String>> {
        let value = self.0.lock().unwrap().get(key).cloned();
        Box::pin(async move { Ok::<_, ConnectorError>(value) })
    }

    fn put<'a>(&'a self, key: &'a str, value: &'a str) -> CheckpointFuture<'a, ()> {
        self.0.lock().unwrap().insert(key.to_string(), value.to_string());
        Box::pin(async { Ok::<_, ConnectorError>(()) })
    }

    fn scan<'a>(&'a self, prefix: &'a str) -> CheckpointFuture<'a, Vec<(String, String)>> {
        let found: Vec<(String, String)> = self
            .0
            .lock()
            .unwrap()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Box::pin(async move { Ok::<_, ConnectorError>(found) })
    }
}

fn connector(parallel: usize, chunk_rows: u64, batch_bytes: usize, write_binlog: bool) -> MySqlConnector {
    MySqlConnector::default().with_full_load_settings(FullLoadSettings {
        parallel,
        chunk_rows,
        batch_bytes,
        write_binlog,
        defer_secondary_indexes: true,
        load_data: true,
    })
}

/// The same, writing rows as multi-row INSERTs instead of LOAD DATA.
fn inserting_connector(parallel: usize, chunk_rows: u64, batch_bytes: usize) -> MySqlConnector {
    MySqlConnector::default().with_full_load_settings(FullLoadSettings {
        parallel,
        chunk_rows,
        batch_bytes,
        write_binlog: true,
        defer_secondary_indexes: true,
        load_data: false,
    })
}

async fn migrate(c: &MySqlConnector, p: &MigrationPlan) {
    c.migrate_structure(p, &no_progress()).await.expect("structure");
}

/// Every row of a query as value vectors.
async fn all(addr: &ServerAddr, sql: &str) -> Vec<Vec<Value>> {
    let mut c = addr.conn().await;
    let rows: Vec<Row> = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.disconnect().await;
    rows.into_iter().map(Row::unwrap).collect()
}

/// One integer (or NULL as -1) from a one-row, one-column query.
async fn scalar(addr: &ServerAddr, sql: &str) -> i64 {
    let mut c = addr.conn().await;
    let v: Option<Option<i64>> = c.query_first(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.disconnect().await;
    v.flatten().unwrap_or(-1)
}

/// Asserts that a query returns the same rows, in the same order, on both servers; returns
/// the number of rows.
async fn same_rows(src: &ServerAddr, dst: &ServerAddr, sql: &str) -> usize {
    let (a, b) = (all(src, sql).await, all(dst, sql).await);
    assert_eq!(a.len(), b.len(), "row count of {sql}");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "row {i} of {sql}");
    }
    a.len()
}

/// Asserts that a table holds the same multiset of rows on both servers (any order).
async fn same_table(src: &ServerAddr, dst: &ServerAddr, table: &str) -> usize {
    let sql = format!("SELECT * FROM {table}");
    let sorted = |rows: Vec<Vec<Value>>| {
        let mut keyed: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
        keyed.sort();
        keyed
    };
    let (a, b) = (sorted(all(src, &sql).await), sorted(all(dst, &sql).await));
    assert_eq!(a.len(), b.len(), "row count of {table}");
    assert!(a == b, "rows of {table} differ");
    assert_eq!(checksum(src, table).await, checksum(dst, table).await, "CHECKSUM TABLE {table}");
    a.len()
}

async fn checksum(addr: &ServerAddr, table: &str) -> Option<u64> {
    let mut c = addr.conn().await;
    let row: Option<(String, Option<u64>)> =
        c.query_first(format!("CHECKSUM TABLE {table}")).await.unwrap_or_else(|e| panic!("checksum {table}: {e}"));
    let _ = c.disconnect().await;
    let sum = row.expect("checksum row").1;
    assert!(sum.is_some(), "no checksum for {table}");
    sum
}

const TYPES: &str = "CREATE DATABASE ty CHARACTER SET utf8mb4; \
    CREATE TABLE ty.all_types ( \
      id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
      ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED, \
      i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, \
      d65 DECIMAL(65,30), d10 DECIMAL(10,2), f FLOAT, db DOUBLE, \
      dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, y YEAR, \
      c CHAR(10), vc VARCHAR(100), tx TEXT, \
      c1 CHAR(10) CHARACTER SET latin1, vc1 VARCHAR(100) CHARACTER SET latin1, tx1 TEXT CHARACTER SET latin1, \
      bn BINARY(8), vb VARBINARY(64), bl BLOB, lb LONGBLOB, \
      e ENUM('a','b','é'), s SET('x','y','z'), b1 BIT(1), b64 BIT(64), j JSON, \
      g_stored BIGINT AS (i + 1) STORED, g_virtual VARCHAR(110) AS (CONCAT(vc, '!')) VIRTUAL \
    ) ENGINE=InnoDB";

const TYPE_COLUMNS: &str = "id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d65, d10, f, db, dt, tm, dtm, ts, y, \
    c, vc, tx, c1, vc1, tx1, bn, vb, bl, lb, e, s, b1, b64, j";

const TYPE_ROWS: &str = "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'; SET SESSION time_zone = '+00:00'; \
    INSERT INTO ty.all_types (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d65, d10, f, db, dt, tm, dtm, ts, y, \
      c, vc, tx, c1, vc1, tx1, bn, vb, bl, lb, e, s, b1, b64, j) VALUES \
    (0, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, \
     -99999999999999999999999999999999999.999999999999999999999999999999, -99999999.99, -3.40282e38, \
     -1.7976931348623157e308, '1000-01-01', '-838:59:59.000000', '1000-01-01 00:00:00.000000', \
     '1970-01-01 00:00:01.000000', 1901, 'a', 'b', 'c', 'é', 'ü', 'Ærø', 'x', 'y', 'z', 'w', 'a', 'x', 0, 0, '[]'), \
    (1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, \
     18446744073709551615, 99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99, \
     3.40282e38, 1e308, '9999-12-31', '838:59:59.999999', '9999-12-31 23:59:59.999999', \
     '2038-01-19 03:14:07.999999', 2155, '😀中', '😀 emoji 中文 ✓', REPEAT('多字节😀', 500), 'éü', 'Grüße, é', \
     REPEAT('àéîõü', 300), 0xFF00FF00, 0xFFFF, REPEAT(0xFF00, 1000), REPEAT(0x00FF27, 30000), 'é', 'x,y,z', 1, \
     0xFFFFFFFFFFFFFFFF, '{\"k\": \"é😀\", \"n\": [1, 2.5, null], \"q\": \"it''s \\\\\\\"q\\\\\\\"\"}'), \
    (2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.000000000000000000000000000001, 0.01, 0.1, '-0', '0000-00-00', \
     '25:30:00.500000', '0000-00-00 00:00:00.000000', '2024-02-29 12:34:56.123456', 0, 'pad  ', 'pad  ', 'pad  ', \
     'sp  ', 'sp  ', 'sp  ', 0x00275C0A0D1AFF, 0x00275C0A0D1AFF00, 0x00275C0A0D1AFF, 0x5C00275C, 'b', 'y', 1, \
     0x8000000000000001, '{\"a\":1}'), \
    (3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.2345678, 0.30000000000000004, '2024-02-29', '-00:00:00.000001', \
     '2024-01-01 00:00:00.000001', '2000-01-01 00:00:00.000000', 2000, '', '', '', '', '', '', '', '', '', '', \
     '', '', 0, 1, '{}'), \
    (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), \
    (5, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -0.5, -0.5, 16777217, 2.2250738585072014e-308, '2024-12-31', \
     '00:00:00.999999', '1999-12-31 23:59:59.999999', '2037-12-31 23:59:59.500000', 1999, ' lead', ' lead', \
     ' lead', '\\\\back\\\\', 'q''uote', '\\r\\n\\Z', 0x5C, 0x27, 0x0D0A, 0x1A, 'a', 'x,z', 0, \
     0x00000000000000FF, '\"str\"'), \
    (6, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3.14, 3.14, 1e-38, 4.9e-324, '1999-01-01', '100:00:00.000000', \
     '2000-02-29 00:00:00.000000', '2030-06-15 06:30:00.000001', 1970, 'ü', 'ü', 'ü', 'ü', 'ü', 'ü', 'ü', \
     'ü', 'ü', 'ü', 'é', '', 1, 0, 'null')";

/// Values compared through functions that show the stored bytes and exact numbers.
const EXACT: &str = "SELECT id, HEX(c), HEX(vc), HEX(tx), HEX(c1), HEX(vc1), HEX(tx1), HEX(bn), HEX(vb), HEX(bl), \
    HEX(lb), HEX(b1), HEX(b64), CAST(f AS DOUBLE), CONCAT(db), CONCAT(d65), CONCAT(tm), CONCAT(dtm), \
    UNIX_TIMESTAMP(ts), CONCAT(dt), y, e + 0, s + 0, HEX(j), g_stored, HEX(g_virtual), \
    c IS NULL, vc IS NULL, bl IS NULL, LENGTH(c), LENGTH(vc) FROM ty.all_types ORDER BY id";

#[tokio::test]
async fn every_column_type_survives_the_copy_byte_for_byte() {
    // Small statements: several rows per statement but more than one statement.
    type_round_trip(connector(2, 1000, 4096, true)).await;
}

#[tokio::test]
async fn every_column_type_survives_the_copy_byte_for_byte_as_inserts_too() {
    type_round_trip(inserting_connector(2, 1000, 4096)).await;
}

async fn type_round_trip(c: MySqlConnector) {
    let (src, dst) = pair().await;
    let (s, d) = (src.addr(), dst.addr());
    src.exec(TYPES).await;
    src.exec(TYPE_ROWS).await;
    let p = plan(s, d, 2, databases(&[("ty", None)]));
    migrate(&c, &p).await;
    let cps = MemCheckpoints::default();
    let started = Instant::now();
    let summary = c.load(&p, &cps, &no_progress()).await.expect("load");
    eprintln!("types: {summary:?} in {:?}", started.elapsed());
    assert_eq!(summary.rows, 7);
    assert_eq!(summary.tables, 1);

    assert_eq!(same_rows(s, d, "SELECT * FROM ty.all_types ORDER BY id").await, 7);
    same_rows(s, d, EXACT).await;
    same_table(s, d, "ty.all_types").await;

    // Spot checks of the values themselves on the destination (not only equality).
    let hex = all(
        d,
        "SELECT HEX(c1), HEX(vc1), HEX(vb), HEX(bl), HEX(b64), HEX(c), HEX(vc), id FROM ty.all_types \
         WHERE id IN (0, 2, 1) ORDER BY id",
    )
    .await;
    let text = |v: &Value| match v {
        Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
        other => format!("{other:?}"),
    };
    assert_eq!(text(&hex[0][0]), "E9", "latin1 é stored as one byte");
    assert_eq!(text(&hex[0][1]), "FC", "latin1 ü stored as one byte");
    assert_eq!(text(&hex[1][0]), "E9FC");
    assert_eq!(text(&hex[1][5]), "F09F9880E4B8AD", "utf8mb4 emoji + CJK");
    assert_eq!(text(&hex[2][2]), "00275C0A0D1AFF00");
    assert_eq!(text(&hex[2][3]), "00275C0A0D1AFF");
    assert_eq!(text(&hex[2][4]), "8000000000000001");
    assert_eq!(text(&hex[2][5]), "706164", "CHAR drops trailing spaces");
    assert_eq!(text(&hex[2][6]), "7061642020", "VARCHAR keeps trailing spaces");
    assert_eq!(scalar(d, "SELECT COUNT(*) FROM ty.all_types WHERE id = 0").await, 1, "AUTO_INCREMENT value 0 kept");
    assert_eq!(scalar(d, "SELECT COUNT(*) FROM ty.all_types WHERE vc = '' AND id = 3").await, 1, "empty not NULL");
    assert_eq!(scalar(d, "SELECT COUNT(*) FROM ty.all_types WHERE vc IS NULL").await, 1);
    assert_eq!(scalar(d, "SELECT g_stored FROM ty.all_types WHERE id = 1").await, 2147483648);
    // FLOAT: 6 significant digits in the text protocol; the exact value must survive.
    let floats = "SELECT CAST(f AS DOUBLE), CONCAT(db), db < 0, CONCAT(f) FROM ty.all_types ORDER BY id";
    same_rows(s, d, floats).await;
    let floats = all(d, floats).await;
    eprintln!("float/double on the destination: {floats:?}");
    assert_eq!(text(&floats[3][0]), "1.2345677614212036", "FLOAT 1.2345678 kept exactly");
    let all_cols = all(d, &format!("SELECT {TYPE_COLUMNS} FROM ty.all_types WHERE id = 4")).await;
    assert!(all_cols[0][1..].iter().all(|v| *v == Value::NULL), "NULLs everywhere: {:?}", all_cols[0]);
}

#[tokio::test]
async fn tables_without_integer_keys_are_copied_exactly() {
    let (src, dst) = pair().await;
    let (s, d) = (src.addr(), dst.addr());
    src.exec(
        "CREATE DATABASE k; \
         CREATE TABLE k.nopk (a INT, b VARCHAR(10), c BLOB); \
         INSERT INTO k.nopk VALUES (1,'x',0x00),(1,'x',0x00),(1,'x',0x00),(2,NULL,NULL),(2,NULL,NULL), \
           (NULL,NULL,NULL),(NULL,NULL,NULL),(3,'',''),(3,'',''); \
         CREATE TABLE k.composite (a INT, b VARCHAR(20), c TEXT, PRIMARY KEY (a, b)); \
         INSERT INTO k.composite VALUES (1,'a','1a'),(1,'b','1b'),(2,'a',NULL),(-5,'',''),(1,'é','é'); \
         CREATE TABLE k.vcpk (code VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin PRIMARY KEY, v INT); \
         INSERT INTO k.vcpk VALUES ('a',1),('A',2),('a ',3),('😀',4),('',5),('it''s',6),('back\\\\slash',7); \
         CREATE TABLE k.uniq (id INT NULL, email VARCHAR(50), UNIQUE KEY (email), UNIQUE KEY (id)); \
         INSERT INTO k.uniq VALUES (1,'a@x'),(NULL,'b@x'),(NULL,NULL),(NULL,NULL),(4,NULL); \
         CREATE TABLE k.decpk (d DECIMAL(10,2) PRIMARY KEY, x INT); \
         INSERT INTO k.decpk VALUES (-1.5,1),(0,2),(99999999.99,3); \
         CREATE TABLE k.extremes (id BIGINT PRIMARY KEY, v INT); \
         INSERT INTO k.extremes VALUES (-9223372036854775808,1),(-5,2),(0,3),(7,4),(9223372036854775807,5); \
         CREATE TABLE k.uextremes (id BIGINT UNSIGNED PRIMARY KEY, v INT); \
         INSERT INTO k.uextremes VALUES (0,1),(1,2),(9223372036854775808,3),(18446744073709551615,4); \
         CREATE TABLE k.tiny (id TINYINT PRIMARY KEY); \
         INSERT INTO k.tiny VALUES (-128),(-1),(0),(1),(127); \
         CREATE TABLE k.empty (id INT PRIMARY KEY, v INT); \
         ANALYZE TABLE k.nopk, k.composite, k.vcpk, k.uniq, k.decpk, k.extremes, k.uextremes, k.tiny",
    )
    .await;
    let p = plan(s, d, 2, databases(&[("k", None)]));
    // chunk_rows 2: the integer-keyed tables are cut into several ranges; binlog off for the load.
    let c = connector(3, 2, 64, false);
    migrate(&c, &p).await;
    let before = all(d, "SHOW MASTER STATUS").await;
    let cps = MemCheckpoints::default();
    let summary = c.load(&p, &cps, &no_progress()).await.expect("load");
    eprintln!("keys: {summary:?}");
    assert_eq!(summary.tables, 9);
    assert_eq!(summary.rows, 9 + 5 + 7 + 5 + 3 + 5 + 4 + 5);
    assert!(summary.chunks > 9, "integer-keyed tables in several chunks: {summary:?}");
    assert_eq!(summary.chunks as usize, cps.done().len());
    for (t, n) in [
        ("k.nopk", 9),
        ("k.composite", 5),
        ("k.vcpk", 7),
        ("k.uniq", 5),
        ("k.decpk", 3),
        ("k.extremes", 5),
        ("k.uextremes", 4),
        ("k.tiny", 5),
        ("k.empty", 0),
    ] {
        assert_eq!(same_table(s, d, t).await, n, "{t}");
    }
    assert_eq!(scalar(d, "SELECT COUNT(*) FROM k.nopk WHERE a = 1 AND b = 'x'").await, 3, "duplicates kept");
    assert_eq!(before, all(d, "SHOW MASTER STATUS").await, "write_binlog: false keeps the rows out of the binlog");
}

async fn big_source(src: &ServerAddr, rows: u64) {
    src.exec(&format!(
        "CREATE DATABASE big; USE big; \
         CREATE TABLE big.t (id BIGINT NOT NULL PRIMARY KEY, payload VARCHAR(200), n DOUBLE, at DATETIME(6), \
           bin VARBINARY(16), KEY (at)); \
         INSERT INTO big.t SELECT seq, REPEAT(CHAR(65 + seq % 26), seq % 150), seq / 7, \
           '2024-01-01' + INTERVAL seq SECOND + INTERVAL seq % 1000 MICROSECOND, UNHEX(HEX(seq * 7919)) \
           FROM seq_1_to_{rows}; \
         DELETE FROM big.t WHERE id % 97 = 0; \
         CREATE TABLE big.logs (msg VARCHAR(100), at INT); \
         INSERT INTO big.logs SELECT CONCAT('line ', seq % 500), seq % 17 FROM seq_1_to_5000; \
         ANALYZE TABLE big.t, big.logs"
    ))
    .await;
}

/// Row-writing statements the server ran: INSERTs and LOAD DATAs.
async fn com_insert(addr: &ServerAddr) -> i64 {
    let rows: Vec<Vec<Value>> = all(addr, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_insert', 'Com_load')").await;
    rows.iter()
        .map(|r| match &r[1] {
            Value::Bytes(b) => String::from_utf8_lossy(b).parse::<i64>().unwrap(),
            other => panic!("{other:?}"),
        })
        .sum()
}

#[tokio::test]
async fn a_larger_table_is_cut_into_chunks_and_batches_under_a_brief_lock() {
    let (src, dst) = pair().await;
    let (s, d) = (src.addr(), dst.addr());
    big_source(s, 30_000).await;
    let expected = scalar(s, "SELECT COUNT(*) FROM big.t").await;
    let p = plan(s, d, 3, databases(&[("big", None)]));
    let c = connector(2, 1000, 16 * 1024, true);
    migrate(&c, &p).await;
    let inserts_before = com_insert(d).await;
    let cps = MemCheckpoints::default();
    let calls = Mutex::new(Vec::new());
    let progress = |done, total| calls.lock().unwrap().push((done, total));
    let started = Instant::now();
    let summary = c.load(&p, &cps, &progress).await.expect("load");
    let elapsed = started.elapsed();
    let statements = com_insert(d).await - inserts_before;
    eprintln!("big: {summary:?} in {elapsed:?}, {statements} INSERT statements");

    assert_eq!(summary.rows, expected as u64 + 5000);
    assert!(summary.chunks >= 20, "many chunks: {summary:?}");
    assert_eq!(summary.chunks as usize, cps.done().len());
    assert_eq!(summary.chunks_resumed, 0);
    assert!(statements as u64 > summary.chunks * 2, "several statements per chunk: {statements}");
    assert!(summary.bytes > 16 * 1024 * 30);
    assert!(summary.lock_held_micros < 50_000, "lock held {} µs", summary.lock_held_micros);
    let calls = calls.into_inner().unwrap();
    let (last_done, last_total) = *calls.last().expect("progress reported");
    assert_eq!(last_done, last_total);
    assert!(calls.len() > 10, "progress reported along the way: {}", calls.len());
    assert!(calls.iter().all(|(d, t)| d <= t && *t == last_total));

    let Position::Binlog(pos) = summary.position.clone() else { panic!("binlog position: {:?}", summary.position) };
    let logs = all(s, "SHOW BINARY LOGS").await;
    assert!(logs.iter().any(|r| r[0] == Value::Bytes(pos.file.clone().into_bytes())), "{pos:?} in {logs:?}");
    assert!(pos.offset > 4);
    let stored: dts_core::BinlogPosition =
        serde_json::from_str(cps.map().get(SNAPSHOT_KEY).expect("stored snapshot")).expect("snapshot json");
    assert_eq!(stored, pos);

    assert_eq!(same_rows(s, d, "SELECT * FROM big.t ORDER BY id").await as i64, expected);
    assert_eq!(same_table(s, d, "big.logs").await, 5000);
    assert_eq!(checksum(s, "big.t").await, checksum(d, "big.t").await);
}

/// Chunk `id`'s range from the stored plan: `(lower, upper)` with `None` as unbounded.
fn bounds(chunk: &serde_json::Value) -> (Option<i64>, Option<i64>) {
    let b = |k: &str| chunk[k].as_str().map(|s| s.parse::<i64>().unwrap());
    (b("lower"), b("upper"))
}

fn range_sql(key: &str, (lo, hi): (Option<i64>, Option<i64>)) -> String {
    let mut parts = vec!["1 = 1".to_string()];
    if let Some(lo) = lo {
        parts.push(format!("{key} >= {lo}"));
    }
    if let Some(hi) = hi {
        parts.push(format!("{key} < {hi}"));
    }
    parts.join(" AND ")
}

#[tokio::test]
async fn a_resumed_load_recopies_only_unfinished_chunks_and_clears_their_leftovers() {
    let (src, dst) = pair().await;
    let (s, d) = (src.addr(), dst.addr());
    big_source(s, 10_000).await;
    let p = plan(s, d, 3, databases(&[("big", None)]));
    let c = connector(2, 1000, 8 * 1024, true);
    migrate(&c, &p).await;
    let cps = MemCheckpoints::default();
    let first = c.load(&p, &cps, &no_progress()).await.expect("first load");
    eprintln!("first: {first:?}");
    let chunks = cps.chunks();
    let keyed: Vec<&serde_json::Value> = chunks.iter().filter(|c| c["table"] == "t").collect();
    assert!(keyed.len() >= 6, "{keyed:?}");
    assert_eq!(chunks.len(), keyed.len() + 1, "the keyless table is one chunk");

    // Simulate a crash: chunks 1, 3 and the last (open above) of big.t and the keyless table were
    // in flight. Their rows are partly missing, partly garbage, on the destination.
    let last = keyed.len() - 1;
    let unfinished = [1, 3, last];
    for &i in &unfinished {
        let range = range_sql("id", bounds(keyed[i]));
        cps.remove(&format!("{DONE_PREFIX}{}", keyed[i]["id"].as_str().unwrap()));
        let lo = bounds(keyed[i]).0.unwrap();
        let garbage = (lo / 97 + 1) * 97; // deleted on the source: a row that must not exist
        dst.exec(&format!(
            "DELETE FROM big.t WHERE {range} AND id % 2 = 0; \
             UPDATE big.t SET payload = 'garbage', n = -1 WHERE {range} AND id % 3 = 0; \
             INSERT INTO big.t (id, payload) VALUES ({garbage}, 'garbage')"
        ))
        .await;
    }
    let logs_chunk = chunks.iter().find(|c| c["table"] == "logs").unwrap();
    cps.remove(&format!("{DONE_PREFIX}{}", logs_chunk["id"].as_str().unwrap()));
    dst.exec("DELETE FROM big.logs WHERE at = 3; INSERT INTO big.logs VALUES ('garbage', 1), ('line 1', 1)").await;
    // Rows the source gained above the old maximum belong to the open-ended last chunk.
    s.exec("INSERT INTO big.t (id, payload) VALUES (20000, 'late'), (20001, 'later')").await;
    assert_ne!(checksum(s, "big.t").await, checksum(d, "big.t").await);

    let done_before = cps.done().len() as u64;
    assert_eq!(done_before, chunks.len() as u64 - 4);
    let calls = Mutex::new(Vec::new());
    let progress = |done, total| calls.lock().unwrap().push((done, total));
    let second = c.load(&p, &cps, &progress).await.expect("resumed load");
    eprintln!("second: {second:?}");
    assert_eq!(second.chunks_resumed, done_before);
    assert_eq!(second.chunks, 4);
    assert_eq!(cps.done().len(), chunks.len());
    assert_eq!(cps.chunks(), chunks, "the stored plan is reused");
    assert_eq!(second.position, first.position, "the earliest snapshot position is kept");
    let calls = calls.into_inner().unwrap();
    assert!(calls.first().unwrap().0 > 0, "resumed chunks count as progress from the start: {calls:?}");
    assert_eq!(calls.last().unwrap().0, calls.last().unwrap().1);

    same_rows(s, d, "SELECT * FROM big.t ORDER BY id").await;
    same_table(s, d, "big.t").await;
    same_table(s, d, "big.logs").await;
    assert_eq!(scalar(d, "SELECT COUNT(*) FROM big.t WHERE payload = 'garbage'").await, 0);
    assert_eq!(scalar(d, "SELECT COUNT(*) FROM big.t WHERE id >= 20000").await, 2);

    // Everything done: a third run copies nothing.
    let third = c.load(&p, &cps, &no_progress()).await.expect("third load");
    assert_eq!((third.chunks, third.chunks_resumed, third.rows), (0, chunks.len() as u64, 0));
    same_table(s, d, "big.t").await;
}

#[tokio::test]
async fn concurrent_transactions_on_the_source_are_seen_all_or_nothing_across_tables_and_chunks() {
    let (src, dst) = pair().await;
    let (s, d) = (src.addr(), dst.addr());
    src.exec(
        "CREATE DATABASE bank; USE bank; \
         CREATE TABLE bank.acc (id INT PRIMARY KEY, bal BIGINT NOT NULL, pad CHAR(200) NOT NULL DEFAULT ''); \
         INSERT INTO bank.acc SELECT seq, 100, REPEAT('p', 150) FROM seq_0_to_19999; \
         CREATE TABLE bank.ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, a INT NOT NULL, b INT NOT NULL, \
           KEY (a), KEY (b)); \
         CREATE TABLE bank.mirror (id BIGINT PRIMARY KEY); \
         ANALYZE TABLE bank.acc",
    )
    .await;
    let p = plan(s, d, 3, databases(&[("bank", None)]));
    let c = connector(2, 1000, 16 * 1024, true);
    migrate(&c, &p).await;

    let stop = Arc::new(AtomicBool::new(false));
    let transfers = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, transfers, addr) = (stop.clone(), transfers.clone(), s.clone());
        tokio::spawn(async move {
            let mut conn = addr.conn().await;
            let mut k: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let (x, y) = ((k * 7919) % 20000, (k * 104_729 + 13) % 20000);
                conn.query_drop(format!(
                    "START TRANSACTION; UPDATE bank.acc SET bal = bal - 1 WHERE id = {x}; \
                     UPDATE bank.acc SET bal = bal + 1 WHERE id = {y}; \
                     INSERT INTO bank.ledger (a, b) VALUES ({x}, {y}); \
                     INSERT INTO bank.mirror VALUES (LAST_INSERT_ID()); COMMIT"
                ))
                .await
                .expect("transfer");
                transfers.fetch_add(1, Ordering::Relaxed);
            }
            let _ = conn.disconnect().await;
        })
    };
    while transfers.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_start = transfers.load(Ordering::Relaxed);
    let started = Instant::now();
    let summary = c.load(&p, &MemCheckpoints::default(), &no_progress()).await.expect("load");
    let during = transfers.load(Ordering::Relaxed) - at_start;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    eprintln!("bank: {summary:?} in {:?}, {during} transfers during the load", started.elapsed());
    assert!(during > 0, "the source was written to during the load");
    assert!(summary.chunks >= 10);

    assert_eq!(scalar(d, "SELECT COUNT(*) FROM bank.acc").await, 20000);
    assert_eq!(scalar(d, "SELECT CAST(SUM(bal) AS SIGNED) FROM bank.acc").await, 2_000_000, "money is conserved");
    let ledger = scalar(d, "SELECT COUNT(*) FROM bank.ledger").await;
    assert!(ledger >= at_start as i64, "{ledger} transfers copied");
    assert_eq!(
        all(d, "SELECT id FROM bank.ledger ORDER BY id").await,
        all(d, "SELECT id FROM bank.mirror ORDER BY id").await,
        "ledger and mirror hold the same transactions"
    );
    assert_eq!(
        scalar(
            d,
            "SELECT COUNT(*) FROM bank.acc WHERE bal <> 100 - (SELECT COUNT(*) FROM bank.ledger WHERE a = acc.id) \
             + (SELECT COUNT(*) FROM bank.ledger WHERE b = acc.id)",
        )
        .await,
        0,
        "every balance matches the copied ledger"
    );
    assert!(ledger < scalar(s, "SELECT COUNT(*) FROM bank.ledger").await, "later transfers are not in the snapshot");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_summary_of_our_own() {
    let (src, dst) = pair().await;
    let (s, d) = (src.addr(), dst.addr());
    src.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, v VARCHAR(10)); \
              INSERT INTO shop.items VALUES (1, 'a'), (2, 'b')",
    )
    .await;
    let c = connector(2, 1000, 1 << 20, true);

    let missing = plan(s, d, 2, databases(&[("shop", Some(&["items", "ghost"][..]))]));
    let err = c.load(&missing, &MemCheckpoints::default(), &no_progress()).await.expect_err("missing table");
    assert_eq!(err.class, ErrorClass::NeedsOperator, "{err:?}");
    assert!(err.summary.contains("`shop`.`ghost`"), "{err:?}");
    assert!(!err.summary.contains("items"), "{err:?}");

    let no_db = plan(s, d, 2, databases(&[("nowhere", None)]));
    let err = c.load(&no_db, &MemCheckpoints::default(), &no_progress()).await.expect_err("missing database");
    assert_eq!(err.class, ErrorClass::NeedsOperator, "{err:?}");

    // Structure not migrated: the destination table does not exist.
    let p = plan(s, d, 2, databases(&[("shop", None)]));
    let cps = MemCheckpoints::default();
    let err = c.load(&p, &cps, &no_progress()).await.expect_err("no destination table");
    eprintln!("missing destination table: {err:?}");
    assert_eq!(err.class, ErrorClass::NeedsOperator, "{err:?}");
    assert!(err.summary.contains("`shop`.`items`"), "{err:?}");
    assert!(err.summary.contains("destination"), "{err:?}");
    for raw in ["doesn't exist", "Unknown database", "Table '"] {
        assert!(!err.summary.contains(raw), "server text in the summary: {err:?}");
    }
    assert!(cps.done().is_empty(), "nothing recorded done");
    // Once the structure exists, the same checkpoints finish the job.
    migrate(&c, &p).await;
    let summary: LoadSummary = c.load(&p, &cps, &no_progress()).await.expect("load after structure");
    assert_eq!(summary.rows, 2);
    same_table(s, d, "shop.items").await;
}

#[tokio::test]
async fn a_value_the_destination_cannot_hold_fails_the_chunk_on_both_write_paths_and_loads_nothing() {
    let (src, dst) = pair().await;
    let (s, d) = (src.addr(), dst.addr());
    src.exec(
        "CREATE DATABASE tight; \
         CREATE TABLE tight.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, n INT NOT NULL, \
           e ENUM('a','b') NULL); \
         SET SESSION sql_mode = ''; \
         INSERT INTO tight.t VALUES (1, 'short', 1, 'a'), (2, 'much longer text', 2, 'zz'), (3, 'x', 300, 'b')",
    )
    .await;
    let p = plan(s, d, 2, databases(&[("tight", None)]));
    for (c, path) in
        [(connector(1, 1000, 1 << 20, true), "load data"), (inserting_connector(1, 1000, 1 << 20), "inserts")]
    {
        migrate(&c, &p).await;
        // Row 2 has the ENUM's error value '' (the source is not strict): copied as it is.
        let ok = c.load(&p, &MemCheckpoints::default(), &no_progress()).await.expect("an ENUM error value is data");
        assert_eq!(ok.rows, 3, "{path}");
        assert_eq!(same_table(s, d, "tight.t").await, 3, "{path}");

        for (alter, why) in [
            ("MODIFY v VARCHAR(6) NOT NULL", "data truncated"),
            ("MODIFY n TINYINT NOT NULL", "value out of range"),
            ("MODIFY e ENUM('a') NULL", "data truncated"),
        ] {
            dst.exec(&format!("DELETE FROM tight.t; ALTER TABLE tight.t {alter}")).await;
            let err = c.load(&p, &MemCheckpoints::default(), &no_progress()).await.expect_err(alter);
            assert_eq!(err.class, ErrorClass::NeedsOperator, "{path} {alter}: {err:?}");
            assert!(err.summary.contains("`tight`.`t`"), "{path} {alter}: {err:?}");
            if path == "load data" {
                assert!(err.summary.contains(why), "{path} {alter}: {err:?}");
            }
            assert_eq!(scalar(d, "SELECT COUNT(*) FROM tight.t").await, 0, "{path} {alter}: nothing loaded");
            dst.exec("DROP DATABASE tight").await;
            migrate(&c, &p).await;
        }
        dst.exec("DROP DATABASE tight").await;
    }
}
