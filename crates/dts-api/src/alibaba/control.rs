//! The calls that move a task through its life: `StartDtsJob` (first start, or resume of a
//! suspended task from its checkpoints), `SuspendDtsJob`, `StopDtsJob` (the end of a task: a
//! replicating task completes at the next transaction boundary), `ResetDtsJob`, `DeleteDtsJob`
//! and `ModifyDtsJobName`. Each is one atomic update of the job, then a nudge to the engine.

use dts_core::{JobEvent, JobStatus};
use dts_store::{COMPLETE_MODE_KEY, JobRecord};
use serde_json::{Value, json};

use super::dialect::{Caller, Direction, Target, resolve, store_error};
use super::reply::AliError;

/// Runs `change` on the target's job in one atomic update.
fn update(
    caller: &Caller<'_>,
    id: &str,
    change: impl FnOnce(&mut JobRecord) -> Result<(), AliError>,
) -> Result<JobRecord, AliError> {
    crate::update_account_job(&caller.ctx.store, caller.account_id, id, change)
        .map_err(|e| e.unwrap_or_else(|e| store_error(e, id)))
}

fn transition(job: &mut JobRecord, event: JobEvent) -> Result<(), AliError> {
    let id = job.job_id.clone();
    job.apply(event).map_err(|e| store_error(e, &id))
}

/// The reverse direction starts only once the forward one replicates (its initial load done).
pub(super) fn forward_ready(caller: &Caller<'_>, target: &Target) -> Result<(), AliError> {
    let Some(inst) = target.instance.as_ref().filter(|_| target.direction == Direction::Reverse) else {
        return Ok(());
    };
    let forward = caller.ctx.store.account_job(caller.account_id, &inst.forward_job_id).ok();
    let replicating = |f: &JobRecord| f.detail.step_no("IncrementalMigration") == Some(f.detail.step_now);
    match forward {
        Some(f) if matches!(f.status, JobStatus::Running | JobStatus::ReadyComplete) && replicating(&f) => Ok(()),
        _ => Err(AliError::status_conflict(format!(
            "The reverse task of `{}` starts only after the forward task `{}` has finished its initial \
             synchronization and is synchronizing.",
            inst.instance_id, inst.forward_job_id
        ))),
    }
}

pub fn start_dts_job(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let job = target.configured()?;
    let id = job.job_id.clone();
    match job.status {
        JobStatus::CheckPass => {
            forward_ready(caller, &target)?;
            // A task that never ran from this precheck starts afresh: the engine releases what an
            // earlier run left (resources, checkpoints) before the steps run.
            update(caller, &id, |j| j.start_fresh().map_err(|e| store_error(e, &id)))?;
        }
        JobStatus::Suspended => {
            update(caller, &id, |j| transition(j, JobEvent::Resume))?;
            tracing::info!(job_id = %id, "task resumed from its checkpoints");
        }
        JobStatus::Running | JobStatus::ReadyComplete => {}
        JobStatus::Checking => {
            // As on the real service: accepted; the task starts when its precheck passes.
            forward_ready(caller, &target)?;
            update(caller, &id, |j| match j.status {
                JobStatus::Checking => {
                    j.spec.auto_start = true;
                    Ok(())
                }
                _ => j.start_fresh().map_err(|e| store_error(e, &id)),
            })?;
            tracing::info!(job_id = %id, "task starts when its precheck passes");
        }
        JobStatus::CheckNotPass => {
            return Err(AliError::status_conflict(format!(
                "The task `{id}` failed its precheck; DescribePreCheckStatus lists what to repair, then call \
                 ConfigureDtsJob again."
            )));
        }
        _ => {
            return Err(AliError::status_conflict(format!(
                "The task `{id}` is {} and cannot start; configure it again with ConfigureDtsJob.",
                super::dialect::status_string(job)
            )));
        }
    }
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

pub fn suspend_dts_job(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let id = target.configured()?.job_id.clone();
    update(caller, &id, |j| match j.status {
        JobStatus::Suspended => Ok(()),
        JobStatus::Running | JobStatus::ReadyComplete => transition(j, JobEvent::Suspend),
        _ => Err(AliError::status_conflict(format!("Only a running task can be suspended; `{id}` is not running."))),
    })?;
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

pub fn stop_dts_job(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let job = target.configured()?;
    let id = job.job_id.clone();
    if job.status == JobStatus::ReadyComplete {
        // Recorded before the status changes, so the engine never sees Completing without it.
        caller.ctx.store.put_checkpoint(&id, COMPLETE_MODE_KEY, "immediately").map_err(|e| store_error(e, &id))?;
    }
    update(caller, &id, |j| match j.status {
        // Replicating: finish at the next transaction boundary (what the destination has is whole).
        JobStatus::ReadyComplete => transition(j, JobEvent::CompleteRequested),
        JobStatus::Running | JobStatus::Suspended => transition(j, JobEvent::StopRequested),
        JobStatus::Success | JobStatus::Failed | JobStatus::Stopping | JobStatus::Completing => Ok(()),
        _ => Err(AliError::status_conflict(format!("The task `{id}` has not started; there is nothing to stop."))),
    })?;
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

pub fn reset_dts_job(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let id = target.configured()?.job_id.clone();
    update(caller, &id, |j| {
        transition(j, JobEvent::Reset)?;
        j.request_release(dts_core::ReleaseReason::Reset);
        j.check = dts_store::CheckState::unavailable();
        j.detail = dts_core::JobDetail::for_job(j.kind, &j.spec);
        j.errors.clear();
        Ok(())
    })?;
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

/// Deletes the task (a running one is stopped by the engine, which then releases what it holds
/// on the servers and removes it for good).
/// Deleting the forward task releases the whole instance, its reverse task included.
pub fn delete_dts_job(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let store = &caller.ctx.store;
    let account = caller.account_id;
    match (&target.instance, target.direction) {
        (Some(inst), Direction::Forward) => {
            for id in std::iter::once(&inst.forward_job_id).chain(inst.reverse_job_id.iter()) {
                store.delete_job_unchecked(account, id).map_err(|e| store_error(e, id))?;
            }
            store.delete_instance(&inst.instance_id).map_err(|e| store_error(e, &target.job_id))?;
        }
        _ => store.delete_job_unchecked(account, &target.job_id).map_err(|e| store_error(e, &target.job_id))?,
    }
    caller.ctx.wake_engine.notify_one();
    tracing::info!(job_id = %target.job_id, "task deleted");
    Ok(json!({}))
}

pub fn modify_dts_job_name(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let name = caller.required("DtsJobName")?.to_string();
    if name.chars().count() > 128 {
        return Err(AliError::invalid_parameter("DtsJobName", "it is longer than 128 characters"));
    }
    let id = target.configured()?.job_id.clone();
    update(caller, &id, |j| {
        j.spec.name = name;
        Ok(())
    })?;
    Ok(json!({}))
}
