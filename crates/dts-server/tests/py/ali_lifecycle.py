"""Alibaba Cloud DTS 2020-01-01 jobs driven end to end by an official Alibaba SDK (ALI_SDK: tea,
tea-v2 or core; see ali_common.py): buy an instance, configure, precheck, start, watch, rename,
pause/resume/stop, delete.

Environment: DTS_ENDPOINT, DTS_SECRET_ID, DTS_SECRET_KEY, SRC_PORT, SRC_USER, SRC_PASSWORD,
DST_PORT, DST_USER, DST_PASSWORD, DB_NAME, ALI_SDK, ENGINE (MySQL unless given, e.g. Redis), CONFLICT_POLICY (optional, sent in Reserve); PHASE_FILE (sync and twoway: a file the test
writes `suspend`, `resume`, `stop` into; PHASE_TIMEOUT seconds to wait for each, 300 unless told);
MODE:
  migration  structure + full-data migration to Finished, listed, renamed, deleted (default)
  sync       one-way sync to Synchronizing; prints JOB_ID=... and READY, then follows PHASE_FILE:
             `suspend` -> SuspendDtsJob, Suspending, prints SUSPENDED; `resume` -> StartDtsJob,
             Synchronizing, prints RESUMED; `stop` -> StopDtsJob, Finished, prints STOPPED
  tencent-job  JOB_ID: a MigrateType 3 job made through the Tencent dialect, replicating: listed,
             renamed, suspended (prints SUSPENDED), resumed on `resume` in PHASE_FILE (RESUMED)
  twoway     two-way sync: forward SRC -> DST, then reverse DST -> SRC on the same instance, both
             Synchronizing; prints JOB_ID=..., READY; on `suspend` suspends both (SUSPENDED), on
             `resume` resumes both (RESUMED); on `stop` stops both and prints STOPPED
"""

import json
import os
import time

from ali_common import (Api, ApiError, Failure, check, check_no_password, check_success, create_instance, db_list, describe_detail,
                        endpoints, env, find_job, run, step, wait_phase, wait_phase_or, wait_precheck, wait_status)

JOB_NAME = "ali-migration"
RENAMED = "ali-migration-renamed"

MIGRATION_PASSING = ("NotStarted", "Prechecking", "PreCheckPass", "Migrating")
SYNC_PASSING = ("NotStarted", "Prechecking", "PreCheckPass", "Initializing")


def announce(line):
    print(line, flush=True)


def configure(api, instance_id, job_id, name, job_type, structure, data, sync, direction=None, reverse=False,
              reserve=None):
    params = dict(DtsInstanceId=instance_id, DtsJobId=job_id, DtsJobName=name, JobType=job_type,
                  StructureInitialization=structure, DataInitialization=data, DataSynchronization=sync,
                  SynchronizationDirection=direction, DbList=db_list())
    params.update(endpoints(reverse=reverse))
    reserve = dict(reserve or {})
    if os.environ.get("CONFLICT_POLICY"):
        reserve["conflictPolicy"] = os.environ["CONFLICT_POLICY"]
    if reserve:
        params["Reserve"] = json.dumps(reserve)
    body = api.call("ConfigureDtsJob", **params)
    check_success(body, "ConfigureDtsJob")
    check(body.get("DtsJobId"), "ConfigureDtsJob should answer a DtsJobId: %s" % body)
    return body


def start(api, job_id, instance_id, direction=None):
    body = api.call("StartDtsJob", DtsJobId=job_id, DtsInstanceId=instance_id, SynchronizationDirection=direction)
    check_success(body, "StartDtsJob")
    check(body.get("HttpStatusCode") == 200, "StartDtsJob should answer HttpStatusCode 200: %s" % body)
    return body


def simple(api, action, **params):
    body = api.call(action, **params)
    check_success(body, action)
    return body


def check_delay(detail, what):
    delay = detail.get("Delay")
    check(isinstance(delay, (int, float)) and not isinstance(delay, bool),
          "DescribeDtsJobDetail of a synchronizing job should have a numeric Delay (%s): %r" % (what, delay))
    print("   %s: Delay %s" % (what, delay), flush=True)


