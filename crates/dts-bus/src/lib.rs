//! The change bus: change events of a source encoded as Debezium-compatible JSON or Alibaba's
//! Avro record ([`encoder`]), each with a stable message id ([`id`]), published to NATS
//! JetStream or Kafka with acknowledgements ([`publisher`]), and read back by consumer groups
//! that report their position and lag and can be rewound to a time ([`consumer`]).
//!
//! Delivery contract, end to end: the engine encodes a batch of events, publishes it, and
//! checkpoints the source position of the batch's last transaction boundary only after
//! [`Publisher::publish`] returned `Ok` (every message acknowledged by the bus). A crash between
//! the two re-reads and re-publishes events with the ids they had; NATS drops the copies inside
//! the stream's duplicate window, and a consumer that de-duplicates by id ([`Dedup`], built into
//! [`Consumer`]) sees each event once, in order per key.

pub mod alibaba;
pub mod config;
pub mod consumer;
pub mod debezium;
pub mod encoder;
pub mod error;
pub mod heartbeat;
pub mod id;
pub mod kafka;
pub mod message;
pub mod naming;
pub mod nats;
pub mod publisher;
pub mod seek;
pub mod sink;
pub mod temporal;

pub use config::{BusConfig, KafkaConfig, NatsConfig, Retention};
pub use consumer::{Consumer, Dedup, Delivery, GroupPosition, StartAt};
pub use encoder::{Encoder, EncoderOptions, Format};
pub use error::BusError;
pub use heartbeat::HeartbeatClock;
pub use id::MessageIds;
pub use message::{Message, MessageKind};
pub use naming::{Route, SubscriptionNames};
pub use publisher::{Publisher, Receipt};
pub use sink::{BusSink, SinkOptions};
