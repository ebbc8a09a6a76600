//! Jobs: insert, read, list with filters and paging, and atomic read-modify-write updates.

use dts_core::{CheckReport, JobDetail, JobEvent, JobKind, JobStatus, MigrationSpec, ReleaseReason};
use rand::Rng;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, now_string};

/// One entry of `MigrateJobInfo.ErrorInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub log: String,
    pub help: String,
}

/// The precheck state of a job (`DescribeMigrateCheckJob`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    /// `unavailable`, `starting`, `running`, `finished`.
    pub status: String,
    pub progress: i64,
    /// 0 not passed, 1 passed, 3 not checked.
    pub flag: i64,
    pub error_code: i64,
    pub error_message: String,
    pub report: Option<CheckReport>,
}

impl CheckState {
    pub fn unavailable() -> Self {
        Self {
            status: "unavailable".into(),
            progress: 0,
            flag: 3,
            error_code: 0,
            error_message: String::new(),
            report: None,
        }
    }

    pub fn starting() -> Self {
        Self { status: "starting".into(), ..Self::unavailable() }
    }
}

/// A stored job.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub job_id: String,
    pub account_id: String,
    pub kind: JobKind,
    pub status: JobStatus,
    pub spec: MigrationSpec,
    /// Encrypted; read with [`Store::job_passwords`].
    src_password_enc: Option<String>,
    dst_password_enc: Option<String>,
    pub create_time: String,
    pub start_time: String,
    pub end_time: String,
    pub detail: JobDetail,
    pub errors: Vec<JobError>,
    pub check: CheckState,
    pub version: i64,
    /// Set by a change that voids the job's server-side resources and checkpoints: the same
    /// update records a release request for the engine (not a stored column).
    release: Option<ReleaseReason>,
}

impl JobRecord {
    /// Applies a state-machine event, as the job's kind allows.
    pub fn apply(&mut self, event: JobEvent) -> Result<(), StoreError> {
        self.status = self.status.next_for(self.kind, event)?;
        Ok(())
    }

    /// Asks the engine, in the same transaction as this update, to release the job's resources
    /// and then clear its checkpoints (once no task of the job runs).
    pub fn request_release(&mut self, reason: ReleaseReason) {
        self.release = Some(reason);
    }

    /// Starts a job whose precheck passed (4 → 7), afresh: what an earlier run left is
    /// released before the steps run, the detail, errors and times begin again. StartMigrateJob,
    /// StartDtsJob and the engine's auto-start after a precheck all start a job this way.
    pub fn start_fresh(&mut self) -> Result<(), StoreError> {
        self.apply(JobEvent::Started)?;
        self.request_release(ReleaseReason::FreshStart);
        self.detail = JobDetail::for_job(self.kind, &self.spec);
        self.errors.clear();
        self.end_time.clear();
        self.start_time = now_string();
        self.spec.auto_start = false;
        Ok(())
    }
}

/// A release the engine owes a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRelease {
    pub job_id: String,
    pub reason: ReleaseReason,
    /// The job was deleted: once released, its row goes too.
    pub deleted: bool,
}

/// What `CreateMigrateJob` (or Alibaba's `ConfigureDtsJob`) stores.
pub struct NewJob {
    /// An id reserved earlier (Alibaba's `CreateDtsInstance`); a fresh one when `None`.
    pub job_id: Option<String>,
    pub account_id: String,
    pub kind: JobKind,
    pub spec: MigrationSpec,
    pub src_password: Option<String>,
    pub dst_password: Option<String>,
}

/// Sort keys of `DescribeMigrateJobs.Order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOrder {
    JobId,
    Status,
    JobName,
    MigrateType,
    RunMode,
    CreateTime,
}

/// Filters and paging of `DescribeMigrateJobs`.
#[derive(Debug, Clone)]
pub struct JobFilter {
    pub job_id: Option<String>,
    pub job_name: Option<String>,
    pub order: JobOrder,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
    /// (key, accepted values; empty = any value) — every filter must match a tag.
    pub tags: Vec<(String, Vec<String>)>,
}

