"""Alibaba Cloud DTS 2020-01-01 change tracking driven by an official Alibaba SDK (ALI_SDK: tea,
tea-v2 or core; see ali_common.py): buy a SUBSCRIBE instance, ConfigureSubscription, precheck,
start, read where the events are, create a consumer group; then, told through PHASE_FILE, add a
table with ModifySubscription, look at the group (also through the legacy consumer-group calls
and DescribeSubscriptionMeta), stop and delete.

Environment: DTS_ENDPOINT, DTS_SECRET_ID, DTS_SECRET_KEY, SRC_PORT, SRC_USER, SRC_PASSWORD,
DB_NAME, ALI_SDK, BUS_ADDRESS (the host:port the server's change bus listens on), PHASE_FILE.
Prints JOB_ID=..., TOPIC=..., GROUP=..., then READY; on `modify` in PHASE_FILE: ModifySubscription
adding the table other.t, then MODIFIED; on `stop`: DescribeConsumerChannel, the legacy
*ConsumerGroup calls, DescribeSubscriptionMeta, StopDtsJob, DeleteConsumerChannel, DeleteDtsJob,
and prints STOPPED.
"""

import json
import time

from ali_common import (REGION, Api, check, check_no_password, check_success, create_instance, db_list, env,
                        expect_error, find_job, run, source_endpoint, step, wait_phase, wait_precheck, wait_status)

PASSING = ("NotStarted", "Prechecking", "PreCheckPass", "Starting")


