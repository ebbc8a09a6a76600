//! The change bus on NATS JetStream: publish with acknowledgements, read back with the crate's
//! consumer and with a plain async-nats client, re-publishes dropped by the stream, consumer
//! groups resuming and rewinding, heartbeats, an unreachable server.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use dts_bus::consumer::{self, StartAt};
use dts_bus::{
    BusConfig, BusError, Consumer, Encoder, EncoderOptions, Format, HeartbeatClock, Message, MessageKind, NatsConfig,
    Publisher,
};
use dts_core::ErrorClass;
use dts_core::change::ChangeEvent;
use dts_test_support::NatsServer;
use futures::StreamExt;

use crate::fixtures::*;

const T0: i64 = 1_700_000_000_000;

/// The server's config with 256 MiB per stream: JetStream reserves a file stream's `max_bytes`
/// on disk, so the 8 GiB default fits only once or twice on a small test disk.
fn config(server: &NatsServer) -> BusConfig {
    let mut c = NatsConfig::new(server.url());
    c.retention.max_bytes = 256 << 20;
    BusConfig::Nats(c)
}

fn encode(format: Format, events: &[ChangeEvent]) -> Vec<Message> {
    let mut enc = Encoder::new(EncoderOptions::new(format, "job-1"));
    let mut out = Vec::new();
    for e in events {
        enc.encode(e, &mut out).unwrap();
    }
    out
}

/// Reads until `want` deliveries arrived or nothing came for a while.
async fn drain(c: &mut Consumer, want: usize) -> Vec<dts_bus::Delivery> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < want && Instant::now() < deadline {
        let batch = c.next_batch(500, Duration::from_millis(500)).await.expect("read");
        if batch.is_empty() && got.len() >= want {
            break;
        }
        got.extend(batch);
    }
    got
}

fn ids(ds: &[dts_bus::Delivery]) -> Vec<String> {
    ds.iter().map(|d| d.id.clone()).collect()
}

#[tokio::test]
async fn published_events_are_acknowledged_and_read_back_by_a_plain_nats_client() {
    let server = NatsServer::start();
    let cfg = config(&server);
    let messages = encode(Format::DebeziumJson, &kv_transactions(1, 500, T0));
    assert_eq!(messages.len(), 500);
    let mut p = Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.expect("open");
    let receipt = p.publish(&messages).await.expect("publish");
    assert_eq!((receipt.acknowledged, receipt.duplicates), (500, 0));

    // An independent client: async-nats, an ephemeral consumer on the stream.
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let mut stream = js.get_stream("DTS_sub1").await.expect("stream per subscription");
    let info = stream.info().await.unwrap().clone();
    assert_eq!(info.state.messages, 500);
    assert_eq!(info.config.subjects, ["dts.sub1.>"]);
    assert_eq!(info.config.max_age, Duration::from_secs(24 * 3600));
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    let reader = stream
        .create_consumer(pull::Config { filter_subject: "dts.sub1.app.>".into(), ..Default::default() })
        .await
        .unwrap();
    let mut msgs = reader.fetch().max_messages(500).expires(Duration::from_secs(5)).messages().await.unwrap();
    let mut n = 0;
    while let Some(m) = msgs.next().await {
        let m = m.unwrap();
        n += 1;
        assert_eq!(m.subject.as_str(), "dts.sub1.app.kv");
        let h = m.headers.as_ref().unwrap();
        assert_eq!(h.get("Nats-Msg-Id").unwrap().as_str(), kv_insert_id("job-1", n));
        assert_eq!(h.get("dts-key").unwrap().as_str(), format!("{{\"id\":{n}}}"));
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!((v["op"].as_str(), v["after"]["id"].as_i64()), (Some("c"), Some(n)));
        if n == 500 {
            break;
        }
    }
    assert_eq!(n, 500);

    // The crate's own reader from the beginning sees the same, in order.
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Beginning).await.unwrap();
    let got = drain(&mut c, 500).await;
    assert_eq!(ids(&got), messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
    assert!(got.iter().all(|d| d.kind == Some(MessageKind::Insert)));
}

