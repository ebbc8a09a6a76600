"""Bad requests made with the official Tencent Cloud SDK get the documented error codes: bad
signatures, stale timestamps, replayed v1 nonces, unknown actions and parameters, ill-typed and
out-of-range values, illegal status changes, other accounts' jobs, throttling, a failing check,
and a tccli-style Host header that still works.

Environment: DTS_ENDPOINT, DTS_SECRET_ID, DTS_SECRET_KEY (account `default`), OTHER_SECRET_ID,
OTHER_SECRET_KEY (another account), SRC_PORT, SRC_USER, SRC_PASSWORD, DST_PORT, DST_USER,
DST_PASSWORD, DB_NAME.
"""

import threading
import time
import types

from tencentcloud.common import abstract_client
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from common import (check, check_job, client, create_job, create_request, database_info, describe_check_raw,
                    describe_job, describe_jobs, env, expect_error, job_id_request, models, plain_create_params, run, step,
                    wait_check_finished, wait_status)

MISSING_DB = "no_such_database_for_dts_check"


class patched_module_attr(object):
    """Replaces a module global the SDK uses (`time`, `random`) for the calls in a `with` block."""

    def __init__(self, module, name, replacement):
        self.module, self.name, self.replacement = module, name, replacement

    def __enter__(self):
        self.saved = getattr(self.module, self.name)
        setattr(self.module, self.name, self.replacement)

    def __exit__(self, *exc):
        setattr(self.module, self.name, self.saved)
        return False


def authentication(c):
    step("authentication")
    expect_error("AuthFailure.SignatureFailure", "a request signed with a wrong SecretKey",
                 client(secret_key="definitely-not-the-key").DescribeMigrateJobs, models.DescribeMigrateJobsRequest())
    expect_error("AuthFailure.SecretIdNotFound", "a request with an unknown SecretId",
                 client(secret_id="AKIDnoSuchKeyAtAll0000000000000000", secret_key="x").DescribeMigrateJobs,
                 models.DescribeMigrateJobsRequest())

    stale = types.SimpleNamespace(time=lambda: time.time() - 1000)
    with patched_module_attr(abstract_client, "time", stale):
        expect_error("AuthFailure.SignatureExpire", "a TC3 request whose timestamp is 1000 s old",
                     c.DescribeMigrateJobs, models.DescribeMigrateJobsRequest())
        expect_error("AuthFailure.SignatureExpire", "a v1 request whose timestamp is 1000 s old",
                     client(sign_method="HmacSHA256").DescribeMigrateJobs, models.DescribeMigrateJobsRequest())
    # The patch is gone: the same client works again.
    describe_jobs(c)

    v1 = client(sign_method="HmacSHA1")
    now = int(time.time())
    fixed_time = types.SimpleNamespace(time=lambda: now)
    fixed_nonce = types.SimpleNamespace(randint=lambda a, b: 424242424242)
    with patched_module_attr(abstract_client, "time", fixed_time), \
            patched_module_attr(abstract_client, "random", fixed_nonce):
        first = v1.DescribeMigrateJobs(models.DescribeMigrateJobsRequest())
        check(first.RequestId, "the first use of a v1 Nonce should succeed: %s" % first)
        expect_error("AuthFailure.SignatureFailure", "the identical v1 request replayed (same Nonce)",
                     v1.DescribeMigrateJobs, models.DescribeMigrateJobsRequest())
    # A fresh nonce is accepted again.
    v1.DescribeMigrateJobs(models.DescribeMigrateJobsRequest())


def parameters(c):
    step("actions, versions, regions and parameters")
    expect_error("InvalidAction", "an unknown action", c.call_json, "NoSuchAction", {})

    class OldVersionClient(type(c)):
        _apiVersion = "2017-01-01"

    old = OldVersionClient(c.credential, c.region, c.profile)
    expect_error("NoSuchVersion", "version 2017-01-01", old.DescribeMigrateJobs, models.DescribeMigrateJobsRequest())
    expect_error("UnsupportedRegion", "region xx-nowhere-1",
                 client(region="xx-nowhere-1").DescribeMigrateJobs, models.DescribeMigrateJobsRequest())

    no_name = create_request("x", [env("DB_NAME")])
    no_name.JobName = None
    expect_error("MissingParameter", "CreateMigrateJob without JobName", c.CreateMigrateJob, no_name)

    no_region = create_request("no-region", [env("DB_NAME")])
    no_region.DstInfo.Region = None
    expect_error("MissingParameter", "CreateMigrateJob without DstInfo.Region", c.CreateMigrateJob, no_region)

    ill_typed = plain_create_params("ill-typed", [env("DB_NAME")])
    ill_typed["MigrateOption"]["RunMode"] = "one"
    expect_error("InvalidParameter", "MigrateOption.RunMode as a string in a JSON body",
                 c.call_json, "CreateMigrateJob", ill_typed)

    unknown = plain_create_params("unknown-field", [env("DB_NAME")])
    unknown["NoSuchParameter"] = 1
    expect_error("UnknownParameter", "CreateMigrateJob with a parameter NoSuchParameter",
                 c.call_json, "CreateMigrateJob", unknown)

    req = models.DescribeMigrateJobsRequest()
    req.Limit = 1000
    expect_error("InvalidParameterValue", "DescribeMigrateJobs with Limit 1000", c.DescribeMigrateJobs, req)

    bad_type = create_request("bad-type", [env("DB_NAME")], migrate_type=7)
    expect_error("InvalidParameterValue", "CreateMigrateJob with MigrateType 7", c.CreateMigrateJob, bad_type)

    listed = describe_jobs(c)
    check(all(j.JobName not in ("x", "no-region", "ill-typed", "unknown-field", "bad-type") for j in listed.JobList or []),
          "a rejected CreateMigrateJob must not leave a job behind: %s" % listed)


