//! Engine tests without any database server: the engine drives jobs of a fake family
//! (`dts_test_support::fake_family`) over a real metadata store in a temp dir. Every stage
//! sequence per job kind, kill/restart resume at every stage boundary, stop/suspend/resume,
//! transient versus fatal errors, and the release of a job's resources.

#[path = "cases/harness.rs"]
mod harness;
#[path = "cases/lifecycle.rs"]
mod lifecycle;
#[path = "cases/release.rs"]
mod release;
#[path = "cases/restart.rs"]
mod restart;
#[path = "cases/retry.rs"]
mod retry;
#[path = "cases/stages.rs"]
mod stages;
