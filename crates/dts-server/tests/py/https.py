"""HTTPS through the official SDKs (run by tests/https.rs): the Tencent SDK with
HttpProfile(protocol="https", certification=CA) and the Alibaba tea SDK with
Config(protocol="https") and RuntimeOptions(ca=CA), against a dts serve with a self-signed
certificate (CA = DTS_CA_FILE)."""

import json

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.dts.v20180330 import dts_client, models

from common import REGION, check, env, step


def tencent():
    step("Tencent SDK over https: DescribeMigrateJobs")
    for sign in (None, "HmacSHA256"):
        cred = credential.Credential(env("DTS_SECRET_ID"), env("DTS_SECRET_KEY"))
        http = HttpProfile(endpoint=env("DTS_ENDPOINT"), protocol="https", reqMethod="POST" if sign is None else "GET",
                           certification=env("DTS_CA_FILE"))
        c = dts_client.DtsClient(cred, REGION, ClientProfile(signMethod=sign, httpProfile=http))
        resp = c.DescribeMigrateJobs(models.DescribeMigrateJobsRequest())
        check(resp.TotalCount == 0, "TotalCount %r" % resp.TotalCount)
        print("tencent", sign or "TC3", "ok", resp.RequestId, flush=True)


def alibaba():
    step("Alibaba tea SDK over https: DescribeDtsJobs")
    from alibabacloud_dts20200101 import models as m
    from alibabacloud_dts20200101.client import Client
    from alibabacloud_tea_openapi.models import Config
    from darabonba.runtime import RuntimeOptions

    config = Config(access_key_id=env("DTS_SECRET_ID"), access_key_secret=env("DTS_SECRET_KEY"),
                    region_id="cn-hangzhou", endpoint=env("DTS_ENDPOINT"), protocol="https")
    request = m.DescribeDtsJobsRequest(region_id="cn-hangzhou", page_size=5)
    resp = Client(config).describe_dts_jobs_with_options(request, RuntimeOptions(ca=env("DTS_CA_FILE")))
    check(resp.status_code == 200, "status %r" % resp.status_code)
    print("alibaba ok", json.dumps(resp.body.to_map()["RequestId"]), flush=True)


tencent()
alibaba()
print("https ok")
