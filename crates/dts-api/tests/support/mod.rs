//! What the API tests share: a router over a throwaway store with two accounts (`default` and
//! `ops`) and a registry, and signed calls of both dialects (Tencent TC3, Alibaba RPC v1).

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use dts_api::alibaba::signature::{percent_encode, rpc_v1_sign, rpc_v1_string_to_sign};
use dts_api::tencent::signature::{Tc3Input, tc3_authorization};
use dts_api::{ApiContext, router};
use dts_core::InstanceRegistry;
use dts_store::Store;
use serde_json::Value;
use tower::ServiceExt;

const REGISTRY: &str = r#"
[cdb-ops]
engine = "mysql"
host = "10.0.0.1"
port = 3306
user = "root"
password = "ops-secret"
account = "ops"

[cdb-shared]
engine = "mysql"
host = "10.0.0.2"
port = 3306
user = "root"
shared = true
"#;

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub app: axum::Router,
    pub ctx: Arc<ApiContext>,
    pub rt: tokio::runtime::Runtime,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store.ensure_key("default", "AKIDdefault", "k-default").unwrap();
    store.ensure_key("ops", "AKIDops", "k-ops").unwrap();
    let registry: InstanceRegistry = toml::from_str(REGISTRY).unwrap();
    let ctx = Arc::new(ApiContext::new(store, registry, Arc::new(tokio::sync::Notify::new())));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    Fixture { _dir: dir, app: router(ctx.clone()), ctx, rt }
}

pub fn send(f: &Fixture, req: Request<Body>) -> Value {
    f.rt.block_on(async {
        let resp = f.app.clone().oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&body).unwrap()
    })
}

/// A TC3-signed Tencent call; returns `Response`.
pub fn tencent(f: &Fixture, key: (&str, &str), action: &str, body: Value) -> Value {
    let body = serde_json::to_vec(&body).unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let input = Tc3Input {
        method: "POST",
        query: "",
        content_type: "application/json",
        host: "h",
        payload: &body,
        unsigned_payload: false,
        timestamp: &ts,
        date: &date,
        service: "dts",
    };
    let req = Request::post("/")
        .header("content-type", "application/json")
        .header("host", "h")
        .header("x-tc-action", action)
        .header("x-tc-version", "2018-03-30")
        .header("x-tc-timestamp", &ts)
        .header("x-tc-region", "ap-guangzhou")
        .header("authorization", tc3_authorization(key.0, key.1, &input))
        .body(Body::from(body))
        .unwrap();
    send(f, req)["Response"].clone()
}

/// An RPC v1-signed Alibaba call.
pub fn alibaba(f: &Fixture, key: (&str, &str), action: &str, params: &[(&str, &str)]) -> Value {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let mut all: Vec<(String, String)> = [
        ("Action", action),
        ("Version", "2020-01-01"),
        ("Format", "JSON"),
        ("AccessKeyId", key.0),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
    ]
    .iter()
    .chain(params)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    all.push(("SignatureNonce".into(), format!("n{}", N.fetch_add(1, Ordering::Relaxed))));
    all.push(("Timestamp".into(), chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    let sig = rpc_v1_sign(key.1, &rpc_v1_string_to_sign("POST", &all));
    all.push(("Signature".into(), sig));
    let query: Vec<String> = all.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    send(f, Request::post(format!("/?{}", query.join("&"))).header("x-acs-action", action).body(Body::empty()).unwrap())
}

pub const DEFAULT: (&str, &str) = ("AKIDdefault", "k-default");
pub const OPS: (&str, &str) = ("AKIDops", "k-ops");
