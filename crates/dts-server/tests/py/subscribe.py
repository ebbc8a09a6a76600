"""Tencent 2018-03-30 data subscription driven by the official Tencent SDK: buy, activate on a
registered instance (one object: a table), follow the async request, describe where the events
are; then, told through PHASE_FILE, rewind the default consumer group (with REWIND=1), look at
the consumed time, rename, change the auto-renew flag, the Vip/Vport and the objects, reset,
isolate and take it offline.

Environment: DTS_ENDPOINT, DTS_SECRET_ID, DTS_SECRET_KEY, INSTANCE_ID (registered in the
server's [instances]), DB_NAME, TABLE_NAME, BUS_ADDRESS (host:port of the change bus),
PHASE_FILE, REWIND. Prints SUBSCRIBE_ID=..., CHANNEL=..., then READY; with REWIND=1, on
`rewind <Y-m-d h:m:s>`: ModifySubscribeConsumeTime to that time, then REWOUND; on `stop`:
STOPPED.
"""

import datetime
import json
import os
import time

from common import Failure, check, client_from_env, env, expect_error, run, step
from tencentcloud.dts.v20180330 import models


def call(c, action, **fields):
    req = getattr(models, action + "Request")()
    req.from_json_string(json.dumps(fields))
    resp = getattr(c, action)(req)
    return json.loads(resp.to_json_string())


def wait_async(c, request_id, timeout=90):
    deadline = time.time() + timeout
    seen = []
    while True:
        body = call(c, "DescribeAsyncRequestInfo", AsyncRequestId=request_id)
        if not seen or seen[-1] != body["Status"]:
            seen.append(body["Status"])
        if body["Status"] == "success":
            return body
        check(body["Status"] == "running", "async request %s: %s (seen %s)" % (request_id, body, seen))
        check(time.time() < deadline, "async request %s still %s after %s s" % (request_id, seen, timeout))
        time.sleep(0.5)


def wait_phase(word, timeout=300):
    path = env("PHASE_FILE")
    deadline = time.time() + timeout
    while word not in open(path).read():
        check(time.time() < deadline, "PHASE_FILE never said %r" % word)
        time.sleep(0.2)


