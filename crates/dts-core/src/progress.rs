//! What a running job shows: its steps (`Detail.StepInfo`), progress and lag.

use serde::{Deserialize, Serialize};

/// The step id of the data consistency check.
pub const CONSISTENCY_STEP: &str = "ConsistencyCheck";

/// `MigrateStepDetailInfo.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub enum StepStatus {
    Default = 0,
    Success = 1,
    Failed = 2,
    Running = 3,
    NotRun = 4,
}

impl From<StepStatus> for i64 {
    fn from(s: StepStatus) -> i64 {
        s as i64
    }
}

impl TryFrom<i64> for StepStatus {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        Ok(match v {
            0 => Self::Default,
            1 => Self::Success,
            2 => Self::Failed,
            3 => Self::Running,
            4 => Self::NotRun,
            _ => return Err(format!("unknown step status {v}")),
        })
    }
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    pub step_no: i64,
    /// English identifier, e.g. `StructureMigration`.
    pub step_id: String,
    pub name: String,
    pub status: StepStatus,
    /// `yyyy-mm-dd hh:mm:ss`, empty until the step starts.
    pub start_time: String,
}

/// The live detail of a job, stored with it and returned as `MigrateJobInfo.Detail`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDetail {
    pub steps: Vec<StepInfo>,
    /// 1-based number of the current step, 0 before the job starts.
    pub step_now: i64,
    /// Overall percent.
    pub progress: i64,
    /// Percent of the current step.
    pub current_step_progress: i64,
    pub seconds_behind_master: i64,
    pub master_slave_distance: i64,
    /// Two-way synchronization: conflicts settled by the later-commit rule.
    #[serde(default)]
    pub conflicts: u64,
    /// Row changes (or commands) applied by the incremental step since the job started.
    #[serde(default)]
    pub applied_changes: u64,
    /// Row changes applied per second, over the last few seconds.
    #[serde(default)]
    pub apply_rate: u64,
    /// Log left behind the source in the family's unit (binlog bytes, replication offset).
    #[serde(default)]
    pub behind: u64,
    /// An outage being ridden out (transient errors retried), cleared when the step goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryState>,
    /// What the operator should know about the job's stream, newest last (at most
    /// [`NOTES_KEPT`]): a full resync instead of a resume, source settings changed and restored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Notes kept in a job's detail.
pub const NOTES_KEPT: usize = 20;

impl JobDetail {
    /// Adds a note, dropping the oldest beyond [`NOTES_KEPT`].
    pub fn add_note(&mut self, note: String) {
        self.notes.push(note);
        let over = self.notes.len().saturating_sub(NOTES_KEPT);
        self.notes.drain(..over);
    }
}

/// The step id of a change-tracking job's publishing step.
pub const TRACKING_STEP: &str = "ChangeTracking";

/// The steps a job shows and runs, in order: the one pure function of (job kind, stages
/// asked, whether a consistency check is asked, the family's capabilities). Both API dialects
/// show these (StepInfo, Alibaba's JobCode steps) and the engine runs them.
pub fn plan_steps(
    kind: crate::JobKind,
    stages: crate::Stages,
    consistency: bool,
    caps: &crate::connector::Capabilities,
) -> Vec<(&'static str, &'static str)> {
    use crate::connector::SnapshotMode;
    let mut steps = vec![("Prepare", "preparation")];
    if kind == crate::JobKind::ChangeTracking {
        steps.push((TRACKING_STEP, "change tracking"));
        return steps;
    }
    if stages.structure && caps.structure {
        steps.push(("StructureMigration", "structure migration"));
    }
    let full = stages.full_data && caps.snapshot != SnapshotMode::None;
    if full {
        steps.push(("FullDataMigration", "full data migration"));
    }
    if stages.incremental {
        steps.push(("IncrementalMigration", "incremental migration"));
    }
    if consistency && full && caps.consistency_check {
        steps.push((CONSISTENCY_STEP, "consistency check"));
    }
    steps
}

