//! A Redis job's `ExternParams`: the source's replica settings for the job's lifetime (set with
//! `CONFIG SET` before the replica connects, the previous values kept in a checkpoint and put
//! back by the release), and dts's own choices for the destination.
//!
//! | key | unit | source setting |
//! | --- | --- | --- |
//! | `ClientOutputBufferHardLimit` | MB | `client-output-buffer-limit replica <hard> ...` |
//! | `ClientOutputBufferSoftLimit` | MB | `client-output-buffer-limit replica ... <soft> ...` |
//! | `ClientOutputBufferPersistTime` | s | `client-output-buffer-limit replica ... <seconds>` |
//! | `ReplBacklogSize` | MB | `repl-backlog-size` |
//! | `ReplTimeout` | s | `repl-timeout` |
//! | `DstOverwrite` | bool | (dts) the destination's selected databases may hold keys: they are overwritten, not flushed |
//! | `SnapshotRelay` | bool | (dts, default true) the destination may load the source's snapshot itself as a replica of dts (`relay`) when it is safe |

use serde_json::Value;

use crate::error::RedisError;

/// The bounds dts accepts (a typo must not set a 100 TB buffer).
const MAX_MB: u64 = 1 << 20;
const MAX_SECONDS: u64 = 7 * 24 * 3600;

/// What a job's `ExternParams` ask of the source and the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub output_buffer_hard_mb: Option<u64>,
    pub output_buffer_soft_mb: Option<u64>,
    pub output_buffer_persist_secs: Option<u64>,
    pub backlog_mb: Option<u64>,
    pub repl_timeout_secs: Option<u64>,
    pub overwrite: bool,
    /// The snapshot relay may be used where it is safe (`SnapshotRelay`, on unless false).
    pub snapshot_relay: bool,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            output_buffer_hard_mb: None,
            output_buffer_soft_mb: None,
            output_buffer_persist_secs: None,
            backlog_mb: None,
            repl_timeout_secs: None,
            overwrite: false,
            snapshot_relay: true,
        }
    }
}

/// A boolean `ExternParams` key (`true`/`false`, `"1"`/`"0"`, 1/0); `default` when absent.
fn flag(object: &serde_json::Map<String, Value>, key: &str, default: bool) -> Result<bool, RedisError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if matches!(s.as_str(), "true" | "1") => Ok(true),
        Some(Value::String(s)) if matches!(s.as_str(), "false" | "0") => Ok(false),
        Some(Value::String(s)) if s.is_empty() => Ok(default),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v <= 1) => Ok(n.as_u64() == Some(1)),
        Some(_) => Err(RedisError::Operator(format!("ExternParams {key} must be true or false"))),
    }
}

fn number(object: &serde_json::Map<String, Value>, key: &str, max: u64) -> Result<Option<u64>, RedisError> {
    let value = match object.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    match value {
        Some(v) if v <= max => Ok(Some(v)),
        _ => Err(RedisError::Operator(format!("ExternParams {key} must be a whole number from 0 to {max}"))),
    }
}

impl RedisSettings {
    pub fn parse(extern_params: Option<&str>) -> Result<RedisSettings, RedisError> {
        let Some(raw) = extern_params.filter(|s| !s.trim().is_empty()) else { return Ok(Self::default()) };
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(raw) else {
            return Err(RedisError::Operator("ExternParams is not a JSON object".into()));
        };
        Ok(RedisSettings {
            output_buffer_hard_mb: number(&object, "ClientOutputBufferHardLimit", MAX_MB)?,
            output_buffer_soft_mb: number(&object, "ClientOutputBufferSoftLimit", MAX_MB)?,
            output_buffer_persist_secs: number(&object, "ClientOutputBufferPersistTime", MAX_SECONDS)?,
            backlog_mb: number(&object, "ReplBacklogSize", MAX_MB)?,
            repl_timeout_secs: number(&object, "ReplTimeout", MAX_SECONDS)?,
            overwrite: flag(&object, "DstOverwrite", false)?,
            snapshot_relay: flag(&object, "SnapshotRelay", true)?,
        })
    }

    /// Whether any source setting is asked for.
    pub fn changes_source(&self) -> bool {
        self.output_buffer_hard_mb.is_some()
            || self.output_buffer_soft_mb.is_some()
            || self.output_buffer_persist_secs.is_some()
            || self.backlog_mb.is_some()
            || self.repl_timeout_secs.is_some()
    }

