//! Stop, suspend and resume of running jobs.

use dts_core::{JobEvent, JobKind, JobStatus};
use dts_store::STOPPED_ON_REQUEST;
use dts_test_support::{Action, Stage};

use crate::harness::{Family, Harness, MIGRATE_2, MIGRATE_3};

#[tokio::test]
async fn stop_cancels_a_running_step_and_the_job_ends_stopped_on_request() {
    let mut h = Harness::new(Family::Chunked);
    h.world.script(Stage::Load, [Action::Block]);
    h.start();
    let id = h.create(JobKind::Migration, MIGRATE_2, None);
    h.check_and_start(&id).await;
    h.world.wait_blocked(Stage::Load).await;
    h.change(&id, |j| j.apply(JobEvent::StopRequested));
    let job = h.wait_status(&id, JobStatus::Failed).await;
    assert_eq!(job.errors.last().unwrap().log, STOPPED_ON_REQUEST);
    assert!(!h.world.is_blocked(Stage::Load), "the load was cancelled");
}

#[tokio::test]
async fn a_suspended_synchronization_resumes_from_its_checkpoint_with_nothing_lost() {
    let mut h = Harness::new(Family::Chunked);
    h.world.seed("t", [(1, "a")]);
    h.start();
    let id = h.create(JobKind::Synchronization, MIGRATE_3, None);
    h.check_and_start(&id).await;
    h.wait_status(&id, JobStatus::ReadyComplete).await;
    h.change(&id, |j| j.apply(JobEvent::Suspend));
    h.wait_world("the stream stopped", |_| true).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let calls_before = h.world.count(Stage::Replicate);
    h.world.write("t", 2, Some("while suspended"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!h.world.destination()["t"].contains_key(&2), "nothing is applied while suspended");
    h.change(&id, |j| j.apply(JobEvent::Resume));
    h.wait_world("the change made while suspended arrives", |w| w.destination() == w.source()).await;
    assert_eq!(h.world.count(Stage::Load), 1, "a resume does not load again");
    assert_eq!(h.world.count(Stage::Replicate), calls_before + 1);
    assert!(h.store.pending_release(&id).unwrap().is_none(), "a suspension releases nothing");
}
