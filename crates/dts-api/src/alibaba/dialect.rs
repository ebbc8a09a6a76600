//! What the Alibaba actions share: the caller and its typed parameters, the action table, how a
//! `DtsJobId` + `SynchronizationDirection` resolves to an instance and a stored job, and how a
//! job's status reads in Alibaba's words.

use std::collections::BTreeMap;

use dts_core::{JobKind, JobStatus};
use dts_store::{DtsInstance, JobRecord, STOPPED_ON_REQUEST, StoreError};
use serde_json::Value;

use super::reply::AliError;
use super::{configure, consumer_group, control, describe, subscription};
use crate::ApiContext;

/// The actions served.
pub const ACTIONS: [&str; 22] = [
    "CreateDtsInstance",
    "ConfigureDtsJob",
    "DescribePreCheckStatus",
    "StartDtsJob",
    "SuspendDtsJob",
    "StopDtsJob",
    "ResetDtsJob",
    "DeleteDtsJob",
    "DescribeDtsJobs",
    "DescribeDtsJobDetail",
    "ModifyDtsJobName",
    "ConfigureSubscription",
    "CreateConsumerChannel",
    "DescribeConsumerChannel",
    "DeleteConsumerChannel",
    "ModifyConsumerChannel",
    "ModifySubscription",
    "CreateConsumerGroup",
    "DescribeConsumerGroup",
    "ModifyConsumerGroupPassword",
    "DeleteConsumerGroup",
    "DescribeSubscriptionMeta",
];

pub fn dispatch(caller: &Caller<'_>, action: &str) -> Result<Value, AliError> {
    match action {
        "CreateDtsInstance" => configure::create_dts_instance(caller),
        "ConfigureDtsJob" => configure::configure_dts_job(caller),
        "DescribePreCheckStatus" => describe::describe_pre_check_status(caller),
        "StartDtsJob" => control::start_dts_job(caller),
        "SuspendDtsJob" => control::suspend_dts_job(caller),
        "StopDtsJob" => control::stop_dts_job(caller),
        "ResetDtsJob" => control::reset_dts_job(caller),
        "DeleteDtsJob" => control::delete_dts_job(caller),
        "DescribeDtsJobs" => describe::describe_dts_jobs(caller),
        "DescribeDtsJobDetail" => describe::describe_dts_job_detail(caller),
        "ModifyDtsJobName" => control::modify_dts_job_name(caller),
        "ConfigureSubscription" => subscription::configure_subscription(caller),
        "CreateConsumerChannel" => consumer_group::create_consumer_channel(caller),
        "DescribeConsumerChannel" => consumer_group::describe_consumer_channel(caller),
        "DeleteConsumerChannel" => consumer_group::delete_consumer_channel(caller),
        "ModifyConsumerChannel" => consumer_group::modify_consumer_channel(caller),
        "ModifySubscription" => subscription::modify_subscription(caller),
        "CreateConsumerGroup" => consumer_group::create_consumer_group(caller),
        "DescribeConsumerGroup" => consumer_group::describe_consumer_group(caller),
        "ModifyConsumerGroupPassword" => consumer_group::modify_consumer_group_password(caller),
        "DeleteConsumerGroup" => consumer_group::delete_consumer_group(caller),
        "DescribeSubscriptionMeta" => consumer_group::describe_subscription_meta(caller),
        other => Err(AliError::new(404, "InvalidAction.NotFound", format!("Specified api `{other}` is not found."))),
    }
}

/// The caller and its request parameters (query and form merged, decoded).
pub struct Caller<'a> {
    pub ctx: &'a ApiContext,
    pub account_id: &'a str,
    pub params: &'a BTreeMap<String, String>,
}

