//! Structure migration: re-creates the selected databases, tables, views, routines and
//! triggers of the source on the destination from their `SHOW CREATE` text, skipping objects
//! that already exist identically and refusing (never dropping) ones that differ.

use std::collections::BTreeSet;

use dts_core::{
    ConnectorError, ErrorClass, MigrationPlan, ProgressFn, StructureMigrator, StructurePhase, StructureSummary,
};

use crate::MySqlConnector;
use crate::accounts;
use crate::catalog::{self, Catalog};
use crate::connection::{Session, Side, connect, server_code, text_column};
use crate::definer::{self, Program, ProgramKind, invoker_alter, invoker_text};
use crate::definition::{is_plain_word, normalize_program, normalize_table, qualified, quote_ident};

/// Server codes meaning "something this view uses does not exist yet": retry later.
const MISSING_DEPENDENCY: [u16; 3] = [1146, 1356, 1305];

/// Server codes of `SHOW CREATE` for an object that is absent (or of another kind).
const NOT_FOUND: [u16; 4] = [1146, 1305, 1347, 1360];

/// Kinds of objects that have a `SHOW CREATE` statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Table,
    View,
    Procedure,
    Function,
    Trigger,
}

impl Kind {
    fn keyword(self) -> &'static str {
        match self {
            Kind::Table => "TABLE",
            Kind::View => "VIEW",
            Kind::Procedure => "PROCEDURE",
            Kind::Function => "FUNCTION",
            Kind::Trigger => "TRIGGER",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::View => "view",
            Kind::Procedure => "procedure",
            Kind::Function => "function",
            Kind::Trigger => "trigger",
        }
    }

    /// Column of the `SHOW CREATE` result holding the statement, and the one holding the
    /// object's own `sql_mode`, if it has one.
    fn columns(self) -> (usize, Option<usize>) {
        match self {
            Kind::Table | Kind::View => (1, None),
            Kind::Procedure | Kind::Function | Kind::Trigger => (2, Some(1)),
        }
    }

    /// The kind as an object that runs as someone (`definer`); `None` for tables.
    fn program(self) -> Option<ProgramKind> {
        match self {
            Kind::Table => None,
            Kind::View => Some(ProgramKind::View),
            Kind::Procedure => Some(ProgramKind::Procedure),
            Kind::Function => Some(ProgramKind::Function),
            Kind::Trigger => Some(ProgramKind::Trigger),
        }
    }

    /// The comparable form of a definition of this kind.
    fn normalize(self, ddl: &str) -> String {
        match self {
            Kind::Table => normalize_table(ddl),
            _ => normalize_program(ddl),
        }
    }
}

/// One object's `SHOW CREATE` statement, and the `sql_mode` it was created under.
struct Definition {
    ddl: String,
    sql_mode: Option<String>,
}

/// One object to create: its kind, database, name and source definition.
struct Pending {
    kind: Kind,
    db: String,
    name: String,
    definition: Definition,
}

impl Pending {
    fn label(&self) -> String {
        format!("{} {}", self.kind.noun(), qualified(&self.db, &self.name))
    }
}

/// Whether an `sql_mode` value is safe to splice into `SET SESSION sql_mode = '...'`.
fn is_sql_mode(mode: &str) -> bool {
    mode.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b',')
}

