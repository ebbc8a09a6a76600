//! The 9 migration actions of 2018-03-30: validation of their semantics, state changes through
//! the store (one atomic update each), and their response fields.

use chrono::NaiveDateTime;
use dts_core::{
    ConsistencyParams, DeclaredTarget, EndpointSpec, JobEvent, JobKind, JobStatus, MigrateOptions, MigrationSpec,
    ObjectSelection, RouteError, Tag, route,
};
use dts_store::{CheckState, JobFilter, JobOrder, JobRecord, NewJob, StoreError, now_string};
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::models::{self, endpoint_from, job_info};
use super::{subscribe, subscribe_settings};
use crate::ApiContext;

const ACCESS_TYPES: [&str; 7] = ["extranet", "cvm", "dcg", "vpncloud", "cdb", "ccn", "vpnselfbuild"];

/// The caller: which account, and what the server knows.
pub struct Caller<'a> {
    pub ctx: &'a ApiContext,
    pub account_id: &'a str,
}

fn store_error(e: StoreError, job_id: &str) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::job_not_found(job_id),
        StoreError::Illegal(t) => ApiError::status_conflict(format!(
            "The job `{job_id}` is in status {} and cannot do this now.",
            t.from.code()
        )),
        StoreError::Rejected(msg) => ApiError::status_conflict(msg),
        other => {
            tracing::error!(error = %other, job_id, "metadata store failure");
            ApiError::internal()
        }
    }
}

fn str_field<'v>(p: &'v Value, k: &str) -> Option<&'v str> {
    p.get(k).and_then(Value::as_str)
}

fn obj<'v>(p: &'v Value, k: &str) -> Option<&'v Map<String, Value>> {
    p.get(k).and_then(Value::as_object)
}

fn one_of(field: &str, value: i64, allowed: &[i64]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid_value(field, format!("{value} is not one of {allowed:?}")))
    }
}

fn percent(field: &str, v: Option<i64>) -> Result<Option<i64>, ApiError> {
    match v {
        Some(x) if !(1..=100).contains(&x) => Err(ApiError::invalid_value(field, format!("{x} is not within 1..100"))),
        _ => Ok(v),
    }
}

fn parse_options(o: &Map<String, Value>) -> Result<MigrateOptions, ApiError> {
    let int = |k: &str| o.get(k).and_then(Value::as_i64);
    let run_mode = int("RunMode").unwrap_or(1);
    one_of("MigrateOption.RunMode", run_mode, &[1, 2])?;
    let expect_time = o.get("ExpectTime").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(t) = &expect_time {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
            .map_err(|_| ApiError::invalid_value("MigrateOption.ExpectTime", "expected `yyyy-mm-dd hh:mm:ss`"))?;
    } else if run_mode == 2 {
        return Err(ApiError::new(
            "MissingParameter",
            "The request is missing a required parameter `MigrateOption.ExpectTime` (RunMode is 2).",
        ));
    }
    let migrate_type = int("MigrateType").unwrap_or(1);
    one_of("MigrateOption.MigrateType", migrate_type, &[1, 2, 3])?;
    let migrate_object = int("MigrateObject").unwrap_or(1);
    one_of("MigrateOption.MigrateObject", migrate_object, &[1, 2])?;
    let consistency_type = int("ConsistencyType");
    if let Some(c) = consistency_type {
        one_of("MigrateOption.ConsistencyType", c, &[1, 2, 3, 4, 5])?;
    }
    let is_override_root = int("IsOverrideRoot");
    if let Some(r) = is_override_root {
        one_of("MigrateOption.IsOverrideRoot", r, &[0, 1])?;
        if r == 1 && (migrate_object == 2 || migrate_type == 1) {
            return Err(ApiError::invalid_value(
                "MigrateOption.IsOverrideRoot",
                "it must be 0 for table-level or structure-only migration",
            ));
        }
    }
    let consistency_params = match o.get("ConsistencyParams").and_then(Value::as_object) {
        Some(c) => {
            let get = |k: &str| c.get(k).and_then(Value::as_i64);
            Some(ConsistencyParams {
                select_rows_per_table: percent(
                    "MigrateOption.ConsistencyParams.SelectRowsPerTable",
                    get("SelectRowsPerTable"),
                )?,
                tables_select_all: percent("MigrateOption.ConsistencyParams.TablesSelectAll", get("TablesSelectAll"))?,
                tables_select_count: percent(
                    "MigrateOption.ConsistencyParams.TablesSelectCount",
                    get("TablesSelectCount"),
                )?,
            })
        }
        None if consistency_type == Some(3) => {
            return Err(ApiError::new(
                "MissingParameter",
                "The request is missing a required parameter `MigrateOption.ConsistencyParams` (ConsistencyType is 3).",
            ));
        }
        None => None,
    };
    let extern_params = o.get("ExternParams").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(e) = &extern_params
        && serde_json::from_str::<Value>(e).is_err()
    {
        return Err(ApiError::invalid_value("MigrateOption.ExternParams", "it is not a JSON string"));
    }
    if let Err(e) = dts_core::ExternSettings::parse(extern_params.as_deref()) {
        return Err(ApiError::invalid_value("MigrateOption.ExternParams", e));
    }
    Ok(MigrateOptions {
        run_mode,
        expect_time,
        migrate_type,
        migrate_object,
        consistency_type,
        is_override_root,
        extern_params,
        consistency_params,
    })
}

