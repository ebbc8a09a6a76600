//! Metadata store of dts: accounts and API keys, jobs with their spec, state, progress and
//! check results, and the DTS instances of the Alibaba dialect, in an embedded SQLite database;
//! secrets encrypted at rest.
//!
//! Every change to a job is a read-modify-write inside one `BEGIN IMMEDIATE` transaction
//! that also bumps the job's `version`, so concurrent writers (API handlers, workers, other
//! processes on the same file) never lose each other's updates.

mod checkpoints;
mod cipher;
mod error;
mod instances;
mod jobs;
mod keys;
pub mod schema;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

pub use checkpoints::{COMPLETE_MODE_KEY, CONSISTENCY_REPORT_KEY, STOPPED_ON_REQUEST};
pub use cipher::SecretCipher;
pub use error::StoreError;
pub use instances::DtsInstance;
pub use jobs::{CheckState, JobError, JobFilter, JobOrder, JobRecord, NewJob, PendingRelease, new_job_id};
pub use keys::{ApiKey, ApiKeyInfo};

/// The metadata store.
pub struct Store {
    conn: Mutex<Connection>,
    cipher: SecretCipher,
}

impl Store {
    /// Opens (creating if needed) `dts.db` and the key file `secret.key` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Io(data_dir.display().to_string(), e))?;
        let cipher = SecretCipher::load_or_create(&data_dir.join("secret.key"))?;
        let conn = Connection::open(data_dir.join("dts.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&conn)?;
        Ok(Store { conn: Mutex::new(conn), cipher })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Current time as the API shows it: `yyyy-mm-dd hh:mm:ss`, UTC.
pub fn now_string() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}
