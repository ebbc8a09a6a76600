//! NATS JetStream as the change bus: one stream per subscription (`<PREFIX>_<subscription>`,
//! subjects `<prefix>.<subscription>.>`, limits retention by age and size, a duplicate window),
//! pipelined publishes with a bounded number of outstanding acknowledgements, durable pull
//! consumers per consumer group (ack-all, so acknowledging a message acknowledges everything
//! before it), ephemeral consumers for reads from a time.
//!
//! Ordering: one publisher per subscription sends on one connection; the server stores
//! messages of a connection in the order it receives them, so stream order is publish order.
//! A message can only be stored out of order if an earlier one is *refused* (a size or limit
//! error) while a later one is stored; such refusals are reported as [`BusError::Refused`]
//! (needs an operator), never retried as transient.

use std::time::Duration;

use async_nats::header::HeaderName;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use async_nats::subject::Subject;
use async_nats::{HeaderMap, PublishError};
use futures::StreamExt;

use crate::config::NatsConfig;
use crate::consumer::{Delivery, GroupPosition, PartitionPosition, StartAt, Window};
use crate::encoder::Format;
use crate::error::BusError;
use crate::message::{Message, MessageKind, header};
use crate::naming::{Route, SubscriptionNames, check_name};
use crate::publisher::Receipt;
use crate::seek;

/// dts's own header names, built once (a name from a `&str` is allocated per message).
const SOURCE_TS: HeaderName = HeaderName::from_static(header::SOURCE_TS);
const KIND: HeaderName = HeaderName::from_static(header::KIND);
const KEY: HeaderName = HeaderName::from_static(header::KEY);
/// Subjects kept per publisher (cleared when full): rows of one table repeat theirs.
const SUBJECT_CACHE: usize = 1024;

/// A connection to a NATS server with JetStream.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    js: Context,
    config: NatsConfig,
}

fn unreachable(config: &NatsConfig, e: impl std::fmt::Display) -> BusError {
    BusError::Unreachable { addr: config.url.clone(), detail: e.to_string() }
}

/// Classifies a JetStream API error: timeouts and lost connections are transient, the rest
/// needs an operator.
fn api_error(config: &NatsConfig, what: &str, e: impl std::fmt::Display + std::fmt::Debug) -> BusError {
    let text = format!("{e:?} {e}").to_lowercase();
    if text.contains("timed out")
        || text.contains("timeout")
        || text.contains("broken pipe")
        || text.contains("disconnect")
    {
        unreachable(config, e)
    } else {
        BusError::Refused { what: what.into(), detail: e.to_string() }
    }
}

impl NatsBus {
    /// Connects; an unreachable server is a transient [`BusError::Unreachable`].
    pub async fn connect(config: &NatsConfig) -> Result<Self, BusError> {
        check_name("prefix", &config.prefix)?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(config.connect_timeout)
            .request_timeout(Some(config.timeout))
            .connect(config.url.as_str())
            .await
            .map_err(|e| unreachable(config, e))?;
        let js = jetstream::ContextBuilder::new().timeout(config.timeout).build(client.clone());
        Ok(Self { client, js, config: config.clone() })
    }

    pub fn names(&self, subscription: &str) -> Result<SubscriptionNames, BusError> {
        SubscriptionNames::new(&self.config.prefix, subscription)
    }

    fn stream_config(&self, names: &SubscriptionNames, format: Format) -> stream::Config {
        let r = &self.config.retention;
        stream::Config {
            name: names.stream.clone(),
            description: Some(format!("dts change tracking of {}, format {}", names.base, format.as_str())),
            subjects: vec![names.all_subjects()],
            max_age: r.max_age,
            max_bytes: r.max_bytes,
            duplicate_window: r.duplicate_window.min(r.max_age),
            discard: DiscardPolicy::Old,
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            num_replicas: 1,
            allow_direct: true,
            ..Default::default()
        }
    }

