//! Tencent 2018-03-30 data subscription: `CreateSubscribe` (unconfigured subscriptions, each
//! reserving a change-tracking job id), `ActivateSubscribe` (source instance and objects; the
//! precheck runs and the job starts when it passes), `ModifySubscribeObjects` (a started
//! subscription keeps its stream's position), `DescribeAsyncRequestInfo`, `DescribeSubscribes`,
//! `DescribeSubscribeConf` (where the events are: the bus address as `SdkHost`, and as
//! `Vip`/`Vport` unless `ModifySubscribeVipVport` set them; the subject or topic as
//! `ChannelId`), `ResetSubscribe`, `IsolateSubscribe` and `OfflineIsolatedSubscribe` (the job is
//! deleted, and with it the subscription's stream or topic on the bus), with their fields. The
//! other `ModifySubscribe*` calls are in `subscribe_settings`.
//!
//! A subscription is stored as a DTS instance of type `SUBSCRIBE` (the Alibaba dialect shows
//! the same subscription); its job exists from the first activation on. `SdkConsumedTime` is
//! the position of the consumer group named like the subscription (`dts subscribe tail
//! <job> --group <SubscribeId>`), the default group that `ModifySubscribeConsumeTime` rewinds.

use dts_core::{EndpointSpec, JobEvent, JobKind, JobStatus, MigrateOptions, MigrationSpec, ObjectSelection, Stages};
use dts_store::{CheckState, DtsInstance, JobRecord, NewJob, StoreError, new_job_id, now_string};
use serde_json::{Value, json};

use super::actions::Caller;
use super::error::ApiError;
use super::params::{Field, Ty};
use crate::subscription::{DataTypes, plain_ms};

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, required: false }
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, required: true }
}

static TAG_ITEM: [Field; 2] = [req("TagKey", Ty::Str), opt("TagValue", Ty::Str)];
static TAG_FILTER: [Field; 2] = [req("TagKey", Ty::Str), opt("TagValue", Ty::Arr(&Ty::Str))];
static SUBSCRIBE_OBJECT: [Field; 3] =
    [req("ObjectsType", Ty::Int), req("DatabaseName", Ty::Str), opt("TableNames", Ty::Arr(&Ty::Str))];

pub static CREATE_SUBSCRIBE: [Field; 7] = [
    req("Product", Ty::Str),
    req("PayType", Ty::Int),
    opt("Duration", Ty::Int),
    opt("Count", Ty::Int),
    opt("AutoRenew", Ty::Int),
    opt("Tags", Ty::Arr(&Ty::Obj(&TAG_ITEM))),
    opt("Name", Ty::Str),
];
pub static ACTIVATE_SUBSCRIBE: [Field; 6] = [
    req("SubscribeId", Ty::Str),
    req("InstanceId", Ty::Str),
    req("SubscribeObjectType", Ty::Int),
    opt("Objects", Ty::Obj(&SUBSCRIBE_OBJECT)),
    opt("UniqSubnetId", Ty::Str),
    opt("Vport", Ty::Int),
];
pub static MODIFY_SUBSCRIBE_OBJECTS: [Field; 3] = [
    req("SubscribeId", Ty::Str),
    req("SubscribeObjectType", Ty::Int),
    opt("Objects", Ty::Arr(&Ty::Obj(&SUBSCRIBE_OBJECT))),
];
pub static DESCRIBE_SUBSCRIBES: [Field; 13] = [
    opt("SubscribeId", Ty::Str),
    opt("SubscribeName", Ty::Str),
    opt("InstanceId", Ty::Str),
    opt("ChannelId", Ty::Str),
    opt("PayType", Ty::Str),
    opt("Product", Ty::Str),
    opt("Status", Ty::Arr(&Ty::Str)),
    opt("SubsStatus", Ty::Arr(&Ty::Str)),
    opt("Offset", Ty::Int),
    opt("Limit", Ty::Int),
    opt("OrderDirection", Ty::Str),
    opt("TagFilters", Ty::Arr(&Ty::Obj(&TAG_FILTER))),
    opt("SubscribeVersion", Ty::Str),
];
pub static SUBSCRIBE_ID_ONLY: [Field; 1] = [req("SubscribeId", Ty::Str)];
pub static ASYNC_REQUEST: [Field; 1] = [req("AsyncRequestId", Ty::Str)];

