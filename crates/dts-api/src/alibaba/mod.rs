//! The Alibaba Cloud DTS dialect (version `2020-01-01`, RPC style): authentication (RPC v1
//! HMAC-SHA1 and ACS3-HMAC-SHA256), parameters from the query and the form body merged, replay
//! and clock checks, throttling, and the reply envelopes.
//!
//! Order of checks: request bounds (`crate::limits`; each name once) → signature material → key
//! → clock → signature → nonce replay → version → action → rate limit → nonce recorded → action. Errors are HTTP 4xx/5xx (the SDKs raise on nothing else).
//! The same API keys serve both dialects: an AccessKeyId is a SecretId.

mod configure;
mod consumer_group;
mod control;
mod describe;
mod dialect;
pub mod reply;
pub mod signature;
mod subscription;

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use axum::response::Response;
use chrono::NaiveDateTime;
use serde_json::Value;

pub use reply::AliError;

use crate::limits::{self, LimitError};
use crate::replay::Admission;
use crate::{ApiContext, RawRequest};
use signature::Acs3Input;

pub const VERSION: &str = "2020-01-01";
/// Clock skew accepted on `Timestamp`/`x-acs-date` (the gateway's 15 minutes).
pub const MAX_SKEW_SECS: i64 = 900;

/// Parameters RPC v1 requests carry besides the action's own.
const RPC_COMMON: [&str; 11] = [
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "SecurityToken",
];

fn is_form(req: &RawRequest<'_>) -> bool {
    req.header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
}

/// Whether a request is in this dialect: Alibaba SDKs send `x-acs-*` headers (ACS3, and the core
/// SDK with RPC v1) or an `AccessKeyId` query parameter (RPC v1); Tencent's never do.
pub fn recognizes(headers: &HeaderMap, query: &str) -> bool {
    headers.contains_key("x-acs-action")
        || headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|a| a.starts_with("ACS3-"))
        || form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "AccessKeyId")
}

/// A request beyond a bound of `crate::limits`: `InvalidParameter` (400) naming the limit.
fn limit_error(e: LimitError) -> AliError {
    AliError {
        dynamic: Some(e.parameter().to_string()),
        template: Some("The Value of Input Parameter %s is not valid."),
        ..AliError::new(400, "InvalidParameter", e.to_string())
    }
}

fn decode_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, AliError> {
    limits::decode_pairs(raw).map_err(limit_error)
}

/// The query's pairs and, for a form body, the body's, within the bounds and each name once
/// (a name given twice would mean one thing to the signature and another to the action).
fn request_pairs(req: &RawRequest<'_>, with_body: bool) -> Result<Vec<(String, String)>, AliError> {
    let mut pairs = decode_pairs(req.query.as_bytes())?;
    if with_body {
        pairs.extend(decode_pairs(req.body)?);
    }
    if pairs.len() > limits::MAX_PARAMS {
        return Err(limit_error(LimitError::TooManyParams));
    }
    let mut names = std::collections::HashSet::with_capacity(pairs.len());
    if let Some((dup, _)) = pairs.iter().find(|(k, _)| !names.insert(k.as_str())) {
        return Err(AliError::invalid_parameter(dup, "it is given more than once"));
    }
    Ok(pairs)
}

fn check_nonce(nonce: &str) -> Result<(), AliError> {
    if nonce.len() > limits::MAX_NONCE_BYTES {
        let e = LimitError::NonceTooLong;
        return Err(AliError { dynamic: Some("SignatureNonce".into()), ..limit_error(e) });
    }
    Ok(())
}

/// Who signed, and what they asked for.
struct Authenticated {
    account_id: String,
    action: String,
    version: String,
    params: BTreeMap<String, String>,
    /// Who signed and the nonce, recorded once the request passed the action and rate checks.
    access_key_id: String,
    nonce: String,
}

fn check_clock(ts: &str) -> Result<(), AliError> {
    let t = NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%SZ").map_err(|_| {
        AliError::new(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
    })?;
    let skew = (chrono::Utc::now().timestamp() - t.and_utc().timestamp()).abs();
    if skew > MAX_SKEW_SECS {
        return Err(AliError::new(
            400,
            "InvalidTimeStamp.Expired",
            format!("Specified time stamp or date value is expired: {skew} s away from the server's clock."),
        ));
    }
    Ok(())
}