    /// The `CONFIG SET` pairs for the source, given its current values (`client-output-buffer-limit`
    /// keeps the classes and fields not asked for).
    pub fn source_config(&self, current_output_limit: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.output_buffer_hard_mb.is_some()
            || self.output_buffer_soft_mb.is_some()
            || self.output_buffer_persist_secs.is_some()
        {
            out.push((
                "client-output-buffer-limit".to_string(),
                replica_output_limit(
                    current_output_limit,
                    self.output_buffer_hard_mb.map(|m| m * 1024 * 1024),
                    self.output_buffer_soft_mb.map(|m| m * 1024 * 1024),
                    self.output_buffer_persist_secs,
                ),
            ));
        }
        if let Some(mb) = self.backlog_mb {
            out.push(("repl-backlog-size".to_string(), (mb * 1024 * 1024).to_string()));
        }
        if let Some(s) = self.repl_timeout_secs {
            out.push(("repl-timeout".to_string(), s.to_string()));
        }
        out
    }
}

/// `client-output-buffer-limit` with the replica class's fields replaced
/// (`normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60`).
pub fn replica_output_limit(current: &str, hard: Option<u64>, soft: Option<u64>, secs: Option<u64>) -> String {
    let parts: Vec<&str> = current.split_whitespace().collect();
    let mut out = Vec::new();
    let mut found = false;
    for group in parts.chunks(4) {
        if group.len() == 4 && (group[0] == "slave" || group[0] == "replica") {
            found = true;
            out.push(format!(
                "replica {} {} {}",
                hard.map(|v| v.to_string()).unwrap_or_else(|| group[1].to_string()),
                soft.map(|v| v.to_string()).unwrap_or_else(|| group[2].to_string()),
                secs.map(|v| v.to_string()).unwrap_or_else(|| group[3].to_string()),
            ));
        } else {
            out.push(group.join(" "));
        }
    }
    if !found {
        out.push(format!(
            "replica {} {} {}",
            hard.unwrap_or(256 * 1024 * 1024),
            soft.unwrap_or(64 * 1024 * 1024),
            secs.unwrap_or(60)
        ));
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extern_params_of_the_seed_become_source_settings() {
        let s = RedisSettings::parse(Some(
            r#"{"ClientOutputBufferHardLimit":512,"ClientOutputBufferSoftLimit":256,"ClientOutputBufferPersistTime":60,"ReplBacklogSize":64,"ReplTimeout":"120"}"#,
        ))
        .unwrap();
        let config = s.source_config("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
        assert_eq!(
            config,
            vec![
                (
                    "client-output-buffer-limit".to_string(),
                    "normal 0 0 0 replica 536870912 268435456 60 pubsub 33554432 8388608 60".to_string()
                ),
                ("repl-backlog-size".to_string(), (64u64 << 20).to_string()),
                ("repl-timeout".to_string(), "120".to_string()),
            ]
        );
    }

    #[test]
    fn out_of_range_or_mistyped_values_are_refused_with_the_key() {
        let e = RedisSettings::parse(Some(r#"{"ReplTimeout":-1}"#)).unwrap_err();
        assert!(e.to_string().contains("ReplTimeout"));
        assert!(RedisSettings::parse(Some(r#"{"ReplBacklogSize":"lots"}"#)).is_err());
        assert!(RedisSettings::parse(Some(r#"{"DstOverwrite":"maybe"}"#)).is_err());
        assert!(RedisSettings::parse(Some(r#"{"DstOverwrite":true}"#)).unwrap().overwrite);
        assert_eq!(RedisSettings::parse(None).unwrap(), RedisSettings::default());
    }

    #[test]
    fn the_snapshot_relay_is_on_unless_turned_off() {
        assert!(RedisSettings::parse(None).unwrap().snapshot_relay);
        assert!(RedisSettings::parse(Some(r#"{"DstOverwrite":false}"#)).unwrap().snapshot_relay);
        assert!(!RedisSettings::parse(Some(r#"{"SnapshotRelay":false}"#)).unwrap().snapshot_relay);
        assert!(!RedisSettings::parse(Some(r#"{"SnapshotRelay":"0"}"#)).unwrap().snapshot_relay);
        let e = RedisSettings::parse(Some(r#"{"SnapshotRelay":"sometimes"}"#)).unwrap_err();
        assert!(e.to_string().contains("SnapshotRelay"));
    }
}
