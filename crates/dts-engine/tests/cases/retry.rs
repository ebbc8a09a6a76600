//! Transient errors are retried (within the budget for a migration, without a deadline for a
//! stream that runs as long as the job lives, shown in its detail meanwhile); errors an operator
//! must fix, and panics, fail the job at once with the step in ErrorInfo.

use std::time::Duration;

use dts_core::{JobKind, JobStatus, StepStatus};
use dts_test_support::{Action, Stage};

use crate::harness::{Family, Harness, INCREMENTAL_ONLY, MIGRATE_2};

#[tokio::test]
async fn transient_errors_in_a_step_are_retried_and_the_job_succeeds() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a")]);
    h.world.script(Stage::Load, [Action::FailTransient, Action::FailTransient]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.check_and_start(&id).await;
    let job = h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.world.count(Stage::Load), 3);
    assert!(job.detail.retry.is_none(), "the outage is over: {:?}", job.detail.retry);
    assert_eq!(h.world.destination(), h.world.source());
}

#[tokio::test]
async fn a_migration_fails_once_its_retry_budget_is_spent() {
    let mut h = Harness::new(Family::Chunked);
    h.config.retry_budget = Duration::from_millis(300);
    h.world.script(Stage::Load, std::iter::repeat_n(Action::FailTransient, 1000));
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.check_and_start(&id).await;
    let job = h.wait_status(&id, JobStatus::Failed).await;
    let log = &job.errors.last().expect("ErrorInfo").log;
    assert!(log.starts_with("[FullDataMigration]") && log.contains("unreachable"), "{log}");
    let step = job.detail.steps.iter().find(|s| s.step_id == "FullDataMigration").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
}

#[tokio::test]
async fn a_synchronization_rides_out_a_source_outage_longer_than_the_budget_and_shows_it_meanwhile() {
    let mut h = Harness::new(Family::Chunked);
    h.config.retry_budget = Duration::from_millis(100);
    h.start();
    let id = h.create(JobKind::Synchronization, INCREMENTAL_ONLY, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    // The stream breaks (a restart of dts reconnects) and the source stays away for a while.
    h.world.script(Stage::Replicate, std::iter::repeat_n(Action::FailTransient, 8));
    h.restart().await;
    let during =
        h.wait_for(&id, "the outage in the detail", |j| j.detail.retry.as_ref().is_some_and(|r| r.attempts >= 3)).await;
    let retry = during.detail.retry.clone().unwrap();
    assert_eq!(retry.step, "IncrementalMigration");
    assert!(retry.error.contains("unreachable"), "{retry:?}");
    assert_eq!(during.status, JobStatus::ReadyComplete);
    h.world.write("t", 1, Some("after the outage"));
    h.wait_world("the change after the outage arrives", |w| w.destination() == w.source()).await;
    h.wait_for(&id, "the outage cleared", |j| j.detail.retry.is_none()).await;
    assert!(h.world.count(Stage::Replicate) >= 9);
}

#[tokio::test]
async fn an_error_an_operator_must_fix_fails_the_job_at_once() {
    let mut h = Harness::new(Family::Chunked);
    h.world.script(Stage::Structure, [Action::FailOperator]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.check_and_start(&id).await;
    let job = h.wait_status(&id, JobStatus::Failed).await;
    assert_eq!(h.world.count(Stage::Structure), 1);
    assert!(job.errors.last().unwrap().log.starts_with("[StructureMigration]"), "{:?}", job.errors);
    assert_eq!(h.world.count(Stage::Load), 0);
}

#[tokio::test]
async fn a_panicking_stage_fails_the_job_instead_of_leaving_it_stuck_and_it_can_start_again() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a")]);
    h.world.script(Stage::Load, [Action::Panic]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.check_and_start(&id).await;
    let job = h.wait_status(&id, JobStatus::Failed).await;
    assert!(job.errors.last().unwrap().log.contains("internal error"), "{:?}", job.errors);
    // Another start works: nothing is left marked running.
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.world.destination(), h.world.source());
}
