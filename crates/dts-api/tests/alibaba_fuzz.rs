//! Property tests on the Alibaba dialect: unsigned garbage and validly signed RPC v1 requests
//! with random parameters for every action are answered with a JSON body carrying a RequestId
//! and a 2xx/4xx status (never a 5xx: bad input is the caller's error), within 5 s, and never
//! echo a password. Deep, wide and huge inputs (10,000 parameters, 10 MiB values, invalid UTF-8,
//! duplicate parameters, long nonces, JSON-valued parameters nested 100,000 deep) get the
//! documented error naming the limit, and only admitted requests leave a nonce behind.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use dts_api::alibaba::signature::{percent_encode, rpc_v1_sign, rpc_v1_string_to_sign};
use dts_api::{ApiContext, router};
use dts_core::InstanceRegistry;
use dts_store::Store;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

const ACTIONS: [&str; 12] = [
    "CreateDtsInstance",
    "ConfigureDtsJob",
    "DescribePreCheckStatus",
    "StartDtsJob",
    "SuspendDtsJob",
    "StopDtsJob",
    "ResetDtsJob",
    "DeleteDtsJob",
    "DescribeDtsJobs",
    "DescribeDtsJobDetail",
    "ModifyDtsJobName",
    "NoSuchAction",
];

const KEYS: [&str; 16] = [
    "Type",
    "SyncArchitecture",
    "PayType",
    "Quantity",
    "DtsJobId",
    "DtsInstanceId",
    "DtsJobName",
    "JobType",
    "SynchronizationDirection",
    "DbList",
    "Reserve",
    "SourceEndpointPort",
    "SourceEndpointPassword",
    "StructureInitialization",
    "PageSize",
    "JobCode",
];

struct Fixture {
    _dir: tempfile::TempDir,
    app: axum::Router,
    ctx: Arc<ApiContext>,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store.ensure_key("default", "LTAIfuzz", "fuzzsecret").unwrap();
    let mut ctx = ApiContext::new(store, InstanceRegistry::default(), Arc::new(tokio::sync::Notify::new()));
    ctx.throttle = dts_api::Throttle::new(1_000_000, 1_000_000);
    let ctx = Arc::new(ctx);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    Fixture { _dir: dir, app: router(ctx.clone()), ctx, rt }
}

fn send(f: &Fixture, req: Request<Body>) -> (u16, Value) {
    f.rt.block_on(async {
        let resp = tokio::time::timeout(Duration::from_secs(5), f.app.clone().oneshot(req))
            .await
            .expect("the API answered within 5 s")
            .unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 16 << 20).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("JSON reply: {body:?}"));
        assert!(v["RequestId"].is_string(), "{v}");
        assert!(status < 500, "bad input must not be a server error: {status} {v}");
        (status, v)
    })
}

fn signed(action: &str, params: &[(String, String)]) -> Request<Body> {
    signed_with_nonce(action, params, &format!("{:032x}", rand_nonce()))
}

