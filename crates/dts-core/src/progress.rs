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
}

impl JobDetail {
    /// The plan of a job of this `MigrateType`, every step not run yet.
    pub fn plan(migrate_type: i64) -> Self {
        Self::plan_stages(crate::Stages::of_migrate_type(migrate_type))
    }

    /// The plan of a job as its spec declares it: its stages, and a consistency check when its
    /// `ConsistencyType` asks for one (after the data is there).
    pub fn for_spec(spec: &crate::MigrationSpec) -> Self {
        let mut d = Self::plan_stages(spec.stages());
        if spec.stages().full_data && crate::CheckScope::of(spec.options.consistency_type, None).is_some() {
            d.steps.push(StepInfo {
                step_no: d.steps.len() as i64 + 1,
                step_id: CONSISTENCY_STEP.into(),
                name: "consistency check".into(),
                status: StepStatus::NotRun,
                start_time: String::new(),
            });
        }
        d
    }

    /// The plan of a job running these stages, every step not run yet.
    pub fn plan_stages(stages: crate::Stages) -> Self {
        let mut names = vec![("Prepare", "preparation")];
        if stages.structure {
            names.push(("StructureMigration", "structure migration"));
        }
        if stages.full_data {
            names.push(("FullDataMigration", "full data migration"));
        }
        if stages.incremental {
            names.push(("IncrementalMigration", "incremental migration"));
        }
        let steps = names
            .into_iter()
            .enumerate()
            .map(|(i, (id, name))| StepInfo {
                step_no: i as i64 + 1,
                step_id: id.into(),
                name: name.into(),
                status: StepStatus::NotRun,
                start_time: String::new(),
            })
            .collect();
        Self { steps, ..Self::default() }
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
