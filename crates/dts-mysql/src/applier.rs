//! The destination side of replication: source transactions dispatched by causality to
//! parallel apply lanes (one destination session each), group commit on every lane, and the
//! position checkpointed once all lanes have committed up to it.
//!
//! Correctness argument.
//! - **Same key in order.** Every change has causality keys (`apply::causality_keys`: its
//!   primary key and each unique key, before and after images; the whole table where keys
//!   cannot be compared byte for byte). A transaction goes to the lane that holds an
//!   uncommitted change to one of its keys; each lane applies its work in arrival order, so
//!   changes to one row or unique value are applied in source order. A transaction whose keys
//!   are held by two lanes is a conflict: it waits until every lane has committed (a barrier),
//!   after which no key is held.
//! - **Whole transactions.** A source transaction is applied on one lane inside one destination
//!   transaction; a lane commits only between source transactions.
//! - **Nothing lost, nothing doubled.** A batch's position is checkpointed only after every lane
//!   has committed everything dispatched before it. A crash between two lanes' commits leaves
//!   some lanes ahead of the checkpoint; the restart re-applies from the checkpoint, in source
//!   order, statements that are idempotent by key (`apply`), so every row ends at its last
//!   image.
//! - **Changes that reach past their keys run alone** (a barrier before and after): a source
//!   transaction too large to hold (sent in slices to one lane), and deletes or updates of a
//!   parent whose foreign keys cascade (the destination repeats the cascade on rows whose keys
//!   are unknown here). DDL runs after a barrier, on its own session.
//! - **Pipelining.** While a batch's COMMITs are in flight the reader keeps dispatching the next
//!   batch; keys of the committing batch still count as held, so its successors on the same keys
//!   queue behind the COMMIT on the same lane.
//!
//! Two-way synchronization uses one lane: its conflict checks read the destination before each
//! change, on the session that applies it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dts_core::{BinlogPosition, Checkpoints, ConflictArbiter, ConflictPolicy, ConnectorError, ErrorClass};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::apply::{ApplyLayout, cascading_statements, causality_keys, statements};
use crate::binlog::{RowChange, StatementSession};
use crate::conflict;
use crate::connection::Session;
use crate::net_apply::{self, NetWindow};

/// Where replication checkpoints the position every lane has committed (in the MySQL family's
/// checkpoint scope).
pub const POSITION_KEY: &str = "incremental/position";

const STATEMENT_BYTES: usize = 1 << 20;
/// A lane sends what it holds once it is this large, or as soon as it has no more work queued.
const FLUSH_BYTES: usize = 4 << 20;
/// Rows dispatched but not yet turned into statements, over all lanes (memory bound).
const QUEUED_ROWS: usize = 20_000;
/// A batch commits when it holds this many source transactions or is this old.
const BATCH_TRANSACTIONS: u32 = 1000;
const BATCH_AGE: Duration = Duration::from_millis(100);
/// Held keys are forgotten once committed, when more than this many are remembered.
const OWNER_PRUNE: usize = 1 << 16;

/// The changes of one source transaction (or a slice of a large one) as the reader collects
/// them: per source table in order, with whether the source applied them with foreign key
/// checks (and so with their cascades).
#[derive(Default)]
pub struct Transaction {
    pub groups: Vec<((String, String), bool, Vec<RowChange>)>,
    pub rows: u64,
    /// Source time (seconds) of its latest row event: its commit time, for two-way conflicts.
    pub timestamp: u32,
}

impl Transaction {
    /// Appends a row event's changes to one table, in order.
    pub fn extend(&mut self, key: (String, String), fk_checks: bool, changes: Vec<RowChange>) {
        self.rows += changes.len() as u64;
        match self.groups.last_mut() {
            Some((k, fk, held)) if *k == key && *fk == fk_checks => held.extend(changes),
            _ => self.groups.push((key, fk_checks, changes)),
        }
    }
}

/// Changes to one destination table, in order.
struct Group {
    layout: Arc<ApplyLayout>,
    /// The table's number in causality keys.
    tag: u64,
    changes: Vec<RowChange>,
    /// Apply with the destination's foreign key actions (`apply::cascading_statements`).
    cascade: bool,
}

