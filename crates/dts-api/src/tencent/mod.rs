//! The Tencent Cloud API 3.0 dialect (service `dts`, version `2018-03-30`): authentication
//! (TC3 and v1), routing by action, throttling, parameter validation and the reply envelope.
//!
//! Order of checks: request bounds (`crate::limits`) → signature material → key → clock →
//! signature → (v1) nonce replay → version → action → region → rate limit → (v1) nonce
//! recorded → parameters → action. Every failure is HTTP 200
//! with `Response.Error`, because the SDK reads nothing else.

mod actions;
mod error;
mod models;
mod params;
pub mod signature;
mod subscribe;
mod subscribe_settings;

use axum::http::Method;
use axum::response::Response;
use serde_json::Value;

pub use actions::schema;
pub use error::ApiError;
pub use params::{Field, Ty, unflatten, validate};

use crate::limits::{self, LimitError};
use crate::replay::Admission;
use crate::{ApiContext, RawRequest};
use actions::Caller;
use signature::{Tc3Input, V1Method};

pub const VERSION: &str = "2018-03-30";
/// Clock skew accepted on `X-TC-Timestamp`/`Timestamp`.
pub const MAX_SKEW_SECS: i64 = 300;

/// Parameters that v1 requests carry besides the action's own.
const V1_COMMON: [&str; 11] = [
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "Signature",
    "SignatureMethod",
    "Language",
    "RequestClient",
    "Token",
];

/// Who signed, and what they asked for.
struct Authenticated {
    account_id: String,
    secret_id: String,
    action: String,
    version: String,
    region: Option<String>,
    params: Value,
    /// Whether `params` came from flattened strings (GET, v1).
    flattened: bool,
    /// The v1 `Nonce`, recorded once the request passed the action check and the rate limit.
    nonce: Option<String>,
}

fn limit_error(e: LimitError) -> ApiError {
    ApiError::invalid_parameter(e.to_string())
}

fn decode_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    limits::decode_pairs(raw).map_err(limit_error)
}

/// A JSON body within the bounds of `crate::limits` (shape checked before parsing).
fn parse_json_body(body: &[u8]) -> Result<Value, ApiError> {
    limits::check_json_text(body).map_err(limit_error)?;
    let v: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::invalid_parameter("The request body is not valid JSON."))?;
    limits::check_json(&v).map_err(limit_error)?;
    Ok(v)
}

fn check_clock(ts: &str) -> Result<(), ApiError> {
    let ts: i64 = ts.parse().map_err(|_| ApiError::invalid_parameter("The timestamp is not a number of seconds."))?;
    let skew = (chrono::Utc::now().timestamp() - ts).abs();
    if skew > MAX_SKEW_SECS {
        return Err(ApiError::new(
            "AuthFailure.SignatureExpire",
            format!(
                "The request timestamp is {skew} s away from the server's clock (at most {MAX_SKEW_SECS} s allowed)."
            ),
        ));
    }
    Ok(())
}

fn lookup_key(ctx: &ApiContext, secret_id: &str) -> Result<dts_store::ApiKey, ApiError> {
    match ctx.store.lookup_key(secret_id) {
        Ok(Some(k)) => Ok(k),
        Ok(None) => Err(ApiError::new("AuthFailure.SecretIdNotFound", "The SecretId is not found.")),
        Err(e) => {
            tracing::error!(error = %e, "cannot read API keys");
            Err(ApiError::internal())
        }
    }
}

fn replayed() -> ApiError {
    ApiError::new(
        "AuthFailure.SignatureFailure",
        "The Nonce was already used with this SecretId within the last 10 minutes: the request is a replay.",
    )
}

fn signature_failure() -> ApiError {
    ApiError::new(
        "AuthFailure.SignatureFailure",
        "The provided credentials could not be validated: the signature does not match.",
    )
}

