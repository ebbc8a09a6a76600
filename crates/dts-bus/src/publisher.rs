//! The publishing contract, one for every bus.
//!
//! * **Acknowledged batches.** [`Publisher::publish`] returns `Ok` only when the bus has
//!   durably accepted every message of the batch (NATS: the stream's publish ack, stored or
//!   recognised as a duplicate; Kafka: the delivery report of an `acks=all` idempotent
//!   producer). Only then may the caller checkpoint the source position of the batch's last
//!   transaction boundary. On `Err`, any prefix of the batch may have been stored: the caller
//!   re-reads from its checkpoint and publishes again.
//! * **Order.** Messages are stored in the order of the batch, per stream (NATS) or per
//!   partition (Kafka, where the key picks the partition), so every key's changes keep source
//!   order; batches are published one after the other.
//! * **Idempotency.** Every message carries its stable id. NATS drops a re-published id within
//!   the stream's duplicate window; Kafka's idempotent producer drops its own retries, and a
//!   re-publish after a crash is dropped by consumers de-duplicating by the `dts-id` header
//!   ([`crate::Consumer`] does).
//! * **Durability** is the bus's: a NATS stream on file storage, a Kafka topic with the
//!   configured replication.
//! * **Errors** are classified: unreachable or unacknowledged is transient (retry from the
//!   checkpoint), refused or missing needs an operator.

use crate::config::BusConfig;
use crate::encoder::Format;
use crate::error::BusError;
use crate::kafka::{KafkaBus, KafkaPublisher};
use crate::message::Message;
use crate::naming::SubscriptionNames;
use crate::nats::{NatsBus, NatsPublisher};

/// What a publish did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Messages the bus acknowledged.
    pub acknowledged: usize,
    /// Of those, messages the bus recognised as re-publishes and did not store again (NATS).
    pub duplicates: usize,
}

impl Receipt {
    pub(crate) fn count(&mut self, duplicate: bool) {
        self.acknowledged += 1;
        self.duplicates += usize::from(duplicate);
    }
}

/// A subscription's publisher on the configured bus.
pub enum Publisher {
    Nats(Box<NatsPublisher>),
    Kafka(Box<KafkaPublisher>),
}

impl Publisher {
    /// Connects and makes sure the subscription's stream or topic exists with the configured
    /// retention.
    pub async fn open(config: &BusConfig, subscription: &str, format: Format) -> Result<Self, BusError> {
        match config {
            BusConfig::Nats(c) => {
                Ok(Self::Nats(Box::new(NatsBus::connect(c).await?.publisher(subscription, format).await?)))
            }
            BusConfig::Kafka(c) => {
                Ok(Self::Kafka(Box::new(KafkaBus::connect(c).await?.publisher(subscription, format).await?)))
            }
        }
    }

    /// Publishes `batch` in order; `Ok` once the bus acknowledged all of it.
    pub async fn publish(&mut self, batch: &[Message]) -> Result<Receipt, BusError> {
        match self {
            Self::Nats(p) => p.publish(batch).await,
            Self::Kafka(p) => p.publish(batch).await,
        }
    }

    /// Sends the batch on in order, without waiting for the bus to accept all of it; the
    /// ticket is for [`Self::confirm`].
    pub async fn submit(&mut self, batch: &[Message]) -> Result<u64, BusError> {
        match self {
            Self::Nats(p) => Ok(p.submit(batch).await?.0),
            Self::Kafka(p) => p.submit(batch).await,
        }
    }

    /// Resolves once the bus accepted every batch submitted up to `ticket`.
    pub async fn confirm(&mut self, ticket: u64) -> Result<(), BusError> {
        match self {
            Self::Nats(p) => p.confirm(ticket).await,
            Self::Kafka(p) => p.confirm(ticket).await,
        }
    }

    pub fn names(&self) -> &SubscriptionNames {
        match self {
            Self::Nats(p) => p.names(),
            Self::Kafka(p) => p.names(),
        }
    }
}
