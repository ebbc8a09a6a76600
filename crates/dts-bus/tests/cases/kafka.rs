//! The change bus on Kafka (the tansu broker): idempotent publishes read back by the crate's
//! consumer and by kafka-python (and, for Avro, fastavro, as Alibaba's Python demo decodes
//! it), re-publishes after a crash dropped by the consumer's de-duplication by id (also across
//! its own restart), keys picking partitions, groups resuming and rewinding, positions and lag
//! despite tansu's per-batch high watermark, an unreachable broker.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use dts_bus::alibaba::RECORD_SCHEMA;
use dts_bus::consumer::{self, StartAt};
use dts_bus::{
    BusConfig, BusError, Consumer, Delivery, Encoder, EncoderOptions, Format, KafkaConfig, Message, Publisher,
};
use dts_core::ErrorClass;
use dts_core::change::{ChangeEvent, RowOp};
use dts_test_support::KafkaBroker;
use serde_json::Value as Json;

use crate::fixtures::*;

const T0: i64 = 1_700_000_000_000;

fn config(broker: &KafkaBroker) -> KafkaConfig {
    KafkaConfig::new(broker.bootstrap())
}

fn encode(format: Format, events: &[ChangeEvent]) -> Vec<Message> {
    let mut enc = Encoder::new(EncoderOptions::new(format, "job-1"));
    let mut out = Vec::new();
    for e in events {
        enc.encode(e, &mut out).unwrap();
    }
    out
}

async fn drain(c: &mut Consumer, want: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want && Instant::now() < deadline {
        got.extend(c.next_batch(500, Duration::from_millis(500)).await.expect("read"));
    }
    // Nothing more arrives.
    got.extend(c.next_batch(500, Duration::from_millis(500)).await.expect("read"));
    got
}

fn ids(ds: &[Delivery]) -> Vec<String> {
    ds.iter().map(|d| d.id.clone()).collect()
}

const READER: &str = r#"
import io, json, sys
from kafka import KafkaConsumer, TopicPartition
bootstrap, topic, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
schema = None
if len(sys.argv) > 4:
    import fastavro
    schema = fastavro.parse_schema(json.load(open(sys.argv[4])))
c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
parts = None
for _ in range(50):
    parts = c.partitions_for_topic(topic)
    if parts:
        break
    c.poll(timeout_ms=100)
tps = [TopicPartition(topic, p) for p in sorted(parts)]
c.assign(tps)
c.seek_to_beginning(*tps)
n = 0
for m in c:
    h = dict(m.headers)
    rec = {"partition": m.partition, "offset": m.offset, "key": m.key.decode() if m.key is not None else None,
           "id": h.get("dts-id", b"").decode(), "ts": m.timestamp}
    if m.value is None:
        rec["value"] = None
    elif schema is not None:
        r = fastavro.schemaless_reader(io.BytesIO(m.value), schema)
        rec["value"] = {"operation": r["operation"], "objectName": r["objectName"], "sourceTxid": r["sourceTxid"],
                        "after": [x["value"] if isinstance(x, dict) else x for x in (r["afterImages"] or [])],
                        "tags": r["tags"], "bornTimestamp": r["bornTimestamp"]}
    else:
        rec["value"] = json.loads(m.value)
    print(json.dumps(rec, default=lambda b: b.decode("utf-8", "replace")))
    n += 1
    if n >= want:
        break
"#;