pub(super) fn not_found(id: &str) -> ApiError {
    ApiError::new("ResourceNotFound", format!("The subscription `{id}` does not exist."))
}

pub(super) fn store_error(e: StoreError, id: &str) -> ApiError {
    match e {
        StoreError::NotFound => not_found(id),
        StoreError::Illegal(t) => ApiError::status_conflict(format!(
            "The subscription `{id}` is in a state ({}) that does not allow this.",
            t.from.code()
        )),
        StoreError::Rejected(msg) => ApiError::status_conflict(msg),
        other => {
            tracing::error!(error = %other, subscribe_id = id, "metadata store failure");
            ApiError::internal()
        }
    }
}

pub(super) fn str_of<'v>(p: &'v Value, k: &str) -> Option<&'v str> {
    p.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A subscription of the caller, with its job once activated.
pub(super) fn load(caller: &Caller<'_>, id: &str) -> Result<(DtsInstance, Option<JobRecord>), ApiError> {
    let store = &caller.ctx.store;
    let inst = store
        .instance(caller.account_id, id)
        .map_err(|e| store_error(e, id))?
        .filter(|i| i.info["Dialect"] == "tencent")
        .ok_or_else(|| not_found(id))?;
    let job = match store.account_job(caller.account_id, &inst.forward_job_id) {
        Ok(j) => Some(j),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(store_error(e, id)),
    };
    Ok((inst, job))
}

pub(super) fn save_info(caller: &Caller<'_>, inst: &DtsInstance, info: &Value) -> Result<(), ApiError> {
    caller.ctx.store.set_instance_info(&inst.instance_id, info).map_err(|e| store_error(e, &inst.instance_id))
}

pub fn create_subscribe(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let product = str_of(p, "Product").unwrap_or_default().to_ascii_lowercase();
    if !["mysql", "mariadb", "percona"].contains(&product.as_str()) {
        return Err(ApiError::invalid_value("Product", format!("`{product}` is not mysql, mariadb or percona")));
    }
    let pay_type = p["PayType"].as_i64().unwrap_or(1);
    if ![0, 1].contains(&pay_type) {
        return Err(ApiError::invalid_value("PayType", "it must be 0 (monthly) or 1 (hourly)"));
    }
    if pay_type == 0 && !p["Duration"].as_i64().is_some_and(|d| (1..=120).contains(&d)) {
        return Err(ApiError::invalid_value("Duration", "a monthly subscription needs 1..120 months"));
    }
    let count = p["Count"].as_i64().unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid_value("Count", "it must be within 1..10"));
    }
    let name = str_of(p, "Name").unwrap_or_default();
    if name.chars().count() > 60 {
        return Err(ApiError::invalid_value("Name", "it is longer than 60 characters"));
    }
    let mut ids = Vec::new();
    for _ in 0..count {
        let job_id = new_job_id();
        let id = format!("subs-{}", job_id.trim_start_matches("dts-"));
        let info = json!({
            "Type": "SUBSCRIBE", "Dialect": "tencent", "Product": product, "PayType": pay_type,
            "AutoRenew": p["AutoRenew"].as_i64().unwrap_or(0), "Tags": p.get("Tags").cloned().unwrap_or(json!([])),
            "Name": if name.is_empty() { id.clone() } else { name.to_string() },
            "Status": "normal", "Jobs": {}, "AsyncRequests": {},
        });
        let inst = DtsInstance {
            instance_id: id.clone(),
            account_id: caller.account_id.to_string(),
            info,
            forward_job_id: job_id,
            reverse_job_id: None,
            create_time: String::new(),
        };
        caller.ctx.store.insert_instance(&inst).map_err(|e| store_error(e, &id))?;
        ids.push(id);
    }
    tracing::info!(count, "subscriptions created");
    Ok(json!({ "SubscribeIds": ids }))
}

