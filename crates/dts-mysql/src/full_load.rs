//! The full load: every selected table copied at one consistent snapshot, in parallel
//! pipelines (one source reader and one destination writer each), checkpointed per chunk.
//!
//! Flow: read the catalog and table layouts → pin the snapshot in every reader (see
//! `snapshot`) → cut or reload the chunk plan (see `chunk`) → each pipeline takes chunks from a
//! shared queue (preferring a table no other pipeline is loading); its reader streams a chunk's
//! rows into `LOAD DATA` batches (or multi-row INSERT statements) of about `batch_bytes` and
//! hands them through a bounded channel to its writer, which first deletes the chunk's key
//! range, then writes the batches, then records the chunk as done; the writer of a table's last
//! chunk builds its deferred secondary keys.
//!
//! Resumption: a chunk is recorded done only after every batch of it has been committed on the
//! destination, and a chunk not recorded done is deleted by key range before
//! it is copied again; so after a crash at any point the destination ends with exactly the
//! source's rows, and at most one chunk per pipeline is copied twice. A resumed load pins a new
//! snapshot; the position stored by the first attempt is kept (the earliest), which is where
//! incremental replication must start.
//!
//! No row is dropped or changed silently: writers run in strict mode (`STRICT_ALL_TABLES`),
//! and since `LOAD DATA LOCAL` turns data errors into warnings whatever the mode, every batch's
//! affected rows must equal the rows sent and leave no warning (`check_stored`), or its chunk
//! fails.
//!
//! Writers clear a chunk's key range in its own autocommitted statement, then write its rows in
//! transactions of up to `COMMIT_BYTES` (one redo flush each, not one per statement), committed
//! at the latest at the chunk's end; they run in READ COMMITTED (no gap locks), so pipelines
//! filling neighbouring key ranges of one table never wait for each other.
//!
//! Memory: per pipeline at most `CHANNEL_DEPTH + 2` statements of `batch_bytes` plus one row, so
//! it is bounded by configuration, not by table size.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use dts_core::{Checkpoints, ConnectorError, ErrorClass, LoadSummary, MigrationPlan, Position, ProgressFn};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};
use tokio::sync::mpsc;

use crate::MySqlConnector;
use crate::catalog::Catalog;
use crate::chunk::{Chunk, TableLayout};
use crate::connection::{Session, Side, connect, server_code};
use crate::definition::{qualified, quote_ident};
use crate::index_deferral;
use crate::literal::{LiteralKind, push_load_field, push_value};
use crate::snapshot;

pub const PLAN_KEY: &str = "full_load/plan";
pub const SNAPSHOT_KEY: &str = "full_load/snapshot";
pub const DONE_PREFIX: &str = "full_load/done/";
const CHANNEL_DEPTH: usize = 4;

/// Full-load tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullLoadSettings {
    /// Pipelines (reader + writer session pairs).
    pub parallel: usize,
    /// Target rows per chunk (checkpoint granularity).
    pub chunk_rows: u64,
    /// Target size of one INSERT statement.
    pub batch_bytes: usize,
    /// Whether the destination writes the loaded rows to its own binlog (off needs SUPER or
    /// BINLOG ADMIN, and the destination's replicas then do not get the rows).
    pub write_binlog: bool,
    /// Build plain secondary keys after the data (see `index_deferral`).
    pub defer_secondary_indexes: bool,
    /// Write rows with `LOAD DATA LOCAL INFILE` (rows streamed from memory, cheaper for the
    /// destination to parse than INSERT) where the destination allows it (`local_infile`);
    /// multi-row INSERTs otherwise.
    pub load_data: bool,
}

impl Default for FullLoadSettings {
    fn default() -> Self {
        Self {
            parallel: 4,
            chunk_rows: 100_000,
            batch_bytes: 1 << 20,
            write_binlog: true,
            defer_secondary_indexes: true,
            load_data: true,
        }
    }
}

