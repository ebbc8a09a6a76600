//! Connector errors, classified where they are born: the engine decides retry versus
//! operator action versus failure from the class alone, and the API shows only `summary`.

use std::fmt;

/// How the engine reacts to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Network blips, server restarts, lock waits: retried with backoff.
    Transient,
    /// Wrong credentials, missing privileges, bad configuration: an operator must act.
    NeedsOperator,
    /// A bug or an impossible state: the job fails.
    Fatal,
}

/// An error from a database connector.
///
/// `summary` is written by us (never the server's raw error text) and is safe to show in API
/// responses; `detail` keeps the server's text for logs only.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConnectorError {
    pub class: ErrorClass,
    pub summary: String,
    pub detail: String,
}

impl ConnectorError {
    pub fn new(class: ErrorClass, summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { class, summary: summary.into(), detail: detail.into() }
    }

    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}