    /// Creates the subscription's stream, or updates its limits to the configured ones.
    pub async fn ensure_stream(&self, names: &SubscriptionNames, format: Format) -> Result<stream::Stream, BusError> {
        let config = self.stream_config(names, format);
        match self.js.create_stream(config.clone()).await {
            Ok(s) => Ok(s),
            Err(create) => {
                self.js.update_stream(config).await.map_err(|e| {
                    tracing::warn!(stream = %names.stream, error = %create, "creating the stream failed");
                    // No stream to update: the creation's refusal (limits, storage) is the cause.
                    if e.to_string().to_lowercase().contains("not found") {
                        api_error(&self.config, "creating the stream", create)
                    } else {
                        api_error(&self.config, "the stream configuration", e)
                    }
                })?;
                self.stream(names).await
            }
        }
    }

    async fn stream(&self, names: &SubscriptionNames) -> Result<stream::Stream, BusError> {
        self.js.get_stream(&names.stream).await.map_err(|e| {
            if e.to_string().to_lowercase().contains("not found") {
                BusError::NotFound { what: "stream", name: names.stream.clone() }
            } else {
                api_error(&self.config, "reading the stream", e)
            }
        })
    }

    pub async fn publisher(&self, subscription: &str, format: Format) -> Result<NatsPublisher, BusError> {
        let names = self.names(subscription)?;
        self.ensure_stream(&names, format).await?;
        let inbox = self.client.new_inbox();
        let acks = self.client.subscribe(format!("{inbox}.>")).await.map_err(|e| unreachable(&self.config, e))?;
        Ok(NatsPublisher {
            bus: self.clone(),
            names,
            inbox,
            acks,
            batch: 0,
            expected: None,
            in_flight: Default::default(),
            subjects: Default::default(),
        })
    }

    /// The first message at or after `sequence` with its source time.
    async fn probe(
        &self,
        stream: &stream::Stream,
        names: &SubscriptionNames,
        sequence: u64,
    ) -> Result<Option<(u64, i64)>, BusError> {
        match stream.get_first_raw_message_by_subject(names.all_subjects(), sequence.max(1)).await {
            Ok(m) => Ok(Some((m.sequence, source_ts(&m.headers).unwrap_or_else(|| m.time.unix_timestamp() * 1000)))),
            Err(e) if e.to_string().to_lowercase().contains("no message found") => Ok(None),
            Err(e) => Err(api_error(&self.config, "reading a message", e)),
        }
    }

    /// The sequence of the first retained event at or after `t_ms`, or the next sequence to be
    /// written when there is none.
    async fn sequence_at(&self, names: &SubscriptionNames, t_ms: i64) -> Result<u64, BusError> {
        let mut stream = self.stream(names).await?;
        let state = stream.info().await.map_err(|e| api_error(&self.config, "reading the stream", e))?.state.clone();
        let (lo, hi) = (state.first_sequence, state.last_sequence + 1);
        let found = seek::first_at_or_after(lo, hi, t_ms, |s| self.probe(&stream, names, s)).await?;
        Ok(found.unwrap_or(hi))
    }

    pub async fn window(&self, subscription: &str) -> Result<Window, BusError> {
        let names = self.names(subscription)?;
        let mut stream = self.stream(&names).await?;
        let state = stream.info().await.map_err(|e| api_error(&self.config, "reading the stream", e))?.state.clone();
        if state.messages == 0 {
            return Ok(Window { messages: 0, first_ts_ms: None, last_ts_ms: None });
        }
        let first = self.probe(&stream, &names, state.first_sequence).await?.map(|x| x.1);
        let last = match stream.get_raw_message(state.last_sequence).await {
            Ok(m) => source_ts(&m.headers),
            Err(_) => None,
        };
        Ok(Window { messages: state.messages, first_ts_ms: first, last_ts_ms: last })
    }

