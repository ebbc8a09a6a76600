"""A structure migration driven end to end by the official Tencent Cloud SDK: create, describe,
modify, check, start, wait for success, delete.

Environment: DTS_ENDPOINT, DTS_SECRET_ID, DTS_SECRET_KEY, SRC_PORT, SRC_USER, SRC_PASSWORD,
DST_PORT, DST_USER, DST_PASSWORD, DB_NAME; SIGN_METHOD (TC3-HMAC-SHA256 over POST by default,
HmacSHA256 = v1 signature over GET); MODE:
  full              the whole lifecycle (default)
  create-and-check  create a job and let its check pass; prints JOB_ID=...
  resume            JOB_ID: the job is still in status 4 with a passed check; start it, wait for
                    success, delete it
"""

import os
import time

from common import (check, check_job, client_from_env, create_job, create_request, describe_check, describe_job, describe_jobs, env,
                    job_id_request, models, run, step, wait_check_finished, wait_status)

JOB_NAME = "sdk-structure-migration"
RENAMED = "sdk-structure-migration-renamed"


def assert_created_job(job, job_id, name):
    check(job.JobName == name, "JobName should be %r: %s" % (name, job))
    check(job.Status == 1, "a new or modified job should be in status 1 (Creating): %s" % job)
    check(job.SrcInfo is not None and job.DstInfo is not None, "SrcInfo/DstInfo missing: %s" % job)
    check(job.SrcInfo.Password == "", "DescribeMigrateJobs must not return SrcInfo.Password: %r" % job.SrcInfo.Password)
    check(job.DstInfo.Password == "", "DescribeMigrateJobs must not return DstInfo.Password: %r" % job.DstInfo.Password)
    check(job.SrcInfo.Ip == "127.0.0.1" and job.SrcInfo.Port == int(env("SRC_PORT")),
          "SrcInfo should echo the source address: %s" % job.SrcInfo)
    check(job.SrcInfo.User == env("SRC_USER", "root"), "SrcInfo.User should echo the user: %s" % job.SrcInfo)
    check(job.DstInfo.Port == int(env("DST_PORT")) and job.DstInfo.Region == "ap-guangzhou",
          "DstInfo should echo the destination: %s" % job.DstInfo)
    check(job.SrcDatabaseType == "mariadb" and job.SrcAccessType == "extranet", "source type/access: %s" % job)
    check(job.MigrateOption is not None and job.MigrateOption.MigrateType == 1 and job.MigrateOption.MigrateObject == 2,
          "MigrateOption should echo MigrateType 1 / MigrateObject 2: %s" % job.MigrateOption)
    check(env("DB_NAME") in (job.DatabaseInfo or ""), "DatabaseInfo should name %s: %r" % (env("DB_NAME"), job.DatabaseInfo))


def create_and_check(c):
    db = env("DB_NAME")
    step("CreateMigrateJob (MigrateType 1, MigrateObject 2, DatabaseInfo %s)" % db)
    job_id = create_job(c, JOB_NAME, [db])
    print("JOB_ID=%s" % job_id, flush=True)

    step("DescribeMigrateJobs filtered by JobId")
    assert_created_job(describe_job(c, job_id), job_id, JOB_NAME)

    step("ModifyMigrateJob renames the job")
    req = job_id_request(models.ModifyMigrateJobRequest, job_id)
    req.JobName = RENAMED
    resp = c.ModifyMigrateJob(req)
    check(resp.RequestId, "ModifyMigrateJob returned no RequestId")
    assert_created_job(describe_job(c, job_id), job_id, RENAMED)

    step("CreateMigrateCheckJob, then poll DescribeMigrateCheckJob")
    check_job(c, job_id)
    status = describe_job(c, job_id).Status
    check(status in (3, 4), "right after CreateMigrateCheckJob the job should be checking (3) or passed (4), not %s" % status)
    result = wait_check_finished(c, job_id)
    check(result.CheckFlag == 1,
          "the check should pass (CheckFlag 1): CheckFlag=%s ErrorCode=%s ErrorMessage=%r"
          % (result.CheckFlag, result.ErrorCode, result.ErrorMessage))
    check(result.Progress == "100", "a finished check should report Progress \"100\", not %r" % result.Progress)
    job = wait_status(c, job_id, 4, timeout=10, passing=(3,))
    check(job.JobName == RENAMED, "the check must not change the name: %s" % job)
    return job_id


