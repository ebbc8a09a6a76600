//! Kafka as the change bus (librdkafka through `rdkafka`): one topic per subscription, an
//! idempotent `acks=all` producer (its retries never duplicate or reorder a partition), the
//! record key = the primary key's JSON so the key picks the partition (`murmur2_random`, the
//! Java client's partitioner), the message id and source time in headers, consumer groups with
//! manual commits, reads from a time, rewinds by time, positions and lag.
//!
//! Partitions: a keyed message goes where its key hashes; a row of a keyless table goes to the
//! partition its table name hashes to (the table keeps its order); DDL, transaction boundaries
//! and heartbeats go to partition 0. With the default single partition the topic has one
//! global order, which Alibaba's consumers require.
//!
//! Brokers that report a wrong high watermark (tansu counts one per produced batch) are handled
//! by [`KafkaBus::end_offset`], which reads from the reported watermark to the true last record;
//! broker time indexes are not used (see [`crate::seek`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::consumer::{Dedup, Delivery, GroupPosition, PartitionPosition, StartAt, Window};
use crate::encoder::Format;
use crate::error::BusError;
use crate::message::{Message, MessageKind, header};
use crate::naming::{Route, SubscriptionNames, check_name};
use crate::publisher::Receipt;
use crate::seek;

/// At most this many ids per partition are read back when a group consumer opens: re-publishes
/// follow their originals within one engine checkpoint interval, far fewer records than this.
const PRELOAD_MAX: usize = 20_000;

/// How long a probe waits for a record it knows exists.
const PROBE_WAIT: Duration = Duration::from_secs(10);

/// A Kafka cluster.
#[derive(Clone)]
pub struct KafkaBus {
    config: KafkaConfig,
}

fn unreachable(config: &KafkaConfig, e: impl std::fmt::Display) -> BusError {
    BusError::Unreachable { addr: config.bootstrap.clone(), detail: e.to_string() }
}

fn is_transient(e: &KafkaError) -> bool {
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::QueueFull
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotEnoughReplicas
            | RDKafkaErrorCode::NotEnoughReplicasAfterAppend
            | RDKafkaErrorCode::CoordinatorLoadInProgress
            | RDKafkaErrorCode::CoordinatorNotAvailable,
        ) => true,
        _ => matches!(e, KafkaError::Canceled),
    }
}

fn classify(config: &KafkaConfig, what: &str, e: KafkaError) -> BusError {
    if is_transient(&e) {
        unreachable(config, e)
    } else {
        BusError::Refused { what: what.into(), detail: e.to_string() }
    }
}

fn header_str<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    let headers = m.headers()?;
    headers.iter().find(|h| h.key == name).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
}

fn source_ts(m: &BorrowedMessage<'_>) -> i64 {
    header_str(m, header::SOURCE_TS).and_then(|v| v.parse().ok()).or_else(|| m.timestamp().to_millis()).unwrap_or(0)
}

fn delivery(m: &BorrowedMessage<'_>) -> Delivery {
    Delivery {
        id: header_str(m, header::ID).unwrap_or_default().to_string(),
        subject: m.topic().to_string(),
        partition: m.partition(),
        sequence: m.offset().max(0) as u64,
        kind: header_str(m, header::KIND).and_then(MessageKind::parse),
        key: m.key().map(bytes::Bytes::copy_from_slice),
        payload: m.payload().map(bytes::Bytes::copy_from_slice),
        source_ts_ms: source_ts(m),
    }
}

fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Runs a blocking librdkafka call off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, BusError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BusError::Encode(format!("a blocking Kafka call failed: {e}")))
}

impl KafkaBus {
    /// Checks that the cluster answers (metadata within the connect timeout); an unreachable
    /// cluster is a transient [`BusError::Unreachable`].
    pub async fn connect(config: &KafkaConfig) -> Result<Self, BusError> {
        check_name("prefix", &config.prefix)?;
        let bus = Self { config: config.clone() };
        let probe: BaseConsumer =
            bus.client_config(None).create().map_err(|e| classify(config, "the client settings", e))?;
        let timeout = config.timeout.min(Duration::from_secs(10));
        let cfg = config.clone();
        blocking(move || probe.fetch_metadata(None, timeout).map(|_| ())).await?.map_err(|e| unreachable(&cfg, e))?;
        Ok(bus)
    }