fn unsupported(e: RouteError) -> ApiError {
    ApiError::new(
        "OperationDenied.MigrateServiceSupportError",
        format!("Migration {e}; supported: {}.", RouteError::supported_tencent()),
    )
}

/// A `SrcDatabaseType`/`DstDatabaseType` value: one of the documented names (the route table's
/// Tencent names), of a family dts runs.
fn check_database_type(field: &str, t: &str) -> Result<(), ApiError> {
    if !dts_core::route::tencent_engines().any(|n| n == t) {
        let names: Vec<&str> = dts_core::route::tencent_engines().collect();
        return Err(ApiError::invalid_value(field, format!("`{t}` is not one of {names:?}")));
    }
    dts_core::route::check_engine(t).map(|_| ()).map_err(unsupported)
}

fn check_access_type(field: &str, t: &str) -> Result<(), ApiError> {
    if ACCESS_TYPES.contains(&t) {
        Ok(())
    } else {
        Err(ApiError::invalid_value(field, format!("`{t}` is not one of {ACCESS_TYPES:?}")))
    }
}

/// An endpoint must be reachable: an `Ip`, or an `InstanceId` the registry knows.
fn check_endpoint(caller: &Caller<'_>, side: &str, e: &EndpointSpec) -> Result<(), ApiError> {
    if let Some(port) = e.port
        && !(1..=65535).contains(&port)
    {
        return Err(ApiError::invalid_value(&format!("{side}.Port"), format!("{port} is not a TCP port")));
    }
    match (&e.ip, &e.instance_id) {
        (Some(ip), _) if !ip.is_empty() => Ok(()),
        (_, Some(id)) if !id.is_empty() => match caller.ctx.instances.get_for(caller.account_id, id) {
            Some(_) => Ok(()),
            None => Err(ApiError::new(
                "InvalidParameter.InstanceNotFound",
                format!("The instance `{id}` in `{side}.InstanceId` is not registered with this dts server."),
            )),
        },
        _ => Err(ApiError::new(
            "MissingParameter",
            format!("The request is missing a required parameter `{side}.Ip` (or a registered `{side}.InstanceId`)."),
        )),
    }
}

fn parse_tags(p: &Value) -> Vec<Tag> {
    p.get("Tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .map(|t| Tag {
                    key: str_field(t, "TagKey").unwrap_or_default().to_string(),
                    value: str_field(t, "TagValue").map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_src_info_multi(p: &Value, db_type: &str, access: &str) -> Vec<EndpointSpec> {
    p.get("SrcInfoMulti")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_object).map(|o| endpoint_from(db_type, access, o).0).collect())
        .unwrap_or_default()
}

