//! Property tests on request parsing: whatever arrives (random headers, bodies, queries, and
//! validly signed requests with random parameter trees), the API answers HTTP 200 with a JSON
//! envelope carrying a RequestId, within a second, and never panics. Deep, wide and huge inputs
//! (200,000-segment names, 10,000 parameters, 10 MiB values, invalid UTF-8, duplicates, slow and
//! parallel uploads, long nonces) get the documented error naming the limit, in time, and leave
//! nothing behind in the nonce store.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dts_api::tencent::signature::{Tc3Input, V1Method, tc3_authorization, v1_sign, v1_string_to_sign};
use dts_api::{ApiContext, router};
use dts_core::InstanceRegistry;
use dts_store::Store;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

const ACTIONS: [&str; 11] = [
    "CreateMigrateJob",
    "ModifyMigrateJob",
    "DeleteMigrateJob",
    "DescribeMigrateJobs",
    "CreateMigrateCheckJob",
    "DescribeMigrateCheckJob",
    "StartMigrateJob",
    "StopMigrateJob",
    "CompleteMigrateJob",
    "NoSuchAction",
    "",
];

struct Fixture {
    _dir: tempfile::TempDir,
    app: axum::Router,
    ctx: Arc<ApiContext>,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

fn fixture_with(adjust: impl FnOnce(&mut ApiContext)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store.ensure_key("default", "AKIDfuzz", "fuzzkey").unwrap();
    let mut ctx = ApiContext::new(store, InstanceRegistry::default(), Arc::new(tokio::sync::Notify::new()));
    ctx.throttle = dts_api::Throttle::new(1_000_000, 1_000_000);
    adjust(&mut ctx);
    let ctx = Arc::new(ctx);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    Fixture { _dir: dir, app: router(ctx.clone()), ctx, rt }
}

fn send(f: &Fixture, req: Request<Body>) -> Value {
    f.rt.block_on(async {
        let resp = tokio::time::timeout(Duration::from_secs(5), f.app.clone().oneshot(req))
            .await
            .expect("the API answered within 5 s")
            .unwrap();
        let status = resp.status();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(resp.into_body(), 16 << 20).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(ct.as_deref(), Some("application/json"));
        let v: Value = serde_json::from_slice(&body).expect("JSON reply");
        assert!(v["Response"]["RequestId"].is_string(), "{v}");
        v
    })
}

fn json_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("JobId".to_string()),
            Just("JobName".to_string()),
            Just("MigrateOption".to_string()),
            Just("RunMode".to_string()),
            Just("SrcInfo".to_string()),
            Just("DstInfo".to_string()),
            Just("Region".to_string()),
            Just("Limit".to_string()),
            Just("TagFilters".to_string()),
            Just("DatabaseInfo".to_string()),
            "[A-Za-z.0-9]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn signed_tc3(action: &str, body: Vec<u8>) -> Request<Body> {
    let ts = chrono::Utc::now().timestamp().to_string();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let input = Tc3Input {
        method: "POST",
        query: "",
        content_type: "application/json",
        host: "127.0.0.1:9860",
        payload: &body,
        unsigned_payload: false,
        timestamp: &ts,
        date: &date,
        service: "dts",
    };
    Request::post("/")
        .header("content-type", "application/json")
        .header("host", "127.0.0.1:9860")
        .header("x-tc-action", action)
        .header("x-tc-version", "2018-03-30")
        .header("x-tc-timestamp", &ts)
        .header("x-tc-region", "ap-guangzhou")
        .header("authorization", tc3_authorization("AKIDfuzz", "fuzzkey", &input))
        .body(Body::from(body))
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_unsigned_requests_get_an_error_envelope(
        method in prop_oneof![Just("GET"), Just("POST")],
        auth in prop_oneof![Just(String::new()), ".{0,60}", "TC3-HMAC-SHA256 .{0,80}"],
        ct in prop_oneof![Just("application/json"), Just("application/x-www-form-urlencoded"), Just("text/plain")],
        query in "[A-Za-z0-9=&.%+_-]{0,80}",
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let f = fixture();
        let mut b = Request::builder().method(method).uri(format!("/?{query}")).header("content-type", ct).header("host", "h");
        if let Ok(v) = axum::http::HeaderValue::from_str(&auth)
            && !auth.is_empty()
        {
            b = b.header("authorization", v);
        }
        let v = send(&f, b.body(Body::from(body)).unwrap());
        prop_assert!(v["Response"]["Error"]["Code"].is_string());
    }