    fn client_config(&self, group: Option<&str>) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.config.bootstrap)
            .set("group.id", group.unwrap_or("dts-bus-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", self.config.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", (self.config.session_timeout_ms / 3).max(100).to_string())
            .set("socket.timeout.ms", self.config.timeout.as_millis().to_string())
            .set("log_level", "3");
        for (k, v) in &self.config.properties {
            c.set(k, v);
        }
        c
    }

    pub fn names(&self, subscription: &str) -> Result<SubscriptionNames, BusError> {
        SubscriptionNames::new(&self.config.prefix, subscription)
    }

    /// Creates the subscription's topic if missing, with retention by age and size.
    pub async fn ensure_topic(&self, names: &SubscriptionNames) -> Result<i32, BusError> {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config(None).create().map_err(|e| classify(&self.config, "the client settings", e))?;
        let r = &self.config.retention;
        let (ms, bytes) = (r.max_age.as_millis().to_string(), r.max_bytes.to_string());
        let topic =
            NewTopic::new(names.topic(), self.config.partitions, TopicReplication::Fixed(self.config.replication))
                .set("retention.ms", &ms)
                .set("retention.bytes", &bytes);
        let opts =
            AdminOptions::new().operation_timeout(Some(self.config.timeout)).request_timeout(Some(self.config.timeout));
        let results =
            admin.create_topics([&topic], &opts).await.map_err(|e| classify(&self.config, "creating the topic", e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(classify(&self.config, "creating the topic", KafkaError::AdminOp(code)));
                }
            }
        }
        self.partitions(names).await
    }

    /// Deletes a consumer group (it must have no member); `Ok` when it did not exist.
    pub async fn delete_group(&self, group: &str) -> Result<(), BusError> {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config(None).create().map_err(|e| classify(&self.config, "the client settings", e))?;
        let opts =
            AdminOptions::new().operation_timeout(Some(self.config.timeout)).request_timeout(Some(self.config.timeout));
        let results =
            admin.delete_groups(&[group], &opts).await.map_err(|e| classify(&self.config, "deleting the group", e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((_, code)) => return Err(classify(&self.config, "deleting the group", KafkaError::AdminOp(code))),
            }
        }
        Ok(())
    }

    /// Deletes the subscription's topic; `Ok` when there is none.
    pub async fn delete_topic(&self, subscription: &str) -> Result<(), BusError> {
        let names = self.names(subscription)?;
        let admin: AdminClient<DefaultClientContext> =
            self.client_config(None).create().map_err(|e| classify(&self.config, "the client settings", e))?;
        let opts =
            AdminOptions::new().operation_timeout(Some(self.config.timeout)).request_timeout(Some(self.config.timeout));
        let results = admin
            .delete_topics(&[names.topic()], &opts)
            .await
            .map_err(|e| classify(&self.config, "deleting the topic", e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((_, code)) => return Err(classify(&self.config, "deleting the topic", KafkaError::AdminOp(code))),
            }
        }
        Ok(())
    }

    async fn partitions(&self, names: &SubscriptionNames) -> Result<i32, BusError> {
        let probe = self.reader(None)?;
        let (topic, timeout, cfg) = (names.topic().to_string(), self.config.timeout, self.config.clone());
        let deadline = Instant::now() + timeout;
        loop {
            let t = topic.clone();
            let md = blocking({
                let probe = probe.clone();
                move || probe.fetch_metadata(Some(&t), timeout)
            })
            .await?
            .map_err(|e| classify(&cfg, "reading the topic", e))?;
            let n = md.topics().iter().find(|x| x.name() == topic).map_or(0, |x| x.partitions().len());
            if n > 0 {
                return Ok(n as i32);
            }
            if Instant::now() > deadline {
                return Err(BusError::NotFound { what: "topic", name: topic });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn publisher(&self, subscription: &str, format: Format) -> Result<KafkaPublisher, BusError> {
        let names = self.names(subscription)?;
        let partitions = self.ensure_topic(&names).await?;
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.config.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", self.config.timeout.as_millis().to_string())
            .set("queue.buffering.max.messages", "500000")
            .set("batch.num.messages", "10000")
            .set("log_level", "3");
        for (k, v) in &self.config.properties {
            c.set(k, v);
        }
        let producer: FutureProducer = c.create().map_err(|e| classify(&self.config, "the producer settings", e))?;
        Ok(KafkaPublisher {
            bus: self.clone(),
            producer,
            names,
            format,
            partitions,
            batch: 0,
            pending: Default::default(),
        })
    }

    fn tpl(topic: &str, partitions: i32) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        tpl
    }

    fn reader(&self, group: Option<&str>) -> Result<Arc<BaseConsumer>, BusError> {
        Ok(Arc::new(self.client_config(group).create().map_err(|e| classify(&self.config, "the client settings", e))?))
    }

    /// The first record at or after `offset` in a partition (`offset` < the true end).
    async fn probe(
        &self,
        reader: &Arc<BaseConsumer>,
        topic: &str,
        partition: i32,
        offset: u64,
    ) -> Result<Option<(u64, i64)>, BusError> {
        let (reader, topic, cfg) = (reader.clone(), topic.to_string(), self.config.clone());
        blocking(move || -> Result<Option<(u64, i64)>, BusError> {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, partition, Offset::Offset(offset as i64))
                .map_err(|e| classify(&cfg, "a read", e))?;
            reader.assign(&tpl).map_err(|e| classify(&cfg, "a read", e))?;
            let deadline = Instant::now() + PROBE_WAIT;
            while Instant::now() < deadline {
                match reader.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) if m.partition() == partition && m.offset() >= offset as i64 => {
                        return Ok(Some((m.offset() as u64, source_ts(&m))));
                    }
                    Some(Err(e)) if !is_transient(&e) => return Err(classify(&cfg, "a read", e)),
                    _ => {}
                }
            }
            Ok(None)
        })
        .await?
    }

    /// `(low, end)` of a partition, `end` one past its last record. The reported high
    /// watermark is checked by reading from it: a record at or beyond it moves `end`.
    async fn bounds(&self, reader: &Arc<BaseConsumer>, topic: &str, partition: i32) -> Result<(u64, u64), BusError> {
        let (r, t, cfg, timeout) = (reader.clone(), topic.to_string(), self.config.clone(), self.config.timeout);
        let (low, high) = blocking(move || r.fetch_watermarks(&t, partition, timeout))
            .await?
            .map_err(|e| classify(&cfg, "reading offsets", e))?;
        let (low, high) = (low.max(0) as u64, high.max(0) as u64);
        if high == 0 {
            return Ok((low, 0));
        }
        let (r, t, cfg) = (reader.clone(), topic.to_string(), self.config.clone());
        let end = blocking(move || -> Result<u64, BusError> {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&t, partition, Offset::Offset(high as i64 - 1))
                .map_err(|e| classify(&cfg, "a read", e))?;
            r.assign(&tpl).map_err(|e| classify(&cfg, "a read", e))?;
            let mut end = high;
            let started = Instant::now();
            let mut idle_since = Instant::now();
            while idle_since.elapsed() < Duration::from_millis(300) && started.elapsed() < PROBE_WAIT {
                if let Some(Ok(m)) = r.poll(Duration::from_millis(50))
                    && m.partition() == partition
                {
                    end = end.max(m.offset() as u64 + 1);
                    idle_since = Instant::now();
                }
            }
            Ok(end)
        })
        .await??;
        Ok((low, end))
    }

    /// One past the last record of a partition.
    pub async fn end_offset(&self, subscription: &str, partition: i32) -> Result<u64, BusError> {
        let names = self.names(subscription)?;
        let reader = self.reader(None)?;
        Ok(self.bounds(&reader, names.topic(), partition).await?.1)
    }

    /// Per partition, the offset of the first record at or after `t_ms` (source time), or the
    /// partition's end.
    async fn offsets_at(&self, names: &SubscriptionNames, t_ms: i64) -> Result<Vec<(i32, u64)>, BusError> {
        let partitions = self.partitions(names).await?;
        let reader = self.reader(None)?;
        let mut out = Vec::new();
        for p in 0..partitions {
            let (low, end) = self.bounds(&reader, names.topic(), p).await?;
            let found = seek::first_at_or_after(low, end, t_ms, |o| {
                let reader = reader.clone();
                async move { if o >= end { Ok(None) } else { self.probe(&reader, names.topic(), p, o).await } }
            })
            .await?;
            out.push((p, found.unwrap_or(end)));
        }
        Ok(out)
    }

    pub async fn window(&self, subscription: &str) -> Result<Window, BusError> {
        let names = self.names(subscription)?;
        let partitions = self.partitions(&names).await?;
        let reader = self.reader(None)?;
        let mut w = Window { messages: 0, first_ts_ms: None, last_ts_ms: None };
        for p in 0..partitions {
            let (low, end) = self.bounds(&reader, names.topic(), p).await?;
            if end <= low {
                continue;
            }
            w.messages += end - low;
            if let Some((_, ts)) = self.probe(&reader, names.topic(), p, low).await? {
                w.first_ts_ms = Some(w.first_ts_ms.map_or(ts, |x| x.min(ts)));
            }
            if let Some((_, ts)) = self.probe(&reader, names.topic(), p, end - 1).await? {
                w.last_ts_ms = Some(w.last_ts_ms.map_or(ts, |x| x.max(ts)));
            }
        }
        Ok(w)
    }

    async fn committed(
        &self,
        names: &SubscriptionNames,
        group: &str,
        partitions: i32,
    ) -> Result<Vec<Option<u64>>, BusError> {
        let reader = self.reader(Some(group))?;
        let (tpl, cfg, timeout) = (Self::tpl(names.topic(), partitions), self.config.clone(), self.config.timeout);
        let got = blocking(move || reader.committed_offsets(tpl, timeout))
            .await?
            .map_err(|e| classify(&cfg, "reading the group's offsets", e))?;
        Ok((0..partitions)
            .map(|p| match got.find_partition(names.topic(), p).map(|e| e.offset()) {
                Some(Offset::Offset(n)) if n >= 0 => Some(n as u64),
                _ => None,
            })
            .collect())
    }

    pub async fn group_position(&self, subscription: &str, group: &str) -> Result<GroupPosition, BusError> {
        check_name("consumer group", group)?;
        let names = self.names(subscription)?;
        let partitions = self.partitions(&names).await?;
        let committed = self.committed(&names, group, partitions).await?;
        let reader = self.reader(None)?;
        let mut out = Vec::new();
        for (p, next) in committed.into_iter().enumerate() {
            let p = p as i32;
            let (low, end) = self.bounds(&reader, names.topic(), p).await?;
            let acked = next.and_then(|n| n.checked_sub(1));
            let source_ts_ms = match acked {
                Some(a) if a < end => self.probe(&reader, names.topic(), p, a).await?.map(|x| x.1),
                _ => None,
            };
            let lag = end.saturating_sub(next.unwrap_or(low));
            out.push(PartitionPosition { partition: p, acked, end, lag, source_ts_ms });
        }
        Ok(GroupPosition { group: group.to_string(), partitions: out })
    }

    /// Commits, for a group without running consumers, the offsets of the first records at or
    /// after `t_ms`.
    pub async fn rewind_group(&self, subscription: &str, group: &str, t_ms: i64) -> Result<Vec<(i32, u64)>, BusError> {
        check_name("consumer group", group)?;
        let names = self.names(subscription)?;
        let offsets = self.offsets_at(&names, t_ms).await?;
        let reader = self.reader(Some(group))?;
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &offsets {
            tpl.add_partition_offset(names.topic(), *p, Offset::Offset(*o as i64))
                .map_err(|e| classify(&self.config, "the group's offsets", e))?;
        }
        let cfg = self.config.clone();
        blocking(move || {
            reader.assign(&tpl)?;
            reader.commit(&tpl, CommitMode::Sync)
        })
        .await?
        .map_err(|e| match e.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration,
            ) => BusError::Refused { what: "a rewind of a group with running consumers".into(), detail: e.to_string() },
            _ => classify(&cfg, "the group's offsets", e),
        })?;
        Ok(offsets)
    }

    pub async fn consumer(
        &self,
        subscription: &str,
        start: StartAt,
        dedup_window: usize,
    ) -> Result<KafkaConsumer, BusError> {
        let names = self.names(subscription)?;
        let partitions = self.partitions(&names).await?;
        let group = match &start {
            StartAt::Group(g) => {
                check_name("consumer group", g)?;
                Some(g.clone())
            }
            _ => None,
        };
        let mut dedup = Dedup::new(dedup_window);
        let consumer: StreamConsumer = self
            .client_config(group.as_deref())
            .create()
            .map_err(|e| classify(&self.config, "the client settings", e))?;
        match &start {
            StartAt::Group(g) => {
                self.preload(&names, g, partitions, &mut dedup).await?;
                consumer.subscribe(&[names.topic()]).map_err(|e| classify(&self.config, "joining the group", e))?;
            }
            StartAt::Time(t) => {
                let mut tpl = TopicPartitionList::new();
                for (p, o) in self.offsets_at(&names, *t).await? {
                    tpl.add_partition_offset(names.topic(), p, Offset::Offset(o as i64))
                        .map_err(|e| classify(&self.config, "a read", e))?;
                }
                consumer.assign(&tpl).map_err(|e| classify(&self.config, "a read", e))?;
            }
            StartAt::Beginning => {
                let mut tpl = TopicPartitionList::new();
                for p in 0..partitions {
                    tpl.add_partition_offset(names.topic(), p, Offset::Beginning)
                        .map_err(|e| classify(&self.config, "a read", e))?;
                }
                consumer.assign(&tpl).map_err(|e| classify(&self.config, "a read", e))?;
            }
        }
        Ok(KafkaConsumer {
            bus: self.clone(),
            subscription: subscription.to_string(),
            consumer: Arc::new(consumer),
            group,
            delivered: Vec::new(),
            dedup,
        })
    }

    /// Loads into `dedup` the ids of up to its capacity of records just before the group's
    /// committed offsets.
    async fn preload(
        &self,
        names: &SubscriptionNames,
        group: &str,
        partitions: i32,
        dedup: &mut Dedup,
    ) -> Result<(), BusError> {
        let committed = self.committed(names, group, partitions).await?;
        let reader = self.reader(None)?;
        let per_partition = (dedup.capacity() / partitions.max(1) as usize).min(PRELOAD_MAX) as u64;
        for (p, next) in committed.into_iter().enumerate() {
            let Some(next) = next.filter(|n| *n > 0) else { continue };
            let p = p as i32;
            let (low, _) = self.bounds(&reader, names.topic(), p).await?;
            let from = next.saturating_sub(per_partition).max(low);
            if from >= next {
                continue;
            }
            let (r, topic, cfg) = (reader.clone(), names.topic().to_string(), self.config.clone());
            let ids = blocking(move || -> Result<Vec<String>, BusError> {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, p, Offset::Offset(from as i64))
                    .map_err(|e| classify(&cfg, "a read", e))?;
                r.assign(&tpl).map_err(|e| classify(&cfg, "a read", e))?;
                let mut ids = Vec::new();
                let deadline = Instant::now() + PROBE_WAIT;
                let mut at = from;
                while at < next && Instant::now() < deadline {
                    if let Some(Ok(m)) = r.poll(Duration::from_millis(100))
                        && m.partition() == p
                        && m.offset() >= at as i64
                    {
                        at = m.offset() as u64 + 1;
                        if at <= next {
                            ids.push(header_str(&m, header::ID).unwrap_or_default().to_string());
                        }
                    }
                }
                Ok(ids)
            })
            .await??;
            for id in ids {
                dedup.insert(&id);
            }
        }
        Ok(())
    }
}

