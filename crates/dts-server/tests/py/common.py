"""Shared helpers of the SDK scripts run by tests/tencent_sdk.rs: official SDK clients built from
the environment, request builders, polling and error assertions. Uses only the official
Tencent Cloud Python SDK (tencentcloud-sdk-python-dts / -common)."""

import json
import os
import sys
import time
import traceback

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.dts.v20180330 import dts_client, models

REGION = "ap-guangzhou"


class Failure(AssertionError):
    """An expectation about the server's answers did not hold."""


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        raise Failure("environment variable %s is not set" % name)
    return value


def check(condition, message):
    if not condition:
        raise Failure(message)


def step(message):
    print("--", message, flush=True)


def client(secret_id=None, secret_key=None, sign_method=None, req_method="POST", endpoint=None, protocol="http",
           region=REGION):
    """A DtsClient for the server under test (TC3-HMAC-SHA256 over POST unless told)."""
    cred = credential.Credential(secret_id or env("DTS_SECRET_ID"), secret_key or env("DTS_SECRET_KEY"))
    http = HttpProfile(endpoint=endpoint or env("DTS_ENDPOINT"), protocol=protocol, reqMethod=req_method,
                       reqTimeout=30)
    profile = ClientProfile(signMethod=sign_method, httpProfile=http)
    return dts_client.DtsClient(cred, region, profile)


def client_from_env():
    """The client that SIGN_METHOD selects: TC3 over POST (default) or v1 HmacSHA256 over GET."""
    sign = os.environ.get("SIGN_METHOD", "TC3-HMAC-SHA256")
    if sign == "TC3-HMAC-SHA256":
        return client()
    if sign in ("HmacSHA256", "HmacSHA1"):
        return client(sign_method=sign, req_method="GET")
    raise Failure("unknown SIGN_METHOD %r" % sign)


def database_info(databases):
    """`DatabaseInfo` is a JSON *string* in 2018-03-30."""
    return json.dumps([{"Database": d} for d in databases])


def create_request(name, databases, src_port=None, dst_port=None, migrate_type=1):
    """A CreateMigrateJobRequest for a structure migration between the two throwaway MariaDBs."""
    req = models.CreateMigrateJobRequest()
    req.JobName = name
    opt = models.MigrateOption()
    opt.RunMode = 1
    opt.MigrateType = migrate_type
    opt.MigrateObject = 2
    opt.ConsistencyType = 4
    opt.IsOverrideRoot = 0
    req.MigrateOption = opt
    req.SrcDatabaseType = "mariadb"
    req.SrcAccessType = "extranet"
    src = models.SrcInfo()
    src.Ip = "127.0.0.1"
    src.Port = int(src_port or env("SRC_PORT"))
    src.User = env("SRC_USER", "root")
    src.Password = env("SRC_PASSWORD", "")
    req.SrcInfo = src
    req.DstDatabaseType = "mariadb"
    req.DstAccessType = "cdb"
    dst = models.DstInfo()
    dst.Region = REGION
    dst.Ip = "127.0.0.1"
    dst.Port = int(dst_port or env("DST_PORT"))
    dst.User = env("DST_USER", "root")
    dst.Password = env("DST_PASSWORD", "")
    req.DstInfo = dst
    req.DatabaseInfo = database_info(databases)
    return req


def create_params(name, databases):
    """The same request as plain JSON params, for `call_json` with deliberately bad fields."""
    return json.loads(create_request(name, databases).to_json_string())


