//! A crash (the engine dropped mid-stage) at every stage boundary and inside the stream: the
//! next engine resumes the job from its checkpoints, repeating only what must be repeated.

use dts_core::{JobKind, JobStatus};
use dts_test_support::{Action, Stage};

use crate::harness::{Family, Harness, INCREMENTAL_ONLY, MIGRATE_2, MIGRATE_3};
use crate::stages::complete;

/// Kills the engine while `stage` is entered for the first time, then lets a new engine finish.
async fn killed_in(stage: Stage, stages: dts_core::Stages, consistency: Option<i64>) -> (Harness, String) {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("a", [(1, "x"), (2, "y")]);
    h.world.seed("b", [(3, "z")]);
    h.world.script(stage, [Action::Block]);
    h.start();
    let id = h.create(JobKind::Migration, stages, consistency);
    h.check_and_start(&id).await;
    h.world.wait_blocked(stage).await;
    h.restart().await;
    (h, id)
}

#[tokio::test]
async fn a_crash_during_the_structure_step_migrates_the_structure_again_and_finishes() {
    let (h, id) = killed_in(Stage::Structure, MIGRATE_2, None).await;
    h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.world.count(Stage::Structure), 2);
    assert_eq!(h.world.count(Stage::Load), 1);
    assert_eq!(h.world.destination(), h.world.source());
}

#[tokio::test]
async fn a_crash_during_the_full_load_resumes_the_load_without_comparing_the_structure_again() {
    let (h, id) = killed_in(Stage::Load, MIGRATE_2, None).await;
    h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.world.count(Stage::Structure), 1, "{:?}", h.world.calls());
    assert_eq!(h.world.count(Stage::Load), 2);
    assert_eq!(h.world.destination(), h.world.source());
}

#[tokio::test]
async fn a_crash_before_triggers_creates_them_after_the_resumed_data() {
    let (h, id) = killed_in(Stage::Triggers, MIGRATE_2, None).await;
    h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.world.triggers(), 1);
    assert_eq!(h.world.count(Stage::Structure), 1);
}

#[tokio::test]
async fn a_crash_at_the_start_of_the_stream_goes_back_to_the_stream_without_loading_again() {
    let (h, id) = killed_in(Stage::Replicate, MIGRATE_3, None).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    assert_eq!(h.world.count(Stage::Load), 1);
    assert_eq!(h.world.count(Stage::Structure), 1);
    h.world.write("a", 9, Some("new"));
    complete(&h, &id, "waitForSync").await;
    h.wait_status(&id, JobStatus::Success).await;
    assert_eq!(h.world.destination(), h.world.source());
}

#[tokio::test]
async fn a_crash_during_the_consistency_check_runs_the_check_again() {
    let (h, id) = killed_in(Stage::Compare, MIGRATE_2, Some(2)).await;
    let job = h.wait_status(&id, JobStatus::Success).await;
    assert!(h.world.count(Stage::Compare) >= 3, "{:?}", h.world.calls());
    assert!(job.errors.is_empty(), "{:?}", job.errors);
}

#[tokio::test]
async fn a_crash_while_replicating_resumes_from_the_stream_checkpoint_with_nothing_lost() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a")]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_3, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    for k in 0..100 {
        h.world.write("t", k, Some("burst"));
        if k == 50 {
            h.restart().await;
        }
    }
    h.wait_world("every change applied after the crash", |w| w.destination() == w.source()).await;
    assert_eq!(h.world.count(Stage::Load), 1);
    assert_eq!(h.job(&id).status, JobStatus::ReadyComplete);
}

#[tokio::test]
async fn a_crash_of_an_in_stream_family_mid_stream_resumes_without_a_new_snapshot() {
    let mut h = Harness::new(Family::InStream);
    h.world.seed("k", [(1, "a")]);
    h.start();
    let id = h.create(JobKind::Synchronization, MIGRATE_3, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    h.restart().await;
    h.world.write("k", 2, Some("b"));
    h.wait_world("the change after the crash arrives", |w| w.destination() == w.source()).await;
    let job = h.job(&id);
    assert_eq!(job.detail.step_now, 3, "still incremental: {:?}", job.detail);
}

#[tokio::test]
async fn a_crash_during_change_tracking_republishes_only_what_the_bus_had_not_acknowledged() {
    let mut h = Harness::new(Family::Chunked);
    h.start();
    let id = h.create(JobKind::ChangeTracking, INCREMENTAL_ONLY, None);
    h.check_and_start(&id).await;
    h.wait_for(&id, "tracking", |j| j.detail.step_no("ChangeTracking") == Some(j.detail.step_now)).await;
    for k in 0..10 {
        h.world.write("t", k, Some("v"));
    }
    h.wait_world("10 events published", |w| w.published().len() == 10).await;
    // The next publish hangs (no acknowledgement) when dts dies.
    h.world.script(Stage::Publish, [Action::Block]);
    for k in 10..15 {
        h.world.write("t", k, Some("v"));
    }
    h.world.wait_blocked(Stage::Publish).await;
    h.restart().await;
    h.wait_world("every event published", |w| w.published().len() >= 15).await;
    let published = h.world.published();
    let mut ids: Vec<String> = published.iter().map(|e| format!("{}#{}", e.position, e.index)).collect();
    assert_eq!(published.len(), 15, "the 10 acknowledged events are not published again");
    ids.dedup();
    assert_eq!(ids.len(), 15);
}