impl Caller<'_> {
    /// A parameter; an empty value counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&str, AliError> {
        self.get(name).ok_or_else(|| AliError::missing(name))
    }

    /// `True`/`False` as the Python SDKs send them, any case.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, AliError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(AliError::invalid_parameter(name, "it must be true or false")),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, AliError> {
        self.get(name)
            .map(|v| v.parse::<i64>().map_err(|_| AliError::invalid_parameter(name, "it must be an integer")))
            .transpose()
    }

    /// One of `allowed`, compared without case; returns the allowed spelling.
    pub fn choice(&self, name: &str, allowed: &[&'static str]) -> Result<Option<&'static str>, AliError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => allowed.iter().find(|a| a.eq_ignore_ascii_case(v)).map(|a| Some(*a)).ok_or_else(|| {
                AliError::invalid_parameter(name, format!("`{v}` is not one of {}", allowed.join(", ")))
            }),
        }
    }

    pub fn direction(&self) -> Result<Direction, AliError> {
        Ok(match self.choice("SynchronizationDirection", &["Forward", "Reverse"])? {
            Some("Reverse") => Direction::Reverse,
            _ => Direction::Forward,
        })
    }
}

/// Which job of a two-way instance a call addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forward => "Forward",
            Self::Reverse => "Reverse",
        }
    }
}

pub fn store_error(e: StoreError, job_id: &str) -> AliError {
    match e {
        StoreError::NotFound => AliError::not_purchased(job_id),
        StoreError::Illegal(t) => AliError::status_conflict(format!(
            "The task `{job_id}` is {} and cannot do this now.",
            status_words(t.from)
        )),
        StoreError::Rejected(msg) => AliError::status_conflict(msg),
        other => {
            tracing::error!(error = %other, job_id, "metadata store failure");
            AliError::unavailable()
        }
    }
}

fn status_words(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Creating => "not started",
        JobStatus::Checking => "being prechecked",
        JobStatus::CheckPass => "prechecked",
        JobStatus::CheckNotPass => "failed its precheck",
        JobStatus::Running | JobStatus::ReadyComplete => "running",
        JobStatus::Success => "finished",
        JobStatus::Failed => "stopped or failed",
        JobStatus::Stopping => "stopping",
        JobStatus::Completing => "finishing",
        JobStatus::Suspended => "suspended",
    }
}

/// A `DtsJobId` (and direction) resolved: the instance that holds it, if any, and the job id
/// the call addresses, configured (`job`) or only reserved.
pub struct Target {
    pub instance: Option<DtsInstance>,
    pub direction: Direction,
    pub job_id: String,
    pub job: Option<JobRecord>,
}

impl Target {
    /// The configured job, or the documented error for a reserved-only id.
    pub fn configured(&self) -> Result<&JobRecord, AliError> {
        self.job.as_ref().ok_or_else(|| AliError::not_configured(&self.job_id))
    }
}

/// Resolves `DtsJobId`/`DtsInstanceId` and `SynchronizationDirection` of a call.
///
/// A job created through the Tencent dialect has no instance; it answers as its own forward job.
pub fn resolve(caller: &Caller<'_>, instance_param: &str) -> Result<Target, AliError> {
    let direction = caller.direction()?;
    let store = &caller.ctx.store;
    let account = caller.account_id;
    let instance = match (caller.get("DtsJobId"), caller.get(instance_param)) {
        (Some(id), _) => store.instance_of_job(account, id).map_err(|e| store_error(e, id))?,
        (None, Some(inst)) => {
            Some(store.instance(account, inst).map_err(|e| store_error(e, inst))?.ok_or_else(|| {
                AliError::new(403, "OperationDenied.NotPurchased", format!("The DTS instance `{inst}` does not exist."))
            })?)
        }
        (None, None) => return Err(AliError::missing("DtsJobId")),
    };
    let job_id = match (&instance, direction) {
        (Some(i), Direction::Forward) => {
            // The reverse job's own id addresses the reverse job even without a direction.
            match caller.get("DtsJobId") {
                Some(id) if i.reverse_job_id.as_deref() == Some(id) => {
                    let job = load(caller, id)?;
                    return Ok(Target { instance, direction: Direction::Reverse, job_id: id.into(), job });
                }
                _ => i.forward_job_id.clone(),
            }
        }
        (Some(i), Direction::Reverse) => i.reverse_job_id.clone().ok_or_else(|| {
            AliError::invalid_parameter(
                "SynchronizationDirection",
                "Reverse applies only to a two-way (SyncArchitecture bidirectional) synchronization instance",
            )
        })?,
        (None, Direction::Reverse) => {
            return Err(AliError::invalid_parameter(
                "SynchronizationDirection",
                "Reverse applies only to a two-way (SyncArchitecture bidirectional) synchronization instance",
            ));
        }
        (None, Direction::Forward) => caller.required("DtsJobId")?.to_string(),
    };
    let job = load(caller, &job_id)?;
    if instance.is_none() && job.is_none() {
        return Err(AliError::not_purchased(&job_id));
    }
    Ok(Target { instance, direction, job_id, job })
}