enum Batch {
    Begin(Chunk),
    /// Rows as one multi-row INSERT, or as `LOAD DATA` text (tab-separated, backslash escapes,
    /// `\N` for NULL) when the load writes with `LOAD DATA`.
    Rows {
        data: Vec<u8>,
        rows: u64,
        /// ENUM error values among the rows (see `ColumnInfo::enum_error_value`): each is
        /// written non-strictly and leaves one expected "data truncated" warning.
        enum_errors: u64,
    },
    End {
        id: String,
        rows: u64,
    },
}

fn cp_error(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(ErrorClass::Fatal, "cannot read or write the job's checkpoints", e.to_string())
}

struct Shared<'a> {
    queue: Mutex<Queue>,
    layouts: HashMap<(String, String), TableLayout>,
    checkpoints: &'a dyn Checkpoints,
    copied_rows: AtomicU64,
    bytes: AtomicU64,
    total_rows: u64,
    progress: ProgressFn<'a>,
    batch_bytes: usize,
    /// Whether writers load rows with `LOAD DATA LOCAL INFILE`.
    load_data: bool,
    /// Chunks of each table not yet copied; the writer that copies a table's last chunk builds
    /// its deferred secondary keys (only when writers binlog: the key DDL must reach the
    /// destination's own replicas; otherwise they are built at the end, on a logging session).
    early_keys: bool,
    remaining: Mutex<HashMap<(String, String), usize>>,
}

async fn open_reader(conn: &MySqlConnector, plan: &MigrationPlan) -> Result<Session, ConnectorError> {
    let mut s = connect(&plan.source, Side::Source, conn.connect_timeout()).await?;
    s.query_drop(
        "SET NAMES binary; SET SESSION time_zone = '+00:00'; SET SESSION net_write_timeout = 3600",
        "preparing a reader session",
    )
    .await?;
    Ok(s)
}

async fn open_writer(
    conn: &MySqlConnector,
    plan: &MigrationPlan,
    settings: &FullLoadSettings,
) -> Result<Session, ConnectorError> {
    let mut s = connect(plan.destination()?, Side::Destination, conn.connect_timeout()).await?;
    // `unique_checks` stays on: with it and foreign key checks both off, MariaDB 10.6+ loads an
    // empty table in its "bulk insert" mode (MDEV-515), which locks the whole table, and an
    // application's SELECT of that table during the load was seen to wedge the load for good.
    s.query_drop(
        "SET NAMES binary; SET SESSION time_zone = '+00:00'; \
         SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
         SET SESSION foreign_key_checks = 0",
        "preparing a writer session",
    )
    .await?;
    set_mode(&mut s, STRICT_MODE).await?;
    if !settings.write_binlog
        && let Err(e) = s.query_drop_raw("SET SESSION sql_log_bin = 0").await
    {
        tracing::warn!(error = %e, "cannot turn the destination binlog off for the load; it stays on");
    }
    Ok(s)
}

/// The writers' `sql_mode`: strict, so an INSERT of a value the destination cannot hold fails.
const STRICT_MODE: &str = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION";
/// For a batch carrying ENUM error values only (strict mode refuses to store them).
const LAX_MODE: &str = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION";

async fn set_mode(writer: &mut Session, mode: &str) -> Result<(), ConnectorError> {
    writer.query_drop(&format!("SET SESSION sql_mode = '{mode}'"), "setting the writer's sql_mode").await
}

