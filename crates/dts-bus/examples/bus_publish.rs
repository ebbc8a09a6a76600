//! Micro-benchmark (not in CI): encode and publish synthetic sysbench-like row changes
//! (`sbtest1 (id INT PRIMARY KEY, k INT, c CHAR(120), pad CHAR(60))`, transactions of 4 rows)
//! to a throwaway NATS JetStream server and a throwaway tansu Kafka broker, in batches that are
//! each acknowledged before the next (as the engine checkpoints), and report row events/s
//! (encode + publish + acknowledgements; making the synthetic input is not timed) and the
//! process's peak RSS.
//!
//! `cargo run --release -p dts-bus --example bus_publish -- [--events N] [--batch N]
//!  [--bus nats|kafka|both] [--format json|avro|both]`

use std::sync::Arc;
use std::time::Instant;

use dts_bus::{BusConfig, Encoder, EncoderOptions, Format, KafkaConfig, Message, NatsConfig, Publisher};
use dts_core::change::{ChangeEvent, ChangeKind, ColumnInfo, RowChange, RowOp, Value, mysql_type};
use dts_core::{BinlogPosition, Position};
use dts_test_support::{KafkaBroker, NatsServer};

fn columns() -> Arc<[ColumnInfo]> {
    let mut id = ColumnInfo::new("id", "int", mysql_type::LONG);
    id.key = true;
    id.nullable = false;
    let k = ColumnInfo::new("k", "int", mysql_type::LONG);
    let mut c = ColumnInfo::new("c", "char(120)", mysql_type::STRING);
    c.charset = Some("utf8mb4".into());
    let mut pad = ColumnInfo::new("pad", "char(60)", mysql_type::STRING);
    pad.charset = Some("utf8mb4".into());
    vec![id, k, c, pad].into()
}

/// Row events `first..first + rows` in transactions of 4, with BEGIN and COMMIT (`first` a
/// multiple of 4). Made per batch so that the input does not count in the peak RSS.
fn events(first: usize, rows: usize) -> Vec<ChangeEvent> {
    let cols = columns();
    let unique_keys: Arc<[dts_core::change::UniqueKey]> = Arc::from(Vec::new());
    let mut out = Vec::with_capacity(rows * 3 / 2);
    let mut offset = 4 + first as u64 * 225;
    let mut ev = |kind, tx: &str, index| {
        offset += 150;
        ChangeEvent {
            position: Position::Binlog(BinlogPosition { file: "binlog.000001".into(), offset, gtid: None }),
            index,
            timestamp_ms: 1_700_000_000_000 + offset as i64 / 1000,
            server_id: 1,
            transaction: Some(tx.to_string()),
            kind,
        }
    };
    for t in first / 4..(first + rows).div_ceil(4) {
        let tx = format!("0-1-{}", t + 1);
        out.push(ev(ChangeKind::Begin, &tx, 0));
        for r in 0..4.min(first + rows - t * 4) {
            let id = ((t * 4 + r) % 100_000) as i64 + 1;
            let c = format!(
                "{:011}-{:011}-{:011}-{:011}-{:011}-{:011}-{:011}-{:011}-{:011}-{:011}",
                id, t, r, id, t, r, id, t, r, id
            );
            let pad = format!("{:011}-{:011}-{:011}-{:011}-{:011}", t, r, id, t, r);
            let image = vec![Value::Int(id), Value::Int((t * 7 % 100_000) as i64), Value::Text(c), Value::Text(pad)];
            let (op, before, after) = match r {
                0 => (RowOp::Update, Some(image.clone()), Some(image)),
                1 => (RowOp::Update, Some(image.clone()), Some(image)),
                2 => (RowOp::Delete, Some(image), None),
                _ => (RowOp::Insert, None, Some(image)),
            };
            let row = RowChange {
                database: "sbtest".into(),
                schema: None,
                table: "sbtest1".into(),
                op,
                columns: cols.clone(),
                unique_keys: unique_keys.clone(),
                before,
                after,
            };
            out.push(ev(ChangeKind::Row(row), &tx, 0));
        }
        out.push(ev(ChangeKind::Commit, &tx, 0));
    }
    out
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.into())
}

async fn run(bus: &BusConfig, label: &str, format: Format, rows: usize, batch: usize) {
    let subscription = format!("bench-{}", format.as_str());
    let mut publisher = Publisher::open(bus, &subscription, format).await.expect("open the publisher");
    let mut encoder = Encoder::new(EncoderOptions::new(format, "bench"));
    let (mut secs, mut encode_secs, mut messages) = (0.0, 0.0, 0usize);
    let mut out: Vec<Message> = Vec::with_capacity(batch * 2);
    let batch = batch.div_ceil(4) * 4;
    for first in (0..rows).step_by(batch) {
        let chunk = events(first, batch.min(rows - first));
        let t = Instant::now();
        out.clear();
        for e in &chunk {
            encoder.encode(e, &mut out).expect("encode");
        }
        encode_secs += t.elapsed().as_secs_f64();
        messages += out.len();
        publisher.publish(&out).await.expect("publish");
        secs += t.elapsed().as_secs_f64();
    }
    println!(
        "{label:<6} {:<13} {rows} row events ({messages} messages) in {secs:.2} s: {:.0} row events/s, {:.0} messages/s \
         (encoding alone {:.0} row events/s); peak RSS {:.1} MiB",
        format.as_str(),
        rows as f64 / secs,
        messages as f64 / secs,
        rows as f64 / encode_secs,
        peak_rss_mib()
    );
}

#[tokio::main]
async fn main() {
    let rows: usize = arg("--events", "200000").parse().expect("--events N");
    let batch: usize = arg("--batch", "10000").parse().expect("--batch N");
    let which = arg("--bus", "both");
    let formats = match arg("--format", "both").as_str() {
        "json" => vec![Format::DebeziumJson],
        "avro" => vec![Format::AlibabaAvro],
        _ => vec![Format::DebeziumJson, Format::AlibabaAvro],
    };
    println!(
        "{rows} row events in transactions of 4 (sysbench-like sbtest1, 4 columns), batches of {batch} row events"
    );
    if which == "nats" || which == "both" {
        let server = NatsServer::start();
        let bus = BusConfig::Nats(NatsConfig::new(server.url()));
        for f in &formats {
            run(&bus, "nats", *f, rows, batch).await;
        }
    }
    if which == "kafka" || which == "both" {
        let broker = KafkaBroker::start();
        let bus = BusConfig::Kafka(KafkaConfig::new(broker.bootstrap()));
        for f in &formats {
            run(&bus, "kafka", *f, rows, batch).await;
        }
    }
}
