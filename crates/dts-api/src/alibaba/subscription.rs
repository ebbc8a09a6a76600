//! Alibaba change tracking (`Type=SUBSCRIBE` instances): `ConfigureSubscription` (the source
//! endpoint, `DbList`, `SubscriptionDataTypeDDL`/`DML`, `Reserve`; the precheck starts at once),
//! the subscription fields of `DescribeDtsJobs`/`DescribeDtsJobDetail` (`SubscriptionHost`,
//! `SubscribeTopic`, `SubscriptionDataType`, `ConsumptionCheckpoint`, `BeginTimestamp`/
//! `EndTimestamp`), and consumer groups as the bus's durable consumers
//! (`CreateConsumerChannel`/`DescribeConsumerChannel`/`ModifyConsumerChannel`/`DeleteConsumerChannel`).
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

/// Consumer groups an instance may have (Alibaba's limit).
const MAX_GROUPS: usize = 20;

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
    caller.int("Checkpoint")?;
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
            extern_params: Some(types.extern_params()),
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

/// The consumer groups recorded on an instance: `[{id, name, user}]`.
fn groups(instance: &DtsInstance) -> Vec<Value> {
    instance.info["ConsumerGroups"].as_array().cloned().unwrap_or_default()
}

fn bus<'a>(caller: &Caller<'a>) -> Option<&'a ChangeBusView> {
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

/// The change-tracking instance and task a consumer-group call addresses.
fn subscription_target(caller: &Caller<'_>) -> Result<(DtsInstance, String), AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let instance = target.instance.ok_or_else(|| AliError::not_purchased(&target.job_id))?;
    if instance.info["Type"].as_str() != Some("SUBSCRIBE") {
        return Err(AliError::invalid_parameter(
            "DtsInstanceId",
            format!("the instance `{}` is not a change tracking instance", instance.instance_id),
        ));
    }
    Ok((instance, target.job_id))
}

fn check_group_fields(caller: &Caller<'_>, required: bool) -> Result<(), AliError> {
    let get = |k: &str| if required { caller.required(k).map(Some) } else { Ok(caller.get(k)) };
    if let Some(name) = get("ConsumerGroupName")?
        && name.chars().count() > 128
    {
        return Err(AliError::invalid_parameter("ConsumerGroupName", "it is longer than 128 characters"));
    }
    if let Some(user) = get("ConsumerGroupUserName")?
        && (user.len() > 16 || !user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(AliError::invalid_parameter("ConsumerGroupUserName", "at most 16 letters, digits or '_'"));
    }
    if let Some(pw) = get("ConsumerGroupPassword")? {
        let classes = [
            pw.bytes().any(|b| b.is_ascii_uppercase()),
            pw.bytes().any(|b| b.is_ascii_lowercase()),
            pw.bytes().any(|b| b.is_ascii_digit()),
            pw.bytes().any(|b| !b.is_ascii_alphanumeric()),
        ];
        if !(8..=32).contains(&pw.len()) || classes.iter().filter(|c| **c).count() < 2 {
            return Err(AliError::invalid_parameter(
                "ConsumerGroupPassword",
                "8 to 32 characters of at least two kinds (upper case, lower case, digits, others)",
            ));
        }
    }
    Ok(())
}

fn password_digest(password: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(password.as_bytes()))
}

/// `CreateConsumerChannel`: a consumer group of the task's subscription (a durable consumer on
/// NATS, a group on Kafka, created on the bus when its first reader joins).
pub fn create_consumer_channel(caller: &Caller<'_>) -> Result<Value, AliError> {
    check_group_fields(caller, true)?;
    let (instance, _) = subscription_target(caller)?;
    let mut doc = instance.info.clone();
    let mut list = groups(&instance);
    if list.len() >= MAX_GROUPS {
        return Err(AliError::status_conflict(format!(
            "The instance `{}` has {MAX_GROUPS} consumer groups already.",
            instance.instance_id
        )));
    }
    let id = {
        use rand::Rng;
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::thread_rng();
        let tail: String = (0..14).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect();
        format!("dtse{tail}")
    };
    list.push(json!({
        "id": id,
        "name": caller.required("ConsumerGroupName")?,
        "user": caller.required("ConsumerGroupUserName")?,
        "password_sha256": password_digest(caller.required("ConsumerGroupPassword")?),
    }));
    doc["ConsumerGroups"] = Value::Array(list);
    caller
        .ctx
        .store
        .set_instance_info(&instance.instance_id, &doc)
        .map_err(|e| store_error(e, &instance.instance_id))?;
    tracing::info!(instance_id = %instance.instance_id, group = %id, "consumer group created");
    Ok(json!({ "ConsumerGroupID": id }))
}