const COLUMNS: &str = "job_id, account_id, kind, status, spec, src_password, dst_password, create_time, start_time, \
                       end_time, detail, errors, check_state, version";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn read_row(r: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        job_id: r.get(0)?,
        account_id: r.get(1)?,
        kind: r.get(2)?,
        status: r.get(3)?,
        spec: r.get(4)?,
        src_password_enc: r.get(5)?,
        dst_password_enc: r.get(6)?,
        create_time: r.get(7)?,
        start_time: r.get(8)?,
        end_time: r.get(9)?,
        detail: r.get(10)?,
        errors: r.get(11)?,
        check: r.get(12)?,
        version: r.get(13)?,
    })
}

struct RawJob {
    job_id: String,
    account_id: String,
    kind: String,
    status: i64,
    spec: String,
    src_password_enc: Option<String>,
    dst_password_enc: Option<String>,
    create_time: String,
    start_time: String,
    end_time: String,
    detail: String,
    errors: String,
    check: String,
    version: i64,
}

impl RawJob {
    fn decode(self) -> Result<JobRecord, StoreError> {
        Ok(JobRecord {
            kind: JobKind::parse(&self.kind).ok_or_else(|| corrupt("kind", &self.kind))?,
            status: JobStatus::from_code(self.status).ok_or_else(|| corrupt("status", self.status))?,
            spec: serde_json::from_str(&self.spec).map_err(|e| corrupt("spec", e))?,
            detail: serde_json::from_str(&self.detail).map_err(|e| corrupt("detail", e))?,
            errors: serde_json::from_str(&self.errors).map_err(|e| corrupt("errors", e))?,
            check: serde_json::from_str(&self.check).map_err(|e| corrupt("check", e))?,
            job_id: self.job_id,
            account_id: self.account_id,
            src_password_enc: self.src_password_enc,
            dst_password_enc: self.dst_password_enc,
            create_time: self.create_time,
            start_time: self.start_time,
            end_time: self.end_time,
            version: self.version,
            release: None,
        })
    }
}

/// A fresh job id: `dts-` and 8 lowercase letters and digits.
pub fn new_job_id() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..8).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect();
    format!("dts-{tail}")
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("job fields serialize to JSON")
}

impl Store {
    fn seal(&self, job_id: &str, field: &str, password: Option<&str>) -> Option<String> {
        password.map(|p| self.cipher.encrypt(p, &format!("job:{job_id}:{field}")))
    }

    /// A secret of an endpoint (e.g. `SrcInfo.AccessKey`) encrypted for storage in the job's
    /// spec; `field` names it and is bound to the ciphertext.
    pub fn seal_endpoint_secret(&self, field: &str, secret: &str) -> String {
        self.cipher.encrypt(secret, &format!("endpoint:{field}"))
    }

    /// The clear text of [`Store::seal_endpoint_secret`].
    pub fn open_endpoint_secret(&self, field: &str, sealed: &str) -> Result<String, StoreError> {
        self.cipher.decrypt(sealed, &format!("endpoint:{field}"))
    }

