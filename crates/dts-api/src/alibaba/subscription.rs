//! Alibaba change tracking (`Type=SUBSCRIBE` instances): `ConfigureSubscription` (the source
//! endpoint, `DbList`, `SubscriptionDataTypeDDL`/`DML`, `Reserve`, `Checkpoint`; the precheck
//! starts at once), `ModifySubscription` (a new selection, which a running task picks up at the
//! next transaction boundary it checkpointed), and the subscription fields of `DescribeDtsJobs`/
//! `DescribeDtsJobDetail` (`SubscriptionHost`, `SubscribeTopic`, `SubscriptionDataType`,
//! `ConsumptionCheckpoint`, `BeginTimestamp`/`EndTimestamp`). Consumer groups are in
//! `consumer_group`.
//!
//! Start, suspend, stop, reset and delete are the task calls of `control`, which work on any
//! job kind. Events go to the server's change bus, one subscription per task id.

use dts_core::{EndpointSpec, JobEvent, JobKind, JobStatus, MigrateOptions, MigrationSpec, Stages};
use dts_store::{CheckState, DtsInstance, JobRecord, NewJob};
use serde_json::{Map, Value, json};

use super::configure::{database_info, endpoint};
use super::dialect::{Caller, resolve, store_error};
use super::reply::AliError;
use crate::subscription::{ChangeBusView, DataTypes, iso_ms};

pub fn configure_subscription(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let Some(instance) = target.instance.clone() else {
        return Err(AliError::not_purchased(&target.job_id));
    };
    if instance.info["Type"].as_str() != Some("SUBSCRIBE") {
        return Err(AliError::invalid_parameter(
            "DtsInstanceId",
            format!("the instance `{}` was not bought for change tracking (Type SUBSCRIBE)", instance.instance_id),
        ));
    }
    let name = caller.required("DtsJobName")?.to_string();
    if name.chars().count() > 128 {
        return Err(AliError::invalid_parameter("DtsJobName", "it is longer than 128 characters"));
    }
    let db_list = caller.required("DbList")?.to_string();
    let info = database_info(&db_list)?;
    let (source, password) = endpoint(caller, "SourceEndpoint")?;
    dts_core::route(&source.database_type, dts_core::DeclaredTarget::ChangeBus)
        .map_err(|e| AliError::invalid_parameter("SourceEndpointEngineName", e.to_string()))?;
    let types = DataTypes {
        ddl: caller.bool("SubscriptionDataTypeDDL")?.unwrap_or(true),
        dml: caller.bool("SubscriptionDataTypeDML")?.unwrap_or(true),
    };
    if !types.ddl && !types.dml {
        return Err(AliError::invalid_parameter(
            "SubscriptionDataTypeDML",
            "at least one of SubscriptionDataTypeDDL and SubscriptionDataTypeDML must be true",
        ));
    }
    if let Some(reserve) = caller.get("Reserve") {
        serde_json::from_str::<Value>(reserve)
            .map_err(|e| AliError::invalid_parameter("Reserve", format!("not JSON ({e})")))?;
    }
    caller.int("DelayRuleTime")?;
    // The start time: the stream begins with the first transaction committed then or later
    // (the engine finds its binlog position; a source whose binlog no longer reaches back that
    // far fails the task at its start, saying so).
    let checkpoint = caller.int("Checkpoint")?;
    if let Some(t) = checkpoint
        && (t <= 0 || t > chrono::Utc::now().timestamp() + 60)
    {
        return Err(AliError::invalid_parameter("Checkpoint", "a unix time in seconds, not in the future"));
    }
    let mut extern_params: Value = serde_json::from_str(&types.extern_params()).unwrap_or_else(|_| json!({}));
    if let Some(t) = checkpoint {
        extern_params[dts_core::extern_params::SUBSCRIPTION_START_TIME] = json!(t);
    }
    let stages = Stages { structure: false, full_data: false, incremental: true };
    let destination = EndpointSpec {
        database_type: source.database_type.clone(),
        access_type: "bus".into(),
        ip: None,
        port: None,
        user: None,
        instance_id: None,
        region: None,
        extra: Default::default(),
    };
    let spec = MigrationSpec {
        // Started by StartDtsJob / ActivateSubscribe (or `startAfterCheck`), not by the precheck.
        auto_start: false,
        name,
        options: MigrateOptions {
            run_mode: 1,
            expect_time: None,
            migrate_type: stages.migrate_type(),
            migrate_object: 2,
            consistency_type: None,
            is_override_root: None,
            extern_params: Some(extern_params.to_string()),
            consistency_params: None,
        },
        source,
        destination,
        database_info: Some(info),
        tags: Vec::new(),
        src_node_type: None,
        src_info_multi: Vec::new(),
        stages: Some(stages),
        loop_guard: None,
        conflict_policy: Default::default(),
    };
    let store = &caller.ctx.store;
    let id = target.job_id.clone();
    if target.job.is_none() {
        store
            .insert_job(NewJob {
                job_id: Some(id.clone()),
                account_id: caller.account_id.to_string(),
                kind: JobKind::ChangeTracking,
                spec: spec.clone(),
                src_password: password.clone(),
                dst_password: None,
            })
            .map_err(|e| store_error(e, &id))?;
    }
    let mut refused = false;
    let updated = store.update_job(&id, |job| {
        if !job.status.modifiable() {
            refused = true;
            return Err(dts_store::StoreError::Rejected(String::new()));
        }
        job.spec = spec;
        store.set_job_passwords(job, password.as_deref(), None);
        job.apply(JobEvent::Modified)?;
        job.apply(JobEvent::CheckRequested)?;
        job.check = CheckState::starting();
        job.errors.clear();
        job.detail = dts_core::JobDetail::for_job(job.kind, &job.spec);
        Ok(())
    });
    if refused {
        return Err(AliError::status_conflict(format!(
            "The task `{id}` is running and cannot be configured now; suspend or stop it, or call ResetDtsJob first."
        )));
    }
    updated.map_err(|e| store_error(e, &id))?;
    let mut doc = instance.info.clone();
    let declared: Map<String, Value> = caller
        .params
        .iter()
        .filter(|(k, _)| !k.ends_with("Password"))
        .map(|(k, v)| (k.clone(), json!(v)))
        .chain([("DbList".to_string(), json!(db_list)), ("JobType".to_string(), json!("SUBSCRIBE"))])
        .collect();
    doc["Jobs"]["Forward"] = Value::Object(declared);
    store.set_instance_info(&instance.instance_id, &doc).map_err(|e| store_error(e, &id))?;
    caller.ctx.wake_engine.notify_one();
    tracing::info!(job_id = %id, "change tracking configured; precheck started");
    Ok(json!({ "DtsInstanceId": instance.instance_id, "DtsJobId": id }))
}