/// The `LOAD DATA` statement of a table: binary character set (bytes stored as they are, as
/// with the INSERT path); MySQL's JSON type goes through a variable converted to utf8mb4.
fn load_sql(layout: &TableLayout) -> String {
    let mut cols = Vec::new();
    let mut sets = Vec::new();
    for (i, c) in layout.columns.iter().enumerate() {
        match c.kind {
            LiteralKind::Json => {
                cols.push(format!("@v{i}"));
                sets.push(format!("{} = CONVERT(@v{i} USING utf8mb4)", quote_ident(&c.name)));
            }
            LiteralKind::Bytes | LiteralKind::Float => cols.push(quote_ident(&c.name)),
        }
    }
    let set = if sets.is_empty() { String::new() } else { format!(" SET {}", sets.join(", ")) };
    format!(
        "LOAD DATA LOCAL INFILE 'dts-rows' INTO TABLE {} CHARACTER SET binary \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({}){set}",
        qualified(&layout.target.0, &layout.target.1),
        cols.join(", ")
    )
}

fn insert_prefix(layout: &TableLayout) -> Vec<u8> {
    let cols = layout.columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ");
    format!("INSERT INTO {} ({cols}) VALUES ", qualified(&layout.target.0, &layout.target.1)).into_bytes()
}

/// Whether the destination accepts `LOAD DATA LOCAL INFILE`.
async fn local_infile(writer: &mut Session) -> bool {
    let on = matches!(
        writer.rows_raw("SELECT @@GLOBAL.local_infile").await.as_deref(),
        Ok([row]) if matches!(crate::connection::text_column(row, 0), Ok(Some(v)) if v == "1" || v.eq_ignore_ascii_case("on"))
    );
    if !on {
        tracing::info!("the destination does not allow LOAD DATA LOCAL INFILE (local_infile): rows go as INSERTs");
    }
    on
}

/// A destination error while writing `chunk`: a missing table or database (the structure was
/// not migrated, or was dropped since) is for the operator to fix, not a bug.
fn write_error(writer: &Session, e: &mysql_async::Error, chunk: &Chunk, doing: &str) -> ConnectorError {
    let mut err = writer.error(e, &format!("{doing} {}", chunk.id));
    // Strict mode refuses a value the destination column cannot hold (an INSERT).
    if let Some(code @ (1048 | 1264 | 1265 | 1292 | 1366 | 1406)) = server_code(e) {
        err.class = ErrorClass::NeedsOperator;
        err.summary = format!(
            "the destination cannot store a value of {} as read ({}) while {doing} {}; the chunk is not loaded \
             (check that the destination's columns can hold the source's values)",
            qualified(&chunk.database, &chunk.table),
            warning_meaning(code),
            chunk.id
        );
    }
    if matches!(server_code(e), Some(1146 | 1049)) {
        err.class = ErrorClass::NeedsOperator;
        err.summary = format!(
            "table {} does not exist on the destination while {doing} {} (migrate the structure first)",
            qualified(&chunk.database, &chunk.table),
            chunk.id
        );
    }
    err
}

/// The chunks a resumed load still has to copy are of tables the source still has: a table
/// dropped on the source since the plan was cut cannot be copied, and dropping it from the plan silently
/// would end the load without its rows, so the operator decides (delete the job, or restore
/// the table and start the job afresh).
fn check_plan_tables(chunks: &[Chunk], layouts: &HashMap<(String, String), TableLayout>) -> Result<(), ConnectorError> {
    let mut gone: Vec<String> = chunks
        .iter()
        .filter(|c| !layouts.contains_key(&(c.database.clone(), c.table.clone())))
        .map(|c| qualified(&c.database, &c.table))
        .collect();
    gone.dedup();
    if gone.is_empty() {
        return Ok(());
    }
    Err(ConnectorError::new(
        ErrorClass::NeedsOperator,
        format!(
            "the full load's plan names {} that no longer exist on the source (dropped since the load started): \
             restore them, or start the job afresh",
            gone.join(", ")
        ),
        "",
    ))
}

/// The layout of a chunk's table; the plan was checked against the layouts (`check_plan_tables`),
/// so a miss is a bug, reported as an error rather than a panic.
fn layout_of<'s>(shared: &'s Shared<'_>, chunk: &Chunk) -> Result<&'s TableLayout, ConnectorError> {
    shared.layouts.get(&(chunk.database.clone(), chunk.table.clone())).ok_or_else(|| {
        ConnectorError::new(
            ErrorClass::NeedsOperator,
            format!("table {} of the load's plan is not on the source", qualified(&chunk.database, &chunk.table)),
            "",
        )
    })
}