enum Work {
    Changes {
        groups: Vec<Group>,
        timestamp: u32,
        _permit: Option<OwnedSemaphorePermit>,
    },
    /// Commit what the lane holds; the answer says it is durable.
    Commit(oneshot::Sender<Result<(), ConnectorError>>),
}

/// Two-way synchronization: the crossing's servers, its rule, and the arbiter of conflicts.
pub struct TwoWay<'a> {
    pub from: String,
    pub to: String,
    pub policy: ConflictPolicy,
    pub arbiter: &'a dyn ConflictArbiter,
}

/// A batch whose COMMITs were sent.
struct InFlight {
    seq: u64,
    position: BinlogPosition,
    timestamp: u32,
    rows: u64,
    acks: Vec<oneshot::Receiver<Result<(), ConnectorError>>>,
}

/// Source transactions dispatched but not yet committed.
struct OpenBatch {
    since: Instant,
    transactions: u32,
    /// The position after the last source transaction in the batch, and its commit time.
    position: BinlogPosition,
    timestamp: u32,
    /// Row changes in the batch.
    rows: u64,
}

/// A position every lane has committed up to (and checkpointed).
#[derive(Debug)]
pub struct Durable {
    pub position: BinlogPosition,
    /// Source commit time (seconds) of its last transaction.
    pub timestamp: u32,
    /// Row changes the batch that ends there applied.
    pub rows: u64,
}

/// The reader's side of the lanes.
pub struct Dispatcher<'a> {
    lanes: Vec<mpsc::Sender<Work>>,
    /// Rows dispatched per lane in the open batch (to balance new keys) and lanes with work.
    load: Vec<u64>,
    budget: Arc<Semaphore>,
    /// Causality key → (lane, batch sequence number) of its last change.
    owners: HashMap<u64, (usize, u64)>,
    /// Sequence number of the open batch; batches up to `durable` are committed on every lane.
    seq: u64,
    durable: u64,
    open: Option<OpenBatch>,
    in_flight: Option<InFlight>,
    /// A large source transaction is being sent in slices to lane 0.
    slicing: bool,
    /// Rows of the sliced transaction sent so far (counted in its batch once it ends).
    sliced_rows: u64,
    /// Destination session for table layouts and DDL.
    control: Session,
    layouts: HashMap<(String, String), Arc<ApplyLayout>>,
    tags: HashMap<(String, String), u64>,
    selection: dts_core::ObjectSelection,
    checkpoints: &'a dyn Checkpoints,
}

/// A lane: one destination session and its open destination transaction.
struct Lane<'a> {
    dst: Session,
    /// Statements not sent yet.
    buffered: Vec<u8>,
    /// Changes not turned into statements yet, folded by key (`net_apply`); drained into
    /// `buffered` before anything else is appended and before every send.
    window: NetWindow,
    /// Statements of the open destination transaction already sent (for a retry after a
    /// deadlock); `None` once that is more than `RETRY_BYTES`.
    sent: Option<Vec<u8>>,
    started: bool,
    two_way: Option<TwoWay<'a>>,
}

/// A destination transaction that a deadlock rolled back is sent again whole if it is at most
/// this large (and at most `RETRIES` times); a larger one fails the step, which resumes from
/// the checkpoint.
const RETRY_BYTES: usize = 16 << 20;
const RETRIES: u32 = 5;

/// Deadlock victim or lock wait timeout: the server expects the transaction to be retried.
fn lock_conflict(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1213 || s.code == 1205)
}