fn lookup_key(ctx: &ApiContext, access_key_id: &str) -> Result<dts_store::ApiKey, AliError> {
    match ctx.store.lookup_key(access_key_id) {
        Ok(Some(k)) => Ok(k),
        Ok(None) => Err(AliError::new(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")),
        Err(e) => {
            tracing::error!(error = %e, "cannot read API keys");
            Err(AliError::unavailable())
        }
    }
}

/// The gateway's wording; the core SDK splits the message at `:` to compare string-to-signs.
fn signature_mismatch(string_to_sign: &str) -> AliError {
    AliError::new(
        400,
        "SignatureDoesNotMatch",
        format!("Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"),
    )
}

fn nonce_used() -> AliError {
    AliError::new(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
}

fn authenticate_rpc_v1(ctx: &ApiContext, req: &RawRequest<'_>) -> Result<Authenticated, AliError> {
    let pairs = request_pairs(req, is_form(req))?;
    let get = |k: &str| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str());
    let signature = get("Signature").ok_or_else(|| AliError::missing("Signature"))?;
    let access_key_id = get("AccessKeyId").ok_or_else(|| AliError::missing("AccessKeyId"))?;
    let timestamp = get("Timestamp").ok_or_else(|| AliError::missing("Timestamp"))?;
    let nonce = get("SignatureNonce").ok_or_else(|| AliError::missing("SignatureNonce"))?;
    check_nonce(nonce)?;
    let action = get("Action").ok_or_else(|| AliError::missing("Action"))?;
    let version = get("Version").ok_or_else(|| AliError::missing("Version"))?;
    if !get("SignatureMethod").unwrap_or("HMAC-SHA1").eq_ignore_ascii_case("HMAC-SHA1") {
        return Err(AliError::invalid_parameter("SignatureMethod", "only HMAC-SHA1 is supported for RPC signatures"));
    }
    let key = lookup_key(ctx, access_key_id)?;
    check_clock(timestamp)?;
    let sts = signature::rpc_v1_string_to_sign(req.method.as_str(), &pairs);
    if !signature::rpc_v1_verify(&key.secret_key, &sts, signature) {
        return Err(signature_mismatch(&sts));
    }
    if ctx.ali_replay.is_used(access_key_id, nonce) {
        return Err(nonce_used());
    }
    let params = pairs.iter().filter(|(k, _)| !RPC_COMMON.contains(&k.as_str())).cloned().collect();
    Ok(Authenticated {
        account_id: key.account_id,
        action: action.into(),
        version: version.into(),
        params,
        access_key_id: access_key_id.into(),
        nonce: nonce.into(),
    })
}

fn authenticate_acs3(ctx: &ApiContext, req: &RawRequest<'_>, auth_header: &str) -> Result<Authenticated, AliError> {
    let auth = signature::parse_acs3_authorization(auth_header).ok_or_else(|| {
        AliError::new(400, "IncompleteSignature", "The Authorization header is not in ACS3-HMAC-SHA256 form.")
    })?;
    let header = |h: &str| req.header(h).ok_or_else(|| AliError::missing(h));
    let action = header("x-acs-action")?;
    let version = header("x-acs-version")?;
    let date = header("x-acs-date")?;
    let nonce = header("x-acs-signature-nonce")?;
    check_nonce(nonce)?;
    let content_sha256 = header("x-acs-content-sha256")?;
    let key = lookup_key(ctx, &auth.access_key_id)?;
    check_clock(date)?;
    let mut signed = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = req.header(name).ok_or_else(|| {
            AliError::new(400, "IncompleteSignature", format!("The signed header `{name}` is not in the request."))
        })?;
        signed.push((name.clone(), value.to_string()));
    }
    let query = request_pairs(req, false)?;
    let input = Acs3Input { method: req.method.as_str(), query: &query, headers: &signed, content_sha256 };
    let sts = signature::acs3_string_to_sign(&input);
    if !content_sha256.eq_ignore_ascii_case(&signature::body_sha256(req.body))
        || !signature::acs3_verify(&key.secret_key, &sts, &auth.signature)
    {
        return Err(signature_mismatch(&sts));
    }
    if ctx.ali_replay.is_used(&auth.access_key_id, nonce) {
        return Err(nonce_used());
    }
    let params: BTreeMap<String, String> = request_pairs(req, is_form(req))?.into_iter().collect();
    Ok(Authenticated {
        account_id: key.account_id,
        action: action.into(),
        version: version.into(),
        params,
        access_key_id: auth.access_key_id,
        nonce: nonce.into(),
    })
}

fn process(ctx: &ApiContext, req: &RawRequest<'_>) -> Result<(String, Value), (Option<String>, AliError)> {
    let authed = match req.header("authorization") {
        Some(h) if h.starts_with("ACS3-") => authenticate_acs3(ctx, req, h),
        _ => authenticate_rpc_v1(ctx, req),
    }
    .map_err(|e| (None, e))?;
    let action = authed.action.clone();
    let fail = |e: AliError| (Some(action.clone()), e);
    if authed.version != VERSION {
        return Err(fail(AliError::new(
            400,
            "InvalidVersion",
            format!("Specified parameter Version `{}` is not valid; this endpoint serves `{VERSION}`.", authed.version),
        )));
    }
    if !dialect::ACTIONS.contains(&authed.action.as_str()) {
        return Err(fail(AliError::new(
            404,
            "InvalidAction.NotFound",
            format!("Specified api `{}` is not found, please check your url and method.", authed.action),
        )));
    }
    if !ctx.throttle.admit(&authed.account_id, &authed.action) {
        tracing::warn!(action = %authed.action, "request rate limit exceeded");
        return Err(fail(AliError {
            retry_after: Some(1),
            ..AliError::new(400, "Throttling.User", "Request was denied due to user flow control.")
        }));
    }
    match ctx.ali_replay.record(&authed.access_key_id, &authed.nonce) {
        Admission::First => {}
        Admission::Replay => return Err(fail(nonce_used())),
        Admission::Full => {
            tracing::warn!(access_key_id = %authed.access_key_id, "nonce store full");
            return Err(fail(AliError {
                retry_after: Some(1),
                ..AliError::new(400, "Throttling.User", "Request was denied due to user flow control.")
            }));
        }
    }
    let caller = dialect::Caller { ctx, account_id: &authed.account_id, params: &authed.params };
    let out = dialect::dispatch(&caller, &authed.action).map_err(fail)?;
    Ok((authed.action, out))
}

/// Handles one Alibaba-dialect request end to end.
pub fn handle(ctx: &ApiContext, req: RawRequest<'_>) -> Response {
    let request_id = crate::request_id().to_ascii_uppercase();
    let xml = form_urlencoded::parse(req.query.as_bytes()).any(|(k, v)| k == "Format" && v.eq_ignore_ascii_case("xml"));
    match process(ctx, &req) {
        Ok((action, out)) => {
            tracing::info!(%request_id, %action, dialect = "alibaba", "api request ok");
            reply::success(&action, out, &request_id, xml)
        }
        Err((action, e)) => {
            tracing::info!(%request_id, action = action.as_deref().unwrap_or("-"), code = %e.code, dialect = "alibaba",
                "api request failed");
            reply::failure(&e, &request_id, xml)
        }
    }
}

/// The reply to a request refused before its body was read (`crate::BodyGate`).
pub fn refused(why: crate::Refused) -> Response {
    let e = match why {
        crate::Refused::TooLarge => {
            AliError::new(413, "RequestSizeLimitExceeded", LimitError::BodyTooLarge.to_string())
        }
        crate::Refused::Timeout => AliError::new(
            408,
            "RequestTimeout",
            format!("The request body did not arrive within {} s.", limits::BODY_READ_TIMEOUT.as_secs()),
        ),
        crate::Refused::Busy => AliError {
            retry_after: Some(1),
            ..AliError::new(400, "Throttling.User", "Request was denied due to user flow control.")
        },
    };
    reply::failure(&e, &crate::request_id().to_ascii_uppercase(), false)
}

/// The reply when a handler panicked.
pub fn handle_panic() -> Response {
    reply::failure(&AliError::internal(), &crate::request_id(), false)
}