    fn group_config(group: &str, deliver_policy: DeliverPolicy, filter: String) -> pull::Config {
        pull::Config {
            durable_name: Some(group.to_string()),
            deliver_policy,
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 1_000_000,
            filter_subject: filter,
            ..Default::default()
        }
    }

    pub async fn consumer(
        &self,
        subscription: &str,
        start: StartAt,
        dedup_window: usize,
    ) -> Result<NatsConsumer, BusError> {
        let names = self.names(subscription)?;
        let stream = self.stream(&names).await?;
        let (consumer, group) = match &start {
            StartAt::Group(group) => {
                check_name("consumer group", group)?;
                self.reset_in_flight(&stream, &names, group).await?;
                let config = Self::group_config(group, DeliverPolicy::All, names.all_subjects());
                let c = stream
                    .get_or_create_consumer(group, config)
                    .await
                    .map_err(|e| api_error(&self.config, "the consumer group", e))?;
                (c, Some(group.clone()))
            }
            StartAt::Beginning | StartAt::Time(_) => {
                let deliver_policy = match start {
                    StartAt::Time(t) => {
                        DeliverPolicy::ByStartSequence { start_sequence: self.sequence_at(&names, t).await? }
                    }
                    _ => DeliverPolicy::All,
                };
                let config = pull::Config {
                    deliver_policy,
                    ack_policy: AckPolicy::None,
                    inactive_threshold: Duration::from_secs(60),
                    filter_subject: names.all_subjects(),
                    ..Default::default()
                };
                let c = stream.create_consumer(config).await.map_err(|e| api_error(&self.config, "a reader", e))?;
                (c, None)
            }
        };
        Ok(NatsConsumer {
            bus: self.clone(),
            subscription: subscription.to_string(),
            consumer,
            group,
            last: None,
            dedup: crate::consumer::Dedup::new(dedup_window),
        })
    }

    /// A group reopened after its reader stopped resumes right after its last acknowledgement,
    /// in order: JetStream would redeliver the messages delivered but not acknowledged only
    /// after the ack wait, behind newer ones, so the group's durable consumer is recreated to
    /// start at the acknowledgement floor. (A group has one reader at a time.)
    async fn reset_in_flight(
        &self,
        stream: &stream::Stream,
        names: &SubscriptionNames,
        group: &str,
    ) -> Result<(), BusError> {
        let stream = stream.clone();
        let info = match stream.consumer_info(group).await {
            Ok(info) => info.clone(),
            Err(e) if e.to_string().to_lowercase().contains("not found") => return Ok(()),
            Err(e) => return Err(api_error(&self.config, "the consumer group", e)),
        };
        if info.delivered.stream_sequence <= info.ack_floor.stream_sequence {
            return Ok(());
        }
        let deliver_policy = if info.ack_floor.stream_sequence == 0 {
            info.config.deliver_policy
        } else {
            DeliverPolicy::ByStartSequence { start_sequence: info.ack_floor.stream_sequence + 1 }
        };
        tracing::debug!(
            group,
            acked = info.ack_floor.stream_sequence,
            "restarting a group after its last acknowledgement"
        );
        stream.delete_consumer(group).await.map_err(|e| api_error(&self.config, "the consumer group", e))?;
        stream
            .create_consumer(Self::group_config(group, deliver_policy, names.all_subjects()))
            .await
            .map_err(|e| api_error(&self.config, "the consumer group", e))?;
        Ok(())
    }

    pub async fn group_position(&self, subscription: &str, group: &str) -> Result<GroupPosition, BusError> {
        let names = self.names(subscription)?;
        let mut stream = self.stream(&names).await?;
        let info = stream.consumer_info(group).await.map_err(|e| {
            if e.to_string().to_lowercase().contains("not found") {
                BusError::NotFound { what: "consumer group", name: group.to_string() }
            } else {
                api_error(&self.config, "the consumer group", e)
            }
        })?;
        let last =
            stream.info().await.map_err(|e| api_error(&self.config, "reading the stream", e))?.state.last_sequence;
        let acked = info.ack_floor.stream_sequence;
        let source_ts_ms = if acked == 0 {
            None
        } else {
            match stream.get_raw_message(acked).await {
                Ok(m) => source_ts(&m.headers),
                Err(_) => None,
            }
        };
        let lag = info.num_pending + info.num_ack_pending as u64;
        Ok(GroupPosition {
            group: group.to_string(),
            partitions: vec![PartitionPosition {
                partition: 0,
                acked: (acked > 0).then_some(acked),
                end: last + 1,
                lag,
                source_ts_ms,
            }],
        })
    }