/// Why a chunk read stopped early.
enum ReadStop {
    Driver(mysql_async::Error),
    WriterGone,
}

/// Streams one chunk into statements.
async fn read_chunk(
    reader: &mut Session,
    chunk: &Chunk,
    layout: &TableLayout,
    tx: &mpsc::Sender<Batch>,
    batch_bytes: usize,
    load_data: bool,
) -> Result<u64, ConnectorError> {
    match stream_chunk(reader.conn_mut(), chunk, layout, tx, batch_bytes, load_data).await {
        Ok(rows) => Ok(rows),
        Err(ReadStop::Driver(e)) => Err(reader.error(&e, &format!("reading {}", chunk.id))),
        Err(ReadStop::WriterGone) => {
            Err(ConnectorError::new(ErrorClass::Fatal, "the destination writer stopped", "channel closed"))
        }
    }
}

/// Streams one chunk into batches of about `batch_bytes`: `LOAD DATA` text, or INSERTs.
async fn stream_chunk(
    conn: &mut mysql_async::Conn,
    chunk: &Chunk,
    layout: &TableLayout,
    tx: &mpsc::Sender<Batch>,
    batch_bytes: usize,
    load_data: bool,
) -> Result<u64, ReadStop> {
    let sql = chunk.select_sql(&layout.columns);
    let prefix = if load_data { Vec::new() } else { insert_prefix(layout) };
    let fresh = || {
        let mut b = Vec::with_capacity(batch_bytes + (batch_bytes >> 3));
        b.extend_from_slice(&prefix);
        b
    };
    let mut data = fresh();
    let mut in_batch = 0u64;
    let mut enum_errors = 0u64;
    let mut total = 0u64;
    let mut result = conn.query_iter(sql.as_str()).await.map_err(ReadStop::Driver)?;
    let Some(mut stream) = result.stream::<Row>().await.map_err(ReadStop::Driver)? else { return Ok(0) };
    while let Some(row) = stream.next().await {
        let row = row.map_err(ReadStop::Driver)?;
        if !load_data {
            if in_batch > 0 {
                data.push(b',');
            }
            data.push(b'(');
        }
        for (i, col) in layout.columns.iter().enumerate() {
            if i > 0 {
                data.push(if load_data { b'\t' } else { b',' });
            }
            let other;
            let value = match row.as_ref(i) {
                Some(Value::Bytes(b)) => Some(b.as_slice()),
                Some(Value::NULL) | None => None,
                Some(v) => {
                    other = v.as_sql(true);
                    Some(other.trim_matches('\'').as_bytes())
                }
            };
            if col.enum_error_value && value == Some(b"".as_slice()) {
                enum_errors += 1;
            }
            if load_data {
                push_load_field(&mut data, value);
            } else {
                push_value(&mut data, col.kind, value);
            }
        }
        data.push(if load_data { b'\n' } else { b')' });
        in_batch += 1;
        total += 1;
        if data.len() >= batch_bytes {
            let full = std::mem::replace(&mut data, fresh());
            tx.send(Batch::Rows { data: full, rows: in_batch, enum_errors }).await.map_err(|_| ReadStop::WriterGone)?;
            (in_batch, enum_errors) = (0, 0);
        }
    }
    drop(stream);
    drop(result);
    if in_batch > 0 {
        tx.send(Batch::Rows { data, rows: in_batch, enum_errors }).await.map_err(|_| ReadStop::WriterGone)?;
    }
    Ok(total)
}

