//! A client of the Tencent dialect, signing with TC3-HMAC-SHA256 exactly as the SDKs do.

use anyhow::{Context, bail};
use clap::Args;
use dts_api::tencent::signature::{Tc3Input, tc3_authorization};
use serde_json::Value;

/// Where the API is and who calls it.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// API endpoint.
    #[arg(long, env = "DTS_ENDPOINT", default_value = "http://127.0.0.1:9860", global = true)]
    pub endpoint: String,
    #[arg(long, env = "DTS_SECRET_ID", global = true, hide_env_values = true)]
    pub secret_id: Option<String>,
    #[arg(long, env = "DTS_SECRET_KEY", global = true, hide_env_values = true)]
    pub secret_key: Option<String>,
    #[arg(long, env = "DTS_REGION", default_value = "ap-guangzhou", global = true)]
    pub region: String,
}

/// An error reply of the API.
#[derive(Debug)]
pub struct ApiFailure {
    pub code: String,
    pub message: String,
    pub request_id: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (RequestId {})", self.code, self.message, self.request_id)
    }
}

impl std::error::Error for ApiFailure {}

pub struct Client {
    http: reqwest::Client,
    args: ClientArgs,
    url: String,
    host: String,
}

impl Client {
    pub fn new(args: ClientArgs) -> anyhow::Result<Self> {
        let url =
            if args.endpoint.contains("://") { args.endpoint.clone() } else { format!("http://{}", args.endpoint) };
        let parsed = reqwest::Url::parse(&url).with_context(|| format!("bad endpoint {url}"))?;
        let host = match parsed.port() {
            Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or_default()),
            None => parsed.host_str().unwrap_or_default().to_string(),
        };
        Ok(Self { http: reqwest::Client::builder().no_proxy().build()?, args, url, host })
    }

    /// Calls an action; returns the `Response` object or the API's error.
    pub async fn call(&self, action: &str, params: &Value) -> anyhow::Result<Value> {
        let (Some(id), Some(key)) = (&self.args.secret_id, &self.args.secret_key) else {
            bail!("set --secret-id/--secret-key or DTS_SECRET_ID/DTS_SECRET_KEY");
        };
        let body = serde_json::to_vec(params)?;
        let now = chrono::Utc::now();
        let timestamp = now.timestamp().to_string();
        let date = now.format("%Y-%m-%d").to_string();
        let input = Tc3Input {
            method: "POST",
            query: "",
            content_type: "application/json",
            host: &self.host,
            payload: &body,
            unsigned_payload: false,
            timestamp: &timestamp,
            date: &date,
            service: "dts",
        };
        let authorization = tc3_authorization(id, key, &input);
        let resp = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Host", &self.host)
            .header("X-TC-Action", action)
            .header("X-TC-Version", dts_api::tencent::VERSION)
            .header("X-TC-Timestamp", &timestamp)
            .header("X-TC-Region", &self.args.region)
            .header("X-TC-Language", "en-US")
            .header("Authorization", authorization)
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.url))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("HTTP {status} from {}", self.url);
        }
        let mut v: Value = serde_json::from_str(&text).context("the API answered something that is not JSON")?;
        let response = v.get_mut("Response").map(Value::take).context("reply without Response")?;
        if let Some(err) = response.get("Error") {
            return Err(ApiFailure {
                code: err["Code"].as_str().unwrap_or_default().into(),
                message: err["Message"].as_str().unwrap_or_default().into(),
                request_id: response["RequestId"].as_str().unwrap_or_default().into(),
            }
            .into());
        }
        Ok(response)
    }
}
