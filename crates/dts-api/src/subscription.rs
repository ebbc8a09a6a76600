//! What both dialects' change-tracking calls share: where the server's change bus is (the
//! address and the subject/topic of a subscription, shown by the Describe calls), what a
//! subscription publishes (DDL and/or DML, kept in the job's `ExternParams`), and read-only
//! questions to the bus (the retained window, a consumer group's position and lag), asked with
//! a short deadline from the blocking threads the handlers run on.
//!
//! Consumer groups live on the bus (NATS durable consumers, Kafka groups); the API keeps only
//! their names and accounts (in the Alibaba instance document) and asks the bus for positions.

use std::future::Future;
use std::time::Duration;

use dts_bus::consumer::{self, GroupPosition, Window};
use dts_bus::{BusConfig, BusError, SubscriptionNames};
use serde_json::{Value, json};

/// How long a Describe call waits for the bus before showing the bus fields empty.
const BUS_DEADLINE: Duration = Duration::from_secs(3);

/// The server's change bus as the API shows it.
#[derive(Debug, Clone)]
pub struct ChangeBusView {
    pub config: BusConfig,
}

impl ChangeBusView {
    pub fn new(config: BusConfig) -> Self {
        Self { config }
    }

    /// `host:port` of the bus (the first one of a list), as consumers connect to it.
    pub fn address(&self) -> String {
        let raw = match &self.config {
            BusConfig::Nats(c) => c.url.as_str(),
            BusConfig::Kafka(c) => c.bootstrap.as_str(),
        };
        let first = raw.split(',').next().unwrap_or_default().trim();
        first.split_once("://").map_or(first, |(_, rest)| rest).to_string()
    }

    /// `nats` or `kafka`.
    pub fn kind(&self) -> &'static str {
        match &self.config {
            BusConfig::Nats(_) => "nats",
            BusConfig::Kafka(_) => "kafka",
        }
    }

    /// The subject prefix (NATS; subscribe to `<it>.>`) or topic (Kafka) of a subscription.
    pub fn topic(&self, subscription: &str) -> String {
        SubscriptionNames::new(self.config.prefix(), subscription)
            .map(|n| n.base)
            .unwrap_or_else(|_| format!("{}.{subscription}", self.config.prefix()))
    }

    /// The retained events of a subscription, if the bus answers in time.
    pub fn window(&self, subscription: &str) -> Option<Window> {
        ask(consumer::window(&self.config, subscription))
    }

    /// The retained events of a subscription, an absent stream or topic being an empty window;
    /// `None` when the bus did not answer in time.
    pub fn retained(&self, subscription: &str) -> Option<Window> {
        match ask_result(consumer::window(&self.config, subscription))? {
            Ok(w) => Some(w),
            Err(BusError::NotFound { .. }) => Some(Window { messages: 0, first_ts_ms: None, last_ts_ms: None }),
            Err(_) => None,
        }
    }

    /// Deletes a consumer group on the bus; `false` when the bus did not confirm in time.
    pub fn delete_group(&self, subscription: &str, group: &str) -> bool {
        ask(consumer::delete_group(&self.config, subscription, group)).is_some()
    }

    /// A consumer group's position, if the bus answers in time and knows the group.
    pub fn group_position(&self, subscription: &str, group: &str) -> Option<GroupPosition> {
        ask(consumer::group_position(&self.config, subscription, group))
    }

    /// Moves a consumer group to the first retained event at or after `t_ms` (source time);
    /// `false` when the bus did not confirm in time.
    pub fn rewind_group(&self, subscription: &str, group: &str, t_ms: i64) -> bool {
        ask(consumer::rewind_group(&self.config, subscription, group, t_ms)).is_some()
    }
}

/// Runs a bus query from a handler's blocking thread, with [`BUS_DEADLINE`].
fn ask<T>(query: impl Future<Output = Result<T, BusError>>) -> Option<T> {
    ask_result(query)?.ok()
}

/// As [`ask`], with the bus's error; `None` when there is no answer in time.
fn ask_result<T>(query: impl Future<Output = Result<T, BusError>>) -> Option<Result<T, BusError>> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return None;
    }
    match handle.block_on(tokio::time::timeout(BUS_DEADLINE, query)) {
        Ok(Ok(v)) => Some(Ok(v)),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, detail = e.detail(), "change bus query failed");
            Some(Err(e))
        }
        Err(_) => None,
    }
}

/// What a subscription publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataTypes {
    pub ddl: bool,
    pub dml: bool,
}

impl DataTypes {
    /// The job's `ExternParams` carrying them (the sink reads the same keys).
    pub fn extern_params(self) -> String {
        json!({ "subscriptionDataType": { "ddl": self.ddl, "dml": self.dml } }).to_string()
    }

    /// `extern_params` with these data types in place of the ones it had (other keys kept).
    pub fn merged_into(self, extern_params: Option<&str>) -> String {
        let mut v: Value = extern_params.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_else(|| json!({}));
        if !v.is_object() {
            v = json!({});
        }
        v["subscriptionDataType"] = json!({ "ddl": self.ddl, "dml": self.dml });
        v.to_string()
    }

    /// Read back from a job's `ExternParams`; both by default.
    pub fn of(extern_params: Option<&str>) -> Self {
        let v: Value = extern_params.and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
        let flag = |k: &str| v["subscriptionDataType"][k].as_bool().unwrap_or(true);
        Self { ddl: flag("ddl"), dml: flag("dml") }
    }
}

/// Milliseconds since the epoch as `yyyy-MM-ddTHH:mm:ssZ` (UTC).
pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// Milliseconds since the epoch as `yyyy-mm-dd hh:mm:ss` (UTC), Tencent's format.
pub fn plain_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_types_round_trip_through_extern_params_and_default_to_both() {
        let t = DataTypes { ddl: false, dml: true };
        assert_eq!(DataTypes::of(Some(&t.extern_params())), t);
        assert_eq!(DataTypes::of(None), DataTypes { ddl: true, dml: true });
        assert_eq!(DataTypes::of(Some("not json")), DataTypes { ddl: true, dml: true });
    }

    #[test]
    fn merged_data_types_replace_the_old_ones_and_keep_the_other_keys() {
        let old = json!({ "startAfterCheck": true, "subscriptionDataType": { "ddl": true, "dml": true } }).to_string();
        let new = DataTypes { ddl: true, dml: false }.merged_into(Some(&old));
        assert_eq!(DataTypes::of(Some(&new)), DataTypes { ddl: true, dml: false });
        assert_eq!(serde_json::from_str::<Value>(&new).unwrap()["startAfterCheck"], true);
        assert!(!DataTypes::of(Some(&DataTypes { ddl: false, dml: true }.merged_into(None))).ddl);
    }

    #[test]
    fn the_bus_address_is_the_first_host_and_port_without_a_scheme() {
        let nats = ChangeBusView::new(BusConfig::Nats(dts_bus::NatsConfig::new("nats://127.0.0.1:4222,nats://h:1")));
        assert_eq!(nats.address(), "127.0.0.1:4222");
        assert_eq!(nats.topic("dts-abc"), "dts.dts-abc");
        let kafka = ChangeBusView::new(BusConfig::Kafka(dts_bus::KafkaConfig::new("k1:9092,k2:9092")));
        assert_eq!(kafka.address(), "k1:9092");
        assert_eq!(iso_ms(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(plain_ms(1_700_000_000_123), "2023-11-14 22:13:20");
    }
}
