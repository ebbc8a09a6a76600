//! The subscription calls through signed requests of both dialects, without an engine or a bus:
//! validation with the documented codes, one account never seeing another's subscription, the
//! settings shown back, a started subscription's objects or selection changed without a reset
//! (its job keeps running and keeps its checkpoints), and the legacy consumer-group calls
//! sharing the groups of the consumer-channel calls.

mod support;

use dts_core::JobStatus;
use serde_json::{Value, json};
use support::{DEFAULT, Fixture, OPS, alibaba, fixture, tencent};

fn code(v: &Value) -> &str {
    v["Error"]["Code"].as_str().unwrap_or_default()
}

fn ok(v: &Value) {
    assert!(v["Error"].is_null(), "{v}");
}

fn subscribe(f: &Fixture) -> String {
    let r = tencent(f, DEFAULT, "CreateSubscribe", json!({"Product": "mysql", "PayType": 1, "Name": "s"}));
    r["SubscribeIds"][0].as_str().expect("a subscription id").to_string()
}

/// Activates `sub` on the shared registry instance; returns its job id.
fn activate(f: &Fixture, sub: &str) -> String {
    let r = tencent(
        f,
        DEFAULT,
        "ActivateSubscribe",
        json!({"SubscribeId": sub, "InstanceId": "cdb-shared", "SubscribeObjectType": 1,
               "Objects": {"ObjectsType": 1, "DatabaseName": "shop", "TableNames": ["orders"]}}),
    );
    ok(&r);
    let inst = f.ctx.store.instance("default", sub).unwrap().unwrap();
    inst.forward_job_id
}

/// No engine runs here: puts the job where a started subscription is.
fn set_running(f: &Fixture, job: &str) {
    f.ctx
        .store
        .update_job(job, |j| {
            j.status = JobStatus::Running;
            Ok(())
        })
        .unwrap();
}

#[test]
fn tencent_subscription_settings_are_validated_stored_and_shown_to_their_account_only() {
    let f = fixture();
    let sub = subscribe(&f);
    let conf = |key| tencent(&f, key, "DescribeSubscribeConf", json!({"SubscribeId": sub}));

    ok(&tencent(&f, DEFAULT, "ModifySubscribeName", json!({"SubscribeId": sub, "SubscribeName": "orders feed"})));
    ok(&tencent(&f, DEFAULT, "ModifySubscribeAutoRenewFlag", json!({"SubscribeId": sub, "AutoRenewFlag": 1})));
    ok(&tencent(
        &f,
        DEFAULT,
        "ModifySubscribeVipVport",
        json!({"SubscribeId": sub, "DstIp": "10.1.2.3", "DstPort": 7507, "DstUniqSubnetId": "subnet-1"}),
    ));
    let c = conf(DEFAULT);
    assert_eq!(
        (&c["SubscribeName"], &c["AutoRenewFlag"], &c["Vip"], &c["Vport"], &c["UniqSubnetId"]),
        (&json!("orders feed"), &json!(1), &json!("10.1.2.3"), &json!(7507), &json!("subnet-1")),
        "{c}"
    );
    let listed = tencent(&f, DEFAULT, "DescribeSubscribes", json!({"SubscribeId": sub}));
    assert_eq!(listed["Items"][0]["AutoRenewFlag"], 1, "{listed}");
    assert_eq!(listed["Items"][0]["Vport"], 7507, "{listed}");

    // Bad values, with the documented codes; nothing changes.
    let bad = [
        ("ModifySubscribeName", json!({"SubscribeId": sub, "SubscribeName": ""}), "InvalidParameterValue"),
        ("ModifySubscribeName", json!({"SubscribeId": sub, "SubscribeName": "n".repeat(61)}), "InvalidParameterValue"),
        ("ModifySubscribeAutoRenewFlag", json!({"SubscribeId": sub, "AutoRenewFlag": 2}), "InvalidParameterValue"),
        ("ModifySubscribeVipVport", json!({"SubscribeId": sub, "DstPort": 80}), "InvalidParameterValue"),
        ("ModifySubscribeVipVport", json!({"SubscribeId": sub, "DstPort": 65536}), "InvalidParameterValue"),
        (
            "ModifySubscribeVipVport",
            json!({"SubscribeId": sub, "DstIp": "10.1.2"}),
            "InvalidParameter.InvalidIpAddress",
        ),
        ("ModifySubscribeVipVport", json!({"SubscribeId": sub}), "MissingParameter"),
        (
            "ModifySubscribeConsumeTime",
            json!({"SubscribeId": sub, "ConsumeStartTime": "yesterday"}),
            "InvalidParameterValue",
        ),
        (
            "ModifySubscribeConsumeTime",
            json!({"SubscribeId": sub, "ConsumeStartTime": "2024-01-01 00:00:00"}),
            "FailedOperation.StatusInConflict",
        ),
        ("ModifySubscribeName", json!({"SubscribeId": sub}), "MissingParameter"),
    ];
    for (action, params, want) in bad {
        let r = tencent(&f, DEFAULT, action, params.clone());
        assert_eq!(code(&r), want, "{action} {params}: {r}");
    }
    assert_eq!(conf(DEFAULT)["Vport"], 7507);

    // Unknown ids, and another account's subscription, are not found.
    for key in [DEFAULT, OPS] {
        let id = if key == DEFAULT { "subs-nothere".to_string() } else { sub.clone() };
        for (action, params) in [
            ("ModifySubscribeName", json!({"SubscribeId": id, "SubscribeName": "x"})),
            ("ModifySubscribeAutoRenewFlag", json!({"SubscribeId": id, "AutoRenewFlag": 0})),
            ("ModifySubscribeVipVport", json!({"SubscribeId": id, "DstPort": 7508})),
            ("ModifySubscribeConsumeTime", json!({"SubscribeId": id, "ConsumeStartTime": "2024-01-01 00:00:00"})),
        ] {
            let r = tencent(&f, key, action, params);
            assert_eq!(code(&r), "ResourceNotFound", "{action} of {id}: {r}");
        }
    }
    assert_eq!(conf(DEFAULT)["SubscribeName"], "orders feed");

    // With the subscription started, the consume time needs the bus (none here).
    let job = activate(&f, &sub);
    set_running(&f, &job);
    let r = tencent(
        &f,
        DEFAULT,
        "ModifySubscribeConsumeTime",
        json!({"SubscribeId": sub, "ConsumeStartTime": "2024-01-01 00:00:00"}),
    );
    assert_eq!(code(&r), "FailedOperation", "{r}");
    let renamed = tencent(&f, DEFAULT, "ModifySubscribeName", json!({"SubscribeId": sub, "SubscribeName": "again"}));
    ok(&renamed);
    assert_eq!(f.ctx.store.job(&job).unwrap().unwrap().spec.name, "again", "the job carries the name too");
}

