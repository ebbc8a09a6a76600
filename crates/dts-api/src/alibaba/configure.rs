//! `CreateDtsInstance` (an instance reserving one job id per direction; purchase fields recorded,
//! nothing billed) and `ConfigureDtsJob` (endpoints, `DbList`, stages; the precheck starts at
//! once, as on the real service).

use dts_core::{
    ConflictPolicy, DeclaredTarget, EndpointSpec, JobEvent, JobKind, JobStatus, MigrateOptions, MigrationSpec,
    ObjectSelection, RouteError, Stages, route,
};
use dts_store::{CheckState, DtsInstance, NewJob, new_job_id};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::dialect::{Caller, Direction, resolve, store_error};
use super::reply::AliError;

/// `*EndpointInstanceType` values accepted: `RDS` resolves through the instance registry, the
/// others name an address (`IP` + `Port`).
const INSTANCE_TYPES: [&str; 9] = ["RDS", "ECS", "LocalInstance", "OTHER", "EXPRESS", "CEN", "dg", "VPC", "POLARDB"];

/// An `*EndpointEngineName` (any case), validated through the route table; the stored
/// database type is the engine's Tencent name (`mysql`, `mariadb`, ...).
fn engine(caller: &Caller<'_>, name: &str) -> Result<&'static str, AliError> {
    let v = caller.required(name)?;
    let unsupported = || {
        AliError::invalid_parameter(
            name,
            format!("`{v}` is not supported here; dts moves {}", RouteError::supported_alibaba()),
        )
    };
    let entry = dts_core::route::engine_entry(v).filter(|e| e.alibaba.is_some()).ok_or_else(unsupported)?;
    dts_core::route::check_engine(v).map_err(|_| unsupported())?;
    entry.tencent.ok_or_else(unsupported)
}

/// The server id both directions of a two-way instance write with (3,000,000,000 and up, far
/// from the ids servers and replicas use).
fn loop_guard(instance_id: &str) -> u32 {
    let h = Sha256::digest(instance_id.as_bytes());
    3_000_000_000 + u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % 1_000_000_000
}

pub fn create_dts_instance(caller: &Caller<'_>) -> Result<Value, AliError> {
    let kind = caller.choice("Type", &["MIGRATION", "SYNC", "SUBSCRIBE"])?.ok_or_else(|| AliError::missing("Type"))?;
    let architecture = caller.choice("SyncArchitecture", &["oneway", "bidirectional"])?.unwrap_or("oneway");
    if architecture == "bidirectional" && kind != "SYNC" {
        return Err(AliError::invalid_parameter("SyncArchitecture", "bidirectional applies only to Type SYNC"));
    }
    caller.choice("PayType", &["PrePaid", "PostPaid"])?;
    for side in ["SourceEndpointEngineName", "DestinationEndpointEngineName"] {
        if caller.get(side).is_some() {
            engine(caller, side)?;
        }
    }
    if let Some(q) = caller.int("Quantity")?
        && q != 1
    {
        return Err(AliError::invalid_parameter("Quantity", "one instance per call"));
    }
    let forward = new_job_id();
    let instance_id = format!("dtsi-{}", forward.trim_start_matches("dts-"));
    let reverse = (architecture == "bidirectional").then(new_job_id);
    let purchase: Map<String, Value> = caller.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut info = json!({ "Type": kind, "SyncArchitecture": architecture, "Purchase": purchase, "Jobs": {} });
    if reverse.is_some() {
        info["LoopGuard"] = json!(loop_guard(&instance_id));
    }
    let inst = DtsInstance {
        instance_id: instance_id.clone(),
        account_id: caller.account_id.to_string(),
        info,
        forward_job_id: forward.clone(),
        reverse_job_id: reverse,
        create_time: String::new(),
    };
    caller.ctx.store.insert_instance(&inst).map_err(|e| store_error(e, &forward))?;
    tracing::info!(instance_id, job_id = forward, kind, architecture, "DTS instance created");
    Ok(json!({ "InstanceId": instance_id, "JobId": forward }))
}

/// `DbList` (`{"db": {"name": "db2", "all": true}}` or with `"Table": {"t": {"name": "t2", "all": true}}`)
/// as the `DatabaseInfo` the engine reads; a "name" other than its key renames the database or
/// table on the destination (`NewDatabase` / `NewTables`).
pub(super) fn database_info(db_list: &str) -> Result<String, AliError> {
    let bad = |why: String| AliError::invalid_parameter("DbList", why);
    let v: Value = serde_json::from_str(db_list).map_err(|e| bad(format!("it is not JSON ({e})")))?;
    let dbs =
        v.as_object().filter(|m| !m.is_empty()).ok_or_else(|| bad("it must be a non-empty JSON object".into()))?;
    let new_name = |key: &str, o: &Value| {
        o.get("name").and_then(Value::as_str).filter(|n| !n.is_empty() && *n != key).map(str::to_string)
    };
    let mut out = Vec::new();
    for (db, spec) in dbs {
        let mut entry = json!({ "Database": db });
        if let Some(n) = new_name(db, spec) {
            entry["NewDatabase"] = json!(n);
        }
        let all = spec.get("all").and_then(Value::as_bool);
        let tables = spec.get("Table").and_then(Value::as_object);
        match (all, tables) {
            (Some(false), Some(t)) if !t.is_empty() => {
                let renames: Map<String, Value> =
                    t.iter().filter_map(|(table, ts)| new_name(table, ts).map(|n| (table.clone(), json!(n)))).collect();
                entry["Table"] = json!(t.keys().collect::<Vec<_>>());
                if !renames.is_empty() {
                    entry["NewTables"] = Value::Object(renames);
                }
            }
            (Some(false), _) => return Err(bad(format!("database `{db}` has \"all\": false but no \"Table\""))),
            _ => {}
        }
        out.push(entry);
    }
    let info = Value::Array(out).to_string();
    ObjectSelection::parse(2, Some(&info)).map_err(|e| bad(e.to_string()))?;
    Ok(info)
}

/// `Reserve` (a JSON object) may carry `"conflictPolicy"`: LaterCommitWins (default),
/// Overwrite, Ignore or TaskFailed.
fn conflict_policy(reserve: Option<&str>) -> Result<ConflictPolicy, AliError> {
    let Some(raw) = reserve else { return Ok(ConflictPolicy::default()) };
    let v: Value =
        serde_json::from_str(raw).map_err(|e| AliError::invalid_parameter("Reserve", format!("not JSON ({e})")))?;
    match v.get("conflictPolicy").and_then(Value::as_str) {
        None => Ok(ConflictPolicy::default()),
        Some(p) => ConflictPolicy::parse(p).ok_or_else(|| {
            AliError::invalid_parameter(
                "Reserve",
                format!("conflictPolicy `{p}` is not one of {}", ConflictPolicy::NAMES.join(", ")),
            )
        }),
    }
}

/// `Reserve` keys that carry dts's per-job settings, and their `ExternParams` names
/// (`dts_core::extern_params`): TLS per endpoint, definer preservation.
const RESERVE_SETTINGS: [(&str, &str); 5] = [
    ("srcSslMode", "SrcSslMode"),
    ("srcSslCa", "SrcSslCa"),
    ("destSslMode", "DstSslMode"),
    ("destSslCa", "DstSslCa"),
    ("preserveDefiner", "PreserveDefiner"),
];

/// The `ExternParams` of a `Reserve` (only the keys of [`RESERVE_SETTINGS`]), validated.
fn reserve_settings(reserve: Option<&str>) -> Result<Option<String>, AliError> {
    let Some(raw) = reserve else { return Ok(None) };
    let v: Value =
        serde_json::from_str(raw).map_err(|e| AliError::invalid_parameter("Reserve", format!("not JSON ({e})")))?;
    let mut settings = serde_json::Map::new();
    for (ours, theirs) in RESERVE_SETTINGS {
        if let Some(value) = v.get(ours) {
            settings.insert(theirs.to_string(), value.clone());
        }
    }
    if settings.is_empty() {
        return Ok(None);
    }
    let text = Value::Object(settings).to_string();
    dts_core::ExternSettings::parse(Some(&text)).map_err(|e| AliError::invalid_parameter("Reserve", e.to_string()))?;
    Ok(Some(text))
}

/// `Reserve`'s `autoStartModulesAfterConfig`: `all` (the default) or `none`.
fn auto_start(reserve: Option<&str>) -> Result<bool, AliError> {
    let Some(raw) = reserve else { return Ok(true) };
    let v: Value =
        serde_json::from_str(raw).map_err(|e| AliError::invalid_parameter("Reserve", format!("not JSON ({e})")))?;
    match v.get("autoStartModulesAfterConfig").and_then(Value::as_str) {
        None => Ok(true),
        Some(s) if s.eq_ignore_ascii_case("all") => Ok(true),
        Some(s) if s.eq_ignore_ascii_case("none") => Ok(false),
        Some(s) => Err(AliError::invalid_parameter(
            "Reserve",
            format!("autoStartModulesAfterConfig `{s}` is not one of all, none"),
        )),
    }
}

/// One endpoint group (`SourceEndpoint*` or `DestinationEndpoint*`): the stored endpoint, its
/// password, and what Describe echoes back.
pub(super) fn endpoint(caller: &Caller<'_>, prefix: &str) -> Result<(EndpointSpec, Option<String>), AliError> {
    let p = |f: &str| format!("{prefix}{f}");
    let database_type = engine(caller, &p("EngineName"))?;
    let instance_type = caller.required(&p("InstanceType"))?;
    if !INSTANCE_TYPES.iter().any(|t| t.eq_ignore_ascii_case(instance_type)) {
        return Err(AliError::invalid_parameter(&p("InstanceType"), format!("`{instance_type}` is not supported")));
    }
    let rds = instance_type.eq_ignore_ascii_case("RDS");
    let instance_id = caller.get(&p("InstanceID")).map(str::to_string);
    let ip = caller.get(&p("IP")).map(str::to_string);
    let port = caller
        .get(&p("Port"))
        .map(|v| v.parse::<i64>().ok().filter(|n| (1..=65535).contains(n)))
        .map(|n| n.ok_or_else(|| AliError::invalid_parameter(&p("Port"), "it is not a TCP port")))
        .transpose()?;
    match (&ip, &instance_id) {
        (Some(_), _) => {}
        (None, Some(id)) if rds || caller.ctx.instances.get_for(caller.account_id, id).is_some() => {
            if caller.ctx.instances.get_for(caller.account_id, id).is_none() {
                return Err(AliError::invalid_parameter(
                    &p("InstanceID"),
                    format!("the instance `{id}` is not registered with this dts server"),
                ));
            }
        }
        _ => return Err(AliError::missing(&p("IP"))),
    }
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("AlibabaInstanceType".to_string(), json!(instance_type));
    let db_name = if prefix.starts_with("Source") { p("DatabaseName") } else { p("DataBaseName") };
    for (field, key) in [(db_name.as_str(), "DatabaseName"), (&p("OracleSID"), "OracleSID"), (&p("Role"), "Role")] {
        if let Some(v) = caller.get(field) {
            extra.insert(key.to_string(), json!(v));
        }
    }
    let spec = EndpointSpec {
        database_type: database_type.to_string(),
        access_type: if ip.is_some() { "extranet".into() } else { "cdb".into() },
        ip,
        port,
        user: caller.get(&p("UserName")).map(str::to_string),
        instance_id: instance_id.filter(|_| caller.get(&p("IP")).is_none()),
        region: caller.get(&p("Region")).map(str::to_string),
        extra,
    };
    Ok((spec, caller.params.get(&p("Password")).cloned()))
}

pub fn configure_dts_job(caller: &Caller<'_>) -> Result<Value, AliError> {
    let target = resolve(caller, "DtsInstanceId")?;
    let Some(instance) = target.instance.clone() else {
        return Err(AliError::not_purchased(&target.job_id));
    };
    let instance_type = instance.info["Type"].as_str().unwrap_or("MIGRATION");
    if instance_type == "SUBSCRIBE" {
        return Err(AliError::invalid_parameter(
            "DtsInstanceId",
            format!(
                "the instance `{}` is for change tracking: configure it with ConfigureSubscription",
                instance.instance_id
            ),
        ));
    }
    let job_type = caller.choice("JobType", &["MIGRATION", "SYNC"])?.unwrap_or(instance_type);
    if job_type != instance_type {
        return Err(AliError::invalid_parameter(
            "JobType",
            format!("the instance `{}` was bought for {instance_type}", instance.instance_id),
        ));
    }
    let stages = Stages {
        structure: caller.bool("StructureInitialization")?.unwrap_or(false),
        full_data: caller.bool("DataInitialization")?.unwrap_or(false),
        incremental: caller.bool("DataSynchronization")?.unwrap_or(false),
    };
    if !(stages.structure || stages.full_data || stages.incremental) {
        return Err(AliError::invalid_parameter(
            "DataSynchronization",
            "at least one of StructureInitialization, DataInitialization, DataSynchronization must be true",
        ));
    }
    if job_type == "SYNC" && !stages.incremental {
        return Err(AliError::invalid_parameter(
            "DataSynchronization",
            "a synchronization task replicates: set it true",
        ));
    }
    if target.direction == Direction::Reverse {
        if stages.structure || stages.full_data {
            return Err(AliError::invalid_parameter(
                "DataInitialization",
                "the reverse direction of a two-way synchronization replicates changes only; set \
                 StructureInitialization and DataInitialization to false",
            ));
        }
        let forward = caller.ctx.store.account_job(caller.account_id, &instance.forward_job_id);
        if forward.is_err() {
            return Err(AliError::not_configured(&instance.forward_job_id));
        }
    }
    let db_list = caller.get("DbList").map(str::to_string).or_else(|| {
        // The reverse job may leave DbList out: it covers what the forward job covers.
        (target.direction == Direction::Reverse)
            .then(|| instance.info["Jobs"]["Forward"]["DbList"].as_str().map(str::to_string))
            .flatten()
    });
    let db_list = db_list.ok_or_else(|| AliError::missing("DbList"))?;
    let info = database_info(&db_list)?;
    let (source, src_password) = endpoint(caller, "SourceEndpoint")?;
    let (destination, dst_password) = endpoint(caller, "DestinationEndpoint")?;
    route(&source.database_type, DeclaredTarget::Database(&destination.database_type))
        .map_err(|e| AliError::invalid_parameter("DestinationEndpointEngineName", e.to_string()))?;
    let name = caller.get("DtsJobName").unwrap_or(&target.job_id).to_string();
    if name.chars().count() > 128 {
        return Err(AliError::invalid_parameter("DtsJobName", "it is longer than 128 characters"));
    }
    // As on the real service, the task starts by itself once its precheck passes, unless
    // `Reserve` says `"autoStartModulesAfterConfig": "none"`; a reverse task only if the forward
    // task already synchronizes (else StartDtsJob starts it later).
    let auto_start = auto_start(caller.get("Reserve"))?
        && (target.direction == Direction::Forward || super::control::forward_ready(caller, &target).is_ok());
    let spec = MigrationSpec {
        auto_start,
        name,
        options: MigrateOptions {
            run_mode: 1,
            expect_time: None,
            migrate_type: stages.migrate_type(),
            migrate_object: 2,
            consistency_type: None,
            is_override_root: None,
            extern_params: reserve_settings(caller.get("Reserve"))?,
            consistency_params: None,
        },
        source,
        destination,
        database_info: Some(info),
        tags: Vec::new(),
        src_node_type: None,
        src_info_multi: Vec::new(),
        stages: Some(stages),
        loop_guard: instance.info["LoopGuard"].as_u64().and_then(|g| u32::try_from(g).ok()),
        conflict_policy: conflict_policy(caller.get("Reserve"))?,
    };
    let kind = if job_type == "SYNC" { JobKind::Synchronization } else { JobKind::Migration };
    let store = &caller.ctx.store;
    let id = target.job_id.clone();
    if target.job.is_none() {
        store
            .insert_job(NewJob {
                job_id: Some(id.clone()),
                account_id: caller.account_id.to_string(),
                kind,
                spec: spec.clone(),
                src_password: src_password.clone(),
                dst_password: dst_password.clone(),
            })
            .map_err(|e| store_error(e, &id))?;
    }
    let mut refused = None;
    let updated = store.update_job(&id, |job| {
        if !job.status.modifiable() {
            refused = Some(job.status);
            return Err(dts_store::StoreError::Rejected(String::new()));
        }
        // A stored password never follows the task to another server.
        let src_password =
            src_password.clone().or_else(|| crate::endpoint_moved(&job.spec.source, &spec.source).then(String::new));
        let dst_password = dst_password
            .clone()
            .or_else(|| crate::endpoint_moved(&job.spec.destination, &spec.destination).then(String::new));
        job.spec = spec;
        store.set_job_passwords(job, src_password.as_deref(), dst_password.as_deref());
        job.apply(JobEvent::Modified)?;
        job.apply(JobEvent::CheckRequested)?;
        job.check = CheckState::starting();
        job.errors.clear();
        job.detail = dts_core::JobDetail::for_job(job.kind, &job.spec);
        Ok(())
    });
    if let Some(status) = refused {
        return Err(AliError::status_conflict(format!(
            "The task `{id}` is {} and cannot be configured now; suspend or stop it, or call ResetDtsJob first.",
            if status == JobStatus::Checking { "being prechecked" } else { "running" }
        )));
    }
    updated.map_err(|e| store_error(e, &id))?;
    let mut doc = instance.info.clone();
    let declared: Map<String, Value> = caller
        .params
        .iter()
        .filter(|(k, _)| !k.ends_with("Password"))
        .map(|(k, v)| (k.clone(), json!(v)))
        .chain([("DbList".to_string(), json!(db_list)), ("JobType".to_string(), json!(job_type))])
        .collect();
    doc["Jobs"][target.direction.as_str()] = Value::Object(declared);
    store.set_instance_info(&instance.instance_id, &doc).map_err(|e| store_error(e, &id))?;
    caller.ctx.wake_engine.notify_one();
    tracing::info!(job_id = %id, direction = target.direction.as_str(), "task configured; precheck started");
    Ok(json!({ "DtsInstanceId": instance.instance_id, "DtsJobId": id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_tls_and_definer_keys_become_extern_params_and_bad_values_are_refused() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let reserve = serde_json::json!({
            "srcSslMode": "verify-full", "srcSslCa": pem, "destSslMode": "required", "preserveDefiner": true,
            "autoStartModulesAfterConfig": "none"
        })
        .to_string();
        let params = reserve_settings(Some(&reserve)).unwrap().unwrap();
        let s = dts_core::ExternSettings::parse(Some(&params)).unwrap();
        assert_eq!(s.source_tls, dts_core::TlsMode::VerifyFull { ca: Some(pem.into()) });
        assert_eq!(s.destination_tls, dts_core::TlsMode::Required);
        assert!(s.preserve_definer);
        assert_eq!(reserve_settings(Some(r#"{"conflictPolicy":"Ignore"}"#)).unwrap(), None);
        assert!(reserve_settings(Some(r#"{"destSslMode":"sometimes"}"#)).is_err());
    }

    #[test]
    fn db_list_becomes_database_info_with_its_renames() {
        assert_eq!(database_info(r#"{"shop":{"name":"shop","all":true}}"#).unwrap(), r#"[{"Database":"shop"}]"#);
        assert_eq!(
            database_info(
                r#"{"shop":{"name":"shop2","all":false,"Table":{"a":{"name":"a2","all":true},"b":{"all":true}}}}"#
            )
            .unwrap(),
            r#"[{"Database":"shop","NewDatabase":"shop2","NewTables":{"a":"a2"},"Table":["a","b"]}]"#
        );
        for bad in ["{}", "[1]", r#"{"mysql":{"all":true}}"#, r#"{"shop":{"name":"mysql","all":true}}"#] {
            let e = database_info(bad).unwrap_err();
            assert_eq!((e.code, e.dynamic.as_deref()), ("InvalidParameter", Some("DbList")), "{bad}");
        }
    }

    #[test]
    fn the_loop_guard_is_stable_and_out_of_the_usual_server_id_range() {
        let g = loop_guard("dtsi-abc");
        assert_eq!(g, loop_guard("dtsi-abc"));
        assert!(g >= 3_000_000_000);
    }
}