/// An outage a step is riding out: transient errors retried since `since`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryState {
    /// `yyyy-mm-dd hh:mm:ss` of the first failed attempt.
    pub since: String,
    pub attempts: u32,
    /// The step retried.
    pub step: String,
    /// What failed (our summary, never a server's text).
    pub error: String,
}

impl JobDetail {
    /// The plan of a job of this `MigrateType` over a MySQL-family route, every step not run yet.
    pub fn plan(migrate_type: i64) -> Self {
        Self::with_steps(&plan_steps(
            crate::JobKind::Migration,
            crate::Stages::of_migrate_type(migrate_type),
            false,
            &crate::DatabaseFamily::MySql.capabilities(),
        ))
    }

    /// The plan of a job as declared, with its family's declared capabilities (the engine
    /// replaces it with its connector's when the job starts).
    pub fn for_job(kind: crate::JobKind, spec: &crate::MigrationSpec) -> Self {
        let caps = crate::DatabaseFamily::of(&spec.source.database_type)
            .unwrap_or(crate::DatabaseFamily::MySql)
            .capabilities();
        let check = crate::CheckScope::of(spec.options.consistency_type, None).is_some();
        Self::with_steps(&plan_steps(kind, spec.stages(), check, &caps))
    }

    /// A plan of these steps, every step not run yet.
    pub fn with_steps(steps: &[(&str, &str)]) -> Self {
        let steps = steps
            .iter()
            .enumerate()
            .map(|(i, (id, name))| StepInfo {
                step_no: i as i64 + 1,
                step_id: (*id).into(),
                name: (*name).into(),
                status: StepStatus::NotRun,
                start_time: String::new(),
            })
            .collect();
        Self { steps, ..Self::default() }
    }

    /// Replaces the steps with `steps` when they differ (the engine's connector knows best),
    /// keeping the status of steps that stay.
    pub fn replan(&mut self, steps: &[(&str, &str)]) {
        let same = self.steps.len() == steps.len() && self.steps.iter().zip(steps).all(|(a, (id, _))| a.step_id == *id);
        if same {
            return;
        }
        let old = std::mem::take(&mut self.steps);
        let mut fresh = Self::with_steps(steps).steps;
        for s in &mut fresh {
            if let Some(o) = old.iter().find(|o| o.step_id == s.step_id) {
                s.status = o.status;
                s.start_time = o.start_time.clone();
            }
        }
        self.steps = fresh;
    }

    /// Marks step `step_no` running (and every earlier one successful).
    pub fn begin_step(&mut self, step_no: i64, now: &str) {
        for s in &mut self.steps {
            if s.step_no < step_no && s.status != StepStatus::Success {
                s.status = StepStatus::Success;
            }
            if s.step_no == step_no {
                s.status = StepStatus::Running;
                if s.start_time.is_empty() {
                    s.start_time = now.to_string();
                }
            }
        }
        self.step_now = step_no;
        self.current_step_progress = 0;
        self.recompute_progress();
    }

    /// The number of the step with this id, if the job has it.
    pub fn step_no(&self, step_id: &str) -> Option<i64> {
        self.steps.iter().find(|s| s.step_id == step_id).map(|s| s.step_no)
    }

    /// Sets the current step's percent.
    pub fn set_step_progress(&mut self, percent: i64) {
        self.current_step_progress = percent.clamp(0, 100);
        self.recompute_progress();
    }