def main():
    api = Api()
    step("CreateDtsInstance (SUBSCRIBE)")
    instance_id, job_id = create_instance(api, "SUBSCRIBE")
    print("JOB_ID=%s" % job_id, flush=True)

    step("ConfigureDtsJob refuses a SUBSCRIBE instance")
    params = dict(DtsInstanceId=instance_id, DtsJobId=job_id, DtsJobName="tracking", JobType="MIGRATION",
                  DataSynchronization=True, DbList=db_list())
    params.update(source_endpoint("Source"))
    params.update(source_endpoint("Destination"))
    expect_error("InvalidParameter", "ConfigureDtsJob on a SUBSCRIBE instance", api.call, "ConfigureDtsJob", **params)

    step("ConfigureSubscription (DbList %s, DDL and DML)" % env("DB_NAME"))
    params = dict(DtsInstanceId=instance_id, DtsJobId=job_id, DtsJobName="tracking", DbList=db_list(),
                  SubscriptionDataTypeDDL=True, SubscriptionDataTypeDML=True, SubscriptionInstanceNetworkType="vpc",
                  DelayRuleTime=0, RegionId="cn-hangzhou")
    params.update(source_endpoint("Source"))
    body = api.call("ConfigureSubscription", **params)
    check(body.get("Success") in (True, "true", "True"), "ConfigureSubscription should succeed: %s" % body)
    check(body.get("DtsJobId") == job_id, "ConfigureSubscription should answer the task id: %s" % body)

    step("DescribePreCheckStatus until Finished")
    wait_precheck(api, job_id)

    step("StartDtsJob, then DescribeDtsJobDetail until Normal")
    body = api.call("StartDtsJob", DtsJobId=job_id, DtsInstanceId=instance_id)
    check_success(body, "StartDtsJob")
    wait_status(api, job_id, "Normal", passing=PASSING)
    detail = api.call("DescribeDtsJobDetail", DtsJobId=job_id)
    raw = api.last_raw
    check_no_password(raw, "DescribeDtsJobDetail")
    check(raw.get("JobType") == "SUBSCRIBE", "JobType should be SUBSCRIBE: %s" % raw.get("JobType"))
    host = raw.get("SubscriptionHost") or {}
    for key in ("PublicHost", "PrivateHost", "VpcHost"):
        check(host.get(key) == env("BUS_ADDRESS"), "SubscriptionHost.%s should be the bus %s: %s"
              % (key, env("BUS_ADDRESS"), host))
    topic = raw.get("SubscribeTopic")
    check(topic == "dts." + job_id, "SubscribeTopic should be dts.<task id>: %r" % topic)
    check(raw.get("SubscriptionDataType") == {"Ddl": True, "Dml": True},
          "SubscriptionDataType should say DDL and DML: %s" % raw.get("SubscriptionDataType"))
    for key in ("ConsumptionCheckpoint", "BeginTimestamp", "EndTimestamp"):
        check(key in raw, "DescribeDtsJobDetail of a SUBSCRIBE task lacks %s: %s" % (key, raw))
    check(detail.get("SubscribeTopic") == topic, "the SDK's model should carry SubscribeTopic: %s" % detail)
    print("TOPIC=%s" % topic, flush=True)

    step("DescribeDtsJobs(JobType=SUBSCRIBE) lists the task")
    job, _ = find_job(api, job_id, "SUBSCRIBE")
    check(job.get("Status") == "Normal", "the listed task should be Normal: %s" % job)

    step("CreateConsumerChannel")
    expect_error("InvalidParameter", "a one-class password", api.call, "CreateConsumerChannel", DtsInstanceId=instance_id,
                 DtsJobId=job_id, ConsumerGroupName="g", ConsumerGroupUserName="reader",
                 ConsumerGroupPassword="onlylowercase", RegionId="cn-hangzhou")
    body = api.call("CreateConsumerChannel", DtsInstanceId=instance_id, DtsJobId=job_id, ConsumerGroupName="reader group",
                    ConsumerGroupUserName="reader", ConsumerGroupPassword="Reader1234", RegionId="cn-hangzhou")
    group = body.get("ConsumerGroupID")
    check(group and group.startswith("dtse"), "CreateConsumerChannel should answer a ConsumerGroupID: %s" % body)
    print("GROUP=%s" % group, flush=True)
    print("READY", flush=True)

    wait_phase("modify")
    step("ModifySubscription adds the table other.t (DbList replaces the whole list)")
    expect_error("OperationDenied.NotPurchased", "ModifySubscription of an unknown task", api.call,
                 "ModifySubscription", DtsJobId="dtsnothere0000", DbList=db_list(), RegionId=REGION)
    expect_error("InvalidParameter", "ModifySubscription with a DbList that is not JSON", api.call,
                 "ModifySubscription", DtsInstanceId=instance_id, DtsJobId=job_id, DbList="{not json", RegionId=REGION)
    expect_error("InvalidParameter", "ModifySubscription with neither DDL nor DML", api.call, "ModifySubscription",
                 DtsInstanceId=instance_id, DtsJobId=job_id, SubscriptionDataTypeDDL=False,
                 SubscriptionDataTypeDML=False, RegionId=REGION)
    db = env("DB_NAME")
    wider = json.dumps({db: {"name": db, "all": True},
                        "other": {"name": "other", "all": False, "Table": {"t": {"name": "t", "all": True}}}})
    body = api.call("ModifySubscription", DtsInstanceId=instance_id, DtsJobId=job_id, DbList=wider,
                    SubscriptionDataTypeDDL=True, SubscriptionDataTypeDML=True, RegionId=REGION)
    check_success(body, "ModifySubscription")
    detail = api.call("DescribeDtsJobDetail", DtsJobId=job_id)
    check(detail.get("Status") == "Normal", "a modified task keeps running: %s" % detail)
    check("other" in json.dumps(api.last_raw.get("DbObject")), "DbObject shows the new list: %s" % api.last_raw)
    print("MODIFIED", flush=True)

    wait_phase("stop")
    step("DescribeConsumerChannel shows the group's position")
    body = api.call("DescribeConsumerChannel", DtsInstanceId=instance_id, DtsJobId=job_id, RegionId="cn-hangzhou")
    channels = body.get("ConsumerChannels") or []
    check(len(channels) == 1 and channels[0].get("ConsumerGroupId") == group,
          "DescribeConsumerChannel should list the group: %s" % body)
    channel = channels[0]
    check(channel.get("ConsumerGroupUserName") == "reader", "the group's user: %s" % channel)
    check(channel.get("ConsumptionCheckpoint", "").endswith("Z"),
          "a group that consumed should have a ConsumptionCheckpoint: %s" % channel)
    check(channel.get("UnconsumedData") == 0, "the group consumed everything: %s" % channel)
    detail = api.call("DescribeDtsJobDetail", DtsJobId=job_id)
    check(api.last_raw.get("BeginTimestamp", "").endswith("Z"), "BeginTimestamp once events exist: %s" % api.last_raw)
    check(api.last_raw.get("ConsumptionCheckpoint", "").endswith("Z"),
          "ConsumptionCheckpoint once a group consumed: %s" % api.last_raw)

    step("ModifyConsumerChannel renames the group")
    api.call("ModifyConsumerChannel", DtsInstanceId=instance_id, DtsJobId=job_id, ConsumerGroupId=group,
             ConsumerGroupName="renamed group", RegionId="cn-hangzhou")
    expect_error("InvalidParameter", "ModifyConsumerChannel of an unknown group", api.call, "ModifyConsumerChannel",
                 DtsInstanceId=instance_id, DtsJobId=job_id, ConsumerGroupId="dtsenothere", ConsumerGroupName="x",
                 RegionId="cn-hangzhou")
    body = api.call("DescribeConsumerChannel", DtsInstanceId=instance_id, DtsJobId=job_id, RegionId="cn-hangzhou")
    check(body["ConsumerChannels"][0].get("ConsumerGroupName") == "renamed group", "renamed: %s" % body)

    step("The legacy consumer-group calls (SubscriptionInstanceId) see the same groups")
    body = api.call("DescribeConsumerGroup", SubscriptionInstanceId=instance_id)
    listed = (body.get("ConsumerChannels") or {}).get("DescribeConsumerChannel") or []
    check(len(listed) == 1 and listed[0].get("ConsumerGroupID") == group, "DescribeConsumerGroup: %s" % body)
    check(listed[0].get("ConsumerGroupName") == "renamed group" and listed[0].get("ConsumptionCheckpoint", "").endswith("Z"),
          "the group as DescribeConsumerGroup shows it: %s" % listed[0])
    check(body.get("TotalRecordCount") == 1 and body.get("PageNumber") == 1, "DescribeConsumerGroup paging: %s" % body)
    expect_error("InvalidParameter", "DescribeConsumerGroup with PageSize 20", api.call, "DescribeConsumerGroup",
                 SubscriptionInstanceId=instance_id, PageSize=20)
    expect_error("OperationDenied.NotPurchased", "DescribeConsumerGroup of an unknown instance", api.call,
                 "DescribeConsumerGroup", SubscriptionInstanceId="dtsnothere0000")
    body = api.call("CreateConsumerGroup", SubscriptionInstanceId=instance_id, ConsumerGroupName="legacy group",
                    ConsumerGroupUserName="legacy", ConsumerGroupPassword="Legacy1234")
    legacy = body.get("ConsumerGroupID")
    check(legacy and legacy.startswith("dtse") and legacy != group, "CreateConsumerGroup: %s" % body)
    expect_error("InvalidParameter", "CreateConsumerGroup with a user name of 17 characters", api.call,
                 "CreateConsumerGroup", SubscriptionInstanceId=instance_id, ConsumerGroupName="x",
                 ConsumerGroupUserName="u" * 17, ConsumerGroupPassword="Legacy1234")
    expect_error("InvalidParameter", "ModifyConsumerGroupPassword with a wrong current password", api.call,
                 "ModifyConsumerGroupPassword", SubscriptionInstanceId=instance_id, ConsumerGroupID=legacy,
                 ConsumerGroupPassword="Wrong12345", consumerGroupNewPassword="Newer5678")
    expect_error("InvalidParameter", "ModifyConsumerGroupPassword to a one-class password", api.call,
                 "ModifyConsumerGroupPassword", SubscriptionInstanceId=instance_id, ConsumerGroupID=legacy,
                 ConsumerGroupPassword="Legacy1234", consumerGroupNewPassword="onlylowercase")
    body = api.call("ModifyConsumerGroupPassword", SubscriptionInstanceId=instance_id, ConsumerGroupID=legacy,
                    ConsumerGroupName="legacy group", ConsumerGroupUserName="legacy",
                    ConsumerGroupPassword="Legacy1234", consumerGroupNewPassword="Newer5678")
    check(body.get("Success") in (True, "true"), "ModifyConsumerGroupPassword: %s" % body)
    body = api.call("DescribeConsumerChannel", DtsInstanceId=instance_id, DtsJobId=job_id, RegionId=REGION)
    check(len(body.get("ConsumerChannels") or []) == 2, "the new-edition call sees the legacy group: %s" % body)

    step("DescribeSubscriptionMeta of the group that consumed, and of the one that did not")
    body = api.call("DescribeSubscriptionMeta", Sid=group, DtsInstanceId=instance_id, SubMigrationJobIds=[job_id])
    metas = body.get("SubscriptionMetaList") or []
    check(len(metas) == 1, "one subscription per task: %s" % body)
    meta = metas[0]
    check(meta.get("Sid") == group and meta.get("Topic") == topic, "Sid and Topic: %s" % meta)
    check(meta.get("DProxyUrl") == env("BUS_ADDRESS"), "DProxyUrl is the bus: %s" % meta)
    check("other" in (meta.get("DBList") or ""), "DBList is the modified list: %s" % meta)
    consumed = meta.get("Checkpoint")
    check(isinstance(consumed, int) and 0 < consumed <= time.time(), "Checkpoint in unix seconds: %s" % meta)
    body = api.call("DescribeSubscriptionMeta", Sid=legacy, DtsInstanceId=instance_id, Topics=[topic])
    unread = body["SubscriptionMetaList"][0].get("Checkpoint")
    check(isinstance(unread, int) and 0 < unread <= consumed, "a new group is at the oldest event: %s" % body)
    expect_error("InvalidParameter", "DescribeSubscriptionMeta of an unknown group", api.call,
                 "DescribeSubscriptionMeta", Sid="dtsenothere0000", DtsInstanceId=instance_id, SubMigrationJobIds=[job_id])
    expect_error("InvalidParameter", "DescribeSubscriptionMeta of another task", api.call, "DescribeSubscriptionMeta",
                 Sid=group, DtsInstanceId=instance_id, SubMigrationJobIds=["dtsnothere0000"])
    body = api.call("DeleteConsumerGroup", SubscriptionInstanceId=instance_id, ConsumerGroupID=legacy)
    check(body.get("Success") in (True, "true"), "DeleteConsumerGroup: %s" % body)
    expect_error("InvalidParameter", "DeleteConsumerGroup of a deleted group", api.call, "DeleteConsumerGroup",
                 SubscriptionInstanceId=instance_id, ConsumerGroupID=legacy)

    step("StopDtsJob, DeleteConsumerChannel, DeleteDtsJob")
    check_success(api.call("StopDtsJob", DtsJobId=job_id, DtsInstanceId=instance_id), "StopDtsJob")
    wait_status(api, job_id, "Finished", passing=("Normal",))
    api.call("DeleteConsumerChannel", DtsInstanceId=instance_id, DtsJobId=job_id, ConsumerGroupId=group,
             RegionId="cn-hangzhou")
    body = api.call("DescribeConsumerChannel", DtsInstanceId=instance_id, DtsJobId=job_id, RegionId="cn-hangzhou")
    check(not body.get("ConsumerChannels"), "the group should be gone: %s" % body)
    check_success(api.call("DeleteDtsJob", DtsJobId=job_id, DtsInstanceId=instance_id), "DeleteDtsJob")
    print("STOPPED", flush=True)


if __name__ == "__main__":
    run(main)
