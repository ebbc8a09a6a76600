//! Shared fixtures: a table with every MySQL column type dts supports (the list of the type
//! round-trip table of the MySQL connector's tests, plus GEOMETRY, DATETIME(3) and
//! TIMESTAMP(0)) and its rows as the binlog reader hands them over, events built from them,
//! and decoders from both formats back to typed values.

use std::sync::Arc;

use apache_avro::types::Value as Avro;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use dts_bus::temporal;
use dts_core::change::{ChangeEvent, ChangeKind, ColumnInfo, RowChange, RowOp, UniqueKey, Value, mysql_type as ty};
use dts_core::{BinlogPosition, Position};

fn col(name: &str, data_type: &str, code: u16) -> ColumnInfo {
    let mut c = ColumnInfo::new(name, data_type, code);
    c.unsigned = data_type.contains("unsigned");
    c
}

fn text(mut c: ColumnInfo, charset: &str) -> ColumnInfo {
    c.charset = Some(charset.into());
    c
}

fn sized(mut c: ColumnInfo, precision: Option<u32>, scale: Option<u32>) -> ColumnInfo {
    c.precision = precision;
    c.scale = scale;
    c
}

/// The columns of `ty.all_types`.
pub fn columns() -> Arc<[ColumnInfo]> {
    let mut id = col("id", "int", ty::LONG);
    id.key = true;
    id.nullable = false;
    vec![
        id,
        col("ti", "tinyint", ty::TINY),
        col("tiu", "tinyint unsigned", ty::TINY),
        col("si", "smallint", ty::SHORT),
        col("siu", "smallint unsigned", ty::SHORT),
        col("mi", "mediumint", ty::INT24),
        col("miu", "mediumint unsigned", ty::INT24),
        col("i", "int", ty::LONG),
        col("iu", "int unsigned", ty::LONG),
        col("bi", "bigint", ty::LONGLONG),
        col("biu", "bigint unsigned", ty::LONGLONG),
        sized(col("d65", "decimal(65,30)", ty::NEWDECIMAL), Some(65), Some(30)),
        sized(col("d10", "decimal(10,2)", ty::NEWDECIMAL), Some(10), Some(2)),
        col("f", "float", ty::FLOAT),
        col("db", "double", ty::DOUBLE),
        col("dt", "date", ty::DATE),
        sized(col("tm", "time(6)", ty::TIME), None, Some(6)),
        sized(col("dtm", "datetime(6)", ty::DATETIME), None, Some(6)),
        sized(col("ts", "timestamp(6)", ty::TIMESTAMP), None, Some(6)),
        col("y", "year", ty::YEAR),
        text(sized(col("c", "char(10)", ty::STRING), Some(10), None), "utf8mb4"),
        text(sized(col("vc", "varchar(100)", ty::VARCHAR), Some(100), None), "utf8mb4"),
        text(col("tx", "text", ty::BLOB), "utf8mb4"),
        text(col("c1", "char(10)", ty::STRING), "latin1"),
        text(col("vc1", "varchar(100)", ty::VARCHAR), "latin1"),
        text(col("tx1", "text", ty::BLOB), "latin1"),
        col("bn", "binary(8)", ty::STRING),
        col("vb", "varbinary(64)", ty::VARCHAR),
        col("bl", "blob", ty::BLOB),
        col("lb", "longblob", ty::LONG_BLOB),
        // ENUM and SET as the binlog logs them (254), told apart by their declared type.
        text(col("e", "enum('a','b','é')", ty::STRING), "utf8mb4"),
        text(col("s", "set('x','y','z')", ty::SET), "utf8mb4"),
        sized(col("b1", "bit(1)", ty::BIT), Some(1), None),
        sized(col("b64", "bit(64)", ty::BIT), Some(64), None),
        col("j", "json", ty::JSON),
        col("g", "geometry", ty::GEOMETRY),
        // The binlog's storage codes, normalized by the Avro encoder.
        sized(col("dtm3", "datetime(3)", ty::DATETIME2), None, Some(3)),
        sized(col("ts0", "timestamp", ty::TIMESTAMP2), None, Some(0)),
    ]
    .into()
}

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

fn b(v: &[u8]) -> Value {
    Value::Bytes(v.to_vec())
}

fn d(s: &str) -> Value {
    Value::Decimal(s.into())
}

fn date(year: u16, month: u8, day: u8) -> Value {
    Value::Date { year, month, day }
}

fn time(negative: bool, hours: u32, minutes: u8, seconds: u8, micros: u32) -> Value {
    Value::Time { negative, hours, minutes, seconds, micros }
}

