//! `DescribeDtsJobs`, `DescribeDtsJobDetail` and `DescribePreCheckStatus`: jobs rendered in
//! Alibaba's shape (status strings, sub-status objects, endpoints without passwords, the nested
//! `ReverseJob` of a two-way instance), whichever dialect created them.

use dts_core::{CheckOutcome, EndpointSpec, JobKind, JobStatus, StepStatus};
use dts_store::{DtsInstance, JobFilter, JobOrder, JobRecord};
use serde_json::{Value, json};

use super::dialect::{Caller, Direction, job_type, resolve, status_matches, status_string, store_error};
use super::reply::AliError;

/// `yyyy-mm-dd hh:mm:ss` (UTC) as `yyyy-mm-ddThh:mm:ssZ`; empty stays empty.
fn iso(t: &str) -> String {
    if t.is_empty() { String::new() } else { format!("{}Z", t.replacen(' ', "T", 1)) }
}

fn endpoint_json(e: &EndpointSpec) -> Value {
    let extra = |k: &str| e.extra.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let engine = match e.database_type.as_str() {
        "mariadb" => "MariaDB",
        _ => "MySQL",
    };
    json!({
        "EngineName": engine,
        "InstanceType": e.extra.get("AlibabaInstanceType").and_then(Value::as_str)
            .unwrap_or(if e.ip.is_some() { "OTHER" } else { "RDS" }),
        "InstanceID": e.instance_id.clone().unwrap_or_default(),
        "Region": e.region.clone().unwrap_or_default(),
        "Ip": e.ip.clone().unwrap_or_default(),
        "Port": e.port.map(|p| p.to_string()).unwrap_or_default(),
        "UserName": e.user.clone().unwrap_or_default(),
        "DatabaseName": extra("DatabaseName"),
        "OracleSID": extra("OracleSID"),
        "SslSolutionEnum": "DISABLE",
    })
}

/// A step's sub-status (`StructureInitializationStatus`, ...).
fn step_status(job: &JobRecord, step_id: &str, caught_up: bool) -> Value {
    let step = job.detail.steps.iter().find(|s| s.step_id == step_id);
    let (status, percent) = match step.map(|s| s.status) {
        None | Some(StepStatus::NotRun) | Some(StepStatus::Default) => ("NotStarted", 0),
        Some(StepStatus::Running) if caught_up => ("Catched", 100),
        Some(StepStatus::Running) => ("Migrating", job.detail.current_step_progress),
        Some(StepStatus::Success) => ("Finished", 100),
        Some(StepStatus::Failed) => ("Failed", job.detail.current_step_progress),
    };
    let error =
        if status == "Failed" { job.errors.last().map(|e| e.log.clone()).unwrap_or_default() } else { String::new() };
    json!({ "Status": status, "Percent": percent.to_string(), "Progress": percent.to_string(),
            "ErrorMessage": error, "NeedUpgrade": false })
}

fn precheck_json(job: &JobRecord) -> Value {
    let c = &job.check;
    let status = match c.status.as_str() {
        "finished" if c.flag == 1 => "Finished",
        "finished" => "Failed",
        "starting" | "running" => "Checking",
        _ => "NotStarted",
    };
    let detail: Vec<Value> = c
        .report
        .iter()
        .flat_map(|r| r.items.iter())
        .map(|i| {
            let (result, reason) = match &i.outcome {
                CheckOutcome::Passed => ("Success", String::new()),
                CheckOutcome::Warning { detail } => ("Warning", detail.clone()),
                CheckOutcome::Failed { expected, found } => ("Failed", format!("expected {expected}; found {found}")),
            };
            json!({ "CheckItem": i.name, "CheckItemDescription": i.description, "CheckResult": result,
                    "FailedReason": reason, "RepairMethod": i.hint.clone().unwrap_or_default() })
        })
        .collect();
    json!({ "Status": status, "Percent": c.progress.to_string(), "ErrorMessage": if c.flag == 0 { c.error_message.clone() } else { String::new() },
            "Detail": detail })
}

