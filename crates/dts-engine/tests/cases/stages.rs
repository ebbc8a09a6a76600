//! The stage sequence of each job kind, for a family with a chunked full load and for one
//! whose snapshot arrives inside its stream.

use dts_core::{JobEvent, JobKind, JobStatus, ReleaseReason, StepStatus};
use dts_store::COMPLETE_MODE_KEY;
use dts_test_support::Stage;

use crate::harness::{Family, Harness, INCREMENTAL_ONLY, MIGRATE_1, MIGRATE_2, MIGRATE_3};

pub async fn complete(h: &Harness, id: &str, mode: &str) {
    h.store.put_checkpoint(id, COMPLETE_MODE_KEY, mode).expect("complete mode");
    h.change(id, |j| j.apply(JobEvent::CompleteRequested));
}

#[tokio::test]
async fn a_structure_only_migration_runs_prepare_and_structure_then_succeeds_and_is_released() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a")]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_1, None);
    h.check_and_start(&id).await;
    let job = h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.steps(&id), ["Prepare", "StructureMigration"]);
    assert!(job.detail.steps.iter().all(|s| s.status == StepStatus::Success));
    assert_eq!(job.detail.progress, 100);
    assert_eq!(h.world.count(Stage::Structure), 1);
    assert_eq!(h.world.count(Stage::Load), 0);
    h.wait_released(&id).await;
    assert_eq!(h.world.releases(), vec![(id.clone(), ReleaseReason::FreshStart), (id, ReleaseReason::Ended)]);
}

#[tokio::test]
async fn a_full_data_migration_loads_every_table_then_creates_triggers_after_the_data() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("a", [(1, "x"), (2, "y")]);
    h.world.seed("b", [(7, "z")]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.steps(&id), ["Prepare", "StructureMigration", "FullDataMigration"]);
    assert_eq!(h.world.destination(), h.world.source());
    let calls = h.world.calls();
    let load = calls.iter().position(|s| *s == Stage::Load).expect("load");
    let triggers = calls.iter().position(|s| *s == Stage::Triggers).expect("triggers");
    assert!(load < triggers, "{calls:?}");
}

#[tokio::test]
async fn an_incremental_migration_reaches_ready_complete_and_wait_for_sync_ends_with_every_change() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a")]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_3, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    for k in 2..50 {
        h.world.write("t", k, Some("live"));
    }
    h.world.write("t", 1, None);
    complete(&h, &id, "waitForSync").await;
    let job = h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.world.destination(), h.world.source());
    assert_eq!(h.steps(&id), ["Prepare", "StructureMigration", "FullDataMigration", "IncrementalMigration"]);
    assert!(job.detail.applied_changes >= 49, "{:?}", job.detail);
    assert_eq!(h.world.triggers(), 1);
}

#[tokio::test]
async fn complete_immediately_ends_the_stream_at_once() {
    let mut h = Harness::new(Family::Chunked);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_3, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    complete(&h, &id, "immediately").await;
    h.wait_status(&id, JobStatus::Success).await;
}