def migration(api):
    step("CreateDtsInstance (MIGRATION, PostPaid, small)")
    instance_id, job_id = create_instance(api, "MIGRATION")
    print("   InstanceId=%s JobId=%s" % (instance_id, job_id), flush=True)

    # How the task starts, one way per SDK: tea by itself after the precheck (the real service's
    # default), tea-v2 through StartDtsJob sent at once (while the precheck runs), core with
    # Reserve autoStartModulesAfterConfig=none (nothing starts until StartDtsJob).
    how = {"tea": "auto", "tea-v2": "start-during-precheck"}.get(api.kind, "none")
    step("ConfigureDtsJob (structure + full data, DbList %s), start: %s" % (env("DB_NAME"), how))
    reserve = {"autoStartModulesAfterConfig": "none"} if how == "none" else None
    body = configure(api, instance_id, job_id, JOB_NAME, "MIGRATION", True, True, False, reserve=reserve)
    dts_job_id = body["DtsJobId"]
    announce("JOB_ID=%s" % dts_job_id)
    if how == "start-during-precheck":
        start(api, dts_job_id, instance_id)

    step("DescribePreCheckStatus until Finished")
    wait_precheck(api, dts_job_id)

    if how == "none":
        time.sleep(2)
        status = describe_detail(api, dts_job_id).get("Status")
        check(status == "PreCheckPass", "with autoStartModulesAfterConfig none the task must wait: %s" % status)
        step("StartDtsJob, then DescribeDtsJobDetail until Finished")
        start(api, dts_job_id, instance_id)
    detail = wait_status(api, dts_job_id, "Finished", timeout=180, passing=MIGRATION_PASSING)
    check(detail.get("DtsJobName") == JOB_NAME, "DescribeDtsJobDetail should echo DtsJobName %r: %s" % (JOB_NAME, detail))

    step("DescribeDtsJobs(JobType MIGRATION) lists the finished job, without passwords")
    job, raw = find_job(api, dts_job_id, "MIGRATION")
    check(job.get("Status") == "Finished", "the listed job should be Finished: %s" % job)
    check(job.get("JobType"), "the listed job should have a JobType: %s" % job)
    print("   listed JobType %r, DtsInstanceID %r" % (job.get("JobType"), job.get("DtsInstanceID")), flush=True)
    src = job.get("SourceEndpoint") or {}
    check(src.get("Ip") == "127.0.0.1" and src.get("Port") == str(env("SRC_PORT")),
          "SourceEndpoint should echo Ip 127.0.0.1 and Port %s: %s" % (env("SRC_PORT"), src))
    dst = job.get("DestinationEndpoint") or {}
    check(dst.get("Port") == str(env("DST_PORT")), "DestinationEndpoint should echo Port %s: %s" % (env("DST_PORT"), dst))
    mode = job.get("MigrationMode") or {}
    check(mode.get("StructureInitialization") is True, "MigrationMode.StructureInitialization should be true: %s" % mode)
    check_no_password(raw, "DescribeDtsJobs")

    step("ModifyDtsJobName renames the job")
    simple(api, "ModifyDtsJobName", DtsJobId=dts_job_id, DtsJobName=RENAMED)
    detail = describe_detail(api, dts_job_id)
    check(detail.get("DtsJobName") == RENAMED, "DescribeDtsJobDetail should show the new name %r: %s" % (RENAMED, detail))
    check_no_password(api.last_raw, "DescribeDtsJobDetail")

    step("DeleteDtsJob, then DescribeDtsJobDetail of it fails")
    simple(api, "DeleteDtsJob", DtsJobId=dts_job_id, DtsInstanceId=instance_id)
    try:
        gone = describe_detail(api, dts_job_id)
    except ApiError as e:
        print("   DescribeDtsJobDetail of the deleted job -> %s" % e, flush=True)
        check(e.code and e.request_id, "a deleted job should give an error answer with a Code and RequestId: %s" % e)
    else:
        raise Failure("DescribeDtsJobDetail of deleted job %s should fail, but answered: %s" % (dts_job_id, gone))