/// Publishes a subscription's messages to its topic.
pub struct KafkaPublisher {
    bus: KafkaBus,
    producer: FutureProducer,
    names: SubscriptionNames,
    format: Format,
    partitions: i32,
    /// The last batch submitted.
    batch: u64,
    /// Delivery reports not yet awaited, with their batch, in production order.
    pending: std::collections::VecDeque<(u64, DeliveryFuture)>,
}

impl KafkaPublisher {
    pub fn names(&self) -> &SubscriptionNames {
        &self.names
    }

    fn partition(&self, m: &Message) -> Option<i32> {
        match (&m.route, &m.key) {
            (Route::Table { .. }, Some(_)) => None,
            (Route::Table { database, table }, None) => {
                Some((fnv(&format!("{database}.{table}")) % self.partitions.max(1) as u32) as i32)
            }
            _ => Some(0),
        }
    }

    /// Produces the batch in order and returns once every record's delivery was confirmed,
    /// and every batch submitted before.
    pub async fn publish(&mut self, batch: &[Message]) -> Result<Receipt, BusError> {
        let ticket = self.submit(batch).await?;
        self.confirm(ticket).await?;
        Ok(Receipt { acknowledged: batch.len(), duplicates: 0 })
    }

    /// Awaits the oldest pending delivery report; an error drops every pending one (the caller
    /// re-reads from its checkpoint; the idempotent producer keeps the partition's order).
    async fn settle_oldest(&mut self) -> Result<bool, BusError> {
        let Some((_, f)) = self.pending.pop_front() else { return Ok(false) };
        let unacked = self.pending.len() + 1;
        let result = match f.await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err((e, _))) => Err(classify_delivery(&self.bus.config, e, unacked, unacked)),
            Err(_) => Err(BusError::NotAcknowledged { unacked, total: unacked, detail: "the producer closed".into() }),
        };
        if result.is_err() {
            self.pending.clear();
        }
        result
    }

    /// Produces the batch in order without waiting for its delivery reports (only for room in
    /// the producer's queue); returns its ticket for [`Self::confirm`].
    pub async fn submit(&mut self, batch: &[Message]) -> Result<u64, BusError> {
        self.batch += 1;
        let topic = self.names.topic().to_string();
        let total = batch.len();
        for m in batch {
            let ts = m.source_ts_ms.to_string();
            let headers = OwnedHeaders::new_with_capacity(4)
                .insert(Header { key: header::ID, value: Some(m.id.as_bytes()) })
                .insert(Header { key: header::SOURCE_TS, value: Some(ts.as_bytes()) })
                .insert(Header { key: header::KIND, value: Some(m.kind.as_str().as_bytes()) })
                .insert(Header { key: header::FORMAT, value: Some(self.format.as_str().as_bytes()) });
            let mut record = FutureRecord::<[u8], [u8]>::to(&topic).headers(headers).timestamp(m.source_ts_ms);
            if let Some(k) = &m.key {
                record = record.key(&k[..]);
            }
            if let Some(p) = &m.payload {
                record = record.payload(&p[..]);
            }
            if let Some(p) = self.partition(m) {
                record = record.partition(p);
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(f) => {
                        self.pending.push_back((self.batch, f));
                        break;
                    }
                    Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                        record = r;
                        if !self.settle_oldest().await? {
                            self.producer.poll(Duration::from_millis(10));
                        }
                    }
                    Err((e, _)) => {
                        self.pending.clear();
                        return Err(classify_delivery(&self.bus.config, e, total, total));
                    }
                }
            }
        }
        Ok(self.batch)
    }

    /// Resolves once every record of the batches submitted up to `ticket` was delivered.
    pub async fn confirm(&mut self, ticket: u64) -> Result<(), BusError> {
        while self.pending.front().is_some_and(|(b, _)| *b <= ticket) {
            self.settle_oldest().await?;
        }
        Ok(())
    }
}

