//! The Alibaba reply envelopes: success as HTTP 200 with the action's fields beside `RequestId`,
//! errors as HTTP 4xx/5xx with the gateway's `{RequestId, HostId, Code, Message, Recommend}`
//! plus DTS's own `Success`/`ErrCode`/`ErrMessage`/`DynamicMessage`; JSON, or XML when the
//! request says `Format=XML`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub const HOST_ID: &str = "dts.aliyuncs.com";

/// An error as the Alibaba SDKs read it. `message` is ours, never a database's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// The `%s` of `message_template`, e.g. the parameter at fault (`DynamicMessage`).
    pub dynamic: Option<String>,
    /// `ErrMessage` with `%s` where `dynamic` goes; `message` when there is none.
    pub template: Option<&'static str>,
    /// Seconds a throttled client should wait (`x-acs-retry-after`).
    pub retry_after: Option<u32>,
}

impl AliError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), dynamic: None, template: None, retry_after: None }
    }

    /// `InvalidParameter` naming the parameter through `DynamicMessage`; `why` goes to `Message`.
    pub fn invalid_parameter(name: &str, why: impl std::fmt::Display) -> Self {
        Self {
            dynamic: Some(name.into()),
            template: Some("The Value of Input Parameter %s is not valid."),
            ..Self::new(400, "InvalidParameter", format!("The Value of Input Parameter {name} is not valid: {why}."))
        }
    }

    pub fn missing(name: &str) -> Self {
        Self {
            dynamic: Some(name.into()),
            template: Some("The input parameter %s that is mandatory for processing this request is not supplied."),
            ..Self::new(
                400,
                "MissingParameter",
                format!("The input parameter {name} that is mandatory for processing this request is not supplied."),
            )
        }
    }

    pub fn not_purchased(job_id: &str) -> Self {
        Self::new(
            403,
            "OperationDenied.NotPurchased",
            format!(
                "The instance has not been purchased and the task cannot be started: no DTS instance holds the task \
                 `{job_id}`; call CreateDtsInstance first."
            ),
        )
    }

    pub fn not_configured(job_id: &str) -> Self {
        Self::new(
            403,
            "OperationDenied.JobNotConfigured",
            format!("The task `{job_id}` is not configured yet; call ConfigureDtsJob first."),
        )
    }

    pub fn status_conflict(message: impl Into<String>) -> Self {
        Self::new(403, "OperationDenied.JobStatusConflict", message)
    }

    /// The metadata store failed (busy, I/O): the seed's `ServiceUnavailable`, worth a retry.
    pub fn unavailable() -> Self {
        Self::new(500, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
    }

    pub fn internal() -> Self {
        Self::new(500, "InternalError", "The request processing has failed due to some unknown error.")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One element per object key; an array repeats its element once per item.
fn xml_value(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Array(items) => {
            for item in items {
                xml_value(out, name, item);
            }
        }
        Value::Object(m) => {
            out.push_str(&format!("<{name}>"));
            xml_fields(out, m);
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn xml_fields(out: &mut String, m: &Map<String, Value>) {
    for (k, v) in m {
        xml_value(out, k, v);
    }
}

/// `<?xml ...?><Root>fields</Root>`.
pub fn to_xml(root: &str, fields: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    xml_value(&mut out, root, fields);
    out
}

fn reply(status: u16, body: String, content_type: &'static str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (code, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// HTTP 200 with the action's fields, `RequestId`, `Success: true` and `HttpStatusCode: 200`.
pub fn success(action: &str, mut fields: Value, request_id: &str, xml: bool) -> Response {
    if let Value::Object(m) = &mut fields {
        m.insert("RequestId".into(), json!(request_id));
        m.entry("Success").or_insert(json!(true));
        m.entry("HttpStatusCode").or_insert(json!(200));
    }
    if xml {
        reply(200, to_xml(&format!("{action}Response"), &fields), "application/xml")
    } else {
        reply(200, fields.to_string(), "application/json")
    }
}

pub fn failure(err: &AliError, request_id: &str, xml: bool) -> Response {
    let body = json!({
        "RequestId": request_id,
        "HostId": HOST_ID,
        "Code": err.code,
        "Message": err.message,
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}", err.code),
        "Success": false,
        "HttpStatusCode": err.status,
        "ErrCode": err.code,
        "ErrMessage": err.template.unwrap_or(&err.message),
        "DynamicMessage": err.dynamic.as_deref().unwrap_or(""),
        "DynamicCode": "",
    });
    let mut resp = if xml {
        reply(err.status, to_xml("Error", &body), "text/xml;charset=utf-8")
    } else {
        reply(err.status, body.to_string(), "application/json")
    };
    if let Some(secs) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert("x-acs-retry-after", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_repeats_array_items_and_escapes_text() {
        let xml = to_xml("R", &json!({"A": [{"B": 1}, {"B": 2}], "C": "x<y"}));
        assert_eq!(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><R><A><B>1</B></A><A><B>2</B></A><C>x&lt;y</C></R>");
    }
}
