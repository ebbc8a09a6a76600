//! The Redis precheck: both servers reachable and authenticated, versions (RESTORE or
//! commands), PSYNC allowed for the source user, the destination's selected databases empty
//! (or `DstOverwrite`), its memory large enough, the topology (standalone or a healthy Redis
//! Cluster on either side, database 0 only with a cluster), and the `ExternParams` the source
//! must accept. Read-only; every item runs.

use dts_core::{CheckItem, CheckReport, MigrationPlan, ProgressFn};

use crate::conn::{Conn, info_field, keyspace};
use crate::dbs::DbSelection;
use crate::resp::Reply;
use crate::settings::RedisSettings;
use crate::sync::rdb_version_of;

const TOTAL: u64 = 7;

/// Runs every check of a Redis plan.
pub async fn check(plan: &MigrationPlan, progress: ProgressFn<'_>) -> CheckReport {
    let mut items = Vec::new();
    let dbs = DbSelection::of(plan);
    let settings = RedisSettings::parse(plan.extern_params.as_deref());
    match (&dbs, &settings) {
        (Ok(_), Ok(_)) => items.push(CheckItem::passed("ObjectsAndParams", "DatabaseInfo and ExternParams")),
        (Err(e), _) => items.push(failed("ObjectsAndParams", "DatabaseInfo and ExternParams", &e.summary, None)),
        (_, Err(e)) => items.push(failed("ObjectsAndParams", "DatabaseInfo and ExternParams", &e.to_string(), None)),
    }
    let dbs = dbs.unwrap_or(DbSelection::All);
    let settings = settings.unwrap_or_default();
    progress(1, TOTAL);
    let mut source = match Conn::open(&plan.source).await {
        Ok(c) => {
            items.push(CheckItem::passed("SourceConnection", "source reachable and authenticated"));
            Some(c)
        }
        Err(e) => {
            items.push(failed(
                "SourceConnection",
                "source reachable and authenticated",
                &e.into_connector("the source").summary,
                None,
            ));
            None
        }
    };
    let mut dest = match plan.destination() {
        Ok(spec) => match Conn::open(spec).await {
            Ok(c) => {
                items.push(CheckItem::passed("TargetConnection", "destination reachable and authenticated"));
                Some(c)
            }
            Err(e) => {
                items.push(failed(
                    "TargetConnection",
                    "destination reachable and authenticated",
                    &e.into_connector("the destination").summary,
                    None,
                ));
                None
            }
        },
        Err(e) => {
            items.push(failed("TargetConnection", "destination", &e.summary, None));
            None
        }
    };
    progress(2, TOTAL);
    let (Some(source), Some(dest)) = (source.as_mut(), dest.as_mut()) else {
        return CheckReport { items };
    };
    let s_info = source.info("everything").await.unwrap_or_default();
    let d_info = dest.info("everything").await.unwrap_or_default();
    let s_ver = info_field(&s_info, "redis_version").unwrap_or("0").to_string();
    let d_ver = info_field(&d_info, "redis_version").unwrap_or("0").to_string();
    let (s_rdb, d_rdb) = (rdb_version_of(&s_ver), rdb_version_of(&d_ver));
    if d_rdb >= s_rdb {
        items.push(CheckItem::passed("Version", "the destination restores what the source dumps"));
    } else {
        items.push(CheckItem::warning(
            "Version",
            "the destination restores what the source dumps",
            format!("destination {d_ver} is older than source {s_ver}: keys are written as commands; stream keys cannot be copied"),
            Some("use a destination of the source's version or newer".into()),
        ));
    }
    progress(3, TOTAL);
    items.push(psync_allowed(source, &plan.source.user).await);
    progress(4, TOTAL);
    let on_dest: u64 = keyspace(&d_info).into_iter().filter(|(d, _)| dbs.contains(*d)).map(|(_, k)| k).sum();
    if on_dest == 0 || settings.overwrite {
        items.push(CheckItem::passed("TargetEmpty", "the destination's selected databases are empty"));
    } else {
        items.push(failed(
            "TargetEmpty",
            "the destination's selected databases are empty",
            &format!("the destination holds {on_dest} keys in the selected databases"),
            Some("empty them, or set ExternParams {\"DstOverwrite\": true} to overwrite keys of the same name".into()),
        ));
    }
    progress(5, TOTAL);
    let used: u64 = info_field(&s_info, "used_memory").and_then(|v| v.parse().ok()).unwrap_or(0);
    let maxmemory: u64 = info_field(&d_info, "maxmemory").and_then(|v| v.parse().ok()).unwrap_or(0);
    if maxmemory == 0 || maxmemory >= used {
        items.push(CheckItem::passed("TargetMemory", "destination maxmemory holds the source's data"));
    } else {
        items.push(CheckItem::warning(
            "TargetMemory",
            "destination maxmemory holds the source's data",
            format!("the destination's maxmemory ({maxmemory} bytes) is below the source's used_memory ({used} bytes)"),
            Some("raise maxmemory on the destination".into()),
        ));
    }
    items.push(topology(plan, &dbs, &settings, source, dest, &s_info).await);
    progress(6, TOTAL);
    if settings.changes_source() {
        match source.call(&["CONFIG", "GET", "repl-backlog-size"]).await {
            Ok(Reply::Array(Some(v))) if v.len() == 2 => items
                .push(CheckItem::passed("SourceSettings", "the source accepts the replica settings of ExternParams")),
            _ => items.push(failed(
                "SourceSettings",
                "the source accepts the replica settings of ExternParams",
                "the source user may not run CONFIG GET/SET",
                Some("grant +config to the source user, or remove the replica settings from ExternParams".into()),
            )),
        }
    }
    progress(TOTAL, TOTAL);
    CheckReport { items }
}