fn check_selection(options: &MigrateOptions, database_info: Option<&str>) -> Result<(), ApiError> {
    ObjectSelection::parse(options.migrate_object, database_info)
        .map(|_| ())
        .map_err(|e| ApiError::invalid_value("DatabaseInfo", e))
}

pub fn create_migrate_job(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let name = str_field(p, "JobName").unwrap_or_default();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::invalid_value("JobName", "it must be 1 to 128 characters"));
    }
    let options = parse_options(obj(p, "MigrateOption").expect("schema requires MigrateOption"))?;
    let src_type = str_field(p, "SrcDatabaseType").unwrap_or_default();
    let dst_type = str_field(p, "DstDatabaseType").unwrap_or_default();
    check_database_type("SrcDatabaseType", src_type)?;
    check_database_type("DstDatabaseType", dst_type)?;
    route(src_type, DeclaredTarget::Database(dst_type)).map_err(unsupported)?;
    let src_access = str_field(p, "SrcAccessType").unwrap_or_default();
    let dst_access = str_field(p, "DstAccessType").unwrap_or_default();
    check_access_type("SrcAccessType", src_access)?;
    check_access_type("DstAccessType", dst_access)?;
    let (mut source, src_password) = endpoint_from(src_type, src_access, obj(p, "SrcInfo").expect("schema"));
    models::seal_access_key(&caller.ctx.store, obj(p, "SrcInfo").expect("schema"), &mut source);
    let (destination, dst_password) = endpoint_from(dst_type, dst_access, obj(p, "DstInfo").expect("schema"));
    check_endpoint(caller, "SrcInfo", &source)?;
    check_endpoint(caller, "DstInfo", &destination)?;
    let database_info = str_field(p, "DatabaseInfo").filter(|s| !s.is_empty()).map(str::to_string);
    check_selection(&options, database_info.as_deref())?;
    let spec = MigrationSpec {
        auto_start: false,
        name: name.to_string(),
        options,
        source,
        destination,
        database_info,
        tags: parse_tags(p),
        src_node_type: str_field(p, "SrcNodeType").map(str::to_string),
        src_info_multi: parse_src_info_multi(p, src_type, src_access),
        stages: None,
        loop_guard: None,
        conflict_policy: Default::default(),
    };
    let job = caller
        .ctx
        .store
        .insert_job(NewJob {
            job_id: None,
            account_id: caller.account_id.to_string(),
            kind: JobKind::Migration,
            spec,
            src_password,
            dst_password,
        })
        .map_err(|e| store_error(e, ""))?;
    tracing::info!(job_id = %job.job_id, account = caller.account_id, "migration job created");
    Ok(json!({ "JobId": job.job_id }))
}

fn job_id(p: &Value) -> &str {
    str_field(p, "JobId").unwrap_or_default()
}

/// Runs `change` on a job of the caller's account in one atomic update.
fn update(
    caller: &Caller<'_>,
    id: &str,
    change: impl FnOnce(&mut JobRecord) -> Result<(), ApiError>,
) -> Result<JobRecord, ApiError> {
    crate::update_account_job(&caller.ctx.store, caller.account_id, id, change)
        .map_err(|e| e.unwrap_or_else(|e| store_error(e, id)))
}

fn transition(job: &mut JobRecord, event: JobEvent) -> Result<(), ApiError> {
    job.apply(event).map_err(|e| store_error(e, &job.job_id.clone()))
}

