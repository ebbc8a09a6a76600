//! Alibaba Cloud request signatures: RPC v1 (HMAC-SHA1 over the sorted, percent-encoded
//! parameters, as `aliyun-python-sdk-core` and tea-openapi's `v2` sign) and ACS3-HMAC-SHA256
//! (a canonical request over the query, the signed headers and the body hash, as
//! `alibabacloud-dts20200101` signs by default).
//!
//! Both re-encode decoded values with RFC 3986 rules, so `+` and `%20` on the wire sign alike.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// RFC 3986 percent-encoding of UTF-8: unreserved `A-Z a-z 0-9 - _ . ~` kept, all else `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `k=v&...` of the pairs sorted by key (then value), both sides percent-encoded.
fn canonical_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<(&str, &str)> = pairs.collect();
    sorted.sort();
    sorted.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
}

/// The RPC v1 string to sign: `METHOD&%2F&enc(canonical)` over every parameter but `Signature`.
pub fn rpc_v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let canonical =
        canonical_pairs(params.iter().filter(|(k, _)| k != "Signature").map(|(k, v)| (k.as_str(), v.as_str())));
    format!("{method}&{}&{}", percent_encode("/"), percent_encode(&canonical))
}

/// base64(HMAC-SHA1(secret + "&", string_to_sign)).
pub fn rpc_v1_sign(secret: &str, string_to_sign: &str) -> String {
    use base64::Engine;
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time comparison of two signatures.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn rpc_v1_verify(secret: &str, string_to_sign: &str, signature: &str) -> bool {
    same(&rpc_v1_sign(secret, string_to_sign), signature)
}

/// The parts of an `Authorization: ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization {
    pub access_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_acs3_authorization(header: &str) -> Option<Acs3Authorization> {
    let rest = header.strip_prefix("ACS3-HMAC-SHA256 ")?;
    let (mut id, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => id = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.split(';').map(|h| h.trim().to_ascii_lowercase()).collect()),
            "Signature" => sig = Some(v.to_string()),
            _ => {}
        }
    }
    Some(Acs3Authorization { access_key_id: id?, signed_headers: signed?, signature: sig? })
}

/// What ACS3 signs, as received.
pub struct Acs3Input<'a> {
    pub method: &'a str,
    /// Decoded query pairs.
    pub query: &'a [(String, String)],
    /// `(lower-case name, value)` of every signed header, in `SignedHeaders` order.
    pub headers: &'a [(String, String)],
    /// `x-acs-content-sha256` as sent.
    pub content_sha256: &'a str,
}

/// `ACS3-HMAC-SHA256\n` + hex(sha256(canonical request)).
pub fn acs3_string_to_sign(input: &Acs3Input<'_>) -> String {
    let query = canonical_pairs(input.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut headers: Vec<&(String, String)> = input.headers.iter().collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let canonical =
        format!("{}\n/\n{query}\n{canonical_headers}\n{}\n{}", input.method, signed.join(";"), input.content_sha256);
    format!("ACS3-HMAC-SHA256\n{}", hex::encode(Sha256::digest(canonical.as_bytes())))
}

pub fn acs3_sign(secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn acs3_verify(secret: &str, string_to_sign: &str, signature: &str) -> bool {
    same(&acs3_sign(secret, string_to_sign), &signature.to_ascii_lowercase())
}

/// hex(sha256(body)), what `x-acs-content-sha256` must say.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    const BODY: &str = "DbList=%7B%22db1%22%3A%7B%22name%22%3A%22db1%22%2C%22all%22%3Atrue%7D%7D";

    /// Appendix A, A1: alibabacloud-dts20200101 5.11.7 (ACS3-HMAC-SHA256), secret `secret`.
    #[test]
    fn the_captured_acs3_request_of_the_tea_sdk_verifies() {
        let auth = parse_acs3_authorization(
            "ACS3-HMAC-SHA256 Credential=LTAItest,SignedHeaders=accept;content-type;host;user-agent;x-acs-action;\
             x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=e2def854bc9974b9995a8c413ebfd5ff9e6dff4af2d797ea2e3193a6de8271ad",
        )
        .unwrap();
        assert_eq!(auth.access_key_id, "LTAItest");
        let sent = [
            ("host", "127.0.0.1:18081"),
            ("x-acs-version", "2020-01-01"),
            ("x-acs-action", "ConfigureDtsJob"),
            ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
            ("x-acs-date", "2026-11-22T06:42:46Z"),
            ("x-acs-signature-nonce", "9a9683a180d4e8829ae779c02ab7c00e"),
            ("accept", "application/json"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-acs-content-sha256", "971052612e1a70d27cb15b72d4afeb63d6598fc0ba7fee17667b816ddcdd50e3"),
            ("x-acs-credentials-provider", "static_ak"),
        ];
        assert_eq!(body_sha256(BODY.as_bytes()), sent[8].1);
        let headers: Vec<(String, String)> = auth
            .signed_headers
            .iter()
            .map(|h| (h.clone(), sent.iter().find(|(k, _)| k == h).unwrap().1.to_string()))
            .collect();
        let query = pairs("DtsJobName=j+1&JobType=SYNC&RegionId=cn-hangzhou&StructureInitialization=True");
        let input = Acs3Input { method: "POST", query: &query, headers: &headers, content_sha256: sent[8].1 };
        let sts = acs3_string_to_sign(&input);
        assert!(acs3_verify("secret", &sts, &auth.signature));
        assert!(!acs3_verify("secreT", &sts, &auth.signature));
    }

    /// Appendix A, A2: aliyun-python-sdk-core 2.16.1 (RPC v1 HMAC-SHA1), secret `secret`.
    #[test]
    fn the_captured_rpc_v1_request_of_the_core_sdk_verifies() {
        let mut params = pairs(
            "DtsJobName=j%201&JobType=SYNC&StructureInitialization=True&Version=2020-01-01&Action=ConfigureDtsJob&\
             Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-11-22T06%3A42%3A46Z&SignatureMethod=HMAC-SHA1&\
             SignatureType=&SignatureVersion=1.0&SignatureNonce=b23cfa37b5b4b071430551bdd80190ad&\
             AccessKeyId=LTAItest&Signature=MtkjH71zZgCgh%2FOFcQwUooALhdg%3D",
        );
        params.extend(pairs(BODY));
        let sts = rpc_v1_string_to_sign("POST", &params);
        assert!(sts.starts_with("POST&%2F&AccessKeyId%3DLTAItest%26Action%3DConfigureDtsJob%26DbList%3D"));
        assert!(rpc_v1_verify("secret", &sts, "MtkjH71zZgCgh/OFcQwUooALhdg="));
        assert!(!rpc_v1_verify("other", &sts, "MtkjH71zZgCgh/OFcQwUooALhdg="));
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("a b*~/:é"), "a%20b%2A~%2F%3A%C3%A9");
    }
}