/// `ModifySubscription`: `DbList` replaces the whole selection; `SubscriptionDataTypeDDL`/`DML`
/// change what is published (each kept when absent). A running task goes on from its stream's
/// position: the engine restarts its stream with the new selection at the next transaction
/// boundary it has checkpointed, so no event is lost or published twice.
pub fn modify_subscription(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let instance = target.instance.clone().ok_or_else(|| AliError::not_purchased(&target.job_id))?;
    if instance.info["Type"].as_str() != Some("SUBSCRIBE") {
        return Err(AliError::invalid_parameter(
            "DtsInstanceId",
            format!("the instance `{}` is not a change tracking instance", instance.instance_id),
        ));
    }
    let id = target.configured()?.job_id.clone();
    let db_list = caller.get("DbList").map(str::to_string);
    let info = db_list.as_deref().map(database_info).transpose()?;
    let (ddl, dml) = (caller.bool("SubscriptionDataTypeDDL")?, caller.bool("SubscriptionDataTypeDML")?);
    if info.is_none() && ddl.is_none() && dml.is_none() {
        return Err(AliError::missing("DbList"));
    }
    if let Some(reserved) = caller.get("Reserved") {
        serde_json::from_str::<Value>(reserved)
            .map_err(|e| AliError::invalid_parameter("Reserved", format!("not JSON ({e})")))?;
    }
    let mut types = DataTypes { ddl: true, dml: true };
    crate::update_account_job(&caller.ctx.store, caller.account_id, &id, |j| {
        if matches!(j.status, JobStatus::Checking | JobStatus::Stopping | JobStatus::Completing) {
            return Err(AliError::status_conflict(format!(
                "The task `{id}` is being prechecked, stopped or finished; modify it when that is over."
            )));
        }
        let old = DataTypes::of(j.spec.options.extern_params.as_deref());
        types = DataTypes { ddl: ddl.unwrap_or(old.ddl), dml: dml.unwrap_or(old.dml) };
        if !types.ddl && !types.dml {
            return Err(AliError::invalid_parameter(
                "SubscriptionDataTypeDML",
                "at least one of SubscriptionDataTypeDDL and SubscriptionDataTypeDML must be true",
            ));
        }
        if let Some(info) = &info {
            j.spec.database_info = Some(info.clone());
            j.spec.options.migrate_object = 2;
        }
        j.spec.options.extern_params = Some(types.merged_into(j.spec.options.extern_params.as_deref()));
        Ok(())
    })
    .map_err(|e| e.unwrap_or_else(|e| store_error(e, &id)))?;
    let mut doc = instance.info.clone();
    let declared = &mut doc["Jobs"]["Forward"];
    if !declared.is_object() {
        *declared = json!({});
    }
    if let Some(db_list) = db_list {
        declared["DbList"] = json!(db_list);
    }
    declared["SubscriptionDataTypeDDL"] = json!(if types.ddl { "True" } else { "False" });
    declared["SubscriptionDataTypeDML"] = json!(if types.dml { "True" } else { "False" });
    caller.ctx.store.set_instance_info(&instance.instance_id, &doc).map_err(|e| store_error(e, &id))?;
    caller.ctx.wake_engine.notify_one();
    tracing::info!(job_id = %id, "change tracking selection modified");
    Ok(json!({}))
}

