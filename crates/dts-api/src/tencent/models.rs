//! The 2018-03-30 wire models: parameter schemas of the 9 migration actions, and the JSON of
//! `MigrateJobInfo` built from a stored job (every field present, passwords as `""`).

use dts_core::{EndpointSpec, JobDetail, MigrateOptions};
use dts_store::JobRecord;
use serde_json::{Map, Value, json};

use super::params::{Field, Ty};

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, required: false }
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, required: true }
}

/// `SrcInfo` string fields, in model order (Port is the one integer).
pub const SRC_INFO_FIELDS: [&str; 16] = [
    "AccessKey",
    "Ip",
    "Port",
    "User",
    "Password",
    "RdsInstanceId",
    "CvmInstanceId",
    "UniqDcgId",
    "VpcId",
    "SubnetId",
    "UniqVpnGwId",
    "InstanceId",
    "Region",
    "Supplier",
    "CcnId",
    "EngineVersion",
];
/// `DstInfo` fields, in model order (Port and ReadOnly are integers).
pub const DST_INFO_FIELDS: [&str; 7] = ["Region", "InstanceId", "Ip", "Port", "ReadOnly", "User", "Password"];

static SRC_INFO: [Field; 16] = [
    opt("AccessKey", Ty::Str),
    opt("Ip", Ty::Str),
    opt("Port", Ty::Int),
    opt("User", Ty::Str),
    opt("Password", Ty::Str),
    opt("RdsInstanceId", Ty::Str),
    opt("CvmInstanceId", Ty::Str),
    opt("UniqDcgId", Ty::Str),
    opt("VpcId", Ty::Str),
    opt("SubnetId", Ty::Str),
    opt("UniqVpnGwId", Ty::Str),
    opt("InstanceId", Ty::Str),
    opt("Region", Ty::Str),
    opt("Supplier", Ty::Str),
    opt("CcnId", Ty::Str),
    opt("EngineVersion", Ty::Str),
];
static DST_INFO: [Field; 7] = [
    req("Region", Ty::Str),
    opt("InstanceId", Ty::Str),
    opt("Ip", Ty::Str),
    opt("Port", Ty::Int),
    opt("ReadOnly", Ty::Int),
    opt("User", Ty::Str),
    opt("Password", Ty::Str),
];
static CONSISTENCY_PARAMS: [Field; 3] =
    [req("SelectRowsPerTable", Ty::Int), req("TablesSelectAll", Ty::Int), req("TablesSelectCount", Ty::Int)];
static MIGRATE_OPTION: [Field; 8] = [
    req("RunMode", Ty::Int),
    opt("ExpectTime", Ty::Str),
    opt("MigrateType", Ty::Int),
    opt("MigrateObject", Ty::Int),
    opt("ConsistencyType", Ty::Int),
    opt("IsOverrideRoot", Ty::Int),
    opt("ExternParams", Ty::Str),
    opt("ConsistencyParams", Ty::Obj(&CONSISTENCY_PARAMS)),
];
static TAG_ITEM: [Field; 2] = [req("TagKey", Ty::Str), opt("TagValue", Ty::Str)];
static TAG_FILTER: [Field; 2] = [req("TagKey", Ty::Str), opt("TagValue", Ty::Arr(&Ty::Str))];