def start_and_finish(c, job_id):
    step("StartMigrateJob, then poll DescribeMigrateJobs until Success (9)")
    resp = c.StartMigrateJob(job_id_request(models.StartMigrateJobRequest, job_id))
    check(resp.RequestId, "StartMigrateJob returned no RequestId")
    job = wait_status(c, job_id, 9, timeout=120, passing=(4, 7))
    detail = job.Detail
    check(detail is not None and detail.StepInfo, "a finished job should list its steps in Detail.StepInfo: %s" % job)
    ids = [s.StepId for s in detail.StepInfo]
    for wanted in ("Prepare", "StructureMigration"):
        check(wanted in ids, "Detail.StepInfo should have a step %s: %s" % (wanted, ids))
    for s in detail.StepInfo:
        check(s.Status == 1, "every step of a successful job should have Status 1: %s" % s)
        check(s.StartTime, "every step of a successful job should have a StartTime: %s" % s)
    check(str(detail.Progress) == "100", "Detail.Progress of a successful job should be \"100\": %r" % detail.Progress)
    check(job.StartTime, "a started job should have a StartTime: %s" % job)

    step("DeleteMigrateJob")
    resp = c.DeleteMigrateJob(job_id_request(models.DeleteMigrateJobRequest, job_id))
    check(resp.RequestId, "DeleteMigrateJob returned no RequestId")
    after = describe_jobs(c, job_id)
    check(after.TotalCount == 0 and not after.JobList,
          "a deleted job should not be listed: TotalCount=%s JobList=%s" % (after.TotalCount, after.JobList))


def resume(c, job_id):
    step("after the restart: DescribeMigrateJobs still shows %s in status 4" % job_id)
    job = describe_job(c, job_id)
    check(job.Status == 4, "the job should still be in status 4 (CheckPass) after the restart: %s" % job)
    check(job.JobName == RENAMED, "the job should keep its name across the restart: %s" % job)
    result = describe_check(c, job_id)
    check(result.Status == "finished" and result.CheckFlag == 1,
          "the passed check should survive the restart: Status=%r CheckFlag=%s" % (result.Status, result.CheckFlag))


def incremental(c):
    db = env("DB_NAME")
    step("CreateMigrateJob (MigrateType 3), check, start")
    job_id = c.CreateMigrateJob(create_request(JOB_NAME, [db], migrate_type=3)).JobId
    print("JOB_ID=%s" % job_id, flush=True)
    check_job(c, job_id)
    result = wait_check_finished(c, job_id)
    check(result.CheckFlag == 1, "the MigrateType 3 check should pass: %s %r" % (result.CheckFlag, result.ErrorMessage))
    c.StartMigrateJob(job_id_request(models.StartMigrateJobRequest, job_id))
    step("poll until ReadyComplete (8): full load done, binlog replication caught up")
    job = wait_status(c, job_id, 8, timeout=120, passing=(4, 7))
    ids = [s.StepId for s in job.Detail.StepInfo]
    # ConsistencyType 4 with no earlier report checks every table: a step after the data steps,
    # run (and passed) before ReadyComplete is reported.
    check(ids[-2:] == ["IncrementalMigration", "ConsistencyCheck"],
          "the steps should end with IncrementalMigration, ConsistencyCheck: %s" % ids)
    check_step = job.Detail.StepInfo[-1]
    check(check_step.Status == 1, "the consistency check before ReadyComplete should have passed: %s" % check_step)
    check(job.Detail.SecondsBehindMaster is not None and job.Detail.SecondsBehindMaster <= 1,
          "a ReadyComplete job is at most 1 s behind: %s" % job.Detail)
    wait_file = os.environ.get("WAIT_FILE")
    if wait_file:
        step("waiting for the test's writes to the source to end")
        deadline = time.time() + 60
        while not os.path.exists(wait_file):
            check(time.time() < deadline, "the writer never finished")
            time.sleep(0.2)
    step("CompleteMigrateJob (waitForSync), then poll until Success (9)")
    req = job_id_request(models.CompleteMigrateJobRequest, job_id)
    req.CompleteMode = "waitForSync"
    c.CompleteMigrateJob(req)
    job = wait_status(c, job_id, 9, timeout=120, passing=(8, 12))
    for s in job.Detail.StepInfo:
        check(s.Status == 1, "every step of a successful job should have Status 1: %s" % s)


def main():
    c = client_from_env()
    mode = os.environ.get("MODE", "full")
    if mode == "full":
        start_and_finish(c, create_and_check(c))
    elif mode == "incremental":
        incremental(c)
    elif mode == "create-and-check":
        create_and_check(c)
    elif mode == "resume":
        job_id = env("JOB_ID")
        resume(c, job_id)
        start_and_finish(c, job_id)
    else:
        raise SystemExit("unknown MODE %r" % mode)


if __name__ == "__main__":
    run(main)
