//! Checkpoints of a job's steps, as keys and values per job: the engine's own under `engine/`,
//! each family's connector's under `<family>/`, the last consistency report under
//! `consistency/`. A write is durable when it returns (SQLite commit, WAL, synchronous=NORMAL
//! survives a process crash; `FULL` would be needed against power loss).

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// The `ErrorInfo` log of a job that ended because an operator stopped it (not a failure).
pub const STOPPED_ON_REQUEST: &str = "the job was stopped on request";

/// The last consistency report of a job (JSON of `dts_core::ConsistencyReport`).
pub const CONSISTENCY_REPORT_KEY: &str = "consistency/report";

/// Where CompleteMigrateJob records its `CompleteMode` for the engine (one of the engine's own
/// checkpoints, under `engine/`; a family's connector sees only its own `<family>/` scope).
pub const COMPLETE_MODE_KEY: &str = "engine/complete_mode";

impl Store {
    pub fn checkpoint(&self, job_id: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM job_checkpoints WHERE job_id = ?1 AND key = ?2", params![job_id, key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn put_checkpoint(&self, job_id: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO job_checkpoints (job_id, key, value) VALUES (?1, ?2, ?3) \
             ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value",
            params![job_id, key, value],
        )?;
        Ok(())
    }

    /// Every checkpoint of a job whose key starts with `prefix`, in key order.
    pub fn checkpoints(&self, job_id: &str, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT key, value FROM job_checkpoints WHERE job_id = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![job_id, prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets a job's checkpoints (after its release); the last consistency report stays, for
    /// `ConsistencyType` 4 (re-check what was inconsistent) and `dts job diff`.
    pub fn clear_checkpoints(&self, job_id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM job_checkpoints WHERE job_id = ?1 AND substr(key, 1, 12) != 'consistency/'",
            [job_id],
        )?;
        Ok(())
    }
}