fn authenticate_tc3(ctx: &ApiContext, req: &RawRequest<'_>, auth_header: &str) -> Result<Authenticated, ApiError> {
    let auth = signature::parse_tc3_authorization(auth_header).ok_or_else(|| {
        ApiError::new("AuthFailure.InvalidAuthorization", "The Authorization header is not in TC3-HMAC-SHA256 form.")
    })?;
    let missing = |h: &str| ApiError::new("MissingParameter", format!("The request is missing the header `{h}`."));
    let timestamp = req.header("x-tc-timestamp").ok_or_else(|| missing("X-TC-Timestamp"))?;
    let action = req.header("x-tc-action").ok_or_else(|| missing("X-TC-Action"))?;
    let version = req.header("x-tc-version").ok_or_else(|| missing("X-TC-Version"))?;
    let key = lookup_key(ctx, &auth.secret_id)?;
    check_clock(timestamp)?;
    let method = req.method.as_str();
    let content_type = req.header("content-type").unwrap_or_default();
    let input = Tc3Input {
        method,
        query: if method == "GET" { req.query } else { "" },
        content_type,
        host: req.header("host").unwrap_or_default(),
        payload: if method == "GET" { b"" } else { req.body.as_ref() },
        unsigned_payload: req.header("x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD"),
        timestamp,
        date: &auth.date,
        service: &auth.service,
    };
    if auth.service != "dts" || !signature::tc3_verify(&key.secret_key, &input, &auth.signature) {
        return Err(signature_failure());
    }
    let (params, flattened) = if method == "GET" {
        (unflatten(&decode_pairs(req.query.as_bytes())?)?, true)
    } else if content_type.starts_with("application/json") {
        let v: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            parse_json_body(req.body)?
        };
        (v, false)
    } else {
        (unflatten(&decode_pairs(req.body)?)?, true)
    };
    Ok(Authenticated {
        account_id: key.account_id,
        secret_id: key.secret_id,
        action: action.to_string(),
        version: version.to_string(),
        region: req.header("x-tc-region").map(str::to_string),
        params,
        flattened,
        nonce: None,
    })
}

fn authenticate_v1(ctx: &ApiContext, req: &RawRequest<'_>) -> Result<Authenticated, ApiError> {
    let raw = if req.method == Method::GET { req.query.as_bytes() } else { req.body.as_ref() };
    let pairs = decode_pairs(raw)?;
    let get = |k: &str| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str());
    let missing =
        |k: &str| ApiError::new("MissingParameter", format!("The request is missing a required parameter `{k}`."));
    let signature = get("Signature").ok_or_else(|| missing("Signature"))?;
    let secret_id = get("SecretId").ok_or_else(|| missing("SecretId"))?;
    let timestamp = get("Timestamp").ok_or_else(|| missing("Timestamp"))?;
    let nonce = get("Nonce").ok_or_else(|| missing("Nonce"))?;
    if nonce.len() > limits::MAX_NONCE_BYTES {
        return Err(limit_error(LimitError::NonceTooLong));
    }
    let action = get("Action").ok_or_else(|| missing("Action"))?;
    let version = get("Version").ok_or_else(|| missing("Version"))?;
    let method = V1Method::parse(get("SignatureMethod"))
        .ok_or_else(|| ApiError::invalid_value("SignatureMethod", "it must be HmacSHA1 or HmacSHA256"))?;
    let key = lookup_key(ctx, secret_id)?;
    check_clock(timestamp)?;
    let host = req.header("host").unwrap_or_default();
    let string_to_sign = signature::v1_string_to_sign(req.method.as_str(), host, &pairs);
    if !signature::v1_verify(&key.secret_key, method, &string_to_sign, signature) {
        return Err(signature_failure());
    }
    if ctx.replay.is_used(secret_id, nonce) {
        return Err(replayed());
    }
    let own: Vec<(String, String)> = pairs.iter().filter(|(k, _)| !V1_COMMON.contains(&k.as_str())).cloned().collect();
    Ok(Authenticated {
        account_id: key.account_id,
        secret_id: key.secret_id,
        action: action.to_string(),
        version: version.to_string(),
        region: get("Region").map(str::to_string),
        params: unflatten(&own)?,
        flattened: true,
        nonce: Some(nonce.to_string()),
    })
}