    /// Deletes a group's durable consumer; `Ok` when it did not exist.
    pub async fn delete_group(&self, subscription: &str, group: &str) -> Result<(), BusError> {
        check_name("consumer group", group)?;
        let names = self.names(subscription)?;
        let stream = match self.stream(&names).await {
            Ok(s) => s,
            Err(BusError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match stream.delete_consumer(group).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().to_lowercase().contains("not found") => Ok(()),
            Err(e) => Err(api_error(&self.config, "the consumer group", e)),
        }
    }

    /// Deletes the subscription's stream (its messages and consumers); `Ok` when there is none.
    pub async fn delete_stream(&self, subscription: &str) -> Result<(), BusError> {
        let names = self.names(subscription)?;
        match self.js.delete_stream(&names.stream).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().to_lowercase().contains("not found") => Ok(()),
            Err(e) => Err(api_error(&self.config, "deleting the stream", e)),
        }
    }

    /// Moves a group to the first retained event at or after `t_ms` (recreates its durable
    /// consumer starting there). Returns the sequence it will read next.
    pub async fn rewind_group(&self, subscription: &str, group: &str, t_ms: i64) -> Result<u64, BusError> {
        check_name("consumer group", group)?;
        let names = self.names(subscription)?;
        let sequence = self.sequence_at(&names, t_ms).await?;
        let stream = self.stream(&names).await?;
        if let Err(e) = stream.delete_consumer(group).await
            && !e.to_string().to_lowercase().contains("not found")
        {
            return Err(api_error(&self.config, "the consumer group", e));
        }
        let config = Self::group_config(
            group,
            DeliverPolicy::ByStartSequence { start_sequence: sequence },
            names.all_subjects(),
        );
        stream.create_consumer(config).await.map_err(|e| api_error(&self.config, "the consumer group", e))?;
        Ok(sequence)
    }
}

fn source_ts(headers: &HeaderMap) -> Option<i64> {
    headers.get(header::SOURCE_TS).and_then(|v| v.as_str().parse().ok())
}