/// One job in the shape of `DtsJobList[]` / `DescribeDtsJobDetail`.
fn job_json(job: &JobRecord, instance: Option<&DtsInstance>, direction: Direction) -> Value {
    let stages = job.spec.stages();
    let sync = job.kind == JobKind::Synchronization;
    let caught_up = matches!(job.status, JobStatus::ReadyComplete | JobStatus::Completing);
    let behind = job.detail.seconds_behind_master.max(0);
    let replicating = job.detail.step_no("IncrementalMigration").is_some_and(|n| n == job.detail.step_now);
    let declared = instance.map(|i| &i.info["Jobs"][direction.as_str()]);
    let db_object = declared
        .and_then(|d| d["DbList"].as_str())
        .map(str::to_string)
        .or_else(|| job.spec.database_info.clone())
        .unwrap_or_default();
    let purchase = instance.map(|i| &i.info["Purchase"]);
    let purchased = |k: &str| purchase.and_then(|p| p[k].as_str()).unwrap_or_default().to_string();
    let error = if matches!(job.status, JobStatus::Failed | JobStatus::CheckNotPass)
        && !super::dialect::stopped_on_request(job)
    {
        job.errors.last().map(|e| e.log.clone()).unwrap_or_else(|| job.check.error_message.clone())
    } else {
        String::new()
    };
    let pay_type = Some(purchased("PayType")).filter(|p| !p.is_empty()).unwrap_or_else(|| "PostPaid".into());
    let tags: Vec<Value> = job
        .spec
        .tags
        .iter()
        .map(|t| json!({"TagKey": t.key, "TagValue": t.value.clone().unwrap_or_default()}))
        .collect();
    json!({
        "DtsJobId": job.job_id,
        "DtsInstanceID": instance.map(|i| i.instance_id.clone()).unwrap_or_default(),
        "DtsJobName": job.spec.name,
        "DtsJobClass": purchased("InstanceClass"),
        "DtsJobDirection": direction.as_str(),
        "JobType": job_type(job.kind),
        "Status": status_string(job),
        "PayType": pay_type,
        "CreateTime": iso(&job.create_time),
        "FinishTime": iso(&job.end_time),
        "ExpireTime": "",
        "Checkpoint": if replicating { (chrono::Utc::now().timestamp() - behind).to_string() } else { String::new() },
        "Delay": if sync { behind } else { behind * 1000 },
        "DbObject": db_object,
        "Reserved": declared.and_then(|d| d["Reserve"].as_str()).unwrap_or_default(),
        "ErrorMessage": error,
        "ErrorDetails": [],
        "SourceEndpoint": endpoint_json(&job.spec.source),
        "DestinationEndpoint": endpoint_json(&job.spec.destination),
        "MigrationMode": {
            "StructureInitialization": stages.structure,
            "DataInitialization": stages.full_data,
            "DataSynchronization": stages.incremental,
            "FullDataCheck": false, "IncDataCheck": false, "StructureDataCheck": false, "TimeWindowCheck": false,
        },
        "PrecheckStatus": precheck_json(job),
        "StructureInitializationStatus": step_status(job, "StructureMigration", false),
        "DataInitializationStatus": step_status(job, "FullDataMigration", false),
        "DataSynchronizationStatus": step_status(job, "IncrementalMigration", caught_up && behind == 0),
        "Performance": { "Rps": job.detail.apply_rate.to_string(), "Flow": "0" },
        "ConflictCount": job.detail.conflicts,
        "RetryState": job.detail.retry.as_ref().map_or_else(|| json!({}), |r| json!({
            "Retrying": true,
            "RetryCount": r.attempts,
            "RetryTime": iso(&r.since),
            "Module": r.step,
            "ErrMessage": r.error,
            "RetryTarget": "source",
            "MaxRetryTime": 0,
        })),
        "TagList": tags,
        "ResourceGroupId": "",
        "SynchronizationDirection": direction.as_str(),
    })
}