impl Lane<'_> {
    /// One round trip. A deadlock (possible only with writers on the destination besides dts,
    /// or keys the causality rule does not see) rolls the destination transaction back: it is
    /// sent again whole. Any other failure rolls it back and is returned.
    async fn send(&mut self, sql: Vec<u8>, doing: &str) -> Result<(), ConnectorError> {
        use mysql_async::prelude::Queryable;
        let mut attempt = 0;
        loop {
            // A retry sends the whole rolled-back transaction; the first attempt only `sql`.
            let retry = match (&self.sent, attempt) {
                (Some(prev), 1..) if !prev.is_empty() => {
                    let mut t = prev.clone();
                    push_statement(&mut t, &sql);
                    Some(t)
                }
                _ => None,
            };
            match self.dst.conn_mut().query_drop(retry.as_deref().unwrap_or(&sql)).await {
                Ok(()) => break,
                Err(e) => {
                    let _ = self.dst.conn_mut().query_drop("ROLLBACK").await;
                    if lock_conflict(&e) && self.sent.is_some() && attempt < RETRIES {
                        attempt += 1;
                        tracing::info!(attempt, "destination deadlock: the lane's transaction is applied again");
                        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                        continue;
                    }
                    self.started = false;
                    self.sent = Some(Vec::new());
                    return Err(self.dst.error(&e, doing));
                }
            }
        }
        if let Some(prev) = &mut self.sent {
            if prev.len() + sql.len() > RETRY_BYTES {
                self.sent = None;
            } else {
                push_statement(prev, &sql);
            }
        }
        Ok(())
    }

    /// Turns the folded window into statements at the end of `buffered`.
    fn drain_window(&mut self) {
        if self.window.is_empty() {
            return;
        }
        let mut statements = Vec::new();
        self.window.drain(STATEMENT_BYTES, &mut statements);
        for statement in statements {
            push_statement(&mut self.buffered, &statement);
        }
    }

    /// Whether the lane holds work not sent yet.
    fn holds(&self) -> bool {
        !self.buffered.is_empty() || !self.window.is_empty()
    }

    async fn flush(&mut self) -> Result<(), ConnectorError> {
        self.drain_window();
        if self.buffered.is_empty() {
            return Ok(());
        }
        let sql = std::mem::take(&mut self.buffered);
        self.send(sql, "applying transactions").await
    }

    /// Turns a transaction's changes into statements of the open destination transaction.
    async fn apply(&mut self, groups: Vec<Group>, timestamp: u32) -> Result<(), ConnectorError> {
        if groups.is_empty() {
            return Ok(());
        }
        if !self.started {
            push_statement(&mut self.buffered, b"START TRANSACTION");
            self.started = true;
        }
        for group in groups {
            let mut changes = group.changes;
            if let Some(tw) = &self.two_way {
                // Conflict checks read the destination: what is held goes first.
                let (from, to, policy, arbiter) = (tw.from.clone(), tw.to.clone(), tw.policy, tw.arbiter);
                self.flush().await?;
                let crossing = conflict::Crossing { from: &from, to: &to, commit_ts: timestamp, policy };
                changes = conflict::settle(&mut self.dst, &group.layout, changes, &crossing, arbiter).await?;
            }
            if self.two_way.is_none() && !group.cascade && net_apply::eligible(&group.layout) {
                self.window.fold(group.tag, &group.layout, changes);
                continue;
            }
            // Statements of this group follow everything folded before it.
            self.drain_window();
            let sql = if group.cascade {
                cascading_statements(&group.layout, &changes)
            } else {
                statements(&group.layout, &changes, STATEMENT_BYTES)
            };
            for statement in sql {
                push_statement(&mut self.buffered, &statement);
            }
        }
        if self.buffered.len() + self.window.bytes() >= FLUSH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), ConnectorError> {
        if !self.started {
            return Ok(());
        }
        self.drain_window();
        push_statement(&mut self.buffered, b"COMMIT");
        let r = self.flush().await;
        self.started = false;
        self.sent = Some(Vec::new());
        r
    }

    /// The lane's work loop; it ends when the dispatcher is dropped. After an error it answers
    /// every COMMIT with that error (its open transaction rolled back) until it ends.
    async fn run(mut self, mut rx: mpsc::Receiver<Work>) {
        let mut failed: Option<ConnectorError> = None;
        loop {
            let work = if !self.holds() || failed.is_some() {
                match rx.recv().await {
                    Some(w) => w,
                    None => return,
                }
            } else {
                match rx.try_recv() {
                    Ok(w) => w,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        // Nothing more queued: the destination works on what is held meanwhile.
                        if let Err(e) = self.flush().await {
                            failed = Some(e);
                        }
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            };
            match work {
                Work::Changes { groups, timestamp, _permit } => {
                    if failed.is_none()
                        && let Err(e) = self.apply(groups, timestamp).await
                    {
                        self.buffered.clear();
                        self.window = NetWindow::default();
                        failed = Some(e);
                    }
                }
                Work::Commit(ack) => {
                    let result = match &failed {
                        Some(e) => Err(e.clone()),
                        None => self.commit().await,
                    };
                    if let Err(e) = &result {
                        failed = Some(e.clone());
                    }
                    let _ = ack.send(result);
                }
            }
        }
    }
}