    #[test]
    fn validly_signed_requests_with_random_parameters_never_break_the_server(
        action in prop::sample::select(&ACTIONS[..]),
        tree in json_tree(),
    ) {
        let f = fixture();
        let v = send(&f, signed_tc3(action, serde_json::to_vec(&tree).unwrap()));
        if let Some(code) = v["Response"]["Error"]["Code"].as_str() {
            prop_assert!(!code.starts_with("AuthFailure"), "signature must verify: {v}");
            prop_assert_ne!(code, "InternalError");
        }
    }

    #[test]
    fn validly_signed_v1_requests_with_random_flat_parameters_never_break_the_server(
        action in prop::sample::select(&ACTIONS[..]),
        pairs in prop::collection::vec(("[A-Za-z][A-Za-z0-9.]{0,20}", ".{0,10}"), 0..8),
    ) {
        let f = fixture();
        let mut params: Vec<(String, String)> = pairs;
        params.retain(|(k, _)| !["Action", "Version", "Region", "Timestamp", "Nonce", "SecretId", "Signature", "SignatureMethod"].contains(&k.as_str()));
        let v = send(&f, signed_v1(action, params, &rand_nonce()));
        if let Some(code) = v["Response"]["Error"]["Code"].as_str() {
            prop_assert_ne!(code, "InternalError");
            // A duplicated key (possible with random pairs) is a legitimate signature mismatch.
            prop_assert!(code != "AuthFailure.SecretIdNotFound" && code != "AuthFailure.SignatureExpire", "{v}");
        }
    }
}

fn rand_nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// A v1 (HmacSHA256) POST form request signed for `AKIDfuzz`.
fn signed_v1(action: &str, mut params: Vec<(String, String)>, nonce: &str) -> Request<Body> {
    params.extend([
        ("Action".to_string(), action.to_string()),
        ("Version".to_string(), "2018-03-30".to_string()),
        ("Region".to_string(), "ap-guangzhou".to_string()),
        ("Timestamp".to_string(), chrono::Utc::now().timestamp().to_string()),
        ("Nonce".to_string(), nonce.to_string()),
        ("SecretId".to_string(), "AKIDfuzz".to_string()),
        ("SignatureMethod".to_string(), "HmacSHA256".to_string()),
    ]);
    let sig = v1_sign("fuzzkey", V1Method::HmacSha256, &v1_string_to_sign("POST", "h", &params));
    params.push(("Signature".to_string(), sig));
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    form_request(body.into_bytes())
}