/// The selection and data types of `SubscribeObjectType` and its objects.
fn objects(kind: i64, list: &[Value]) -> Result<(i64, Option<String>, DataTypes), ApiError> {
    let types = match kind {
        0 | 3 => DataTypes { ddl: true, dml: true },
        1 => DataTypes { ddl: false, dml: true },
        2 => DataTypes { ddl: true, dml: false },
        _ => return Err(ApiError::invalid_value("SubscribeObjectType", format!("{kind} is not within 0..3"))),
    };
    if kind == 0 {
        return Ok((1, None, types));
    }
    if list.is_empty() {
        return Err(ApiError::new("MissingParameter", "The request is missing a required parameter `Objects`."));
    }
    let mut info = Vec::new();
    for o in list {
        let db = str_of(o, "DatabaseName").unwrap_or_default();
        let mut entry = json!({ "Database": db });
        match o["ObjectsType"].as_i64() {
            Some(0) => {}
            Some(1) => {
                let tables: Vec<&str> =
                    o["TableNames"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                if tables.is_empty() {
                    return Err(ApiError::invalid_value("Objects.TableNames", "ObjectsType 1 needs table names"));
                }
                entry["Table"] = json!(tables);
            }
            _ => return Err(ApiError::invalid_value("Objects.ObjectsType", "it must be 0 (database) or 1 (table)")),
        }
        info.push(entry);
    }
    let info = Value::Array(info).to_string();
    ObjectSelection::parse(2, Some(&info)).map_err(|e| ApiError::invalid_value("Objects", e))?;
    Ok((2, Some(info), types))
}

fn extern_params(types: DataTypes) -> String {
    let mut v: Value = serde_json::from_str(&types.extern_params()).unwrap_or_default();
    v["startAfterCheck"] = json!(true);
    v.to_string()
}

/// Stores the subscription's job with `spec` (new, or re-configured after a reset) and starts
/// its precheck; returns the async request id that follows it.
fn configure(
    caller: &Caller<'_>,
    inst: &DtsInstance,
    job: Option<&JobRecord>,
    spec: MigrationSpec,
    what: &str,
) -> Result<String, ApiError> {
    let store = &caller.ctx.store;
    let id = inst.forward_job_id.clone();
    if job.is_none() {
        store
            .insert_job(NewJob {
                job_id: Some(id.clone()),
                account_id: caller.account_id.to_string(),
                kind: JobKind::ChangeTracking,
                spec: spec.clone(),
                src_password: None,
                dst_password: None,
            })
            .map_err(|e| store_error(e, &inst.instance_id))?;
    }
    crate::update_account_job(store, caller.account_id, &id, |j| {
        if !j.status.modifiable() {
            return Err(ApiError::status_conflict(format!(
                "The subscription `{}` is activated; call ResetSubscribe before configuring it again.",
                inst.instance_id
            )));
        }
        j.spec = spec;
        j.apply(JobEvent::Modified).map_err(|e| store_error(e, &inst.instance_id))?;
        j.apply(JobEvent::CheckRequested).map_err(|e| store_error(e, &inst.instance_id))?;
        j.check = CheckState::starting();
        j.errors.clear();
        j.detail = dts_core::JobDetail::for_job(j.kind, &j.spec);
        Ok(())
    })
    .map_err(|e| e.unwrap_or_else(|e| store_error(e, &inst.instance_id)))?;
    record_request(caller, inst, what)
}

/// Records an async request that follows the subscription's job, and wakes the engine.
fn record_request(caller: &Caller<'_>, inst: &DtsInstance, what: &str) -> Result<String, ApiError> {
    let request = format!("{}-{}", inst.forward_job_id, chrono::Utc::now().timestamp_micros());
    let mut info = inst.info.clone();
    info["AsyncRequests"][&request] = json!(what);
    info["ModifyTime"] = json!(now_string());
    save_info(caller, inst, &info)?;
    caller.ctx.wake_engine.notify_one();
    Ok(request)
}

pub fn activate_subscribe(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let (inst, job) = load(caller, sub)?;
    if inst.info["Status"] != "normal" {
        return Err(ApiError::status_conflict(format!("The subscription `{sub}` is isolated.")));
    }
    if job.as_ref().is_some_and(|j| j.status != JobStatus::Creating) {
        return Err(ApiError::status_conflict(format!(
            "The subscription `{sub}` is activated already; call ResetSubscribe first."
        )));
    }
    let instance_id = str_of(p, "InstanceId").unwrap_or_default();
    let entry = caller.ctx.instances.get_for(caller.account_id, instance_id).ok_or_else(|| {
        ApiError::invalid_value(
            "InstanceId",
            format!("the instance `{instance_id}` is not registered with this dts server"),
        )
    })?;
    let one = p.get("Objects").cloned().map(|o| vec![o]).unwrap_or_default();
    let (migrate_object, database_info, types) = objects(p["SubscribeObjectType"].as_i64().unwrap_or(-1), &one)?;
    let source = EndpointSpec {
        database_type: entry.engine.clone(),
        access_type: "cdb".into(),
        ip: None,
        port: None,
        user: None,
        instance_id: Some(instance_id.to_string()),
        region: None,
        extra: Default::default(),
    };
    let destination = EndpointSpec { access_type: "bus".into(), instance_id: None, ..source.clone() };
    let stages = Stages { structure: false, full_data: false, incremental: true };
    let spec = MigrationSpec {
        // Started by StartDtsJob / ActivateSubscribe (or `startAfterCheck`), not by the precheck.
        auto_start: false,
        name: inst.info["Name"].as_str().unwrap_or(sub).to_string(),
        options: MigrateOptions {
            run_mode: 1,
            expect_time: None,
            migrate_type: stages.migrate_type(),
            migrate_object,
            consistency_type: None,
            is_override_root: None,
            extern_params: Some(extern_params(types)),
            consistency_params: None,
        },
        source,
        destination,
        database_info,
        tags: Vec::new(),
        src_node_type: None,
        src_info_multi: Vec::new(),
        stages: Some(stages),
        loop_guard: None,
        conflict_policy: Default::default(),
    };
    let request = configure(caller, &inst, job.as_ref(), spec, "activate")?;
    let (inst, _) = load(caller, sub)?;
    let mut info = inst.info.clone();
    info["InstanceId"] = json!(instance_id);
    info["SubscribeObjectType"] = p["SubscribeObjectType"].clone();
    info["SubscribeObjects"] = json!(one);
    info["ConsumeStartTime"] = json!(now_string());
    save_info(caller, &inst, &info)?;
    tracing::info!(subscribe_id = sub, instance_id, "subscription activated; precheck started");
    Ok(json!({ "AsyncRequestId": request }))
}

pub fn modify_subscribe_objects(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let (inst, job) = load(caller, sub)?;
    let Some(job) = job.filter(|j| j.status != JobStatus::Creating) else {
        return Err(ApiError::status_conflict(format!("The subscription `{sub}` is not activated.")));
    };
    let list = p["Objects"].as_array().cloned().unwrap_or_default();
    let (migrate_object, database_info, types) = objects(p["SubscribeObjectType"].as_i64().unwrap_or(-1), &list)?;
    let streaming = |s: JobStatus| matches!(s, JobStatus::Running | JobStatus::ReadyComplete | JobStatus::Suspended);
    if streaming(job.status) {
        // A started subscription keeps its stream's position: the engine restarts the stream
        // with the new objects at the next transaction boundary it checkpointed, so nothing
        // is lost or published twice.
        crate::update_account_job(&caller.ctx.store, caller.account_id, &job.job_id, |j| {
            if !streaming(j.status) {
                return Err(ApiError::status_conflict(format!("The subscription `{sub}` changed state meanwhile.")));
            }
            j.spec.options.migrate_object = migrate_object;
            j.spec.database_info = database_info.clone();
            j.spec.options.extern_params = Some(types.merged_into(j.spec.options.extern_params.as_deref()));
            Ok(())
        })
        .map_err(|e| e.unwrap_or_else(|e| store_error(e, sub)))?;
        let request = record_request(caller, &inst, "modify")?;
        let (inst, _) = load(caller, sub)?;
        let mut info = inst.info.clone();
        info["SubscribeObjectType"] = p["SubscribeObjectType"].clone();
        info["SubscribeObjects"] = json!(list);
        save_info(caller, &inst, &info)?;
        tracing::info!(subscribe_id = sub, "subscription objects modified; the stream keeps its position");
        return Ok(json!({ "AsyncRequestId": request }));
    }
    let mut spec = job.spec.clone();
    spec.options.migrate_object = migrate_object;
    spec.database_info = database_info;
    spec.options.extern_params = Some(extern_params(types));
    // A subscription being checked, stopped or completed is reset and checked again with the
    // new objects (it has no stream position to keep).
    if !job.status.modifiable() {
        crate::update_account_job(&caller.ctx.store, caller.account_id, &job.job_id, |j| {
            j.apply(JobEvent::Reset).map_err(|e| store_error(e, sub))?;
            j.request_release(dts_core::ReleaseReason::Reset);
            Ok::<(), ApiError>(())
        })
        .map_err(|e| e.unwrap_or_else(|e| store_error(e, sub)))?;
    }
    let job = caller.ctx.store.account_job(caller.account_id, &job.job_id).map_err(|e| store_error(e, sub))?;
    let request = configure(caller, &inst, Some(&job), spec, "modify")?;
    let (inst, _) = load(caller, sub)?;
    let mut info = inst.info.clone();
    info["SubscribeObjectType"] = p["SubscribeObjectType"].clone();
    info["SubscribeObjects"] = json!(list);
    save_info(caller, &inst, &info)?;
    Ok(json!({ "AsyncRequestId": request }))
}

pub fn describe_async_request_info(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let request = str_of(p, "AsyncRequestId").unwrap_or_default();
    let store = &caller.ctx.store;
    let instances = store.instances(caller.account_id).map_err(|e| store_error(e, request))?;
    let inst = instances
        .iter()
        .find(|i| i.info["AsyncRequests"].get(request).is_some())
        .ok_or_else(|| ApiError::new("ResourceNotFound", format!("The async request `{request}` does not exist.")))?;
    let job = store.account_job(caller.account_id, &inst.forward_job_id).ok();
    let (status, info) = match job.as_ref().map(|j| (j.status, j)) {
        None | Some((JobStatus::Creating, _)) => ("failed", "the subscription was reset".to_string()),
        Some((JobStatus::Checking | JobStatus::CheckPass, _)) => ("running", "prechecking".to_string()),
        Some((JobStatus::CheckNotPass, j)) => ("failed", format!("precheck failed: {}", j.check.error_message)),
        Some((JobStatus::Running | JobStatus::ReadyComplete, j)) if running(j) => ("success", String::new()),
        Some((JobStatus::Running | JobStatus::ReadyComplete, _)) => ("running", "starting".to_string()),
        Some((JobStatus::Failed, j)) => ("failed", j.errors.last().map(|e| e.log.clone()).unwrap_or_default()),
        Some(_) => ("success", String::new()),
    };
    Ok(json!({ "Info": info, "Status": status }))
}

fn running(job: &JobRecord) -> bool {
    job.detail.step_no(dts_core::TRACKING_STEP).is_some_and(|n| n == job.detail.step_now)
}

/// `SubsStatus` of a subscription.
fn subs_status(job: Option<&JobRecord>) -> &'static str {
    match job.map(|j| (j.status, j)) {
        None | Some((JobStatus::Creating, _)) => "notStarted",
        Some((JobStatus::Checking, _)) => "checking",
        Some((JobStatus::CheckNotPass, _)) => "checkNotPass",
        Some((JobStatus::CheckPass, _)) => "checkPass",
        Some((JobStatus::Running | JobStatus::ReadyComplete, j)) if running(j) => "running",
        Some((JobStatus::Running | JobStatus::ReadyComplete, _)) => "starting",
        Some(_) => "error",
    }
}

