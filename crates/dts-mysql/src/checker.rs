//! The MySQL-family precheck: one item per check (connectivity, versions, privileges,
//! selected objects, destination conflicts, binlog settings, primary keys), read-only on
//! both servers and never stopping at the first failure.

use std::collections::{BTreeSet, HashMap};

use dts_core::{
    CheckItem, CheckReport, Checker, ConnectionSpec, ConnectorError, ErrorClass, MigrationPlan, ObjectSelection,
    ProgressFn, Target, TlsMode,
};

use crate::MySqlConnector;
use crate::catalog::{self, Catalog};
use crate::connection::{Session, Side, connect};
use crate::definition::qualified;
use crate::grants::{self, Grants, Requirement};
use crate::version::ServerVersion;

/// Longest list of names shown in one item; the rest is counted.
const LIST_CAP: usize = 20;

/// Joins names, showing at most [`LIST_CAP`] and counting the rest.
fn capped(names: &[String]) -> String {
    if names.len() <= LIST_CAP {
        return names.join(", ");
    }
    format!("{} and {} more", names[..LIST_CAP].join(", "), names.len() - LIST_CAP)
}

/// Accumulates items and reports progress as each one completes.
struct Items<'a> {
    items: Vec<CheckItem>,
    total: u64,
    progress: ProgressFn<'a>,
}

impl Items<'_> {
    fn push(&mut self, item: CheckItem) {
        self.items.push(item);
        (self.progress)(self.items.len() as u64, self.total);
    }
}

fn not_checked(name: &str, description: &str, expected: impl Into<String>, side: Side) -> CheckItem {
    CheckItem::failed(name, description, expected, format!("not checked: cannot connect to the {side}"), None)
}

fn could_not_check(name: &str, description: &str, expected: impl Into<String>, e: &ConnectorError) -> CheckItem {
    tracing::warn!(item = name, summary = %e.summary, detail = %e.detail, "precheck query failed");
    CheckItem::failed(name, description, expected, format!("could not check: {}", e.summary), None)
}

impl Checker for MySqlConnector {
    /// Runs every item in a fixed order; see the crate docs for the item names. Read-only.
    async fn check(&self, plan: &MigrationPlan, progress: ProgressFn<'_>) -> CheckReport {
        // A change-tracking job publishes to the change bus: no destination database to check,
        // and it always reads the binlog.
        let to_bus = matches!(plan.target, Target::ChangeBus(_));
        let incremental = plan.stages.incremental || to_bus;
        let per_side = if to_bus { 4 } else { 9 };
        let total = if incremental { per_side + 6 } else { per_side } + u64::from(plan.loop_guard.is_some());
        let mut out = Items { items: Vec::new(), total, progress };
        (progress)(0, total);

        let mut src = connectivity(&mut out, plan, Side::Source, self).await;
        let mut dst = if to_bus { None } else { connectivity(&mut out, plan, Side::Destination, self).await };

        let catalog = match src.as_mut() {
            Some(s) => Some(Catalog::read(s, &plan.selection).await),
            None => None,
        };
        let database_names: Vec<String> = match (&catalog, &plan.selection) {
            (Some(Ok(c)), _) => c.database_names(),
            (_, ObjectSelection::Databases(list)) => list.iter().map(|d| d.database.clone()).collect(),
            (_, ObjectSelection::WholeInstance) => Vec::new(),
        };

        if !to_bus {
            out.push(version(src.as_mut(), dst.as_mut()).await);
        }

        let mut source_needs = vec![grants::SELECT, grants::SHOW_VIEW];
        if incremental {
            source_needs.extend([grants::REPLICATION_SLAVE, grants::REPLICATION_CLIENT]);
        }
        out.push(privileges("source_privileges", src.as_mut(), Side::Source, &source_needs, &database_names).await);
        if !to_bus {
            let target_names: Vec<String> = database_names.iter().map(|d| plan.selection.target_database(d)).collect();
            let mut destination_needs: Vec<Requirement> = grants::STRUCTURE.to_vec();
            if plan.stages.full_data || plan.stages.incremental {
                destination_needs.extend(grants::DATA);
            }
            out.push(
                privileges(
                    "destination_privileges",
                    dst.as_mut(),
                    Side::Destination,
                    &destination_needs,
                    &target_names,
                )
                .await,
            );
        }

        out.push(source_objects(catalog.as_ref()));
        if !to_bus {
            out.push(destination_tables(catalog.as_ref(), dst.as_mut(), plan.stages.structure, &plan.selection).await);
            let read = catalog.as_ref().and_then(|c| c.as_ref().ok());
            out.push(crate::definer::check(plan, src.as_mut(), dst.as_mut(), read).await);
            if let Some(id) = plan.loop_guard {
                out.push(loop_guard(dst.as_mut(), id).await);
            }
        }

        if incremental {
            for item in binlog(src.as_mut()).await {
                out.push(item);
            }
        }
        out.push(primary_keys(catalog.as_ref(), src.as_mut(), incremental).await);

        for session in [src, dst].into_iter().flatten() {
            session.close().await;
        }
        CheckReport { items: out.items }
    }
}