def _nulls_dropped(value):
    if isinstance(value, dict):
        return {k: _nulls_dropped(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_nulls_dropped(v) for v in value]
    return value


def plain_create_params(name, databases):
    return _nulls_dropped(create_params(name, databases))


def create_job(c, name, databases):
    resp = c.CreateMigrateJob(create_request(name, databases))
    check(resp.JobId, "CreateMigrateJob returned no JobId: %s" % resp)
    check(resp.RequestId, "CreateMigrateJob returned no RequestId: %s" % resp)
    return resp.JobId


def describe_jobs(c, job_id=None, **fields):
    req = models.DescribeMigrateJobsRequest()
    if job_id is not None:
        req.JobId = job_id
    for k, v in fields.items():
        setattr(req, k, v)
    return c.DescribeMigrateJobs(req)


def describe_job(c, job_id):
    """The one MigrateJobInfo of `job_id` (fails unless exactly one is listed)."""
    resp = describe_jobs(c, job_id)
    check(resp.TotalCount == 1 and resp.JobList and len(resp.JobList) == 1,
          "DescribeMigrateJobs(JobId=%s) should list exactly that job: %s" % (job_id, resp))
    job = resp.JobList[0]
    check(job.JobId == job_id, "DescribeMigrateJobs(JobId=%s) listed another job: %s" % (job_id, job))
    return job


def job_id_request(cls, job_id):
    req = cls()
    req.JobId = job_id
    return req


def check_job(c, job_id):
    return c.CreateMigrateCheckJob(job_id_request(models.CreateMigrateCheckJobRequest, job_id))


def describe_check(c, job_id):
    return c.DescribeMigrateCheckJob(job_id_request(models.DescribeMigrateCheckJobRequest, job_id))


def describe_check_raw(c, job_id):
    """DescribeMigrateCheckJob as JSON, with the `CheckItems` extension the model does not know."""
    return c.call_json("DescribeMigrateCheckJob", {"JobId": job_id})["Response"]


def wait_check_finished(c, job_id, timeout=60):
    deadline = time.time() + timeout
    seen = []
    while True:
        resp = describe_check(c, job_id)
        if not seen or seen[-1] != (resp.Status, resp.Progress):
            seen.append((resp.Status, resp.Progress))
        check(resp.Status in ("unavailable", "starting", "running", "finished"),
              "DescribeMigrateCheckJob.Status %r is not a documented value" % resp.Status)
        if resp.Status == "finished":
            return resp
        check(time.time() < deadline,
              "the check of %s did not finish within %s s; (Status, Progress) seen: %s" % (job_id, timeout, seen))
        time.sleep(0.3)


def wait_status(c, job_id, wanted, timeout=120, passing=()):
    """Polls DescribeMigrateJobs until the job's Status is `wanted`; any status outside
    `passing` + `wanted` fails at once."""
    deadline = time.time() + timeout
    seen = []
    while True:
        job = describe_job(c, job_id)
        if not seen or seen[-1] != job.Status:
            seen.append(job.Status)
        if job.Status == wanted:
            return job
        check(not passing or job.Status in passing,
              "job %s went to status %s while waiting for %s (statuses seen %s); ErrorInfo: %s; Detail: %s"
              % (job_id, job.Status, wanted, seen, job.ErrorInfo, job.Detail))
        check(time.time() < deadline,
              "job %s did not reach status %s within %s s (statuses seen %s); Detail: %s"
              % (job_id, wanted, timeout, seen, job.Detail))
        time.sleep(0.5)


def expect_error(code, what, fn, *args, **kwargs):
    """Runs `fn`, which must fail with the documented error `code` and a RequestId."""
    try:
        result = fn(*args, **kwargs)
    except TencentCloudSDKException as e:
        check(e.get_code() == code, "%s: expected error %s, got %s" % (what, code, e))
        check(e.get_request_id(), "%s: the %s error carries no RequestId: %s" % (what, code, e))
        check(e.get_message(), "%s: the %s error carries no Message: %s" % (what, code, e))
        print("   %s -> %s (%s)" % (what, code, e.get_message()), flush=True)
        return e
    raise Failure("%s: expected error %s, but the call succeeded: %s" % (what, code, result))


def run(main):
    """Runs `main()` and turns a failed expectation or an unexpected SDK error into exit 1."""
    try:
        main()
    except Failure as e:
        traceback.print_exception(e, chain=False)
        print("FAILED:", e, file=sys.stderr, flush=True)
        sys.exit(1)
    except TencentCloudSDKException as e:
        traceback.print_exception(e, chain=False)
        print("FAILED with an unexpected SDK error:", e, file=sys.stderr, flush=True)
        sys.exit(1)
    print("OK", flush=True)
