//! Accounts through signed requests of both dialects: a registry instance of account `ops` is
//! unknown to every other account (`InvalidParameter.InstanceNotFound` with the same message as
//! an unknown id), a `shared` one is known to all; pointing a job at another server through
//! ModifyMigrateJob or ConfigureDtsJob without a new password clears the stored one.

mod support;

use serde_json::json;
use support::{DEFAULT, Fixture, OPS, alibaba, fixture, tencent};

fn create(f: &Fixture, key: (&str, &str), src: serde_json::Value) -> serde_json::Value {
    tencent(
        f,
        key,
        "CreateMigrateJob",
        json!({
            "JobName": "j", "MigrateOption": {"RunMode": 1, "MigrateType": 2, "MigrateObject": 1},
            "SrcDatabaseType": "mysql", "SrcAccessType": if src.get("InstanceId").is_some() { "cdb" } else { "extranet" },
            "SrcInfo": src,
            "DstDatabaseType": "mysql", "DstAccessType": "extranet",
            "DstInfo": {"Ip": "10.0.0.9", "Port": 3306, "User": "root", "Password": "dst-pw", "Region": "ap-guangzhou"},
        }),
    )
}

#[test]
fn another_accounts_instance_is_unknown_and_a_shared_one_is_known_to_all() {
    let f = fixture();
    let unknown = create(&f, DEFAULT, json!({"InstanceId": "cdb-nosuch"}));
    let foreign = create(&f, DEFAULT, json!({"InstanceId": "cdb-ops"}));
    assert_eq!(foreign["Error"]["Code"], "InvalidParameter.InstanceNotFound", "{foreign}");
    let same_message = unknown["Error"]["Message"].as_str().unwrap().replace("cdb-nosuch", "cdb-ops");
    assert_eq!(foreign["Error"]["Message"], same_message.as_str());
    let own = create(&f, OPS, json!({"InstanceId": "cdb-ops"}));
    assert!(own["JobId"].is_string(), "{own}");
    for key in [DEFAULT, OPS] {
        let shared = create(&f, key, json!({"InstanceId": "cdb-shared"}));
        assert!(shared["JobId"].is_string(), "{shared}");
    }

    // The Alibaba dialect: the same instance id through ConfigureDtsJob.
    let inst = alibaba(&f, DEFAULT, "CreateDtsInstance", &[("Type", "MIGRATION")]);
    let job = inst["JobId"].as_str().unwrap().to_string();
    let configure = |key, id: &str| {
        alibaba(
            &f,
            key,
            "ConfigureDtsJob",
            &[
                ("DtsJobId", &job),
                ("SourceEndpointEngineName", "MySQL"),
                ("SourceEndpointInstanceType", "RDS"),
                ("SourceEndpointInstanceID", id),
                ("DestinationEndpointEngineName", "MySQL"),
                ("DestinationEndpointInstanceType", "OTHER"),
                ("DestinationEndpointIP", "10.0.0.9"),
                ("DestinationEndpointPort", "3306"),
                ("DataInitialization", "true"),
                ("DbList", r#"{"shop":{"name":"shop","all":true}}"#),
            ],
        )
    };
    let unknown = configure(DEFAULT, "cdb-nosuch");
    let foreign = configure(DEFAULT, "cdb-ops");
    assert_eq!(foreign["Code"], "InvalidParameter", "{foreign}");
    assert_eq!(
        foreign["Message"].as_str().unwrap(),
        unknown["Message"].as_str().unwrap().replace("cdb-nosuch", "cdb-ops")
    );
    let shared = configure(DEFAULT, "cdb-shared");
    assert_eq!(shared["Success"], true, "{shared}");
}

fn passwords(f: &Fixture, job: &str) -> (Option<String>, Option<String>) {
    let record = f.ctx.store.job(job).unwrap().unwrap();
    f.ctx.store.job_passwords(&record).unwrap()
}

#[test]
fn moving_an_endpoint_without_a_new_password_clears_the_stored_one() {
    let f = fixture();
    let src = json!({"Ip": "10.0.0.5", "Port": 3306, "User": "u", "Password": "src-pw"});
    let job = create(&f, DEFAULT, src)["JobId"].as_str().unwrap().to_string();
    assert_eq!(passwords(&f, &job), (Some("src-pw".into()), Some("dst-pw".into())));
    // Same server, other fields: the password stays.
    let r = tencent(
        &f,
        DEFAULT,
        "ModifyMigrateJob",
        json!({"JobId": job, "SrcInfo": {"Ip": "10.0.0.5", "Port": 3306, "User": "u2"}}),
    );
    assert!(r["Error"].is_null(), "{r}");
    assert_eq!(passwords(&f, &job).0.as_deref(), Some("src-pw"));
    // Another host, or another port: cleared.
    let r = tencent(
        &f,
        DEFAULT,
        "ModifyMigrateJob",
        json!({"JobId": job, "SrcInfo": {"Ip": "203.0.113.7", "Port": 3306, "User": "u2"}}),
    );
    assert!(r["Error"].is_null(), "{r}");
    assert_eq!(passwords(&f, &job).0.as_deref(), Some(""));
    let r = tencent(
        &f,
        DEFAULT,
        "ModifyMigrateJob",
        json!({"JobId": job, "DstInfo": {"Ip": "10.0.0.9", "Port": 3307, "User": "root", "Region": "ap-guangzhou"}}),
    );
    assert!(r["Error"].is_null(), "{r}");
    assert_eq!(passwords(&f, &job).1.as_deref(), Some(""));
    // A new password with the move is kept.
    let r = tencent(
        &f,
        DEFAULT,
        "ModifyMigrateJob",
        json!({"JobId": job, "SrcInfo": {"Ip": "10.0.0.6", "Port": 3306, "User": "u", "Password": "new"}}),
    );
    assert!(r["Error"].is_null(), "{r}");
    assert_eq!(passwords(&f, &job).0.as_deref(), Some("new"));

    // ConfigureDtsJob again with another destination port and no password.
    let inst = alibaba(&f, DEFAULT, "CreateDtsInstance", &[("Type", "MIGRATION")]);
    let ajob = inst["JobId"].as_str().unwrap().to_string();
    let configure = |dst_port: &str, dst_password: Option<&str>| {
        let mut p = vec![
            ("DtsJobId", ajob.as_str()),
            ("SourceEndpointEngineName", "MySQL"),
            ("SourceEndpointInstanceType", "OTHER"),
            ("SourceEndpointIP", "10.0.0.5"),
            ("SourceEndpointPort", "3306"),
            ("SourceEndpointPassword", "s"),
            ("DestinationEndpointEngineName", "MySQL"),
            ("DestinationEndpointInstanceType", "OTHER"),
            ("DestinationEndpointIP", "10.0.0.9"),
            ("DestinationEndpointPort", dst_port),
            ("DataInitialization", "true"),
            ("DbList", r#"{"shop":{"name":"shop","all":true}}"#),
        ];
        if let Some(pw) = dst_password {
            p.push(("DestinationEndpointPassword", pw));
        }
        let r = alibaba(&f, DEFAULT, "ConfigureDtsJob", &p);
        assert_eq!(r["Success"], true, "{r}");
        // No engine runs here: settle the precheck as failed, so the task can be configured again.
        f.ctx
            .store
            .update_job(&ajob, |job| {
                job.status = dts_core::JobStatus::CheckNotPass;
                Ok(())
            })
            .unwrap();
    };
    configure("3306", Some("d"));
    assert_eq!(passwords(&f, &ajob).1.as_deref(), Some("d"));
    configure("3306", None);
    assert_eq!(passwords(&f, &ajob).1.as_deref(), Some("d"), "same server: kept");
    configure("4406", None);
    assert_eq!(passwords(&f, &ajob).1.as_deref(), Some(""), "another port: cleared");
}

#[test]
fn an_access_key_is_stored_encrypted_and_never_returned() {
    let f = fixture();
    let secret = "AKIA-access-key-7731";
    let src = json!({"Ip": "10.0.0.5", "Port": 3306, "User": "u", "Password": "p", "AccessKey": secret});
    let job = create(&f, DEFAULT, src)["JobId"].as_str().unwrap().to_string();
    let listed = tencent(&f, DEFAULT, "DescribeMigrateJobs", json!({"JobId": job}));
    assert_eq!(listed["JobList"][0]["SrcInfo"]["AccessKey"], "", "{listed}");
    assert!(!listed.to_string().contains(secret), "{listed}");
    let record = f.ctx.store.job(&job).unwrap().unwrap();
    let stored = serde_json::to_string(&record.spec).unwrap();
    assert!(!stored.contains(secret), "stored in clear: {stored}");
    let sealed = record.spec.source.extra["AccessKeySealed"].as_str().unwrap();
    assert_eq!(f.ctx.store.open_endpoint_secret("SrcInfo.AccessKey", sealed).unwrap(), secret);
    let detail = alibaba(&f, DEFAULT, "DescribeDtsJobDetail", &[("DtsJobId", &job)]);
    assert!(!detail.to_string().contains(secret), "{detail}");
}