/// `Topology`: standalone or Redis Cluster on either side; a cluster must be `cluster_state:ok`
/// with every slot served, the selection database 0 only, and a cluster destination empty on
/// every master (unless `DstOverwrite`; `TargetEmpty` sees one node only).
async fn topology(
    plan: &MigrationPlan,
    dbs: &DbSelection,
    settings: &crate::settings::RedisSettings,
    source: &mut Conn,
    dest: &mut Conn,
    s_info: &[(String, String)],
) -> CheckItem {
    use crate::topology::{Topology, of_conn, spec_at};
    const NAME: &str = "Topology";
    let dest_host = plan.destination().map(|d| d.host.clone()).unwrap_or_default();
    let (s, d) = match (of_conn(source, &plan.source.host).await, of_conn(dest, &dest_host).await) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => {
            return failed(
                NAME,
                "standalone or Redis Cluster",
                &e.into_connector("reading the topology").summary,
                None,
            );
        }
    };
    let what = format!("source {}, destination {}", s.describe(), d.describe());
    let mut problems = Vec::new();
    for (side, t) in [("source", &s), ("destination", &d)] {
        if let Topology::Cluster(view) = t {
            let uncovered = view.slot_map().uncovered();
            if !view.state_ok || uncovered > 0 {
                problems.push(format!(
                    "the {side} cluster is not healthy (cluster_state not ok, {uncovered} slots without a master)"
                ));
            }
        }
    }
    if s.is_cluster() || d.is_cluster() {
        if matches!(dbs, DbSelection::Only(list) if list != &[0]) {
            problems.push("a Redis Cluster has database 0 only, and other databases are selected".into());
        }
        if !s.is_cluster() && dbs.is_all() && keyspace(s_info).iter().any(|(db, keys)| *db != 0 && *keys > 0) {
            problems.push("the source holds keys outside database 0, which a cluster destination cannot hold".into());
        }
    }
    if let (Topology::Cluster(view), false) = (&d, settings.overwrite)
        && let Ok(spec) = plan.destination()
    {
        let mut keys = 0;
        for m in view.masters() {
            if let Ok(mut c) = Conn::open(&spec_at(spec, &m.host, m.port)).await {
                keys += c.call(&["DBSIZE"]).await.ok().and_then(|r| r.int()).unwrap_or(0);
            }
        }
        if keys > 0 {
            problems.push(format!("the destination cluster holds {keys} keys"));
        }
    }
    if problems.is_empty() {
        CheckItem::passed(NAME, &what)
    } else {
        failed(
            NAME,
            &what,
            &problems.join("; "),
            Some("fix the cluster (every slot served), select database 0 only, and empty the destination or set ExternParams {\"DstOverwrite\": true}".into()),
        )
    }
}

fn failed(name: &str, description: &str, detail: &str, hint: Option<String>) -> CheckItem {
    CheckItem::failed(name, description, description, detail, hint)
}

/// PSYNC is neither renamed nor denied to the source user.
async fn psync_allowed(source: &mut Conn, user: &str) -> CheckItem {
    const NAME: &str = "ReplicationAllowed";
    const WHAT: &str = "the source user may replicate (PSYNC)";
    match source.call(&["COMMAND", "INFO", "PSYNC"]).await {
        Ok(Reply::Array(Some(v)))
            if v.first().is_some_and(|r| !matches!(r, Reply::Array(None) | Reply::Bulk(None))) => {}
        _ => {
            return failed(
                NAME,
                WHAT,
                "PSYNC is renamed or disabled on the source",
                Some("dts reads Redis as a replica: enable PSYNC".into()),
            );
        }
    }
    let user = if user.is_empty() { "default" } else { user };
    match source.call(&["ACL", "DRYRUN", user, "PSYNC", "?", "-1"]).await {
        Ok(Reply::Status(_)) => CheckItem::passed(NAME, WHAT),
        Ok(Reply::Bulk(Some(b))) if b.as_ref() == b"OK" => CheckItem::passed(NAME, WHAT),
        Ok(Reply::Bulk(Some(_))) => failed(
            NAME,
            WHAT,
            &format!("the ACL of user `{}` denies PSYNC", user.chars().take(64).collect::<String>()),
            Some("grant +psync +replconf to the source user".into()),
        ),
        // ACL DRYRUN itself is unknown (before 7.0) or denied: PSYNC is tried when the job starts.
        _ => CheckItem::warning(NAME, WHAT, "could not verify the ACL (ACL DRYRUN not available)", None),
    }
}
