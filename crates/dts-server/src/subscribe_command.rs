//! `dts subscribe tail`: a change-tracking subscription's events from the bus as JSON lines
//! (Debezium JSON as it is, Alibaba Avro records decoded), read as a consumer group (durable:
//! a restarted tail resumes after the last printed event) or from a source time; duplicates by
//! message id are dropped; the group's lag goes to stderr.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use apache_avro::{Schema, from_avro_datum};
use base64::Engine as _;
use clap::Subcommand;
use dts_bus::consumer::rewind_group;
use dts_bus::{BusConfig, BusError, Consumer, Delivery, KafkaConfig, NatsConfig, StartAt};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum SubscribeCommand {
    /// Print a subscription's events as JSON lines, one per event.
    Tail {
        /// The subscription: the change-tracking task id (`dts-...`).
        subscription: String,
        /// Read as this consumer group: acknowledged as printed, resumed where it stopped.
        #[arg(long)]
        group: Option<String>,
        /// Start at the first event at or after this source time (`2026-01-01T10:00:00Z`,
        /// `2026-01-01 10:00:00` UTC, or Unix seconds); with --group, rewinds the group there.
        #[arg(long)]
        from: Option<String>,
        /// The subscription's format: `json` (Debezium) or `avro` (Alibaba's Record, decoded).
        #[arg(long, default_value = "json", value_parser = ["json", "avro"])]
        format: String,
        /// The change bus: `nats://host:port` or `kafka://host:port[,host:port]`.
        #[arg(long, env = "DTS_CHANGE_BUS", default_value = "nats://127.0.0.1:4222")]
        bus: String,
        /// The bus prefix of the server's `[change_bus]`.
        #[arg(long, default_value = "dts")]
        prefix: String,
        /// Stop after printing this many events (heartbeats not counted).
        #[arg(long)]
        limit: Option<u64>,
        /// Stop once nothing new arrived for this many seconds (default: follow forever).
        #[arg(long)]
        idle_exit: Option<u64>,
    },
}

fn bus_config(url: &str, prefix: &str) -> BusConfig {
    match url.strip_prefix("kafka://") {
        Some(bootstrap) => {
            let mut c = KafkaConfig::new(bootstrap);
            c.prefix = prefix.into();
            BusConfig::Kafka(c)
        }
        None => {
            let mut c = NatsConfig::new(url);
            c.prefix = prefix.into();
            BusConfig::Nats(c)
        }
    }
}

/// A source time as ms since the epoch.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs * 1000);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc().timestamp_millis())
        .with_context(|| format!("--from `{s}` is not a time (RFC 3339, `yyyy-mm-dd hh:mm:ss` UTC, or Unix seconds)"))
}

/// One delivery as a JSON line.
fn line(d: &Delivery, avro: Option<&Schema>) -> Value {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let key = d.key.as_deref().map(|k| serde_json::from_slice(k).unwrap_or_else(|_| json!(text(k))));
    let value = match (&d.payload, avro) {
        (None, _) => Value::Null,
        (Some(p), Some(schema)) => match from_avro_datum(schema, &mut &p[..], None) {
            Ok(v) => Value::try_from(v).unwrap_or_else(|e| json!({ "undecodable": e.to_string() })),
            Err(e) => json!({ "undecodable": e.to_string(),
                              "base64": base64::engine::general_purpose::STANDARD.encode(p) }),
        },
        (Some(p), None) => serde_json::from_slice(p).unwrap_or_else(|_| json!(text(p))),
    };
    json!({
        "id": d.id,
        "subject": d.subject,
        "partition": d.partition,
        "sequence": d.sequence,
        "kind": d.kind.map(|k| k.as_str()),
        "key": key,
        "source_ts_ms": d.source_ts_ms,
        "value": value,
    })
}

pub async fn run(command: SubscribeCommand) -> anyhow::Result<()> {
    let SubscribeCommand::Tail { subscription, group, from, format, bus, prefix, limit, idle_exit } = command;
    let config = bus_config(&bus, &prefix);
    let from_ms = from.as_deref().map(parse_time).transpose()?;
    let start = match (&group, from_ms) {
        (Some(g), Some(t)) => {
            rewind_group(&config, &subscription, g, t).await.context("rewinding the group")?;
            StartAt::Group(g.clone())
        }
        (Some(g), None) => StartAt::Group(g.clone()),
        (None, Some(t)) => StartAt::Time(t),
        (None, None) => StartAt::Beginning,
    };
    let schema = match format.as_str() {
        "avro" => Some(Schema::parse_str(dts_bus::alibaba::RECORD_SCHEMA).context("the Record schema")?),
        _ => None,
    };
    // A subscription that just started may not have its stream yet: wait a little for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut consumer = loop {
        match Consumer::open(&config, &subscription, start.clone()).await {
            Ok(c) => break c,
            Err(BusError::NotFound { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("opening {subscription}")),
        }
    };
    let stdout = std::io::stdout();
    let mut printed = 0u64;
    let mut last_new = Instant::now();
    let mut last_lag = Instant::now() - Duration::from_secs(10);
    loop {
        // At most what the limit leaves, so that a group acknowledges only printed events.
        let max = limit.map_or(512, |l| (l - printed).clamp(1, 512) as usize);
        let batch = consumer.next_batch(max, Duration::from_millis(500)).await.context("reading the bus")?;
        if !batch.is_empty() {
            last_new = Instant::now();
            let mut out = stdout.lock();
            for d in &batch {
                writeln!(out, "{}", line(d, schema.as_ref()))?;
                if d.kind != Some(dts_bus::MessageKind::Heartbeat) {
                    printed += 1;
                }
            }
            out.flush()?;
            drop(out);
            if group.is_some() {
                consumer.commit().await.context("acknowledging to the group")?;
            }
        }
        if group.is_some() && last_lag.elapsed() >= Duration::from_secs(2) {
            last_lag = Instant::now();
            if let Ok(Some(p)) = consumer.position().await {
                eprintln!("lag {} events, {} duplicates dropped", p.lag(), consumer.duplicates_dropped());
            }
        }
        if limit.is_some_and(|l| printed >= l) {
            return Ok(());
        }
        if idle_exit.is_some_and(|s| last_new.elapsed() >= Duration::from_secs(s)) {
            return Ok(());
        }
    }
}
