//! Who the views, routines and triggers dts creates on the destination (the structure step and
//! replayed DDL) run as. dts logs in with broad privileges; an object created by that login
//! with `SQL SECURITY DEFINER` would run every query with them, for anyone allowed to use it.
//!
//! By default (`PreserveDefiner` off) a view, procedure or function is created without its
//! `DEFINER` clause and with `SQL SECURITY INVOKER` (views: in the statement's header; routines:
//! an `ALTER PROCEDURE|FUNCTION .. SQL SECURITY INVOKER` right after, since their
//! characteristics sit after the parameter list). Triggers have no `SQL SECURITY`: they always
//! run as their definer, which is then dts's login; the precheck names them. With
//! `PreserveDefiner` on, statements keep their `DEFINER` and security, and the precheck fails
//! unless every definer account exists on the destination.

use std::collections::BTreeSet;

use dts_core::{CheckItem, ConnectorError, MigrationPlan};

use crate::catalog::Catalog;
use crate::connection::Session;
use crate::definition::{qualified, strip_definer};

/// The kinds of object that run as someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    View,
    Procedure,
    Function,
    Trigger,
}

/// One object a CREATE or ALTER statement defines: kind, database, name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub kind: ProgramKind,
    pub db: String,
    pub name: String,
}

/// Whether a job keeps the source's definers (`ExternParams` `PreserveDefiner`).
pub fn preserved(plan: &MigrationPlan) -> bool {
    dts_core::ExternSettings::parse(plan.extern_params.as_deref()).is_ok_and(|s| s.preserve_definer)
}

/// `sql` (a `CREATE|ALTER ... VIEW|PROCEDURE|FUNCTION|TRIGGER` statement) without its definer,
/// and for a view with `SQL SECURITY INVOKER`.
pub fn invoker_text(sql: &str, kind: ProgramKind) -> String {
    let stripped = strip_definer(sql);
    if kind != ProgramKind::View {
        return stripped;
    }
    let upper = stripped.to_ascii_uppercase();
    let Some(view) = upper.find(" VIEW ") else { return stripped };
    let header = &upper[..view];
    if let Some(at) = header.find("SQL SECURITY DEFINER") {
        let end = at + "SQL SECURITY DEFINER".len();
        return format!("{}SQL SECURITY INVOKER{}", &stripped[..at], &stripped[end..]);
    }
    if header.contains("SQL SECURITY INVOKER") {
        return stripped;
    }
    format!("{} SQL SECURITY INVOKER{}", &stripped[..view], &stripped[view..])
}

/// The statement that gives a routine invoker rights after it was created.
pub fn invoker_alter(program: &Program) -> Option<String> {
    let keyword = match program.kind {
        ProgramKind::Procedure => "PROCEDURE",
        ProgramKind::Function => "FUNCTION",
        ProgramKind::View | ProgramKind::Trigger => return None,
    };
    Some(format!("ALTER {keyword} {} SQL SECURITY INVOKER", qualified(&program.db, &program.name)))
}

/// One selected object of the source that runs as someone: what it is, its definer
/// (`user@host`, as `information_schema` writes it), whether it runs with its definer's rights
/// by choice (`SQL SECURITY DEFINER`), and whether it is a trigger (always its definer's).
struct Runs {
    label: String,
    definer: String,
    definer_security: bool,
    trigger: bool,
}

async fn selected_programs(src: &mut Session, catalog: &Catalog) -> Result<Vec<Runs>, ConnectorError> {
    let mut out = Vec::new();
    for d in &catalog.databases {
        let views: Vec<(String, String, String)> = src
            .exec(
                "SELECT TABLE_NAME, DEFINER, SECURITY_TYPE FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? \
                 ORDER BY TABLE_NAME",
                vec![d.name.clone()],
                "listing view definers",
            )
            .await?;
        for (name, definer, security) in views.into_iter().filter(|(n, _, _)| d.views.contains(n)) {
            out.push(Runs {
                label: format!("view {}", qualified(&d.name, &name)),
                definer,
                definer_security: security == "DEFINER",
                trigger: false,
            });
        }
        if d.whole {
            let routines: Vec<(String, String, String, String)> = src
                .exec(
                    "SELECT ROUTINE_NAME, ROUTINE_TYPE, DEFINER, SECURITY_TYPE FROM information_schema.ROUTINES \
                     WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') ORDER BY 2, 1",
                    vec![d.name.clone()],
                    "listing routine definers",
                )
                .await?;
            for (name, kind, definer, security) in routines {
                out.push(Runs {
                    label: format!("{} {}", kind.to_ascii_lowercase(), qualified(&d.name, &name)),
                    definer,
                    definer_security: security == "DEFINER",
                    trigger: false,
                });
            }
        }
        let triggers: Vec<(String, String, String)> = src
            .exec(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, DEFINER FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME",
                vec![d.name.clone()],
                "listing trigger definers",
            )
            .await?;
        for (name, _, definer) in triggers.into_iter().filter(|(_, t, _)| d.whole || d.tables.contains(t)) {
            out.push(Runs {
                label: format!("trigger {}", qualified(&d.name, &name)),
                definer,
                definer_security: false,
                trigger: true,
            });
        }
    }
    Ok(out)
}

