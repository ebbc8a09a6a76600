//! Every MySQL/MariaDB column type through the whole change-tracking path: rows inserted,
//! updated and deleted on a real MariaDB, read from its binlog by `dts serve` (a subscription
//! made with the Tencent SDK) and published; then read by a consumer. With Debezium JSON on NATS
//! (read with `dts subscribe tail --group`) each `after`/`before` value is asserted exactly:
//! integers as numbers (BIGINT UNSIGNED beyond i64 too), DECIMAL as its text, FLOAT/DOUBLE as
//! the shortest text of the stored float, DATE as days, DATETIME(6) and TIME(6) (negative ones
//! too) as µs, TIMESTAMP(6) as UTC text, text with emoji as UTF-8, binary bytes (non-UTF-8) as
//! base64, JSON documents as JSON text, NULLs as null. With Alibaba's Avro record on Kafka
//! (the raw record decoded with apache-avro and the record schema) each image element's union
//! branch and typed fields are asserted, and the column type numbers.
//!
//! Both also check each event's source transaction: every statement of the changes is its own
//! transaction, so their events carry consecutive GTIDs, the last the one the server reports
//! afterwards (`@@gtid_binlog_pos`): Debezium's `source.gtid` and `transaction` block, Alibaba's
//! `sourceTxid` on the row and on its COMMIT record.
//!
//! The bus-level tests of `dts-bus` encode hand-made events; these check what the binlog
//! decoder and the server make of real rows.

mod sdk_script;
mod tracking_support;

use std::time::{Duration, Instant};

use apache_avro::Schema;
use apache_avro::schema::UnionSchema;
use apache_avro::types::Value as Avro;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::NaiveDate;
use dts_bus::{Consumer, MessageKind, StartAt};
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};
use tracking_support::{Bus, Tracking, changes};

const SETUP: &str = "CREATE DATABASE ty;
    CREATE TABLE ty.all_types (
      id INT PRIMARY KEY,
      ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
      mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
      de DECIMAL(20,6), f FLOAT, d DOUBLE, b1 BIT(1), b12 BIT(12),
      da DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), y YEAR,
      c CHAR(8) CHARACTER SET utf8mb4, vc VARCHAR(64) CHARACTER SET utf8mb4,
      bn BINARY(4), vb VARBINARY(16), bl BLOB, tb TINYBLOB, lb LONGBLOB, tx TEXT CHARACTER SET utf8mb4,
      e ENUM('small','medium','large'), s SET('red','green','blue'), j JSON
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// Row 1 holds the types' lowest values, row 2 their highest, row 3 only NULLs; row 1 is then
/// updated (a negative TIME under one second, an unsigned BIGINT just beyond i64, a FLOAT that
/// is not exact in binary, ...) and row 2 deleted. Times are written in UTC.
const CHANGES: &str = "SET time_zone = '+00:00';
    INSERT INTO ty.all_types VALUES (1,
      -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
      -99999999999999.999999, -1.5, -2.718281828459045, b'0', b'000000000001',
      '1000-01-01', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01.000001', '-838:59:58.999999', 1901,
      'héllo', 'Ünïcödé 😀 ✓', x'00FF80', x'DEADBEEF00FF', x'FFFE00C3', x'80', x'00', 'line one\\nline two',
      'small', 'red,blue', '{\"a\": [1, 2.5, \"x\"], \"b\": null, \"c\": {\"d\": true}}');
    INSERT INTO ty.all_types VALUES (2,
      127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807,
      18446744073709551615,
      99999999999999.999999, 3.25, 1.7976931348623157e308, b'1', b'101010101010',
      '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59.000000', 2155,
      '', '😀', x'01020304', x'', x'', x'', x'', '',
      'large', '', '[]');
    INSERT INTO ty.all_types (id) VALUES (3);
    UPDATE ty.all_types SET bu = 9223372036854775808, de = 0.5, f = 0.1, tm = '-00:00:00.500000',
      ts = NULL, vc = 'changed ✓', bl = x'00', s = 'green', j = '{\"k\": \"v\"}' WHERE id = 1;
    DELETE FROM ty.all_types WHERE id = 2";

fn b64(bytes: &[u8]) -> Value {
    json!(BASE64.encode(bytes))
}