/// `SubscribeInfo` (and the common part of `DescribeSubscribeConf`).
fn info_json(caller: &Caller<'_>, inst: &DtsInstance, job: Option<&JobRecord>) -> Value {
    let i = &inst.info;
    let text = |k: &str| i[k].as_str().unwrap_or_default().to_string();
    let bus = caller.ctx.change_bus.as_ref();
    let address = bus.map(|b| b.address()).unwrap_or_default();
    let (bus_ip, bus_port) =
        address.rsplit_once(':').map_or((address.clone(), 0), |(h, p)| (h.to_string(), p.parse().unwrap_or(0)));
    // ModifySubscribeVipVport's values, else the bus's address.
    let vip = i["Vip"].as_str().map_or(bus_ip, str::to_string);
    let vport = i["Vport"].as_i64().unwrap_or(bus_port);
    let consumed = bus
        .and_then(|b| b.group_position(&inst.forward_job_id, &inst.instance_id))
        .and_then(|p| p.source_ts_ms())
        .map(plain_ms)
        .unwrap_or_else(|| "0000-00-00 00:00:00".into());
    let isolated = i["Status"] == "isolated";
    json!({
        "SubscribeId": inst.instance_id,
        "SubscribeName": text("Name"),
        "ChannelId": bus.map(|b| b.topic(&inst.forward_job_id)).unwrap_or_default(),
        "Product": text("Product"),
        "InstanceId": text("InstanceId"),
        "InstanceStatus": if isolated { "isolate" } else { "running" },
        "SubsStatus": subs_status(job),
        "ModifyTime": text("ModifyTime"),
        "CreateTime": inst.create_time,
        "IsolateTime": if isolated { text("IsolateTime") } else { "0000-00-00 00:00:00".into() },
        "ExpireTime": "0000-00-00 00:00:00",
        "OfflineTime": "0000-00-00 00:00:00",
        "ConsumeStartTime": i["ConsumeStartTime"].as_str().unwrap_or("0000-00-00 00:00:00"),
        "AutoRenewFlag": i["AutoRenew"].as_i64().unwrap_or(0),
        "Region": "",
        "PayType": i["PayType"].as_i64().unwrap_or(1),
        "Vip": vip,
        "Vport": vport,
        "UniqVpcId": "",
        "UniqSubnetId": text("UniqSubnetId"),
        "Status": if isolated { "isolated" } else { "normal" },
        "SdkConsumedTime": consumed,
        "Tags": i["Tags"].as_array().cloned().unwrap_or_default(),
        "SubscribeVersion": "txdts",
    })
}