#[tokio::test]
async fn a_re_publish_after_a_crash_before_the_checkpoint_is_dropped_by_the_stream() {
    let server = NatsServer::start();
    let cfg = config(&server);
    let events = kv_transactions(1, 300, T0);
    let first = encode(Format::AlibabaAvro, &events);
    let mut p = Publisher::open(&cfg, "sub1", Format::AlibabaAvro).await.unwrap();
    assert_eq!(p.publish(&first).await.unwrap().duplicates, 0);
    drop(p);
    // "Crash" after publishing, before checkpointing anything past transaction 100: a new
    // process re-reads from there with a fresh encoder and publisher.
    let again = encode(Format::AlibabaAvro, &events[3 * 100..]);
    let mut p = Publisher::open(&cfg, "sub1", Format::AlibabaAvro).await.unwrap();
    let receipt = p.publish(&again).await.unwrap();
    assert_eq!((receipt.acknowledged, receipt.duplicates), (600, 600), "every copy acknowledged and dropped");
    // Then new events continue.
    let more = encode(Format::AlibabaAvro, &kv_transactions(301, 10, T0));
    assert_eq!(p.publish(&more).await.unwrap().duplicates, 0);
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g".into())).await.unwrap();
    let got = drain(&mut c, 930).await;
    let want: Vec<String> = first.iter().chain(&more).map(|m| m.id.clone()).collect();
    assert_eq!(ids(&got), want, "each event once, in order");
    assert_eq!(c.duplicates_dropped(), 0, "the broker already dropped them");
}

#[tokio::test]
async fn a_batch_overlapping_the_one_before_is_published_again_message_by_message_and_stored_once() {
    let server = NatsServer::start();
    let cfg = config(&server);
    let events = kv_transactions(1, 300, T0);
    let all = encode(Format::DebeziumJson, &events);
    let mut p = Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.unwrap();
    // The first batch learns the stream's sequence; the second goes out with only its last
    // message answered.
    assert_eq!(p.publish(&all[..100]).await.unwrap(), dts_bus::Receipt { acknowledged: 100, duplicates: 0 });
    assert_eq!(p.publish(&all[100..200]).await.unwrap(), dts_bus::Receipt { acknowledged: 100, duplicates: 0 });
    // A batch that repeats the tail of the one before (a re-read from an older checkpoint,
    // which the engine only does after a failure): its last message's sequence does not add
    // up, so it is not acknowledged and the publisher answers each message again.
    let err = p.publish(&all[150..300]).await.expect_err("an uncertain batch is not acknowledged");
    assert_eq!(err.class(), ErrorClass::Transient, "{err:?}");
    // The caller publishes from its checkpoint again: every message is answered, and the
    // ones the first attempt stored are duplicates now.
    let receipt = p.publish(&all[150..300]).await.unwrap();
    assert_eq!((receipt.acknowledged, receipt.duplicates), (150, 150));
    // And the fast way again afterwards, including a batch of one.
    let more = encode(Format::DebeziumJson, &kv_transactions(301, 11, T0));
    assert_eq!(p.publish(&more[..10]).await.unwrap().duplicates, 0);
    assert_eq!(p.publish(&more[10..]).await.unwrap().duplicates, 0);
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Beginning).await.unwrap();
    let got = drain(&mut c, 311).await;
    let want: Vec<String> = all.iter().chain(&more).map(|m| m.id.clone()).collect();
    assert_eq!(ids(&got), want, "each event once, in order");
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let mut stream = js.get_stream("DTS_sub1").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 311);
}

