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
        owner_only(data_dir, 0o700)?;
        let cipher = SecretCipher::load_or_create(&data_dir.join("secret.key"))?;
        let db = data_dir.join("dts.db");
        // Created 0600 before SQLite opens it: SQLite gives its WAL and SHM files the database
        // file's mode. Files of an older data dir are narrowed too.
        let mut create = std::fs::OpenOptions::new();
        create.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut create, 0o600);
        create.open(&db).map_err(|e| StoreError::Io(db.display().to_string(), e))?;
        for file in ["dts.db", "dts.db-wal", "dts.db-shm"] {
            let path = data_dir.join(file);
            if path.exists() {
                owner_only(&path, 0o600)?;
            }
        }
        let conn = Connection::open(&db)?;
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

/// Restricts a path to its owner (`mode`, e.g. 0700 for the data dir, 0600 for a file).
fn owner_only(path: &Path, mode: u32) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| StoreError::Io(path.display().to_string(), e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Current time as the API shows it: `yyyy-mm-dd hh:mm:ss`, UTC.
pub fn now_string() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}