pub fn describe_subscribes(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let offset = p["Offset"].as_i64().unwrap_or(0).max(0) as usize;
    let limit = p["Limit"].as_i64().unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_value("Limit", "it must be within 1..100"));
    }
    let instances = caller.ctx.store.instances(caller.account_id).map_err(|e| store_error(e, ""))?;
    let strings = |k: &str| -> Vec<String> {
        p[k].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
    };
    let (statuses, subs_statuses) = (strings("Status"), strings("SubsStatus"));
    let mut items: Vec<Value> = Vec::new();
    for inst in instances.iter().filter(|i| i.info["Dialect"] == "tencent") {
        let job = caller.ctx.store.account_job(caller.account_id, &inst.forward_job_id).ok();
        let v = info_json(caller, inst, job.as_ref());
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let configured = match field("SubsStatus").as_str() {
            "notStarted" => "unconfigure",
            "running" | "error" => "configured",
            _ => "configuring",
        };
        let keep = str_of(p, "SubscribeId").is_none_or(|x| field("SubscribeId") == x)
            && str_of(p, "SubscribeName").is_none_or(|x| field("SubscribeName").contains(x))
            && str_of(p, "InstanceId").is_none_or(|x| field("InstanceId") == x)
            && str_of(p, "ChannelId").is_none_or(|x| field("ChannelId") == x)
            && str_of(p, "Product").is_none_or(|x| field("Product") == x)
            && str_of(p, "PayType").is_none_or(|x| x.parse::<i64>().ok() == v["PayType"].as_i64())
            && (statuses.is_empty() || statuses.contains(&field("Status")))
            && (subs_statuses.is_empty() || subs_statuses.iter().any(|s| s == configured));
        if keep {
            items.push(v);
        }
    }
    items.sort_by(|a, b| a["CreateTime"].as_str().cmp(&b["CreateTime"].as_str()));
    if !str_of(p, "OrderDirection").is_some_and(|d| d.eq_ignore_ascii_case("asc")) {
        items.reverse();
    }
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit as usize).collect();
    Ok(json!({ "TotalCount": total, "Items": page }))
}

