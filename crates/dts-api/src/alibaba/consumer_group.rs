//! Consumer groups of a change-tracking instance, one set of them whichever call names them:
//! the new edition's `CreateConsumerChannel`/`DescribeConsumerChannel`/`ModifyConsumerChannel`/
//! `DeleteConsumerChannel` (by `DtsJobId`/`DtsInstanceId`) and the legacy
//! `CreateConsumerGroup`/`DescribeConsumerGroup`/`ModifyConsumerGroupPassword`/
//! `DeleteConsumerGroup` (by `SubscriptionInstanceId`, the same DTS instance id); and
//! `DescribeSubscriptionMeta` (a group's topic, objects, bus address and position).
//!
//! A group is a durable consumer on NATS or a group on Kafka, created on the bus when its first
//! reader joins; the instance document keeps its id, name, account and password digest, and the
//! bus answers for its position.

use dts_store::DtsInstance;
use serde_json::{Value, json};

use super::dialect::{Caller, resolve, store_error};
use super::reply::AliError;
use super::subscription::{bus, groups};
use crate::subscription::iso_ms;

/// Consumer groups an instance may have (Alibaba's limit).
const MAX_GROUPS: usize = 20;

/// A change-tracking instance and the task whose subscription its groups read.
struct Tracking {
    instance: DtsInstance,
    job_id: String,
}

fn is_subscribe(instance: &DtsInstance, param: &str) -> Result<(), AliError> {
    if instance.info["Type"].as_str() == Some("SUBSCRIBE") {
        return Ok(());
    }
    Err(AliError::invalid_parameter(
        param,
        format!("the instance `{}` is not a change tracking instance", instance.instance_id),
    ))
}

/// The instance of a call that names `DtsJobId` or `DtsInstanceId` (the new edition).
fn by_job(caller: &Caller<'_>) -> Result<Tracking, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let instance = target.instance.ok_or_else(|| AliError::not_purchased(&target.job_id))?;
    is_subscribe(&instance, "DtsInstanceId")?;
    Ok(Tracking { instance, job_id: target.job_id })
}

/// The instance of a call that names it by `param` only (the legacy calls).
fn by_instance(caller: &Caller<'_>, param: &str) -> Result<Tracking, AliError> {
    let id = caller.required(param)?;
    let instance =
        caller.ctx.store.instance(caller.account_id, id).map_err(|e| store_error(e, id))?.ok_or_else(|| {
            AliError::new(403, "OperationDenied.NotPurchased", format!("The DTS instance `{id}` does not exist."))
        })?;
    is_subscribe(&instance, param)?;
    let job_id = instance.forward_job_id.clone();
    Ok(Tracking { instance, job_id })
}

fn save(caller: &Caller<'_>, t: &Tracking, list: Vec<Value>) -> Result<(), AliError> {
    let mut doc = t.instance.info.clone();
    doc["ConsumerGroups"] = Value::Array(list);
    caller
        .ctx
        .store
        .set_instance_info(&t.instance.instance_id, &doc)
        .map_err(|e| store_error(e, &t.instance.instance_id))
}

/// The index of group `id` in `list`, or `InvalidParameter` naming `param`.
fn find(list: &[Value], id: &str, param: &str) -> Result<usize, AliError> {
    list.iter()
        .position(|g| g["id"].as_str() == Some(id))
        .ok_or_else(|| AliError::invalid_parameter(param, format!("no consumer group `{id}` on this instance")))
}

fn check_password(param: &str, pw: &str) -> Result<(), AliError> {
    let classes = [
        pw.bytes().any(|b| b.is_ascii_uppercase()),
        pw.bytes().any(|b| b.is_ascii_lowercase()),
        pw.bytes().any(|b| b.is_ascii_digit()),
        pw.bytes().any(|b| !b.is_ascii_alphanumeric()),
    ];
    if !(8..=32).contains(&pw.len()) || classes.iter().filter(|c| **c).count() < 2 {
        return Err(AliError::invalid_parameter(
            param,
            "8 to 32 characters of at least two kinds (upper case, lower case, digits, others)",
        ));
    }
    Ok(())
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
        check_password("ConsumerGroupPassword", pw)?;
    }
    Ok(())
}

