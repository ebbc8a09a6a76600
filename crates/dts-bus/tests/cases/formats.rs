//! Every column type into both formats and back: Debezium JSON read with serde_json, the
//! Alibaba Avro record read with apache-avro and the record schema.

use apache_avro::types::Value as Avro;
use apache_avro::{Schema, from_avro_datum};
use dts_bus::alibaba::RECORD_SCHEMA;
use dts_bus::{Encoder, EncoderOptions, Format, Message, MessageKind, Route};
use dts_core::change::{ChangeEvent, ChangeKind, RowOp};
use serde_json::{Value as Json, json};

use crate::fixtures::*;

fn encode(format: Format, events: &[ChangeEvent]) -> Vec<Message> {
    let mut options = EncoderOptions::new(format, "job-7");
    options.server_name = "dts-sub-1".into();
    options.source_version = "10.11.19-MariaDB".into();
    let mut enc = Encoder::new(options);
    let mut out = Vec::new();
    for e in events {
        enc.encode(e, &mut out).expect("encode");
    }
    out
}

fn json(m: &Message) -> Json {
    serde_json::from_slice(m.payload.as_ref().expect("a value")).expect("valid JSON")
}

/// One transaction per row: BEGIN, INSERT, UPDATE (to the next row's values, same key), COMMIT;
/// then a transaction deleting every row.
fn type_events() -> Vec<ChangeEvent> {
    let rows = rows();
    let mut events = Vec::new();
    let mut offset = 1000;
    let next = |offset: &mut u64| {
        *offset += 100;
        *offset
    };
    for (i, r) in rows.iter().enumerate() {
        let gtid = format!("0-7-{}", 100 + i);
        let mut changed = rows[(i + 1) % rows.len()].clone();
        changed[0] = r[0].clone();
        events.push(event(next(&mut offset), 0, Some(&gtid), ChangeKind::Begin));
        events.push(event(
            next(&mut offset),
            0,
            Some(&gtid),
            row("ty", "all_types", RowOp::Insert, None, Some(r.clone())),
        ));
        events.push(event(
            next(&mut offset),
            0,
            Some(&gtid),
            row("ty", "all_types", RowOp::Update, Some(r.clone()), Some(changed)),
        ));
        events.push(event(next(&mut offset), 0, Some(&gtid), ChangeKind::Commit));
    }
    let at = next(&mut offset);
    for (i, r) in rows.iter().enumerate() {
        events.push(event(at, i as u32, Some("0-7-200"), row("ty", "all_types", RowOp::Delete, Some(r.clone()), None)));
    }
    events
}