fn form_request(body: Vec<u8>) -> Request<Body> {
    Request::post("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "h")
        .body(Body::from(body))
        .unwrap()
}

/// Sends, and asserts the answer came within 5 s with `code` and a message containing `says`.
fn expect_error(f: &Fixture, req: Request<Body>, code: &str, says: &str) {
    let started = std::time::Instant::now();
    let v = send(f, req);
    let e = &v["Response"]["Error"];
    assert_eq!(e["Code"], code, "{}", truncated(&v));
    assert!(e["Message"].as_str().unwrap().contains(says), "{}", truncated(&v));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

fn truncated(v: &Value) -> String {
    v.to_string().chars().take(400).collect()
}

fn param(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

/// The inputs of issue 11 and what each must get (code, words of the message).
fn hostile_inputs() -> Vec<(&'static str, Request<Body>, &'static str, &'static str)> {
    let n = rand_nonce;
    let deep200k = vec!["a"; 200_000].join(".");
    let nine = ["A"; 9].join(".");
    let wide: Vec<(String, String)> = (0..10_000).map(|i| param(format!("P{i}"), "v")).collect();
    let mut invalid_utf8 = b"Action=DescribeMigrateJobs&JobName=%FF%FE&SecretId=AKIDfuzz".to_vec();
    invalid_utf8.extend(b"&Name=\xff\xfe");
    let deep_json = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let wide_json = serde_json::to_vec(&serde_json::json!({ "JobName": vec!["x"; 10_000] })).unwrap();
    let huge_json = serde_json::to_vec(&serde_json::json!({ "JobName": "x".repeat(2 << 20) })).unwrap();
    vec![
        (
            "200,000-segment name",
            signed_v1("DescribeMigrateJobs", vec![param(deep200k, "v")], &n()),
            "InvalidParameter",
            "longer than 256 bytes",
        ),
        (
            "9-segment name",
            signed_v1("DescribeMigrateJobs", vec![param(nine, "v")], &n()),
            "InvalidParameter",
            "deeper than 8 levels",
        ),
        (
            "10,000 parameters",
            signed_v1("DescribeMigrateJobs", wide, &n()),
            "InvalidParameter",
            "more than 1000 parameters",
        ),
        (
            "2 MiB value",
            signed_v1("DescribeMigrateJobs", vec![param("JobName", "x".repeat(2 << 20))], &n()),
            "InvalidParameter",
            "larger than 1048576 bytes",
        ),
        (
            "10 MiB value",
            signed_v1("DescribeMigrateJobs", vec![param("JobName", "x".repeat(10 << 20))], &n()),
            "RequestSizeLimitExceeded",
            "larger than 10485760 bytes",
        ),
        ("invalid UTF-8", form_request(invalid_utf8), "InvalidParameter", "not valid UTF-8"),
        (
            "duplicate parameters",
            signed_v1("DescribeMigrateJobs", vec![param("JobName", "a"), param("JobName", "b")], &n()),
            "InvalidParameter",
            "more than once",
        ),
        (
            "1 MiB nonce",
            signed_v1("DescribeMigrateJobs", vec![], &"7".repeat(1 << 20)),
            "InvalidParameter",
            "longer than 128 bytes",
        ),
        (
            "100,000-deep JSON",
            signed_tc3("DescribeMigrateJobs", deep_json.into_bytes()),
            "InvalidParameter",
            "deeper than 8 levels",
        ),
        (
            "10,000-value JSON",
            signed_tc3("DescribeMigrateJobs", wide_json),
            "InvalidParameter",
            "more than 1000 parameters",
        ),
        (
            "2 MiB JSON string",
            signed_tc3("DescribeMigrateJobs", huge_json),
            "InvalidParameter",
            "larger than 1048576 bytes",
        ),
        (
            "JSON not UTF-8",
            signed_tc3("DescribeMigrateJobs", b"{\"JobName\": \"\xff\"}".to_vec()),
            "InvalidParameter",
            "not valid JSON",
        ),
    ]
}

#[test]
fn deep_wide_and_huge_inputs_get_the_documented_error_naming_the_limit_in_time() {
    let f = fixture();
    for (what, req, code, says) in hostile_inputs() {
        eprintln!("{what}");
        expect_error(&f, req, code, says);
    }
    // The server is still up, and the same key works.
    let v = send(&f, signed_v1("DescribeMigrateJobs", vec![], &rand_nonce()));
    assert!(v["Response"]["Error"].is_null(), "{v}");
    assert_eq!(f.ctx.replay.len(), 1, "refused requests leave no nonce behind");
}

#[test]
fn a_nonce_is_recorded_only_for_requests_past_the_action_check_and_the_rate_limit() {
    let f = fixture_with(|ctx| ctx.throttle = dts_api::Throttle::new(1, 1));
    let nonce = rand_nonce();
    expect_error(&f, signed_v1("NoSuchAction", vec![], &nonce), "InvalidAction", "does not exist");
    assert_eq!(f.ctx.replay.len(), 0);
    // The rate limit admits one StartMigrateJob per second: the second is refused and its
    // nonce not kept, so it can be sent again once the bucket refills.
    let first = send(&f, signed_v1("StartMigrateJob", vec![param("JobId", "dts-x")], &nonce));
    assert_eq!(first["Response"]["Error"]["Code"], "ResourceNotFound.JobNotExist", "{first}");
    let throttled = rand_nonce();
    expect_error(
        &f,
        signed_v1("StartMigrateJob", vec![param("JobId", "dts-x")], &throttled),
        "RequestLimitExceeded",
        "",
    );
    assert_eq!(f.ctx.replay.len(), 1);
    std::thread::sleep(Duration::from_millis(1100));
    let again = send(&f, signed_v1("StartMigrateJob", vec![param("JobId", "dts-x")], &throttled));
    assert_eq!(again["Response"]["Error"]["Code"], "ResourceNotFound.JobNotExist", "{again}");
    // A replay of a recorded nonce is refused.
    expect_error(
        &f,
        signed_v1("StartMigrateJob", vec![param("JobId", "dts-x")], &nonce),
        "AuthFailure.SignatureFailure",
        "replay",
    );
}

#[test]
fn many_requests_with_long_nonces_do_not_grow_the_nonce_store() {
    let f = fixture();
    for i in 0..150 {
        let nonce = format!("{i}{}", "9".repeat((1 << 20) - 8));
        expect_error(&f, signed_v1("DescribeMigrateJobs", vec![], &nonce), "InvalidParameter", "128 bytes");
    }
    assert_eq!(f.ctx.replay.len(), 0);
}

#[test]
fn a_slow_upload_is_cut_off_and_parallel_ones_wait_for_room_or_are_refused() {
    let f = fixture_with(|ctx| {
        ctx.gate = dts_api::BodyGate::new(1, 16 << 20, Duration::from_millis(100), Duration::from_millis(500))
    });
    // A body that never finishes: answered when the read timeout ends.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let stream = futures_stream(rx);
    let slow = Request::post("/").header("content-type", "application/json").body(Body::from_stream(stream)).unwrap();
    let started = std::time::Instant::now();
    let v = send(&f, slow);
    assert_eq!(v["Response"]["Error"]["Code"], "InvalidRequest", "{v}");
    assert!(started.elapsed() >= Duration::from_millis(450) && started.elapsed() < Duration::from_secs(3));
    drop(tx);
    // While one upload holds the only slot, another is refused once it waited 100 ms.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let held = Request::post("/").body(Body::from_stream(futures_stream(rx))).unwrap();
    let app = f.app.clone();
    let holder = f.rt.spawn(async move { tower::ServiceExt::oneshot(app, held).await });
    std::thread::sleep(Duration::from_millis(100));
    assert!(!holder.is_finished(), "{:?}", f.rt.block_on(holder).unwrap().unwrap());
    let v = send(&f, signed_v1("DescribeMigrateJobs", vec![], &rand_nonce()));
    assert_eq!(v["Response"]["Error"]["Code"], "RequestLimitExceeded", "{v}");
    drop(tx);
    f.rt.block_on(holder).unwrap().unwrap();
    // A declared length over the limit is refused before anything is read.
    let big = Request::post("/").header("content-length", (11u64 << 20).to_string()).body(Body::empty()).unwrap();
    expect_error(&f, big, "RequestSizeLimitExceeded", "larger than");
}

fn futures_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn signed_requests_of_any_depth_width_and_size_are_answered_within_the_bounds(
        depth in 1usize..40,
        width in 0usize..1_600,
        value_len in prop_oneof![0usize..64, (1usize << 20) - 4..(1 << 20) + 4],
    ) {
        let f = FIXTURE.with(|f| f.clone());
        let name = (0..depth).map(|i| format!("S{i}")).collect::<Vec<_>>().join(".");
        let mut params: Vec<(String, String)> = (0..width).map(|i| param(format!("W{i}"), "v")).collect();
        params.push(param(name, "x".repeat(value_len)));
        let started = std::time::Instant::now();
        let v = send(&f, signed_v1("DescribeMigrateJobs", params, &rand_nonce()));
        prop_assert!(started.elapsed() < Duration::from_secs(5));
        let code = v["Response"]["Error"]["Code"].as_str().unwrap_or("");
        let message = v["Response"]["Error"]["Message"].as_str().unwrap_or("");
        let expected = if width + 1 + 7 > dts_api::limits::MAX_PARAMS {
            "more than 1000 parameters"
        } else if value_len > dts_api::limits::MAX_VALUE_BYTES {
            "larger than 1048576 bytes"
        } else if depth > dts_api::limits::MAX_DEPTH {
            "deeper than 8 levels"
        } else {
            "is not recognized"
        };
        prop_assert!(code == "InvalidParameter" || code == "UnknownParameter", "{}", truncated(&v));
        // Over both the parameter count and the value size, either bound may answer first.
        let both = width + 1 + 7 > dts_api::limits::MAX_PARAMS && value_len > dts_api::limits::MAX_VALUE_BYTES;
        prop_assert!(
            message.contains(expected) || (both && message.contains("larger than 1048576 bytes")),
            "{expected}: {}",
            truncated(&v)
        );
    }
}

thread_local! {
    static FIXTURE: Arc<Fixture> = Arc::new(fixture());
}
