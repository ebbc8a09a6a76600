//! A fake database family for engine tests that need no database server: an in-memory source
//! (tables of keyed rows and a change log), an in-memory destination, a change bus, and a
//! script of failures and pauses per stage. It implements every `dts_core` connector trait with
//! the same contracts as a real family (idempotent stages, checkpoints in its own scope, the
//! stream resuming from its checkpoint), so that the engine's handling of stage sequences,
//! restarts, retries and releases can be tested on its own.
//!
//! The world outlives engines: a test "kills" dts by shutting its engine down mid-stage and
//! starts a new one on the same store and the same world.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dts_core::change::{ChangeEvent, ChangeKind, ColumnInfo, RowChange, RowOp, Value};
use dts_core::{
    BinlogPosition, Capabilities, ChangeBatch, ChangeReplicator, ChangeSink, ChangeSource, ChangeStream, CheckItem,
    CheckReport, Checker, Checkpoints, CompareOptions, Comparison, Completion, ConnectorError, ConsistencyChecker,
    ErrorClass, FullLoader, Lag, LoadSummary, MigrationPlan, Position, ProgressFn, ReleaseReason, Releaser,
    ReplicationObserver, SnapshotMode, StreamMode, StructureMigrator, StructurePhase, StructureSummary, TableDiff,
};
use tokio::sync::Notify;

/// A stage of the fake family, for scripts and the call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Check,
    Structure,
    Triggers,
    Load,
    CurrentPosition,
    Replicate,
    Changes,
    Compare,
    Release,
    Publish,
}

/// What a scripted call does instead of (or before) its work.
#[derive(Debug, Clone)]
pub enum Action {
    /// Fails with a transient error (the engine retries).
    FailTransient,
    /// Fails with an error an operator must fix.
    FailOperator,
    /// Panics.
    Panic,
    /// Waits until the test calls [`FakeWorld::unblock`] (or the call is dropped).
    Block,
}

/// One table: key → value.
pub type Table = BTreeMap<i64, String>;

/// One change of the source's log: `None` deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub table: String,
    pub key: i64,
    pub value: Option<String>,
}

#[derive(Default)]
struct State {
    source: BTreeMap<String, Table>,
    log: Vec<LogEntry>,
    destination: BTreeMap<String, Table>,
    /// Tables created on the destination by the structure step, and triggers.
    structure: Vec<String>,
    triggers: u32,
    published: Vec<ChangeEvent>,
    heartbeats: u32,
    releases: Vec<(String, ReleaseReason)>,
    /// Subscriptions deleted from the bus.
    removed: Vec<String>,
    calls: Vec<Stage>,
    script: HashMap<Stage, VecDeque<Action>>,
    blocked: Vec<Stage>,
}

/// The fake's servers and bus, shared by every connector value and engine of a test.
#[derive(Clone, Default)]
pub struct FakeWorld {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    unblock: Arc<Notify>,
}

fn transient(what: &str) -> ConnectorError {
    ConnectorError::new(ErrorClass::Transient, format!("the fake {what} is unreachable"), "scripted")
}

fn position(offset: usize) -> Position {
    Position::Binlog(BinlogPosition { file: "fake".into(), offset: offset as u64, gtid: None })
}

fn offset(p: &Position) -> Option<usize> {
    match p {
        Position::Binlog(b) if b.file == "fake" => Some(b.offset as usize),
        _ => None,
    }
}

impl FakeWorld {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `key` of `table` on the source (logged, as a database logs its changes).
    pub fn write(&self, table: &str, key: i64, value: Option<&str>) {
        let mut s = self.lock();
        match value {
            Some(v) => s.source.entry(table.into()).or_default().insert(key, v.into()),
            None => s.source.entry(table.into()).or_default().remove(&key),
        };
        s.log.push(LogEntry { table: table.into(), key, value: value.map(Into::into) });
        drop(s);
        self.changed.notify_waiters();
    }

