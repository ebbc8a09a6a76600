//! Cloud API dialects of dts over HTTP: one endpoint (`POST /`, `GET /`) that speaks Tencent
//! Cloud API 3.0 for service `dts`, version 2018-03-30, and Alibaba Cloud RPC for DTS, version
//! 2020-01-01 (told apart by their headers and parameters), plus `GET /healthz`.
//!
//! Handlers only validate, authorize and change job records in the store; the engine, woken
//! through [`ApiContext::wake_engine`], does the work.

pub mod alibaba;
pub mod limits;
mod replay;
pub mod subscription;
pub mod tencent;
mod throttle;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::get;
use dts_core::InstanceRegistry;
use dts_store::Store;
use rand::RngCore;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

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
    /// Bounds on reading request bodies (size, time, concurrency).
    pub gate: BodyGate,
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
            gate: BodyGate::default(),
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

/// Whether an endpoint change points the job at another server (address, port or registered
/// instance): then a stored password must not follow it unless the request gives one.
fn endpoint_moved(old: &dts_core::EndpointSpec, new: &dts_core::EndpointSpec) -> bool {
    let ip = |e: &dts_core::EndpointSpec| e.ip.clone().filter(|s| !s.is_empty());
    let id = |e: &dts_core::EndpointSpec| e.instance_id.clone().filter(|s| !s.is_empty());
    ip(old) != ip(new) || old.port.unwrap_or(3306) != new.port.unwrap_or(3306) || id(old) != id(new)
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

/// Why a request was answered before its body was read in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The body is larger than `limits::MAX_BODY_BYTES`.
    TooLarge,
    /// The body did not arrive within `limits::BODY_READ_TIMEOUT`.
    Timeout,
    /// No room to read it within the timeout (requests in flight, body bytes held).
    Busy,
}

/// What bounds the memory of requests before they are authenticated: slots for requests in
/// flight and a budget of body bytes (in KiB), waited for at most `queue_wait`; then the body
/// must arrive within `read_timeout`.
pub struct BodyGate {
    slots: Arc<Semaphore>,
    budget_kib: Arc<Semaphore>,
    queue_wait: std::time::Duration,
    read_timeout: std::time::Duration,
}

impl BodyGate {
    pub fn new(
        slots: usize,
        budget_bytes: usize,
        queue_wait: std::time::Duration,
        read_timeout: std::time::Duration,
    ) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            budget_kib: Arc::new(Semaphore::new((budget_bytes / 1024).max(limits::MAX_BODY_BYTES / 1024))),
            queue_wait,
            read_timeout,
        }
    }

    /// Reads a body within the bounds; the permits live as long as the request is handled.
    async fn read(&self, headers: &HeaderMap, body: Body) -> Result<(Bytes, GatePermits), Refused> {
        let deadline = tokio::time::Instant::now() + self.queue_wait;
        let declared = headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits::MAX_BODY_BYTES as u64) {
            return Err(Refused::TooLarge);
        }
        // Without a length, the body may be as large as the limit.
        let reserve = declared.map_or(limits::MAX_BODY_BYTES, |n| n as usize);
        let kib = u32::try_from(reserve.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        let slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Refused::Busy)?
            .map_err(|_| Refused::Busy)?;
        let budget = tokio::time::timeout_at(deadline, self.budget_kib.clone().acquire_many_owned(kib))
            .await
            .map_err(|_| Refused::Busy)?
            .map_err(|_| Refused::Busy)?;
        let bytes =
            match tokio::time::timeout(self.read_timeout, axum::body::to_bytes(body, limits::MAX_BODY_BYTES)).await {
                Err(_) => return Err(Refused::Timeout),
                Ok(Err(_)) => return Err(Refused::TooLarge),
                Ok(Ok(b)) => b,
            };
        Ok((bytes, GatePermits { _slot: slot, _budget: budget }))
    }
}

impl Default for BodyGate {
    fn default() -> Self {
        Self::new(
            limits::MAX_REQUESTS_IN_FLIGHT,
            limits::BODY_BUDGET_BYTES,
            limits::QUEUE_WAIT,
            limits::BODY_READ_TIMEOUT,
        )
    }
}

/// Held while a request is handled.
struct GatePermits {
    _slot: OwnedSemaphorePermit,
    _budget: OwnedSemaphorePermit,
}

async fn api_entry(State(ctx): State<Arc<ApiContext>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (method, headers) = (parts.method, parts.headers);
    let query = parts.uri.query().unwrap_or_default().to_string();
    let ali = alibaba::recognizes(&headers, &query);
    let (body, permits) = match ctx.gate.read(&headers, body).await {
        Ok(read) => read,
        Err(why) => {
            tracing::info!(?why, dialect = if ali { "alibaba" } else { "tencent" }, "request refused before reading");
            return if ali { alibaba::refused(why) } else { tencent::refused(why) };
        }
    };
    let ctx2 = ctx.clone();
    // The store is synchronous (SQLite); keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let _permits = permits;
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
        .layer(DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
        .with_state(ctx)
}