fn load(caller: &Caller<'_>, job_id: &str) -> Result<Option<JobRecord>, AliError> {
    match caller.ctx.store.account_job(caller.account_id, job_id) {
        Ok(j) => Ok(Some(j)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(store_error(e, job_id)),
    }
}

/// The Alibaba `JobType` of a job: `MIGRATION`, `SYNC` or `SUBSCRIBE`.
pub fn job_type(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Migration => "MIGRATION",
        JobKind::Synchronization => "SYNC",
        JobKind::ChangeTracking => "SUBSCRIBE",
    }
}

/// Whether a job in status 10 ended because someone stopped it (Alibaba shows `Finished`).
pub fn stopped_on_request(job: &JobRecord) -> bool {
    job.errors.last().is_some_and(|e| e.log == STOPPED_ON_REQUEST)
}

/// Whether the job's incremental step is the one running.
fn replicating(job: &JobRecord) -> bool {
    job.detail.step_no("IncrementalMigration").is_some_and(|n| n == job.detail.step_now)
}

/// `Status` in Alibaba's words (the reference's lists for migration and synchronization).
pub fn status_string(job: &JobRecord) -> &'static str {
    if job.kind == JobKind::ChangeTracking {
        return tracking_status(job);
    }
    let sync = job.kind == JobKind::Synchronization;
    match job.status {
        JobStatus::Creating => "NotStarted",
        JobStatus::Checking => "Prechecking",
        JobStatus::CheckPass => "PreCheckPass",
        JobStatus::CheckNotPass => "PrecheckFailed",
        JobStatus::Running | JobStatus::Stopping if sync && !replicating(job) => "Initializing",
        JobStatus::Running | JobStatus::ReadyComplete | JobStatus::Completing | JobStatus::Stopping if sync => {
            "Synchronizing"
        }
        JobStatus::Running | JobStatus::ReadyComplete | JobStatus::Completing | JobStatus::Stopping => "Migrating",
        JobStatus::Success => "Finished",
        JobStatus::Failed if stopped_on_request(job) => "Finished",
        JobStatus::Failed if sync && !replicating(job) => "InitializeFailed",
        JobStatus::Failed if sync => "Failed",
        JobStatus::Failed => "MigrationFailed",
        JobStatus::Suspended => "Suspending",
    }
}

/// `Status` of a change-tracking task (the reference's list for change tracking).
fn tracking_status(job: &JobRecord) -> &'static str {
    let tracking = job.detail.step_no(dts_core::TRACKING_STEP).is_some_and(|n| n == job.detail.step_now);
    match job.status {
        JobStatus::Creating => "NotStarted",
        JobStatus::Checking => "Prechecking",
        JobStatus::CheckPass => "PreCheckPass",
        JobStatus::CheckNotPass => "PrecheckFailed",
        JobStatus::Running | JobStatus::ReadyComplete | JobStatus::Completing | JobStatus::Stopping
            if job.detail.retry.is_some() =>
        {
            "Retrying"
        }
        JobStatus::Running | JobStatus::ReadyComplete | JobStatus::Completing | JobStatus::Stopping if tracking => {
            "Normal"
        }
        JobStatus::Running | JobStatus::ReadyComplete | JobStatus::Completing | JobStatus::Stopping => "Starting",
        JobStatus::Success => "Finished",
        JobStatus::Failed if stopped_on_request(job) => "Finished",
        JobStatus::Failed => "Abnormal",
        JobStatus::Suspended => "Suspending",
    }
}

/// Whether a status filter (`Status` of DescribeDtsJobs) matches a job, without case.
pub fn status_matches(filter: &str, status: &str) -> bool {
    filter.split(',').map(str::trim).any(|f| f.eq_ignore_ascii_case(status))
}