/// Reads a topic from the beginning with kafka-python (and fastavro when `avro`).
fn python_read(broker: &KafkaBroker, topic: &str, want: usize, avro: bool) -> Vec<Json> {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("read.py");
    std::fs::write(&script, READER).unwrap();
    let mut cmd = Command::new(broker.python());
    cmd.arg(&script).args([broker.bootstrap(), topic.to_string(), want.to_string()]);
    if avro {
        let schema = dir.path().join("Record.avsc");
        std::fs::write(&schema, RECORD_SCHEMA).unwrap();
        cmd.arg(schema);
    }
    let out = cmd.output().expect("run kafka-python");
    assert!(out.status.success(), "kafka-python reader failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn published_events_are_read_back_by_the_crate_consumer_and_by_kafka_python() {
    let broker = KafkaBroker::start();
    let cfg = BusConfig::Kafka(config(&broker));
    let mut events = kv_transactions(1, 300, T0);
    events.push(event(999_000, 0, Some("0-7-999"), kv_row(RowOp::Delete, 7, "v7")));
    let messages = encode(Format::DebeziumJson, &events);
    assert_eq!(messages.len(), 302, "300 inserts, a delete and its tombstone");
    let mut p = Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.expect("open");
    assert_eq!(p.names().topic(), "dts.sub1");
    assert_eq!(p.publish(&messages).await.expect("publish").acknowledged, 302);

    let seen = python_read(&broker, "dts.sub1", 302, false);
    assert_eq!(seen.len(), 302);
    for (i, r) in seen.iter().take(300).enumerate() {
        let n = i as i64 + 1;
        assert_eq!(r["offset"], i);
        assert_eq!(r["key"], format!("{{\"id\":{n}}}"));
        assert_eq!(r["id"], kv_insert_id("job-1", n));
        assert_eq!(r["ts"], T0 + n, "record timestamp = source time (CreateTime)");
        assert_eq!((r["value"]["op"].as_str(), r["value"]["after"]["id"].as_i64()), (Some("c"), Some(n)));
    }
    assert_eq!(seen[300]["value"]["op"], "d");
    assert_eq!((seen[301]["key"].as_str(), &seen[301]["value"]), (Some("{\"id\":7}"), &Json::Null), "tombstone");

    let mut c = Consumer::open(&cfg, "sub1", StartAt::Beginning).await.unwrap();
    let got = drain(&mut c, 302).await;
    assert_eq!(ids(&got), messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
    assert_eq!(got[301].payload, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn alibaba_avro_records_on_kafka_decode_with_fastavro_as_alibabas_python_demo_does() {
    let broker = KafkaBroker::start();
    let cfg = BusConfig::Kafka(config(&broker));
    let messages = encode(Format::AlibabaAvro, &kv_transactions(1, 20, T0));
    Publisher::open(&cfg, "ali", Format::AlibabaAvro).await.unwrap().publish(&messages).await.unwrap();
    let seen = python_read(&broker, "dts.ali", 60, true);
    assert_eq!(seen.len(), 60);
    let ops: Vec<&str> = seen.iter().take(3).map(|r| r["value"]["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, ["BEGIN", "INSERT", "COMMIT"]);
    let insert = &seen[1]["value"];
    assert_eq!(insert["objectName"], "app.kv");
    assert_eq!(insert["sourceTxid"], "0-7-1");
    assert_eq!(insert["after"][0], "1", "Integer {{precision, value}} text");
    assert_eq!(insert["after"][1], "v1", "Character bytes");
    assert_eq!(insert["tags"]["pk_uk_info"], "{\"PRIMARY\":[\"id\"]}");
    assert_eq!(insert["bornTimestamp"], T0 + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_re_publish_after_a_crash_is_dropped_by_a_consumer_reading_by_message_id_even_across_its_restart() {
    let broker = KafkaBroker::start();
    let cfg = BusConfig::Kafka(config(&broker));
    let events = kv_transactions(1, 300, T0);
    let first = encode(Format::DebeziumJson, &events);
    Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.unwrap().publish(&first).await.unwrap();
    // Crash after publishing, before the checkpoint passed transaction 100: the new process
    // re-reads transactions 101..300 and publishes them again, then continues.
    let again = encode(Format::DebeziumJson, &events[3 * 100..]);
    let more = encode(Format::DebeziumJson, &kv_transactions(301, 10, T0));
    let mut p = Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.unwrap();
    p.publish(&again).await.unwrap();
    p.publish(&more).await.unwrap();

    // The topic holds the copies: an ordinary client sees them.
    let raw = python_read(&broker, "dts.sub1", 510, false);
    assert_eq!(raw.len(), 510);
    let distinct: HashSet<&str> = raw.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 310, "200 ids twice");

    // A group reads 250, commits, stops; reopened, it still drops the copies of what it had read.
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 250 {
        let want = 250 - got.len();
        got.extend(c.next_batch(want, Duration::from_secs(10)).await.unwrap());
    }
    c.commit().await.unwrap();
    drop(c);
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    got.extend(drain(&mut c, 60).await);
    c.commit().await.unwrap();
    let want: Vec<String> = first.iter().chain(&more).map(|m| m.id.clone()).collect();
    assert_eq!(ids(&got), want, "every event exactly once, in order");
    assert_eq!(c.duplicates_dropped(), 200);
    let pos = c.position().await.unwrap().unwrap();
    assert_eq!((pos.partitions[0].acked, pos.partitions[0].end, pos.lag()), (Some(509), 510, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_group_resumes_after_its_own_restart_and_reports_position_and_lag() {
    let broker = KafkaBroker::start();
    let cfg = BusConfig::Kafka(config(&broker));
    let messages = encode(Format::DebeziumJson, &kv_transactions(1, 300, T0));
    Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.unwrap().publish(&messages).await.unwrap();
    let w = consumer::window(&cfg, "sub1").await.unwrap();
    assert_eq!(
        (w.messages, w.first_ts_ms, w.last_ts_ms),
        (300, Some(T0 + 1), Some(T0 + 300)),
        "true end despite batches"
    );

    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 100 {
        let want = 100 - got.len();
        got.extend(c.next_batch(want, Duration::from_secs(10)).await.unwrap());
    }
    c.commit().await.unwrap();
    let pos = consumer::group_position(&cfg, "sub1", "g1").await.unwrap();
    let p0 = &pos.partitions[0];
    assert_eq!((p0.acked, p0.end, pos.lag()), (Some(99), 300, 200));
    assert_eq!(pos.source_ts_ms(), Some(T0 + 100));
    drop(c);
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    got.extend(drain(&mut c, 200).await);
    assert_eq!(ids(&got), messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), "resumes after the commit");
    c.commit().await.unwrap();
    let pos = c.position().await.unwrap().unwrap();
    assert_eq!((pos.lag(), pos.source_ts_ms()), (0, Some(T0 + 300)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_rewound_by_time_restarts_at_the_first_event_at_or_after_it() {
    let broker = KafkaBroker::start();
    let cfg = BusConfig::Kafka(config(&broker));
    let messages = encode(Format::DebeziumJson, &kv_transactions(1, 400, T0));
    Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.unwrap().publish(&messages).await.unwrap();
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    assert_eq!(drain(&mut c, 400).await.len(), 400);
    c.commit().await.unwrap();
    drop(c);

    let next = consumer::rewind_group(&cfg, "sub1", "g1", T0 + 150).await.unwrap();
    assert_eq!(next, [(0, 149)]);
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    let got = drain(&mut c, 251).await;
    assert_eq!(got.len(), 251);
    assert_eq!((got[0].id.clone(), got[0].source_ts_ms), (kv_insert_id("job-1", 150), T0 + 150));
    let mut r = Consumer::open(&cfg, "sub1", StartAt::Time(T0 + 399)).await.unwrap();
    assert_eq!(ids(&drain(&mut r, 2).await), [kv_insert_id("job-1", 399), kv_insert_id("job-1", 400)]);
    let mut r = Consumer::open(&cfg, "sub1", StartAt::Time(T0 + 10_000)).await.unwrap();
    assert!(r.next_batch(10, Duration::from_millis(500)).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_pick_partitions_and_each_key_keeps_its_order() {
    let broker = KafkaBroker::start();
    let mut kc = config(&broker);
    kc.partitions = 3;
    let cfg = BusConfig::Kafka(kc);
    // 20 keys, each inserted then updated 9 times, interleaved.
    let mut events = Vec::new();
    for round in 0..10 {
        for id in 0..20 {
            let op = if round == 0 { RowOp::Insert } else { RowOp::Update };
            let mut e = event((round * 20 + id) as u64 * 10, 0, None, kv_row(op, id, &format!("r{round}")));
            e.timestamp_ms = T0 + round * 20 + id;
            events.push(e);
        }
    }
    let messages = encode(Format::DebeziumJson, &events);
    Publisher::open(&cfg, "sub3", Format::DebeziumJson).await.unwrap().publish(&messages).await.unwrap();
    let mut c = Consumer::open(&cfg, "sub3", StartAt::Beginning).await.unwrap();
    let got = drain(&mut c, 200).await;
    assert_eq!(got.len(), 200);
    let mut per_key: BTreeMap<String, Vec<(i32, String)>> = BTreeMap::new();
    for d in &got {
        let v: Json = serde_json::from_slice(d.payload.as_ref().unwrap()).unwrap();
        let key = String::from_utf8(d.key.clone().unwrap().to_vec()).unwrap();
        per_key.entry(key).or_default().push((d.partition, v["after"]["v"].as_str().unwrap().to_string()));
    }
    assert_eq!(per_key.len(), 20);
    let partitions: HashSet<i32> = got.iter().map(|d| d.partition).collect();
    assert!(partitions.len() > 1, "keys spread over partitions: {partitions:?}");
    for (key, seen) in per_key {
        assert!(seen.iter().all(|(p, _)| *p == seen[0].0), "{key} stays on one partition");
        let values: Vec<String> = seen.into_iter().map(|(_, v)| v).collect();
        assert_eq!(values, (0..10).map(|r| format!("r{r}")).collect::<Vec<_>>(), "{key} in source order");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_kafka_bus_is_a_clear_transient_error() {
    let mut broker = KafkaBroker::start();
    let mut kc = config(&broker);
    kc.timeout = Duration::from_secs(3);
    broker.kill();
    let started = Instant::now();
    let err = match Publisher::open(&BusConfig::Kafka(kc), "sub1", Format::DebeziumJson).await {
        Err(e) => e,
        Ok(_) => panic!("opened a publisher without a broker"),
    };
    assert!(matches!(err, BusError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(err.to_string(), format!("the change bus at {} is unreachable", broker.bootstrap()));
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
}
