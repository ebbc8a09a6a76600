"""Buys and activates one Tencent 2018-03-30 subscription of DB_NAME on INSTANCE_ID with the
official SDK and waits until it runs; prints SUBSCRIBE_ID=... and CHANNEL=...

Environment: DTS_ENDPOINT, DTS_SECRET_ID, DTS_SECRET_KEY, INSTANCE_ID, DB_NAME.
"""

from common import check, client_from_env, env, run, step
from subscribe import call, wait_async


def main():
    c = client_from_env()
    step("CreateSubscribe, ActivateSubscribe (database %s)" % env("DB_NAME"))
    sub = call(c, "CreateSubscribe", Product="mariadb", PayType=1)["SubscribeIds"][0]
    body = call(c, "ActivateSubscribe", SubscribeId=sub, InstanceId=env("INSTANCE_ID"), SubscribeObjectType=1,
                Objects={"ObjectsType": 0, "DatabaseName": env("DB_NAME")})
    wait_async(c, body["AsyncRequestId"])
    conf = call(c, "DescribeSubscribeConf", SubscribeId=sub)
    check(conf["SubsStatus"] == "running", "running: %s" % conf)
    print("SUBSCRIBE_ID=%s" % sub, flush=True)
    print("CHANNEL=%s" % conf["ChannelId"], flush=True)


if __name__ == "__main__":
    run(main)