    /// Sets one step's status (a step that runs beside the current one, like a consistency
    /// check during replication), recording its start time when it starts.
    pub fn set_step_status(&mut self, step_id: &str, status: StepStatus, now: &str) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.step_id == step_id) {
            s.status = status;
            if status == StepStatus::Running && s.start_time.is_empty() {
                s.start_time = now.to_string();
            }
        }
    }

    /// Every step successful (a step that failed on its own, like a consistency check that
    /// found differences, stays failed), progress 100.
    pub fn finish(&mut self) {
        for s in &mut self.steps {
            if s.status != StepStatus::Failed {
                s.status = StepStatus::Success;
            }
        }
        self.current_step_progress = 100;
        self.progress = 100;
    }

    /// The running step failed.
    pub fn fail_current(&mut self) {
        for s in &mut self.steps {
            if s.status == StepStatus::Running {
                s.status = StepStatus::Failed;
            }
        }
    }

    fn recompute_progress(&mut self) {
        let total = self.steps.len().max(1) as i64;
        let done = (self.step_now - 1).max(0);
        self.progress = ((done * 100 + self.current_step_progress) / total).clamp(0, 100);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::connector::{Capabilities, SnapshotMode};
    use crate::{JobKind, Stages};

    fn caps(structure: bool, snapshot: SnapshotMode, check: bool) -> Capabilities {
        Capabilities { structure, snapshot, two_way: false, ddl_in_stream: false, consistency_check: check }
    }

    #[test]
    fn steps_follow_kind_stages_and_capabilities() {
        let mysql = caps(true, SnapshotMode::Chunked, true);
        let redis = caps(false, SnapshotMode::InStream, true);
        let stream_only = caps(false, SnapshotMode::None, false);
        let all = Stages { structure: true, full_data: true, incremental: true };
        let full = Stages { structure: true, full_data: true, incremental: false };
        let structure = Stages { structure: true, full_data: false, incremental: false };
        let incremental = Stages { structure: false, full_data: false, incremental: true };
        let table: &[(JobKind, Stages, bool, Capabilities, &[&str])] = &[
            (JobKind::Migration, structure, false, mysql, &["Prepare", "StructureMigration"]),
            (JobKind::Migration, full, false, mysql, &["Prepare", "StructureMigration", "FullDataMigration"]),
            (
                JobKind::Migration,
                full,
                true,
                mysql,
                &["Prepare", "StructureMigration", "FullDataMigration", "ConsistencyCheck"],
            ),
            (
                JobKind::Migration,
                all,
                true,
                mysql,
                &["Prepare", "StructureMigration", "FullDataMigration", "IncrementalMigration", "ConsistencyCheck"],
            ),
            (JobKind::Synchronization, incremental, true, mysql, &["Prepare", "IncrementalMigration"]),
            (JobKind::Migration, full, true, redis, &["Prepare", "FullDataMigration", "ConsistencyCheck"]),
            (JobKind::Synchronization, all, false, redis, &["Prepare", "FullDataMigration", "IncrementalMigration"]),
            (JobKind::Migration, structure, false, redis, &["Prepare"]),
            (JobKind::Migration, all, true, stream_only, &["Prepare", "IncrementalMigration"]),
            (JobKind::ChangeTracking, incremental, true, mysql, &["Prepare", "ChangeTracking"]),
            (JobKind::ChangeTracking, all, false, redis, &["Prepare", "ChangeTracking"]),
        ];
        for (kind, stages, check, caps, want) in table {
            let got: Vec<&str> = plan_steps(*kind, *stages, *check, caps).into_iter().map(|(id, _)| id).collect();
            assert_eq!(&got, want, "{kind:?} {stages:?} check={check} {caps:?}");
        }
    }

    #[test]
    fn a_replan_keeps_the_status_of_steps_that_stay() {
        let mut d = JobDetail::plan(3);
        d.begin_step(2, "2026-01-01 00:00:00");
        d.replan(&[("Prepare", "preparation"), ("FullDataMigration", "full"), ("IncrementalMigration", "inc")]);
        assert_eq!(d.steps.len(), 3);
        assert_eq!(d.steps[0].status, StepStatus::Success);
        assert_eq!(d.steps[1].status, StepStatus::NotRun);
    }

    #[test]
    fn a_structure_job_has_two_steps_and_progress_follows_them() {
        let mut d = JobDetail::plan(1);
        assert_eq!(d.steps.len(), 2);
        d.begin_step(1, "2026-01-01 00:00:00");
        assert_eq!(d.progress, 0);
        d.begin_step(2, "2026-01-01 00:00:01");
        assert_eq!(d.steps[0].status, StepStatus::Success);
        assert_eq!(d.progress, 50);
        d.set_step_progress(50);
        assert_eq!(d.progress, 75);
        d.finish();
        assert_eq!(d.progress, 100);
    }
}