/// Days from 1970-01-01 to a date.
fn days(y: i32, m: u32, d: u32) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    (NaiveDate::from_ymd_opt(y, m, d).expect("a date") - epoch).num_days()
}

/// Microseconds from the epoch to a UTC date and time.
fn micros(y: i32, m: u32, d: u32, h: i64, mi: i64, s: i64, us: i64) -> i64 {
    ((days(y, m, d) * 24 + h) * 60 + mi) * 60 * 1_000_000 + s * 1_000_000 + us
}

/// The Debezium `after` images of rows 1 (as inserted), 2 and 3, and of row 1 updated.
fn debezium_rows() -> [Value; 4] {
    let json_doc = r#"{"a": [1, 2.5, "x"], "b": null, "c": {"d": true}}"#;
    let row1 = json!({
        "id": 1, "ti": -128, "tu": 0, "si": -32768, "su": 0, "mi": -8_388_608, "mu": 0,
        "i": -2_147_483_648i64, "iu": 0, "bi": i64::MIN, "bu": 0,
        "de": "-99999999999999.999999", "f": -1.5, "d": -std::f64::consts::E,
        "b1": false, "b12": b64(&[0x01, 0x00]),
        "da": days(1000, 1, 1), "dt": micros(1000, 1, 1, 0, 0, 0, 1), "ts": "1970-01-01T00:00:01.000001Z",
        "tm": -(((838 * 60 + 59) * 60 + 58) * 1_000_000i64 + 999_999), "y": 1901,
        "c": "héllo", "vc": "Ünïcödé 😀 ✓", "bn": b64(&[0x00, 0xFF, 0x80, 0x00]),
        "vb": b64(&[0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0xFF]), "bl": b64(&[0xFF, 0xFE, 0x00, 0xC3]),
        "tb": b64(&[0x80]), "lb": b64(&[0x00]), "tx": "line one\nline two",
        "e": "small", "s": "red,blue", "j": json_doc,
    });
    let row2 = json!({
        "id": 2, "ti": 127, "tu": 255, "si": 32767, "su": 65535, "mi": 8_388_607, "mu": 16_777_215,
        "i": 2_147_483_647, "iu": 4_294_967_295u64, "bi": i64::MAX, "bu": u64::MAX,
        "de": "99999999999999.999999", "f": 3.25, "d": f64::MAX,
        "b1": true, "b12": b64(&[0xAA, 0x0A]),
        "da": days(9999, 12, 31), "dt": micros(9999, 12, 31, 23, 59, 59, 999_999),
        "ts": "2038-01-19T03:14:07.999999Z", "tm": (838 * 3600 + 59 * 60 + 59) * 1_000_000i64, "y": 2155,
        "c": "", "vc": "😀", "bn": b64(&[1, 2, 3, 4]), "vb": "", "bl": "", "tb": "", "lb": "", "tx": "",
        "e": "large", "s": "", "j": "[]",
    });
    let mut row3 = json!({ "id": 3 });
    for column in row1.as_object().expect("an object").keys().filter(|k| *k != "id") {
        row3[column] = Value::Null;
    }
    let mut updated = row1.clone();
    for (k, v) in [
        ("bu", json!(9_223_372_036_854_775_808u64)),
        ("de", json!("0.500000")),
        ("f", json!(0.1)),
        ("tm", json!(-500_000)),
        ("ts", Value::Null),
        ("vc", json!("changed ✓")),
        ("bl", b64(&[0x00])),
        ("s", json!("green")),
        ("j", json!(r#"{"k": "v"}"#)),
    ] {
        updated[k] = v;
    }
    [row1, row2, row3, updated]
}

/// `v` with its JSON column's text parsed (so documents compare as JSON, not as text).
fn with_json_parsed(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(text) = v["j"].as_str() {
        v["j"] = serde_json::from_str(text).unwrap_or_else(|e| panic!("column j is not a JSON document ({e}): {text}"));
    }
    v
}

fn assert_image(got: &Value, want: &Value, what: &str) {
    let (got, want) = (with_json_parsed(got), with_json_parsed(want));
    let (g, w) = (got.as_object().expect("an image"), want.as_object().expect("an image"));
    assert_eq!(g.keys().collect::<Vec<_>>(), w.keys().collect::<Vec<_>>(), "{what}: the columns");
    let wrong: Vec<String> = w
        .iter()
        .filter(|(column, value)| &g[*column] != *value)
        .map(|(column, value)| format!("{column}: got {}, want {value}", g[column]))
        .collect();
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
}

/// The source's GTID position (`domain-server-seq` of its one domain).
async fn gtid_binlog_pos(t: &Tracking) -> String {
    let mut conn = t.src.conn().await;
    let pos: Option<String> = conn.query_first("SELECT @@gtid_binlog_pos").await.expect("read @@gtid_binlog_pos");
    pos.expect("a GTID position")
}

/// The GTIDs of the `n` transactions after position `before` (one domain, one server).
fn next_gtids(before: &str, n: u64) -> Vec<String> {
    let (prefix, seq) = before.rsplit_once('-').expect("domain-server-seq");
    let seq: u64 = seq.parse().expect("a sequence number");
    (1..=n).map(|i| format!("{prefix}-{}", seq + i)).collect()
}

/// A running subscription after [`CHANGES`], and the GTIDs of the changes' five transactions
/// (the last one also what the source reports after them).
async fn started(bus: Bus, format: &str) -> (Tracking, Vec<String>) {
    let t = tracking_support::start(bus, format, SETUP, "ty").await;
    let before = gtid_binlog_pos(&t).await;
    t.src.exec(CHANGES).await;
    let gtids = next_gtids(&before, 5);
    assert_eq!(gtid_binlog_pos(&t).await, gtids[4], "five transactions after {before}");
    (t, gtids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_reaches_a_nats_consumer_as_debezium_json_with_exact_values() {
    let (t, gtids) = started(Bus::nats(), "json").await;
    // Three inserts, an update, a delete and its tombstone.
    let lines = t.tail(&["--group", &t.sub, "--limit", "6", "--idle-exit", "30"]);
    let got = changes(&lines);
    let ops: Vec<(&str, &str)> =
        got.iter().map(|l| (l["kind"].as_str().unwrap_or(""), l["value"]["op"].as_str().unwrap_or("-"))).collect();
    assert_eq!(
        ops,
        [("insert", "c"), ("insert", "c"), ("insert", "c"), ("update", "u"), ("delete", "d"), ("tombstone", "-")],
        "{lines:#?}\n{}",
        t.server.log()
    );
    let [row1, row2, row3, updated] = debezium_rows();
    assert_image(&got[0]["value"]["after"], &row1, "insert of row 1");
    assert_image(&got[1]["value"]["after"], &row2, "insert of row 2");
    assert_image(&got[2]["value"]["after"], &row3, "insert of row 3");
    assert_image(&got[3]["value"]["before"], &row1, "update of row 1, before");
    assert_image(&got[3]["value"]["after"], &updated, "update of row 1, after");
    assert_image(&got[4]["value"]["before"], &row2, "delete of row 2");
    assert!(got[4]["value"]["after"].is_null());
    assert_eq!(got.iter().map(|l| l["key"]["id"].clone()).collect::<Vec<_>>(), [1, 2, 3, 1, 2, 2].map(Value::from));
    for (l, gtid) in got.iter().zip(&gtids) {
        assert_eq!(l["value"]["source"]["gtid"], json!(gtid), "{l}");
        assert_eq!(l["value"]["transaction"], json!({"id": gtid, "total_order": 1, "data_collection_order": 1}));
    }
    assert!(changes(&t.tail(&["--group", &t.sub, "--idle-exit", "2"])).is_empty(), "nothing more");
}

/// An Avro image element as `{"<union branch>": {fields}}` (bytes as hex), or null.
fn typed(v: &Avro, branches: &UnionSchema) -> Value {
    let Avro::Union(index, inner) = v else { panic!("an image element is a union: {v:?}") };
    let name = match &branches.variants()[*index as usize] {
        Schema::Null => return Value::Null,
        Schema::Record(r) => r.name.name.clone(),
        Schema::Ref { name } => name.name.clone(),
        Schema::Enum(e) => e.name.name.clone(),
        other => panic!("an unexpected branch {other:?}"),
    };
    let Avro::Record(fields) = inner.as_ref() else { panic!("a {name} is a record: {inner:?}") };
    let plain = |v: &Avro| -> Value {
        match v {
            Avro::Null => Value::Null,
            Avro::Union(_, x) if matches!(x.as_ref(), Avro::Null) => Value::Null,
            Avro::Union(_, x) => match x.as_ref() {
                Avro::Int(i) => json!(i),
                other => panic!("{other:?}"),
            },
            Avro::Int(i) => json!(i),
            Avro::Long(l) => json!(l),
            Avro::Double(d) => json!(d),
            Avro::String(s) => json!(s),
            Avro::Bytes(b) => json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
            other => panic!("an unexpected field value {other:?}"),
        }
    };
    json!({ name: fields.iter().map(|(k, v)| (k.clone(), plain(v))).collect::<serde_json::Map<_, _>>() })
}

fn record_field<'a>(record: &'a Avro, name: &str) -> &'a Avro {
    let Avro::Record(fields) = record else { panic!("a record: {record:?}") };
    &fields.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no field {name}")).1
}

/// A record's `operation`.
fn operation(record: &Avro) -> String {
    match record_field(record, "operation") {
        Avro::Enum(_, s) => s.clone(),
        other => panic!("{other:?}"),
    }
}

/// `beforeImages`/`afterImages` as typed elements (null when absent).
fn images(record: &Avro, name: &str, branches: &UnionSchema) -> Value {
    match record_field(record, name) {
        Avro::Union(0, _) => Value::Null,
        Avro::Union(_, array) => match array.as_ref() {
            Avro::Array(items) => Value::Array(items.iter().map(|v| typed(v, branches)).collect()),
            other => panic!("{name} is an array: {other:?}"),
        },
        other => panic!("{name} is a union: {other:?}"),
    }
}

fn int(value: &str) -> Value {
    json!({ "Integer": { "value": value } })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|x| format!("{x:02x}")).collect()
}

fn date_time(parts: [Option<i64>; 7]) -> Value {
    let names = ["year", "month", "day", "hour", "minute", "second", "millis"];
    json!({ "DateTime": names.iter().zip(parts).map(|(n, p)| (n.to_string(), json!(p))).collect::<serde_json::Map<_, _>>() })
}

fn character(charset: &str, bytes: &[u8]) -> Value {
    json!({ "Character": { "charset": charset, "value": hex(bytes) } })
}

fn object(branch: &str, kind: &str, value: Value) -> Value {
    json!({ branch: { "type": kind, "value": value } })
}

/// The typed images of rows 1, 2, 3 and row 1 updated, in column order; `Integer` elements
/// without their `precision` (a display width the record leaves to the server).
fn avro_rows() -> [Vec<Value>; 4] {
    let float = |v: f64| json!({ "Float": { "value": v, "precision": 12, "scale": 0 } });
    let double = |v: f64| json!({ "Float": { "value": v, "precision": 22, "scale": 0 } });
    let decimal = |v: &str| json!({ "Decimal": { "value": v, "precision": 20, "scale": 6 } });
    let ts = |s: i64, us: i64| json!({ "Timestamp": { "timestamp": s, "millis": us } });
    let date = |y, m, d| date_time([Some(y), Some(m), Some(d), None, None, None, None]);
    let dt = |y, m, d, h, mi, s, us| date_time([Some(y), Some(m), Some(d), Some(h), Some(mi), Some(s), Some(us)]);
    let time = |h, mi, s, us| date_time([None, None, None, Some(h), Some(mi), Some(s), Some(us)]);
    let year = |y| date_time([Some(y), None, None, None, None, None, None]);
    let blob = |b: &[u8]| object("BinaryObject", "BLOB", json!(hex(b)));
    let text_blob = |t: &str| object("BinaryObject", "TEXT", json!(hex(t.as_bytes())));
    let doc = r#"{"a": [1, 2.5, "x"], "b": null, "c": {"d": true}}"#;
    let row1 = vec![
        int("1"),
        int("-128"),
        int("0"),
        int("-32768"),
        int("0"),
        int("-8388608"),
        int("0"),
        int("-2147483648"),
        int("0"),
        int("-9223372036854775808"),
        int("0"),
        decimal("-99999999999999.999999"),
        float(-1.5),
        double(-std::f64::consts::E),
        int("0"),
        int("1"),
        date(1000, 1, 1),
        dt(1000, 1, 1, 0, 0, 0, 1),
        ts(1, 1),
        time(-838, -59, -58, -999_999),
        year(1901),
        character("utf8mb4", "héllo".as_bytes()),
        character("utf8mb4", "Ünïcödé 😀 ✓".as_bytes()),
        character("binary", &[0x00, 0xFF, 0x80, 0x00]),
        character("binary", &[0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0xFF]),
        blob(&[0xFF, 0xFE, 0x00, 0xC3]),
        blob(&[0x80]),
        blob(&[0x00]),
        text_blob("line one\nline two"),
        object("TextObject", "ENUM", json!("small")),
        object("TextObject", "SET", json!("red,blue")),
        text_blob(doc),
    ];
    let row2 = vec![
        int("2"),
        int("127"),
        int("255"),
        int("32767"),
        int("65535"),
        int("8388607"),
        int("16777215"),
        int("2147483647"),
        int("4294967295"),
        int("9223372036854775807"),
        int("18446744073709551615"),
        decimal("99999999999999.999999"),
        float(3.25),
        double(f64::MAX),
        int("1"),
        int("2730"),
        date(9999, 12, 31),
        dt(9999, 12, 31, 23, 59, 59, 999_999),
        ts(2_147_483_647, 999_999),
        time(838, 59, 59, 0),
        year(2155),
        character("utf8mb4", b""),
        character("utf8mb4", "😀".as_bytes()),
        character("binary", &[1, 2, 3, 4]),
        character("binary", b""),
        blob(b""),
        blob(b""),
        blob(b""),
        text_blob(""),
        object("TextObject", "ENUM", json!("large")),
        object("TextObject", "SET", json!("")),
        text_blob("[]"),
    ];
    let mut row3 = vec![Value::Null; row1.len()];
    row3[0] = int("3");
    let mut updated = row1.clone();
    for (i, v) in [
        (10, int("9223372036854775808")),
        (11, decimal("0.500000")),
        (12, float(f64::from(0.1f32))),
        (19, time(0, 0, 0, -500_000)),
        (18, Value::Null),
        (22, character("utf8mb4", "changed ✓".as_bytes())),
        (25, blob(&[0x00])),
        (30, object("TextObject", "SET", json!("green"))),
        (31, text_blob(r#"{"k": "v"}"#)),
    ] {
        updated[i] = v;
    }
    [row1, row2, row3, updated]
}

/// The column type numbers of `fields`: MySQL's type codes, a BLOB or TEXT column's by its
/// declared size (TINYBLOB 249, BLOB and TEXT 252, LONGBLOB and MariaDB's JSON, a LONGTEXT, 251).
const TYPE_NUMBERS: [(&str, i64); 32] = [
    ("id", 3),
    ("ti", 1),
    ("tu", 1),
    ("si", 2),
    ("su", 2),
    ("mi", 9),
    ("mu", 9),
    ("i", 3),
    ("iu", 3),
    ("bi", 8),
    ("bu", 8),
    ("de", 246),
    ("f", 4),
    ("d", 5),
    ("b1", 16),
    ("b12", 16),
    ("da", 10),
    ("dt", 12),
    ("ts", 7),
    ("tm", 11),
    ("y", 13),
    ("c", 254),
    ("vc", 15),
    ("bn", 254),
    ("vb", 15),
    ("bl", 252),
    ("tb", 249),
    ("lb", 251),
    ("tx", 252),
    ("e", 247),
    ("s", 248),
    ("j", 251),
];

/// Drops `precision` from `Integer` elements (see [`avro_rows`]).
fn without_integer_precision(mut v: Value) -> Value {
    if let Some(fields) = v.get_mut("Integer").and_then(Value::as_object_mut) {
        fields.remove("precision");
    }
    v
}

fn assert_avro_image(got: &Value, want: &[Value], what: &str) {
    let got = got.as_array().unwrap_or_else(|| panic!("{what}: an image array: {got}"));
    assert_eq!(got.len(), want.len(), "{what}: one element per column");
    let wrong: Vec<String> = TYPE_NUMBERS
        .iter()
        .zip(got.iter().zip(want))
        .filter(|(_, (g, w))| &without_integer_precision((*g).clone()) != *w)
        .map(|((column, _), (g, w))| format!("{column}: got {g}, want {w}"))
        .collect();
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_reaches_a_kafka_consumer_as_alibaba_avro_with_typed_values() {
    let (t, gtids) = started(Bus::kafka().await, "avro").await;
    let schema = Schema::parse_str(dts_bus::alibaba::RECORD_SCHEMA).expect("the record schema");
    let Schema::Record(record) = &schema else { panic!("a record schema") };
    let images_field = record.fields.iter().find(|f| f.name == "afterImages").expect("afterImages");
    let Schema::Union(images_union) = &images_field.schema else { panic!("afterImages is a union") };
    let Some(Schema::Array(array)) = images_union.variants().get(2) else { panic!("afterImages' third branch") };
    let Schema::Union(branches) = array.items.as_ref() else { panic!("image elements are a union") };

    let mut consumer = Consumer::open(&t.bus.config(), &t.job, StartAt::Beginning).await.expect("open the topic");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut rows, mut others) = (Vec::new(), Vec::new());
    while others.len() < 5 {
        assert!(Instant::now() < deadline, "records missing: {} rows read\n{}", rows.len(), t.server.log());
        for d in consumer.next_batch(64, Duration::from_millis(500)).await.expect("read the topic") {
            if d.kind == Some(MessageKind::Heartbeat) {
                continue;
            }
            let payload = d.payload.expect("a record");
            let value = apache_avro::from_avro_datum(&schema, &mut &payload[..], None).expect("an Avro record");
            if matches!(d.kind, Some(MessageKind::Insert | MessageKind::Update | MessageKind::Delete)) {
                rows.push(value);
            } else {
                others.push(value);
            }
        }
    }
    // Each row's transaction: the row, then its COMMIT, with its GTID.
    let txids = |records: &[Avro]| -> Vec<(String, String)> {
        records
            .iter()
            .map(|r| match record_field(r, "sourceTxid") {
                Avro::String(txid) => (operation(r), txid.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(txids(&rows).into_iter().map(|(_, g)| g).collect::<Vec<_>>(), gtids);
    let commits: Vec<(String, String)> = gtids.iter().map(|g| ("COMMIT".to_string(), g.clone())).collect();
    assert_eq!(txids(&others), commits);
    let operations: Vec<String> = rows.iter().map(operation).collect();
    assert_eq!(operations, ["INSERT", "INSERT", "INSERT", "UPDATE", "DELETE"]);
    for r in &rows {
        assert_eq!(record_field(r, "objectName"), &Avro::Union(1, Box::new(Avro::String("ty.all_types".into()))));
        let Avro::Union(2, fields) = record_field(r, "fields") else { panic!("fields is an array") };
        let Avro::Array(fields) = fields.as_ref() else { panic!("fields is an array") };
        let got: Vec<(String, i64)> = fields
            .iter()
            .map(|f| match (record_field(f, "name"), record_field(f, "dataTypeNumber")) {
                (Avro::String(n), Avro::Int(t)) => (n.clone(), i64::from(*t)),
                other => panic!("{other:?}"),
            })
            .collect();
        let want: Vec<(String, i64)> = TYPE_NUMBERS.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        assert_eq!(got, want, "the columns and their type numbers");
    }
    let [row1, row2, row3, updated] = avro_rows();
    let after = |i: usize| images(&rows[i], "afterImages", branches);
    let before = |i: usize| images(&rows[i], "beforeImages", branches);
    assert_avro_image(&after(0), &row1, "insert of row 1");
    assert_avro_image(&after(1), &row2, "insert of row 2");
    assert_avro_image(&after(2), &row3, "insert of row 3");
    assert_eq!(before(0), Value::Null, "an insert has no before image");
    assert_avro_image(&before(3), &row1, "update of row 1, before");
    assert_avro_image(&after(3), &updated, "update of row 1, after");
    assert_avro_image(&before(4), &row2, "delete of row 2");
    assert_eq!(after(4), Value::Null, "a delete has no after image");
}