fn password_digest(password: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(password.as_bytes()))
}

fn new_group_id() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..14).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect();
    format!("dtse{tail}")
}

/// Creates a group from `ConsumerGroupName`, `ConsumerGroupUserName`, `ConsumerGroupPassword`.
fn create(caller: &Caller<'_>, t: &Tracking) -> Result<Value, AliError> {
    let mut list = groups(&t.instance);
    if list.len() >= MAX_GROUPS {
        return Err(AliError::status_conflict(format!(
            "The instance `{}` has {MAX_GROUPS} consumer groups already.",
            t.instance.instance_id
        )));
    }
    let id = new_group_id();
    list.push(json!({
        "id": id,
        "name": caller.required("ConsumerGroupName")?,
        "user": caller.required("ConsumerGroupUserName")?,
        "password_sha256": password_digest(caller.required("ConsumerGroupPassword")?),
    }));
    save(caller, t, list)?;
    tracing::info!(instance_id = %t.instance.instance_id, group = %id, "consumer group created");
    Ok(json!({ "ConsumerGroupID": id }))
}

/// A group as the bus reports it: checkpoint (ms), delay (s) and unconsumed messages, `-1`
/// for a group no reader has joined yet.
fn state(caller: &Caller<'_>, job_id: &str, group: &str) -> (Option<i64>, i64, i64) {
    let position = bus(caller).and_then(|b| b.group_position(job_id, group));
    let ts = position.as_ref().and_then(|p| p.source_ts_ms());
    let now_ms = chrono::Utc::now().timestamp_millis();
    (ts, ts.map_or(-1, |t| ((now_ms - t) / 1000).max(0)), position.as_ref().map_or(-1, |p| p.lag() as i64))
}

/// One page of the groups with their state, as `(items, total)`; `id_key` spells the group id
/// (`ConsumerGroupId` in the channel calls, `ConsumerGroupID` in the legacy ones).
fn page(caller: &Caller<'_>, t: &Tracking, number: i64, size: i64, id_key: &str) -> (Vec<Value>, usize) {
    let all = groups(&t.instance);
    let list = all
        .iter()
        .skip(((number - 1) * size) as usize)
        .take(size as usize)
        .map(|g| {
            let (ts, delay, unconsumed) = state(caller, &t.job_id, g["id"].as_str().unwrap_or_default());
            let mut item = json!({
                "ConsumerGroupName": g["name"],
                "ConsumerGroupUserName": g["user"],
                "ConsumptionCheckpoint": ts.map(iso_ms).unwrap_or_default(),
                "MessageDelay": delay,
                "UnconsumedData": unconsumed,
            });
            item[id_key] = g["id"].clone();
            item
        })
        .collect();
    (list, all.len())
}

/// Forgets group `id` and deletes it on the bus.
fn delete(caller: &Caller<'_>, t: &Tracking, id: &str, param: &str) -> Result<Value, AliError> {
    let mut list = groups(&t.instance);
    let at = find(&list, id, param)?;
    if let Some(b) = bus(caller)
        && !b.delete_group(&t.job_id, id)
    {
        return Err(AliError::unavailable());
    }
    list.remove(at);
    save(caller, t, list)?;
    tracing::info!(instance_id = %t.instance.instance_id, group = %id, "consumer group deleted");
    Ok(json!({}))
}

/// `CreateConsumerChannel`: a consumer group of the task's subscription.
pub fn create_consumer_channel(caller: &Caller<'_>) -> Result<Value, AliError> {
    check_group_fields(caller, true)?;
    create(caller, &by_job(caller)?)
}