async fn connectivity(out: &mut Items<'_>, plan: &MigrationPlan, side: Side, c: &MySqlConnector) -> Option<Session> {
    let name = match side {
        Side::Source => "source_connectivity",
        Side::Destination => "destination_connectivity",
    };
    let description = format!("dts can connect to the {side} and log in");
    let spec = match side {
        Side::Source => &plan.source,
        Side::Destination => match plan.destination() {
            Ok(spec) => spec,
            Err(e) => {
                out.push(CheckItem::failed(name, &description, "a destination database", e.summary, None));
                return None;
            }
        },
    };
    let expected = format!("a session on {}:{} as '{}'", spec.host, spec.port, spec.user);
    match connect(spec, side, c.connect_timeout).await {
        Ok(mut s) => {
            // The report says whether the connection is encrypted (`Ssl_cipher`).
            let item = match (crate::connection::cipher(&mut s).await, &spec.tls) {
                (Ok(Some(cipher)), _) => {
                    CheckItem::passed(name, &format!("{description}; the connection is encrypted (TLS, {cipher})"))
                }
                (Ok(None), TlsMode::Disabled) => {
                    CheckItem::passed(name, &format!("{description}; the connection is not encrypted (no TLS mode)"))
                }
                (Ok(None), _) => CheckItem::failed(
                    name,
                    &description,
                    "an encrypted connection (the job's TLS mode)",
                    "the connection is not encrypted",
                    Some(format!("enable TLS on the {side} server")),
                ),
                (Err(e), _) => could_not_check(name, &description, "a readable Ssl_cipher status", &e),
            };
            out.push(item);
            Some(s)
        }
        Err(e) => {
            tracing::warn!(%side, summary = %e.summary, detail = %e.detail, "precheck connection failed");
            // MariaDB answers a plain connection under `require_secure_transport=ON` with "access
            // denied": when the same login works encrypted, that is what the operator must fix.
            if spec.tls == TlsMode::Disabled && e.class == ErrorClass::NeedsOperator {
                let encrypted = ConnectionSpec { tls: TlsMode::Required, ..spec.clone() };
                if let Ok(s) = connect(&encrypted, side, c.connect_timeout).await {
                    s.close().await;
                    out.push(CheckItem::failed(
                        name,
                        &description,
                        expected,
                        format!(
                            "the {side} {}:{} accepts only encrypted connections (require_secure_transport=ON)",
                            spec.host, spec.port
                        ),
                        Some(format!(
                            "give the job's {side} a TLS mode: required, or verify-full with a CA (ExternParams \
                             {}SslMode/{}SslCa, Reserve {}SslMode/{}SslCa, or ?ssl-mode=...&ssl-ca=... in a URL)",
                            side_prefix(side),
                            side_prefix(side),
                            reserve_prefix(side),
                            reserve_prefix(side),
                        )),
                    ));
                    return None;
                }
            }
            out.push(CheckItem::failed(
                name,
                &description,
                expected,
                e.summary,
                Some(format!(
                    "check the {side} host, port, user and password, and that the server accepts connections from dts"
                )),
            ));
            None
        }
    }
}

fn side_prefix(side: Side) -> &'static str {
    match side {
        Side::Source => "Src",
        Side::Destination => "Dst",
    }
}