/// A reserved job id nobody configured yet.
fn unconfigured_json(instance: &DtsInstance, job_id: &str, direction: Direction) -> Value {
    json!({
        "DtsJobId": job_id,
        "DtsInstanceID": instance.instance_id,
        "DtsJobName": "",
        "DtsJobDirection": direction.as_str(),
        "JobType": instance.info["Type"],
        "Status": "NotConfigured",
        "PayType": instance.info["Purchase"]["PayType"].as_str().unwrap_or("PostPaid"),
        "CreateTime": iso(&instance.create_time),
        "Delay": 0,
        "ErrorMessage": "",
        "ErrorDetails": [],
        "SynchronizationDirection": direction.as_str(),
    })
}

fn with_reverse(caller: &Caller<'_>, mut forward: Value, instance: &DtsInstance) -> Value {
    if let Some(rid) = &instance.reverse_job_id {
        forward["ReverseJob"] = match caller.ctx.store.account_job(caller.account_id, rid) {
            Ok(r) => job_json(&r, Some(instance), Direction::Reverse),
            Err(_) => unconfigured_json(instance, rid, Direction::Reverse),
        };
    }
    forward
}

pub fn describe_dts_jobs(caller: &Caller<'_>) -> Result<Value, AliError> {
    let wanted = caller.choice("JobType", &["MIGRATION", "SYNC", "SUBSCRIBE"])?.unwrap_or("MIGRATION");
    let page = caller.int("PageNumber")?.unwrap_or(1);
    let size = caller.int("PageSize")?.unwrap_or(20);
    if page < 1 {
        return Err(AliError::invalid_parameter("PageNumber", "it starts at 1"));
    }
    if !(1..=100).contains(&size) {
        return Err(AliError::invalid_parameter("PageSize", "it must be within 1..100"));
    }
    let store = &caller.ctx.store;
    let account = caller.account_id;
    let filter = JobFilter {
        job_id: None,
        job_name: None,
        order: JobOrder::CreateTime,
        descending: false,
        offset: 0,
        limit: u64::MAX,
        tags: Vec::new(),
    };
    let (_, jobs) = store.list_jobs(account, &filter).map_err(|e| store_error(e, ""))?;
    let instances = store.instances(account).map_err(|e| store_error(e, ""))?;
    let mut rows: Vec<(String, Value)> = Vec::new();
    for job in &jobs {
        let instance = instances
            .iter()
            .find(|i| i.forward_job_id == job.job_id || i.reverse_job_id.as_deref() == Some(&job.job_id));
        if instance.is_some_and(|i| i.reverse_job_id.as_deref() == Some(&job.job_id)) || job_type(job.kind) != wanted {
            continue;
        }
        let mut v = job_json(job, instance, Direction::Forward);
        if job.kind == JobKind::ChangeTracking {
            super::subscription::add_detail(caller, job, instance, &mut v);
        }
        if let Some(i) = instance {
            v = with_reverse(caller, v, i);
        }
        rows.push((job.create_time.clone(), v));
    }
    for inst in &instances {
        if inst.info["Type"] == wanted && !jobs.iter().any(|j| j.job_id == inst.forward_job_id) {
            let v = with_reverse(caller, unconfigured_json(inst, &inst.forward_job_id, Direction::Forward), inst);
            rows.push((inst.create_time.clone(), v));
        }
    }
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    rows.retain(|(_, v)| {
        caller.get("Status").is_none_or(|s| status_matches(s, &text(v, "Status")))
            && caller.get("DtsJobId").is_none_or(|id| text(v, "DtsJobId") == id)
            && caller.get("DtsInstanceId").is_none_or(|id| text(v, "DtsInstanceID") == id)
            && match (caller.get("Type"), caller.get("Params")) {
                (Some(t), Some(p)) if t.eq_ignore_ascii_case("name") => text(v, "DtsJobName").contains(p),
                (Some(t), Some(p)) if t.eq_ignore_ascii_case("instance") => {
                    text(v, "DtsInstanceID") == p || text(v, "DtsJobId") == p
                }
                _ => true,
            }
    });
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    if !caller.get("OrderDirection").is_some_and(|d| d.eq_ignore_ascii_case("asc")) {
        rows.reverse();
    }
    let total = rows.len();
    let list: Vec<Value> =
        rows.into_iter().map(|(_, v)| v).skip(((page - 1) * size) as usize).take(size as usize).collect();
    Ok(json!({
        "PageNumber": page,
        "PageRecordCount": list.len(),
        "TotalRecordCount": total,
        "DtsJobList": list,
        "EtlDemoList": [],
    }))
}