    /// Rows that exist before any job starts (not in the log: as a snapshot finds them).
    pub fn seed(&self, table: &str, rows: impl IntoIterator<Item = (i64, &'static str)>) {
        let mut s = self.lock();
        let t = s.source.entry(table.into()).or_default();
        for (k, v) in rows {
            t.insert(k, v.into());
        }
    }

    pub fn source(&self) -> BTreeMap<String, Table> {
        self.lock().source.clone()
    }

    pub fn destination(&self) -> BTreeMap<String, Table> {
        self.lock().destination.clone()
    }

    /// Changes the destination behind dts's back (for consistency checks).
    pub fn tamper(&self, table: &str, key: i64, value: &str) {
        self.lock().destination.entry(table.into()).or_default().insert(key, value.into());
    }

    pub fn published(&self) -> Vec<ChangeEvent> {
        self.lock().published.clone()
    }

    pub fn heartbeats(&self) -> u32 {
        self.lock().heartbeats
    }

    pub fn releases(&self) -> Vec<(String, ReleaseReason)> {
        self.lock().releases.clone()
    }

    /// The subscriptions (job ids) whose events the bus deleted.
    pub fn removed(&self) -> Vec<String> {
        self.lock().removed.clone()
    }

    /// Every stage call so far, in order.
    pub fn calls(&self) -> Vec<Stage> {
        self.lock().calls.clone()
    }

    pub fn count(&self, stage: Stage) -> usize {
        self.lock().calls.iter().filter(|s| **s == stage).count()
    }

    pub fn triggers(&self) -> u32 {
        self.lock().triggers
    }

    /// The next calls of `stage` do these, in order, then their work as usual.
    pub fn script(&self, stage: Stage, actions: impl IntoIterator<Item = Action>) {
        self.lock().script.entry(stage).or_default().extend(actions);
    }

    /// Whether a call of `stage` is waiting in a [`Action::Block`].
    pub fn is_blocked(&self, stage: Stage) -> bool {
        self.lock().blocked.contains(&stage)
    }

    /// Lets every blocked call go on.
    pub fn unblock(&self) {
        self.unblock.notify_waiters();
    }

    /// Waits until a call of `stage` blocks (a test then kills or stops the engine).
    pub async fn wait_blocked(&self, stage: Stage) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !self.is_blocked(stage) {
            assert!(tokio::time::Instant::now() < deadline, "{stage:?} never blocked; calls: {:?}", self.calls());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Records a call and plays its script: an error to return, or nothing.
    async fn enter(&self, stage: Stage) -> Result<(), ConnectorError> {
        let action = {
            let mut s = self.lock();
            s.calls.push(stage);
            s.script.get_mut(&stage).and_then(VecDeque::pop_front)
        };
        match action {
            None => Ok(()),
            Some(Action::FailTransient) => Err(transient(&format!("{stage:?}"))),
            Some(Action::FailOperator) => Err(ConnectorError::new(
                ErrorClass::NeedsOperator,
                format!("the fake {stage:?} needs an operator"),
                "scripted",
            )),
            Some(Action::Panic) => panic!("scripted panic in {stage:?}"),
            Some(Action::Block) => {
                let unblocked = self.unblock.notified();
                tokio::pin!(unblocked);
                unblocked.as_mut().enable();
                self.lock().blocked.push(stage);
                let guard = Unmark(self.clone(), stage);
                unblocked.await;
                drop(guard);
                Ok(())
            }
        }
    }
}

/// Clears a blocked mark however the blocked call ends (unblocked or dropped).
struct Unmark(FakeWorld, Stage);

impl Drop for Unmark {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        if let Some(i) = s.blocked.iter().position(|b| *b == self.1) {
            s.blocked.remove(i);
        }
    }
}

/// The fake family's connector.
#[derive(Clone)]
pub struct FakeConnector {
    pub world: FakeWorld,
    pub capabilities: Capabilities,
}

impl FakeConnector {
    /// A family like MySQL's: structure, a chunked full load, a stream with timestamps.
    pub fn chunked(world: FakeWorld) -> Self {
        Self { world, capabilities: dts_core::DatabaseFamily::MySql.capabilities() }
    }