pub fn describe_subscribe_conf(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let (inst, job) = load(caller, sub)?;
    let mut v = info_json(caller, &inst, job.as_ref());
    let kind = inst.info["SubscribeObjectType"].as_i64().unwrap_or(0);
    v["SdkHost"] = json!(caller.ctx.change_bus.as_ref().map(|b| b.address()).unwrap_or_default());
    v["SubscribeObjectType"] = json!(kind);
    v["SubscribeObjects"] = if kind == 0 {
        json!([])
    } else {
        inst.info["SubscribeObjects"].as_array().cloned().map_or(json!([]), Value::Array)
    };
    v["Errors"] = match job.as_ref().filter(|j| matches!(j.status, JobStatus::Failed | JobStatus::CheckNotPass)) {
        Some(j) => {
            let message = j.errors.last().map(|e| e.log.clone()).unwrap_or_else(|| j.check.error_message.clone());
            json!([{ "Message": message }])
        }
        None => Value::Null,
    };
    Ok(v)
}

pub fn reset_subscribe(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let (inst, job) = load(caller, sub)?;
    if let Some(job) = job.filter(|j| j.status != JobStatus::Creating) {
        crate::update_account_job(&caller.ctx.store, caller.account_id, &job.job_id, |j| {
            j.apply(JobEvent::Reset).map_err(|e| store_error(e, sub))?;
            j.request_release(dts_core::ReleaseReason::Reset);
            j.check = CheckState::unavailable();
            j.detail = dts_core::JobDetail::for_job(j.kind, &j.spec);
            j.errors.clear();
            Ok::<(), ApiError>(())
        })
        .map_err(|e| e.unwrap_or_else(|e| store_error(e, sub)))?;
    }
    let mut info = inst.info.clone();
    for k in ["InstanceId", "SubscribeObjectType", "SubscribeObjects", "ConsumeStartTime"] {
        if let Some(m) = info.as_object_mut() {
            m.remove(k);
        }
    }
    save_info(caller, &inst, &info)?;
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

pub fn isolate_subscribe(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let (inst, job) = load(caller, sub)?;
    if inst.info["Status"] == "isolated" {
        return Ok(json!({}));
    }
    if let Some(job) =
        job.filter(|j| matches!(j.status, JobStatus::Running | JobStatus::ReadyComplete | JobStatus::Suspended))
    {
        crate::update_account_job(&caller.ctx.store, caller.account_id, &job.job_id, |j| {
            j.apply(JobEvent::StopRequested).map_err(|e| store_error(e, sub))
        })
        .map_err(|e| e.unwrap_or_else(|e| store_error(e, sub)))?;
    }
    let mut info = inst.info.clone();
    info["Status"] = json!("isolated");
    info["IsolateTime"] = json!(now_string());
    save_info(caller, &inst, &info)?;
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

pub fn offline_isolated_subscribe(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let (inst, job) = load(caller, sub)?;
    if inst.info["Status"] != "isolated" {
        return Err(ApiError::status_conflict(format!("The subscription `{sub}` is not isolated; isolate it first.")));
    }
    let store = &caller.ctx.store;
    if job.is_some() {
        store.delete_job_unchecked(caller.account_id, &inst.forward_job_id).map_err(|e| store_error(e, sub))?;
    }
    store.delete_instance(&inst.instance_id).map_err(|e| store_error(e, sub))?;
    caller.ctx.wake_engine.notify_one();
    tracing::info!(subscribe_id = sub, "subscription taken offline");
    Ok(json!({}))
}
