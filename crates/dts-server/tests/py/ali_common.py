"""Shared helpers of the Alibaba Cloud DTS (2020-01-01, RPC style) SDK scripts: one uniform `Api`
wrapper over the official, unmodified Alibaba SDKs, polling and error assertions, and a raw-HTTP
signer for what no SDK can be made to send (replayed nonces, stale timestamps, Format=XML).

ALI_SDK selects the client:
  tea     alibabacloud-dts20200101 + alibabacloud-tea-openapi, default ACS3-HMAC-SHA256 (default)
  tea-v2  the same package with Config(signature_algorithm='v2'): RPC v1 HMAC-SHA1
  core    aliyun-python-sdk-core AcsClient + aliyunsdkdts.request.v20200101.*Request: RPC v1 HMAC-SHA1

Environment: DTS_ENDPOINT (host:port), DTS_SECRET_ID (AccessKeyId), DTS_SECRET_KEY (AccessKeySecret),
SRC_PORT, SRC_USER, SRC_PASSWORD, DST_PORT, DST_USER, DST_PASSWORD (user root, empty password
unless told), DB_NAME, ALI_SDK.
"""

import base64
import datetime
import hashlib
import hmac
import importlib
import json
import logging
import os
import re
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
from urllib.parse import quote

# aliyunsdkcore hands HTTP_PROXY/HTTPS_PROXY to requests explicitly, so NO_PROXY is ignored:
# a proxy in the environment would swallow every call to 127.0.0.1.
for _proxy_var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy_var, None)

REGION = "cn-hangzhou"
VERSION = "2020-01-01"
SDK_KINDS = ("tea", "tea-v2", "core")


class Failure(AssertionError):
    """An expectation about the server's answers did not hold."""


class ApiError(Exception):
    """An error answer of the server, the same whichever SDK raised it.

    `data` is the parsed error body where the SDK exposes it (tea: the whole body plus
    `statusCode`; core exposes only Code/Message/RequestId, so `data` is None there)."""

    def __init__(self, code, http_status, message, request_id, data=None, sdk=None):
        super().__init__("%s (HTTP %s): %s [RequestId %s]" % (code, http_status, message, request_id))
        self.code = code
        self.http_status = http_status
        self.message = message
        self.request_id = request_id
        self.data = data
        self.sdk = sdk


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


def sdk_kind():
    kind = os.environ.get("ALI_SDK", "tea")
    check(kind in SDK_KINDS, "ALI_SDK must be one of %s, not %r" % (", ".join(SDK_KINDS), kind))
    return kind