pub static CREATE_MIGRATE_JOB: [Field; 12] = [
    req("JobName", Ty::Str),
    req("MigrateOption", Ty::Obj(&MIGRATE_OPTION)),
    req("SrcDatabaseType", Ty::Str),
    req("SrcAccessType", Ty::Str),
    req("SrcInfo", Ty::Obj(&SRC_INFO)),
    req("DstDatabaseType", Ty::Str),
    req("DstAccessType", Ty::Str),
    req("DstInfo", Ty::Obj(&DST_INFO)),
    opt("DatabaseInfo", Ty::Str),
    opt("Tags", Ty::Arr(&Ty::Obj(&TAG_ITEM))),
    opt("SrcNodeType", Ty::Str),
    opt("SrcInfoMulti", Ty::Arr(&Ty::Obj(&SRC_INFO))),
];
pub static MODIFY_MIGRATE_JOB: [Field; 10] = [
    req("JobId", Ty::Str),
    opt("JobName", Ty::Str),
    opt("MigrateOption", Ty::Obj(&MIGRATE_OPTION)),
    opt("SrcAccessType", Ty::Str),
    opt("SrcInfo", Ty::Obj(&SRC_INFO)),
    opt("DstAccessType", Ty::Str),
    opt("DstInfo", Ty::Obj(&DST_INFO)),
    opt("DatabaseInfo", Ty::Str),
    opt("SrcNodeType", Ty::Str),
    opt("SrcInfoMulti", Ty::Arr(&Ty::Obj(&SRC_INFO))),
];
pub static DESCRIBE_MIGRATE_JOBS: [Field; 7] = [
    opt("JobId", Ty::Str),
    opt("JobName", Ty::Str),
    opt("Order", Ty::Str),
    opt("OrderSeq", Ty::Str),
    opt("Offset", Ty::Int),
    opt("Limit", Ty::Int),
    opt("TagFilters", Ty::Arr(&Ty::Obj(&TAG_FILTER))),
];
pub static JOB_ID_ONLY: [Field; 1] = [req("JobId", Ty::Str)];
/// `DescribeMigrateJobDiff` pages its tables (`Offset`/`Limit`, at most 100) and its repair
/// statements (`RepairSqlOffset`/`RepairSqlLimit`, at most 10,000).
pub static DESCRIBE_MIGRATE_JOB_DIFF: [Field; 5] = [
    req("JobId", Ty::Str),
    opt("Offset", Ty::Int),
    opt("Limit", Ty::Int),
    opt("RepairSqlOffset", Ty::Int),
    opt("RepairSqlLimit", Ty::Int),
];
pub static COMPLETE_MIGRATE_JOB: [Field; 2] = [req("JobId", Ty::Str), opt("CompleteMode", Ty::Str)];

/// The key under which a sealed `SrcInfo.AccessKey` is kept in `EndpointSpec::extra`.
pub const SEALED_ACCESS_KEY: &str = "AccessKeySealed";