pub fn modify_migrate_job(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let id = job_id(p);
    let store = &caller.ctx.store;
    update(caller, id, |job| {
        if !job.status.modifiable() {
            return Err(ApiError::status_conflict(format!(
                "The job `{id}` is in status {}; it can be modified in status 1, 4, 5 or 10.",
                job.status.code()
            )));
        }
        let spec = &mut job.spec;
        if let Some(n) = str_field(p, "JobName") {
            if n.is_empty() || n.chars().count() > 128 {
                return Err(ApiError::invalid_value("JobName", "it must be 1 to 128 characters"));
            }
            spec.name = n.to_string();
        }
        if let Some(o) = obj(p, "MigrateOption") {
            spec.options = parse_options(o)?;
            spec.stages = None;
        }
        let mut src_password = None;
        let mut dst_password = None;
        if let Some(a) = str_field(p, "SrcAccessType") {
            check_access_type("SrcAccessType", a)?;
            spec.source.access_type = a.to_string();
        }
        if let Some(info) = obj(p, "SrcInfo") {
            let (mut e, pw) = endpoint_from(&spec.source.database_type, &spec.source.access_type, info);
            models::seal_access_key(store, info, &mut e);
            if !crate::endpoint_moved(&spec.source, &e)
                && let Some(kept) = spec.source.extra.get(models::SEALED_ACCESS_KEY)
            {
                e.extra.entry(models::SEALED_ACCESS_KEY.to_string()).or_insert_with(|| kept.clone());
            }
            check_endpoint(caller, "SrcInfo", &e)?;
            // A stored password never follows the job to another server.
            src_password = pw.or_else(|| crate::endpoint_moved(&spec.source, &e).then(String::new));
            spec.source = e;
        }
        if let Some(a) = str_field(p, "DstAccessType") {
            check_access_type("DstAccessType", a)?;
            spec.destination.access_type = a.to_string();
        }
        if let Some(info) = obj(p, "DstInfo") {
            let (e, pw) = endpoint_from(&spec.destination.database_type, &spec.destination.access_type, info);
            if e.region != spec.destination.region {
                return Err(ApiError::invalid_value("DstInfo.Region", "the destination region cannot change"));
            }
            check_endpoint(caller, "DstInfo", &e)?;
            dst_password = pw.or_else(|| crate::endpoint_moved(&spec.destination, &e).then(String::new));
            spec.destination = e;
        }
        if let Some(d) = str_field(p, "DatabaseInfo") {
            spec.database_info = Some(d.to_string()).filter(|s| !s.is_empty());
        }
        if let Some(t) = str_field(p, "SrcNodeType") {
            spec.src_node_type = Some(t.to_string());
        }
        if p.get("SrcInfoMulti").is_some() {
            spec.src_info_multi =
                parse_src_info_multi(p, &spec.source.database_type.clone(), &spec.source.access_type.clone());
        }
        check_selection(&spec.options, spec.database_info.as_deref())?;
        store.set_job_passwords(job, src_password.as_deref(), dst_password.as_deref());
        transition(job, JobEvent::Modified)?;
        job.check = CheckState::unavailable();
        job.detail = dts_core::JobDetail::for_job(job.kind, &job.spec);
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn delete_migrate_job(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let id = job_id(p);
    caller.ctx.store.delete_job(caller.account_id, id).map_err(|e| match e {
        StoreError::Rejected(_) => ApiError::status_conflict(format!(
            "The job `{id}` cannot be deleted while it is checking, running, stopping or completing."
        )),
        other => store_error(other, id),
    })?;
    Ok(json!({}))
}

pub fn describe_migrate_jobs(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let order = match str_field(p, "Order").unwrap_or("CreateTime") {
        "JobId" => JobOrder::JobId,
        "Status" => JobOrder::Status,
        "JobName" => JobOrder::JobName,
        "MigrateType" => JobOrder::MigrateType,
        "RunMode" => JobOrder::RunMode,
        "CreateTime" => JobOrder::CreateTime,
        other => {
            return Err(ApiError::invalid_value(
                "Order",
                format!("`{other}` is not one of JobId, Status, JobName, MigrateType, RunMode, CreateTime"),
            ));
        }
    };
    let descending = match str_field(p, "OrderSeq").unwrap_or("DESC") {
        "ASC" | "asc" => false,
        "DESC" | "desc" => true,
        other => return Err(ApiError::invalid_value("OrderSeq", format!("`{other}` is not ASC or DESC"))),
    };
    let offset = p.get("Offset").and_then(Value::as_i64).unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid_value("Offset", "it must not be negative"));
    }
    let limit = p.get("Limit").and_then(Value::as_i64).unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_value("Limit", format!("{limit} is not within 1..100")));
    }
    let tags = p
        .get("TagFilters")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|f| {
                    let vals = f
                        .get("TagValue")
                        .and_then(Value::as_array)
                        .map(|v| v.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default();
                    (str_field(f, "TagKey").unwrap_or_default().to_string(), vals)
                })
                .collect()
        })
        .unwrap_or_default();
    let filter = JobFilter {
        job_id: str_field(p, "JobId").map(str::to_string),
        job_name: str_field(p, "JobName").map(str::to_string),
        order,
        descending,
        offset: offset as u64,
        limit: limit as u64,
        tags,
    };
    let (total, jobs) = caller.ctx.store.list_jobs(caller.account_id, &filter).map_err(|e| store_error(e, ""))?;
    Ok(json!({ "TotalCount": total, "JobList": jobs.iter().map(job_info).collect::<Vec<_>>() }))
}

