"""Bad requests to the Alibaba Cloud DTS 2020-01-01 dialect get the documented errors, seen through
an official Alibaba SDK (ALI_SDK: tea, tea-v2 or core; see ali_common.py): a wrong secret, an
unknown AccessKeyId, a job nobody bought, a Reverse start of a one-way instance, a DbList renaming
two databases to one name, a start before ConfigureDtsJob, throttling; and, signed by hand because no SDK can be made to send them, a
replayed nonce, a stale timestamp (RPC v1 and ACS3) and a Format=XML answer.

Environment: DTS_ENDPOINT, DTS_SECRET_ID, DTS_SECRET_KEY, ALI_SDK.
"""

import json
import threading
import time
from urllib.parse import urlencode

from ali_common import (Api, ApiError, Failure, REGION, acs3_signed_headers, check, create_instance, endpoints, env,
                        expect_error, raw_json, raw_post, rpc_v1_signed_query, run, step, utc_timestamp)

THROTTLE_CALLS = 60
THROTTLE_WAVES = 3


def authentication(api):
    step("authentication (%s)" % api.kind)
    wrong = Api(api.kind, secret="definitely-not-the-secret")
    # aliyunsdkcore compares what follows the first ':' of a 400 SignatureDoesNotMatch message with
    # its own string to sign: when they are equal (the server saw exactly what the client signed) it
    # rewrites the code to InvalidAccessKeySecret. Without a ':' it would crash with IndexError.
    codes = ("InvalidAccessKeySecret", "SignatureDoesNotMatch") if api.kind == "core" else ("SignatureDoesNotMatch",)
    e = expect_error(codes, "DescribeDtsJobs signed with a wrong AccessKeySecret", wrong.call, "DescribeDtsJobs",
                     http_status=400)
    if api.kind != "core" or e.code == "SignatureDoesNotMatch":
        check(":" in (e.message or ""), "the SignatureDoesNotMatch message should carry ':<string to sign>': %r" % e.message)
    if api.kind == "core" and e.code == "SignatureDoesNotMatch":
        print("   NOTE: the string to sign after ':' differs from the one aliyunsdkcore signed", flush=True)

    unknown = Api(api.kind, access_key_id="LTAInoSuchKeyAtAll000000", secret="x")
    expect_error("InvalidAccessKeyId.NotFound", "DescribeDtsJobs with an unknown AccessKeyId", unknown.call,
                 "DescribeDtsJobs")
    # The right key still works.
    api.call("DescribeDtsJobs", JobType="MIGRATION", PageSize=10, PageNumber=1)


def job_errors(api):
    step("jobs nobody bought, wrong directions, unconfigured jobs")
    expect_error("OperationDenied.NotPurchased", "StartDtsJob of a DtsJobId nobody created", api.call, "StartDtsJob",
                 DtsJobId="dtsnosuchjob0000", http_status=403)

    instance_id, job_id = create_instance(api, "SYNC", SyncArchitecture="oneway")
    print("   one-way instance %s, job %s" % (instance_id, job_id), flush=True)
    e = expect_error("InvalidParameter", "StartDtsJob(SynchronizationDirection=Reverse) of a one-way instance", api.call,
                     "StartDtsJob", DtsJobId=job_id, DtsInstanceId=instance_id, SynchronizationDirection="Reverse")
    texts = [e.message or ""]
    if e.data is not None:  # tea exposes the whole body; core only Code/Message/RequestId
        texts += [str(e.data.get(k) or "") for k in ("DynamicMessage", "Message", "ErrMessage")]
    check(any("SynchronizationDirection" in t for t in texts),
          "the InvalidParameter answer should name SynchronizationDirection (Message or DynamicMessage): %s / %s"
          % (e.message, e.data))

    # Two databases renamed to one destination name: refused when the job is configured.
    colliding = json.dumps({"a": {"name": "x", "all": True}, "b": {"name": "x", "all": True}})
    params = dict(DtsInstanceId=instance_id, DtsJobId=job_id, DtsJobName="collide", JobType="SYNC",
                  StructureInitialization=True, DataInitialization=True, DataSynchronization=True, DbList=colliding)
    params.update(endpoints())
    e = expect_error("InvalidParameter", "ConfigureDtsJob renaming two databases to one name", api.call,
                     "ConfigureDtsJob", **params)
    texts = [e.message or ""]
    if e.data is not None:
        texts += [str(e.data.get(k) or "") for k in ("DynamicMessage", "Message", "ErrMessage")]
    check(any("`x`" in t for t in texts), "the InvalidParameter answer should name the destination `x`: %s / %s"
          % (e.message, e.data))

    try:
        result = api.call("StartDtsJob", DtsJobId=job_id, DtsInstanceId=instance_id)
    except ApiError as err:
        print("   StartDtsJob of an unconfigured job -> %s HTTP %s (%s)" % (err.code, err.http_status, err.message), flush=True)
        check(err.http_status is not None and 400 <= err.http_status < 500,
              "StartDtsJob of an unconfigured job should be a 4xx answer: %s" % err)
        check(err.request_id, "the error should carry a RequestId: %s" % err)
        if err.code != "OperationDenied.JobNotConfigured":
            print("   NOTE: expected code OperationDenied.JobNotConfigured, got %s" % err.code, flush=True)
    else:
        raise Failure("StartDtsJob of job %s before ConfigureDtsJob should fail: %s" % (job_id, result))