#[allow(clippy::too_many_arguments)]
fn dtm(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8, micros: u32) -> Value {
    Value::DateTime { year, month, day, hour, minute, second, micros }
}

fn ts(seconds: i64, micros: u32) -> Value {
    Value::Timestamp { seconds, micros }
}

fn set(members: &[&str]) -> Value {
    Value::Set(members.iter().map(|m| m.to_string()).collect())
}

fn point(srid: u32, x: f64, y: f64) -> Value {
    let mut v = srid.to_le_bytes().to_vec();
    v.extend_from_slice(&[1, 1, 0, 0, 0]);
    v.extend_from_slice(&x.to_le_bytes());
    v.extend_from_slice(&y.to_le_bytes());
    Value::Bytes(v)
}

/// The rows of `ty.all_types`: extremes, zero dates, multi-byte text, odd bytes, NULLs.
pub fn rows() -> Vec<Vec<Value>> {
    use Value::{Double, Enum, Float, Int, Json, Null, UInt, Year};
    let json = r#"{"k": "é😀", "n": [1, 2.5, null], "q": "it's \"q\""}"#;
    vec![
        vec![
            Int(0),
            Int(-128),
            Int(0),
            Int(-32768),
            Int(0),
            Int(-8_388_608),
            Int(0),
            Int(-2_147_483_648),
            Int(0),
            Int(i64::MIN),
            Int(0),
            d("-99999999999999999999999999999999999.999999999999999999999999999999"),
            d("-99999999.99"),
            Float(-3.40282e38),
            Double(-1.797_693_134_862_315_7e308),
            date(1000, 1, 1),
            time(true, 838, 59, 59, 0),
            dtm(1000, 1, 1, 0, 0, 0, 0),
            ts(1, 0),
            Year(1901),
            t("a"),
            t("b"),
            t("c"),
            t("é"),
            t("ü"),
            t("Ærø"),
            b(b"x\0\0\0\0\0\0\0"),
            b(b"y"),
            b(b"z"),
            b(b"w"),
            Enum("a".into()),
            set(&["x"]),
            b(&[0]),
            b(&[0; 8]),
            Json("[]".into()),
            point(0, 1.0, 2.0),
            dtm(2024, 2, 29, 1, 2, 3, 4000),
            ts(0, 0),
        ],
        vec![
            Int(1),
            Int(127),
            Int(255),
            Int(32767),
            Int(65535),
            Int(8_388_607),
            Int(16_777_215),
            Int(2_147_483_647),
            Int(4_294_967_295),
            Int(i64::MAX),
            UInt(u64::MAX),
            d("99999999999999999999999999999999999.999999999999999999999999999999"),
            d("99999999.99"),
            Float(3.40282e38),
            Double(1e308),
            date(9999, 12, 31),
            time(false, 838, 59, 59, 999_999),
            dtm(9999, 12, 31, 23, 59, 59, 999_999),
            ts(2_147_483_647, 999_999),
            Year(2155),
            t("😀中"),
            t("😀 emoji 中文 ✓"),
            t(&"多字节😀".repeat(500)),
            t("éü"),
            t("Grüße, é"),
            t(&"àéîõü".repeat(300)),
            b(&[0xFF, 0, 0xFF, 0, 0, 0, 0, 0]),
            b(&[0xFF, 0xFF]),
            b(&[0xFF, 0x00].repeat(1000)),
            b(&[0x00, 0xFF, 0x27].repeat(30000)),
            Enum("é".into()),
            set(&["x", "y", "z"]),
            b(&[1]),
            b(&[0xFF; 8]),
            Json(json.into()),
            point(4326, -71.06, 42.36),
            dtm(9999, 12, 31, 23, 59, 59, 999_000),
            ts(2_147_483_647, 0),
        ],
        vec![
            Int(2),
            Int(0),
            Int(0),
            Int(0),
            Int(0),
            Int(0),
            Int(0),
            Int(0),
            Int(0),
            Int(0),
            Int(0),
            d("0.000000000000000000000000000001"),
            d("0.01"),
            Float(0.1),
            Double(-0.0),
            date(0, 0, 0),
            time(false, 25, 30, 0, 500_000),
            dtm(0, 0, 0, 0, 0, 0, 0),
            ts(1_709_210_096, 123_456),
            Year(0),
            t("pad"),
            t("pad  "),
            t("pad  "),
            t("sp"),
            t("sp  "),
            t("sp  "),
            b(&[0, 0x27, 0x5C, 0x0A, 0x0D, 0x1A, 0xFF, 0]),
            b(&[0, 0x27, 0x5C, 0x0A, 0x0D, 0x1A, 0xFF, 0]),
            b(&[0, 0x27, 0x5C, 0x0A, 0x0D, 0x1A, 0xFF]),
            b(&[0x5C, 0, 0x27, 0x5C]),
            Enum("b".into()),
            set(&["y"]),
            b(&[1]),
            b(&[0x80, 0, 0, 0, 0, 0, 0, 1]),
            Json(r#"{"a":1}"#.into()),
            b(&[0, 0, 0, 0]),
            dtm(2024, 0, 0, 0, 0, 0, 0),
            ts(1_709_210_096, 0),
        ],
        vec![
            Int(3),
            Int(1),
            Int(1),
            Int(1),
            Int(1),
            Int(1),
            Int(1),
            Int(1),
            Int(1),
            Int(1),
            Int(1),
            d("1.000000000000000000000000000000"),
            d("1.00"),
            Float(1.234_567_8),
            Double(0.300_000_000_000_000_04),
            date(2024, 2, 29),
            time(true, 0, 0, 0, 1),
            dtm(2024, 1, 1, 0, 0, 0, 1),
            ts(946_684_800, 0),
            Year(2000),
            t(""),
            t(""),
            t(""),
            t(""),
            t(""),
            t(""),
            b(&[0; 8]),
            b(b""),
            b(b""),
            b(b""),
            Enum("".into()),
            set(&[]),
            b(&[0]),
            b(&[0, 0, 0, 0, 0, 0, 0, 1]),
            Json("{}".into()),
            point(0, 0.5, 0.5),
            dtm(1970, 1, 1, 0, 0, 0, 0),
            ts(946_684_800, 0),
        ],
        {
            let mut r = vec![Int(4)];
            r.resize(columns().len(), Null);
            r
        },
        vec![
            Int(5),
            Int(-1),
            Int(1),
            Int(-1),
            Int(1),
            Int(-1),
            Int(1),
            Int(-1),
            Int(1),
            Int(-1),
            Int(1),
            d("-0.500000000000000000000000000000"),
            d("-0.50"),
            Float(16_777_216.0),
            Double(2.225_073_858_507_201_4e-308),
            date(2024, 12, 31),
            time(false, 0, 0, 0, 999_999),
            dtm(1999, 12, 31, 23, 59, 59, 999_999),
            ts(2_145_916_799, 500_000),
            Year(1999),
            t(" lead"),
            t(" lead"),
            t(" lead"),
            t("\\back\\"),
            t("q'uote"),
            t("\r\n\x1a"),
            b(&[0x5C, 0, 0, 0, 0, 0, 0, 0]),
            b(&[0x27]),
            b(&[0x0D, 0x0A]),
            b(&[0x1A]),
            Enum("a".into()),
            set(&["x", "z"]),
            b(&[0]),
            b(&[0, 0, 0, 0, 0, 0, 0, 0xFF]),
            Json("\"str\"".into()),
            point(0, 0.0, -0.0),
            dtm(1969, 12, 31, 23, 59, 59, 999_000),
            ts(1, 0),
        ],
        vec![
            Int(6),
            Int(2),
            Int(2),
            Int(2),
            Int(2),
            Int(2),
            Int(2),
            Int(2),
            Int(2),
            Int(2),
            Int(2),
            d("3.140000000000000000000000000000"),
            d("3.14"),
            Float(1e-38),
            Double(4.9e-324),
            date(1999, 1, 1),
            time(false, 100, 0, 0, 0),
            dtm(2000, 2, 29, 0, 0, 0, 0),
            ts(1_907_735_400, 1),
            Year(1970),
            t("ü"),
            t("ü"),
            t("ü"),
            t("ü"),
            t("ü"),
            t("ü"),
            b(&[0xC3, 0xBC, 0, 0, 0, 0, 0, 0]),
            b("ü".as_bytes()),
            b("ü".as_bytes()),
            b("ü".as_bytes()),
            Enum("é".into()),
            set(&[]),
            b(&[1]),
            b(&[0; 8]),
            Json("null".into()),
            point(3857, 1e300, -1e-300),
            dtm(2000, 1, 1, 12, 0, 0, 123_000),
            ts(1_907_735_400, 0),
        ],
    ]
}

pub fn unique_keys() -> Arc<[UniqueKey]> {
    vec![UniqueKey { name: "uk_vc_c".into(), columns: vec!["vc".into(), "c".into()] }].into()
}

pub fn binlog(offset: u64) -> Position {
    Position::Binlog(BinlogPosition { file: "binlog.000042".into(), offset, gtid: None })
}

pub fn event(offset: u64, index: u32, transaction: Option<&str>, kind: ChangeKind) -> ChangeEvent {
    ChangeEvent {
        position: binlog(offset),
        index,
        timestamp_ms: 1_709_210_096_123 + offset as i64,
        server_id: 7,
        transaction: transaction.map(str::to_string),
        kind,
    }
}

pub fn row(
    database: &str,
    table: &str,
    op: RowOp,
    before: Option<Vec<Value>>,
    after: Option<Vec<Value>>,
) -> ChangeKind {
    ChangeKind::Row(RowChange {
        database: database.into(),
        schema: None,
        table: table.into(),
        op,
        columns: columns(),
        unique_keys: unique_keys(),
        before,
        after,
    })
}

/// A small table `app.kv (id BIGINT PRIMARY KEY, v VARCHAR(64))`, for bus tests.
pub fn kv_row(op: RowOp, id: i64, v: &str) -> ChangeKind {
    let mut key = ColumnInfo::new("id", "bigint", ty::LONGLONG);
    key.key = true;
    key.nullable = false;
    let mut val = ColumnInfo::new("v", "varchar(64)", ty::VARCHAR);
    val.charset = Some("utf8mb4".into());
    let columns: Arc<[ColumnInfo]> = vec![key, val].into();
    let image = Some(vec![Value::Int(id), Value::Text(v.into())]);
    let (before, after) = match op {
        RowOp::Delete => (image, None),
        RowOp::Update => (Some(vec![Value::Int(id), Value::Text(format!("{v}-old"))]), image),
        _ => (None, image),
    };
    ChangeKind::Row(RowChange {
        database: "app".into(),
        schema: None,
        table: "kv".into(),
        op,
        columns,
        unique_keys: Arc::from(Vec::new()),
        before,
        after,
    })
}

/// The message id of the insert of key `n` of [`kv_transactions`] (its row event's position).
pub fn kv_insert_id(source: &str, n: i64) -> String {
    format!("{source}:binlog.000042:{}:0", n * 1000 + 100)
}

/// `count` transactions of one insert each on `app.kv` (ids `first..`), with GTIDs `0-7-<n>`,
/// as BEGIN, row, COMMIT events, at one event per ms from `t0_ms`.
pub fn kv_transactions(first: i64, count: i64, t0_ms: i64) -> Vec<ChangeEvent> {
    let mut out = Vec::new();
    for id in first..first + count {
        let gtid = format!("0-7-{id}");
        for (k, kind) in [ChangeKind::Begin, kv_row(RowOp::Insert, id, &format!("v{id}")), ChangeKind::Commit]
            .into_iter()
            .enumerate()
        {
            let mut e = event(id as u64 * 1000 + k as u64 * 100, 0, Some(&gtid), kind);
            e.timestamp_ms = t0_ms + id;
            out.push(e);
        }
    }
    out
}

// ---- decoding Debezium JSON ----

fn parse_date_text(s: &str) -> (u16, u8, u8) {
    let mut p = s.split('-');
    (p.next().unwrap().parse().unwrap(), p.next().unwrap().parse().unwrap(), p.next().unwrap().parse().unwrap())
}

fn datetime_from_secs(secs: i64, micros: u32) -> Value {
    let (y, m, d) = temporal::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    Value::DateTime {
        year: y as u16,
        month: m,
        day: d,
        hour: (s / 3600) as u8,
        minute: (s % 3600 / 60) as u8,
        second: (s % 60) as u8,
        micros,
    }
}

fn is(c: &ColumnInfo, prefix: &str) -> bool {
    c.data_type.starts_with(prefix)
}

/// A Debezium JSON column value back to a typed value.
pub fn from_json(c: &ColumnInfo, v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    if v.is_null() {
        return Value::Null;
    }
    let s = || v.as_str().unwrap_or_else(|| panic!("{}: string expected, got {v}", c.name)).to_string();
    let bytes = || BASE64.decode(s()).unwrap();
    match c.type_code {
        ty::TINY | ty::SHORT | ty::INT24 | ty::LONG | ty::LONGLONG => {
            v.as_i64().map(Value::Int).unwrap_or_else(|| Value::UInt(v.as_u64().unwrap()))
        }
        ty::FLOAT => Value::Float(v.as_f64().unwrap() as f32),
        ty::DOUBLE => Value::Double(v.as_f64().unwrap()),
        ty::NEWDECIMAL => Value::Decimal(s()),
        ty::DATE => match v {
            J::String(text) => {
                let (year, month, day) = parse_date_text(text);
                Value::Date { year, month, day }
            }
            _ => {
                let (y, m, d) = temporal::civil_from_days(v.as_i64().unwrap());
                Value::Date { year: y as u16, month: m, day: d }
            }
        },
        ty::TIME => {
            let us = v.as_i64().unwrap();
            let a = us.unsigned_abs();
            Value::Time {
                negative: us < 0,
                hours: (a / 3_600_000_000) as u32,
                minutes: (a / 60_000_000 % 60) as u8,
                seconds: (a / 1_000_000 % 60) as u8,
                micros: (a % 1_000_000) as u32,
            }
        }
        ty::DATETIME | ty::DATETIME2 => match v {
            J::String(text) => {
                let (date, rest) = text.split_once(' ').unwrap();
                let (year, month, day) = parse_date_text(date);
                let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
                let p: Vec<u8> = hms.split(':').map(|x| x.parse().unwrap()).collect();
                let micros =
                    if frac.is_empty() { 0 } else { frac.parse::<u32>().unwrap() * 10u32.pow(6 - frac.len() as u32) };
                Value::DateTime { year, month, day, hour: p[0], minute: p[1], second: p[2], micros }
            }
            _ if c.scale.is_some_and(|s| s <= 3) => {
                let ms = v.as_i64().unwrap();
                datetime_from_secs(ms.div_euclid(1000), (ms.rem_euclid(1000) * 1000) as u32)
            }
            _ => {
                let us = v.as_i64().unwrap();
                datetime_from_secs(us.div_euclid(1_000_000), us.rem_euclid(1_000_000) as u32)
            }
        },
        ty::TIMESTAMP | ty::TIMESTAMP2 => {
            let (seconds, micros) = temporal::parse_zoned(&s()).unwrap();
            Value::Timestamp { seconds, micros }
        }
        ty::YEAR => Value::Year(v.as_u64().unwrap() as u16),
        ty::JSON => Value::Json(s()),
        ty::SET => Value::Set(s().split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()),
        _ if is(c, "enum") => Value::Enum(s()),
        ty::BIT if c.precision == Some(1) => Value::Bytes(vec![u8::from(v.as_bool().unwrap())]),
        ty::BIT => Value::Bytes(bytes().into_iter().rev().collect()),
        ty::GEOMETRY => {
            let mut out = (v["srid"].as_u64().unwrap() as u32).to_le_bytes().to_vec();
            out.extend(BASE64.decode(v["wkb"].as_str().unwrap()).unwrap());
            Value::Bytes(out)
        }
        _ if c.charset.is_some() => Value::Text(s()),
        _ => Value::Bytes(bytes()),
    }
}

/// A Debezium row image (`before`/`after`) back to values in column order.
pub fn image_from_json(columns: &[ColumnInfo], image: &serde_json::Value) -> Option<Vec<Value>> {
    let obj = image.as_object()?;
    assert_eq!(obj.len(), columns.len(), "one field per column");
    Some(columns.iter().map(|c| from_json(c, &obj[&c.name])).collect())
}

// ---- decoding Alibaba Avro ----

pub fn field<'a>(record: &'a Avro, name: &str) -> &'a Avro {
    let Avro::Record(fields) = record else { panic!("record expected: {record:?}") };
    &fields.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no field {name}")).1
}

