//! The family-neutral settings a job carries in `MigrateOption.ExternParams` (a JSON object;
//! the Alibaba dialect maps its `Reserve` keys onto the same names): TLS per endpoint and
//! whether views, routines and triggers keep their source definer.
//!
//! | key | value |
//! | --- | --- |
//! | `SrcSslMode`, `DstSslMode` | `disabled` (default), `required` (encrypted, certificate not checked), `verify-full` (certificate checked against the CA, host name checked; `verify_identity` is accepted too) |
//! | `SrcSslCa`, `DstSslCa` | the CA certificate(s) as PEM text, for `verify-full` (else the built-in roots) |
//! | `PreserveDefiner` | `true`/`1`: objects keep `DEFINER` and `SQL SECURITY DEFINER` (the definer accounts must exist on the destination); default: they run as invoker |
//! | `subscriptionStartTime` | change tracking: unix seconds; the stream starts with the first transaction committed then or later (Alibaba `Checkpoint`); default: the source's position at the first start |
//!
//! Other keys are left to families (and ignored here).

use serde_json::Value;

use crate::connector::TlsMode;

/// The key of a subscription's start time (unix seconds) in `ExternParams`.
pub const SUBSCRIPTION_START_TIME: &str = "subscriptionStartTime";

/// A subscription's start time (unix seconds), when its `ExternParams` name one.
pub fn subscription_start_time(extern_params: Option<&str>) -> Option<i64> {
    let value: Value = serde_json::from_str(extern_params?).ok()?;
    value.get(SUBSCRIPTION_START_TIME)?.as_i64()
}

/// The settings of one job's `ExternParams`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternSettings {
    pub source_tls: TlsMode,
    pub destination_tls: TlsMode,
    pub preserve_definer: bool,
}

/// An `ExternParams` value dts cannot use; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ExternParamsError {
    pub key: String,
    pub reason: String,
}

fn invalid(key: &str, reason: impl Into<String>) -> ExternParamsError {
    ExternParamsError { key: key.to_string(), reason: reason.into() }
}

fn tls(object: &serde_json::Map<String, Value>, mode_key: &str, ca_key: &str) -> Result<TlsMode, ExternParamsError> {
    let ca = match object.get(ca_key) {
        None | Some(Value::Null) => None,
        Some(Value::String(pem)) if pem.contains("-----BEGIN CERTIFICATE-----") => Some(pem.clone()),
        Some(Value::String(s)) if s.is_empty() => None,
        Some(_) => return Err(invalid(ca_key, "expected the CA certificate as PEM text")),
    };
    let mode = match object.get(mode_key) {
        None | Some(Value::Null) => "disabled".to_string(),
        Some(Value::String(s)) => s.to_ascii_lowercase().replace('_', "-"),
        Some(_) => return Err(invalid(mode_key, "expected disabled, required or verify-full")),
    };
    let mode = match mode.as_str() {
        "" | "disabled" => TlsMode::Disabled,
        "required" => TlsMode::Required,
        "verify-full" | "verify-identity" => return Ok(TlsMode::VerifyFull { ca }),
        other => return Err(invalid(mode_key, format!("`{other}` is not disabled, required or verify-full"))),
    };
    if ca.is_some() {
        return Err(invalid(ca_key, format!("a CA is only used with {mode_key} verify-full")));
    }
    Ok(mode)
}

fn flag(object: &serde_json::Map<String, Value>, key: &str) -> Result<bool, ExternParamsError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => Ok(n.as_i64() == Some(1)),
        Some(Value::String(s)) if matches!(s.as_str(), "true" | "1") => Ok(true),
        Some(Value::String(s)) if matches!(s.as_str(), "false" | "0" | "") => Ok(false),
        Some(_) => Err(invalid(key, "expected true or false")),
    }
}

impl ExternSettings {
    /// The settings of an `ExternParams` value (`None` or empty: the defaults).
    pub fn parse(extern_params: Option<&str>) -> Result<ExternSettings, ExternParamsError> {
        let Some(raw) = extern_params.filter(|s| !s.trim().is_empty()) else { return Ok(ExternSettings::default()) };
        let value: Value = serde_json::from_str(raw).map_err(|e| invalid("ExternParams", format!("not JSON ({e})")))?;
        let Value::Object(object) = value else { return Err(invalid("ExternParams", "not a JSON object")) };
        Ok(ExternSettings {
            source_tls: tls(&object, "SrcSslMode", "SrcSslCa")?,
            destination_tls: tls(&object, "DstSslMode", "DstSslCa")?,
            preserve_definer: flag(&object, "PreserveDefiner")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn absent_params_mean_plain_connections_and_invoker_rights() {
        assert_eq!(ExternSettings::parse(None), Ok(ExternSettings::default()));
        assert_eq!(ExternSettings::parse(Some("{}")), Ok(ExternSettings::default()));
        assert_eq!(ExternSettings::parse(Some(r#"{"Other": 1}"#)), Ok(ExternSettings::default()));
    }

    #[test]
    fn a_subscription_start_time_is_read_as_unix_seconds() {
        assert_eq!(subscription_start_time(Some(r#"{"subscriptionStartTime": 1700000000}"#)), Some(1_700_000_000));
        assert_eq!(subscription_start_time(Some("{}")), None);
        assert_eq!(subscription_start_time(None), None);
    }

    #[test]
    fn tls_modes_and_the_definer_option_are_read_per_endpoint() {
        let raw = serde_json::json!({
            "SrcSslMode": "REQUIRED", "DstSslMode": "verify_identity", "DstSslCa": PEM, "PreserveDefiner": 1
        })
        .to_string();
        let s = ExternSettings::parse(Some(&raw)).unwrap();
        assert_eq!(s.source_tls, TlsMode::Required);
        assert_eq!(s.destination_tls, TlsMode::VerifyFull { ca: Some(PEM.into()) });
        assert!(s.preserve_definer);
    }

    #[test]
    fn unusable_values_name_their_key() {
        let err = |raw: &str| ExternSettings::parse(Some(raw)).unwrap_err().key;
        assert_eq!(err(r#"{"SrcSslMode": "prefer"}"#), "SrcSslMode");
        assert_eq!(err(r#"{"DstSslMode": "required", "DstSslCa": "-----BEGIN CERTIFICATE-----"}"#), "DstSslCa");
        assert_eq!(err(r#"{"DstSslMode": "verify-full", "DstSslCa": "/etc/ca.pem"}"#), "DstSslCa");
        assert_eq!(err(r#"{"PreserveDefiner": "yes"}"#), "PreserveDefiner");
        assert_eq!(err("[1]"), "ExternParams");
    }
}
