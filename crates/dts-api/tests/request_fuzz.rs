//! Property tests on request parsing: whatever arrives (random headers, bodies, queries, and
//! validly signed requests with random parameter trees), the API answers HTTP 200 with a JSON
//! envelope carrying a RequestId, within a second, and never panics.

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
    rt: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store.ensure_key("default", "AKIDfuzz", "fuzzkey").unwrap();
    let mut ctx = ApiContext::new(store, InstanceRegistry::default(), Arc::new(tokio::sync::Notify::new()));
    ctx.throttle = dts_api::Throttle::new(1_000_000, 1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    Fixture { _dir: dir, app: router(Arc::new(ctx)), rt }
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
        params.extend([
            ("Action".to_string(), action.to_string()),
            ("Version".to_string(), "2018-03-30".to_string()),
            ("Region".to_string(), "ap-guangzhou".to_string()),
            ("Timestamp".to_string(), chrono::Utc::now().timestamp().to_string()),
            ("Nonce".to_string(), rand_nonce()),
            ("SecretId".to_string(), "AKIDfuzz".to_string()),
            ("SignatureMethod".to_string(), "HmacSHA256".to_string()),
        ]);
        let sig = v1_sign("fuzzkey", V1Method::HmacSha256, &v1_string_to_sign("POST", "h", &params));
        params.push(("Signature".to_string(), sig));
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
        let req = Request::post("/").header("content-type", "application/x-www-form-urlencoded").header("host", "h").body(Body::from(body)).unwrap();
        let v = send(&f, req);
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
