//! Errors of the metadata store.

use dts_core::IllegalTransition;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot access {0}")]
    Io(String, #[source] std::io::Error),
    #[error("cannot decrypt a stored secret (wrong or replaced key file?)")]
    Decrypt,
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("job not found")]
    NotFound,
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("{0}")]
    Rejected(String),
}