/// Publishes a subscription's messages to its stream.
///
/// Publishes are plain NATS messages on one connection. Two ways of confirming a batch:
///
/// * **Each message answered** (after opening, until a batch comes back with every message
///   newly stored; and always in [`NatsPublisher::publish`]'s fallback): every message carries
///   a reply subject `<inbox>.<batch>.<index>` on one subscription of the publisher's own; the
///   stream answers each with its publish ack (stored with its sequence, a duplicate, an error,
///   or a no-responders status when no stream listens). At most `max_in_flight` are unanswered
///   at a time. Answers of an earlier, failed batch are recognised by their batch number and
///   ignored. [`NatsPublisher::submit`] returns only when all are answered.
/// * **Only the last answered** (once the stream's last sequence is known and the publisher is
///   past anything it may be re-publishing): the batch's messages go out without a reply
///   subject, the last one with one, and [`NatsPublisher::submit`] returns at once; several
///   batches may be in flight. The server takes a connection's messages in order and the
///   stream stores its inbound messages in order, so a batch's last ack comes after every
///   earlier message (of it and of the batches before it) was stored or refused. The stream has
///   one publisher (this one), so if the ack says *stored* with sequence `expected` (the last
///   sequence known plus every message submitted since), every message up to it was stored: a
///   refused or duplicate message takes no sequence. Anything else (a duplicate, an error,
///   another sequence) fails [`NatsPublisher::confirm`] as not acknowledged (transient): the
///   caller re-reads from its checkpoint and the publisher is back to answering each message,
///   which then tells a duplicate (dropped, same id inside the duplicate window) from a
///   refusal (reported). Duplicates only come from re-reading after a failure, which is why
///   the fast way starts only after a batch of events without any. The events re-read after a
///   failure start at the checkpoint and the stream holds a prefix of them (one publisher, in
///   order), so once a batch of them brings no duplicate, none that follows can. A batch of
///   heartbeats alone does not count: their ids are new each time, so the heartbeat a restart
///   sends first is stored even when the events after it are all duplicates. This spares the
///   server an ack message per message and the publisher reading them, which is most of the
///   cost per message on both sides.
pub struct NatsPublisher {
    bus: NatsBus,
    names: SubscriptionNames,
    inbox: String,
    acks: async_nats::Subscriber,
    batch: u64,
    /// The stream's last sequence once every submitted message is stored, when the fast way
    /// is on (see above).
    expected: Option<u64>,
    /// Fast batches submitted and not confirmed: `(batch, messages, expected last sequence)`.
    in_flight: std::collections::VecDeque<(u64, usize, u64)>,
    /// Subjects by route, at most [`SUBJECT_CACHE`].
    subjects: std::collections::HashMap<Route, Subject>,
}

/// A JetStream publish acknowledgement, or its error.
#[derive(serde::Deserialize)]
struct PubAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    error: Option<PubAckError>,
}

#[derive(serde::Deserialize)]
struct PubAckError {
    #[serde(default)]
    description: String,
}

impl NatsPublisher {
    pub fn names(&self) -> &SubscriptionNames {
        &self.names
    }

    /// Waits for the next answer of batch `batch`: `Ok((duplicate, sequence))`.
    async fn next_ack(&mut self, batch: u64, total: usize, unacked: usize) -> Result<(bool, u64), BusError> {
        let prefix = format!("{}.{batch}.", self.inbox);
        let timeout = self.bus.config.timeout;
        loop {
            let m = match tokio::time::timeout(timeout, self.acks.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => {
                    return Err(BusError::NotAcknowledged { unacked, total, detail: "the connection closed".into() });
                }
                Err(_) => {
                    return Err(BusError::NotAcknowledged {
                        unacked,
                        total,
                        detail: format!("no acknowledgement within {timeout:?}"),
                    });
                }
            };
            if !m.subject.as_str().starts_with(&prefix) {
                continue; // an answer to an earlier, failed batch
            }
            if let Some(status) = m.status {
                if status == async_nats::StatusCode::NO_RESPONDERS {
                    return Err(BusError::NotFound { what: "stream", name: self.names.stream.clone() });
                }
                return Err(BusError::NotAcknowledged { unacked, total, detail: format!("status {status}") });
            }
            let ack: PubAck = serde_json::from_slice(&m.payload).map_err(|e| BusError::NotAcknowledged {
                unacked,
                total,
                detail: format!("unreadable acknowledgement: {e}"),
            })?;
            if let Some(e) = ack.error {
                return Err(BusError::Refused { what: "a message".into(), detail: e.description });
            }
            return Ok((ack.duplicate, ack.seq));
        }
    }