/// Splits a validated `SrcInfo`/`DstInfo` object into the stored endpoint and its password.
/// `AccessKey` is left out: [`seal_access_key`] stores it encrypted.
pub fn endpoint_from(
    database_type: &str,
    access_type: &str,
    info: &Map<String, Value>,
) -> (EndpointSpec, Option<String>) {
    let s = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_string);
    let extra = info
        .iter()
        .filter(|(k, _)| {
            !matches!(k.as_str(), "Ip" | "Port" | "User" | "Password" | "InstanceId" | "Region" | "AccessKey")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let spec = EndpointSpec {
        database_type: database_type.to_string(),
        access_type: access_type.to_string(),
        ip: s("Ip"),
        port: info.get("Port").and_then(Value::as_i64),
        user: s("User"),
        instance_id: s("InstanceId"),
        region: s("Region"),
        extra,
    };
    (spec, s("Password"))
}

/// Keeps a `SrcInfo.AccessKey` encrypted with the store's key (never in clear, never returned).
pub fn seal_access_key(store: &dts_store::Store, info: &Map<String, Value>, e: &mut EndpointSpec) {
    if let Some(key) = info.get("AccessKey").and_then(Value::as_str).filter(|k| !k.is_empty()) {
        e.extra.insert(SEALED_ACCESS_KEY.to_string(), json!(store.seal_endpoint_secret("SrcInfo.AccessKey", key)));
    }
}

/// `SrcInfo`/`DstInfo` as Describe returns it: every field, unset ones `""`/`0`, password and
/// access key `""`.
fn endpoint_json(e: &EndpointSpec, fields: &[&str]) -> Value {
    let mut m = Map::new();
    for &f in fields {
        let v = match f {
            "Ip" => json!(e.ip.clone().unwrap_or_default()),
            "Port" => json!(e.port.unwrap_or(0)),
            "User" => json!(e.user.clone().unwrap_or_default()),
            "Password" | "AccessKey" => json!(""),
            "InstanceId" => json!(e.instance_id.clone().unwrap_or_default()),
            "Region" => json!(e.region.clone().unwrap_or_default()),
            "ReadOnly" => e.extra.get(f).cloned().unwrap_or(json!(0)),
            other => e.extra.get(other).cloned().unwrap_or(json!("")),
        };
        m.insert(f.to_string(), v);
    }
    Value::Object(m)
}

fn options_json(o: &MigrateOptions) -> Value {
    json!({
        "RunMode": o.run_mode,
        "ExpectTime": o.expect_time.clone().unwrap_or_default(),
        "MigrateType": o.migrate_type,
        "MigrateObject": o.migrate_object,
        "ConsistencyType": o.consistency_type.unwrap_or(1),
        "IsOverrideRoot": o.is_override_root.unwrap_or(0),
        "ExternParams": o.extern_params.clone().unwrap_or_default(),
        "ConsistencyParams": o.consistency_params.as_ref().map(|c| json!({
            "SelectRowsPerTable": c.select_rows_per_table.unwrap_or(0),
            "TablesSelectAll": c.tables_select_all.unwrap_or(0),
            "TablesSelectCount": c.tables_select_count.unwrap_or(0),
        })),
    })
}

fn detail_json(d: &JobDetail) -> Value {
    json!({
        "StepAll": d.steps.len(),
        "StepNow": d.step_now,
        "Progress": d.progress.to_string(),
        "CurrentStepProgress": d.current_step_progress.to_string(),
        "MasterSlaveDistance": d.master_slave_distance,
        "SecondsBehindMaster": d.seconds_behind_master,
        "ConflictCount": d.conflicts,
        "AppliedChanges": d.applied_changes,
        "ApplyRate": d.apply_rate,
        "Notes": d.notes,
        "RetryState": d.retry.as_ref().map(|r| json!({
            "Since": r.since, "Attempts": r.attempts, "Step": r.step, "Error": r.error,
        })),
        "StepInfo": d.steps.iter().map(|s| json!({
            "StepNo": s.step_no,
            "StepName": s.name,
            "StepId": s.step_id,
            "Status": i64::from(s.status),
            "StartTime": s.start_time,
        })).collect::<Vec<_>>(),
    })
}

fn time_or_zero(t: &str) -> &str {
    if t.is_empty() { "0000-00-00 00:00:00" } else { t }
}

/// `MigrateJobInfo` of a stored job.
pub fn job_info(job: &JobRecord) -> Value {
    let spec = &job.spec;
    json!({
        "JobId": job.job_id,
        "JobName": spec.name,
        "MigrateOption": options_json(&spec.options),
        "SrcDatabaseType": spec.source.database_type,
        "SrcAccessType": spec.source.access_type,
        "SrcInfo": endpoint_json(&spec.source, &SRC_INFO_FIELDS),
        "DstDatabaseType": spec.destination.database_type,
        "DstAccessType": spec.destination.access_type,
        "DstInfo": endpoint_json(&spec.destination, &DST_INFO_FIELDS),
        "DatabaseInfo": spec.database_info.clone().unwrap_or_default(),
        "CreateTime": job.create_time,
        "StartTime": time_or_zero(&job.start_time),
        "EndTime": time_or_zero(&job.end_time),
        "Status": job.status.code(),
        "Detail": detail_json(&job.detail),
        "ErrorInfo": job.errors.iter().map(|e| json!({"ErrorLog": e.log, "HelpDoc": e.help})).collect::<Vec<_>>(),
        "Tags": spec.tags.iter().map(|t| json!({"TagKey": t.key, "TagValue": t.value.clone().unwrap_or_default()})).collect::<Vec<_>>(),
        "SrcInfoMulti": spec.src_info_multi.iter().map(|e| endpoint_json(e, &SRC_INFO_FIELDS)).collect::<Vec<_>>(),
    })
}
