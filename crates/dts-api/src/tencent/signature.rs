//! Tencent Cloud API 3.0 signatures: TC3-HMAC-SHA256 (POST JSON and GET) and the older v1
//! `HmacSHA1`/`HmacSHA256` (GET query or POST form), verified and, for our CLI, produced.
//!
//! Verification hashes the raw body and uses the raw `Host` header exactly as received (tccli
//! sends `Host: http://127.0.0.1:PORT`), never a re-serialization. Comparisons are constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The parts of a TC3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: String,
    pub signature: String,
}

/// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=..., Signature=...`.
pub fn parse_tc3_authorization(header: &str) -> Option<Tc3Authorization> {
    let rest = header.strip_prefix("TC3-HMAC-SHA256 ")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut cred = credential?.split('/');
    let (secret_id, date, service, terminator) = (cred.next()?, cred.next()?, cred.next()?, cred.next()?);
    if terminator != "tc3_request" || cred.next().is_some() || secret_id.is_empty() {
        return None;
    }
    Some(Tc3Authorization {
        secret_id: secret_id.into(),
        date: date.into(),
        service: service.into(),
        signed_headers: signed_headers?.into(),
        signature: signature?.into(),
    })
}

/// What a TC3 signature covers.
pub struct Tc3Input<'a> {
    pub method: &'a str,
    /// The raw query string (GET); empty for POST.
    pub query: &'a str,
    pub content_type: &'a str,
    pub host: &'a str,
    /// Raw body bytes (POST), empty for GET; ignored when `unsigned_payload`.
    pub payload: &'a [u8],
    pub unsigned_payload: bool,
    pub timestamp: &'a str,
    pub date: &'a str,
    pub service: &'a str,
}

fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn tc3_signing_mac(secret_key: &str, input: &Tc3Input<'_>) -> HmacSha256 {
    let payload_hash = if input.unsigned_payload {
        hex::encode(Sha256::digest(b"UNSIGNED-PAYLOAD"))
    } else {
        hex::encode(Sha256::digest(input.payload))
    };
    let canonical = format!(
        "{}\n/\n{}\ncontent-type:{}\nhost:{}\n\ncontent-type;host\n{}",
        input.method, input.query, input.content_type, input.host, payload_hash
    );
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{}\n{}/{}/tc3_request\n{}",
        input.timestamp,
        input.date,
        input.service,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac256(format!("TC3{secret_key}").as_bytes(), input.date.as_bytes());
    let k_service = hmac256(&k_date, input.service.as_bytes());
    let k_signing = hmac256(&k_service, b"tc3_request");
    let mut mac = HmacSha256::new_from_slice(&k_signing).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac
}

/// The lowercase hex TC3 signature.
pub fn tc3_sign(secret_key: &str, input: &Tc3Input<'_>) -> String {
    hex::encode(tc3_signing_mac(secret_key, input).finalize().into_bytes())
}

/// Whether `signature_hex` is the TC3 signature of `input` (constant-time).
pub fn tc3_verify(secret_key: &str, input: &Tc3Input<'_>, signature_hex: &str) -> bool {
    match hex::decode(signature_hex) {
        Ok(sig) => tc3_signing_mac(secret_key, input).verify_slice(&sig).is_ok(),
        Err(_) => false,
    }
}

/// `Authorization` header value for a TC3 request.
pub fn tc3_authorization(secret_id: &str, secret_key: &str, input: &Tc3Input<'_>) -> String {
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{}/{}/tc3_request, SignedHeaders=content-type;host, Signature={}",
        input.date,
        input.service,
        tc3_sign(secret_key, input)
    )
}

/// The v1 algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Method {
    HmacSha1,
    HmacSha256,
}

impl V1Method {
    /// `SignatureMethod`; absent means HmacSHA1.
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            None | Some("HmacSHA1") => Some(Self::HmacSha1),
            Some("HmacSHA256") => Some(Self::HmacSha256),
            Some(_) => None,
        }
    }
}

/// The v1 string to sign: `METHOD + host + "/?" + sorted k=v` over the decoded parameters
/// without `Signature`, with `_` in keys read as `.`.
pub fn v1_string_to_sign(method: &str, host: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> =
        params.iter().filter(|(k, _)| k != "Signature").map(|(k, v)| (k.replace('_', "."), v.as_str())).collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let joined = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    format!("{method}{host}/?{joined}")
}