def replay_and_clock():
    step("raw RPC v1 (HMAC-SHA1): a replayed SignatureNonce and a stale Timestamp")
    query = rpc_v1_signed_query("DescribeDtsJobs", {"JobType": "MIGRATION", "PageSize": 10, "PageNumber": 1})
    status, _, body = raw_post(query)
    first = raw_json(status, body, "a hand-signed RPC v1 DescribeDtsJobs")
    check(status == 200 and first.get("Success") is True,
          "a correctly hand-signed RPC v1 request should succeed: HTTP %s %s" % (status, first))
    status, _, body = raw_post(query)
    again = raw_json(status, body, "the same signed URL again")
    check(status == 400 and again.get("Code") == "SignatureNonceUsed",
          "the same signed URL sent twice should get HTTP 400 SignatureNonceUsed: HTTP %s %s" % (status, again))
    check(again.get("RequestId"), "the SignatureNonceUsed answer should carry a RequestId: %s" % again)
    print("   replayed nonce -> HTTP %s %s (%s)" % (status, again.get("Code"), again.get("Message")), flush=True)

    stale = rpc_v1_signed_query("DescribeDtsJobs", {"JobType": "MIGRATION"}, timestamp=utc_timestamp(-20 * 60))
    status, _, body = raw_post(stale)
    err = raw_json(status, body, "a Timestamp 20 minutes old")
    check(status == 400 and err.get("Code") == "InvalidTimeStamp.Expired",
          "a Timestamp 20 minutes old should get HTTP 400 InvalidTimeStamp.Expired: HTTP %s %s" % (status, err))
    print("   stale Timestamp -> HTTP %s %s (%s)" % (status, err.get("Code"), err.get("Message")), flush=True)

    step("raw ACS3-HMAC-SHA256: a replayed x-acs-signature-nonce and a stale x-acs-date")
    params = {"JobType": "MIGRATION", "PageSize": "10", "PageNumber": "1"}
    headers = acs3_signed_headers("DescribeDtsJobs", params)
    status, _, body = raw_post(urlencode(params), headers)
    first = raw_json(status, body, "a hand-signed ACS3 DescribeDtsJobs")
    check(status == 200 and first.get("Success") is True,
          "a correctly hand-signed ACS3 request should succeed: HTTP %s %s" % (status, first))
    status, _, body = raw_post(urlencode(params), headers)
    again = raw_json(status, body, "the same ACS3 request again")
    check(status == 400 and again.get("Code") == "SignatureNonceUsed",
          "the same ACS3 request sent twice should get HTTP 400 SignatureNonceUsed: HTTP %s %s" % (status, again))
    print("   replayed ACS3 nonce -> HTTP %s %s" % (status, again.get("Code")), flush=True)
    headers = acs3_signed_headers("DescribeDtsJobs", params, date=utc_timestamp(-20 * 60))
    status, _, body = raw_post(urlencode(params), headers)
    err = raw_json(status, body, "an x-acs-date 20 minutes old")
    check(status == 400 and err.get("Code") == "InvalidTimeStamp.Expired",
          "an x-acs-date 20 minutes old should get HTTP 400 InvalidTimeStamp.Expired: HTTP %s %s" % (status, err))
    print("   stale x-acs-date -> HTTP %s %s" % (status, err.get("Code")), flush=True)