    fn headers(m: &Message) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, m.id.as_str());
        headers.insert(SOURCE_TS, m.source_ts_ms.to_string().as_str());
        headers.insert(KIND, m.kind.as_str());
        if let Some(k) = &m.key {
            headers.insert(KEY, String::from_utf8_lossy(k).as_ref());
        }
        headers
    }

    /// The subject of `route` (cached, see [`SUBJECT_CACHE`]).
    fn subject(&mut self, route: &Route) -> Subject {
        if let Some(subject) = self.subjects.get(route) {
            return subject.clone();
        }
        if self.subjects.len() >= SUBJECT_CACHE {
            self.subjects.clear();
        }
        let subject = Subject::from(self.names.subject(route));
        self.subjects.insert(route.clone(), subject.clone());
        subject
    }

    /// Sends one message; the stream answers it on `reply` when one is given.
    async fn send(&mut self, m: &Message, reply: Option<String>) -> Result<(), PublishError> {
        let subject = self.subject(&m.route);
        let payload = m.payload.clone().unwrap_or_default();
        let client = &self.bus.client;
        match reply {
            Some(reply) => client.publish_with_reply_and_headers(subject, reply, Self::headers(m), payload).await,
            None => client.publish_with_headers(subject, Self::headers(m), payload).await,
        }
    }

    /// Publishes the batch in order and returns once the stream acknowledged every message
    /// (stored, or dropped as a duplicate within the window), and every batch submitted before.
    pub async fn publish(&mut self, batch: &[Message]) -> Result<Receipt, BusError> {
        let (ticket, receipt) = self.submit(batch).await?;
        self.confirm(ticket).await?;
        // Confirmed the fast way: every message stored, none a duplicate.
        Ok(if receipt.acknowledged == 0 { Receipt { acknowledged: batch.len(), duplicates: 0 } } else { receipt })
    }

    /// Sends the batch on (see the type's docs) and returns its ticket for [`Self::confirm`],
    /// with what is already known of it: every message's answer when they were answered each,
    /// nothing yet when only the last will be.
    pub async fn submit(&mut self, batch: &[Message]) -> Result<(u64, Receipt), BusError> {
        if batch.is_empty() {
            return Ok((self.batch, Receipt::default()));
        }
        match self.expected {
            Some(previous) => self.submit_last_answered(batch, previous).await,
            None => self.publish_each_answered(batch).await,
        }
    }

    /// Resolves once every batch submitted up to `ticket` is stored (or was answered a
    /// duplicate when answered each). An error leaves the publisher answering each message.
    pub async fn confirm(&mut self, ticket: u64) -> Result<(), BusError> {
        while let Some(&(batch, total, expected)) = self.in_flight.front() {
            if batch > ticket {
                break;
            }
            let answer = self.next_ack(batch, total, total).await;
            self.in_flight.pop_front();
            let fail = |this: &mut Self, e: BusError| {
                this.expected = None;
                this.in_flight.clear();
                Err(e)
            };
            match answer {
                Ok((false, sequence)) if sequence == expected => {}
                Ok((duplicate, sequence)) => {
                    let detail = format!(
                        "the stream's sequence after the batch is {sequence}{}, not {expected}: a message was dropped or refused",
                        if duplicate { " (a duplicate)" } else { "" }
                    );
                    return fail(self, BusError::NotAcknowledged { unacked: total, total, detail });
                }
                Err(e) => return fail(self, e),
            }
        }
        Ok(())
    }

    async fn submit_last_answered(&mut self, batch: &[Message], previous: u64) -> Result<(u64, Receipt), BusError> {
        self.batch += 1;
        let total = batch.len();
        for (i, m) in batch.iter().enumerate() {
            let reply = (i + 1 == total).then(|| format!("{}.{}.{i}", self.inbox, self.batch));
            if let Err(e) = self.send(m, reply).await {
                self.expected = None;
                self.in_flight.clear();
                return Err(BusError::NotAcknowledged { unacked: total, total, detail: e.to_string() });
            }
        }
        let expected = previous + total as u64;
        self.expected = Some(expected);
        self.in_flight.push_back((self.batch, total, expected));
        Ok((self.batch, Receipt::default()))
    }

    /// Every message answered; the fast way starts after a batch whose every message was newly
    /// stored (it learns the stream's last sequence from it).
    async fn publish_each_answered(&mut self, batch: &[Message]) -> Result<(u64, Receipt), BusError> {
        self.batch += 1;
        let total = batch.len();
        let max = self.bus.config.max_in_flight.max(1);
        let mut receipt = Receipt::default();
        let mut outstanding = 0usize;
        let mut stored = None;
        let this = self.batch;
        for (i, m) in batch.iter().enumerate() {
            let reply = format!("{}.{this}.{i}", self.inbox);
            self.send(m, Some(reply)).await.map_err(|e| BusError::NotAcknowledged {
                unacked: total - receipt.acknowledged,
                total,
                detail: e.to_string(),
            })?;
            outstanding += 1;
            if outstanding >= max {
                let (duplicate, sequence) = self.next_ack(this, total, total - receipt.acknowledged).await?;
                receipt.count(duplicate);
                if !duplicate {
                    stored = stored.max(Some(sequence));
                }
                outstanding -= 1;
            }
        }
        while outstanding > 0 {
            let (duplicate, sequence) = self.next_ack(this, total, total - receipt.acknowledged).await?;
            receipt.count(duplicate);
            if !duplicate {
                stored = stored.max(Some(sequence));
            }
            outstanding -= 1;
        }
        if receipt.duplicates > 0 {
            tracing::info!(stream = %self.names.stream, duplicates = receipt.duplicates, "the stream dropped re-published events");
        }
        // Only this publisher writes the stream: its last stored message is the stream's last.
        // Heartbeats alone prove nothing: their ids are new at every opening, so a restart's
        // first heartbeat is stored while the events after the checkpoint, still to be
        // re-published, are duplicates.
        let re_readable = batch.iter().any(|m| m.kind != MessageKind::Heartbeat);
        self.expected = if receipt.duplicates == 0 && re_readable { stored } else { None };
        Ok((this, receipt))
    }
}