/// Splits `user@host` (as `information_schema` writes definers; the user may contain `@`).
fn account(definer: &str) -> (String, String) {
    match definer.rsplit_once('@') {
        Some((u, h)) => (u.to_string(), h.to_string()),
        None => (definer.to_string(), String::new()),
    }
}

const NAME: &str = "definers";
const DESCRIPTION: &str = "views, routines and triggers created on the destination do not run with dts's privileges";

/// The precheck item: which objects change to invoker rights and which triggers will run as
/// dts's login (a warning), or, with `PreserveDefiner`, whether every definer exists on the
/// destination.
pub async fn check(
    plan: &MigrationPlan,
    src: Option<&mut Session>,
    dst: Option<&mut Session>,
    catalog: Option<&Catalog>,
) -> CheckItem {
    let (Some(src), Some(dst), Some(catalog)) = (src, dst, catalog) else {
        return CheckItem::failed(
            NAME,
            DESCRIPTION,
            "both servers read",
            "not checked: cannot read both servers",
            None,
        );
    };
    let programs = match selected_programs(src, catalog).await {
        Ok(p) => p,
        Err(e) => {
            return CheckItem::failed(
                NAME,
                DESCRIPTION,
                "the source's definers",
                format!("could not check: {}", e.summary),
                None,
            );
        }
    };
    let login = plan.destination().map(|d| d.user.clone()).unwrap_or_default();
    if preserved(plan) {
        let definers: BTreeSet<&str> = programs.iter().map(|p| p.definer.as_str()).collect();
        let mut missing = Vec::new();
        for definer in definers {
            let (user, host) = account(definer);
            let found: Result<Vec<i64>, _> = dst
                .exec(
                    "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?",
                    vec![user, host],
                    "looking for a definer",
                )
                .await;
            match found {
                Ok(n) if n.first().copied().unwrap_or(0) > 0 => {}
                Ok(_) => missing.push(definer.to_string()),
                Err(e) => {
                    return CheckItem::failed(
                        NAME,
                        DESCRIPTION,
                        "definer accounts on the destination",
                        format!("could not check: {}", e.summary),
                        None,
                    );
                }
            }
        }
        if missing.is_empty() {
            return CheckItem::passed(
                NAME,
                &format!("{DESCRIPTION}: PreserveDefiner is on; every definer exists on the destination"),
            );
        }
        return CheckItem::failed(
            NAME,
            DESCRIPTION,
            "every definer account exists on the destination (PreserveDefiner is on)",
            format!("missing on the destination: {}", missing.join(", ")),
            Some("create these accounts on the destination, or turn PreserveDefiner off to create the objects with invoker rights".into()),
        );
    }
    let invoker: Vec<&str> = programs.iter().filter(|p| p.definer_security).map(|p| p.label.as_str()).collect();
    let triggers: Vec<&str> = programs.iter().filter(|p| p.trigger).map(|p| p.label.as_str()).collect();
    if invoker.is_empty() && triggers.is_empty() {
        return CheckItem::passed(NAME, DESCRIPTION);
    }
    let mut detail = Vec::new();
    if !invoker.is_empty() {
        detail.push(format!("created with SQL SECURITY INVOKER instead of DEFINER: {}", invoker.join(", ")));
    }
    if !triggers.is_empty() {
        detail.push(format!(
            "triggers run as their definer, which on the destination is dts's login '{login}': {}",
            triggers.join(", ")
        ));
    }
    CheckItem::warning(
        NAME,
        DESCRIPTION,
        detail.join("; "),
        Some(
            "to keep the source's definers and security, set PreserveDefiner (MigrateOption.ExternParams) or \
              preserveDefiner (Reserve); the definer accounts must exist on the destination"
                .into(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definer_view_becomes_an_invoker_view_without_its_definer() {
        let v = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`%` SQL SECURITY DEFINER VIEW `v` AS select 'SQL SECURITY DEFINER'";
        assert_eq!(
            invoker_text(v, ProgramKind::View),
            "CREATE ALGORITHM=UNDEFINED SQL SECURITY INVOKER VIEW `v` AS select 'SQL SECURITY DEFINER'"
        );
        let bare = "CREATE OR REPLACE DEFINER=`u`@`h` VIEW `v` AS select 1";
        assert_eq!(
            invoker_text(bare, ProgramKind::View),
            "CREATE OR REPLACE SQL SECURITY INVOKER VIEW `v` AS select 1"
        );
        let already = "CREATE SQL SECURITY INVOKER VIEW v AS select 1";
        assert_eq!(invoker_text(already, ProgramKind::View), already);
    }

    #[test]
    fn routines_lose_their_definer_and_get_an_invoker_alter() {
        let p = "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\nSELECT 1";
        assert_eq!(invoker_text(p, ProgramKind::Procedure), "CREATE PROCEDURE `p`()\nSELECT 1");
        let program = Program { kind: ProgramKind::Function, db: "d`b".into(), name: "f".into() };
        assert_eq!(invoker_alter(&program).as_deref(), Some("ALTER FUNCTION `d``b`.`f` SQL SECURITY INVOKER"));
        assert_eq!(invoker_alter(&Program { kind: ProgramKind::Trigger, ..program }), None);
    }

    #[test]
    fn definers_split_at_the_last_at_sign() {
        assert_eq!(account("a@b@%"), ("a@b".to_string(), "%".to_string()));
        assert_eq!(account("role"), ("role".to_string(), String::new()));
    }
}