/// `DescribeConsumerChannel`: the groups with their position and lag as the bus reports them
/// (`-1` for a group no reader has joined yet).
pub fn describe_consumer_channel(caller: &Caller<'_>) -> Result<Value, AliError> {
    let (instance, job_id) = subscription_target(caller)?;
    let page = caller.int("PageNumber")?.unwrap_or(1);
    let size = caller.int("PageSize")?.unwrap_or(20);
    if page < 1 {
        return Err(AliError::invalid_parameter("PageNumber", "it starts at 1"));
    }
    if !(1..=100).contains(&size) {
        return Err(AliError::invalid_parameter("PageSize", "it must be within 1..100"));
    }
    let all = groups(&instance);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let list: Vec<Value> = all
        .iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .map(|g| {
            let id = g["id"].as_str().unwrap_or_default();
            let position = bus(caller).and_then(|b| b.group_position(&job_id, id));
            let ts = position.as_ref().and_then(|p| p.source_ts_ms());
            json!({
                "ConsumerGroupId": id,
                "ConsumerGroupName": g["name"],
                "ConsumerGroupUserName": g["user"],
                "ConsumptionCheckpoint": ts.map(iso_ms).unwrap_or_default(),
                "MessageDelay": ts.map_or(-1, |t| ((now_ms - t) / 1000).max(0)),
                "UnconsumedData": position.as_ref().map_or(-1, |p| p.lag() as i64),
            })
        })
        .collect();
    Ok(json!({
        "PageNumber": page,
        "PageRecordCount": list.len(),
        "TotalRecordCount": all.len(),
        "ConsumerChannels": list,
    }))
}

/// `DeleteConsumerChannel`: forgets the group and deletes it on the bus.
pub fn delete_consumer_channel(caller: &Caller<'_>) -> Result<Value, AliError> {
    let group = caller.required("ConsumerGroupId")?.to_string();
    let (instance, job_id) = subscription_target(caller)?;
    let mut list = groups(&instance);
    let before = list.len();
    list.retain(|g| g["id"].as_str() != Some(&group));
    if list.len() == before {
        return Err(AliError::invalid_parameter("ConsumerGroupId", format!("no consumer group `{group}`")));
    }
    if let Some(b) = bus(caller)
        && !b.delete_group(&job_id, &group)
    {
        return Err(AliError::unavailable());
    }
    let mut doc = instance.info.clone();
    doc["ConsumerGroups"] = Value::Array(list);
    caller
        .ctx
        .store
        .set_instance_info(&instance.instance_id, &doc)
        .map_err(|e| store_error(e, &instance.instance_id))?;
    Ok(json!({}))
}

/// `ModifyConsumerChannel`: renames a group or changes its account or password.
pub fn modify_consumer_channel(caller: &Caller<'_>) -> Result<Value, AliError> {
    let group = caller.required("ConsumerGroupId")?.to_string();
    check_group_fields(caller, false)?;
    let (instance, _) = subscription_target(caller)?;
    let mut list = groups(&instance);
    let entry = list
        .iter_mut()
        .find(|g| g["id"].as_str() == Some(&group))
        .ok_or_else(|| AliError::invalid_parameter("ConsumerGroupId", format!("no consumer group `{group}`")))?;
    if let Some(name) = caller.get("ConsumerGroupName") {
        entry["name"] = json!(name);
    }
    if let Some(user) = caller.get("ConsumerGroupUserName") {
        entry["user"] = json!(user);
    }
    if let Some(password) = caller.get("ConsumerGroupPassword") {
        entry["password_sha256"] = json!(password_digest(password));
    }
    let mut doc = instance.info.clone();
    doc["ConsumerGroups"] = Value::Array(list);
    caller
        .ctx
        .store
        .set_instance_info(&instance.instance_id, &doc)
        .map_err(|e| store_error(e, &instance.instance_id))?;
    Ok(json!({}))
}