#[test]
fn a_started_subscriptions_new_objects_keep_its_job_running_with_its_checkpoints() {
    let f = fixture();
    let sub = subscribe(&f);
    let job = activate(&f, &sub);
    set_running(&f, &job);
    f.ctx
        .store
        .put_checkpoint(&job, "engine/tracking_position", r#"{"kind":"binlog","file":"b.1","offset":9}"#)
        .unwrap();
    let r = tencent(
        &f,
        DEFAULT,
        "ModifySubscribeObjects",
        json!({"SubscribeId": sub, "SubscribeObjectType": 1,
               "Objects": [{"ObjectsType": 1, "DatabaseName": "shop", "TableNames": ["orders", "items"]}]}),
    );
    assert!(r["AsyncRequestId"].is_string(), "{r}");
    let record = f.ctx.store.job(&job).unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Running, "not reset");
    assert!(record.spec.database_info.as_deref().unwrap().contains("items"), "{:?}", record.spec.database_info);
    assert!(f.ctx.store.pending_release(&job).unwrap().is_none(), "nothing to release");
    assert!(f.ctx.store.checkpoint(&job, "engine/tracking_position").unwrap().is_some(), "the position stays");
    let conf = tencent(&f, DEFAULT, "DescribeSubscribeConf", json!({"SubscribeId": sub}));
    assert_eq!(conf["SubscribeObjects"][0]["TableNames"], json!(["orders", "items"]), "{conf}");
    let done = tencent(&f, DEFAULT, "DescribeAsyncRequestInfo", json!({"AsyncRequestId": r["AsyncRequestId"]}));
    assert!(done["Error"].is_null(), "{done}");
    let other = tencent(&f, OPS, "ModifySubscribeObjects", json!({"SubscribeId": sub, "SubscribeObjectType": 0}));
    assert_eq!(code(&other), "ResourceNotFound", "{other}");
}

