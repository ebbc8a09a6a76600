//! Errors of the change bus, classified where they are born: an unreachable or slow bus is
//! transient (the engine retries and re-publishes from its checkpoint), a refused
//! configuration needs an operator, an event the encoder cannot represent is fatal.

use dts_core::{ConnectorError, ErrorClass};

/// An error of the change bus. `Display` is our own text (safe for API responses); `detail`
/// keeps the client library's text for logs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The bus did not answer (connection refused, timeout, broker down).
    #[error("the change bus at {addr} is unreachable")]
    Unreachable { addr: String, detail: String },
    /// Some messages of a batch were not acknowledged in time or were refused for a reason
    /// that may pass (leader change, full queue); nothing after them may be checkpointed.
    #[error("the change bus did not acknowledge {unacked} of {total} messages")]
    NotAcknowledged { unacked: usize, total: usize, detail: String },
    /// The bus refused a request for a reason an operator must fix (limits, permissions,
    /// a stream or topic configured differently).
    #[error("the change bus refused {what}")]
    Refused { what: String, detail: String },
    /// A subscription, group or prefix name the bus cannot carry.
    #[error("invalid {what} name {name:?}: {rule}")]
    BadName { what: &'static str, name: String, rule: &'static str },
    /// A subscription, stream, topic or consumer group that does not exist.
    #[error("{what} {name:?} does not exist")]
    NotFound { what: &'static str, name: String },
    /// A time outside the retained window.
    #[error("no retained event at or after the requested time")]
    OutOfRetention,
    /// An event the format cannot carry (a bug in the change reader or the encoder).
    #[error("cannot encode the change event: {0}")]
    Encode(String),
}

impl BusError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Unreachable { .. } | Self::NotAcknowledged { .. } => ErrorClass::Transient,
            Self::Refused { .. } | Self::BadName { .. } | Self::NotFound { .. } | Self::OutOfRetention => {
                ErrorClass::NeedsOperator
            }
            Self::Encode(_) => ErrorClass::Fatal,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// The client library's text, for logs only.
    pub fn detail(&self) -> &str {
        match self {
            Self::Unreachable { detail, .. } | Self::NotAcknowledged { detail, .. } | Self::Refused { detail, .. } => {
                detail
            }
            Self::BadName { rule, .. } => rule,
            Self::Encode(d) => d,
            Self::NotFound { .. } | Self::OutOfRetention => "",
        }
    }
}

impl From<BusError> for ConnectorError {
    fn from(e: BusError) -> Self {
        ConnectorError::new(e.class(), e.to_string(), e.detail().to_string())
    }
}