/// Reads `SHOW CREATE <kind>` of one object; `Ok(None)` when it does not exist.
async fn show_create(s: &mut Session, kind: Kind, db: &str, name: &str) -> Result<Option<Definition>, ConnectorError> {
    let label = format!("{} {}", kind.noun(), qualified(db, name));
    let sql = format!("SHOW CREATE {} {}", kind.keyword(), qualified(db, name));
    let doing = format!("reading the definition of {label}");
    let rows = match s.rows_raw(&sql).await {
        Ok(r) => r,
        Err(e) if server_code(&e).is_some_and(|c| NOT_FOUND.contains(&c)) => return Ok(None),
        Err(e) => return Err(s.error(&e, &doing)),
    };
    let Some(row) = rows.first() else { return Ok(None) };
    let (ddl_col, mode_col) = kind.columns();
    let bad = |what: &str| {
        ConnectorError::new(
            ErrorClass::NeedsOperator,
            format!("cannot read the definition of {label} on the {}: {what}", s.side()),
            format!("{sql}: {what}"),
        )
    };
    let ddl = match text_column(row, ddl_col) {
        Ok(Some(d)) => d,
        Ok(None) => return Err(bad("the user may lack the privilege to see it")),
        Err(_) => return Err(bad("it is not valid UTF-8")),
    };
    let sql_mode = match mode_col.map(|c| text_column(row, c)) {
        Some(Ok(m)) => m,
        Some(Err(_)) | None => None,
    };
    Ok(Some(Definition { ddl, sql_mode }))
}

impl StructureMigrator for MySqlConnector {
    /// Creates databases, then tables, then views (dependency order, by retrying those whose
    /// dependencies are not there yet), then routines, then triggers. Idempotent: objects
    /// already present with the same definition are counted in `skipped`; a different
    /// definition is a `NeedsOperator` error naming the object. Never drops anything.
    async fn migrate_structure_phase(
        &self,
        plan: &MigrationPlan,
        phase: StructurePhase,
        progress: ProgressFn<'_>,
    ) -> Result<StructureSummary, ConnectorError> {
        let src = connect(&plan.source, Side::Source, self.connect_timeout).await?;
        let dst = match connect(plan.destination()?, Side::Destination, self.connect_timeout).await {
            Ok(d) => d,
            Err(e) => {
                src.close().await;
                return Err(e);
            }
        };
        let mut run = Run {
            src,
            dst,
            selection: &plan.selection,
            progress,
            phase,
            done: 0,
            total: 0,
            summary: StructureSummary::default(),
            preserve_definer: definer::preserved(plan),
        };
        let result = run.migrate(plan).await;
        let Run { src, dst, summary, .. } = run;
        src.close().await;
        dst.close().await;
        result.map(|()| summary)
    }
}

/// The state of one structure migration.
struct Run<'a> {
    src: Session,
    dst: Session,
    /// The plan's selection: destination names of renamed databases and tables.
    selection: &'a dts_core::ObjectSelection,
    progress: ProgressFn<'a>,
    phase: StructurePhase,
    done: u64,
    total: u64,
    summary: StructureSummary,
    /// `PreserveDefiner`: objects keep the source's definer and security.
    preserve_definer: bool,
}