/// Appends a statement to a multi-statement text.
fn push_statement(sql: &mut Vec<u8>, statement: &[u8]) {
    if !sql.is_empty() {
        sql.push(b';');
    }
    sql.extend_from_slice(statement);
}

impl<'a> Dispatcher<'a> {
    /// The dispatcher and its lanes' work loops (which the caller runs beside the reader).
    pub fn new(
        control: Session,
        lanes: Vec<Session>,
        two_way: Option<TwoWay<'a>>,
        selection: dts_core::ObjectSelection,
        checkpoints: &'a dyn Checkpoints,
    ) -> (Self, Vec<impl std::future::Future<Output = ()> + 'a>) {
        let mut senders = Vec::new();
        let mut loops = Vec::new();
        let mut two_way = two_way;
        for session in lanes {
            let (tx, rx) = mpsc::channel(1024);
            senders.push(tx);
            let lane = Lane {
                dst: session,
                buffered: Vec::new(),
                window: NetWindow::default(),
                sent: Some(Vec::new()),
                started: false,
                two_way: two_way.take(),
            };
            loops.push(lane.run(rx));
        }
        let n = senders.len();
        let dispatcher = Dispatcher {
            lanes: senders,
            load: vec![0; n],
            budget: Arc::new(Semaphore::new(QUEUED_ROWS)),
            owners: HashMap::new(),
            seq: 1,
            durable: 0,
            open: None,
            in_flight: None,
            slicing: false,
            sliced_rows: 0,
            control,
            layouts: HashMap::new(),
            tags: HashMap::new(),
            selection,
            checkpoints,
        };
        (dispatcher, loops)
    }

    async fn layout(&mut self, key: &(String, String)) -> Result<Arc<ApplyLayout>, ConnectorError> {
        if let Some(l) = self.layouts.get(key) {
            return Ok(l.clone());
        }
        let (db, table) = self.selection.target(&key.0, &key.1);
        let layout = ApplyLayout::read(&mut self.control, &db, &table).await?;
        if layout.columns.is_empty() {
            return Err(ConnectorError::new(
                ErrorClass::NeedsOperator,
                format!("table `{db}`.`{table}` does not exist on the destination"),
                "",
            ));
        }
        let layout = Arc::new(layout);
        self.layouts.insert(key.clone(), layout.clone());
        let next = self.tags.len() as u64;
        self.tags.entry(key.clone()).or_insert(next);
        Ok(layout)
    }

    /// Whether anything is dispatched and not yet durable.
    pub fn busy(&self) -> bool {
        self.open.is_some() || self.in_flight.is_some() || self.slicing
    }

    /// Whether a large source transaction is partly dispatched (no commit may cut it).
    pub fn mid_transaction(&self) -> bool {
        self.slicing
    }

