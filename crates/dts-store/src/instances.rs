//! DTS instances of the Alibaba dialect: what `CreateDtsInstance` bought (kept as the dialect's
//! own JSON document) and which job ids it reserved, one per synchronization direction.
//!
//! The jobs themselves live in `jobs` once configured; an instance only names them, so a job is
//! one record whichever dialect drives it.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;

use crate::{Store, StoreError, now_string};

/// One instance.
#[derive(Debug, Clone, PartialEq)]
pub struct DtsInstance {
    pub instance_id: String,
    pub account_id: String,
    /// What the dialect recorded (type, topology, purchase fields, per-direction settings).
    pub info: Value,
    pub forward_job_id: String,
    /// Only for two-way synchronization.
    pub reverse_job_id: Option<String>,
    pub create_time: String,
}

const COLUMNS: &str = "instance_id, account_id, info, forward_job_id, reverse_job_id, create_time";

fn read(r: &Row<'_>) -> rusqlite::Result<(String, String, String, String, Option<String>, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn decode(raw: (String, String, String, String, Option<String>, String)) -> Result<DtsInstance, StoreError> {
    Ok(DtsInstance {
        info: serde_json::from_str(&raw.2).map_err(|e| StoreError::Corrupt(format!("instance info: {e}")))?,
        instance_id: raw.0,
        account_id: raw.1,
        forward_job_id: raw.3,
        reverse_job_id: raw.4,
        create_time: raw.5,
    })
}

impl Store {
    /// Stores a new instance (its `create_time` is set here).
    pub fn insert_instance(&self, instance: &DtsInstance) -> Result<DtsInstance, StoreError> {
        let now = now_string();
        self.conn().execute(
            "INSERT INTO dts_instances (instance_id, account_id, info, forward_job_id, reverse_job_id, create_time, \
             seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT COALESCE(MAX(seq), 0) + 1 FROM dts_instances))",
            params![
                instance.instance_id,
                instance.account_id,
                instance.info.to_string(),
                instance.forward_job_id,
                instance.reverse_job_id,
                now,
            ],
        )?;
        Ok(DtsInstance { create_time: now, ..instance.clone() })
    }

    /// An instance of an account by its id.
    pub fn instance(&self, account_id: &str, instance_id: &str) -> Result<Option<DtsInstance>, StoreError> {
        let raw = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM dts_instances WHERE instance_id = ?1 AND account_id = ?2"),
                params![instance_id, account_id],
                read,
            )
            .optional()?;
        raw.map(decode).transpose()
    }

    /// The instance of an account that reserved `job_id` (in either direction).
    pub fn instance_of_job(&self, account_id: &str, job_id: &str) -> Result<Option<DtsInstance>, StoreError> {
        let raw = self
            .conn()
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM dts_instances WHERE account_id = ?1 \
                     AND (forward_job_id = ?2 OR reverse_job_id = ?2)"
                ),
                params![account_id, job_id],
                read,
            )
            .optional()?;
        raw.map(decode).transpose()
    }

    /// Every instance of an account, oldest first.
    pub fn instances(&self, account_id: &str) -> Result<Vec<DtsInstance>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare(&format!("SELECT {COLUMNS} FROM dts_instances WHERE account_id = ?1 ORDER BY seq"))?;
        let raws = stmt.query_map([account_id], read)?.collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(decode).collect()
    }

    /// Replaces an instance's recorded document.
    pub fn set_instance_info(&self, instance_id: &str, info: &Value) -> Result<(), StoreError> {
        let n = self.conn().execute(
            "UPDATE dts_instances SET info = ?2 WHERE instance_id = ?1",
            params![instance_id, info.to_string()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Forgets an instance (its jobs are deleted separately).
    pub fn delete_instance(&self, instance_id: &str) -> Result<(), StoreError> {
        self.conn().execute("DELETE FROM dts_instances WHERE instance_id = ?1", [instance_id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_found_by_either_of_its_job_ids_and_only_by_its_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let inst = DtsInstance {
            instance_id: "dtsi-1".into(),
            account_id: "a".into(),
            info: serde_json::json!({"Type": "SYNC"}),
            forward_job_id: "dts-f".into(),
            reverse_job_id: Some("dts-r".into()),
            create_time: String::new(),
        };
        store.insert_instance(&inst).unwrap();
        assert_eq!(store.instance_of_job("a", "dts-r").unwrap().unwrap().instance_id, "dtsi-1");
        assert_eq!(store.instance_of_job("a", "dts-f").unwrap().unwrap().info["Type"], "SYNC");
        assert!(store.instance_of_job("b", "dts-f").unwrap().is_none());
        store.set_instance_info("dtsi-1", &serde_json::json!({"Type": "MIGRATION"})).unwrap();
        assert_eq!(store.instance("a", "dtsi-1").unwrap().unwrap().info["Type"], "MIGRATION");
        assert_eq!(store.instances("a").unwrap().len(), 1);
        store.delete_instance("dtsi-1").unwrap();
        assert!(store.instance("a", "dtsi-1").unwrap().is_none());
    }
}