#[test]
fn every_column_type_round_trips_through_debezium_json() {
    let rows = rows();
    let cols = columns();
    let messages = encode(Format::DebeziumJson, &type_events());
    // BEGIN/COMMIT make no message; each delete is followed by a tombstone.
    assert_eq!(messages.len(), rows.len() * 2 + rows.len() * 2);
    let (changes, deletes) = messages.split_at(rows.len() * 2);
    for (i, r) in rows.iter().enumerate() {
        let (insert, update) = (&changes[2 * i], &changes[2 * i + 1]);
        let v = json(insert);
        assert_eq!(v["op"], "c");
        assert!(v["before"].is_null());
        assert_same_row(&image_from_json(&cols, &v["after"]).unwrap(), r, &format!("insert of row {i}"));
        assert_eq!(insert.key.as_deref(), Some(format!("{{\"id\":{i}}}").as_bytes()), "key = primary key JSON");
        assert_eq!(insert.id, format!("job-7:binlog.000042:{}:0", 1200 + 400 * i), "id = source:file:offset:index");
        assert_eq!(insert.route, Route::Table { database: "ty".into(), table: "all_types".into() });
        let s = &v["source"];
        assert_eq!(s["connector"], "mysql");
        assert_eq!(s["name"], "dts-sub-1");
        assert_eq!((s["db"].as_str(), s["table"].as_str()), (Some("ty"), Some("all_types")));
        assert_eq!(s["file"], "binlog.000042");
        assert_eq!(s["server_id"], 7);
        assert_eq!(s["gtid"], format!("0-7-{}", 100 + i));
        assert_eq!(s["snapshot"], "false");
        assert_eq!(s["ts_ms"].as_i64(), Some(insert.source_ts_ms));
        assert!(s["pos"].as_u64().unwrap() > 1000);
        assert_eq!(
            v["transaction"],
            json!({"id": format!("0-7-{}", 100 + i), "total_order": 1, "data_collection_order": 1})
        );
        assert!(v["ts_ms"].as_i64().unwrap() > 1_700_000_000_000, "processing time");

        let u = json(update);
        assert_eq!(u["op"], "u");
        assert_same_row(&image_from_json(&cols, &u["before"]).unwrap(), r, &format!("before image of row {i}"));
        let mut want = rows[(i + 1) % rows.len()].clone();
        want[0] = r[0].clone();
        assert_same_row(&image_from_json(&cols, &u["after"]).unwrap(), &want, &format!("after image of row {i}"));
        assert_eq!(u["transaction"]["total_order"], 2);
    }
    for (i, r) in rows.iter().enumerate() {
        let (delete, tombstone) = (&deletes[2 * i], &deletes[2 * i + 1]);
        let v = json(delete);
        assert_eq!(v["op"], "d");
        assert!(v["after"].is_null());
        assert_same_row(&image_from_json(&cols, &v["before"]).unwrap(), r, &format!("delete of row {i}"));
        assert_eq!(v["source"]["row"], i);
        assert_eq!((tombstone.kind, &tombstone.payload, &tombstone.key), (MessageKind::Tombstone, &None, &delete.key));
        assert_eq!(tombstone.id, format!("{}:t", delete.id));
    }
    // Spot checks of the representation itself, not only the round trip.
    let first = json(&changes[0]);
    let a = &first["after"];
    assert_eq!(a["biu"], 0);
    assert_eq!(json(&changes[2])["after"]["biu"].to_string(), "18446744073709551615", "exact beyond i64");
    assert_eq!(a["d65"], "-99999999999999999999999999999999999.999999999999999999999999999999");
    assert_eq!(a["dt"], -354_285, "days since the epoch");
    assert_eq!(a["tm"], -(838i64 * 3600 + 59 * 60 + 59) * 1_000_000, "negative TIME in µs");
    assert_eq!(a["ts"], "1970-01-01T00:00:01.000000Z");
    assert_eq!(a["b1"], false);
    assert_eq!(a["bn"], "eAAAAAAAAAA=", "binary as base64");
    assert_eq!(a["s"], "x");
    assert_eq!(a["j"], "[]", "JSON as its document text");
    assert_eq!(a["g"], json!({"wkb": "AQEAAAAAAAAAAADwPwAAAAAAAABA", "srid": 0}));
    let zero = &json(&changes[4])["after"];
    assert_eq!(zero["dt"], "0000-00-00", "zero dates keep their text");
    assert_eq!(zero["dtm"], "0000-00-00 00:00:00.000000");
    assert_eq!(zero["db"].to_string(), "-0.0");
    assert_eq!(json(&changes[2])["after"]["dtm3"], 253_402_300_799_999_i64, "DATETIME(3) in ms");
}