    /// A family like Redis's: no structure, the snapshot inside the stream.
    pub fn in_stream(world: FakeWorld) -> Self {
        Self { world, capabilities: dts_core::DatabaseFamily::Redis.capabilities() }
    }

    fn copy_table(&self, table: &str) {
        let mut s = self.world.lock();
        let rows = s.source.get(table).cloned().unwrap_or_default();
        s.destination.insert(table.into(), rows);
    }
}

impl Checker for FakeConnector {
    async fn check(&self, _plan: &MigrationPlan, progress: ProgressFn<'_>) -> CheckReport {
        progress(1, 1);
        match self.world.enter(Stage::Check).await {
            Ok(()) => CheckReport { items: vec![CheckItem::passed("fake_connectivity", "the fake servers answer")] },
            Err(e) => CheckReport {
                items: vec![CheckItem::failed(
                    "fake_connectivity",
                    "the fake servers answer",
                    "an answer",
                    e.summary,
                    None,
                )],
            },
        }
    }
}

impl StructureMigrator for FakeConnector {
    async fn migrate_structure_phase(
        &self,
        _plan: &MigrationPlan,
        phase: StructurePhase,
        progress: ProgressFn<'_>,
    ) -> Result<StructureSummary, ConnectorError> {
        if phase == StructurePhase::AfterData {
            self.world.enter(Stage::Triggers).await?;
            self.world.lock().triggers += 1;
            return Ok(StructureSummary { triggers: 1, ..Default::default() });
        }
        self.world.enter(Stage::Structure).await?;
        let mut s = self.world.lock();
        let tables: Vec<String> = s.source.keys().cloned().collect();
        let mut created = 0;
        for t in &tables {
            if !s.structure.contains(t) {
                s.structure.push(t.clone());
                s.destination.entry(t.clone()).or_default();
                created += 1;
            }
        }
        progress(1, 1);
        Ok(StructureSummary { tables: created, skipped: tables.len() as u64 - created, ..Default::default() })
    }
}

impl FullLoader for FakeConnector {
    /// One chunk per table, recorded as `done/<table>` once copied; the snapshot position is the
    /// log's length when the first attempt started.
    async fn load(
        &self,
        _plan: &MigrationPlan,
        checkpoints: &dyn Checkpoints,
        progress: ProgressFn<'_>,
    ) -> Result<LoadSummary, ConnectorError> {
        self.world.enter(Stage::Load).await?;
        let snapshot = match checkpoints.get("snapshot").await? {
            Some(v) => v.parse::<usize>().unwrap_or(0),
            None => {
                let at = self.world.lock().log.len();
                checkpoints.put("snapshot", &at.to_string()).await?;
                at
            }
        };
        let tables: Vec<String> = self.world.lock().source.keys().cloned().collect();
        let (mut rows, mut resumed) = (0, 0);
        for (i, t) in tables.iter().enumerate() {
            if checkpoints.get(&format!("done/{t}")).await?.is_some() {
                resumed += 1;
                continue;
            }
            self.copy_table(t);
            rows += self.world.lock().source.get(t).map_or(0, |r| r.len() as u64);
            checkpoints.put(&format!("done/{t}"), "1").await?;
            progress(i as u64 + 1, tables.len() as u64);
        }
        Ok(LoadSummary {
            tables: tables.len() as u64,
            chunks: tables.len() as u64 - resumed,
            chunks_resumed: resumed,
            rows,
            bytes: 0,
            lock_held_micros: 0,
            position: position(snapshot),
        })
    }
}

impl ChangeReplicator for FakeConnector {
    async fn current_position(&self, _plan: &MigrationPlan) -> Result<Position, ConnectorError> {
        self.world.enter(Stage::CurrentPosition).await?;
        Ok(position(self.world.lock().log.len()))
    }