def sync(api):
    step("CreateDtsInstance (SYNC, oneway)")
    instance_id, job_id = create_instance(api, "SYNC", SyncArchitecture="oneway")

    step("ConfigureDtsJob (SYNC: structure + full data + incremental)")
    body = configure(api, instance_id, job_id, "ali-sync", "SYNC", True, True, True)
    dts_job_id = body["DtsJobId"]
    announce("JOB_ID=%s" % dts_job_id)

    step("DescribePreCheckStatus until Finished")
    wait_precheck(api, dts_job_id)

    step("StartDtsJob, then DescribeDtsJobDetail until Synchronizing")
    start(api, dts_job_id, instance_id)
    detail = wait_status(api, dts_job_id, "Synchronizing", timeout=180, passing=SYNC_PASSING)
    check_delay(detail, "synchronizing")
    announce("READY")

    wait_phase("suspend")
    step("SuspendDtsJob, then Suspending")
    simple(api, "SuspendDtsJob", DtsJobId=dts_job_id, DtsInstanceId=instance_id)
    wait_status(api, dts_job_id, "Suspending", timeout=60, passing=("Synchronizing",))
    announce("SUSPENDED")

    wait_phase("resume")
    step("StartDtsJob resumes, then Synchronizing")
    start(api, dts_job_id, instance_id)
    detail = wait_status(api, dts_job_id, "Synchronizing", timeout=120, passing=("Suspending", "Initializing"))
    check_delay(detail, "resumed")
    announce("RESUMED")

    wait_phase("stop")
    step("StopDtsJob, then Finished")
    simple(api, "StopDtsJob", DtsJobId=dts_job_id, DtsInstanceId=instance_id)
    wait_status(api, dts_job_id, "Finished", timeout=60, passing=("Synchronizing",))
    announce("STOPPED")
    step("ResetDtsJob: back to NotStarted, ready to be configured again")
    simple(api, "ResetDtsJob", DtsJobId=dts_job_id, DtsInstanceId=instance_id)
    detail = describe_detail(api, dts_job_id)
    check(detail.get("Status") == "NotStarted", "a reset task is NotStarted: %s" % detail)


