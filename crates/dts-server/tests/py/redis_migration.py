"""A Redis -> Redis synchronization driven by the official Tencent Cloud SDK: CreateMigrateJob
with `redis` on both sides, MigrateType 3, DatabaseInfo selecting databases 0 and 3, and the
Redis ExternParams; check, start, wait for ReadyComplete under writes, CompleteMigrateJob
(waitForSync) once the test says its writes are done, Success.

Environment: DTS_ENDPOINT, DTS_SECRET_ID, DTS_SECRET_KEY, SRC_PORT, DST_PORT, DST_PASSWORD,
WRITES_DONE (a file the test creates when its writes are finished).
"""

import json
import os
import time

from common import (REGION, check, check_job, client_from_env, describe_job, env, job_id_request, models, step,
                    wait_check_finished, wait_status)

EXTERN = {"ClientOutputBufferHardLimit": 512, "ClientOutputBufferSoftLimit": 512,
          "ClientOutputBufferPersistTime": 60, "ReplBacklogSize": 64, "ReplTimeout": 120}


def main():
    c = client_from_env()
    req = models.CreateMigrateJobRequest()
    req.JobName = "sdk-redis-sync"
    opt = models.MigrateOption()
    opt.RunMode = 1
    opt.MigrateType = 3
    opt.MigrateObject = 2
    opt.ConsistencyType = 4
    opt.IsOverrideRoot = 0
    opt.ExternParams = json.dumps(EXTERN)
    req.MigrateOption = opt
    req.SrcDatabaseType = "redis"
    req.SrcAccessType = "extranet"
    src = models.SrcInfo()
    src.Ip = "127.0.0.1"
    src.Port = int(env("SRC_PORT"))
    req.SrcInfo = src
    req.DstDatabaseType = "redis"
    req.DstAccessType = "extranet"
    dst = models.DstInfo()
    dst.Region = REGION
    dst.Ip = "127.0.0.1"
    dst.Port = int(env("DST_PORT"))
    dst.Password = env("DST_PASSWORD")
    req.DstInfo = dst
    req.DatabaseInfo = json.dumps([{"Database": "0"}, {"Database": "3"}])
    step("CreateMigrateJob redis -> redis, MigrateType 3, databases 0 and 3, ExternParams")
    job_id = c.CreateMigrateJob(req).JobId
    print("JOB_ID=%s" % job_id, flush=True)
    job = describe_job(c, job_id)
    check(job.SrcDatabaseType == "redis" and job.DstDatabaseType == "redis", "types echoed: %s" % job)
    check(job.DstInfo.Password == "", "DescribeMigrateJobs must not return the password")
    check(json.loads(job.MigrateOption.ExternParams) == EXTERN, "ExternParams echoed: %s" % job.MigrateOption)

    step("CreateMigrateCheckJob")
    check_job(c, job_id)
    result = wait_check_finished(c, job_id)
    check(result.CheckFlag == 1, "the Redis precheck should pass: %s" % result)

    step("StartMigrateJob, wait for ReadyComplete (8) under writes")
    c.StartMigrateJob(job_id_request(models.StartMigrateJobRequest, job_id))
    job = wait_status(c, job_id, 8, timeout=180, passing=(4, 7))
    steps = [s.StepId for s in job.Detail.StepInfo]
    check("FullDataMigration" in steps and "IncrementalMigration" in steps, "Redis steps: %s" % steps)
    print("READY", flush=True)

    step("waiting for the test's writes to end")
    deadline = time.time() + 120
    while not os.path.exists(env("WRITES_DONE")):
        check(time.time() < deadline, "the test's writes did not end")
        time.sleep(0.2)

    step("CompleteMigrateJob (waitForSync), wait for Success (9)")
    req = job_id_request(models.CompleteMigrateJobRequest, job_id)
    req.CompleteMode = "waitForSync"
    c.CompleteMigrateJob(req)
    job = wait_status(c, job_id, 9, timeout=120, passing=(8, 12))
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
