//! Releasing what a job holds: after a delete (also of a running job), a reset, a fresh start
//! and the job's end; a failing release is retried and the checkpoints stay until it succeeds.

use dts_core::{JobEvent, JobKind, JobStatus, ReleaseReason};
use dts_test_support::{Action, Stage};

use crate::harness::{Family, Harness, MIGRATE_2, MIGRATE_3};

#[tokio::test]
async fn deleting_a_running_job_stops_it_releases_it_and_removes_it() {
    let mut h = Harness::new(Family::Chunked);
    h.start();
    let id = h.create(JobKind::Synchronization, MIGRATE_3, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    h.store.delete_job_unchecked("default", &id).unwrap();
    h.wait_released(&id).await;
    assert!(h.store.job_for_release(&id).unwrap().is_none(), "the row goes once released");
    assert!(h.world.releases().contains(&(id.clone(), ReleaseReason::Deleted)));
    let calls = h.world.count(Stage::Replicate);
    h.world.write("t", 1, Some("after the delete"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(h.world.count(Stage::Replicate), calls, "nothing runs for a deleted job");
}

#[tokio::test]
async fn a_failing_release_is_retried_and_the_checkpoints_stay_until_it_succeeds() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a")]);
    h.world.script(Stage::Replicate, [Action::Block]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_3, None);
    h.check_and_start(&id).await;
    h.world.wait_blocked(Stage::Replicate).await;
    // Deleted while running: the family's checkpoints must outlive the job's task until released.
    h.world.script(Stage::Release, [Action::FailTransient, Action::FailTransient, Action::Block]);
    h.store.delete_job_unchecked("default", &id).unwrap();
    h.world.wait_blocked(Stage::Release).await;
    assert!(h.has_checkpoint(&id, "mysql/done/t"), "the family's checkpoints stay while the release runs");
    assert!(h.has_checkpoint(&id, "engine/load_started"));
    h.world.unblock();
    h.wait_released(&id).await;
    assert!(!h.has_checkpoint(&id, "mysql/done/t"));
    assert!(h.world.count(Stage::Release) >= 4);
}

#[tokio::test]
async fn a_release_interrupted_by_a_crash_runs_again_after_the_restart() {
    let mut h = Harness::new(Family::Chunked);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.world.script(Stage::Release, [Action::Block]);
    h.store.delete_job_unchecked("default", &id).unwrap();
    h.world.wait_blocked(Stage::Release).await;
    h.restart().await;
    h.wait_released(&id).await;
    assert_eq!(h.world.releases(), vec![(id, ReleaseReason::Deleted)]);
}

#[tokio::test]
async fn a_fresh_start_releases_the_earlier_run_before_its_stages_and_clears_its_checkpoints() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a")]);
    h.world.script(Stage::Load, [Action::FailOperator]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::Failed).await;
    h.wait_released(&id).await;
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::Success).await;
    let releases: Vec<ReleaseReason> = h.world.releases().into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        releases,
        [ReleaseReason::FreshStart, ReleaseReason::Ended, ReleaseReason::FreshStart, ReleaseReason::Ended]
    );
    let calls = h.world.calls();
    let second_release = calls.iter().enumerate().filter(|(_, s)| **s == Stage::Release).nth(2).unwrap().0;
    let second_structure = calls.iter().enumerate().filter(|(_, s)| **s == Stage::Structure).nth(1).unwrap().0;
    assert!(second_release < second_structure, "{calls:?}");
}

#[tokio::test]
async fn a_reset_of_a_running_job_stops_it_and_releases_it() {
    let mut h = Harness::new(Family::Chunked);
    h.start();
    let id = h.create(JobKind::Synchronization, MIGRATE_3, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    h.change(&id, |j| {
        j.apply(JobEvent::Reset)?;
        j.request_release(ReleaseReason::Reset);
        Ok(())
    });
    h.wait_released(&id).await;
    assert!(h.world.releases().contains(&(id.clone(), ReleaseReason::Reset)));
    assert!(!h.has_checkpoint(&id, "engine/replicating"));
    assert_eq!(h.job(&id).status, JobStatus::Creating);
}

#[tokio::test]
async fn a_finished_job_is_released_once() {
    let mut h = Harness::new(Family::Chunked);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::Success).await;
    h.wait_released(&id).await;
    h.restart().await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let ended = h.world.releases().into_iter().filter(|(_, r)| *r == ReleaseReason::Ended).count();
    assert_eq!(ended, 1);
}

#[tokio::test]
async fn a_release_whose_plan_cannot_be_built_keeps_the_checkpoints_until_it_can() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a")]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_3, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    assert!(h.has_checkpoint(&id, "mysql/done/t"));
    let before = h.world.releases();
    // Reset while its source names an instance the registry no longer has (an operator edited
    // the configuration): nothing can be released now, and nothing may be forgotten either.
    h.change(&id, |j| {
        j.spec.source.ip = None;
        j.spec.source.instance_id = Some("cdb-removed".into());
        j.apply(JobEvent::Reset)?;
        j.request_release(ReleaseReason::Reset);
        Ok(())
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(h.store.pending_release(&id).unwrap().is_some(), "the release waits");
    assert!(h.has_checkpoint(&id, "mysql/done/t"), "the family's checkpoints stay while the plan cannot be built");
    assert_eq!(h.world.releases(), before, "no release ran");
    // A restart changes nothing about it.
    h.restart().await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(h.has_checkpoint(&id, "mysql/done/t"));
    // The registry (here: the spec) is fixed: the release runs, then the checkpoints go.
    h.change(&id, |j| {
        j.spec.source.ip = Some("127.0.0.1".into());
        j.spec.source.instance_id = None;
        Ok(())
    });
    h.wait_released(&id).await;
    assert_eq!(h.world.releases().last(), Some(&(id.clone(), ReleaseReason::Reset)));
    assert!(!h.has_checkpoint(&id, "mysql/done/t"));
}