    /// Applies the log from the checkpoint (or `start`; an in-stream family first copies every
    /// table, its snapshot), checkpointing after each applied entry.
    async fn replicate(
        &self,
        _plan: &MigrationPlan,
        start: Position,
        mode: StreamMode,
        checkpoints: &dyn Checkpoints,
        observer: &dyn ReplicationObserver,
    ) -> Result<Position, ConnectorError> {
        self.world.enter(Stage::Replicate).await?;
        let timestamps = self.capabilities.snapshot != SnapshotMode::InStream;
        let mut at = match checkpoints.get("position").await? {
            Some(v) => v.parse::<usize>().unwrap_or(0),
            None if self.capabilities.snapshot == SnapshotMode::InStream => {
                let (tables, at) = {
                    let s = self.world.lock();
                    (s.source.keys().cloned().collect::<Vec<_>>(), s.log.len())
                };
                for (i, t) in tables.iter().enumerate() {
                    self.copy_table(t);
                    observer.snapshot_progress(i as u64 + 1, tables.len() as u64);
                }
                checkpoints.put("position", &at.to_string()).await?;
                observer.snapshot_finished();
                at
            }
            None => offset(&start).unwrap_or(0),
        };
        if mode == StreamMode::SnapshotOnly {
            return Ok(position(at));
        }
        let mut target: Option<usize> = None;
        loop {
            let changed = self.world.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (entry, len) = {
                let s = self.world.lock();
                (s.log.get(at).cloned(), s.log.len())
            };
            match observer.completion() {
                Completion::Immediately => return Ok(position(at)),
                Completion::WaitForSync if target.is_none() => target = Some(len),
                _ => {}
            }
            if target.is_some_and(|t| at >= t) {
                return Ok(position(at));
            }
            match entry {
                Some(e) => {
                    {
                        let mut s = self.world.lock();
                        let table = s.destination.entry(e.table.clone()).or_default();
                        match &e.value {
                            Some(v) => table.insert(e.key, v.clone()),
                            None => table.remove(&e.key),
                        };
                    }
                    at += 1;
                    checkpoints.put("position", &at.to_string()).await?;
                    observer.applied(1);
                    let behind = (len - at) as u64;
                    observer.progress(Lag {
                        seconds: timestamps.then_some(0),
                        behind: Some(behind),
                        caught_up: behind == 0,
                    });
                }
                None => {
                    observer.progress(Lag { seconds: timestamps.then_some(0), behind: Some(0), caught_up: true });
                    let _ = tokio::time::timeout(Duration::from_millis(20), changed).await;
                }
            }
        }
    }
}

/// The fake's change stream.
pub struct FakeStream {
    world: FakeWorld,
    at: usize,
}

impl ChangeStream for FakeStream {
    async fn next_batch(&mut self, max_events: usize, idle: Duration) -> Result<Option<ChangeBatch>, ConnectorError> {
        let deadline = tokio::time::Instant::now() + idle;
        loop {
            let changed = self.world.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let entries: Vec<LogEntry> =
                self.world.lock().log.iter().skip(self.at).take(max_events.max(1)).cloned().collect();
            if !entries.is_empty() {
                let columns: Arc<[ColumnInfo]> = Arc::from(vec![
                    ColumnInfo { key: true, nullable: false, ..ColumnInfo::new("k", "bigint", 8) },
                    ColumnInfo { charset: Some("utf8mb4".into()), ..ColumnInfo::new("v", "text", 252) },
                ]);
                let mut events = Vec::new();
                for e in entries {
                    self.at += 1;
                    let image = |v: &str| vec![Value::Int(e.key), Value::Text(v.to_string())];
                    let (op, before, after) = match &e.value {
                        Some(v) => (RowOp::Insert, None, Some(image(v))),
                        None => (RowOp::Delete, Some(vec![Value::Int(e.key), Value::Null]), None),
                    };
                    events.push(ChangeEvent {
                        position: position(self.at),
                        index: 0,
                        timestamp_ms: 0,
                        server_id: 1,
                        transaction: None,
                        kind: ChangeKind::Row(RowChange {
                            database: "fake".into(),
                            schema: None,
                            table: e.table.clone(),
                            op,
                            columns: columns.clone(),
                            unique_keys: Arc::from(Vec::new()),
                            before,
                            after,
                        }),
                    });
                }
                return Ok(Some(ChangeBatch { events, end: Some(position(self.at)) }));
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Ok(None);
            }
        }
    }
}

impl ChangeSource for FakeConnector {
    type Stream = FakeStream;