    /// Checkpoints a position reached without row changes (after a DDL statement or an event
    /// outside the selection), once nothing is in flight.
    pub async fn checkpoint(&self, pos: &BinlogPosition) -> Result<(), ConnectorError> {
        let json = serde_json::to_string(pos).map_err(|e| fatal("checkpoint", e))?;
        self.checkpoints.put(POSITION_KEY, &json).await
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    pub fn has_open_batch(&self) -> bool {
        self.open.is_some()
    }

    /// Whether the open batch should commit (never in the middle of a sliced transaction).
    pub fn due(&self) -> bool {
        !self.slicing
            && self
                .open
                .as_ref()
                .is_some_and(|b| b.transactions >= BATCH_TRANSACTIONS || b.since.elapsed() >= BATCH_AGE)
    }

    async fn send(&mut self, lane: usize, groups: Vec<Group>, rows: u64, timestamp: u32) -> Result<(), ConnectorError> {
        let permit = if rows == 0 {
            None
        } else {
            let n = rows.min(QUEUED_ROWS as u64) as u32;
            Some(self.budget.clone().acquire_many_owned(n).await.map_err(|e| fatal("apply budget", e))?)
        };
        self.load[lane] += rows.max(1);
        self.lanes[lane]
            .send(Work::Changes { groups, timestamp, _permit: permit })
            .await
            .map_err(|_| fatal("an apply lane stopped", "channel closed"))
    }

    async fn groups(&mut self, txn: Transaction) -> Result<(Vec<Group>, bool), ConnectorError> {
        let mut groups = Vec::with_capacity(txn.groups.len());
        let mut alone = false;
        for (key, fk_checks, changes) in txn.groups {
            let layout = self.layout(&key).await?;
            let tag = self.tags[&key];
            let cascade = fk_checks
                && layout.cascades
                && changes.iter().any(|c| matches!(c, RowChange::Update { .. } | RowChange::Delete(_)));
            alone |= cascade;
            groups.push(Group { layout, tag, changes, cascade });
        }
        Ok((groups, alone))
    }

    /// Sends a slice of a source transaction that is still open (too large to hold): the
    /// transaction runs alone, on lane 0.
    pub async fn slice(&mut self, txn: Transaction) -> Result<Option<Durable>, ConnectorError> {
        let mut durable = None;
        if !self.slicing {
            durable = self.barrier().await?;
            self.slicing = true;
        }
        let (rows, timestamp) = (txn.rows, txn.timestamp);
        self.sliced_rows += rows;
        let (groups, _) = self.groups(txn).await?;
        self.send(0, groups, rows, timestamp).await?;
        Ok(durable)
    }

    /// Dispatches the rest of one source transaction and records it in the open batch.
    /// Returns a position made durable on the way (a barrier), if any.
    pub async fn add(
        &mut self,
        txn: Transaction,
        position: BinlogPosition,
        timestamp: u32,
    ) -> Result<Option<Durable>, ConnectorError> {
        let rows = txn.rows;
        let batch_rows = rows + std::mem::take(&mut self.sliced_rows);
        let mut keys = Vec::new();
        let (groups, alone) = self.groups(txn).await?;
        let mut durable = None;
        let lane = if self.slicing {
            0
        } else if alone {
            durable = self.barrier().await?;
            0
        } else {
            for g in &groups {
                for c in &g.changes {
                    causality_keys(&g.layout, g.tag, c, &mut keys);
                }
            }
            let mut holder = None;
            let mut conflict = false;
            for k in &keys {
                if let Some(&(lane, seq)) = self.owners.get(k)
                    && seq > self.durable
                {
                    match holder {
                        None => holder = Some(lane),
                        Some(h) if h != lane => conflict = true,
                        _ => {}
                    }
                }
            }
            if conflict {
                durable = self.barrier().await?;
                holder = None;
            }
            let lane = holder.unwrap_or_else(|| (0..self.lanes.len()).min_by_key(|&i| self.load[i]).unwrap_or(0));
            for k in keys {
                self.owners.insert(k, (lane, self.seq));
            }
            lane
        };
        self.send(lane, groups, rows, timestamp).await?;
        match &mut self.open {
            Some(batch) => {
                batch.transactions += 1;
                batch.position = position;
                batch.timestamp = timestamp;
                batch.rows += batch_rows;
            }
            None => {
                self.open =
                    Some(OpenBatch { since: Instant::now(), transactions: 1, position, timestamp, rows: batch_rows })
            }
        }
        if self.slicing || alone {
            self.slicing = false;
            if let Some(d) = self.barrier().await? {
                durable = Some(d);
            }
        }
        Ok(durable)
    }

    /// Sends COMMIT to the lanes for the open batch (after waiting for the batch before it).
    /// Returns a position made durable on the way.
    pub async fn commit(&mut self) -> Result<Option<Durable>, ConnectorError> {
        let Some(batch) = self.open.take() else { return Ok(None) };
        let durable = self.settle().await?;
        let mut acks = Vec::new();
        for (lane, load) in self.load.iter_mut().enumerate() {
            if *load > 0 {
                let (tx, rx) = oneshot::channel();
                self.lanes[lane].send(Work::Commit(tx)).await.map_err(|_| fatal("an apply lane stopped", "closed"))?;
                acks.push(rx);
                *load = 0;
            }
        }
        self.in_flight = Some(InFlight {
            seq: self.seq,
            position: batch.position,
            timestamp: batch.timestamp,
            rows: batch.rows,
            acks,
        });
        self.seq += 1;
        Ok(durable)
    }

    /// Waits until the batch in flight is committed on every lane, then checkpoints its
    /// position and returns it with its source commit time.
    pub async fn settle(&mut self) -> Result<Option<Durable>, ConnectorError> {
        let Some(batch) = self.in_flight.take() else { return Ok(None) };
        for ack in batch.acks {
            ack.await.map_err(|_| fatal("an apply lane stopped", "no answer"))??;
        }
        self.durable = batch.seq;
        if self.owners.len() > OWNER_PRUNE {
            let durable = self.durable;
            self.owners.retain(|_, (_, seq)| *seq > durable);
        }
        let json = serde_json::to_string(&batch.position).map_err(|e| fatal("checkpoint", e))?;
        self.checkpoints.put(POSITION_KEY, &json).await?;
        Ok(Some(Durable { position: batch.position, timestamp: batch.timestamp, rows: batch.rows }))
    }

    /// Commits everything dispatched and waits for it: afterwards no key is held.
    pub async fn barrier(&mut self) -> Result<Option<Durable>, ConnectorError> {
        let first = self.commit().await?;
        let second = self.settle().await?;
        Ok(second.or(first))
    }

    /// Replays a DDL statement after a barrier, as the source ran it: in the session state it
    /// was logged with (`sql_mode`, character set, default database) and as exactly one
    /// statement (prepared, so the server parses it alone: a statement that reads differently
    /// here can never become several). Table layouts are read again afterwards.
    pub async fn ddl(
        &mut self,
        schema: &str,
        sql: &[u8],
        session: &StatementSession,
    ) -> Result<Option<Durable>, ConnectorError> {
        let durable = self.barrier().await?;
        let text = String::from_utf8_lossy(sql);
        if let Some(name) = renamed_in(&self.selection, schema, &text) {
            return Err(ConnectorError::new(
                ErrorClass::NeedsOperator,
                format!(
                    "a DDL statement names {name}, which has another name on the destination; run it there by hand \
                     (with the destination's names) and resume the job"
                ),
                text.into_owned(),
            ));
        }
        let schema = if schema.is_empty() { String::new() } else { self.selection.target_database(schema) };
        let result = crate::statement::run_logged(&mut self.control, &schema, sql, session).await;
        self.layouts.clear();
        result?;
        Ok(durable)
    }
}

fn fatal(summary: impl Into<String>, detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new(ErrorClass::Fatal, summary, detail.to_string())
}

/// A renamed table, or a renamed database named explicitly, that a DDL statement mentions:
/// dts replays statements as they are (in the destination's database), so these would hit the
/// wrong object.
fn renamed_in(selection: &dts_core::ObjectSelection, schema: &str, sql: &str) -> Option<String> {
    let dts_core::ObjectSelection::Databases(list) = selection else { return None };
    let lower = sql.to_ascii_lowercase();
    let words: std::collections::HashSet<&str> =
        lower.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).filter(|w| !w.is_empty()).collect();
    for d in list {
        if d.rename.is_some() && words.contains(d.database.to_ascii_lowercase().as_str()) {
            return Some(format!("database `{}`", d.database));
        }
        if d.database == schema || words.contains(d.database.to_ascii_lowercase().as_str()) {
            for t in d.table_renames.keys() {
                if words.contains(t.to_ascii_lowercase().as_str()) {
                    return Some(format!("table `{}`.`{t}`", d.database));
                }
            }
        }
    }
    None
}
