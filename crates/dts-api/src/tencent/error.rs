//! The Tencent error envelope: HTTP 200, `Content-Type: application/json` exactly, and
//! `{"Response":{"Error":{"Code","Message"},"RequestId"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An API error with its documented code. `message` is ours, never a database's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_string(), message: message.into() }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameter", message)
    }

    pub fn invalid_value(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new("InvalidParameterValue", format!("The value of `{field}` is invalid: {why}."))
    }

    pub fn job_not_found(job_id: &str) -> Self {
        Self::new("ResourceNotFound.JobNotExist", format!("The migration job `{job_id}` does not exist."))
    }

    pub fn status_conflict(message: impl Into<String>) -> Self {
        Self::new("FailedOperation.StatusInConflict", message)
    }

    pub fn internal() -> Self {
        Self::new("InternalError", "An internal error occurred; the server log has the details.")
    }
}

/// A JSON reply with exactly `Content-Type: application/json` (the SDK compares the string).
pub fn json_reply(body: &Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `{"Response": {...fields, "RequestId"}}`.
pub fn success(mut fields: Value, request_id: &str) -> Response {
    if let Value::Object(m) = &mut fields {
        m.insert("RequestId".into(), Value::String(request_id.into()));
    }
    json_reply(&json!({ "Response": fields }))
}

pub fn failure(err: &ApiError, request_id: &str) -> Response {
    json_reply(&json!({
        "Response": { "Error": { "Code": err.code, "Message": err.message }, "RequestId": request_id }
    }))
}