/// Common parameters in the query, the action's in a form body, as the core SDK sends them.
fn signed_form(action: &str, params: &[(String, String)], nonce: &str) -> Request<Body> {
    let common = common_params(action, nonce);
    let mut all = common.clone();
    all.extend(params.iter().cloned());
    let sig = rpc_v1_sign("fuzzsecret", &rpc_v1_string_to_sign("POST", &all));
    let mut query: Vec<String> =
        common.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    query.push(format!("Signature={}", percent_encode(&sig)));
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    Request::post(format!("/?{}", query.join("&")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn common_params(action: &str, nonce: &str) -> Vec<(String, String)> {
    vec![
        ("Action".into(), action.into()),
        ("Version".into(), "2020-01-01".into()),
        ("Format".into(), "JSON".into()),
        ("AccessKeyId".into(), "LTAIfuzz".into()),
        ("SignatureMethod".into(), "HMAC-SHA1".into()),
        ("SignatureVersion".into(), "1.0".into()),
        ("SignatureNonce".into(), nonce.into()),
        ("Timestamp".into(), chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
    ]
}

fn signed_with_nonce(action: &str, params: &[(String, String)], nonce: &str) -> Request<Body> {
    let mut all = common_params(action, nonce);
    all.extend(params.iter().cloned());
    let sig = rpc_v1_sign("fuzzsecret", &rpc_v1_string_to_sign("POST", &all));
    all.push(("Signature".into(), sig));
    let query: Vec<String> = all.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    Request::post(format!("/?{}", query.join("&"))).header("x-acs-action", action).body(Body::empty()).unwrap()
}

fn rand_nonce() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    (u128::from(N.fetch_add(1, Ordering::Relaxed)) << 64) | u128::from(std::process::id())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn signed_alibaba_requests_with_random_parameters_get_a_client_error_or_an_answer(
        action in prop::sample::select(&ACTIONS[..]),
        params in prop::collection::vec((prop::sample::select(&KEYS[..]), ".{0,16}"), 0..6),
    ) {
        let f = FIXTURE.with(|f| f.clone());
        let params: Vec<(String, String)> = params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let (_, v) = send(&f, signed(action, &params));
        for (k, val) in &params {
            if k == "SourceEndpointPassword" && val.len() > 3 {
                prop_assert!(!v.to_string().contains(val.as_str()), "a password came back: {v}");
            }
        }
    }

    #[test]
    fn unsigned_alibaba_looking_garbage_gets_a_client_error(
        action in ".{0,20}",
        query in "[A-Za-z0-9=&%+._-]{0,80}",
        auth in prop_oneof![Just(String::new()), ".{0,40}".prop_map(|s| format!("ACS3-HMAC-SHA256 {s}"))],
    ) {
        let f = FIXTURE.with(|f| f.clone());
        let mut req = Request::post(format!("/?{query}")).header("x-acs-action", "StartDtsJob");
        if let Ok(v) = axum::http::HeaderValue::from_str(&action) {
            req = req.header("x-acs-version", v);
        }
        if !auth.is_empty() && let Ok(v) = axum::http::HeaderValue::from_str(&auth) {
            req = req.header("authorization", v);
        }
        let (status, _) = send(&f, req.body(Body::empty()).unwrap());
        prop_assert!((400..500).contains(&status));
    }
}

#[test]
fn the_fuzzers_signing_is_accepted() {
    let f = fixture();
    let (status, v) = send(&f, signed("DescribeDtsJobs", &[("PageSize".into(), "5".into())]));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["Success"], true, "{v}");
    let (status, v) = send(&f, signed("StartDtsJob", &[("DtsJobId".into(), "dts-nothere".into())]));
    assert_eq!((status, v["Code"].as_str()), (403, Some("OperationDenied.NotPurchased")), "{v}");
}

thread_local! {
    static FIXTURE: Arc<Fixture> = Arc::new(fixture());
}

fn p(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

fn nonce() -> String {
    format!("{:032x}", rand_nonce())
}

fn expect(f: &Fixture, req: Request<Body>, status: u16, code: &str, says: &str, parameter: &str) {
    let started = std::time::Instant::now();
    let (got, v) = send(f, req);
    let shown: String = v.to_string().chars().take(400).collect();
    assert_eq!((got, v["Code"].as_str().unwrap_or("")), (status, code), "{shown}");
    assert!(v["Message"].as_str().unwrap_or("").contains(says), "{says}: {shown}");
    assert_eq!(v["DynamicMessage"], parameter, "{shown}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn deep_wide_and_huge_alibaba_inputs_get_the_documented_error_naming_the_limit() {
    let f = fixture();
    let wide: Vec<(String, String)> = (0..10_000).map(|i| p(format!("P{i}"), "v")).collect();
    expect(&f, signed_form("DescribeDtsJobs", &wide, &nonce()), 400, "InvalidParameter", "more than 1000", "(request)");
    let big = [p("DtsJobName", "x".repeat(2 << 20))];
    expect(
        &f,
        signed_form("DescribeDtsJobs", &big, &nonce()),
        400,
        "InvalidParameter",
        "larger than 1048576",
        "DtsJobName",
    );
    let huge = [p("DtsJobName", "x".repeat(10 << 20))];
    expect(
        &f,
        signed_form("DescribeDtsJobs", &huge, &nonce()),
        413,
        "RequestSizeLimitExceeded",
        "larger than 10485760",
        "",
    );
    let dup = [p("DtsJobName", "a"), p("DtsJobName", "b")];
    expect(
        &f,
        signed_form("ModifyDtsJobName", &dup, &nonce()),
        400,
        "InvalidParameter",
        "more than once",
        "DtsJobName",
    );
    let long = "a".repeat(60_000); // near the longest URI the http crate takes
    expect(
        &f,
        signed_with_nonce("DescribeDtsJobs", &[], &long),
        400,
        "InvalidParameter",
        "longer than 128 bytes",
        "SignatureNonce",
    );
    let mut bad_utf8 = signed_form("DescribeDtsJobs", &[], &nonce());
    *bad_utf8.body_mut() = Body::from(b"DtsJobName=%FF%FE".to_vec());
    expect(&f, bad_utf8, 400, "InvalidParameter", "not valid UTF-8", "(request)");
    // JSON-valued parameters: serde_json refuses nesting beyond 128; the value size is bounded.
    let deep = format!("{}{}", "{\"a\":".repeat(100_000), "1");
    let job = create_instance(&f);
    let configure = |db_list: &str| {
        signed_form(
            "ConfigureDtsJob",
            &[
                p("DtsJobId", job.as_str()),
                p("SourceEndpointEngineName", "MySQL"),
                p("SourceEndpointInstanceType", "other"),
                p("SourceEndpointIP", "127.0.0.1"),
                p("SourceEndpointPort", "3306"),
                p("DestinationEndpointEngineName", "MySQL"),
                p("DestinationEndpointInstanceType", "other"),
                p("DestinationEndpointIP", "127.0.0.1"),
                p("DestinationEndpointPort", "3306"),
                p("DataInitialization", "true"),
                p("DbList", db_list),
            ],
            &nonce(),
        )
    };
    expect(&f, configure(&deep), 400, "InvalidParameter", "recursion limit", "DbList");
    expect(&f, configure(&"[".repeat(2 << 20)), 400, "InvalidParameter", "larger than 1048576", "DbList");
    // Still serving.
    let (status, v) = send(&f, signed("DescribeDtsJobs", &[]));
    assert_eq!(status, 200, "{v}");
}

fn create_instance(f: &Fixture) -> String {
    let (status, v) = send(f, signed("CreateDtsInstance", &[p("Type", "MIGRATION")]));
    assert_eq!(status, 200, "{v}");
    v["JobId"].as_str().unwrap().to_string()
}

#[test]
fn an_alibaba_nonce_is_recorded_only_for_admitted_requests() {
    let f = fixture();
    let before = f.ctx.ali_replay.len();
    let n = nonce();
    let (status, v) = send(&f, signed_with_nonce("NoSuchAction", &[], &n));
    assert_eq!((status, v["Code"].as_str()), (404, Some("InvalidAction.NotFound")), "{v}");
    assert_eq!(f.ctx.ali_replay.len(), before);
    let (status, v) = send(&f, signed_with_nonce("DescribeDtsJobs", &[], &n));
    assert_eq!(status, 200, "the nonce of a refused request is still free: {v}");
    let (status, v) = send(&f, signed_with_nonce("DescribeDtsJobs", &[], &n));
    assert_eq!((status, v["Code"].as_str()), (400, Some("SignatureNonceUsed")), "{v}");
}