    /// Stores a new job in status 1 and returns it.
    pub fn insert_job(&self, new: NewJob) -> Result<JobRecord, StoreError> {
        let job_id = new.job_id.clone().unwrap_or_else(new_job_id);
        let detail = JobDetail::for_job(new.kind, &new.spec);
        let now = now_string();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO jobs (job_id, account_id, kind, name, status, spec, src_password, dst_password, create_time, \
             detail, check_state, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
             (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs))",
            params![
                job_id,
                new.account_id,
                new.kind.as_str(),
                new.spec.name,
                JobStatus::Creating.code(),
                to_json(&new.spec),
                self.seal(&job_id, "src", new.src_password.as_deref()),
                self.seal(&job_id, "dst", new.dst_password.as_deref()),
                now,
                to_json(&detail),
                to_json(&CheckState::unavailable()),
            ],
        )?;
        drop(conn);
        self.job(&job_id)?.ok_or(StoreError::NotFound)
    }

    /// A job by id, whoever owns it (the engine's view); a deleted job is gone.
    pub fn job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let raw = self
            .conn()
            .query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1 AND deleted = 0"), [job_id], read_row)
            .optional()?;
        raw.map(RawJob::decode).transpose()
    }

    /// A job by id, also when it is deleted and waits for its release.
    pub fn job_for_release(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let raw = self
            .conn()
            .query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1"), [job_id], read_row)
            .optional()?;
        raw.map(RawJob::decode).transpose()
    }

    /// A job of an account; another account's job is "not found".
    pub fn account_job(&self, account_id: &str, job_id: &str) -> Result<JobRecord, StoreError> {
        match self.job(job_id)? {
            Some(j) if j.account_id == account_id => Ok(j),
            _ => Err(StoreError::NotFound),
        }
    }

    /// Decrypted (source, destination) passwords of a job.
    pub fn job_passwords(&self, job: &JobRecord) -> Result<(Option<String>, Option<String>), StoreError> {
        let open = |field: &str, enc: &Option<String>| {
            enc.as_deref().map(|e| self.cipher.decrypt(e, &format!("job:{}:{field}", job.job_id))).transpose()
        };
        Ok((open("src", &job.src_password_enc)?, open("dst", &job.dst_password_enc)?))
    }

    /// Atomically reads a job, lets `change` modify it, and writes it back with `version + 1`.
    /// Nothing is written when `change` fails.
    pub fn update_job<T>(
        &self,
        job_id: &str,
        change: impl FnOnce(&mut JobRecord) -> Result<T, StoreError>,
    ) -> Result<(JobRecord, T), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let raw = tx
            .query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1 AND deleted = 0"), [job_id], read_row)
            .optional()?
            .ok_or(StoreError::NotFound)?;
        let mut job = raw.decode()?;
        let out = change(&mut job)?;
        job.version += 1;
        tx.execute(
            "UPDATE jobs SET name = ?2, status = ?3, spec = ?4, start_time = ?5, end_time = ?6, detail = ?7, \
             errors = ?8, check_state = ?9, version = ?10, src_password = ?11, dst_password = ?12 WHERE job_id = ?1",
            params![
                job.job_id,
                job.spec.name,
                job.status.code(),
                to_json(&job.spec),
                job.start_time,
                job.end_time,
                to_json(&job.detail),
                to_json(&job.errors),
                to_json(&job.check),
                job.version,
                job.src_password_enc,
                job.dst_password_enc,
            ],
        )?;
        if let Some(reason) = job.release.take() {
            request_release(&tx, &job.job_id, reason)?;
        }
        tx.commit()?;
        Ok((job, out))
    }

    /// Replaces a job's passwords (ModifyMigrateJob); `None` keeps the stored one.
    pub fn set_job_passwords(&self, job: &mut JobRecord, src: Option<&str>, dst: Option<&str>) {
        if src.is_some() {
            job.src_password_enc = self.seal(&job.job_id, "src", src);
        }
        if dst.is_some() {
            job.dst_password_enc = self.seal(&job.job_id, "dst", dst);
        }
    }

    /// Deletes a job of an account whatever its status (a running one is stopped by the engine,
    /// which then releases its resources and removes it for good).
    pub fn delete_job_unchecked(&self, account_id: &str, job_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE jobs SET deleted = 1, version = version + 1 WHERE job_id = ?1 AND account_id = ?2 AND deleted = 0",
            params![job_id, account_id],
        )?;
        if n > 0 {
            request_release(&tx, job_id, ReleaseReason::Deleted)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a job of an account if its status allows it (see [`Store::delete_job_unchecked`]).
    pub fn delete_job(&self, account_id: &str, job_id: &str) -> Result<(), StoreError> {
        let job = self.account_job(account_id, job_id)?;
        if !job.status.deletable() {
            return Err(StoreError::Rejected(format!("job {} is in status {}", job_id, job.status.code())));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE jobs SET deleted = 1, version = version + 1 WHERE job_id = ?1 AND version = ?2 AND deleted = 0",
            params![job_id, job.version],
        )?;
        if n == 0 {
            return Err(StoreError::Rejected(format!("job {job_id} changed while being deleted")));
        }
        request_release(&tx, job_id, ReleaseReason::Deleted)?;
        tx.commit()?;
        Ok(())
    }

    /// Releases the engine owes, oldest first.
    pub fn pending_releases(&self) -> Result<Vec<PendingRelease>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT r.job_id, r.reason, COALESCE(j.deleted, 1) FROM job_releases r \
             LEFT JOIN jobs j ON j.job_id = r.job_id ORDER BY r.requested, r.job_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (job_id, reason, deleted) = row?;
            let reason = ReleaseReason::parse(&reason).ok_or_else(|| corrupt("release reason", &reason))?;
            out.push(PendingRelease { job_id, reason, deleted: deleted != 0 });
        }
        Ok(out)
    }

    /// The release a job waits for, if any.
    pub fn pending_release(&self, job_id: &str) -> Result<Option<PendingRelease>, StoreError> {
        Ok(self.pending_releases()?.into_iter().find(|r| r.job_id == job_id))
    }

    /// A job's resources are released: its checkpoints go (the last consistency report stays
    /// with a job that lives on), and a deleted job goes for good. One transaction.
    pub fn finish_release(&self, job_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM job_releases WHERE job_id = ?1", [job_id])?;
        tx.execute("DELETE FROM job_checkpoints WHERE job_id = ?1 AND substr(key, 1, 12) != 'consistency/'", [job_id])?;
        tx.execute("DELETE FROM jobs WHERE job_id = ?1 AND deleted = 1", [job_id])?;
        tx.commit()?;
        Ok(())
    }

    /// One page of an account's jobs and the total number of matches.
    pub fn list_jobs(&self, account_id: &str, f: &JobFilter) -> Result<(u64, Vec<JobRecord>), StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare(&format!("SELECT {COLUMNS} FROM jobs WHERE account_id = ?1 AND deleted = 0 ORDER BY seq"))?;
        let raws = stmt.query_map([account_id], read_row)?.collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        let mut jobs = raws.into_iter().map(RawJob::decode).collect::<Result<Vec<_>, _>>()?;
        jobs.retain(|j| {
            f.job_id.as_deref().is_none_or(|id| j.job_id == id)
                && f.job_name.as_deref().is_none_or(|n| j.spec.name == n)
                && f.tags.iter().all(|(k, vals)| {
                    j.spec.tags.iter().any(|t| {
                        &t.key == k && (vals.is_empty() || vals.iter().any(|v| t.value.as_deref() == Some(v.as_str())))
                    })
                })
        });
        jobs.sort_by(|a, b| {
            let ord = match f.order {
                JobOrder::JobId => a.job_id.cmp(&b.job_id),
                JobOrder::Status => a.status.code().cmp(&b.status.code()),
                JobOrder::JobName => a.spec.name.cmp(&b.spec.name),
                JobOrder::MigrateType => a.spec.options.migrate_type.cmp(&b.spec.options.migrate_type),
                JobOrder::RunMode => a.spec.options.run_mode.cmp(&b.spec.options.run_mode),
                JobOrder::CreateTime => a.create_time.cmp(&b.create_time),
            };
            if f.descending { ord.reverse() } else { ord }
        });
        let total = jobs.len() as u64;
        let page = jobs.into_iter().skip(f.offset as usize).take(f.limit as usize).collect();
        Ok((total, page))
    }

    /// Jobs the engine must drive: every job in an active status, oldest first.
    pub fn active_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE status IN (3, 7, 8, 11, 12) AND deleted = 0 ORDER BY seq"
        ))?;
        let raws = stmt.query_map([], read_row)?.collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        raws.into_iter().map(RawJob::decode).collect()
    }
}