#[tokio::test]
async fn a_message_the_stream_refuses_inside_a_batch_is_reported_not_skipped() {
    let server = NatsServer::start();
    let cfg = config(&server);
    let all = encode(Format::DebeziumJson, &kv_transactions(1, 30, T0));
    let mut p = Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.unwrap();
    p.publish(&all[..10]).await.unwrap();
    // The stream now refuses messages over 100 bytes; the batch goes out the fast way.
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let mut config = js.get_stream("DTS_sub1").await.unwrap().info().await.unwrap().config.clone();
    config.max_message_size = 100;
    js.update_stream(config).await.expect("limit the message size");
    let err = p.publish(&all[10..20]).await.expect_err("a refused message is an error");
    assert!(matches!(err, BusError::Refused { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::NeedsOperator);
}

#[tokio::test]
async fn a_consumer_group_resumes_after_its_own_restart_and_reports_position_and_lag() {
    let server = NatsServer::start();
    let cfg = config(&server);
    let messages = encode(Format::DebeziumJson, &kv_transactions(1, 300, T0));
    Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.unwrap().publish(&messages).await.unwrap();

    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    let mut first = c.next_batch(100, Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.len(), 100);
    c.commit().await.unwrap();
    // Read 50 more but crash before committing them.
    let uncommitted = c.next_batch(50, Duration::from_secs(5)).await.unwrap();
    assert_eq!(uncommitted.len(), 50);
    let pos = c.position().await.unwrap().expect("a group position");
    let p0 = &pos.partitions[0];
    assert_eq!((p0.acked, p0.end), (Some(100), 301));
    assert_eq!(pos.lag(), 200);
    assert_eq!(pos.source_ts_ms(), Some(T0 + 100), "source time of the last acknowledged event");
    drop(c);

    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    let rest = drain(&mut c, 200).await;
    assert_eq!(rest.len(), 200, "resumes right after the last commit");
    c.commit().await.unwrap();
    first.extend(rest);
    assert_eq!(ids(&first), messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
    let pos = consumer::group_position(&cfg, "sub1", "g1").await.unwrap();
    assert_eq!((pos.partitions[0].acked, pos.lag()), (Some(300), 0));
    assert_eq!(pos.source_ts_ms(), Some(T0 + 300));
    let w = consumer::window(&cfg, "sub1").await.unwrap();
    assert_eq!((w.messages, w.first_ts_ms, w.last_ts_ms), (300, Some(T0 + 1), Some(T0 + 300)));
    assert!(matches!(consumer::group_position(&cfg, "sub1", "nobody").await, Err(BusError::NotFound { .. })));
}

#[tokio::test]
async fn a_group_rewound_by_time_restarts_at_the_first_event_at_or_after_it() {
    let server = NatsServer::start();
    let cfg = config(&server);
    let messages = encode(Format::DebeziumJson, &kv_transactions(1, 400, T0));
    Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.unwrap().publish(&messages).await.unwrap();
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    assert_eq!(drain(&mut c, 400).await.len(), 400);
    c.commit().await.unwrap();
    drop(c);

    let next = consumer::rewind_group(&cfg, "sub1", "g1", T0 + 150).await.unwrap();
    assert_eq!(next, [(0, 150)]);
    let mut c = Consumer::open(&cfg, "sub1", StartAt::Group("g1".into())).await.unwrap();
    let got = drain(&mut c, 251).await;
    assert_eq!(got.len(), 251);
    assert_eq!(got[0].source_ts_ms, T0 + 150);
    assert_eq!(got[0].id, kv_insert_id("job-1", 150));
    // A time between events, before all of them, and after all of them.
    let mut r = Consumer::open(&cfg, "sub1", StartAt::Time(T0 + 399)).await.unwrap();
    assert_eq!(ids(&drain(&mut r, 2).await), [kv_insert_id("job-1", 399), kv_insert_id("job-1", 400)]);
    let mut r = Consumer::open(&cfg, "sub1", StartAt::Time(0)).await.unwrap();
    assert_eq!(drain(&mut r, 400).await.len(), 400);
    let mut r = Consumer::open(&cfg, "sub1", StartAt::Time(T0 + 10_000)).await.unwrap();
    assert!(r.next_batch(10, Duration::from_millis(300)).await.unwrap().is_empty());
}

#[tokio::test]
async fn heartbeats_on_an_idle_source_reach_consumers_and_move_the_group_position() {
    let server = NatsServer::start();
    let cfg = config(&server);
    for format in [Format::DebeziumJson, Format::AlibabaAvro] {
        let sub = format!("hb-{}", format.as_str());
        let mut enc = Encoder::new(EncoderOptions::new(format, "job-1"));
        let mut p = Publisher::open(&cfg, &sub, format).await.unwrap();
        let mut clock = HeartbeatClock::new(Duration::from_secs(1));
        let position = binlog(4);
        let mut out = Vec::new();
        for now in [T0, T0 + 400, T0 + 1000, T0 + 1500, T0 + 2000] {
            if let Some(hb) = clock.due(now, &position, 7) {
                enc.encode(&hb, &mut out).unwrap();
            }
        }
        assert_eq!(out.len(), 3, "one per idle second");
        p.publish(&out).await.unwrap();
        let mut c = Consumer::open(&cfg, &sub, StartAt::Group("g".into())).await.unwrap();
        let got = drain(&mut c, 3).await;
        assert!(
            got.iter().all(|d| d.kind == Some(MessageKind::Heartbeat) && d.subject == format!("dts.{sub}.$heartbeat"))
        );
        assert_eq!(got.iter().map(|d| d.source_ts_ms).collect::<Vec<_>>(), [T0, T0 + 1000, T0 + 2000]);
        c.commit().await.unwrap();
        assert_eq!(c.position().await.unwrap().unwrap().source_ts_ms(), Some(T0 + 2000));
    }
}

#[tokio::test]
async fn an_unreachable_bus_is_a_clear_transient_error() {
    let mut server = NatsServer::start();
    let mut nats = NatsConfig::new(server.url());
    nats.timeout = Duration::from_secs(2);
    let cfg = BusConfig::Nats(nats);
    let mut p = Publisher::open(&cfg, "sub1", Format::DebeziumJson).await.unwrap();
    server.kill();
    let started = Instant::now();
    let err = match Publisher::open(&cfg, "sub1", Format::DebeziumJson).await {
        Err(e) => e,
        Ok(_) => panic!("opened a publisher on a stopped server"),
    };
    assert!(matches!(err, BusError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(err.to_string().starts_with("the change bus at nats://127.0.0.1:"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // A publisher whose server went away does not report success.
    let messages = encode(Format::DebeziumJson, &kv_transactions(1, 5, T0));
    let err = tokio::time::timeout(Duration::from_secs(30), p.publish(&messages)).await.expect("gives up").unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}
