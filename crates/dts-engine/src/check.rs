//! The precheck task: resolves a job's plan, runs its family's checks on both servers, stores
//! the report and moves the job to CheckPass or CheckNotPass (a check cannot fail the job).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dts_core::{CheckItem, CheckReport, Checker, JobEvent, JobStatus};
use dts_store::{CheckState, JobRecord, StoreError};
use tokio_util::sync::CancellationToken;

use crate::checkpoints::blocking;
use crate::{ConnectorRegistry, Engine, resolve_plan};

fn failed_plan(reason: String) -> CheckReport {
    CheckReport {
        items: vec![CheckItem::failed(
            "job_plan",
            "the job's endpoints and objects resolve",
            "a usable job",
            reason,
            None,
        )],
    }
}

impl<R: ConnectorRegistry> Engine<R> {
    pub(crate) async fn run_check(self: Arc<Self>, job: JobRecord, token: CancellationToken) {
        let id = job.job_id.clone();
        tracing::info!(job_id = %id, "precheck started");
        let started = self
            .update(&id, |j| {
                if j.status != JobStatus::Checking {
                    return Err(StoreError::Rejected("no longer checking".into()));
                }
                j.check.status = "running".into();
                j.check.progress = 0;
                Ok(())
            })
            .await;
        if !started {
            return;
        }
        let progress = Arc::new(AtomicI64::new(0));
        let instances = self.instances.clone();
        let (store, for_plan) = (self.store.clone(), job.clone());
        let plan = blocking(&store, move |s| resolve_plan(s, &for_plan, &instances)).await;
        let report = match plan {
            Err(e) => failed_plan(e.to_string()),
            Ok(plan) => match self.registry.connector(&plan.route) {
                Err(e) => failed_plan(e.summary),
                Ok(connector) => {
                    let p = progress.clone();
                    let report_progress = move |done: u64, total: u64| {
                        p.store((done * 100 / total.max(1)) as i64, Ordering::Relaxed);
                    };
                    let fut = connector.check(&plan, &report_progress);
                    tokio::pin!(fut);
                    let mut tick = tokio::time::interval(Duration::from_millis(500));
                    loop {
                        tokio::select! {
                            r = &mut fut => break r,
                            _ = token.cancelled() => return,
                            _ = tick.tick() => {
                                let pct = progress.load(Ordering::Relaxed).min(99);
                                self.update(&id, move |j| { j.check.progress = pct; Ok(()) }).await;
                            }
                        }
                    }
                }
            },
        };
        let passed = report.passed();
        let message = if passed { "ok".to_string() } else { report.failure_summary() };
        self.update(&id, move |j| {
            j.apply(if passed { JobEvent::CheckPassed } else { JobEvent::CheckFailed })?;
            // Alibaba's default after ConfigureDtsJob, or Tencent's `startAfterCheck`.
            let auto_start = passed && (j.spec.auto_start || j.spec.options.starts_after_check());
            j.check = CheckState {
                status: "finished".into(),
                progress: 100,
                flag: i64::from(passed),
                error_code: if passed { 0 } else { -1 },
                error_message: message,
                report: Some(report),
            };
            if auto_start {
                // As StartMigrateJob/StartDtsJob would (Alibaba's default after ConfigureDtsJob).
                j.start_fresh()?;
            }
            Ok(())
        })
        .await;
        tracing::info!(job_id = %id, passed, "precheck finished");
        // A job that started by itself runs at the engine's next look.
        self.wake.notify_one();
    }
}