fn reserve_prefix(side: Side) -> &'static str {
    match side {
        Side::Source => "src",
        Side::Destination => "dest",
    }
}

async fn server_version(s: &mut Session) -> Result<ServerVersion, ConnectorError> {
    let rows: Vec<String> = s.query("SELECT VERSION()", "reading the server version").await?;
    Ok(ServerVersion::parse(rows.first().map(String::as_str).unwrap_or("")))
}

async fn version(src: Option<&mut Session>, dst: Option<&mut Session>) -> CheckItem {
    const NAME: &str = "version";
    const DESC: &str = "the destination runs the same server family as the source, at the same or a newer version";
    let expected = "destination version not older than the source, both MariaDB or both MySQL/Percona";
    let (Some(src), Some(dst)) = (src, dst) else {
        return CheckItem::failed(NAME, DESC, expected, "not checked: cannot connect to both servers", None);
    };
    let (s, d) = match (server_version(src).await, server_version(dst).await) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => return could_not_check(NAME, DESC, expected, &e),
    };
    if s.flavor != d.flavor {
        return CheckItem::failed(
            NAME,
            DESC,
            format!("both MariaDB or both MySQL/Percona (source is {})", s.flavor),
            format!("source {s}, destination {d}"),
            Some("migrate between servers of the same family".into()),
        );
    }
    if d.number < s.number {
        let (a, b, c) = s.number;
        return CheckItem::failed(
            NAME,
            DESC,
            format!("destination {} {a}.{b}.{c} or newer", s.flavor),
            format!("destination {d}"),
            Some("upgrade the destination or pick a newer one".into()),
        );
    }
    CheckItem::passed(NAME, DESC)
}

async fn privileges(
    name: &str,
    session: Option<&mut Session>,
    side: Side,
    required: &[Requirement],
    databases: &[String],
) -> CheckItem {
    let description = format!("the {side} user holds the privileges the migration needs");
    let names: Vec<&str> = required.iter().map(|r| r.name).collect();
    let expected = names.join(", ");
    let Some(s) = session else { return not_checked(name, &description, expected, side) };
    let lines: Vec<String> = match s.query("SHOW GRANTS FOR CURRENT_USER()", "reading grants").await {
        Ok(l) => l,
        Err(e) => return could_not_check(name, &description, expected, &e),
    };
    let missing = Grants::parse(&lines).missing(required, databases);
    if missing.is_empty() {
        return CheckItem::passed(name, &description);
    }
    CheckItem::failed(
        name,
        &description,
        expected,
        format!("missing {}", missing.join(", ")),
        Some(format!("GRANT the missing privileges to the {side} user (ON *.* or on the selected databases)")),
    )
}

fn source_objects(catalog: Option<&Result<Catalog, ConnectorError>>) -> CheckItem {
    const NAME: &str = "source_objects";
    const DESC: &str = "every selected database and table exists on the source";
    let expected = "every selected database and table on the source";
    match catalog {
        None => not_checked(NAME, DESC, expected, Side::Source),
        Some(Err(e)) => could_not_check(NAME, DESC, expected, e),
        Some(Ok(c)) if c.missing.is_empty() => CheckItem::passed(NAME, DESC),
        Some(Ok(c)) => CheckItem::failed(
            NAME,
            DESC,
            expected,
            format!("missing {}", capped(&c.missing)),
            Some("fix the selection (DatabaseInfo) or create the objects on the source".into()),
        ),
    }
}

