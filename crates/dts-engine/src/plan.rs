//! Turns a stored job into a [`MigrationPlan`]: addresses from `Ip`/`Port` or from the instance
//! registry (`InstanceId`), credentials from the spec, the registry and the encrypted store.

use dts_core::{
    BusTarget, ConnectionSpec, DatabaseFamily, DeclaredTarget, EndpointSpec, ExternSettings, InstanceRegistry, JobKind,
    MigrationPlan, ObjectSelection, Target, TlsMode,
};
use dts_store::{JobRecord, Store};

use crate::EngineError;

fn connection(
    side: &str,
    family: DatabaseFamily,
    e: &EndpointSpec,
    password: Option<String>,
    registry: &InstanceRegistry,
    tls: TlsMode,
    account: &str,
) -> Result<ConnectionSpec, EngineError> {
    if let Some(ip) = e.ip.as_deref().filter(|s| !s.is_empty()) {
        let port = e.port.unwrap_or(family.default_port().into());
        return Ok(ConnectionSpec {
            host: ip.to_string(),
            port: u16::try_from(port)
                .map_err(|_| EngineError::Plan(format!("{side} port {port} is not a TCP port")))?,
            user: e.user.clone().unwrap_or_else(|| family.default_user().into()),
            password: password.unwrap_or_default(),
            tls,
            ..Default::default()
        });
    }
    let id = e.instance_id.as_deref().unwrap_or_default();
    // Another account's instance is unknown to this job (its credentials serve only its owner).
    let inst = registry
        .get_for(account, id)
        .ok_or_else(|| EngineError::Plan(format!("{side} instance `{id}` is not in the instance registry")))?;
    let user_given = e.user.as_deref().filter(|s| !s.is_empty());
    Ok(ConnectionSpec {
        host: inst.host.clone(),
        port: inst.port,
        user: user_given.map(str::to_string).unwrap_or_else(|| inst.user.clone()),
        password: match user_given {
            Some(_) => password.unwrap_or_default(),
            None => password.filter(|p| !p.is_empty()).unwrap_or_else(|| inst.password.clone()),
        },
        tls,
        ..Default::default()
    })
}

/// The plan of a job: its route (which family runs it, and whether it writes to a database or
/// the change bus), endpoints with credentials, selection and options.
pub fn resolve_plan(store: &Store, job: &JobRecord, registry: &InstanceRegistry) -> Result<MigrationPlan, EngineError> {
    let (src_pw, dst_pw) = store.job_passwords(job)?;
    let spec = &job.spec;
    let selection = ObjectSelection::parse(spec.options.migrate_object, spec.database_info.as_deref())
        .map_err(|e| EngineError::Plan(e.to_string()))?;
    let declared = match job.kind {
        JobKind::ChangeTracking => DeclaredTarget::ChangeBus,
        _ => DeclaredTarget::Database(&spec.destination.database_type),
    };
    // TLS per endpoint (`ExternParams`; the Alibaba dialect maps `Reserve` onto it).
    let settings = ExternSettings::parse(spec.options.extern_params.as_deref())
        .map_err(|e| EngineError::Plan(format!("MigrateOption.ExternParams: {e}")))?;
    let route = dts_core::route(&spec.source.database_type, declared).map_err(|e| EngineError::Plan(e.to_string()))?;
    let target = match job.kind {
        JobKind::ChangeTracking => Target::ChangeBus(BusTarget { subscription: job.job_id.clone() }),
        _ => Target::Database(connection(
            "destination",
            route.family,
            &spec.destination,
            dst_pw,
            registry,
            settings.destination_tls,
            &job.account_id,
        )?),
    };
    Ok(MigrationPlan {
        job_id: job.job_id.clone(),
        kind: job.kind,
        route,
        stages: spec.stages(),
        selection,
        source: connection(
            "source",
            route.family,
            &spec.source,
            src_pw,
            registry,
            settings.source_tls,
            &job.account_id,
        )?,
        target,
        override_root: spec.options.is_override_root == Some(1),
        loop_guard: spec.loop_guard,
        conflict_policy: spec.conflict_policy,
        extern_params: spec.options.extern_params.clone(),
    })
}
