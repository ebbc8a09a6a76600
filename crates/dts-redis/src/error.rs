//! The Redis family's errors, classified where they are born (transient, needs operator, fatal)
//! and turned into the engine's `ConnectorError` with a summary of our own words.

use dts_core::{ConnectorError, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server answered with an error reply to a command (its text is kept for logs).
    #[error("{command} failed: {reply}")]
    Server { command: String, reply: String },
    #[error("authentication failed")]
    Auth(String),
    #[error("timed out: {0}")]
    Timeout(String),
    /// rustls refused the server (its certificate, its name, or it does not speak TLS).
    #[error("TLS: {0}")]
    Tls(String),
    /// Something only an operator can change (a denied SYNC, a module type, an unsupported setting).
    #[error("{0}")]
    Operator(String),
    #[error(transparent)]
    Rdb(#[from] crate::rdb::RdbError),
    /// The destination failed while it loaded a relayed snapshot (it dropped or stalled the
    /// replica link, or refused the load): transient, and the next attempt copies the snapshot
    /// as commands instead (`relay`).
    #[error("snapshot relay: {0}")]
    Relay(String),
}

impl RedisError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Io(_) | Self::Closed | Self::Timeout(_) | Self::Relay(_) => ErrorClass::Transient,
            Self::Server { reply, .. } if is_transient_reply(reply) => ErrorClass::Transient,
            Self::Server { .. } | Self::Auth(_) | Self::Operator(_) | Self::Tls(_) => ErrorClass::NeedsOperator,
            Self::Protocol(_) => ErrorClass::Transient,
            Self::Rdb(e) => rdb_class(e),
        }
    }

    /// As the engine's error: `what` says what dts was doing, in our words.
    pub fn into_connector(self, what: &str) -> ConnectorError {
        let class = self.class();
        let summary = match &self {
            Self::Auth(_) => format!("{what}: authentication failed (check the user and password)"),
            Self::Operator(m) => format!("{what}: {m}"),
            Self::Rdb(e) if rdb_class(e) != ErrorClass::Transient => format!("{what}: {e}"),
            Self::Server { command, .. } => format!("{what}: the server refused {command}"),
            Self::Closed | Self::Io(_) => format!("{what}: the connection was lost"),
            // Our own words (what was waited for), never a server's.
            Self::Timeout(waited_for) => format!("{what}: timed out waiting for {waited_for}"),
            Self::Tls(_) => {
                format!("{what}: the TLS handshake failed (check SslMode and the CA, and that the port speaks TLS)")
            }
            Self::Relay(m) => format!("{what}: the destination did not load the relayed snapshot ({m})"),
            Self::Protocol(_) | Self::Rdb(_) => format!("{what}: the server sent data dts could not read"),
        };
        ConnectorError::new(class, summary, self.to_string())
    }
}

/// Replies that go away by themselves: loading, a busy script, a failover, read-only replicas.
fn is_transient_reply(reply: &str) -> bool {
    ["LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "MOVED", "ASK"]
        .iter()
        .any(|p| reply.starts_with(p))
}

/// How an RDB reading error is handled: a cut stream is read again, a value dts cannot write
/// needs the operator.
fn rdb_class(e: &crate::rdb::RdbError) -> ErrorClass {
    use crate::rdb::RdbError as E;
    match e {
        E::Io(_) | E::Truncated { .. } | E::ChecksumMismatch { .. } | E::AfterError => ErrorClass::Transient,
        E::Module { .. }
        | E::TooLarge { .. }
        | E::NeedsRestore { .. }
        | E::Unsupported(_)
        | E::UnsupportedVersion(_) => ErrorClass::NeedsOperator,
        E::BadMagic(_) | E::UnknownType { .. } | E::Corrupt { .. } | E::BadPayload(_) => ErrorClass::NeedsOperator,
    }
}

pub type Result<T, E = RedisError> = std::result::Result<T, E>;