#[tokio::test]
async fn an_incremental_only_synchronization_starts_at_the_position_of_its_first_start() {
    let mut h = Harness::new(Family::Chunked);
    h.world.write("t", 1, Some("before the job"));
    h.start();
    let id = h.create(JobKind::Synchronization, INCREMENTAL_ONLY, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    h.world.write("t", 2, Some("after"));
    h.wait_world("the change after the start arrives", |w| {
        w.destination().get("t").is_some_and(|t| t.contains_key(&2))
    })
    .await;
    assert_eq!(h.steps(&id), ["Prepare", "IncrementalMigration"]);
    assert!(!h.world.destination()["t"].contains_key(&1), "a change before the start is not replayed");
    assert_eq!(h.world.count(Stage::CurrentPosition), 1);
    h.restart().await;
    h.world.write("t", 3, Some("after a restart"));
    h.wait_world("the stream goes on after a restart", |w| {
        w.destination().get("t").is_some_and(|t| t.contains_key(&3))
    })
    .await;
    assert_eq!(h.world.count(Stage::CurrentPosition), 1, "the recorded start is reused");
}

#[tokio::test]
async fn an_in_stream_family_shows_no_structure_step_and_moves_to_incremental_when_its_snapshot_ends() {
    let mut h = Harness::new(Family::InStream);
    h.world.seed("k", [(1, "a"), (2, "b")]);
    h.start();
    let id = h.create(JobKind::Synchronization, MIGRATE_3, None);
    h.check_and_start(&id).await;
    let job = h.wait_status(&id, JobStatus::ReadyComplete).await;
    assert_eq!(h.steps(&id), ["Prepare", "FullDataMigration", "IncrementalMigration"]);
    assert_eq!(job.detail.step_now, 3);
    assert_eq!(job.detail.seconds_behind_master, 0);
    assert_eq!(h.world.count(Stage::Structure), 0);
    assert_eq!(h.world.count(Stage::Load), 0);
    h.world.write("k", 3, Some("c"));
    h.wait_world("a change after the snapshot arrives", |w| w.destination() == w.source()).await;
}

#[tokio::test]
async fn an_in_stream_full_data_job_ends_once_its_snapshot_is_at_the_destination() {
    let mut h = Harness::new(Family::InStream);
    h.world.seed("k", [(1, "a")]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.steps(&id), ["Prepare", "FullDataMigration"]);
    assert_eq!(h.world.destination(), h.world.source());
}

#[tokio::test]
async fn change_tracking_publishes_every_change_and_never_becomes_ready_complete() {
    let mut h = Harness::new(Family::Chunked);
    h.start();
    let id = h.create(JobKind::ChangeTracking, INCREMENTAL_ONLY, None);
    h.check_and_start(&id).await;
    h.wait_for(&id, "tracking step", |j| j.detail.step_no("ChangeTracking") == Some(j.detail.step_now)).await;
    for k in 0..20 {
        h.world.write("t", k, Some("v"));
    }
    h.wait_world("20 events published", |w| w.published().len() == 20).await;
    h.wait_world("a heartbeat on the idle source", |w| w.heartbeats() > 0).await;
    assert_eq!(h.job(&id).status, JobStatus::Running);
    assert_eq!(h.steps(&id), ["Prepare", "ChangeTracking"]);
    let job = h.wait_for(&id, "applied changes shown", |j| j.detail.applied_changes == 20).await;
    assert!(job.detail.retry.is_none());
}

#[tokio::test]
async fn a_changed_selection_restarts_tracking_at_its_checkpoint_without_repeating_or_losing_an_event() {
    let mut h = Harness::new(Family::Chunked);
    h.start();
    let id = h.create(JobKind::ChangeTracking, INCREMENTAL_ONLY, None);
    h.check_and_start(&id).await;
    h.wait_for(&id, "tracking step", |j| j.detail.step_no("ChangeTracking") == Some(j.detail.step_now)).await;
    for k in 0..5 {
        h.world.write("t", k, Some("v"));
    }
    h.wait_world("5 events published", |w| w.published().len() == 5).await;
    assert_eq!(h.world.count(Stage::Changes), 1);
    // As ModifySubscription stores it: the running job's selection changes in place.
    h.change(&id, |j| {
        j.spec.options.migrate_object = 2;
        j.spec.database_info = Some(r#"[{"Database":"fake"}]"#.into());
        Ok(())
    });
    h.wait_world("the stream opened again", |w| w.count(Stage::Changes) == 2).await;
    for k in 5..10 {
        h.world.write("t", k, Some("v"));
    }
    h.wait_world("10 events published", |w| w.published().len() >= 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let published = h.world.published();
    let mut positions: Vec<String> = published.iter().map(|e| e.position.to_string()).collect();
    assert_eq!(published.len(), 10, "each event once: {positions:?}");
    positions.dedup();
    assert_eq!(positions.len(), 10);
    let job = h.job(&id);
    assert_eq!((job.status, job.detail.step_no("ChangeTracking")), (JobStatus::Running, Some(job.detail.step_now)));
    assert!(job.errors.is_empty(), "{:?}", job.errors);
}

#[tokio::test]
async fn deleting_a_subscription_deletes_its_events_on_the_bus_once_its_task_ended() {
    let mut h = Harness::new(Family::Chunked);
    h.start();
    let id = h.create(JobKind::ChangeTracking, INCREMENTAL_ONLY, None);
    h.check_and_start(&id).await;
    h.wait_for(&id, "tracking step", |j| j.detail.step_no("ChangeTracking") == Some(j.detail.step_now)).await;
    let sync = h.create(JobKind::Synchronization, MIGRATE_3, None);
    h.store.delete_job_unchecked("default", &sync).unwrap();
    h.store.delete_job_unchecked("default", &id).unwrap();
    h.wait_released(&id).await;
    h.wait_released(&sync).await;
    assert_eq!(h.world.removed(), vec![id], "only the subscription has anything on the bus");
}

#[tokio::test]
async fn change_tracking_without_a_change_bus_fails_with_a_clear_error() {
    let mut h = Harness::new(Family::Chunked).without_bus();
    h.start();
    let id = h.create(JobKind::ChangeTracking, INCREMENTAL_ONLY, None);
    h.check_and_start(&id).await;
    let job = h.wait_status(&id, JobStatus::Failed).await;
    assert!(job.errors.last().unwrap().log.contains("no change bus"), "{:?}", job.errors);
}

#[tokio::test]
async fn a_consistency_check_after_the_full_load_reports_a_row_changed_behind_dts() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a"), (2, "b")]);
    h.world.script(Stage::Compare, [dts_test_support::Action::Block]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, Some(2));
    h.check_and_start(&id).await;
    h.world.wait_blocked(Stage::Compare).await;
    h.world.tamper("t", 2, "changed");
    h.world.unblock();
    let job = h.wait_status(&id, JobStatus::Success).await;
    let step = job.detail.steps.iter().find(|s| s.step_id == "ConsistencyCheck").expect("check step");
    assert_eq!(step.status, StepStatus::Failed);
    assert!(job.errors.iter().any(|e| e.log.contains('t')), "{:?}", job.errors);
}

#[tokio::test]
async fn a_failed_precheck_leaves_the_job_in_check_not_pass_without_running_anything() {
    let mut h = Harness::new(Family::Chunked);
    h.world.script(Stage::Check, [dts_test_support::Action::FailOperator]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.change(&id, |j| j.apply(JobEvent::CheckRequested));
    let job = h.wait_status(&id, JobStatus::CheckNotPass).await;
    assert_eq!(job.check.flag, 0);
    assert_eq!(h.world.count(Stage::Structure), 0);
}