fn classify_delivery(config: &KafkaConfig, e: KafkaError, unacked: usize, total: usize) -> BusError {
    if is_transient(&e) {
        BusError::NotAcknowledged { unacked, total, detail: e.to_string() }
    } else {
        classify(config, "a message", e)
    }
}

/// Reads a subscription's topic for a consumer group or from a time.
pub struct KafkaConsumer {
    bus: KafkaBus,
    subscription: String,
    consumer: Arc<StreamConsumer>,
    group: Option<String>,
    /// Per partition, one past the last delivered offset (to commit).
    delivered: Vec<(i32, i64)>,
    dedup: Dedup,
}

impl KafkaConsumer {
    /// Up to `max` records, waiting at most `wait` for the first; duplicates (by id) dropped.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = 0;
        while seen < max.max(1) {
            let limit = if seen == 0 {
                deadline
            } else {
                (tokio::time::Instant::now() + Duration::from_millis(5)).min(deadline)
            };
            let m = match tokio::time::timeout_at(limit, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) if is_transient(&e) => {
                    tracing::debug!(error = %e, "kafka read");
                    continue;
                }
                Ok(Err(e)) => return Err(classify(&self.bus.config, "a read", e)),
                Ok(Ok(m)) => delivery(&m),
            };
            seen += 1;
            let next = m.sequence as i64 + 1;
            match self.delivered.iter_mut().find(|(p, _)| *p == m.partition) {
                Some(d) => d.1 = next,
                None => self.delivered.push((m.partition, next)),
            }
            if self.dedup.insert(&m.id) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Commits everything delivered so far (synchronously). A no-op without a group.
    pub async fn commit(&mut self) -> Result<(), BusError> {
        if self.group.is_none() || self.delivered.is_empty() {
            return Ok(());
        }
        let topic = self.bus.names(&self.subscription)?.topic().to_string();
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &self.delivered {
            tpl.add_partition_offset(&topic, *p, Offset::Offset(*o))
                .map_err(|e| classify(&self.bus.config, "a commit", e))?;
        }
        let (c, cfg) = (self.consumer.clone(), self.bus.config.clone());
        blocking(move || c.commit(&tpl, CommitMode::Sync)).await?.map_err(|e| classify(&cfg, "a commit", e))?;
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
