//! Errors of the engine.

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] dts_store::StoreError),
    /// A job whose spec cannot be turned into a plan (the message is safe to show).
    #[error("{0}")]
    Plan(String),
}