#[test]
fn debezium_json_encodes_key_changes_ddl_truncate_and_heartbeats_like_debezium() {
    let mut after = rows()[1].clone();
    after[0] = dts_core::change::Value::Int(99);
    let events = vec![
        event(10, 0, None, ChangeKind::Begin),
        event(20, 0, None, row("ty", "all_types", RowOp::Update, Some(rows()[1].clone()), Some(after))),
        event(30, 0, None, ChangeKind::Commit),
        event(
            40,
            0,
            Some("0-7-9"),
            ChangeKind::Ddl { database: "ty".into(), statement: "ALTER TABLE t ADD c INT".into() },
        ),
        event(50, 0, Some("0-7-10"), ChangeKind::Truncate { database: "ty".into(), table: "all_types".into() }),
        event(60, 0, None, ChangeKind::Heartbeat),
        event(70, 0, None, row("ty", "all_types", RowOp::Read, None, Some(rows()[2].clone()))),
    ];
    let m = encode(Format::DebeziumJson, &events);
    let kinds: Vec<MessageKind> = m.iter().map(|m| m.kind).collect();
    use MessageKind::*;
    assert_eq!(kinds, [Delete, Tombstone, Insert, Ddl, Truncate, Heartbeat, Read]);
    assert_eq!(m[0].key.as_deref(), Some(&b"{\"id\":1}"[..]));
    assert_eq!(m[2].key.as_deref(), Some(&b"{\"id\":99}"[..]));
    assert_eq!((m[0].id.as_str(), m[2].id.as_str()), ("job-7:binlog.000042:20:0:d", "job-7:binlog.000042:20:0:c"));
    assert!(json(&m[0])["transaction"].is_null(), "no GTID, no transaction block");
    let ddl = json(&m[3]);
    assert_eq!(ddl["ddl"], "ALTER TABLE t ADD c INT");
    assert_eq!(ddl["databaseName"], "ty");
    assert_eq!(m[3].key.as_deref(), Some(&b"{\"databaseName\":\"ty\"}"[..]));
    assert_eq!(m[3].route, Route::Ddl { database: "ty".into() });
    let t = json(&m[4]);
    assert_eq!((t["op"].as_str(), m[4].key.as_ref()), (Some("t"), None), "truncate has a null key");
    assert_eq!(json(&m[5]), json!({"ts_ms": 1_709_210_096_183_i64}));
    assert_eq!(m[5].key.as_deref(), Some(&b"{\"serverName\":\"dts-sub-1\"}"[..]));
    assert_eq!(m[5].id, "job-7:hb:1709210096183");
    let r = json(&m[6]);
    assert_eq!((r["op"].as_str(), r["source"]["snapshot"].as_str()), (Some("r"), Some("true")));
}

fn decode(schema: &Schema, m: &Message) -> Avro {
    let bytes = m.payload.as_ref().expect("a value");
    let mut rest = &bytes[..];
    let v = from_avro_datum(schema, &mut rest, None).expect("decodes with the Record schema");
    assert!(rest.is_empty(), "{} bytes left over", rest.len());
    v
}