/// A job that creates the structure needs the destination free of the selection's tables; one
/// that does not (e.g. the reverse direction of a two-way synchronization) needs them present.
async fn destination_tables(
    catalog: Option<&Result<Catalog, ConnectorError>>,
    dst: Option<&mut Session>,
    creates_structure: bool,
    selection: &ObjectSelection,
) -> CheckItem {
    // Creating the structure needs the names free; otherwise the tables must be there.
    let (name, desc, expected, hint) = if creates_structure {
        (
            "destination_conflicts",
            "no selected table or view already exists on the destination",
            "no table of the selection on the destination",
            "drop or rename these objects on the destination, or leave them out of the selection",
        )
    } else {
        (
            "destination_tables",
            "every selected table exists on the destination (the job creates no structure)",
            "each table of the selection on the destination",
            "create these tables on the destination, or configure the job with structure initialization",
        )
    };
    let catalog = match catalog {
        None => return not_checked(name, desc, expected, Side::Source),
        Some(Err(e)) => return could_not_check(name, desc, expected, e),
        Some(Ok(c)) => c,
    };
    let Some(dst) = dst else { return not_checked(name, desc, expected, Side::Destination) };
    let targets: Vec<String> = catalog.database_names().iter().map(|d| selection.target_database(d)).collect();
    let present = match catalog::relations(dst, &targets).await {
        Ok(p) => p,
        Err(e) => return could_not_check(name, desc, expected, &e),
    };
    let present: BTreeSet<(String, String)> =
        present.into_iter().flat_map(|(db, rels)| rels.into_iter().map(move |(n, _)| (db.clone(), n))).collect();
    let wrong: Vec<String> = catalog
        .relations()
        .into_iter()
        .map(|(db, t)| selection.target(&db, &t))
        .filter(|r| present.contains(r) == creates_structure)
        .map(|(db, t)| qualified(&db, &t))
        .collect();
    if wrong.is_empty() {
        return CheckItem::passed(name, desc);
    }
    let found = if creates_structure { capped(&wrong) } else { format!("missing: {}", capped(&wrong)) };
    CheckItem::failed(name, desc, expected, found, Some(hint.into()))
}

/// Two-way synchronization marks what dts applies with its own `server_id`, which needs the
/// SUPER (or BINLOG ADMIN) privilege on the destination.
async fn loop_guard(dst: Option<&mut Session>, id: u32) -> CheckItem {
    const NAME: &str = "loop_guard";
    const DESC: &str = "dts can mark the changes it applies, so that the other direction skips them";
    let expected = "SET SESSION server_id allowed (SUPER or BINLOG ADMIN on the destination)";
    let Some(dst) = dst else { return not_checked(NAME, DESC, expected, Side::Destination) };
    let sql = format!("SET SESSION server_id = {id}");
    let outcome = dst.query_drop(&sql, "setting the session server_id").await;
    let _ = dst.query_drop("SET SESSION server_id = @@GLOBAL.server_id", "restoring the session server_id").await;
    match outcome {
        Ok(()) => CheckItem::passed(NAME, DESC),
        Err(e) => CheckItem::failed(
            NAME,
            DESC,
            expected,
            e.summary,
            Some("grant SUPER (MariaDB: BINLOG ADMIN) to the destination user of a two-way synchronization".into()),
        ),
    }
}

/// The six binlog items of an incremental migration, checked on the source.
/// `binlog_row_value_options` exists on MySQL 8 only (absent, as on MariaDB, is fine):
/// `PARTIAL_JSON` logs only the changed part of a JSON value, which cannot be applied as a row.
async fn binlog(src: Option<&mut Session>) -> Vec<CheckItem> {
    const ITEMS: [(&str, &str, &str); 6] = [
        ("binlog_enabled", "the source writes a binary log", "log_bin = ON"),
        ("binlog_format", "the source logs row events", "binlog_format = ROW"),
        ("binlog_row_image", "the source logs full row images", "binlog_row_image = FULL"),
        ("server_id", "the source has a server id", "server_id other than 0"),
        ("binlog_compress", "the source binlog events are not compressed", "log_bin_compress = OFF"),
        (
            "binlog_row_value_options",
            "the source logs whole JSON values, not partial updates",
            "binlog_row_value_options empty (not PARTIAL_JSON)",
        ),
    ];
    let Some(src) = src else {
        return ITEMS.iter().map(|(n, d, e)| not_checked(n, d, *e, Side::Source)).collect();
    };
    let rows: Result<Vec<(String, String)>, _> = src
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
             ('log_bin', 'binlog_format', 'binlog_row_image', 'server_id', 'log_bin_compress', \
              'binlog_row_value_options')",
            "reading binlog settings",
        )
        .await;
    let vars: HashMap<String, String> = match rows {
        Ok(r) => r.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_ascii_uppercase())).collect(),
        Err(e) => return ITEMS.iter().map(|(n, d, x)| could_not_check(n, d, *x, &e)).collect(),
    };
    let get = |k: &str| vars.get(k).cloned();
    let show = |k: &str| match get(k) {
        Some(v) => format!("{k} = {v}"),
        None => format!("{k} not available"),
    };
    let hint = |setting: &str| Some(format!("set {setting} in the source server configuration and restart it"));
    ITEMS
        .iter()
        .map(|(name, desc, expected)| {
            let ok = match *name {
                "binlog_enabled" => matches!(get("log_bin").as_deref(), Some("ON" | "1")),
                "binlog_format" => get("binlog_format").as_deref() == Some("ROW"),
                "binlog_row_image" => get("binlog_row_image").as_deref() == Some("FULL"),
                "server_id" => get("server_id").is_some_and(|v| v != "0"),
                "binlog_compress" => !matches!(get("log_bin_compress").as_deref(), Some("ON" | "1")),
                _ => !row_value_options_partial(get("binlog_row_value_options").as_deref()),
            };
            if ok {
                return CheckItem::passed(name, desc);
            }
            let var = match *name {
                "binlog_enabled" => "log_bin",
                "binlog_compress" => "log_bin_compress",
                other => other,
            };
            CheckItem::failed(name, desc, *expected, show(var), hint(expected))
        })
        .collect()
}

