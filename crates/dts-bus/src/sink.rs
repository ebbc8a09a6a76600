//! The change bus as the engine's [`ChangeSink`]: each change-tracking job (a subscription named
//! by its job id) gets an [`Encoder`] and a [`Publisher`], opened on its first batch; a batch is
//! encoded in source order and submitted, and `confirm` (or `publish`) resolves only once the
//! bus acknowledged every message of it and of the batches submitted before, so the engine
//! checkpoints a batch's end only after that. A ticket names the channel it was submitted on:
//! after an error closed that channel it cannot be confirmed.
//!
//! Stable ids after errors: the encoder's only state is per source transaction, rebuilt when the
//! stream re-reads a transaction from its start. A failed publish leaves the job's channel closed
//! (publisher and encoder dropped); the engine re-opens the stream at its checkpoint (a
//! transaction boundary), and the next batch opens a fresh channel, so the re-published events
//! get the ids they had. The channel of a job whose stream re-opened after a *source* error is
//! also mid-transaction at worst, and the binlog ids (`<job>:<file>:<offset>:<index>`) carry no
//! per-transaction count, so they repeat regardless.
//!
//! Connections are lazy: a server without a reachable bus starts, and a change-tracking job then
//! retries its publish (transient [`crate::BusError::Unreachable`]) until the bus is there.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dts_core::change::ChangeKind;
use dts_core::{ChangeBatch, ChangeSink, ConnectorError, MigrationPlan, Position};
use tokio::sync::Mutex;

use crate::config::BusConfig;
use crate::encoder::{Encoder, EncoderOptions, Format};
use crate::heartbeat::HeartbeatClock;
use crate::message::Message;
use crate::publisher::Publisher;

/// How the sink encodes and when it sends heartbeats.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub format: Format,
    /// Debezium: a tombstone after each delete.
    pub tombstones: bool,
    /// A heartbeat at most this often while the source is idle.
    pub heartbeat_interval: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self { format: Format::DebeziumJson, tombstones: true, heartbeat_interval: Duration::from_secs(5) }
    }
}

/// One job's publishing state.
struct Channel {
    /// Which opening of the job's channel this is: a ticket of an earlier one cannot be
    /// confirmed (its batches died with it).
    generation: u64,
    publisher: Publisher,
    encoder: Encoder,
    heartbeat: HeartbeatClock,
}

/// Publishes change-tracking jobs' batches to the configured bus.
pub struct BusSink {
    config: BusConfig,
    options: SinkOptions,
    channels: Mutex<HashMap<String, Arc<Mutex<Option<Channel>>>>>,
    opened: std::sync::atomic::AtomicU64,
}

/// A ticket is the channel's generation above the publisher's own ticket.
const TICKET_BITS: u32 = 40;