/// Records a release request inside `tx`; a pending delete is never downgraded.
fn request_release(tx: &rusqlite::Transaction<'_>, job_id: &str, reason: ReleaseReason) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO job_releases (job_id, reason, requested) VALUES (?1, ?2, ?3) \
         ON CONFLICT (job_id) DO UPDATE SET reason = CASE WHEN reason = 'deleted' THEN reason ELSE excluded.reason END",
        params![job_id, reason.as_str(), now_string()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use dts_core::{EndpointSpec, MigrateOptions, Tag};

    use super::*;

    fn endpoint() -> EndpointSpec {
        EndpointSpec {
            database_type: "mariadb".into(),
            access_type: "extranet".into(),
            ip: Some("127.0.0.1".into()),
            port: Some(3306),
            user: Some("root".into()),
            instance_id: None,
            region: None,
            extra: Default::default(),
        }
    }

    fn new_job(account: &str, name: &str, migrate_type: i64, tag: Option<(&str, &str)>) -> NewJob {
        NewJob {
            job_id: None,
            account_id: account.into(),
            kind: JobKind::Migration,
            spec: MigrationSpec {
                auto_start: false,
                name: name.into(),
                options: MigrateOptions {
                    run_mode: 1,
                    expect_time: None,
                    migrate_type,
                    migrate_object: 1,
                    consistency_type: None,
                    is_override_root: None,
                    extern_params: None,
                    consistency_params: None,
                },
                source: endpoint(),
                destination: endpoint(),
                database_info: None,
                tags: tag.map(|(k, v)| vec![Tag { key: k.into(), value: Some(v.into()) }]).unwrap_or_default(),
                src_node_type: None,
                src_info_multi: Vec::new(),
                stages: None,
                loop_guard: None,
                conflict_policy: Default::default(),
            },
            src_password: Some("s3cret-src".into()),
            dst_password: None,
        }
    }

    fn filter() -> JobFilter {
        JobFilter {
            job_id: None,
            job_name: None,
            order: JobOrder::JobName,
            descending: false,
            offset: 0,
            limit: 20,
            tags: Vec::new(),
        }
    }

    #[test]
    fn jobs_are_listed_per_account_with_filters_order_and_paging() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (name, t, tag) in [("b", 2, Some(("env", "prod"))), ("a", 1, None), ("c", 3, Some(("env", "test")))] {
            store.insert_job(new_job("acct", name, t, tag)).unwrap();
        }
        let other = store.insert_job(new_job("other", "z", 1, None)).unwrap();
        let names = |f: &JobFilter| -> (u64, Vec<String>) {
            let (total, jobs) = store.list_jobs("acct", f).unwrap();
            (total, jobs.into_iter().map(|j| j.spec.name).collect())
        };
        assert_eq!(names(&filter()), (3, vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(names(&JobFilter { descending: true, ..filter() }).1, ["c", "b", "a"]);
        assert_eq!(names(&JobFilter { offset: 1, limit: 1, ..filter() }), (3, vec!["b".into()]));
        assert_eq!(names(&JobFilter { order: JobOrder::MigrateType, descending: true, ..filter() }).1, ["c", "b", "a"]);
        assert_eq!(names(&JobFilter { job_name: Some("b".into()), ..filter() }), (1, vec!["b".into()]));
        let tagged = JobFilter { tags: vec![("env".into(), vec!["prod".into(), "dev".into()])], ..filter() };
        assert_eq!(names(&tagged).1, ["b"]);
        let any_env = JobFilter { tags: vec![("env".into(), vec![])], ..filter() };
        assert_eq!(names(&any_env).1, ["b", "c"]);
        assert_eq!(names(&JobFilter { job_id: Some(other.job_id.clone()), ..filter() }).0, 0);
        assert!(matches!(store.account_job("acct", &other.job_id), Err(StoreError::NotFound)));
        let (src, dst) = store.job_passwords(&other).unwrap();
        assert_eq!((src.as_deref(), dst), (Some("s3cret-src"), None));
    }

    #[test]
    fn an_update_that_fails_writes_nothing_and_an_illegal_transition_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let job = store.insert_job(new_job("acct", "a", 1, None)).unwrap();
        let err = store.update_job(&job.job_id, |j| {
            j.spec.name = "changed".into();
            j.apply(JobEvent::Started)
        });
        assert!(matches!(err, Err(StoreError::Illegal(_))));
        let (after, ()) = store.update_job(&job.job_id, |j| j.apply(JobEvent::CheckRequested)).unwrap();
        assert_eq!(
            (after.status, after.spec.name.as_str(), after.version),
            (JobStatus::Checking, "a", job.version + 1)
        );
        assert!(matches!(store.delete_job("acct", &job.job_id), Err(StoreError::Rejected(_))));
        store.put_checkpoint(&job.job_id, "full_load/done/x", "5").unwrap();
        assert_eq!(store.checkpoints(&job.job_id, "full_load/").unwrap().len(), 1);
        store.clear_checkpoints(&job.job_id).unwrap();
        assert!(store.checkpoint(&job.job_id, "full_load/done/x").unwrap().is_none());
    }

    #[test]
    fn a_deleted_job_disappears_at_once_but_its_row_and_checkpoints_stay_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let job = store.insert_job(new_job("acct", "a", 2, None)).unwrap();
        store.put_checkpoint(&job.job_id, "mysql/full_load/deferred/x", "keys").unwrap();
        store.put_checkpoint(&job.job_id, "consistency/report", "{}").unwrap();
        store.delete_job_unchecked("acct", &job.job_id).unwrap();
        assert!(store.job(&job.job_id).unwrap().is_none());
        assert!(matches!(store.account_job("acct", &job.job_id), Err(StoreError::NotFound)));
        assert_eq!(store.list_jobs("acct", &filter()).unwrap().0, 0);
        let pending = store.pending_releases().unwrap();
        assert_eq!(
            pending,
            vec![PendingRelease { job_id: job.job_id.clone(), reason: ReleaseReason::Deleted, deleted: true }]
        );
        assert!(store.job_for_release(&job.job_id).unwrap().is_some());
        assert_eq!(store.checkpoint(&job.job_id, "mysql/full_load/deferred/x").unwrap().as_deref(), Some("keys"));
        store.finish_release(&job.job_id).unwrap();
        assert!(store.pending_releases().unwrap().is_empty());
        assert!(store.job_for_release(&job.job_id).unwrap().is_none());
        assert!(store.checkpoint(&job.job_id, "consistency/report").unwrap().is_none());
    }

    #[test]
    fn a_release_requested_with_an_update_clears_checkpoints_but_the_consistency_report_once_done() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let job = store.insert_job(new_job("acct", "a", 2, None)).unwrap();
        store.put_checkpoint(&job.job_id, "mysql/full_load/plan", "[]").unwrap();
        store.put_checkpoint(&job.job_id, "consistency/report", "{}").unwrap();
        store
            .update_job(&job.job_id, |j| {
                j.request_release(ReleaseReason::Reset);
                Ok(())
            })
            .unwrap();
        assert_eq!(store.pending_release(&job.job_id).unwrap().map(|r| r.reason), Some(ReleaseReason::Reset));
        store.delete_job_unchecked("acct", &job.job_id).unwrap();
        // A delete is never downgraded by a later request.
        assert_eq!(store.pending_release(&job.job_id).unwrap().map(|r| r.reason), Some(ReleaseReason::Deleted));
        let kept = store.insert_job(new_job("acct", "b", 2, None)).unwrap();
        store.put_checkpoint(&kept.job_id, "mysql/full_load/plan", "[]").unwrap();
        store.put_checkpoint(&kept.job_id, "consistency/report", "{}").unwrap();
        store
            .update_job(&kept.job_id, |j| {
                j.request_release(ReleaseReason::FreshStart);
                Ok(())
            })
            .unwrap();
        store.finish_release(&kept.job_id).unwrap();
        assert!(store.checkpoint(&kept.job_id, "mysql/full_load/plan").unwrap().is_none());
        assert!(store.checkpoint(&kept.job_id, "consistency/report").unwrap().is_some());
        assert!(store.job(&kept.job_id).unwrap().is_some());
    }
}
