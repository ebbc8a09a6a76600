//! Integration tests of the change bus: both formats against real decoders for every column
//! type, and publishing/consuming against throwaway NATS JetStream servers and tansu Kafka
//! brokers (with independent clients reading the same streams).

#[path = "cases/fixtures.rs"]
mod fixtures;
#[path = "cases/formats.rs"]
mod formats;
#[path = "cases/kafka.rs"]
mod kafka;
#[path = "cases/nats.rs"]
mod nats;
#[path = "cases/sink.rs"]
mod sink;
