//! The source's replica settings for a job's lifetime (`ExternParams`): the values in place
//! are saved in a checkpoint before the first `CONFIG SET`, set again at every (re)start (a
//! restarted source forgot them), and put back when the job ends (completion or release). A
//! cluster source gets them on every master (the values saved are the first master's).

use dts_core::{Checkpoints, ConnectionSpec, ConnectorError, ErrorClass, MigrationPlan};

use crate::conn::Conn;
use crate::resp::Reply;
use crate::settings::RedisSettings;

/// The checkpoint of the values the source had before the job changed them.
pub const SAVED_KEY: &str = "source_config/saved";

fn err(e: crate::error::RedisError) -> ConnectorError {
    e.into_connector("changing the source's replica settings")
}

/// Applies the job's source settings to `servers` (the source, or every master of a cluster);
/// returns a note for the job's detail when something changed.
pub async fn apply(
    plan: &MigrationPlan,
    servers: &[ConnectionSpec],
    checkpoints: &dyn Checkpoints,
) -> Result<Option<String>, ConnectorError> {
    let settings = RedisSettings::parse(plan.extern_params.as_deref()).map_err(err)?;
    if !settings.changes_source() {
        return Ok(None);
    }
    let mut source = Conn::open(servers.first().unwrap_or(&plan.source)).await.map_err(err)?;
    let current_limit = config_get(&mut source, "client-output-buffer-limit").await?;
    let wanted = settings.source_config(&current_limit);
    if checkpoints.get(SAVED_KEY).await?.is_none() {
        let mut saved = Vec::new();
        for (name, _) in &wanted {
            saved.push((name.clone(), config_get(&mut source, name).await?));
        }
        let value = serde_json::to_string(&saved)
            .map_err(|e| ConnectorError::new(ErrorClass::Fatal, "saving settings", e.to_string()))?;
        checkpoints.put(SAVED_KEY, &value).await?;
    }
    for (i, server) in servers.iter().enumerate() {
        if i > 0 {
            source = Conn::open(server).await.map_err(err)?;
        }
        for (name, value) in &wanted {
            source.ok(&["CONFIG", "SET", name, value]).await.map_err(err)?;
        }
    }
    let list: Vec<String> = wanted.iter().map(|(n, v)| format!("{n} {v}")).collect();
    tracing::info!(job_id = %plan.job_id, settings = %list.join("; "), "source replica settings set for the job");
    Ok(Some(format!("source settings for the job: {} (restored when the job ends)", list.join("; "))))
}

/// Puts back the values saved by [`apply`] on `servers`; returns a note when something was
/// restored.
pub async fn restore(
    plan: &MigrationPlan,
    servers: &[ConnectionSpec],
    checkpoints: &dyn Checkpoints,
) -> Result<Option<String>, ConnectorError> {
    let Some(saved) = checkpoints.get(SAVED_KEY).await? else { return Ok(None) };
    let saved: Vec<(String, String)> = serde_json::from_str(&saved).unwrap_or_default();
    if saved.is_empty() {
        return Ok(None);
    }
    for server in servers {
        let mut source = Conn::open(server).await.map_err(err)?;
        for (name, value) in &saved {
            source.ok(&["CONFIG", "SET", name, value]).await.map_err(err)?;
        }
    }
    checkpoints.put(SAVED_KEY, "[]").await?;
    let list: Vec<String> = saved.iter().map(|(n, v)| format!("{n} {v}")).collect();
    tracing::info!(job_id = %plan.job_id, settings = %list.join("; "), "source replica settings restored");
    Ok(Some(format!("source settings restored: {}", list.join("; "))))
}

async fn config_get(source: &mut Conn, name: &str) -> Result<String, ConnectorError> {
    match source.ok(&["CONFIG", "GET", name]).await.map_err(err)? {
        Reply::Array(Some(v)) if v.len() == 2 => Ok(v[1].text().unwrap_or_default()),
        _ => Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            format!("the source does not report its {name} setting"),
            "",
        )),
    }
}
