//! The engine under test: a store in a temp dir, the fake family, and an engine that can be
//! killed (shut down mid-stage) and started again on the same store and the same fake servers.
//! Jobs are created and moved the way the API moves them (the same store calls).

use std::sync::Arc;
use std::time::Duration;

use dts_core::{
    ChangeSink, ConnectorError, EndpointSpec, JobEvent, JobKind, JobStatus, MigrateOptions, MigrationSpec,
    ReleaseReason, Route, Stages,
};
use dts_engine::{ConnectorRegistry, Engine, EngineConfig};
use dts_store::{CheckState, JobRecord, NewJob, Store, now_string};
use dts_test_support::{FakeConnector, FakeSink, FakeWorld};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Registry {
    connector: FakeConnector,
    sink: Option<FakeSink>,
}

impl ConnectorRegistry for Registry {
    type Connector = FakeConnector;

    fn connector(&self, _route: &Route) -> Result<&FakeConnector, ConnectorError> {
        Ok(&self.connector)
    }

    fn change_sink(&self) -> Option<&dyn ChangeSink> {
        self.sink.as_ref().map(|s| s as &dyn ChangeSink)
    }
}

/// Which kind of fake family a test runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Structure, chunked full load, a stream with timestamps (like MySQL).
    Chunked,
    /// No structure, the snapshot inside the stream, no timestamps (like Redis).
    InStream,
}

pub struct Harness {
    _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub world: FakeWorld,
    family: Family,
    bus: bool,
    pub config: EngineConfig,
    wake: Arc<Notify>,
    running: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Harness {
    pub fn new(family: Family) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        Self {
            _dir: dir,
            store,
            world: FakeWorld::default(),
            family,
            bus: true,
            config: EngineConfig {
                poll_interval: Duration::from_millis(20),
                retry_budget: Duration::from_secs(2),
                retry_backoff_cap: Duration::from_millis(100),
                persist_interval: Duration::from_millis(20),
                ready_behind: 0,
                ..EngineConfig::default()
            },
            wake: Arc::new(Notify::new()),
            running: None,
        }
    }

    /// No change bus configured.
    pub fn without_bus(mut self) -> Self {
        self.bus = false;
        self
    }

    pub fn start(&mut self) {
        assert!(self.running.is_none(), "engine already running");
        let connector = match self.family {
            Family::Chunked => FakeConnector::chunked(self.world.clone()),
            Family::InStream => FakeConnector::in_stream(self.world.clone()),
        };
        let sink = self.bus.then(|| FakeSink { world: self.world.clone() });
        let engine = Engine::with_registry(
            self.store.clone(),
            Registry { connector, sink },
            Default::default(),
            self.wake.clone(),
            self.config.clone(),
        );
        let token = CancellationToken::new();
        let handle = tokio::spawn(engine.run(token.clone()));
        self.running = Some((token, handle));
    }

    /// Stops the engine as a crash would: every task is dropped where it is.
    pub async fn kill(&mut self) {
        let (token, handle) = self.running.take().expect("engine running");
        token.cancel();
        handle.await.expect("engine ends");
    }

    pub async fn restart(&mut self) {
        self.kill().await;
        self.start();
    }

    pub fn create(&self, kind: JobKind, stages: Stages, consistency_type: Option<i64>) -> String {
        let endpoint = EndpointSpec {
            database_type: "mysql".into(),
            access_type: "extranet".into(),
            ip: Some("127.0.0.1".into()),
            port: Some(3306),
            user: Some("root".into()),
            instance_id: None,
            region: None,
            extra: Default::default(),
        };
        let spec = MigrationSpec {
            auto_start: false,
            name: "fake".into(),
            options: MigrateOptions {
                run_mode: 1,
                expect_time: None,
                migrate_type: stages.migrate_type(),
                migrate_object: 1,
                consistency_type,
                is_override_root: None,
                extern_params: None,
                consistency_params: None,
            },
            source: endpoint.clone(),
            destination: endpoint,
            database_info: None,
            tags: Vec::new(),
            src_node_type: None,
            src_info_multi: Vec::new(),
            stages: Some(stages),
            loop_guard: None,
            conflict_policy: Default::default(),
        };
        let job = self
            .store
            .insert_job(NewJob {
                job_id: None,
                account_id: "default".into(),
                kind,
                spec,
                src_password: Some("pw".into()),
                dst_password: Some("pw".into()),
            })
            .expect("insert job");
        job.job_id
    }

    pub fn change(&self, id: &str, change: impl FnOnce(&mut JobRecord) -> Result<(), dts_store::StoreError>) {
        self.store.update_job(id, change).expect("job update");
        self.wake.notify_one();
    }

    /// CreateMigrateCheckJob, then (once it passed) StartMigrateJob, as the API does them.
    pub async fn check_and_start(&self, id: &str) {
        self.change(id, |j| {
            j.apply(JobEvent::CheckRequested)?;
            j.check = CheckState::starting();
            Ok(())
        });
        self.wait_status(id, JobStatus::CheckPass).await;
        self.change(id, |j| {
            j.apply(JobEvent::Started)?;
            j.request_release(ReleaseReason::FreshStart);
            j.detail = dts_core::JobDetail::for_job(j.kind, &j.spec);
            j.errors.clear();
            j.start_time = now_string();
            Ok(())
        });
    }

    pub fn job(&self, id: &str) -> JobRecord {
        self.store.job(id).expect("store").expect("job exists")
    }

    pub async fn wait_status(&self, id: &str, status: JobStatus) -> JobRecord {
        self.wait_for(id, &format!("status {status:?}"), |j| j.status == status).await
    }

    pub async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&JobRecord) -> bool) -> JobRecord {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let job = self.job(id);
            if done(&job) {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job never reached {what}: status {:?}, errors {:?}, detail {:?}, calls {:?}",
                job.status,
                job.errors,
                job.detail,
                self.world.calls()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `done` holds of the fake world.
    pub async fn wait_world(&self, what: &str, done: impl Fn(&FakeWorld) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done(&self.world) {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}; calls {:?}", self.world.calls());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the store has no release pending for `id`.
    pub async fn wait_released(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.store.pending_release(id).expect("store").is_some() {
            assert!(tokio::time::Instant::now() < deadline, "release of {id} never finished");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn steps(&self, id: &str) -> Vec<String> {
        self.job(id).detail.steps.iter().map(|s| s.step_id.clone()).collect()
    }

    pub fn has_checkpoint(&self, id: &str, key: &str) -> bool {
        self.store.checkpoint(id, key).expect("store").is_some()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some((token, _)) = &self.running {
            token.cancel();
        }
    }
}

pub const MIGRATE_1: Stages = Stages { structure: true, full_data: false, incremental: false };
pub const MIGRATE_2: Stages = Stages { structure: true, full_data: true, incremental: false };
pub const MIGRATE_3: Stages = Stages { structure: true, full_data: true, incremental: true };
pub const INCREMENTAL_ONLY: Stages = Stages { structure: false, full_data: false, incremental: true };