/// Whether the job publishes DDL and DML: `{"subscriptionDataType": {"ddl": .., "dml": ..}}` in
/// its `ExternParams` (both when absent). Leaving events out keeps the others' ids: binlog ids
/// carry no per-transaction count.
fn data_types(plan: &MigrationPlan) -> (bool, bool) {
    let v: serde_json::Value =
        plan.extern_params.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    let flag = |k: &str| v["subscriptionDataType"][k].as_bool().unwrap_or(true);
    (flag("ddl"), flag("dml"))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl BusSink {
    pub fn new(config: BusConfig, options: SinkOptions) -> Self {
        Self { config, options, channels: Mutex::new(HashMap::new()), opened: Default::default() }
    }

    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    pub fn options(&self) -> &SinkOptions {
        &self.options
    }

    async fn slot(&self, job_id: &str) -> Arc<Mutex<Option<Channel>>> {
        self.channels.lock().await.entry(job_id.to_string()).or_default().clone()
    }

    async fn open(&self, job_id: &str) -> Result<Channel, ConnectorError> {
        let publisher = Publisher::open(&self.config, job_id, self.options.format).await?;
        let mut options = EncoderOptions::new(self.options.format, job_id);
        options.tombstones = self.options.tombstones;
        tracing::info!(job_id, subject = %publisher.names().base, format = self.options.format.as_str(),
            "change bus channel opened");
        let generation = self.opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Ok(Channel {
            generation,
            publisher,
            encoder: Encoder::new(options),
            heartbeat: HeartbeatClock::new(self.options.heartbeat_interval),
        })
    }

    /// Runs `f` on the job's channel (opened if needed); an error closes the channel.
    async fn with_channel<T>(
        &self,
        job_id: &str,
        f: impl AsyncFnOnce(&mut Channel) -> Result<T, ConnectorError>,
    ) -> Result<T, ConnectorError> {
        let slot = self.slot(job_id).await;
        let mut guard = slot.lock().await;
        if guard.is_none() {
            *guard = Some(self.open(job_id).await?);
        }
        let Some(channel) = guard.as_mut() else { unreachable!("opened above") };
        let result = f(channel).await;
        if let Err(e) = &result {
            tracing::warn!(job_id, error = %e.summary, detail = %e.detail, "change bus channel closed after an error");
            *guard = None;
        }
        result
    }

    async fn publish_batch(&self, plan: &MigrationPlan, batch: &ChangeBatch) -> Result<(), ConnectorError> {
        let ticket = self.submit_batch(plan, batch).await?;
        self.confirm_batch(plan, ticket).await
    }

    /// Encodes the batch in source order and sends it on (see [`ChangeSink::submit`]).
    async fn submit_batch(&self, plan: &MigrationPlan, batch: &ChangeBatch) -> Result<u64, ConnectorError> {
        let (ddl, dml) = data_types(plan);
        self.with_channel(&plan.job_id, async |c: &mut Channel| {
            let mut messages: Vec<Message> = Vec::with_capacity(batch.events.len() + batch.events.len() / 4);
            for ev in &batch.events {
                let wanted = match ev.kind {
                    ChangeKind::Ddl { .. } => ddl,
                    ChangeKind::Row(_) | ChangeKind::Truncate { .. } => dml,
                    _ => true,
                };
                if wanted {
                    c.encoder.encode(ev, &mut messages)?;
                }
            }
            let ticket = c.publisher.submit(&messages).await?;
            if !messages.is_empty() {
                c.heartbeat.observe(now_ms());
            }
            Ok(c.generation << TICKET_BITS | ticket)
        })
        .await
    }

    async fn confirm_batch(&self, plan: &MigrationPlan, ticket: u64) -> Result<(), ConnectorError> {
        self.with_channel(&plan.job_id, async |c: &mut Channel| {
            if ticket >> TICKET_BITS != c.generation {
                return Err(crate::BusError::NotAcknowledged {
                    unacked: 0,
                    total: 0,
                    detail: "the change bus channel was opened again since the batch was sent".into(),
                }
                .into());
            }
            c.publisher.confirm(ticket & ((1 << TICKET_BITS) - 1)).await?;
            Ok(())
        })
        .await
    }

    /// Closes the job's channel and deletes its stream or topic.
    async fn remove_subscription(&self, job_id: &str) -> Result<(), ConnectorError> {
        self.channels.lock().await.remove(job_id);
        crate::consumer::delete_subscription(&self.config, job_id).await?;
        tracing::info!(job_id, "the deleted subscription's stream or topic is gone from the bus");
        Ok(())
    }

    async fn send_heartbeat(&self, plan: &MigrationPlan, position: Option<&Position>) -> Result<(), ConnectorError> {
        let server_id = 0;
        let at = position.cloned().unwrap_or(Position::None);
        self.with_channel(&plan.job_id, async |c: &mut Channel| {
            let Some(ev) = c.heartbeat.due(now_ms(), &at, server_id) else { return Ok(()) };
            let mut messages = Vec::with_capacity(1);
            c.encoder.encode(&ev, &mut messages)?;
            c.publisher.publish(&messages).await?;
            Ok(())
        })
        .await
    }
}

impl ChangeSink for BusSink {
    fn publish<'a>(
        &'a self,
        plan: &'a MigrationPlan,
        batch: &'a ChangeBatch,
    ) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + 'a>> {
        Box::pin(self.publish_batch(plan, batch))
    }

    fn submit<'a>(
        &'a self,
        plan: &'a MigrationPlan,
        batch: &'a ChangeBatch,
    ) -> Pin<Box<dyn Future<Output = Result<u64, ConnectorError>> + Send + 'a>> {
        Box::pin(self.submit_batch(plan, batch))
    }

    fn confirm<'a>(
        &'a self,
        plan: &'a MigrationPlan,
        ticket: u64,
    ) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + 'a>> {
        Box::pin(self.confirm_batch(plan, ticket))
    }

    fn heartbeat<'a>(
        &'a self,
        plan: &'a MigrationPlan,
        position: Option<&'a Position>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + 'a>> {
        Box::pin(self.send_heartbeat(plan, position))
    }

    fn remove<'a>(&'a self, job_id: &'a str) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + 'a>> {
        Box::pin(self.remove_subscription(job_id))
    }
}