/// A SUBSCRIBE instance of `key` configured on a made-up source; returns (instance, job).
fn configured(f: &Fixture, key: (&str, &str), checkpoint: Option<&str>) -> (String, String, Value) {
    let inst = alibaba(f, key, "CreateDtsInstance", &[("Type", "SUBSCRIBE"), ("PayType", "PostPaid")]);
    let (instance, job) =
        (inst["InstanceId"].as_str().unwrap().to_string(), inst["JobId"].as_str().unwrap().to_string());
    let mut params = vec![
        ("DtsInstanceId", instance.as_str()),
        ("DtsJobName", "tracking"),
        ("DbList", r#"{"shop":{"name":"shop","all":true}}"#),
        ("SourceEndpointEngineName", "MySQL"),
        ("SourceEndpointInstanceType", "OTHER"),
        ("SourceEndpointIP", "10.0.0.5"),
        ("SourceEndpointPort", "3306"),
        ("SubscriptionInstanceNetworkType", "vpc"),
    ];
    if let Some(c) = checkpoint {
        params.push(("Checkpoint", c));
    }
    let r = alibaba(f, key, "ConfigureSubscription", &params);
    (instance, job, r)
}

#[test]
fn modify_subscription_replaces_the_selection_of_a_running_task_without_resetting_it() {
    let f = fixture();
    let (instance, job, r) = configured(&f, DEFAULT, None);
    assert_eq!(r["Success"], true, "{r}");
    let modify = |key, params: &[(&str, &str)]| {
        let mut all = vec![("DtsInstanceId", instance.as_str())];
        all.extend_from_slice(params);
        alibaba(&f, key, "ModifySubscription", &all)
    };
    // While the precheck runs: refused.
    let r = modify(DEFAULT, &[("DbList", r#"{"crm":{"name":"crm","all":true}}"#)]);
    assert_eq!(r["Code"], "OperationDenied.JobStatusConflict", "{r}");
    set_running(&f, &job);
    f.ctx
        .store
        .put_checkpoint(&job, "engine/tracking_position", r#"{"kind":"binlog","file":"b.1","offset":9}"#)
        .unwrap();
    let r = modify(
        DEFAULT,
        &[
            ("DbList", r#"{"shop":{"name":"shop","all":true},"crm":{"name":"crm","all":true}}"#),
            ("SubscriptionDataTypeDDL", "false"),
        ],
    );
    assert_eq!(r["Success"], true, "{r}");
    let record = f.ctx.store.job(&job).unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Running);
    assert!(record.spec.database_info.as_deref().unwrap().contains("crm"), "{:?}", record.spec.database_info);
    assert!(f.ctx.store.checkpoint(&job, "engine/tracking_position").unwrap().is_some(), "the position stays");
    let detail = alibaba(&f, DEFAULT, "DescribeDtsJobDetail", &[("DtsJobId", &job)]);
    assert_eq!(detail["SubscriptionDataType"], json!({"Ddl": false, "Dml": true}), "{detail}");
    assert!(detail.to_string().contains("crm"), "DbObject shows the new list: {detail}");

    for (params, want) in [
        (vec![], "MissingParameter"),
        (vec![("DbList", "not json")], "InvalidParameter"),
        (vec![("SubscriptionDataTypeDML", "false")], "InvalidParameter"),
        (vec![("SubscriptionDataTypeDDL", "maybe")], "InvalidParameter"),
        (vec![("DbList", "{}")], "InvalidParameter"),
    ] {
        let r = modify(DEFAULT, &params);
        assert_eq!(r["Code"], want, "{params:?}: {r}");
    }
    let foreign = modify(OPS, &[("DbList", r#"{"crm":{"name":"crm","all":true}}"#)]);
    assert_eq!(foreign["Code"], "OperationDenied.NotPurchased", "{foreign}");
    let unknown = alibaba(&f, DEFAULT, "ModifySubscription", &[("DtsJobId", "dtsnothere"), ("DbList", "{}")]);
    assert_eq!(unknown["Code"], "OperationDenied.NotPurchased", "{unknown}");
}

#[test]
fn configure_subscription_keeps_a_past_checkpoint_as_the_start_time_and_refuses_a_future_one() {
    let f = fixture();
    let past = (chrono::Utc::now().timestamp() - 3600).to_string();
    let (_, job, r) = configured(&f, DEFAULT, Some(&past));
    assert_eq!(r["Success"], true, "{r}");
    let spec = f.ctx.store.job(&job).unwrap().unwrap().spec;
    let start = dts_core::extern_params::subscription_start_time(spec.options.extern_params.as_deref());
    assert_eq!(start, past.parse().ok());
    let future = (chrono::Utc::now().timestamp() + 3600).to_string();
    for bad in [future.as_str(), "-5", "soon"] {
        let (_, _, r) = configured(&f, DEFAULT, Some(bad));
        assert_eq!(r["Code"], "InvalidParameter", "Checkpoint {bad}: {r}");
    }
}

#[test]
fn legacy_consumer_group_calls_share_the_groups_of_the_consumer_channel_calls() {
    let f = fixture();
    let (instance, job, _) = configured(&f, DEFAULT, None);
    let by_instance = |key, action, extra: &[(&str, &str)]| {
        let mut p = vec![("SubscriptionInstanceId", instance.as_str())];
        p.extend_from_slice(extra);
        alibaba(&f, key, action, &p)
    };
    let group =
        [("ConsumerGroupName", "g1"), ("ConsumerGroupUserName", "reader"), ("ConsumerGroupPassword", "Reader1234")];
    let created = by_instance(DEFAULT, "CreateConsumerGroup", &group);
    let id = created["ConsumerGroupID"].as_str().expect("a group id").to_string();
    assert!(id.starts_with("dtse"), "{created}");
    let channels = alibaba(&f, DEFAULT, "DescribeConsumerChannel", &[("DtsJobId", &job)]);
    assert_eq!(channels["ConsumerChannels"][0]["ConsumerGroupId"], id.as_str(), "{channels}");
    let listed = by_instance(DEFAULT, "DescribeConsumerGroup", &[]);
    let item = &listed["ConsumerChannels"]["DescribeConsumerChannel"][0];
    assert_eq!((&item["ConsumerGroupID"], &item["ConsumerGroupName"]), (&json!(id), &json!("g1")), "{listed}");
    assert_eq!((&item["MessageDelay"], &item["UnconsumedData"]), (&json!(-1), &json!(-1)), "no reader yet: {item}");
    assert_eq!((&listed["TotalRecordCount"], &listed["PageNumber"]), (&json!(1), &json!(1)), "{listed}");
    assert_eq!(by_instance(DEFAULT, "DescribeConsumerGroup", &[("PageSize", "20")])["Code"], "InvalidParameter");

    // The password: the current one must match; the new one must be strong enough.
    let change = |current, new| {
        by_instance(
            DEFAULT,
            "ModifyConsumerGroupPassword",
            &[("ConsumerGroupID", &id), ("ConsumerGroupPassword", current), ("consumerGroupNewPassword", new)],
        )
    };
    assert_eq!(change("Wrong1234", "Better5678")["Code"], "InvalidParameter");
    assert_eq!(change("Reader1234", "weak")["Code"], "InvalidParameter");
    assert_eq!(change("Reader1234", "Better5678")["Success"], true);
    assert_eq!(change("Reader1234", "Other5678")["Code"], "InvalidParameter", "the old one is gone");
    assert_eq!(change("Better5678", "Other5678")["Success"], true);

    // The subscription's meta for the group.
    let meta = |extra: &[(&str, &str)]| {
        let mut p = vec![("DtsInstanceId", instance.as_str())];
        p.extend_from_slice(extra);
        alibaba(&f, DEFAULT, "DescribeSubscriptionMeta", &p)
    };
    let jobs = serde_json::to_string(&[&job]).unwrap();
    let m = meta(&[("Sid", &id), ("SubMigrationJobIds", &jobs)]);
    let entry = &m["SubscriptionMetaList"][0];
    assert_eq!(entry["Sid"], id.as_str(), "{m}");
    assert!(entry["DBList"].as_str().unwrap().contains("shop"), "{m}");
    assert_eq!(entry["Checkpoint"], 0, "no bus here: {m}");
    assert_eq!(meta(&[("Sid", "dtsenothere"), ("SubMigrationJobIds", &jobs)])["Code"], "InvalidParameter");
    assert_eq!(meta(&[("Sid", &id)])["Code"], "MissingParameter");
    assert_eq!(meta(&[("Sid", &id), ("SubMigrationJobIds", r#"["dtsother"]"#)])["Code"], "InvalidParameter");
    assert_eq!(meta(&[("Sid", &id), ("SubMigrationJobIds", &job)])["Success"], true, "comma-separated text");

    // Another account sees neither the instance nor its groups.
    for action in ["DescribeConsumerGroup", "CreateConsumerGroup", "DeleteConsumerGroup"] {
        let mut extra = group.to_vec();
        extra.push(("ConsumerGroupID", &id));
        let r = by_instance(OPS, action, &extra);
        assert_eq!(r["Code"], "OperationDenied.NotPurchased", "{action}: {r}");
    }
    let r =
        alibaba(&f, OPS, "DescribeSubscriptionMeta", &[("DtsInstanceId", &instance), ("Sid", &id), ("Topics", "t")]);
    assert_eq!(r["Code"], "OperationDenied.NotPurchased", "{r}");

    assert_eq!(
        by_instance(DEFAULT, "DeleteConsumerGroup", &[("ConsumerGroupID", "dtsenothere")])["Code"],
        "InvalidParameter"
    );
    assert_eq!(by_instance(DEFAULT, "DeleteConsumerGroup", &[("ConsumerGroupID", &id)])["Success"], true);
    let listed = by_instance(DEFAULT, "DescribeConsumerGroup", &[]);
    assert_eq!(listed["TotalRecordCount"], 0, "{listed}");
    let missing = alibaba(&f, DEFAULT, "DescribeConsumerGroup", &[]);
    assert_eq!(missing["Code"], "MissingParameter", "{missing}");
}