def xml_format():
    step("raw RPC v1 with Format=XML")
    time.sleep(1.5)  # the DescribeDtsJobs calls above may have used this second's 20 requests
    query = rpc_v1_signed_query("DescribeDtsJobs", {"JobType": "MIGRATION", "PageSize": 10, "PageNumber": 1}, fmt="XML")
    status, headers, body = raw_post(query)
    text = body.decode("utf-8", "replace")
    check(status == 200, "DescribeDtsJobs with Format=XML should succeed: HTTP %s %s" % (status, text[:500]))
    ctype = headers.get("content-type", "")
    check("xml" in ctype.lower(), "a Format=XML answer should have an XML Content-Type, not %r" % ctype)
    stripped = text.lstrip()
    check(stripped.startswith("<?xml") or stripped.startswith("<DescribeDtsJobsResponse>"),
          "a Format=XML answer should start with <?xml or <DescribeDtsJobsResponse>: %r" % text[:200])
    check("<RequestId>" in text, "a Format=XML answer should contain <RequestId>: %r" % text[:500])
    print("   Format=XML -> %s, %s..." % (ctype, stripped[:60]), flush=True)


def throttle_wave(clients):
    """All clients call DescribeDtsJobs at once; returns each call's outcome ("ok" or a code)."""
    n = len(clients)
    barrier = threading.Barrier(n)
    outcomes = [None] * n

    def call(i):
        try:
            barrier.wait(30)
            clients[i].call("DescribeDtsJobs", JobType="MIGRATION", PageSize=10, PageNumber=1)
            outcomes[i] = "ok"
        except ApiError as e:
            outcomes[i] = e.code
        except Exception as e:  # noqa: BLE001 - reported below
            outcomes[i] = "client error %s: %s" % (type(e).__name__, e)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def throttling(api):
    step("%d concurrent DescribeDtsJobs calls meet Throttling.User" % THROTTLE_CALLS)
    time.sleep(1.5)  # let the bucket refill from the calls above
    clients = [Api(api.kind) for _ in range(THROTTLE_CALLS)]
    outcomes = []
    # A slow SDK (tea signs in pure Python under the GIL) may not outrun a generous bucket in one
    # wave; further waves follow at once, so the bucket drains whenever the calls outrun its rate.
    for wave in range(1, THROTTLE_WAVES + 1):
        started = time.time()
        answers = throttle_wave(clients)
        outcomes += answers
        counts = {o: answers.count(o) for o in set(answers)}
        print("   wave %d (%.2f s): %s" % (wave, time.time() - started, counts), flush=True)
        if "Throttling.User" in answers:
            break
    counts = {o: outcomes.count(o) for o in set(outcomes)}
    check(outcomes.count("Throttling.User") >= 1,
          "%d rapid calls (%d waves) should meet Throttling.User: %s" % (len(outcomes), wave, counts))
    check(outcomes.count("ok") >= 1, "some of %d rapid calls should be served: %s" % (len(outcomes), counts))
    check(all(o in ("ok", "Throttling.User") for o in outcomes),
          "every call should be either served or throttled: %s" % counts)


def main():
    env("DTS_ENDPOINT")
    api = Api()
    print("   SDK %s, region %s" % (api.kind, REGION), flush=True)
    authentication(api)
    job_errors(api)
    replay_and_clock()
    xml_format()
    throttling(api)


if __name__ == "__main__":
    run(main)