def snake_case(action):
    """`DescribeDtsJobDetail` -> `describe_dts_job_detail` (the tea client's method names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


class Api(object):
    """One official Alibaba SDK client pointed at DTS_ENDPOINT over plain HTTP.

    `call(action, **params)` builds the SDK's own request model/class for `action`, sets the
    params given by their wire names (`DtsJobId`, `SourceEndpointIP`, ...), sends it and returns
    the response body as a plain dict; an error answer raises `ApiError`. A param that the SDK's
    request class does not know is a `Failure` (the SDK cannot express it), never silently dropped.
    `last_raw` holds the body of the last successful answer as the server sent it (JSON-decoded),
    before any model parsing (the tea models drop fields they do not know)."""

    def __init__(self, kind=None, access_key_id=None, secret=None, endpoint=None):
        self.kind = kind or sdk_kind()
        self.access_key_id = access_key_id or env("DTS_SECRET_ID")
        self.secret = secret if secret is not None else env("DTS_SECRET_KEY")
        self.endpoint = endpoint or env("DTS_ENDPOINT")
        self.last_raw = None
        if self.kind in ("tea", "tea-v2"):
            self._init_tea()
        elif self.kind == "core":
            self._init_core()
        else:
            raise Failure("unknown SDK kind %r" % self.kind)

    # -- alibabacloud-dts20200101 (tea) -------------------------------------------------------
    def _init_tea(self):
        from alibabacloud_dts20200101 import models as dts_20200101_models
        from alibabacloud_dts20200101.client import Client as DtsClient
        from alibabacloud_tea_openapi import exceptions as open_api_exceptions
        from alibabacloud_tea_openapi.models import Config
        from darabonba.exceptions import ResponseException
        from darabonba.runtime import RuntimeOptions

        api = self

        class RecordingClient(DtsClient):
            """Unchanged client; only remembers the raw body `call_api` got before model parsing."""

            def call_api(self, params, request, runtime):
                result = super().call_api(params, request, runtime)
                if isinstance(result, dict):
                    api.last_raw = result.get("body")
                return result

        config = Config(access_key_id=self.access_key_id, access_key_secret=self.secret, region_id=REGION,
                        endpoint=self.endpoint, protocol="http", read_timeout=30000, connect_timeout=5000)
        if self.kind == "tea-v2":
            config.signature_algorithm = "v2"
        self._tea_models = dts_20200101_models
        self._tea_client = RecordingClient(config)
        self._tea_runtime = RuntimeOptions
        # Error answers (HTTP 4xx/5xx with a JSON body): ClientException, ServerException,
        # ThrottlingException (when x-acs-retry-after is set). A transport failure or a body that is
        # not JSON comes as darabonba's UnretryableException and is left to propagate.
        self._tea_errors = (open_api_exceptions.AlibabaCloudException, ResponseException)

    def _call_tea(self, action, params):
        cls = getattr(self._tea_models, action + "Request", None)
        check(cls is not None, "alibabacloud-dts20200101 has no request model %sRequest" % action)
        method = getattr(self._tea_client, snake_case(action) + "_with_options", None)
        check(method is not None, "alibabacloud-dts20200101's Client has no method %s_with_options"
              % snake_case(action))
        # The models' from_map/to_map use the wire names; from_map fills the snake_case fields.
        req = cls().from_map(dict(params))
        known = req.to_map()
        missing = [k for k in params if k not in known]
        check(not missing, "the tea model %sRequest has no field for %s: the SDK cannot send it" % (action, missing))
        try:
            resp = method(req, self._tea_runtime())
        except self._tea_errors as e:
            raise self._tea_error(e) from None
        body = resp.body
        return body.to_map() if body is not None else {}

    def _tea_error(self, e):
        data = getattr(e, "data", None)
        status = getattr(e, "status_code", None) or getattr(e, "statusCode", None)
        if status is None and isinstance(data, dict):
            status = data.get("statusCode")
        message = getattr(e, "message", None)
        request_id = getattr(e, "request_id", None)
        if isinstance(data, dict):
            message = data.get("Message") or data.get("message") or message
            request_id = request_id or data.get("RequestId")
        return ApiError(getattr(e, "code", None), status, message, request_id, data=data if isinstance(data, dict) else None,
                        sdk=self.kind)

    # -- aliyun-python-sdk-core + aliyun-python-sdk-dts (core) --------------------------------
    def _init_core(self):
        from aliyunsdkcore.acs_exception.exceptions import ServerException
        from aliyunsdkcore.client import AcsClient

        # Error answers are logged by the SDK at ERROR level; the scripts report them themselves.
        logging.getLogger("aliyunsdkcore").setLevel(logging.CRITICAL)
        # auto_retry=False: one SDK call is one HTTP request (DTS actions are not retried by the
        # default policy anyway; this also keeps I/O errors from being retried).
        self._core_client = AcsClient(self.access_key_id, self.secret, REGION, auto_retry=False, timeout=30,
                                      connect_timeout=5)
        self._core_server_exception = ServerException

    def _call_core(self, action, params):
        try:
            module = importlib.import_module("aliyunsdkdts.request.v20200101.%sRequest" % action)
        except ImportError:
            raise Failure("aliyun-python-sdk-dts has no request class %sRequest" % action) from None
        req = getattr(module, action + "Request")()
        req.set_endpoint(self.endpoint)
        missing = [k for k in params if not hasattr(req, "set_" + k)]
        check(not missing, "aliyunsdkdts %sRequest has no setter for %s: the SDK cannot send it" % (action, missing))
        for k, v in params.items():
            getattr(req, "set_" + k)(v)
        try:
            raw = self._core_client.do_action_with_exception(req)
        except self._core_server_exception as e:
            raise ApiError(e.get_error_code(), e.get_http_status(), e.get_error_msg(), e.get_request_id(),
                           sdk=self.kind) from None
        body = json.loads(raw)
        self.last_raw = body
        return body

    def call(self, action, **params):
        params = {k: v for k, v in params.items() if v is not None}
        self.last_raw = None
        if self.kind == "core":
            return self._call_core(action, params)
        return self._call_tea(action, params)


# -- lifecycle helpers ---------------------------------------------------------------------------

def check_success(body, action):
    check(body.get("Success") is True, "%s should answer Success true: %s" % (action, body))
    check(body.get("RequestId"), "%s should answer a RequestId: %s" % (action, body))


def source_endpoint(prefix="Source", port_var="SRC_PORT", user_var="SRC_USER", password_var="SRC_PASSWORD"):
    """The `<prefix>Endpoint*` group of ConfigureDtsJob for one of the two throwaway MySQLs."""
    return {
        prefix + "EndpointInstanceType": "OTHER",
        prefix + "EndpointEngineName": os.environ.get("ENGINE", "MySQL"),
        prefix + "EndpointRegion": REGION,
        prefix + "EndpointIP": "127.0.0.1",
        prefix + "EndpointPort": str(env(port_var)),
        prefix + "EndpointUserName": env(user_var, "root"),
        prefix + "EndpointPassword": env(password_var, ""),
    }


def endpoints(reverse=False):
    """Source and destination groups: SRC -> DST, or DST -> SRC when `reverse`."""
    src = ("SRC_PORT", "SRC_USER", "SRC_PASSWORD")
    dst = ("DST_PORT", "DST_USER", "DST_PASSWORD")
    if reverse:
        src, dst = dst, src
    params = source_endpoint("Source", *src)
    params.update(source_endpoint("Destination", *dst))
    return params


def db_list(db=None):
    """DB_LIST as given (e.g. with renames), or the whole DB_NAME under its own name."""
    if os.environ.get("DB_LIST"):
        return os.environ["DB_LIST"]
    db = db or env("DB_NAME")
    return json.dumps({db: {"name": db, "all": True}})


def create_instance(api, job_type, **extra):
    """CreateDtsInstance -> (InstanceId, JobId)."""
    params = dict(Type=job_type, PayType="PostPaid", InstanceClass="small", SourceRegion=REGION,
                  DestinationRegion=REGION, SourceEndpointEngineName=os.environ.get("ENGINE", "MySQL"),
                  DestinationEndpointEngineName=os.environ.get("ENGINE", "MySQL"),
                  Quantity=1)
    params.update(extra)
    body = api.call("CreateDtsInstance", **params)
    check_success(body, "CreateDtsInstance")
    check(body.get("InstanceId"), "CreateDtsInstance should answer an InstanceId: %s" % body)
    check(body.get("JobId"), "CreateDtsInstance should answer a JobId: %s" % body)
    return body["InstanceId"], body["JobId"]


def wait_precheck(api, job_id, timeout=60):
    """Polls DescribePreCheckStatus(JobCode 01) until State Finished; returns the body."""
    deadline = time.time() + timeout
    seen = []
    while True:
        body = api.call("DescribePreCheckStatus", DtsJobId=job_id, JobCode="01")
        state = body.get("State")
        if not seen or seen[-1] != state:
            seen.append(state)
        check(state != "Failed", "the precheck of %s failed; JobProgress: %s" % (job_id, json.dumps(body.get("JobProgress"))))
        if state == "Finished":
            break
        check(time.time() < deadline, "the precheck of %s did not finish within %s s (states seen %s): %s"
              % (job_id, timeout, seen, body))
        time.sleep(0.5)
    items = body.get("JobProgress")
    check(isinstance(items, list) and items, "a finished precheck should list JobProgress items: %s" % body)
    for item in items:
        for key in ("Item", "State", "ErrMsg", "RepairMethod"):
            check(key in item, "precheck item lacks %r: %s" % (key, item))
        check(item["State"] in ("Finished", "Success", "Warning"),
              "a passed precheck item should be Success (or a Warning that does not block): %s" % item)
    print("   precheck of %s: %s items, states seen %s" % (job_id, len(items), seen), flush=True)
    return body


def describe_detail(api, job_id, direction=None):
    return api.call("DescribeDtsJobDetail", DtsJobId=job_id, SynchronizationDirection=direction)


def wait_status(api, job_id, wanted, timeout=120, passing=(), direction=None):
    """Polls DescribeDtsJobDetail until Status is `wanted`; any status outside `passing` + `wanted`
    fails at once. Returns the last detail body."""
    deadline = time.time() + timeout
    seen = []
    while True:
        detail = describe_detail(api, job_id, direction)
        status = detail.get("Status")
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == wanted:
            return detail
        check(not passing or status in passing,
              "job %s%s went to status %s while waiting for %s (statuses seen %s); ErrorMessage: %s"
              % (job_id, " (%s)" % direction if direction else "", status, wanted, seen, detail.get("ErrorMessage")))
        check(time.time() < deadline, "job %s%s did not reach status %s within %s s (statuses seen %s): %s"
              % (job_id, " (%s)" % direction if direction else "", wanted, timeout, seen, detail))
        time.sleep(0.5)


def find_job(api, job_id, job_type, page_size=10, max_pages=50):
    """The DtsJobList item of `job_id` from DescribeDtsJobs(JobType), paging as needed, plus the
    raw JSON of the page that listed it."""
    for page in range(1, max_pages + 1):
        body = api.call("DescribeDtsJobs", JobType=job_type, PageSize=page_size, PageNumber=page)
        raw = api.last_raw
        check_success(body, "DescribeDtsJobs")
        jobs = body.get("DtsJobList") or []
        for job in jobs:
            if job.get("DtsJobId") == job_id:
                return job, raw
        if len(jobs) < page_size:
            break
    raise Failure("DescribeDtsJobs(JobType=%s) does not list %s" % (job_type, job_id))


def check_no_password(raw, what):
    """No key named like a password may carry a value, and no configured password may appear."""
    check(isinstance(raw, dict), "%s: the raw answer body was not captured: %r" % (what, raw))
    text = json.dumps(raw)

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                check(not ("password" in k.lower() and v not in (None, "")),
                      "%s must not return a password, but %s.%s = %r" % (what, path, k, v))
                walk(v, path + "." + k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, "%s[%d]" % (path, i))

    walk(raw, "$")
    for var in ("SRC_PASSWORD", "DST_PASSWORD"):
        secret = os.environ.get(var, "")
        if secret:
            check(secret not in text, "%s must not return the %s value anywhere: %s" % (what, var, text))


def wait_phase_or(*words, timeout=None):
    """Waits until PHASE_FILE contains one of `words`; returns the first one found."""
    path = env("PHASE_FILE")
    timeout = timeout or float(os.environ.get("PHASE_TIMEOUT", "300"))
    deadline = time.time() + timeout
    while True:
        try:
            with open(path) as f:
                text = f.read()
            for word in words:
                if word in text:
                    return word
        except FileNotFoundError:
            pass
        check(time.time() < deadline, "PHASE_FILE %s said none of %r within %s s" % (path, words, timeout))
        time.sleep(0.2)


def wait_phase(word, timeout=None):
    """Waits until the file named by PHASE_FILE contains `word` (the Rust test writes it)."""
    path = env("PHASE_FILE")
    timeout = timeout or float(os.environ.get("PHASE_TIMEOUT", "300"))
    deadline = time.time() + timeout
    while True:
        try:
            with open(path) as f:
                if word in f.read():
                    return
        except FileNotFoundError:
            pass
        check(time.time() < deadline, "PHASE_FILE %s did not say %r within %s s" % (path, word, timeout))
        time.sleep(0.2)


def expect_error(code, what, fn, *args, http_status=None, **kwargs):
    """Runs `fn`, which must fail with an `ApiError` whose code is `code` (or one of a tuple), with
    a RequestId and a message, and with HTTP status `http_status` if given."""
    codes = code if isinstance(code, tuple) else (code,)
    try:
        result = fn(*args, **kwargs)
    except ApiError as e:
        check(e.code in codes, "%s: expected error %s, got %s" % (what, " or ".join(codes), e))
        check(e.request_id, "%s: the %s error carries no RequestId: %s" % (what, e.code, e))
        check(e.message, "%s: the %s error carries no Message: %s" % (what, e.code, e))
        if http_status is not None:
            check(e.http_status == http_status, "%s: %s should come with HTTP %s, not %s" % (what, e.code, http_status, e.http_status))
        print("   %s -> %s HTTP %s (%s)" % (what, e.code, e.http_status, e.message), flush=True)
        return e
    raise Failure("%s: expected error %s, but the call succeeded: %s" % (what, " or ".join(codes), result))


# -- raw HTTP (what the SDKs cannot be made to send) ---------------------------------------------

def pct(s):
    """RFC 3986 percent-encoding as both Alibaba signatures use it."""
    return quote(str(s), safe="-_.~", encoding="utf-8")


def utc_timestamp(offset_seconds=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def rpc_v1_signed_query(action, params=None, access_key_id=None, secret=None, timestamp=None, nonce=None,
                        fmt="JSON", method="POST"):
    """A signed RPC v1 (HMAC-SHA1) query string, built like aliyunsdkcore does."""
    p = {
        "Action": action, "Version": VERSION, "Format": fmt, "RegionId": REGION,
        "AccessKeyId": access_key_id or env("DTS_SECRET_ID"),
        "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex, "Timestamp": timestamp or utc_timestamp(),
    }
    p.update({k: str(v) for k, v in (params or {}).items()})
    canonical = "&".join("%s=%s" % (pct(k), pct(p[k])) for k in sorted(p))
    string_to_sign = method + "&" + pct("/") + "&" + pct(canonical)
    key = ((secret if secret is not None else env("DTS_SECRET_KEY")) + "&").encode()
    p["Signature"] = base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha1).digest()).decode()
    return "&".join("%s=%s" % (pct(k), pct(v)) for k, v in p.items())


def acs3_signed_headers(action, query, secret=None, access_key_id=None, date=None, nonce=None, body=b""):
    """Headers of an ACS3-HMAC-SHA256 request, built like alibabacloud-tea-openapi does."""
    host = env("DTS_ENDPOINT")
    headers = {
        "host": host, "x-acs-action": action, "x-acs-version": VERSION,
        "x-acs-date": date or utc_timestamp(), "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(), "accept": "application/json",
    }
    signed = sorted(headers)
    canonical_query = "&".join("%s=%s" % (pct(k), pct(v)) for k, v in sorted(query.items()))
    canonical_headers = "".join("%s:%s\n" % (k, headers[k].strip()) for k in signed)
    canonical = "\n".join(["POST", "/", canonical_query, canonical_headers, ";".join(signed),
                           headers["x-acs-content-sha256"]])
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    secret = secret if secret is not None else env("DTS_SECRET_KEY")
    signature = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = "ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s" % (
        access_key_id or env("DTS_SECRET_ID"), ";".join(signed), signature)
    return headers


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def raw_post(query, headers=None, body=b""):
    """POSTs to http://DTS_ENDPOINT/?query; returns (status, headers dict lower-cased, body bytes)."""
    url = "http://%s/%s" % (env("DTS_ENDPOINT"), ("?" + query) if query else "")
    hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
    hdrs.update({k: v for k, v in (headers or {}).items() if k != "host"})
    req = urllib.request.Request(url, data=body, headers=hdrs, method="POST")
    try:
        with _OPENER.open(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def raw_json(status, body, what):
    try:
        return json.loads(body)
    except ValueError:
        raise Failure("%s: HTTP %s with a body that is not JSON: %r" % (what, status, body[:500])) from None


def run(main):
    """Runs `main()` and turns a failed expectation or an unexpected error into exit 1."""
    try:
        main()
    except Failure as e:
        traceback.print_exception(e, chain=False)
        print("FAILED:", e, file=sys.stderr, flush=True)
        sys.exit(1)
    except ApiError as e:
        traceback.print_exception(e, chain=False)
        print("FAILED with an unexpected error answer:", e, file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - an SDK or transport error is a failure too
        traceback.print_exception(e)
        print("FAILED with an unexpected exception: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
        sys.exit(1)
    print("OK", flush=True)