def job_states(c):
    step("job status rules and unknown jobs")
    job_id = create_job(c, "negative-valid", [env("DB_NAME")])
    expect_error("FailedOperation.StatusInConflict", "StartMigrateJob before any check",
                 c.StartMigrateJob, job_id_request(models.StartMigrateJobRequest, job_id))
    expect_error("FailedOperation.StatusInConflict", "StopMigrateJob of a job that never ran",
                 c.StopMigrateJob, job_id_request(models.StopMigrateJobRequest, job_id))
    check(describe_job(c, job_id).Status == 1, "refused calls must not change the job's status")

    for action, cls in (("StartMigrateJob", models.StartMigrateJobRequest),
                        ("DeleteMigrateJob", models.DeleteMigrateJobRequest),
                        ("DescribeMigrateCheckJob", models.DescribeMigrateCheckJobRequest),
                        ("CreateMigrateCheckJob", models.CreateMigrateCheckJobRequest)):
        expect_error("ResourceNotFound.JobNotExist", "%s of an unknown job" % action,
                     getattr(c, action), job_id_request(cls, "dts-doesnotexist"))
    return job_id


def other_account(c, job_id):
    step("another account cannot see or touch the job")
    other = client(secret_id=env("OTHER_SECRET_ID"), secret_key=env("OTHER_SECRET_KEY"))
    filtered = describe_jobs(other, job_id)
    check(filtered.TotalCount == 0 and not filtered.JobList,
          "another account's DescribeMigrateJobs(JobId) should find nothing: %s" % filtered)
    everything = describe_jobs(other)
    check(all(j.JobId != job_id for j in everything.JobList or []),
          "another account's DescribeMigrateJobs should not list the job: %s" % everything)
    for action, cls in (("StartMigrateJob", models.StartMigrateJobRequest),
                        ("DeleteMigrateJob", models.DeleteMigrateJobRequest),
                        ("DescribeMigrateCheckJob", models.DescribeMigrateCheckJobRequest),
                        ("CreateMigrateCheckJob", models.CreateMigrateCheckJobRequest)):
        expect_error("ResourceNotFound.JobNotExist", "%s of another account's job" % action,
                     getattr(other, action), job_id_request(cls, job_id))
    modify = job_id_request(models.ModifyMigrateJobRequest, job_id)
    modify.JobName = "stolen"
    expect_error("ResourceNotFound.JobNotExist", "ModifyMigrateJob of another account's job", other.ModifyMigrateJob,
                 modify)
    job = describe_job(c, job_id)
    check(job.Status == 1 and job.JobName == "negative-valid",
          "the owner's job must be untouched by the other account: %s" % job)


