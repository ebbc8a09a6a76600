//! Releasing what a job holds on servers (a replication slot, replica settings, deferred keys;
//! a deleted subscription's stream or topic on the change bus) once no task of the job runs: after a delete (either API, also of a running job: the task is
//! stopped first), a reset, or the job's end. Only after the connector released them do the
//! job's checkpoints go (and a deleted job's row with them), so whatever a recovery depends on
//! is never deleted before it is no longer needed. A failing release is retried (capped
//! backoff) until it succeeds or the server shuts down; it is never skipped while the job has
//! family checkpoints, even when its plan cannot be built now (an instance removed from the
//! registry): it then waits, logging why, until the plan can be built again.

use std::sync::Arc;
use std::time::Duration;

use dts_core::{ErrorClass, JobKind, Releaser};
use dts_store::JobRecord;
use tokio_util::sync::CancellationToken;

use crate::checkpoints::blocking;

/// The engine's own checkpoints and the kept consistency report: neither records anything a
/// job holds on a server.
const ENGINE_PREFIX: &str = "engine/";
const CONSISTENCY_PREFIX: &str = "consistency/";
use crate::{ConnectorRegistry, Engine, resolve_plan};

impl<R: ConnectorRegistry> Engine<R> {
    pub(crate) async fn run_release(self: Arc<Self>, job: JobRecord, token: CancellationToken) {
        let id = job.job_id.clone();
        let job_id = id.clone();
        let Ok(Some(pending)) = blocking(&self.store, move |s| s.pending_release(&job_id)).await else { return };
        let mut backoff = Duration::from_secs(1);
        let mut job = job;
        let plan = loop {
            let (instances, for_plan) = (self.instances.clone(), job.clone());
            let problem = match blocking(&self.store, move |s| resolve_plan(s, &for_plan, &instances)).await {
                Ok(plan) => match self.registry.connector(&plan.route) {
                    Ok(_) => break Some(plan),
                    Err(e) => e.summary,
                },
                Err(e) => e.to_string(),
            };
            // Nothing to connect to (an instance gone from the registry, a spec this server
            // cannot read). A family's checkpoints may be the only record of what the job holds
            // on a server (deferred secondary keys), so they never go unreleased: the release
            // waits until the operator restores what the plan needs (logged on every attempt).
            let job_id = id.clone();
            let holds = blocking(&self.store, move |s| s.checkpoints(&job_id, "")).await.map(|all| {
                all.iter().any(|(k, _)| !k.starts_with(ENGINE_PREFIX) && !k.starts_with(CONSISTENCY_PREFIX))
            });
            if matches!(holds, Ok(false)) {
                tracing::warn!(job_id = %id, problem = %problem, "a job's plan cannot be built and it holds nothing; its checkpoints go");
                break None;
            }
            tracing::warn!(job_id = %id, problem = %problem, "a job's plan cannot be built; its release waits (the checkpoints stay) until it can");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = token.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
            // The operator may have fixed the job meanwhile (its spec is read again).
            let job_id = id.clone();
            match blocking(&self.store, move |s| s.job_for_release(&job_id)).await {
                Ok(Some(fresh)) => job = fresh,
                Ok(None) => return,
                Err(e) => tracing::warn!(job_id = %id, error = %e, "cannot read a job being released"),
            }
        };
        match plan {
            None => {}
            Some(plan) => match self.registry.connector(&plan.route) {
                Err(e) => tracing::warn!(job_id = %id, error = %e.summary, "no connector to release a job's resources"),
                Ok(connector) => {
                    let checkpoints = self.family_checkpoints(&plan);
                    let mut backoff = Duration::from_secs(1);
                    loop {
                        let attempt = connector.release(&plan, pending.reason, &checkpoints);
                        let result = tokio::select! {
                            r = attempt => r,
                            _ = token.cancelled() => return,
                        };
                        match result {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::warn!(job_id = %id, reason = pending.reason.as_str(), summary = %e.summary, detail = %e.detail, "releasing a job's resources failed; retrying");
                                tokio::select! {
                                    _ = tokio::time::sleep(backoff) => {}
                                    _ = token.cancelled() => return,
                                }
                                backoff = (backoff * 2).min(Duration::from_secs(60));
                            }
                        }
                    }
                }
            },
        }
        // A deleted subscription's events and consumer groups go from the bus with it.
        if pending.deleted
            && job.kind == JobKind::ChangeTracking
            && let Some(sink) = self.registry.change_sink()
        {
            let mut backoff = Duration::from_secs(1);
            loop {
                let result = tokio::select! {
                    r = sink.remove(&id) => r,
                    _ = token.cancelled() => return,
                };
                match result {
                    Ok(()) => break,
                    // Refused for good (a bus that does not delete): the events stay until their
                    // retention ends; the job's release goes on.
                    Err(e) if e.class != ErrorClass::Transient => {
                        tracing::warn!(job_id = %id, summary = %e.summary, detail = %e.detail, "the bus refused to delete a deleted subscription; its events stay until their retention ends");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(job_id = %id, summary = %e.summary, detail = %e.detail, "deleting a subscription on the bus failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = token.cancelled() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    }
                }
            }
        }
        let job_id = id.clone();
        match blocking(&self.store, move |s| s.finish_release(&job_id)).await {
            Ok(()) => tracing::info!(job_id = %id, reason = pending.reason.as_str(), "job released"),
            Err(e) => tracing::warn!(job_id = %id, error = %e, "cannot record a job's release; it runs again"),
        }
    }
}
