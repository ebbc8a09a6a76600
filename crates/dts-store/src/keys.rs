//! API keys (SecretId/SecretKey pairs) and the accounts they belong to.

use rand::Rng;
use rand::distributions::Alphanumeric;
use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError, now_string};

/// A key as the verifier needs it.
#[derive(Clone)]
pub struct ApiKey {
    pub secret_id: String,
    pub secret_key: String,
    pub account_id: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey").field("secret_id", &self.secret_id).field("account_id", &self.account_id).finish()
    }
}

/// A key as `dts key list` shows it (no secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKeyInfo {
    pub secret_id: String,
    pub account_id: String,
    pub created_at: String,
}

fn random_string(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

impl Store {
    /// Registers a known pair; a no-op when it exists for that account already.
    pub fn ensure_key(&self, account_id: &str, secret_id: &str, secret_key: &str) -> Result<(), StoreError> {
        if let Some(existing) = self.lookup_key(secret_id)? {
            if existing.account_id == account_id && existing.secret_key == secret_key {
                return Ok(());
            }
            self.delete_key(secret_id)?;
        }
        let enc = self.cipher.encrypt(secret_key, &format!("key:{secret_id}"));
        self.conn().execute(
            "INSERT INTO api_keys (secret_id, secret_key_enc, account_id, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![secret_id, enc, account_id, now_string()],
        )?;
        Ok(())
    }

    /// Generates a new pair for an account and returns it (the only time the secret is shown).
    pub fn create_key(&self, account_id: &str) -> Result<ApiKey, StoreError> {
        let key = ApiKey {
            secret_id: format!("AKID{}", random_string(32)),
            secret_key: random_string(32),
            account_id: account_id.to_string(),
        };
        self.ensure_key(&key.account_id, &key.secret_id, &key.secret_key)?;
        Ok(key)
    }

    pub fn lookup_key(&self, secret_id: &str) -> Result<Option<ApiKey>, StoreError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row("SELECT secret_key_enc, account_id FROM api_keys WHERE secret_id = ?1", [secret_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        match row {
            None => Ok(None),
            Some((enc, account_id)) => Ok(Some(ApiKey {
                secret_id: secret_id.to_string(),
                secret_key: self.cipher.decrypt(&enc, &format!("key:{secret_id}"))?,
                account_id,
            })),
        }
    }

    pub fn list_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT secret_id, account_id, created_at FROM api_keys ORDER BY created_at, secret_id")?;
        let rows = stmt
            .query_map([], |r| Ok(ApiKeyInfo { secret_id: r.get(0)?, account_id: r.get(1)?, created_at: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Returns whether a key was deleted.
    pub fn delete_key(&self, secret_id: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute("DELETE FROM api_keys WHERE secret_id = ?1", [secret_id])? > 0)
    }

    pub fn key_count(&self) -> Result<i64, StoreError> {
        Ok(self.conn().query_row("SELECT COUNT(*) FROM api_keys", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_registered_idempotently_and_secrets_are_not_stored_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.ensure_key("default", "AKIDx", "sekrit-value").unwrap();
        store.ensure_key("default", "AKIDx", "sekrit-value").unwrap();
        assert_eq!(store.key_count().unwrap(), 1);
        assert_eq!(store.lookup_key("AKIDx").unwrap().unwrap().secret_key, "sekrit-value");
        let made = store.create_key("other").unwrap();
        assert_eq!(store.lookup_key(&made.secret_id).unwrap().unwrap().account_id, "other");
        drop(store);
        let raw = std::fs::read(dir.path().join("dts.db")).unwrap();
        let wal = std::fs::read(dir.path().join("dts.db-wal")).unwrap_or_default();
        for bytes in [raw, wal] {
            assert!(!bytes.windows(12).any(|w| w == b"sekrit-value"));
        }
        let store = Store::open(dir.path()).unwrap();
        assert!(store.delete_key("AKIDx").unwrap());
        assert!(store.lookup_key("AKIDx").unwrap().is_none());
    }
}