/// Tables without a primary key are a warning; for an incremental migration, tables without
/// any key (no primary key, no unique key on NOT NULL columns) are refused: their changes are
/// applied by matching every column, so a transaction applied again after a crash or a re-read
/// would duplicate rows, and nothing could tell the copies apart.
async fn primary_keys(
    catalog: Option<&Result<Catalog, ConnectorError>>,
    src: Option<&mut Session>,
    incremental: bool,
) -> CheckItem {
    const NAME: &str = "primary_keys";
    const DESC: &str = "every selected table has a primary key";
    let expected = "a primary key on every selected table";
    let (Some(Ok(catalog)), Some(src)) = (catalog, src) else {
        return not_checked(NAME, DESC, expected, Side::Source);
    };
    let databases = catalog.database_names();
    let without = match catalog::tables_without_primary_key(src, &databases).await {
        Ok(w) => w,
        Err(e) => return could_not_check(NAME, DESC, expected, &e),
    };
    let selected = |set: &BTreeSet<(String, String)>| -> Vec<String> {
        catalog
            .databases
            .iter()
            .flat_map(|d| d.tables.iter().map(|t| (d.name.clone(), t.clone())))
            .filter(|r| set.contains(r))
            .map(|(db, t)| qualified(&db, &t))
            .collect()
    };
    let listed = selected(&without);
    if listed.is_empty() {
        return CheckItem::passed(NAME, DESC);
    }
    if incremental {
        let keyless = match catalog::tables_without_any_key(src, &databases).await {
            Ok(k) => selected(&k),
            Err(e) => return could_not_check(NAME, DESC, expected, &e),
        };
        if !keyless.is_empty() {
            return CheckItem::failed(
                NAME,
                DESC,
                "a primary key, or a unique key on NOT NULL columns, on every table an incremental migration \
                 replicates",
                format!("tables without any key: {}", capped(&keyless)),
                Some(
                    "add a primary key to these tables, or exclude them from the job: a change re-applied after \
                     a restart would duplicate their rows"
                        .into(),
                ),
            );
        }
    }
    CheckItem::warning(
        NAME,
        DESC,
        format!("tables without a primary key: {}", capped(&listed)),
        Some(
            "rows of these tables are matched by comparing every column, which makes incremental apply and \
             verification slower; add a primary key where possible"
                .into(),
        ),
    )
}

/// Whether `binlog_row_value_options` (upper-cased) makes JSON updates partial.
fn row_value_options_partial(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.split(',').any(|o| o.trim() == "PARTIAL_JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_json_binlog_images_are_refused_and_an_absent_variable_is_fine() {
        assert!(row_value_options_partial(Some("PARTIAL_JSON")));
        assert!(!row_value_options_partial(Some("")));
        assert!(!row_value_options_partial(None));
    }

    #[test]
    fn long_lists_are_capped_with_a_count() {
        let names: Vec<String> = (0..25).map(|i| format!("t{i}")).collect();
        let s = capped(&names);
        assert!(s.ends_with("t19 and 5 more"));
        assert_eq!(capped(&names[..2]), "t0, t1");
    }
}
