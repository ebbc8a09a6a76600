//! The consistency-check step of a job: which tables its `ConsistencyType` covers, comparing
//! them on the connector, the report (kept with the job, repair SQL included) and what the job
//! shows (the step's status, ErrorInfo naming the inconsistent tables).
//!
//! A check of a replicating job passes a settle window to the connector, so rows still in
//! flight are compared again instead of reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dts_core::{
    CONSISTENCY_STEP, CheckScope, CompareOptions, ConnectorError, ConsistencyChecker, ConsistencyReport, MigrationPlan,
    REPORT_ROWS_LIMIT, StepStatus,
};
use dts_store::{CONSISTENCY_REPORT_KEY, JobError, JobRecord, Store, now_string};

use crate::checkpoints::blocking;
use crate::{ConnectorRegistry, Engine};

/// Repair statements kept with a report, over all its tables.
const REPAIR_LIMIT: usize = 10_000;
/// Rows per chunk when only a sample of the rows is compared (finer chunks, finer sample).
const SAMPLE_CHUNK_ROWS: u64 = 10_000;

/// A stable pseudo-random order of tables for a job, so samples differ between jobs but not
/// between runs of one job.
fn shuffled(job_id: &str, mut tables: Vec<(String, String)>) -> Vec<(String, String)> {
    let rank = |t: &(String, String)| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in format!("{job_id}/{}.{}", t.0, t.1).bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    tables.sort_by_key(rank);
    tables
}

/// `percent` of `n`, rounded, at least one when the percentage is not 0.
fn share(n: usize, percent: u8) -> usize {
    if percent == 0 { 0 } else { ((n * usize::from(percent) + 50) / 100).max(1).min(n) }
}

/// The tables to compare and how.
fn assignments(
    job_id: &str,
    scope: &CheckScope,
    tables: Vec<(String, String)>,
    previous: Option<&ConsistencyReport>,
) -> Vec<((String, String), CompareOptions)> {
    let rows = CompareOptions::default();
    match scope {
        CheckScope::Full => tables.into_iter().map(|t| (t, rows.clone())).collect(),
        CheckScope::Tables(_) => {
            // ConsistencyType 4: the tables the last report found inconsistent; all without one.
            let wanted = previous.map(ConsistencyReport::inconsistent_tables);
            tables
                .into_iter()
                .filter(|t| wanted.as_ref().is_none_or(|w| w.contains(t)))
                .map(|t| (t, rows.clone()))
                .collect()
        }
        CheckScope::Sampled { count_tables, rows_tables, rows: row_pct } => {
            let order = shuffled(job_id, tables);
            let n = order.len();
            let by_rows = share(n, *rows_tables);
            let by_count = share(n, *count_tables).min(n - by_rows);
            let sample = CompareOptions { sample_percent: *row_pct, chunk_rows: SAMPLE_CHUNK_ROWS, ..rows.clone() };
            let count = CompareOptions { count_only: true, ..rows };
            order
                .into_iter()
                .enumerate()
                .take(by_rows + by_count)
                .map(|(i, t)| (t, if i < by_rows { sample.clone() } else { count.clone() }))
                .collect()
        }
    }
}