def twoway(api):
    step("CreateDtsInstance (SYNC, bidirectional)")
    instance_id, job_id = create_instance(api, "SYNC", SyncArchitecture="bidirectional")

    step("ConfigureDtsJob Forward (SRC -> DST)")
    body = configure(api, instance_id, job_id, "ali-twoway", "SYNC", True, True, True, direction="Forward")
    forward_id = body["DtsJobId"]
    announce("JOB_ID=%s" % forward_id)
    wait_precheck(api, forward_id)
    start(api, forward_id, instance_id, direction="Forward")
    detail = wait_status(api, forward_id, "Synchronizing", timeout=180, passing=SYNC_PASSING, direction="Forward")
    check_delay(detail, "forward")

    step("ConfigureDtsJob Reverse (DST -> SRC, incremental only) on the same instance and job")
    body = configure(api, instance_id, forward_id, "ali-twoway", "SYNC", False, False, True, direction="Reverse",
                     reverse=True)
    reverse_id = body["DtsJobId"]
    print("   ConfigureDtsJob(Reverse) answered DtsJobId %s (forward %s)" % (reverse_id, forward_id), flush=True)
    announce("REVERSE_JOB_ID=%s" % reverse_id)
    # Neither SDK's DescribePreCheckStatus takes SynchronizationDirection: the reverse job is
    # addressed by the DtsJobId that ConfigureDtsJob(Reverse) answered.
    wait_precheck(api, reverse_id)
    start(api, forward_id, instance_id, direction="Reverse")
    detail = wait_status(api, forward_id, "Synchronizing", timeout=180, passing=SYNC_PASSING, direction="Reverse")
    check_delay(detail, "reverse")
    check(detail.get("DtsJobDirection") in (None, "Reverse"),
          "DescribeDtsJobDetail(Reverse) should describe the reverse job: %s" % detail)
    forward = describe_detail(api, forward_id, "Forward")
    check(forward.get("Status") == "Synchronizing", "the forward job should still be Synchronizing: %s" % forward)

    step("DescribeDtsJobs(JobType SYNC) lists the forward job with its ReverseJob")
    job, raw = find_job(api, forward_id, "SYNC")
    check(job.get("DtsJobDirection") == "Forward", "the listed job should be the Forward one: %s" % job)
    rev = job.get("ReverseJob")
    check(isinstance(rev, dict) and rev.get("DtsJobDirection") == "Reverse",
          "the listed job should nest a ReverseJob with DtsJobDirection Reverse: %s" % json.dumps(job))
    check(rev.get("Status") == "Synchronizing", "the nested ReverseJob should be Synchronizing: %s" % rev)
    check_no_password(raw, "DescribeDtsJobs(SYNC)")
    announce("READY")

    # The test may pause both directions (to stage conflicting writes on both sides) and resume.
    if wait_phase_or("suspend", "stop") == "suspend":
        step("SuspendDtsJob both directions")
        for direction in ("Forward", "Reverse"):
            simple(api, "SuspendDtsJob", DtsJobId=forward_id, DtsInstanceId=instance_id,
                   SynchronizationDirection=direction)
        for direction in ("Forward", "Reverse"):
            wait_status(api, forward_id, "Suspending", timeout=60, passing=("Synchronizing",), direction=direction)
        announce("SUSPENDED")
        wait_phase("resume")
        step("StartDtsJob resumes both directions")
        for direction in ("Forward", "Reverse"):
            start(api, forward_id, instance_id, direction=direction)
        for direction in ("Forward", "Reverse"):
            wait_status(api, forward_id, "Synchronizing", timeout=60, passing=("Suspending",), direction=direction)
        announce("RESUMED")
    wait_phase("stop")
    step("StopDtsJob both directions")
    for direction in ("Forward", "Reverse"):
        simple(api, "StopDtsJob", DtsJobId=forward_id, DtsInstanceId=instance_id, SynchronizationDirection=direction)
    for direction in ("Forward", "Reverse"):
        wait_status(api, forward_id, "Finished", timeout=60, passing=("Synchronizing",), direction=direction)
    announce("STOPPED")


def tencent_job(api):
    """A job created through the Tencent dialect (JOB_ID, MigrateType 3, replicating), seen and
    driven through the Alibaba one with the same key."""
    job_id = env("JOB_ID")
    step("DescribeDtsJobs(MIGRATION) lists the Tencent job %s" % job_id)
    job, raw = find_job(api, job_id, "MIGRATION")
    check(job.get("Status") == "Migrating", "a replicating Tencent job is Migrating here: %s" % job)
    check(job.get("MigrationMode", {}).get("DataSynchronization") is True, "MigrationMode: %s" % job)
    check_no_password(raw, "DescribeDtsJobs of a Tencent job")
    step("ModifyDtsJobName renames it")
    simple(api, "ModifyDtsJobName", DtsJobId=job_id, DtsJobName="renamed-through-alibaba")
    step("SuspendDtsJob, then StartDtsJob resumes it")
    simple(api, "SuspendDtsJob", DtsJobId=job_id)
    wait_status(api, job_id, "Suspending", timeout=60, passing=("Migrating",))
    announce("SUSPENDED")
    wait_phase("resume")
    simple(api, "StartDtsJob", DtsJobId=job_id)
    wait_status(api, job_id, "Migrating", timeout=60, passing=("Suspending",))
    announce("RESUMED")


def main():
    api = Api()
    mode = os.environ.get("MODE", "migration")
    print("   SDK %s" % api.kind, flush=True)
    if mode == "migration":
        migration(api)
    elif mode == "sync":
        sync(api)
    elif mode == "twoway":
        twoway(api)
    elif mode == "tencent-job":
        tencent_job(api)
    else:
        raise SystemExit("unknown MODE %r" % mode)


if __name__ == "__main__":
    run(main)