/// Writes rows of `LOAD DATA` text into the writer's table (the text is handed to the driver
/// as the "file" the server asks for).
async fn load_rows(writer: &mut Session, sql: &str, text: Vec<u8>) -> Result<(), mysql_async::Error> {
    let data = bytes::Bytes::from(text);
    writer.conn_mut().set_infile_handler(async move {
        Ok(Box::pin(futures::stream::once(async move { Ok(data) })) as mysql_async::InfileData)
    });
    writer.conn_mut().query_drop(sql).await
}

/// What a warning of the destination means for a loaded row (our words, not the server's).
fn warning_meaning(code: u16) -> &'static str {
    match code {
        1048 => "NULL in a NOT NULL column",
        1062 => "duplicate key (row skipped)",
        1261 | 1262 => "wrong number of columns",
        1264 => "value out of range",
        1265 | 1406 => "data truncated",
        1292 | 1366 => "incorrect value",
        _ => "value changed or row skipped",
    }
}

/// Every row of a batch was stored as sent: `LOAD DATA LOCAL` cannot stop the client's stream,
/// so the server handles data errors as with IGNORE (a warning, a skipped or changed row) even
/// in strict mode; a batch whose affected rows differ from the rows sent, or that left any
/// warning other than one "data truncated" per ENUM error value it copied, fails its chunk (the open transaction is rolled back, the chunk is not recorded and
/// is cleared when copied again) instead of loading dropped or truncated data.
async fn check_stored(
    writer: &mut Session,
    chunk: Option<&Chunk>,
    sent: u64,
    enum_errors: u64,
) -> Result<(), ConnectorError> {
    let (stored, warnings) = (writer.conn_mut().affected_rows(), writer.conn_mut().get_warnings());
    if stored == sent && warnings == 0 {
        return Ok(());
    }
    if stored == sent && u64::from(warnings) == enum_errors {
        // Exactly one "data truncated" per ENUM error value copied, and nothing else.
        let codes: Vec<Row> = writer.rows_raw("SHOW WARNINGS").await.unwrap_or_default();
        // (SHOW WARNINGS lists at most `max_error_count` of them.)
        if !codes.is_empty() && codes.iter().all(|r| r.get::<Option<u16>, _>(1).flatten() == Some(1265)) {
            return Ok(());
        }
    }
    let shown: Vec<Row> = writer.rows_raw("SHOW WARNINGS LIMIT 5").await.unwrap_or_default();
    let mut codes: Vec<String> = Vec::new();
    let mut detail = Vec::new();
    for row in &shown {
        let code = row.get::<Option<u16>, _>(1).flatten().unwrap_or(0);
        let meaning = format!("{} ({code})", warning_meaning(code));
        if !codes.contains(&meaning) {
            codes.push(meaning);
        }
        detail.push(crate::connection::text_column(row, 2).ok().flatten().unwrap_or_default());
    }
    let what = chunk.map_or_else(String::new, |c| format!(" of {} ({})", qualified(&c.database, &c.table), c.id));
    Err(ConnectorError::new(
        ErrorClass::NeedsOperator,
        format!(
            "the destination did not store the rows{what} as read: {sent} sent, {stored} stored, {warnings} \
             warnings{}; the chunk is not loaded (check that the destination's columns can hold the source's \
             values)",
            if codes.is_empty() { String::new() } else { format!(": {}", codes.join(", ")) }
        ),
        detail.join("; "),
    ))
}

/// The chunks left to copy, and how many pipelines are copying each table now.
struct Queue {
    chunks: VecDeque<Chunk>,
    loading: HashMap<(String, String), usize>,
}

impl Queue {
    /// The next chunk, preferring a table no other pipeline is loading: `LOAD DATA` into a
    /// table with an AUTO_INCREMENT column holds the table's AUTO-INC lock for the statement
    /// (InnoDB's bulk inserts), so two pipelines on one table would take turns.
    fn take(&mut self) -> Option<Chunk> {
        let free = self
            .chunks
            .iter()
            .position(|c| self.loading.get(&(c.database.clone(), c.table.clone())).copied().unwrap_or(0) == 0);
        let chunk = self.chunks.remove(free.unwrap_or(0))?;
        *self.loading.entry((chunk.database.clone(), chunk.table.clone())).or_default() += 1;
        Some(chunk)
    }