/// Reads a subscription's stream for a consumer group or from a time.
pub struct NatsConsumer {
    bus: NatsBus,
    subscription: String,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    group: Option<String>,
    last: Option<jetstream::Message>,
    dedup: crate::consumer::Dedup,
}

impl NatsConsumer {
    /// Up to `max` messages, waiting at most `wait` for the first; duplicates (by id) dropped.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let config = &self.bus.config;
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max.max(1))
            .expires(wait.max(Duration::from_millis(10)))
            .messages()
            .await
            .map_err(|e| api_error(config, "a fetch", e))?;
        let mut out = Vec::new();
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| api_error(config, "a fetch", e))?;
            let sequence = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            let headers = m.headers.clone().unwrap_or_default();
            let id =
                headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str().to_string()).unwrap_or_default();
            let kind = headers.get(header::KIND).and_then(|v| MessageKind::parse(v.as_str()));
            let delivery = Delivery {
                subject: m.subject.to_string(),
                partition: 0,
                sequence,
                key: headers.get(header::KEY).map(|v| bytes::Bytes::copy_from_slice(v.as_str().as_bytes())),
                payload: (kind != Some(MessageKind::Tombstone)).then(|| m.payload.clone()),
                source_ts_ms: source_ts(&headers).unwrap_or(0),
                kind,
                id,
            };
            let fresh = self.dedup.insert(&delivery.id);
            self.last = Some(m);
            if fresh {
                out.push(delivery);
            }
        }
        Ok(out)
    }

    /// Acknowledges everything delivered so far (the group resumes after it); waits for the
    /// server to confirm. A no-op for readers without a group.
    pub async fn commit(&mut self) -> Result<(), BusError> {
        if self.group.is_none() {
            return Ok(());
        }
        if let Some(m) = self.last.take() {
            m.double_ack().await.map_err(|e| api_error(&self.bus.config, "an acknowledgement", e))?;
        }
        Ok(())
    }

    pub async fn position(&self) -> Result<Option<GroupPosition>, BusError> {
        match &self.group {
            Some(g) => Ok(Some(self.bus.group_position(&self.subscription, g).await?)),
            None => Ok(None),
        }
    }

    pub fn duplicates_dropped(&self) -> u64 {
        self.dedup.dropped()
    }
}