pub fn create_migrate_check_job(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let id = job_id(p);
    update(caller, id, |job| {
        if job.status == JobStatus::Checking {
            return Err(ApiError::status_conflict(format!("The job `{id}` is being checked already.")));
        }
        transition(job, JobEvent::CheckRequested)?;
        job.check = CheckState::starting();
        Ok(())
    })?;
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

pub fn describe_migrate_check_job(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let id = job_id(p);
    let job = caller.ctx.store.account_job(caller.account_id, id).map_err(|e| store_error(e, id))?;
    let c = &job.check;
    let mut out = json!({
        "Status": c.status,
        "ErrorCode": c.error_code,
        "ErrorMessage": c.error_message,
        "Progress": c.progress.to_string(),
        "CheckFlag": c.flag,
    });
    if let Some(report) = &c.report {
        out["CheckItems"] = serde_json::to_value(&report.items).unwrap_or(Value::Null);
    }
    Ok(out)
}

pub fn start_migrate_job(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let id = job_id(p);
    let job = caller.ctx.store.account_job(caller.account_id, id).map_err(|e| store_error(e, id))?;
    if job.status != JobStatus::CheckPass {
        return Err(ApiError::status_conflict(format!(
            "The job `{id}` is in status {}; it must pass its check (status 4) before it starts.",
            job.status.code()
        )));
    }
    // A job in status 4 runs nothing, so what an earlier run left (checkpoints, server-side
    // resources) is stale: the engine releases it before the steps run.
    update(caller, id, |job| {
        transition(job, JobEvent::Started)?;
        job.request_release(dts_core::ReleaseReason::FreshStart);
        job.detail = dts_core::JobDetail::for_job(job.kind, &job.spec);
        job.errors.clear();
        job.end_time.clear();
        job.start_time = now_string();
        Ok(())
    })?;
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

pub fn stop_migrate_job(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let id = job_id(p);
    update(caller, id, |job| {
        if !matches!(job.status, JobStatus::Running | JobStatus::ReadyComplete) {
            return Err(ApiError::status_conflict(format!(
                "The job `{id}` is in status {}; only running jobs (7 or 8) can be stopped.",
                job.status.code()
            )));
        }
        transition(job, JobEvent::StopRequested)
    })?;
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

pub fn complete_migrate_job(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let id = job_id(p);
    let mode = str_field(p, "CompleteMode").unwrap_or("waitForSync");
    if !matches!(mode, "waitForSync" | "immediately") {
        return Err(ApiError::invalid_value("CompleteMode", format!("`{mode}` is not waitForSync or immediately")));
    }
    update(caller, id, |job| {
        if job.status != JobStatus::ReadyComplete {
            return Err(ApiError::status_conflict(format!(
                "The job `{id}` is in status {}; only a job in status 8 (ReadyComplete) can be completed.",
                job.status.code()
            )));
        }
        transition(job, JobEvent::CompleteRequested)
    })?;
    caller.ctx.store.put_checkpoint(id, dts_store::COMPLETE_MODE_KEY, mode).map_err(|e| store_error(e, id))?;
    caller.ctx.wake_engine.notify_one();
    Ok(json!({}))
}

fn diff_rows(rows: &[dts_core::DiffRow]) -> Vec<Value> {
    rows.iter().map(|r| json!({ "Key": r.key, "Columns": r.columns, "Predicate": r.predicate })).collect()
}

/// `DescribeMigrateJobDiff` (a dts extension, not a Tencent action): the job's last consistency
/// report, per table the rows missing, extra and different on the destination, and repair SQL;
/// one page of tables (`Offset`/`Limit`, `TotalCount`) and of repair statements
/// (`RepairSqlOffset`/`RepairSqlLimit`, `RepairSqlTotalCount`). `Truncated`: the report keeps
/// fewer rows than its exact counts (capped per table and per job).
pub fn describe_migrate_job_diff(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let id = job_id(p);
    caller.ctx.store.account_job(caller.account_id, id).map_err(|e| store_error(e, id))?;
    let raw = caller.ctx.store.checkpoint(id, dts_store::CONSISTENCY_REPORT_KEY).map_err(|e| store_error(e, id))?;
    let page = |name: &str, default: i64, min: i64, max: i64| -> Result<usize, ApiError> {
        let v = p.get(name).and_then(Value::as_i64).unwrap_or(default);
        if !(min..=max).contains(&v) {
            return Err(ApiError::invalid_value(name, format!("{v} is not within {min}..{max}")));
        }
        Ok(usize::try_from(v).unwrap_or(usize::MAX))
    };
    let (offset, limit) = (page("Offset", 0, 0, i64::MAX)?, page("Limit", 20, 1, 100)?);
    let (sql_offset, sql_limit) = (page("RepairSqlOffset", 0, 0, i64::MAX)?, page("RepairSqlLimit", 1000, 1, 10_000)?);
    let Some(report) = raw.and_then(|j| serde_json::from_str::<dts_core::ConsistencyReport>(&j).ok()) else {
        return Ok(json!({
            "Checked": false, "Consistent": false, "TotalCount": 0, "Tables": [],
            "RepairSqlTotalCount": 0, "RepairSql": [],
        }));
    };
    let tables: Vec<Value> = report
        .tables
        .iter()
        .skip(offset)
        .take(limit)
        .map(|t| {
            json!({
                "Database": t.database, "Table": t.table, "Consistent": t.consistent(),
                "Comparison": serde_json::to_value(t.comparison).unwrap_or(Value::Null),
                "SourceRows": t.source_rows, "DestinationRows": t.destination_rows,
                "Chunks": t.chunks, "ChunksCompared": t.chunks_compared, "ChunksDiffering": t.chunks_differing,
                "MissingCount": t.missing_count, "ExtraCount": t.extra_count, "DifferentCount": t.different_count,
                "Missing": diff_rows(&t.missing), "Extra": diff_rows(&t.extra), "Different": diff_rows(&t.different),
                "Unsettled": t.unsettled, "UnsettledCount": t.unsettled_count, "Truncated": t.truncated,
            })
        })
        .collect();
    let repair: Vec<&String> = report.repair_sql.iter().skip(sql_offset).take(sql_limit).collect();
    Ok(json!({
        "Checked": true,
        "Consistent": report.consistent(),
        "Mode": report.mode,
        "StartTime": report.started,
        "EndTime": report.finished,
        "Truncated": report.truncated,
        "TotalCount": report.tables.len(),
        "Tables": tables,
        "RepairSqlTotalCount": report.repair_sql.len(),
        "RepairSql": repair,
    }))
}

/// The schema of an action, `None` for an unknown action.
pub fn schema(action: &str) -> Option<&'static [super::params::Field]> {
    Some(match action {
        "CreateMigrateJob" => &models::CREATE_MIGRATE_JOB,
        "ModifyMigrateJob" => &models::MODIFY_MIGRATE_JOB,
        "DescribeMigrateJobs" => &models::DESCRIBE_MIGRATE_JOBS,
        "CompleteMigrateJob" => &models::COMPLETE_MIGRATE_JOB,
        "DeleteMigrateJob"
        | "CreateMigrateCheckJob"
        | "DescribeMigrateCheckJob"
        | "StartMigrateJob"
        | "StopMigrateJob" => &models::JOB_ID_ONLY,
        "DescribeMigrateJobDiff" => &models::DESCRIBE_MIGRATE_JOB_DIFF,
        "CreateSubscribe" => &subscribe::CREATE_SUBSCRIBE,
        "ActivateSubscribe" => &subscribe::ACTIVATE_SUBSCRIBE,
        "ModifySubscribeObjects" => &subscribe::MODIFY_SUBSCRIBE_OBJECTS,
        "DescribeSubscribes" => &subscribe::DESCRIBE_SUBSCRIBES,
        "DescribeAsyncRequestInfo" => &subscribe::ASYNC_REQUEST,
        "ModifySubscribeName" => &subscribe_settings::MODIFY_SUBSCRIBE_NAME,
        "ModifySubscribeConsumeTime" => &subscribe_settings::MODIFY_SUBSCRIBE_CONSUME_TIME,
        "ModifySubscribeAutoRenewFlag" => &subscribe_settings::MODIFY_SUBSCRIBE_AUTO_RENEW_FLAG,
        "ModifySubscribeVipVport" => &subscribe_settings::MODIFY_SUBSCRIBE_VIP_VPORT,
        "DescribeSubscribeConf" | "ResetSubscribe" | "IsolateSubscribe" | "OfflineIsolatedSubscribe" => {
            &subscribe::SUBSCRIBE_ID_ONLY
        }
        _ => return None,
    })
}

/// Runs a validated action.
pub fn dispatch(caller: &Caller<'_>, action: &str, p: &Value) -> Result<Value, ApiError> {
    match action {
        "CreateMigrateJob" => create_migrate_job(caller, p),
        "ModifyMigrateJob" => modify_migrate_job(caller, p),
        "DeleteMigrateJob" => delete_migrate_job(caller, p),
        "DescribeMigrateJobs" => describe_migrate_jobs(caller, p),
        "CreateMigrateCheckJob" => create_migrate_check_job(caller, p),
        "DescribeMigrateCheckJob" => describe_migrate_check_job(caller, p),
        "StartMigrateJob" => start_migrate_job(caller, p),
        "StopMigrateJob" => stop_migrate_job(caller, p),
        "CompleteMigrateJob" => complete_migrate_job(caller, p),
        "DescribeMigrateJobDiff" => describe_migrate_job_diff(caller, p),
        "CreateSubscribe" => subscribe::create_subscribe(caller, p),
        "ActivateSubscribe" => subscribe::activate_subscribe(caller, p),
        "ModifySubscribeObjects" => subscribe::modify_subscribe_objects(caller, p),
        "DescribeSubscribes" => subscribe::describe_subscribes(caller, p),
        "DescribeSubscribeConf" => subscribe::describe_subscribe_conf(caller, p),
        "DescribeAsyncRequestInfo" => subscribe::describe_async_request_info(caller, p),
        "ResetSubscribe" => subscribe::reset_subscribe(caller, p),
        "IsolateSubscribe" => subscribe::isolate_subscribe(caller, p),
        "OfflineIsolatedSubscribe" => subscribe::offline_isolated_subscribe(caller, p),
        "ModifySubscribeName" => subscribe_settings::modify_subscribe_name(caller, p),
        "ModifySubscribeConsumeTime" => subscribe_settings::modify_subscribe_consume_time(caller, p),
        "ModifySubscribeAutoRenewFlag" => subscribe_settings::modify_subscribe_auto_renew_flag(caller, p),
        "ModifySubscribeVipVport" => subscribe_settings::modify_subscribe_vip_vport(caller, p),
        _ => Err(ApiError::new("InvalidAction", format!("The action `{action}` is not supported."))),
    }
}