    fn finished(&mut self, chunk: &Chunk) {
        if let Some(n) = self.loading.get_mut(&(chunk.database.clone(), chunk.table.clone())) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Rows are committed every this many bytes (and at the end of each chunk), not per statement:
/// one redo-log flush per commit is what bounds a writer on a disk with slow fsync.
const COMMIT_BYTES: usize = 16 << 20;

async fn commit_rows(writer: &mut Session, chunk: Option<&Chunk>) -> Result<(), ConnectorError> {
    if let Err(e) = writer.conn_mut().query_drop("COMMIT").await {
        return Err(match chunk {
            Some(chunk) => write_error(writer, &e, chunk, "committing rows of"),
            None => writer.error(&e, "committing rows"),
        });
    }
    Ok(())
}

/// One reader/writer pair working through the shared queue.
async fn pipeline(mut reader: Session, mut writer: Session, shared: &Shared<'_>) -> Result<u64, ConnectorError> {
    let (tx, mut rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let read = async {
        let mut chunks = 0u64;
        loop {
            let next = shared.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
            let Some(chunk) = next else { break };
            let layout = layout_of(shared, &chunk)?;
            if tx.send(Batch::Begin(chunk.clone())).await.is_err() {
                break;
            }
            let rows = read_chunk(&mut reader, &chunk, layout, &tx, shared.batch_bytes, shared.load_data).await?;
            shared.queue.lock().unwrap_or_else(|e| e.into_inner()).finished(&chunk);
            if tx.send(Batch::End { id: chunk.id.clone(), rows }).await.is_err() {
                break;
            }
            chunks += 1;
        }
        drop(tx);
        Ok::<u64, ConnectorError>(chunks)
    };
    let write = async {
        let mut current: Option<Chunk> = None;
        // The `LOAD DATA` statement of the current chunk's table.
        let mut load: Option<String> = None;
        // Bytes written in the open destination transaction (0: none open).
        let mut uncommitted = 0usize;
        while let Some(batch) = rx.recv().await {
            match batch {
                Batch::Begin(chunk) => {
                    let layout = layout_of(shared, &chunk)?;
                    let sql = chunk.delete_sql(&layout.target);
                    if let Err(e) = writer.conn_mut().query_drop(sql.as_str()).await {
                        return Err(write_error(&writer, &e, &chunk, "clearing"));
                    }
                    load = shared.load_data.then(|| load_sql(layout));
                    current = Some(chunk);
                }
                Batch::Rows { data: sql, rows, enum_errors } => {
                    let len = sql.len() as u64;
                    if uncommitted == 0
                        && let Err(e) = writer.conn_mut().query_drop("START TRANSACTION").await
                    {
                        return Err(writer.error(&e, "writing rows"));
                    }
                    uncommitted += sql.len();
                    if enum_errors > 0 {
                        set_mode(&mut writer, LAX_MODE).await?;
                    }
                    let written = match &load {
                        Some(statement) => load_rows(&mut writer, statement, sql).await,
                        None => writer.conn_mut().query_drop(sql).await,
                    };
                    if let Err(e) = written {
                        return Err(match &current {
                            Some(chunk) => write_error(&writer, &e, chunk, "writing rows of"),
                            None => writer.error(&e, "writing rows"),
                        });
                    }
                    if let Err(e) = check_stored(&mut writer, current.as_ref(), rows, enum_errors).await {
                        let _ = writer.conn_mut().query_drop("ROLLBACK").await;
                        return Err(e);
                    }
                    if enum_errors > 0 {
                        set_mode(&mut writer, STRICT_MODE).await?;
                    }
                    if uncommitted >= COMMIT_BYTES {
                        commit_rows(&mut writer, current.as_ref()).await?;
                        uncommitted = 0;
                    }
                    shared.bytes.fetch_add(len, Ordering::Relaxed);
                    let done = shared.copied_rows.fetch_add(rows, Ordering::Relaxed) + rows;
                    (shared.progress)(done.min(shared.total_rows), shared.total_rows);
                }
                Batch::End { id, rows } => {
                    if uncommitted > 0 {
                        commit_rows(&mut writer, current.as_ref()).await?;
                        uncommitted = 0;
                    }
                    shared.checkpoints.put(&format!("{DONE_PREFIX}{id}"), &rows.to_string()).await?;
                    let Some(chunk) = current.take() else { continue };
                    let table = (chunk.database.clone(), chunk.table.clone());
                    let last = {
                        let mut remaining = shared.remaining.lock().unwrap_or_else(|e| e.into_inner());
                        let left = remaining.entry(table.clone()).or_insert(1);
                        *left = left.saturating_sub(1);
                        *left == 0
                    };
                    if last && shared.early_keys {
                        let target = &layout_of(shared, &chunk)?.target;
                        index_deferral::restore(&mut writer, shared.checkpoints, &target.0, &target.1).await?;
                    }
                }
            }
        }
        Ok(())
    };
    let (chunks, ()) = tokio::try_join!(read, write)?;
    reader.close().await;
    writer.close().await;
    Ok(chunks)
}

/// Runs the full load of a plan.
pub async fn run(
    conn: &MySqlConnector,
    plan: &MigrationPlan,
    checkpoints: &dyn Checkpoints,
    progress: ProgressFn<'_>,
) -> Result<LoadSummary, ConnectorError> {
    let settings = conn.full_load_settings().clone();
    let parallel = settings.parallel.max(1);
    let mut control = connect(&plan.source, Side::Source, conn.connect_timeout()).await?;
    let catalog = Catalog::read(&mut control, &plan.selection).await?;
    if !catalog.missing.is_empty() {
        return Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            format!("selected objects are missing on the source: {}", catalog.missing.join(", ")),
            "",
        ));
    }
    let mut layouts = HashMap::new();
    for db in &catalog.databases {
        for t in &db.tables {
            let mut layout = TableLayout::read(&mut control, &db.name, t).await?;
            layout.target = plan.selection.target(&db.name, t);
            layouts.insert((db.name.clone(), t.clone()), layout);
        }
    }
    let mut readers = Vec::with_capacity(parallel);
    for _ in 0..parallel {
        readers.push(open_reader(conn, plan).await?);
    }
    let snap = snapshot::pin(&mut control, &mut readers).await?;
    control.close().await;
    if !snap.shared {
        tracing::warn!("readers hold separate snapshots: tables may correspond to slightly different instants");
    }

    let stored_plan = checkpoints.get(PLAN_KEY).await?;
    let first_attempt = stored_plan.is_none();
    let chunks: Vec<Chunk> = match stored_plan {
        Some(json) => serde_json::from_str(&json).map_err(cp_error)?,
        None => {
            let mut all = Vec::new();
            let mut keys: Vec<_> = layouts.keys().cloned().collect();
            keys.sort();
            for k in keys {
                all.extend(layouts[&k].plan(&mut readers[0], settings.chunk_rows).await?);
            }
            checkpoints.put(PLAN_KEY, &serde_json::to_string(&all).map_err(cp_error)?).await?;
            all
        }
    };
    // A resumed load reports the position stored by the first attempt: the earliest snapshot,
    // where incremental replication must start for the chunks that attempt copied.
    let position: Option<dts_core::BinlogPosition> = match checkpoints.get(SNAPSHOT_KEY).await? {
        Some(json) => serde_json::from_str(&json).map_err(cp_error)?,
        None => {
            checkpoints.put(SNAPSHOT_KEY, &serde_json::to_string(&snap.position).map_err(cp_error)?).await?;
            snap.position.clone()
        }
    };
    let done: HashSet<String> = checkpoints
        .scan(DONE_PREFIX)
        .await?
        .into_iter()
        .map(|(k, _)| k.trim_start_matches(DONE_PREFIX).to_string())
        .collect();
    let total_rows: u64 = chunks.iter().map(|c| c.estimated_rows).sum::<u64>().max(1);
    let resumed_rows: u64 = chunks.iter().filter(|c| done.contains(&c.id)).map(|c| c.estimated_rows).sum();
    let mut todo: VecDeque<Chunk> = chunks.iter().filter(|c| !done.contains(&c.id)).cloned().collect();
    check_plan_tables(todo.make_contiguous(), &layouts)?;
    let chunks_resumed = (chunks.len() - todo.len()) as u64;
    tracing::info!(chunks = chunks.len(), resumed = chunks_resumed, parallel, "full load starts");
    progress(resumed_rows, total_rows);

    let mut writers = Vec::with_capacity(parallel);
    for _ in 0..parallel {
        writers.push(open_writer(conn, plan, &settings).await?);
    }
    let load_data = settings.load_data && local_infile(&mut writers[0]).await;
    let mut dest_control = connect(plan.destination()?, Side::Destination, conn.connect_timeout()).await?;
    if first_attempt && settings.defer_secondary_indexes {
        let mut tables: Vec<_> = layouts.keys().cloned().collect();
        tables.sort();
        for (db, t) in tables {
            let (tdb, tt) = plan.selection.target(&db, &t);
            index_deferral::defer(&mut dest_control, checkpoints, &tdb, &tt).await?;
        }
    }
    let mut remaining: HashMap<(String, String), usize> = HashMap::new();
    for c in &todo {
        *remaining.entry((c.database.clone(), c.table.clone())).or_default() += 1;
    }
    let shared = Shared {
        early_keys: settings.write_binlog,
        remaining: Mutex::new(remaining),
        queue: Mutex::new(Queue { chunks: todo, loading: HashMap::new() }),
        layouts,
        checkpoints,
        copied_rows: AtomicU64::new(resumed_rows),
        bytes: AtomicU64::new(0),
        total_rows,
        progress,
        batch_bytes: settings.batch_bytes,
        load_data,
    };
    let results =
        futures::future::try_join_all(readers.into_iter().zip(writers).map(|(r, w)| pipeline(r, w, &shared))).await?;
    index_deferral::restore_all(&mut dest_control, checkpoints).await?;
    dest_control.close().await;
    progress(total_rows, total_rows);
    Ok(LoadSummary {
        tables: shared.layouts.len() as u64,
        chunks: results.iter().sum(),
        chunks_resumed,
        rows: shared.copied_rows.load(Ordering::Relaxed) - resumed_rows,
        bytes: shared.bytes.load(Ordering::Relaxed),
        lock_held_micros: snap.lock_held_micros,
        position: position.map_or(Position::None, Position::Binlog),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(table: &str, n: u32) -> Chunk {
        Chunk {
            id: format!("d.{table}#{n}"),
            database: "d".into(),
            table: table.into(),
            key: None,
            lower: None,
            upper: None,
            estimated_rows: 1,
        }
    }

    #[test]
    fn pipelines_take_chunks_of_tables_nobody_else_is_loading() {
        let chunks = [chunk("a", 1), chunk("a", 2), chunk("b", 1), chunk("b", 2)].into_iter().collect();
        let mut q = Queue { chunks, loading: HashMap::new() };
        let first = q.take().unwrap();
        let second = q.take().unwrap();
        assert_eq!((first.id.as_str(), second.id.as_str()), ("d.a#1", "d.b#1"));
        // The first pipeline finishes its chunk and goes on with its own table.
        q.finished(&first);
        assert_eq!(q.take().unwrap().id, "d.a#2");
        // Only a busy table is left: it is shared rather than left idle.
        assert_eq!(q.take().unwrap().id, "d.b#2");
        assert!(q.take().is_none());
    }
}