def main():
    c = client_from_env()
    db, table = env("DB_NAME"), env("TABLE_NAME")

    step("CreateSubscribe (hourly, named)")
    body = call(c, "CreateSubscribe", Product="mysql", PayType=1, Count=1, Name="sdk-sub")
    ids = body.get("SubscribeIds")
    check(isinstance(ids, list) and len(ids) == 1 and ids[0].startswith("subs-"), "SubscribeIds: %s" % body)
    sub = ids[0]
    print("SUBSCRIBE_ID=%s" % sub, flush=True)

    expect_error("ResourceNotFound", "ActivateSubscribe of an unknown subscription", call, c, "ActivateSubscribe",
                 SubscribeId="subs-nothere", InstanceId=env("INSTANCE_ID"), SubscribeObjectType=1,
                 Objects={"ObjectsType": 0, "DatabaseName": db})
    expect_error("InvalidParameterValue", "ActivateSubscribe on an unregistered instance", call, c,
                 "ActivateSubscribe", SubscribeId=sub, InstanceId="cdb-unknown", SubscribeObjectType=1,
                 Objects={"ObjectsType": 0, "DatabaseName": db})
    body = call(c, "DescribeSubscribeConf", SubscribeId=sub)
    check(body["SubsStatus"] == "notStarted", "a new subscription is notStarted: %s" % body)

    step("ActivateSubscribe (data + structure of %s.%s)" % (db, table))
    body = call(c, "ActivateSubscribe", SubscribeId=sub, InstanceId=env("INSTANCE_ID"), SubscribeObjectType=3,
                Objects={"ObjectsType": 1, "DatabaseName": db, "TableNames": [table]})
    request = body.get("AsyncRequestId")
    check(request, "ActivateSubscribe answers an AsyncRequestId: %s" % body)
    expect_error("FailedOperation.StatusInConflict", "ActivateSubscribe twice", call, c, "ActivateSubscribe",
                 SubscribeId=sub, InstanceId=env("INSTANCE_ID"), SubscribeObjectType=3,
                 Objects={"ObjectsType": 1, "DatabaseName": db, "TableNames": [table]})
    wait_async(c, request)

    step("DescribeSubscribeConf and DescribeSubscribes")
    conf = call(c, "DescribeSubscribeConf", SubscribeId=sub)
    host, port = env("BUS_ADDRESS").rsplit(":", 1)
    check(conf["SubsStatus"] == "running", "activated: %s" % conf)
    check(conf["Vip"] == host and conf["Vport"] == int(port), "Vip/Vport are the bus: %s" % conf)
    check(conf["SdkHost"] == env("BUS_ADDRESS"), "SdkHost is the bus: %s" % conf)
    check(conf["InstanceId"] == env("INSTANCE_ID") and conf["Product"] == "mysql", "conf: %s" % conf)
    check(conf["SubscribeObjectType"] == 3, "SubscribeObjectType: %s" % conf)
    objects = conf["SubscribeObjects"]
    check(len(objects) == 1 and objects[0]["DatabaseName"] == db and objects[0]["TableNames"] == [table],
          "SubscribeObjects: %s" % objects)
    channel = conf["ChannelId"]
    check(channel.startswith("dts.dts-"), "ChannelId is the subject prefix: %s" % channel)
    listed = call(c, "DescribeSubscribes", SubscribeId=sub)
    check(listed["TotalCount"] == 1 and listed["Items"][0]["SubscribeName"] == "sdk-sub", "listed: %s" % listed)
    check(listed["Items"][0]["ChannelId"] == channel, "the list shows the channel: %s" % listed)
    configured = call(c, "DescribeSubscribes", SubsStatus=["configured"])
    check(any(i["SubscribeId"] == sub for i in configured["Items"]), "SubsStatus filter: %s" % configured)
    print("CHANNEL=%s" % channel, flush=True)
    print("READY", flush=True)

    if os.environ.get("REWIND") == "1":
        wait_phase("rewind ")
        at = open(env("PHASE_FILE")).read().split("rewind ", 1)[1].strip()
        step("ModifySubscribeConsumeTime to %s (UTC)" % at)
        tomorrow = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1))
        for when, what in (("2001-01-01 00:00:00", "before the retained window"),
                           (tomorrow.strftime("%Y-%m-%d %H:%M:%S"), "in the future")):
            expect_error("InvalidParameter", "a consume time %s" % what, call, c, "ModifySubscribeConsumeTime",
                         SubscribeId=sub, ConsumeStartTime=when)
        expect_error("InvalidParameterValue", "a consume time not in Y-m-d h:m:s", call, c,
                     "ModifySubscribeConsumeTime", SubscribeId=sub, ConsumeStartTime="yesterday")
        expect_error("ResourceNotFound", "ModifySubscribeConsumeTime of an unknown subscription", call, c,
                     "ModifySubscribeConsumeTime", SubscribeId="subs-nothere", ConsumeStartTime=at)
        call(c, "ModifySubscribeConsumeTime", SubscribeId=sub, ConsumeStartTime=at)
        conf = call(c, "DescribeSubscribeConf", SubscribeId=sub)
        check(conf["ConsumeStartTime"] == at, "ConsumeStartTime shows the rewind: %s" % conf)
        print("REWOUND", flush=True)

    wait_phase("stop")
    step("SdkConsumedTime after the group read")
    conf = call(c, "DescribeSubscribeConf", SubscribeId=sub)
    check(conf["SdkConsumedTime"] != "0000-00-00 00:00:00", "the group consumed: %s" % conf)

    step("ModifySubscribeName, ModifySubscribeAutoRenewFlag, ModifySubscribeVipVport")
    call(c, "ModifySubscribeName", SubscribeId=sub, SubscribeName="sdk-sub-renamed")
    call(c, "ModifySubscribeAutoRenewFlag", SubscribeId=sub, AutoRenewFlag=1)
    expect_error("InvalidParameterValue", "ModifySubscribeVipVport with DstPort 80", call, c,
                 "ModifySubscribeVipVport", SubscribeId=sub, DstPort=80)
    expect_error("InvalidParameter.InvalidIpAddress", "ModifySubscribeVipVport with DstIp 10.0.0", call, c,
                 "ModifySubscribeVipVport", SubscribeId=sub, DstIp="10.0.0", DstPort=7508)
    expect_error("InvalidParameterValue", "ModifySubscribeName with 61 characters", call, c, "ModifySubscribeName",
                 SubscribeId=sub, SubscribeName="n" * 61)
    expect_error("InvalidParameterValue", "ModifySubscribeAutoRenewFlag 2", call, c, "ModifySubscribeAutoRenewFlag",
                 SubscribeId=sub, AutoRenewFlag=2)
    for action, fields in (("ModifySubscribeName", {"SubscribeName": "x"}),
                           ("ModifySubscribeAutoRenewFlag", {"AutoRenewFlag": 0}),
                           ("ModifySubscribeVipVport", {"DstPort": 7509})):
        expect_error("ResourceNotFound", "%s of an unknown subscription" % action, call, c, action,
                     SubscribeId="subs-nothere", **fields)
    call(c, "ModifySubscribeVipVport", SubscribeId=sub, DstUniqSubnetId="subnet-dts", DstIp="10.0.0.8", DstPort=7508)
    conf = call(c, "DescribeSubscribeConf", SubscribeId=sub)
    check(conf["SubscribeName"] == "sdk-sub-renamed" and conf["AutoRenewFlag"] == 1, "renamed, auto-renewed: %s" % conf)
    check(conf["Vip"] == "10.0.0.8" and conf["Vport"] == 7508 and conf["UniqSubnetId"] == "subnet-dts",
          "Vip/Vport as set: %s" % conf)
    check(conf["SdkHost"] == env("BUS_ADDRESS"), "SdkHost stays the bus: %s" % conf)
    item = call(c, "DescribeSubscribes", SubscribeId=sub)["Items"][0]
    check((item["SubscribeName"], item["AutoRenewFlag"], item["Vip"], item["Vport"]) ==
          ("sdk-sub-renamed", 1, "10.0.0.8", 7508), "DescribeSubscribes shows the settings: %s" % item)

    step("ModifySubscribeObjects (the whole database), ResetSubscribe, IsolateSubscribe, OfflineIsolatedSubscribe")
    body = call(c, "ModifySubscribeObjects", SubscribeId=sub, SubscribeObjectType=1,
                Objects=[{"ObjectsType": 0, "DatabaseName": db}])
    wait_async(c, body["AsyncRequestId"])
    conf = call(c, "DescribeSubscribeConf", SubscribeId=sub)
    check(conf["SubscribeObjectType"] == 1 and conf["SubscribeObjects"][0]["ObjectsType"] == 0, "modified: %s" % conf)
    check(conf["SubsStatus"] == "running", "a started subscription keeps running with new objects: %s" % conf)
    call(c, "ResetSubscribe", SubscribeId=sub)
    conf = call(c, "DescribeSubscribeConf", SubscribeId=sub)
    check(conf["SubsStatus"] == "notStarted", "a reset subscription can be activated again: %s" % conf)
    expect_error("FailedOperation.StatusInConflict", "OfflineIsolatedSubscribe before IsolateSubscribe", call, c,
                 "OfflineIsolatedSubscribe", SubscribeId=sub)
    call(c, "IsolateSubscribe", SubscribeId=sub)
    check(call(c, "DescribeSubscribeConf", SubscribeId=sub)["Status"] == "isolated", "isolated")
    call(c, "OfflineIsolatedSubscribe", SubscribeId=sub)
    check(call(c, "DescribeSubscribes", SubscribeId=sub)["TotalCount"] == 0, "offline subscriptions are gone")
    expect_error("ResourceNotFound", "DescribeSubscribeConf after offline", call, c, "DescribeSubscribeConf",
                 SubscribeId=sub)
    print("STOPPED", flush=True)


if __name__ == "__main__":
    run(main)
