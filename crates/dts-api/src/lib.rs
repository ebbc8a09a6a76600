//! Cloud API dialects of dts over HTTP: one endpoint (`POST /`, `GET /`) that speaks Tencent
//! Cloud API 3.0 for service `dts`, version 2018-03-30, and Alibaba Cloud RPC for DTS, version
//! 2020-01-01 (told apart by their headers and parameters), plus `GET /healthz`.
//!
//! Handlers only validate, authorize and change job records in the store; the engine, woken
//! through [`ApiContext::wake_engine`], does the work.

pub mod alibaba;
mod replay;
pub mod subscription;
pub mod tencent;
mod throttle;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::get;
use dts_core::InstanceRegistry;
use dts_store::Store;
use rand::RngCore;
use tokio::sync::Notify;

pub use replay::NonceCache;
pub use throttle::Throttle;

/// The Tencent regions accepted by default (`X-TC-Region`).
pub const DEFAULT_REGIONS: [&str; 20] = [
    "ap-guangzhou",
    "ap-shanghai",
    "ap-beijing",
    "ap-chengdu",
    "ap-chongqing",
    "ap-nanjing",
    "ap-hongkong",
    "ap-singapore",
    "ap-jakarta",
    "ap-seoul",
    "ap-tokyo",
    "ap-mumbai",
    "ap-bangkok",
    "na-siliconvalley",
    "na-ashburn",
    "na-toronto",
    "sa-saopaulo",
    "eu-frankfurt",
    "ap-shanghai-fsi",
    "ap-shenzhen-fsi",
];

/// What request handlers share.
pub struct ApiContext {
    pub store: Arc<Store>,
    pub instances: InstanceRegistry,
    pub regions: Vec<String>,
    pub throttle: Throttle,
    pub replay: NonceCache,
    /// Alibaba `SignatureNonce`s, kept for twice the dialect's 15-minute clock window.
    pub ali_replay: NonceCache,
    /// Notified whenever a job needs the engine's attention.
    pub wake_engine: Arc<Notify>,
    /// Where change tracking publishes (the Describe calls show it).
    pub change_bus: Option<subscription::ChangeBusView>,
}

impl ApiContext {
    pub fn new(store: Arc<Store>, instances: InstanceRegistry, wake_engine: Arc<Notify>) -> Self {
        Self {
            store,
            instances,
            regions: DEFAULT_REGIONS.iter().map(|s| s.to_string()).collect(),
            throttle: Throttle::default(),
            replay: NonceCache::default(),
            ali_replay: NonceCache::new(std::time::Duration::from_secs(2 * alibaba::MAX_SKEW_SECS as u64)),
            wake_engine,
            change_bus: None,
        }
    }
}

/// A request as received: nothing re-serialized (both dialects sign the raw bytes).
pub struct RawRequest<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub query: &'a str,
    pub body: &'a Bytes,
}

impl RawRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Runs `change` on a job of `account` in one atomic update (another account's job is "not
/// found"). The change's own error comes back as `Err(Ok(e))`, the store's as `Err(Err(e))`.
fn update_account_job<E>(
    store: &Store,
    account: &str,
    id: &str,
    change: impl FnOnce(&mut dts_store::JobRecord) -> Result<(), E>,
) -> Result<dts_store::JobRecord, Result<E, dts_store::StoreError>> {
    let mut own = None;
    let result = store.update_job(id, |job| {
        if job.account_id != account {
            return Err(dts_store::StoreError::NotFound);
        }
        change(job).map_err(|e| {
            own = Some(e);
            dts_store::StoreError::Rejected(String::new())
        })
    });
    match (result, own) {
        (Ok((job, ())), _) => Ok(job),
        (Err(_), Some(e)) => Err(Ok(e)),
        (Err(e), None) => Err(Err(e)),
    }
}

/// A request id in UUID form.
pub fn request_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

async fn api_entry(
    State(ctx): State<Arc<ApiContext>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let query = query.unwrap_or_default();
    let ctx2 = ctx.clone();
    // The store is synchronous (SQLite); keep it off the async workers.
    let ali = alibaba::recognizes(&headers, &query);
    tokio::task::spawn_blocking(move || {
        if ali {
            alibaba::handle(&ctx2, RawRequest { method: &method, headers: &headers, query: &query, body: &body })
        } else {
            tencent::handle(&ctx2, RawRequest { method: &method, headers: &headers, query: &query, body: &body })
        }
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "request handler panicked");
        if ali { alibaba::handle_panic() } else { tencent::handle_panic() }
    })
}

async fn healthz() -> &'static str {
    "ok"
}

/// The HTTP API.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    Router::new()
        .route("/", get(api_entry).post(api_entry))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(10 * 1024 * 1024))
        .with_state(ctx)
}