/// `DescribeConsumerChannel`: the groups with their position and lag as the bus reports them.
pub fn describe_consumer_channel(caller: &Caller<'_>) -> Result<Value, AliError> {
    let t = by_job(caller)?;
    let number = caller.int("PageNumber")?.unwrap_or(1);
    let size = caller.int("PageSize")?.unwrap_or(20);
    if number < 1 {
        return Err(AliError::invalid_parameter("PageNumber", "it starts at 1"));
    }
    if !(1..=100).contains(&size) {
        return Err(AliError::invalid_parameter("PageSize", "it must be within 1..100"));
    }
    let (list, total) = page(caller, &t, number, size, "ConsumerGroupId");
    Ok(json!({
        "PageNumber": number,
        "PageRecordCount": list.len(),
        "TotalRecordCount": total,
        "ConsumerChannels": list,
    }))
}

/// `DeleteConsumerChannel`: forgets the group and deletes it on the bus.
pub fn delete_consumer_channel(caller: &Caller<'_>) -> Result<Value, AliError> {
    let group = caller.required("ConsumerGroupId")?.to_string();
    delete(caller, &by_job(caller)?, &group, "ConsumerGroupId")
}

/// `ModifyConsumerChannel`: renames a group or changes its account or password.
pub fn modify_consumer_channel(caller: &Caller<'_>) -> Result<Value, AliError> {
    let group = caller.required("ConsumerGroupId")?.to_string();
    check_group_fields(caller, false)?;
    let t = by_job(caller)?;
    let mut list = groups(&t.instance);
    let at = find(&list, &group, "ConsumerGroupId")?;
    let entry = &mut list[at];
    if let Some(name) = caller.get("ConsumerGroupName") {
        entry["name"] = json!(name);
    }
    if let Some(user) = caller.get("ConsumerGroupUserName") {
        entry["user"] = json!(user);
    }
    if let Some(password) = caller.get("ConsumerGroupPassword") {
        entry["password_sha256"] = json!(password_digest(password));
    }
    save(caller, &t, list)?;
    Ok(json!({}))
}

/// `CreateConsumerGroup` (legacy): `CreateConsumerChannel` by `SubscriptionInstanceId`.
pub fn create_consumer_group(caller: &Caller<'_>) -> Result<Value, AliError> {
    check_group_fields(caller, true)?;
    create(caller, &by_instance(caller, "SubscriptionInstanceId")?)
}

/// `DescribeConsumerGroup` (legacy): the groups inside the XML-style wrapper
/// `ConsumerChannels.DescribeConsumerChannel`, `PageNum` from 1, `PageSize` 30, 50 or 100.
pub fn describe_consumer_group(caller: &Caller<'_>) -> Result<Value, AliError> {
    let t = by_instance(caller, "SubscriptionInstanceId")?;
    let number = caller.int("PageNum")?.unwrap_or(1);
    let size = caller.int("PageSize")?.unwrap_or(30);
    if number < 1 {
        return Err(AliError::invalid_parameter("PageNum", "it starts at 1"));
    }
    if ![30, 50, 100].contains(&size) {
        return Err(AliError::invalid_parameter("PageSize", "it must be 30, 50 or 100"));
    }
    let (list, total) = page(caller, &t, number, size, "ConsumerGroupID");
    Ok(json!({
        "PageNumber": number,
        "PageRecordCount": list.len(),
        "TotalRecordCount": total,
        "ConsumerChannels": { "DescribeConsumerChannel": list },
    }))
}

/// `ModifyConsumerGroupPassword` (legacy): the current `ConsumerGroupPassword` must match; the
/// new one is `consumerGroupNewPassword` (lower-case first letter on the wire). A name or
/// account given must be the group's.
pub fn modify_consumer_group_password(caller: &Caller<'_>) -> Result<Value, AliError> {
    let group = caller.required("ConsumerGroupID")?.to_string();
    let current = caller.required("ConsumerGroupPassword")?;
    let new = caller.required("consumerGroupNewPassword")?;
    check_password("consumerGroupNewPassword", new)?;
    let t = by_instance(caller, "SubscriptionInstanceId")?;
    let mut list = groups(&t.instance);
    let at = find(&list, &group, "ConsumerGroupID")?;
    let entry = &mut list[at];
    for (param, key) in [("ConsumerGroupName", "name"), ("ConsumerGroupUserName", "user")] {
        if let Some(v) = caller.get(param)
            && entry[key].as_str() != Some(v)
        {
            return Err(AliError::invalid_parameter(param, format!("it is not the {key} of the group `{group}`")));
        }
    }
    if entry["password_sha256"].as_str() != Some(password_digest(current).as_str()) {
        return Err(AliError::invalid_parameter(
            "ConsumerGroupPassword",
            format!("it is not the current password of the group `{group}`"),
        ));
    }
    entry["password_sha256"] = json!(password_digest(new));
    save(caller, &t, list)?;
    tracing::info!(instance_id = %t.instance.instance_id, group = %group, "consumer group password changed");
    Ok(json!({}))
}