def failing_check(c):
    step("a check that fails: DatabaseInfo names a database the source does not have")
    job_id = create_job(c, "negative-failing-check", [env("DB_NAME"), MISSING_DB])
    check_job(c, job_id)
    result = wait_check_finished(c, job_id)
    check(result.CheckFlag == 0, "a failed check should have CheckFlag 0: %s" % result)
    check(result.ErrorMessage, "a failed check should explain itself in ErrorMessage: %s" % result)
    job = wait_status(c, job_id, 5, timeout=10, passing=(3,))
    raw = describe_check_raw(c, job_id)
    items = raw.get("CheckItems")
    check(isinstance(items, list) and items, "DescribeMigrateCheckJob should list CheckItems: %s" % raw)
    # Every item has name, description and outcome; a failed one says what was expected and found,
    # a warning has a detail (hint is optional).
    required = {"passed": (), "warning": ("detail",), "failed": ("expected", "found")}
    for item in items:
        for key in ("name", "description", "outcome"):
            check(item.get(key), "check item lacks %r: %s" % (key, item))
        check(item["outcome"] in required, "check item outcome is not documented: %s" % item)
        for key in required[item["outcome"]]:
            check(item.get(key), "a %s check item lacks %r: %s" % (item["outcome"], key, item))
    failed = [i for i in items if i["outcome"] == "failed"]
    check(failed, "a check with CheckFlag 0 should have a failed item: %s" % items)
    message = result.ErrorMessage
    check(any(i["name"] in message or (i["description"] and i["description"] in message) for i in failed),
          "ErrorMessage %r should name the failed item (one of %s)" % (message, [i["name"] for i in failed]))
    mentioned = message + " ".join(str(i.get(k)) for i in failed for k in ("found", "detail", "expected", "hint"))
    check(MISSING_DB in mentioned, "the failed check should name the missing database %s: %r / %s"
          % (MISSING_DB, message, failed))
    print("   failed check: %s" % message, flush=True)
    expect_error("FailedOperation.StatusInConflict", "StopMigrateJob of a job in status 5",
                 c.StopMigrateJob, job_id_request(models.StopMigrateJobRequest, job_id))
    expect_error("FailedOperation.StatusInConflict", "StartMigrateJob of a job in status 5",
                 c.StartMigrateJob, job_id_request(models.StartMigrateJobRequest, job_id))
    check(describe_job(c, job_id).Status == 5, "refused calls must not change status 5: %s" % job)

    step("a job whose check failed can be modified, which sends it back to status 1")
    modify = job_id_request(models.ModifyMigrateJobRequest, job_id)
    modify.DatabaseInfo = database_info([env("DB_NAME")])
    c.ModifyMigrateJob(modify)
    job = describe_job(c, job_id)
    check(job.Status == 1, "ModifyMigrateJob of a job in status 5 should reset it to status 1: %s" % job)
    check(MISSING_DB not in (job.DatabaseInfo or ""), "the modified DatabaseInfo should be stored: %s" % job)
    raw = describe_check_raw(c, job_id)
    check(raw.get("CheckFlag") != 0 and raw.get("Status") != "finished",
          "a modified job's old check result should be gone: %s" % raw)
    return job_id


def data_migration_not_offered(c):
    step("an engine dts cannot migrate yet (mongodb) is refused at CreateMigrateJob and leaves no job")
    req = create_request("negative-mongodb", [env("DB_NAME")])
    req.SrcDatabaseType = "mongodb"
    req.DstDatabaseType = "mongodb"
    expect_error("OperationDenied.MigrateServiceSupportError", "CreateMigrateJob of a mongodb job", c.CreateMigrateJob, req)
    step("a MySQL source with a Redis destination is refused the same way")
    req = create_request("negative-mysql-to-redis", [env("DB_NAME")])
    req.DstDatabaseType = "redis"
    expect_error("OperationDenied.MigrateServiceSupportError", "CreateMigrateJob mysql -> redis", c.CreateMigrateJob, req)


def tccli_host(job_id):
    step("a tccli-style endpoint with its scheme (Host: http://127.0.0.1:PORT)")
    tccli = client(endpoint="http://" + env("DTS_ENDPOINT"), protocol=None)
    job = describe_job(tccli, job_id)
    check(job.JobId == job_id, "the tccli-style client should see the job: %s" % job)


def throttling(job_id):
    step("40 concurrent StopMigrateJob calls on one job are throttled")
    # Let the bucket refill from the earlier StopMigrateJob calls.
    time.sleep(1.5)
    n = 40
    clients = [client() for _ in range(n)]
    barrier = threading.Barrier(n)
    codes = [None] * n

    def call(i):
        barrier.wait()
        try:
            clients[i].StopMigrateJob(job_id_request(models.StopMigrateJobRequest, job_id))
            codes[i] = "ok"
        except TencentCloudSDKException as e:
            codes[i] = e.get_code()
        except Exception as e:  # noqa: BLE001 - reported below
            codes[i] = "client error %r" % e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    limited = codes.count("RequestLimitExceeded")
    answered = codes.count("FailedOperation.StatusInConflict")
    print("   answers: %s" % {code: codes.count(code) for code in set(codes)}, flush=True)
    check(limited >= 1, "40 concurrent calls of one action should meet RequestLimitExceeded: %s" % codes)
    check(answered >= 19, "at least 19 of 40 concurrent calls (burst 20) should be served: %s" % codes)
    check(limited + answered == n, "every call should be either served or throttled: %s" % codes)


def main():
    c = client()
    authentication(c)
    parameters(c)
    job_id = job_states(c)
    other_account(c, job_id)
    failed_id = failing_check(c)
    data_migration_not_offered(c)
    tccli_host(job_id)
    throttling(failed_id)


if __name__ == "__main__":
    run(main)