/// The consumer groups recorded on an instance: `[{id, name, user}]`.
pub(super) fn groups(instance: &DtsInstance) -> Vec<Value> {
    instance.info["ConsumerGroups"].as_array().cloned().unwrap_or_default()
}

pub(super) fn bus<'a>(caller: &Caller<'a>) -> Option<&'a ChangeBusView> {
    caller.ctx.change_bus.as_ref()
}

/// The change-tracking fields of a task in `DescribeDtsJobs`/`DescribeDtsJobDetail`.
pub fn add_detail(caller: &Caller<'_>, job: &JobRecord, instance: Option<&DtsInstance>, out: &mut Value) {
    let types = DataTypes::of(job.spec.options.extern_params.as_deref());
    let (host, topic) = match bus(caller) {
        Some(b) => (b.address(), b.topic(&job.job_id)),
        None => (String::new(), String::new()),
    };
    let window = bus(caller).and_then(|b| b.window(&job.job_id));
    let consumed = instance
        .map(groups)
        .unwrap_or_default()
        .iter()
        .filter_map(|g| g["id"].as_str())
        .filter_map(|g| bus(caller).and_then(|b| b.group_position(&job.job_id, g)))
        .filter_map(|p| p.source_ts_ms())
        .min();
    out["JobType"] = json!("SUBSCRIBE");
    out["AppName"] = json!("new");
    out["SubscriptionHost"] = json!({ "PublicHost": host, "PrivateHost": host, "VpcHost": host });
    out["SubscribeTopic"] = json!(topic);
    out["SubscriptionDataType"] = json!({ "Ddl": types.ddl, "Dml": types.dml });
    out["ConsumptionCheckpoint"] = json!(consumed.map(iso_ms).unwrap_or_default());
    out["ConsumptionClient"] = json!("");
    out["BeginTimestamp"] = json!(window.as_ref().and_then(|w| w.first_ts_ms).map(iso_ms).unwrap_or_default());
    out["EndTimestamp"] = json!(window.as_ref().and_then(|w| w.last_ts_ms).map(iso_ms).unwrap_or_default());
    out["DestNetType"] = json!(bus(caller).map(ChangeBusView::kind).unwrap_or_default());
    out["DataDeliveryChannelInfo"] = json!({ "Topic": topic, "PartitionNum": 1, "Region": "",
        "PublicDproxyUrl": host, "VpcDproxyUrl": host });
    let step = job.detail.step_no(dts_core::TRACKING_STEP);
    let tracking = step.is_some_and(|n| n == job.detail.step_now);
    out["DataSynchronizationStatus"]["Status"] = json!(match job.status {
        JobStatus::Running | JobStatus::ReadyComplete if tracking => "Migrating",
        JobStatus::Failed if tracking => "Failed",
        _ => "NotStarted",
    });
}