fn process(ctx: &ApiContext, req: &RawRequest<'_>) -> Result<(String, Value), (Option<String>, ApiError)> {
    let authed = match req.header("authorization") {
        Some(h) if !h.is_empty() => authenticate_tc3(ctx, req, h),
        _ => authenticate_v1(ctx, req),
    }
    .map_err(|e| (None, e))?;
    let action = authed.action.clone();
    let fail = |e: ApiError| (Some(action.clone()), e);
    if authed.version != VERSION {
        return Err(fail(ApiError::new(
            "NoSuchVersion",
            format!("The API version `{}` does not exist for dts here; use `{VERSION}`.", authed.version),
        )));
    }
    let schema = actions::schema(&authed.action).ok_or_else(|| {
        fail(ApiError::new("InvalidAction", format!("The action `{}` does not exist.", authed.action)))
    })?;
    match authed.region.as_deref() {
        None | Some("") => {
            return Err(fail(ApiError::new(
                "MissingParameter",
                "The request is missing a required parameter `Region`.",
            )));
        }
        Some(r) if !ctx.regions.iter().any(|x| x == r) => {
            return Err(fail(ApiError::new("UnsupportedRegion", format!("The region `{r}` is not served here."))));
        }
        Some(_) => {}
    }
    if !ctx.throttle.admit(&authed.account_id, &authed.action) {
        tracing::warn!(action = %authed.action, secret_id = %authed.secret_id, "request rate limit exceeded");
        return Err(fail(ApiError::new(
            "RequestLimitExceeded",
            format!("Too many `{}` requests per second for this account; slow down.", authed.action),
        )));
    }
    if let Some(nonce) = &authed.nonce {
        match ctx.replay.record(&authed.secret_id, nonce) {
            Admission::First => {}
            Admission::Replay => return Err(fail(replayed())),
            Admission::Full => {
                tracing::warn!(secret_id = %authed.secret_id, "nonce store full");
                return Err(fail(ApiError::new(
                    "RequestLimitExceeded",
                    "Too many signed requests in the last 10 minutes for this server to remember their nonces; \
                     slow down.",
                )));
            }
        }
    }
    let params = validate(authed.params, schema, authed.flattened).map_err(fail)?;
    let caller = Caller { ctx, account_id: &authed.account_id };
    let out = actions::dispatch(&caller, &authed.action, &params).map_err(fail)?;
    Ok((authed.action, out))
}

/// Handles one Tencent-dialect request end to end.
pub fn handle(ctx: &ApiContext, req: RawRequest<'_>) -> Response {
    let request_id = crate::request_id();
    match process(ctx, &req) {
        Ok((action, out)) => {
            tracing::info!(%request_id, %action, "api request ok");
            error::success(out, &request_id)
        }
        Err((action, e)) => {
            tracing::info!(%request_id, action = action.as_deref().unwrap_or("-"), code = %e.code, "api request failed");
            error::failure(&e, &request_id)
        }
    }
}

/// The reply to a request refused before its body was read (`crate::BodyGate`).
pub fn refused(why: crate::Refused) -> Response {
    let e = match why {
        crate::Refused::TooLarge => ApiError::new("RequestSizeLimitExceeded", LimitError::BodyTooLarge.to_string()),
        crate::Refused::Timeout => ApiError::new(
            "InvalidRequest",
            format!("The request body did not arrive within {} s.", limits::BODY_READ_TIMEOUT.as_secs()),
        ),
        crate::Refused::Busy => {
            ApiError::new("RequestLimitExceeded", "The server is reading too many requests at once; try again shortly.")
        }
    };
    error::failure(&e, &crate::request_id())
}

/// The reply when a handler panicked: an `InternalError` envelope, never a dropped connection.
pub fn handle_panic() -> Response {
    error::failure(&ApiError::internal(), &crate::request_id())
}