pub fn avro_str(v: &Avro) -> &str {
    match v {
        Avro::String(s) => s,
        Avro::Enum(_, s) => s,
        other => panic!("string expected: {other:?}"),
    }
}

fn avro_int(v: &Avro) -> i64 {
    match v {
        Avro::Int(i) => i64::from(*i),
        Avro::Long(l) => *l,
        Avro::Union(_, inner) => avro_int(inner),
        other => panic!("int expected: {other:?}"),
    }
}

fn avro_opt_int(v: &Avro) -> Option<i64> {
    match v {
        Avro::Union(0, _) | Avro::Null => None,
        other => Some(avro_int(other)),
    }
}

fn avro_bytes(v: &Avro) -> Vec<u8> {
    match v {
        Avro::Bytes(b) => b.clone(),
        other => panic!("bytes expected: {other:?}"),
    }
}

/// One Avro image element back to a typed value (the branch says the kind, the column the
/// details).
pub fn from_avro(c: &ColumnInfo, v: &Avro) -> Value {
    let Avro::Union(branch, inner) = v else { panic!("union expected: {v:?}") };
    let inner = inner.as_ref();
    match branch {
        0 => Value::Null,
        1 => {
            let text = avro_str(field(inner, "value"));
            if c.type_code == ty::BIT {
                let n: u64 = text.parse().unwrap();
                let len = (avro_int(field(inner, "precision")) as usize).div_ceil(8);
                Value::Bytes(n.to_be_bytes()[8 - len..].to_vec())
            } else {
                text.parse::<i64>().map(Value::Int).unwrap_or_else(|_| Value::UInt(text.parse().unwrap()))
            }
        }
        2 => {
            let data = avro_bytes(field(inner, "value"));
            match avro_str(field(inner, "charset")) {
                "binary" => Value::Bytes(data),
                "utf8mb4" => Value::Text(String::from_utf8(data).unwrap()),
                other => panic!("charset {other}"),
            }
        }
        3 => Value::Decimal(avro_str(field(inner, "value")).into()),
        4 => {
            let Avro::Double(f) = field(inner, "value") else { panic!("double expected") };
            if c.type_code == ty::FLOAT { Value::Float(*f as f32) } else { Value::Double(*f) }
        }
        5 => Value::Timestamp {
            seconds: avro_int(field(inner, "timestamp")),
            micros: avro_int(field(inner, "millis")) as u32,
        },
        6 => {
            let part = |n| avro_opt_int(field(inner, n));
            let (y, mo, d, h, mi, s, us) = (
                part("year"),
                part("month"),
                part("day"),
                part("hour"),
                part("minute"),
                part("second"),
                part("millis"),
            );
            match (y, mo, h) {
                (Some(year), None, None) => Value::Year(year as u16),
                (Some(year), Some(month), None) => {
                    Value::Date { year: year as u16, month: month as u8, day: d.unwrap() as u8 }
                }
                (Some(year), Some(month), Some(hour)) => Value::DateTime {
                    year: year as u16,
                    month: month as u8,
                    day: d.unwrap() as u8,
                    hour: hour as u8,
                    minute: mi.unwrap() as u8,
                    second: s.unwrap() as u8,
                    micros: us.unwrap() as u32,
                },
                (None, None, Some(hour)) => {
                    let parts = [hour, mi.unwrap(), s.unwrap(), us.unwrap()];
                    Value::Time {
                        negative: parts.iter().any(|p| *p < 0),
                        hours: hour.unsigned_abs() as u32,
                        minutes: mi.unwrap().unsigned_abs() as u8,
                        seconds: s.unwrap().unsigned_abs() as u8,
                        micros: us.unwrap().unsigned_abs() as u32,
                    }
                }
                other => panic!("DateTime parts {other:?}"),
            }
        }
        8 => {
            assert_eq!(avro_str(field(inner, "type")), "GEOMETRY");
            Value::Bytes(avro_bytes(field(inner, "value")))
        }
        10 => {
            let data = avro_bytes(field(inner, "value"));
            match avro_str(field(inner, "type")) {
                "TEXT" => Value::Text(String::from_utf8(data).unwrap()),
                "BLOB" => Value::Bytes(data),
                other => panic!("BinaryObject type {other}"),
            }
        }
        11 => {
            let text = avro_str(field(inner, "value")).to_string();
            match avro_str(field(inner, "type")) {
                "JSON" => Value::Json(text),
                "ENUM" => Value::Enum(text),
                "SET" => Value::Set(text.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()),
                other => panic!("TextObject type {other}"),
            }
        }
        other => panic!("unexpected branch {other}"),
    }
}

/// `beforeImages`/`afterImages` back to values.
pub fn image_from_avro(columns: &[ColumnInfo], images: &Avro) -> Option<Vec<Value>> {
    match images {
        Avro::Union(0, _) => None,
        Avro::Union(2, inner) => {
            let Avro::Array(items) = inner.as_ref() else { panic!("array expected") };
            assert_eq!(items.len(), columns.len());
            Some(columns.iter().zip(items).map(|(c, v)| from_avro(c, v)).collect())
        }
        other => panic!("images {other:?}"),
    }
}

/// Values equal, floats bit for bit (so `-0.0` is not `0.0`).
pub fn assert_same_row(got: &[Value], want: &[Value], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = match (g, w) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
            _ => g == w,
        };
        assert!(same, "{what}: column {i}: got {g:?}, want {w:?}");
    }
}