    async fn changes(&self, _plan: &MigrationPlan, start: Position) -> Result<FakeStream, ConnectorError> {
        self.world.enter(Stage::Changes).await?;
        Ok(FakeStream { world: self.world.clone(), at: offset(&start).unwrap_or(0) })
    }
}

impl ConsistencyChecker for FakeConnector {
    async fn tables(&self, _plan: &MigrationPlan) -> Result<Vec<(String, String)>, ConnectorError> {
        Ok(self.world.lock().source.keys().map(|t| ("fake".to_string(), t.clone())).collect())
    }

    async fn compare(
        &self,
        _plan: &MigrationPlan,
        database: &str,
        table: &str,
        _options: &CompareOptions,
    ) -> Result<TableDiff, ConnectorError> {
        self.world.enter(Stage::Compare).await?;
        let s = self.world.lock();
        let (src, dst) =
            (s.source.get(table).cloned().unwrap_or_default(), s.destination.get(table).cloned().unwrap_or_default());
        let mut diff = TableDiff::new(database, table, Comparison::Rows);
        diff.source_rows = src.len() as u64;
        diff.destination_rows = dst.len() as u64;
        diff.missing_count = src.keys().filter(|k| !dst.contains_key(k)).count() as u64;
        diff.extra_count = dst.keys().filter(|k| !src.contains_key(k)).count() as u64;
        diff.different_count = src.iter().filter(|(k, v)| dst.get(k).is_some_and(|d| d != *v)).count() as u64;
        Ok(diff)
    }

    async fn repair_sql(
        &self,
        _plan: &MigrationPlan,
        diff: &TableDiff,
        _limit: usize,
    ) -> Result<Vec<String>, ConnectorError> {
        Ok(vec![format!("-- repair {}", diff.table)])
    }
}

impl Releaser for FakeConnector {
    async fn release(
        &self,
        plan: &MigrationPlan,
        reason: ReleaseReason,
        _checkpoints: &dyn Checkpoints,
    ) -> Result<(), ConnectorError> {
        self.world.enter(Stage::Release).await?;
        self.world.lock().releases.push((plan.job_id.clone(), reason));
        Ok(())
    }
}

impl dts_core::Connector for FakeConnector {
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
}

/// The fake change bus.
#[derive(Clone)]
pub struct FakeSink {
    pub world: FakeWorld,
}

impl ChangeSink for FakeSink {
    fn publish<'a>(
        &'a self,
        _plan: &'a MigrationPlan,
        batch: &'a ChangeBatch,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<(), ConnectorError>> + Send + 'a>> {
        Box::pin(async move {
            self.world.enter(Stage::Publish).await?;
            self.world.lock().published.extend(batch.events.iter().cloned());
            Ok(())
        })
    }

    fn heartbeat<'a>(
        &'a self,
        _plan: &'a MigrationPlan,
        _position: Option<&'a Position>,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<(), ConnectorError>> + Send + 'a>> {
        Box::pin(async move {
            self.world.lock().heartbeats += 1;
            Ok(())
        })
    }

    fn remove<'a>(
        &'a self,
        job_id: &'a str,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<(), ConnectorError>> + Send + 'a>> {
        Box::pin(async move {
            self.world.lock().removed.push(job_id.to_string());
            Ok(())
        })
    }
}