pub fn describe_dts_job_detail(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceID")?;
    let out = match (&target.job, &target.instance) {
        (Some(job), inst) => {
            let mut v = job_json(job, inst.as_ref(), target.direction);
            if job.kind == JobKind::ChangeTracking {
                super::subscription::add_detail(caller, job, inst.as_ref(), &mut v);
            }
            match inst {
                Some(i) if target.direction == Direction::Forward => with_reverse(caller, v, i),
                _ => v,
            }
        }
        (None, Some(inst)) => unconfigured_json(inst, &target.job_id, target.direction),
        (None, None) => return Err(AliError::not_purchased(&target.job_id)),
    };
    Ok(out)
}

pub fn describe_pre_check_status(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let job = target.configured()?;
    let code = caller.get("JobCode").unwrap_or("01");
    let page = caller.int("PageNo")?.unwrap_or(1).max(1);
    let size = caller.int("PageSize")?.unwrap_or(100).clamp(1, 1000);
    let boot = iso(&job.create_time);
    let items: Vec<Value> = match code {
        "01" => job
            .check
            .report
            .iter()
            .flat_map(|r| r.items.iter())
            .enumerate()
            .map(|(n, i)| {
                let (state, err) = match &i.outcome {
                    CheckOutcome::Passed => ("Success", String::new()),
                    CheckOutcome::Warning { detail } => ("Warning", detail.clone()),
                    CheckOutcome::Failed { expected, found } => {
                        ("Failed", format!("expected {expected}; found {found}"))
                    }
                };
                json!({
                    "Item": format!("CHECK_{}", i.name.to_ascii_uppercase()),
                    "Names": i.description,
                    "State": state,
                    "ErrMsg": err,
                    "RepairMethod": i.hint.clone().unwrap_or_default(),
                    "CanSkip": state == "Warning",
                    "Skip": false,
                    "OrderNum": (n + 1).to_string(),
                    "Total": 1,
                    "Current": "1",
                    "BootTime": boot,
                    "FinishTime": "",
                    "Logs": [],
                    "Sub": "",
                })
            })
            .collect(),
        "02" | "03" | "04" => {
            let step = match code {
                "02" => "StructureMigration",
                "03" => "FullDataMigration",
                _ => "IncrementalMigration",
            };
            let s = step_status(job, step, false);
            vec![json!({ "Item": step, "Names": step, "State": s["Status"], "ErrMsg": s["ErrorMessage"],
                         "RepairMethod": "", "CanSkip": false, "Skip": false, "OrderNum": "1", "Total": 1,
                         "Current": s["Percent"], "BootTime": boot, "FinishTime": iso(&job.end_time), "Logs": [] })]
        }
        other => return Err(AliError::invalid_parameter("JobCode", format!("`{other}` is not 01, 02, 03 or 04"))),
    };
    let state = if code == "01" {
        precheck_json(job)["Status"].as_str().unwrap_or("NotStarted").to_string()
    } else {
        items[0]["State"].as_str().unwrap_or_default().to_string()
    };
    let failed = items.iter().filter(|i| i["State"] == "Failed").count();
    let total = items.len();
    let page_items: Vec<Value> = items.into_iter().skip(((page - 1) * size) as usize).take(size as usize).collect();
    Ok(json!({
        "Code": "200",
        "JobId": job.job_id,
        "JobName": job.spec.name,
        "State": state,
        "Total": total,
        "ErrorItem": failed,
        "PageNumber": page,
        "PageRecordCount": page_items.len(),
        "TotalRecordCount": total,
        "JobProgress": page_items,
        "AnalysisJobProgress": [],
        "SubDistributedJobStatus": [],
        "FullNetCheckJobStatus": [],
        "NetworkDiagnosisResult": "",
    }))
}