/// Runs a check and records it with the job: the report (with repair SQL), the step's status,
/// and ErrorInfo when tables differ. `settle`: replication is running.
async fn run(
    store: &Arc<Store>,
    job: &JobRecord,
    plan: &MigrationPlan,
    connector: &impl ConsistencyChecker,
    settle: Option<Duration>,
    progress: Arc<AtomicI64>,
) -> Result<ConsistencyReport, ConnectorError> {
    let scope = CheckScope::of(job.spec.options.consistency_type, job.spec.options.consistency_params.as_ref())
        .unwrap_or(CheckScope::Full);
    let id = job.job_id.clone();
    let job_id = id.clone();
    let previous: Option<ConsistencyReport> = blocking(store, move |s| s.checkpoint(&job_id, CONSISTENCY_REPORT_KEY))
        .await
        .ok()
        .flatten()
        .and_then(|j| serde_json::from_str(&j).ok());
    let job_id = id.clone();
    let _ = blocking(store, move |s| {
        s.update_job(&job_id, |j| {
            j.detail.set_step_status(CONSISTENCY_STEP, StepStatus::Running, &now_string());
            Ok(())
        })
    })
    .await;
    let id = &id;
    let tables = connector.tables(plan).await?;
    let work = assignments(id, &scope, tables, previous.as_ref());
    let mut report = ConsistencyReport {
        mode: match scope {
            CheckScope::Full => "full",
            CheckScope::Sampled { .. } => "sampled",
            CheckScope::Tables(_) => "recheck",
        }
        .into(),
        started: now_string(),
        ..Default::default()
    };
    // Rows the report may still keep: its size follows `REPORT_ROWS_LIMIT`, not the number of
    // differences (the counts stay exact; `truncated` says rows were left out).
    let mut room = REPORT_ROWS_LIMIT;
    for (n, ((db, table), mut options)) in work.iter().cloned().enumerate() {
        options.settle_window = settle;
        options.keep_keys = options.keep_keys.min(room);
        let mut diff = connector.compare(plan, &db, &table, &options).await?;
        diff.keep_at_most(room);
        room -= diff.kept_rows();
        if !diff.consistent() && report.repair_sql.len() < REPAIR_LIMIT {
            let room = REPAIR_LIMIT - report.repair_sql.len();
            report.repair_sql.extend(connector.repair_sql(plan, &diff, room).await?);
        }
        report.truncated |= diff.truncated;
        report.tables.push(diff);
        progress.store(((n + 1) * 100 / work.len().max(1)) as i64, Ordering::Relaxed);
    }
    report.finished = now_string();
    let json = serde_json::to_string(&report).map_err(|e| {
        ConnectorError::new(dts_core::ErrorClass::Fatal, "cannot serialize the consistency report", e.to_string())
    })?;
    let job_id = id.clone();
    blocking(store, move |s| s.put_checkpoint(&job_id, CONSISTENCY_REPORT_KEY, &json)).await.map_err(|e| {
        ConnectorError::new(dts_core::ErrorClass::Fatal, "cannot store the consistency report", e.to_string())
    })?;
    let consistent = report.consistent();
    let summary = report.failure_summary();
    let job_id = id.clone();
    let _ = blocking(store, move |s| {
        s.update_job(&job_id, |j| {
            j.detail.set_step_status(
                CONSISTENCY_STEP,
                if consistent { StepStatus::Success } else { StepStatus::Failed },
                &now_string(),
            );
            if !consistent {
                j.errors.push(JobError { log: summary, help: crate::scheduler::HELP_DOC.into() });
            }
            Ok(())
        })
    })
    .await;
    tracing::info!(job_id = %id, tables = report.tables.len(), consistent, "consistency check finished");
    Ok(report)
}

impl<R: ConnectorRegistry> Engine<R> {
    /// Runs a consistency check; a check that cannot run is recorded on the job, not fatal to it.
    pub(crate) async fn check_consistency(
        &self,
        job: &JobRecord,
        plan: &MigrationPlan,
        connector: &impl ConsistencyChecker,
        settle: Option<Duration>,
    ) {
        let progress = Arc::new(AtomicI64::new(0));
        let run = run(&self.store, job, plan, connector, settle, progress.clone());
        tokio::pin!(run);
        let mut tick = tokio::time::interval(self.config.persist_interval);
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tick.tick() => {
                    let pct = progress.load(Ordering::Relaxed);
                    self.update(&job.job_id, move |j| {
                        if j.detail.step_no(CONSISTENCY_STEP) == Some(j.detail.step_now) {
                            j.detail.set_step_progress(pct);
                        }
                        Ok(())
                    })
                    .await;
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(job_id = %job.job_id, summary = %e.summary, detail = %e.detail, "consistency check failed");
            self.update(&job.job_id, move |j| {
                j.detail.set_step_status(CONSISTENCY_STEP, StepStatus::Failed, &now_string());
                j.errors.push(JobError {
                    log: format!("[ConsistencyCheck] {}", e.summary),
                    help: crate::scheduler::HELP_DOC.into(),
                });
                Ok(())
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| ("db".to_string(), format!("t{i}"))).collect()
    }

    #[test]
    fn a_sampled_check_compares_the_requested_shares_of_tables() {
        let scope = CheckScope::Sampled { count_tables: 50, rows_tables: 20, rows: 10 };
        let work = assignments("dts-1", &scope, tables(10), None);
        let sampled = work.iter().filter(|(_, o)| !o.count_only).count();
        let counted = work.iter().filter(|(_, o)| o.count_only).count();
        assert_eq!((sampled, counted), (2, 5));
        assert!(work.iter().filter(|(_, o)| !o.count_only).all(|(_, o)| o.sample_percent == 10));
    }

    #[test]
    fn a_recheck_covers_only_the_tables_found_inconsistent_before() {
        let mut bad = dts_core::TableDiff::new("db", "t3", dts_core::Comparison::Rows);
        bad.missing_count = 1;
        let previous = ConsistencyReport { tables: vec![bad], ..Default::default() };
        let work = assignments("dts-1", &CheckScope::Tables(Vec::new()), tables(5), Some(&previous));
        assert_eq!(work.iter().map(|(t, _)| t.1.as_str()).collect::<Vec<_>>(), vec!["t3"]);
        assert_eq!(assignments("dts-1", &CheckScope::Tables(Vec::new()), tables(5), None).len(), 5);
    }
}