#[test]
fn every_column_type_round_trips_through_the_alibaba_avro_record() {
    let schema = Schema::parse_str(RECORD_SCHEMA).expect("schema");
    let rows = rows();
    let cols = columns();
    let events = type_events();
    let messages = encode(Format::AlibabaAvro, &events);
    assert_eq!(messages.len(), events.len(), "one record per event, BEGIN and COMMIT included");
    let names = [
        "version",
        "id",
        "sourceTimestamp",
        "sourcePosition",
        "safeSourcePosition",
        "sourceTxid",
        "source",
        "operation",
        "objectName",
        "processTimestamps",
        "tags",
        "fields",
        "beforeImages",
        "afterImages",
        "bornTimestamp",
    ];
    for (i, r) in rows.iter().enumerate() {
        let begin = decode(&schema, &messages[4 * i]);
        assert_eq!(avro_str(field(&begin, "operation")), "BEGIN");
        assert_eq!(field(&begin, "objectName"), &Avro::Union(0, Box::new(Avro::Null)));
        let insert = decode(&schema, &messages[4 * i + 1]);
        let Avro::Record(fields) = &insert else { panic!() };
        assert_eq!(fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), names, "all 15 fields in order");
        assert_eq!(avro_str(field(&insert, "operation")), "INSERT");
        assert_eq!(field(&insert, "objectName"), &Avro::Union(1, Box::new(Avro::String("ty.all_types".into()))));
        assert_eq!(field(&insert, "sourceTxid"), &Avro::String(format!("0-7-{}", 100 + i)));
        let e = &events[4 * i + 1];
        assert_eq!(field(&insert, "sourceTimestamp"), &Avro::Long(e.timestamp_ms / 1000));
        assert_eq!(field(&insert, "bornTimestamp"), &Avro::Long(e.timestamp_ms));
        let begin_offset = 1000 + 100 * (4 * i as u64 + 1);
        assert_eq!(field(&insert, "safeSourcePosition"), &Avro::String(format!("binlog.000042:{begin_offset}")));
        assert_eq!(field(&insert, "sourcePosition"), &Avro::String(format!("binlog.000042:{}", begin_offset + 100)));
        let source = field(&insert, "source");
        assert_eq!(avro_str(field(source, "sourceType")), "MySQL");
        assert_eq!(avro_str(field(source, "version")), "10.11.19-MariaDB");
        let Avro::Map(tags) = field(&insert, "tags") else { panic!("tags") };
        assert_eq!(tags["pk_uk_info"], Avro::String(r#"{"PRIMARY":["id"],"uk_vc_c":["vc","c"]}"#.into()));
        assert_eq!(tags["dts_id"], Avro::String(messages[4 * i + 1].id.clone()));
        let Avro::Union(2, list) = field(&insert, "fields") else { panic!("fields") };
        let Avro::Array(list) = list.as_ref() else { panic!() };
        let numbers: Vec<i64> = list
            .iter()
            .map(|f| match field(f, "dataTypeNumber") {
                Avro::Int(n) => i64::from(*n),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            numbers,
            [
                3, 1, 1, 2, 2, 9, 9, 3, 3, 8, 8, 246, 246, 4, 5, 10, 11, 12, 7, 13, 254, 15, 252, 254, 15, 252, 254,
                15, 252, 251, 247, 248, 16, 16, 245, 255, 12, 7
            ],
            "client-protocol type numbers (ENUM logged as 254 -> 247, DATETIME2 -> 12, TIMESTAMP2 -> 7)"
        );
        assert_eq!(image_from_avro(&cols, field(&insert, "beforeImages")), None);
        assert_same_row(
            &image_from_avro(&cols, field(&insert, "afterImages")).unwrap(),
            r,
            &format!("insert of row {i}"),
        );
        let update = decode(&schema, &messages[4 * i + 2]);
        assert_eq!(avro_str(field(&update, "operation")), "UPDATE");
        assert_same_row(
            &image_from_avro(&cols, field(&update, "beforeImages")).unwrap(),
            r,
            &format!("before of row {i}"),
        );
        let mut want = rows[(i + 1) % rows.len()].clone();
        want[0] = r[0].clone();
        assert_same_row(
            &image_from_avro(&cols, field(&update, "afterImages")).unwrap(),
            &want,
            &format!("after of row {i}"),
        );
        assert_eq!(avro_str(field(&decode(&schema, &messages[4 * i + 3]), "operation")), "COMMIT");
    }
    for (i, r) in rows.iter().enumerate() {
        let delete = decode(&schema, &messages[4 * rows.len() + i]);
        assert_eq!(avro_str(field(&delete, "operation")), "DELETE");
        assert_same_row(
            &image_from_avro(&cols, field(&delete, "beforeImages")).unwrap(),
            r,
            &format!("delete of row {i}"),
        );
        assert_eq!(image_from_avro(&cols, field(&delete, "afterImages")), None);
    }
    // A reader with the older 14-field schema (no bornTimestamp) reads the same bytes.
    let v: Json = serde_json::from_str(RECORD_SCHEMA).unwrap();
    let mut old = v.clone();
    old["fields"].as_array_mut().unwrap().pop();
    let old = Schema::parse_str(&old.to_string()).unwrap();
    let payload = messages[1].payload.clone().unwrap();
    let mut rest = &payload[..];
    let Avro::Record(f) = from_avro_datum(&old, &mut rest, None).unwrap() else { panic!() };
    assert_eq!(f.len(), 14);
}

#[test]
fn alibaba_records_carry_ddl_text_heartbeats_and_escaped_object_names() {
    let schema = Schema::parse_str(RECORD_SCHEMA).expect("schema");
    let events = vec![
        event(
            10,
            0,
            Some("0-7-1"),
            ChangeKind::Ddl { database: "shop.eu".into(), statement: "CREATE TABLE t (a INT)".into() },
        ),
        event(20, 0, Some("0-7-2"), row("shop.eu", "all.types", RowOp::Insert, None, Some(rows()[3].clone()))),
        event(30, 0, None, ChangeKind::Truncate { database: "shop".into(), table: "a`b".into() }),
        event(40, 0, None, ChangeKind::Heartbeat),
    ];
    let m = encode(Format::AlibabaAvro, &events);
    let ddl = decode(&schema, &m[0]);
    assert_eq!(avro_str(field(&ddl, "operation")), "DDL");
    assert_eq!(field(&ddl, "afterImages"), &Avro::Union(1, Box::new(Avro::String("CREATE TABLE t (a INT)".into()))));
    assert_eq!(field(&ddl, "objectName"), &Avro::Union(1, Box::new(Avro::String("shop\\u002Eeu".into()))));
    assert_eq!(field(&ddl, "fields"), &Avro::Union(0, Box::new(Avro::Null)));
    assert_eq!(field(&ddl, "sourceTxid"), &Avro::String("0-7-1".into()), "a DDL's own transaction");
    let ins = decode(&schema, &m[1]);
    assert_eq!(
        field(&ins, "objectName"),
        &Avro::Union(1, Box::new(Avro::String("shop\\u002Eeu.all\\u002Etypes".into())))
    );
    let tr = decode(&schema, &m[2]);
    assert_eq!(avro_str(field(&tr, "operation")), "DDL");
    assert_eq!(field(&tr, "sourceTxid"), &Avro::String(String::new()), "no GTID: empty");
    assert_eq!(
        field(&tr, "afterImages"),
        &Avro::Union(1, Box::new(Avro::String("TRUNCATE TABLE `shop`.`a``b`".into())))
    );
    let hb = decode(&schema, &m[3]);
    assert_eq!(avro_str(field(&hb, "operation")), "HEARTBEAT");
    assert_eq!(field(&hb, "sourceTimestamp"), &Avro::Long(1_709_210_096));
    assert_eq!(m[3].route, Route::Heartbeat);
}

#[test]
fn message_ids_repeat_when_a_restart_re_reads_from_a_transaction_boundary() {
    let events = type_events();
    for format in [Format::DebeziumJson, Format::AlibabaAvro] {
        let all: Vec<String> = encode(format, &events).into_iter().map(|m| m.id).collect();
        // A restart at the third transaction (after the checkpoint of the second).
        let again: Vec<String> = encode(format, &events[8..]).into_iter().map(|m| m.id).collect();
        assert_eq!(again[..], all[all.len() - again.len()..], "{format:?}");
        let unique: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "ids are unique");
    }
}

/// Debezium `transaction` blocks of the row messages: `(id, total_order, data_collection_order)`.
fn transaction_blocks(messages: &[Message]) -> Vec<(String, i64, i64)> {
    messages
        .iter()
        .filter(|m| m.payload.is_some())
        .map(|m| {
            let t = &json(m)["transaction"];
            (
                t["id"].as_str().unwrap_or("-").to_string(),
                t["total_order"].as_i64().unwrap_or(0),
                t["data_collection_order"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_transaction_sent_in_parts_is_numbered_on_and_one_read_again_is_numbered_as_the_first_time() {
    let mut other = rows()[1].clone();
    other[0] = dts_core::change::Value::Int(50);
    let events = vec![
        event(100, 0, Some("0-7-300"), row("ty", "all_types", RowOp::Insert, None, Some(rows()[0].clone()))),
        event(100, 1, Some("0-7-300"), row("ty", "all_types", RowOp::Insert, None, Some(rows()[1].clone()))),
        event(200, 0, Some("0-7-300"), row("ty", "other", RowOp::Insert, None, Some(other))),
        event(300, 0, Some("0-7-300"), row("ty", "all_types", RowOp::Insert, None, Some(rows()[2].clone()))),
        event(400, 0, Some("0-7-300"), ChangeKind::Commit),
        event(500, 0, Some("0-7-301"), row("ty", "all_types", RowOp::Insert, None, Some(rows()[3].clone()))),
        event(600, 0, Some("0-7-301"), ChangeKind::Commit),
    ];
    let mut enc = Encoder::new(EncoderOptions::new(Format::DebeziumJson, "job-7"));
    let mut encode_all = |events: &[ChangeEvent]| {
        let mut out = Vec::new();
        for e in events {
            enc.encode(e, &mut out).expect("encode");
        }
        out
    };
    // Two batches, then (a source error: the stream re-opened at the checkpoint before the
    // transaction while the encoder lived on) the transaction again from its start.
    let mut first = encode_all(&events[..2]);
    first.extend(encode_all(&events[2..4]));
    let again = encode_all(&events);
    let tx = |n: &str, total, per_table| (format!("0-7-{n}"), total, per_table);
    let want = [tx("300", 1, 1), tx("300", 2, 2), tx("300", 3, 1), tx("300", 4, 3)];
    assert_eq!(transaction_blocks(&first), want);
    assert_eq!(transaction_blocks(&again)[..4], want);
    assert_eq!(transaction_blocks(&again)[4..], [tx("301", 1, 1)], "the next transaction starts over");
    let ids = |m: &[Message]| m.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&again)[..4], ids(&first), "the same ids");
}