/// Base64 v1 signature of a string to sign.
pub fn v1_sign(secret_key: &str, method: V1Method, string_to_sign: &str) -> String {
    let raw = match method {
        V1Method::HmacSha1 => {
            let mut m = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()).expect("any key length");
            m.update(string_to_sign.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        V1Method::HmacSha256 => hmac256(secret_key.as_bytes(), string_to_sign.as_bytes()),
    };
    STANDARD.encode(raw)
}

/// Whether `signature_b64` is the v1 signature of `string_to_sign` (constant-time).
pub fn v1_verify(secret_key: &str, method: V1Method, string_to_sign: &str, signature_b64: &str) -> bool {
    let Ok(sig) = STANDARD.decode(signature_b64) else { return false };
    match method {
        V1Method::HmacSha1 => {
            let mut m = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()).expect("any key length");
            m.update(string_to_sign.as_bytes());
            m.verify_slice(&sig).is_ok()
        }
        V1Method::HmacSha256 => {
            let mut m = HmacSha256::new_from_slice(secret_key.as_bytes()).expect("any key length");
            m.update(string_to_sign.as_bytes());
            m.verify_slice(&sig).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    //! The captured vectors of `shared/reference/api-dialects.md`, Appendix A (T1-T4).
    use super::*;

    const KEY: &str = "secretkey";
    const HOST: &str = "127.0.0.1:18080";
    const TS: &str = "1795329750";
    const QUERY: &str =
        "JobName=a+b&Limit=2&TagFilters.0.TagKey=k&TagFilters.0.TagValue.0=v1&TagFilters.0.TagValue.1=v2";

    fn decoded(raw: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn t1_tc3_post_json_vector_verifies() {
        let body = br#"{"JobName": "a b", "Limit": 2, "TagFilters": [{"TagKey": "k", "TagValue": ["v1", "v2"]}]}"#;
        let auth = parse_tc3_authorization("TC3-HMAC-SHA256 Credential=AKIDtest/2026-11-22/dts/tc3_request, SignedHeaders=content-type;host, Signature=9ef21e4f37d2308f5d0aab921967eaf72c7e56059b581a8b3f290cdc53d4f44e").unwrap();
        assert_eq!(auth.secret_id, "AKIDtest");
        let input = Tc3Input {
            method: "POST",
            query: "",
            content_type: "application/json",
            host: HOST,
            payload: body,
            unsigned_payload: false,
            timestamp: TS,
            date: &auth.date,
            service: &auth.service,
        };
        assert!(tc3_verify(KEY, &input, &auth.signature));
        assert!(!tc3_verify("wrong", &input, &auth.signature));
        let mut tampered = body.to_vec();
        tampered[13] = b'c';
        assert!(!tc3_verify(KEY, &Tc3Input { payload: &tampered, ..input }, &auth.signature));
    }

    #[test]
    fn t2_tc3_get_vector_verifies() {
        let input = Tc3Input {
            method: "GET",
            query: QUERY,
            content_type: "application/x-www-form-urlencoded",
            host: HOST,
            payload: b"",
            unsigned_payload: false,
            timestamp: TS,
            date: "2026-11-22",
            service: "dts",
        };
        assert_eq!(tc3_sign(KEY, &input), "8805fa2a47249880fbba5ea6f481a4643f394da307dabc8d3941044b001b2601");
    }

    #[test]
    fn t3_v1_hmacsha256_post_form_vector_verifies() {
        let body = format!(
            "{QUERY}&Action=DescribeMigrateJobs&RequestClient=SDK_PYTHON_3.1.193&Nonce=7142956581700876366&Timestamp=1795329750&Version=2018-03-30&Region=ap-guangzhou&SecretId=AKIDtest&SignatureMethod=HmacSHA256&Language=zh-CN&Signature=1WFJz%2B24vFjtrYn3fxCbvbnxFrmOY5M4nPHTqevf4Yw%3D"
        );
        let params = decoded(&body);
        let s2s = v1_string_to_sign("POST", HOST, &params);
        assert_eq!(
            s2s,
            "POST127.0.0.1:18080/?Action=DescribeMigrateJobs&JobName=a b&Language=zh-CN&Limit=2&Nonce=7142956581700876366&Region=ap-guangzhou&RequestClient=SDK_PYTHON_3.1.193&SecretId=AKIDtest&SignatureMethod=HmacSHA256&TagFilters.0.TagKey=k&TagFilters.0.TagValue.0=v1&TagFilters.0.TagValue.1=v2&Timestamp=1795329750&Version=2018-03-30"
        );
        let sig = params.iter().find(|(k, _)| k == "Signature").unwrap().1.clone();
        assert!(v1_verify(KEY, V1Method::HmacSha256, &s2s, &sig));
        assert!(!v1_verify(KEY, V1Method::HmacSha1, &s2s, &sig));
    }

    #[test]
    fn t4_v1_hmacsha1_get_vector_verifies() {
        let query = format!(
            "{QUERY}&Action=DescribeMigrateJobs&RequestClient=SDK_PYTHON_3.1.193&Nonce=5871961867903429443&Timestamp=1795329750&Version=2018-03-30&Region=ap-guangzhou&SecretId=AKIDtest&SignatureMethod=HmacSHA1&Language=zh-CN&Signature=3b1XfIfd3GilPozKN2766QC547Q%3D"
        );
        let params = decoded(&query);
        let s2s = v1_string_to_sign("GET", HOST, &params);
        assert_eq!(v1_sign(KEY, V1Method::HmacSha1, &s2s), "3b1XfIfd3GilPozKN2766QC547Q=");
        assert!(v1_verify(KEY, V1Method::HmacSha1, &s2s, "3b1XfIfd3GilPozKN2766QC547Q="));
    }

    #[test]
    fn malformed_authorization_headers_are_rejected() {
        for h in [
            "",
            "TC3-HMAC-SHA256",
            "TC3-HMAC-SHA256 Credential=a/b/c, SignedHeaders=x, Signature=y",
            "HMAC Credential=a/b/c/tc3_request, SignedHeaders=x, Signature=y",
            "TC3-HMAC-SHA256 Credential=/b/c/tc3_request, SignedHeaders=x, Signature=y",
        ] {
            assert!(parse_tc3_authorization(h).is_none(), "{h}");
        }
        assert!(!tc3_verify(
            KEY,
            &Tc3Input {
                method: "GET",
                query: "",
                content_type: "",
                host: "",
                payload: b"",
                unsigned_payload: false,
                timestamp: "",
                date: "",
                service: ""
            },
            "zz"
        ));
    }
}