/// `DeleteConsumerGroup` (legacy): `DeleteConsumerChannel` by `SubscriptionInstanceId`.
pub fn delete_consumer_group(caller: &Caller<'_>) -> Result<Value, AliError> {
    let group = caller.required("ConsumerGroupID")?.to_string();
    delete(caller, &by_instance(caller, "SubscriptionInstanceId")?, &group, "ConsumerGroupID")
}

/// A list parameter: a JSON array of strings (the tea SDK) or comma-separated text.
fn list_param(caller: &Caller<'_>, name: &str) -> Result<Vec<String>, AliError> {
    let Some(raw) = caller.get(name) else { return Ok(Vec::new()) };
    if raw.trim_start().starts_with('[') {
        return serde_json::from_str::<Vec<String>>(raw)
            .map_err(|e| AliError::invalid_parameter(name, format!("not a JSON list of strings ({e})")));
    }
    Ok(raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
}

/// `DescribeSubscriptionMeta`: for consumer group `Sid` of instance `DtsInstanceId`, each asked
/// task (`SubMigrationJobIds`) or topic (`Topics`): its topic, objects (`DBList`), the bus
/// address (`DProxyUrl`) and the group's position (`Checkpoint`, unix seconds of the last event
/// it acknowledged; where a new group starts, the oldest retained event, when it has none).
pub fn describe_subscription_meta(caller: &Caller<'_>) -> Result<Value, AliError> {
    let sid = caller.required("Sid")?.to_string();
    let t = by_instance(caller, "DtsInstanceId")?;
    find(&groups(&t.instance), &sid, "Sid")?;
    let (jobs, topics) = (list_param(caller, "SubMigrationJobIds")?, list_param(caller, "Topics")?);
    if jobs.is_empty() && topics.is_empty() {
        return Err(AliError::missing("SubMigrationJobIds"));
    }
    let topic = bus(caller).map(|b| b.topic(&t.job_id)).unwrap_or_default();
    if let Some(other) = jobs.iter().find(|j| **j != t.job_id) {
        return Err(AliError::invalid_parameter(
            "SubMigrationJobIds",
            format!("`{other}` is not a task of the instance `{}`", t.instance.instance_id),
        ));
    }
    if let Some(other) = topics.iter().find(|x| **x != topic) {
        return Err(AliError::invalid_parameter(
            "Topics",
            format!("`{other}` is not a topic of the instance `{}`", t.instance.instance_id),
        ));
    }
    let db_list = match t.instance.info["Jobs"]["Forward"]["DbList"].as_str() {
        Some(d) => d.to_string(),
        None => caller
            .ctx
            .store
            .account_job(caller.account_id, &t.job_id)
            .ok()
            .and_then(|j| j.spec.database_info)
            .unwrap_or_default(),
    };
    let acked = state(caller, &t.job_id, &sid).0;
    let checkpoint = acked.or_else(|| bus(caller).and_then(|b| b.window(&t.job_id)).and_then(|w| w.first_ts_ms));
    let meta = json!({
        "Sid": sid,
        "Topic": topic,
        "DBList": db_list,
        "DProxyUrl": bus(caller).map(|b| b.address()).unwrap_or_default(),
        "Checkpoint": checkpoint.map_or(0, |ms| ms / 1000),
    });
    Ok(json!({ "SubscriptionMetaList": [meta] }))
}
