"""Alibaba Cloud DTS 2020-01-01 change tracking driven by an official Alibaba SDK (ALI_SDK: tea,
tea-v2 or core; see ali_common.py): buy a SUBSCRIBE instance, ConfigureSubscription, precheck,
start, read where the events are, create a consumer group; then, told through PHASE_FILE, look
at the group, stop and delete.

Environment: DTS_ENDPOINT, DTS_SECRET_ID, DTS_SECRET_KEY, SRC_PORT, SRC_USER, SRC_PASSWORD,
DB_NAME, ALI_SDK, BUS_ADDRESS (the host:port the server's change bus listens on), PHASE_FILE.
Prints JOB_ID=..., TOPIC=..., GROUP=..., then READY; on `stop` in PHASE_FILE: DescribeConsumerChannel,
StopDtsJob, DeleteConsumerChannel, DeleteDtsJob, and prints STOPPED.
"""

from ali_common import (Api, check, check_no_password, check_success, create_instance, db_list, env, expect_error,
                        find_job, run, source_endpoint, step, wait_phase, wait_precheck, wait_status)

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