impl Run<'_> {
    fn step(&mut self) {
        self.done += 1;
        (self.progress)(self.done, self.total);
    }

    async fn migrate(&mut self, plan: &MigrationPlan) -> Result<(), ConnectorError> {
        self.src.query_drop("SET NAMES utf8mb4", "preparing the source session").await?;
        let modes: Vec<String> = self.src.query("SELECT @@SESSION.sql_mode", "reading sql_mode").await?;
        let sql_mode = modes.into_iter().next().unwrap_or_default();
        if !is_sql_mode(&sql_mode) {
            return Err(ConnectorError::new(ErrorClass::Fatal, "unexpected sql_mode on the source", sql_mode));
        }
        for stmt in
            ["SET NAMES utf8mb4", &format!("SET SESSION sql_mode = '{sql_mode}'"), "SET SESSION foreign_key_checks = 0"]
        {
            self.dst.query_drop(stmt, "preparing the destination session").await?;
        }

        let catalog = Catalog::read(&mut self.src, &plan.selection).await?;
        if !catalog.missing.is_empty() {
            let missing: Vec<String> = catalog.missing.iter().take(20).cloned().collect();
            return Err(ConnectorError::new(
                ErrorClass::NeedsOperator,
                format!("selected objects missing on the source: {}", missing.join(", ")),
                catalog.missing.join(", "),
            ));
        }
        let mut objects = self.read_objects(&catalog).await?;
        let phase = self.phase;
        objects.retain(|o| match phase {
            StructurePhase::All => true,
            StructurePhase::BeforeData => o.kind != Kind::Trigger,
            StructurePhase::AfterData => o.kind == Kind::Trigger,
        });
        let databases = if phase == StructurePhase::AfterData { Vec::new() } else { catalog.database_names() };
        self.total = databases.len() as u64 + objects.len() as u64;
        (self.progress)(0, self.total);

        let present = self.destination_objects(&catalog).await?;
        for db in &databases {
            self.create_database(db, &present.databases).await?;
        }
        let mut pending = Vec::new();
        for object in objects {
            let exists = present.contains(object.kind, &object.db, &object.name);
            if exists {
                self.compare_existing(&object).await?;
                self.summary.skipped += 1;
                self.step();
            } else {
                pending.push(object);
            }
        }
        let (mut views, rest): (Vec<Pending>, Vec<Pending>) = pending.into_iter().partition(|o| o.kind == Kind::View);
        for object in rest.iter().filter(|o| o.kind == Kind::Table) {
            self.create(object).await?;
        }
        views = self.create_views(views, false).await?;
        for object in rest.iter().filter(|o| matches!(o.kind, Kind::Procedure | Kind::Function)) {
            self.create(object).await?;
        }
        self.create_views(views, true).await?;
        for object in rest.iter().filter(|o| o.kind == Kind::Trigger) {
            self.create(object).await?;
        }
        if phase != StructurePhase::AfterData && plan.selection == dts_core::ObjectSelection::WholeInstance {
            self.summary.accounts =
                accounts::migrate(&mut self.src, &mut self.dst, &plan.destination()?.user, plan.override_root).await?;
        }
        Ok(())
    }

    /// Every selected object of the source with its definition, in creation order.
    async fn read_objects(&mut self, catalog: &Catalog) -> Result<Vec<Pending>, ConnectorError> {
        let mut names: Vec<(Kind, String, String)> = Vec::new();
        for d in &catalog.databases {
            names.extend(d.tables.iter().map(|t| (Kind::Table, d.name.clone(), t.clone())));
        }
        for d in &catalog.databases {
            names.extend(d.views.iter().map(|v| (Kind::View, d.name.clone(), v.clone())));
        }
        for d in catalog.databases.iter().filter(|d| d.whole) {
            for (name, kind) in catalog::routines(&mut self.src, &d.name).await? {
                let kind = if kind == "FUNCTION" { Kind::Function } else { Kind::Procedure };
                names.push((kind, d.name.clone(), name));
            }
        }
        for d in &catalog.databases {
            for (name, table) in catalog::triggers(&mut self.src, &d.name).await? {
                if d.whole || d.tables.contains(&table) {
                    names.push((Kind::Trigger, d.name.clone(), name));
                }
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for (kind, db, name) in names {
            let Some(definition) = show_create(&mut self.src, kind, &db, &name).await? else {
                return Err(ConnectorError::new(
                    ErrorClass::Transient,
                    format!(
                        "{} {} disappeared from the source during the migration",
                        kind.noun(),
                        qualified(&db, &name)
                    ),
                    "SHOW CREATE found nothing",
                ));
            };
            out.push(self.to_destination(Pending { kind, db, name, definition })?);
        }
        Ok(out)
    }

    /// An object as the destination will have it: in its database's destination name, a
    /// renamed table under its new name (and foreign keys to renamed tables of its database
    /// pointing at their new names). Views of a renamed database and triggers of a renamed table
    /// name source objects in their bodies, which dts does not rewrite: they are refused.
    fn to_destination(&self, mut object: Pending) -> Result<Pending, ConnectorError> {
        let sel = self.selection;
        if !sel.renames() {
            return Ok(object);
        }
        let target_db = sel.target_database(&object.db);
        let refuse = |what: String| {
            Err(ConnectorError::new(
                ErrorClass::NeedsOperator,
                format!("{what}: leave the rename out of DbList, or create it on the destination by hand"),
                object.definition.ddl.clone(),
            ))
        };
        match object.kind {
            Kind::View if target_db != object.db => {
                return refuse(format!("view {} is in a renamed database", object.label()));
            }
            Kind::Trigger => {
                let on_renamed = match sel {
                    dts_core::ObjectSelection::Databases(list) => list
                        .iter()
                        .filter(|d| d.database == object.db)
                        .flat_map(|d| d.table_renames.keys())
                        .any(|t| object.definition.ddl.contains(&quote_ident(t))),
                    dts_core::ObjectSelection::WholeInstance => false,
                };
                if on_renamed {
                    return refuse(format!("trigger {} belongs to a renamed table", object.label()));
                }
            }
            Kind::Table => {
                let (_, new_name) = sel.target(&object.db, &object.name);
                let mut ddl = object.definition.ddl.replacen(
                    &format!("CREATE TABLE {}", quote_ident(&object.name)),
                    &format!("CREATE TABLE {}", quote_ident(&new_name)),
                    1,
                );
                if let dts_core::ObjectSelection::Databases(list) = sel {
                    for (from, to) in
                        list.iter().filter(|d| d.database == object.db).flat_map(|d| d.table_renames.iter())
                    {
                        ddl = ddl.replace(
                            &format!("REFERENCES {} (", quote_ident(from)),
                            &format!("REFERENCES {} (", quote_ident(to)),
                        );
                    }
                }
                object.definition.ddl = ddl;
                object.name = new_name;
            }
            _ => {}
        }
        object.db = target_db;
        Ok(object)
    }

    /// What of the selection already exists on the destination.
    async fn destination_objects(&mut self, catalog: &Catalog) -> Result<Present, ConnectorError> {
        let names: Vec<String> = catalog.database_names().iter().map(|d| self.selection.target_database(d)).collect();
        let databases: Vec<String> =
            self.dst.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA", "listing databases").await?;
        let mut present = Present { databases: databases.into_iter().collect(), ..Present::default() };
        for (db, rels) in catalog::relations(&mut self.dst, &names).await? {
            present.relations.extend(rels.into_iter().map(|(n, _)| (db.clone(), n)));
        }
        for db in names.iter().filter(|d| present.databases.contains(*d)) {
            for (name, kind) in catalog::routines(&mut self.dst, db).await? {
                present.routines.insert((db.clone(), name, kind));
            }
            for (name, _) in catalog::triggers(&mut self.dst, db).await? {
                present.triggers.insert((db.clone(), name));
            }
        }
        Ok(present)
    }

    /// `CREATE DATABASE IF NOT EXISTS` with the source's default charset and collation; an
    /// existing database counts as skipped (its defaults do not change any table we create,
    /// since every `SHOW CREATE TABLE` names its charset).
    async fn create_database(&mut self, source_db: &str, present: &BTreeSet<String>) -> Result<(), ConnectorError> {
        let target = self.selection.target_database(source_db);
        let db = target.as_str();
        if present.contains(db) {
            self.summary.skipped += 1;
            self.step();
            return Ok(());
        }
        let rows: Vec<(String, String)> = self
            .src
            .exec(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA \
                 WHERE SCHEMA_NAME = ?",
                vec![source_db.to_string()],
                "reading database defaults",
            )
            .await?;
        let mut sql = format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(db));
        if let Some((charset, collation)) = rows.first()
            && is_plain_word(charset)
            && is_plain_word(collation)
        {
            sql.push_str(&format!(" CHARACTER SET {charset} COLLATE {collation}"));
        }
        self.dst.query_drop(&sql, &format!("creating database {}", quote_ident(db))).await?;
        self.summary.databases += 1;
        self.step();
        Ok(())
    }

    /// An object exists on the destination: equal definitions pass, others stop the job.
    async fn compare_existing(&mut self, object: &Pending) -> Result<(), ConnectorError> {
        let theirs = show_create(&mut self.dst, object.kind, &object.db, &object.name).await?;
        let same =
            theirs.is_some_and(|t| object.kind.normalize(&t.ddl) == object.kind.normalize(&object.definition.ddl));
        if same {
            return Ok(());
        }
        Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            format!(
                "{} already exists on the destination with a different definition; drop or rename it there, \
                 or leave it out of the selection",
                object.label()
            ),
            format!("source definition: {}", object.definition.ddl),
        ))
    }

    /// Runs an object's statement in its database, under its own `sql_mode` if it has one.
    async fn execute(&mut self, object: &Pending) -> Result<(), mysql_async::Error> {
        self.dst.query_drop_raw(&format!("USE {}", quote_ident(&object.db))).await?;
        let ddl = match object.kind.program() {
            None => object.definition.ddl.clone(),
            Some(_) if self.preserve_definer => object.definition.ddl.clone(),
            Some(kind) => invoker_text(&object.definition.ddl, kind),
        };
        let mode = object.definition.sql_mode.as_deref().filter(|m| is_sql_mode(m));
        if let Some(mode) = mode {
            self.dst
                .query_drop_raw(&format!("SET @dts_saved_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = '{mode}'"))
                .await?;
        }
        let mut result = self.dst.query_drop_raw(&ddl).await;
        if mode.is_some() {
            self.dst.query_drop_raw("SET SESSION sql_mode = @dts_saved_sql_mode").await?;
        }
        // A routine runs with its caller's rights unless the job keeps the source's definers.
        if result.is_ok()
            && !self.preserve_definer
            && let Some(kind) = object.kind.program()
            && let Some(alter) = invoker_alter(&Program { kind, db: object.db.clone(), name: object.name.clone() })
        {
            result = self.dst.query_drop_raw(&alter).await;
        }
        result
    }

    async fn create(&mut self, object: &Pending) -> Result<(), ConnectorError> {
        if let Err(e) = self.execute(object).await {
            return Err(self.dst.error(&e, &format!("creating {}", object.label())));
        }
        match object.kind {
            Kind::Table => self.summary.tables += 1,
            Kind::View => self.summary.views += 1,
            Kind::Procedure | Kind::Function => self.summary.routines += 1,
            Kind::Trigger => self.summary.triggers += 1,
        }
        self.step();
        Ok(())
    }

    /// Creates views, retrying those whose dependencies are missing until a pass makes no
    /// progress. Returns the views still waiting; with `last`, waiting views are an error.
    async fn create_views(&mut self, mut pending: Vec<Pending>, last: bool) -> Result<Vec<Pending>, ConnectorError> {
        loop {
            let before = pending.len();
            let mut waiting = Vec::new();
            let mut last_error = None;
            for view in pending {
                match self.execute(&view).await {
                    Ok(()) => {
                        self.summary.views += 1;
                        self.step();
                    }
                    Err(e) if server_code(&e).is_some_and(|c| MISSING_DEPENDENCY.contains(&c)) => {
                        last_error = Some(self.dst.error(&e, &format!("creating {}", view.label())));
                        waiting.push(view);
                    }
                    Err(e) => return Err(self.dst.error(&e, &format!("creating {}", view.label()))),
                }
            }
            if waiting.is_empty() || waiting.len() == before {
                if last && let Some(e) = last_error {
                    return Err(e);
                }
                return Ok(waiting);
            }
            pending = waiting;
        }
    }
}

/// Objects of the selection's databases that exist on the destination.
#[derive(Default)]
struct Present {
    databases: BTreeSet<String>,
    relations: BTreeSet<(String, String)>,
    routines: BTreeSet<(String, String, String)>,
    triggers: BTreeSet<(String, String)>,
}

impl Present {
    fn contains(&self, kind: Kind, db: &str, name: &str) -> bool {
        let key = (db.to_string(), name.to_string());
        match kind {
            Kind::Table | Kind::View => self.relations.contains(&key),
            Kind::Procedure | Kind::Function => self.routines.contains(&(key.0, key.1, kind.keyword().to_string())),
            Kind::Trigger => self.triggers.contains(&key),
        }
    }
}
