//! What one request may make the server hold or walk, for both dialects: body size, read time
//! and the bytes of bodies read at once (before anything is authenticated), the number of
//! parameters, the depth and length of a parameter name, the size of one value, and the length
//! of a nonce. Every bound has an error whose message names it; the dialects wrap it in their
//! envelopes (`InvalidParameter`, `RequestSizeLimitExceeded`).
//!
//! Form/query decoding and the JSON shape check here are iterative and refuse before they
//! allocate beyond the bounds, so no request can recurse or grow without bound.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// The largest request body read (Tencent's documented TC3 POST limit).
pub const MAX_BODY_BYTES: usize = 10 << 20;
/// How long reading one request body may take (a slow upload is cut off then).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The bytes of request bodies held at once across all connections, before authentication.
pub const BODY_BUDGET_BYTES: usize = 64 << 20;
/// Requests handled at once; more wait for a slot (and for room in [`BODY_BUDGET_BYTES`]) for
/// at most [`QUEUE_WAIT`], then are refused as throttled.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 128;
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Parameters of one request (flattened pairs, or the leaf values of a JSON body).
pub const MAX_PARAMS: usize = 1_000;
/// Segments of a dotted parameter name (`A.0.B`), and nesting of a JSON body.
pub const MAX_DEPTH: usize = 8;
/// Bytes of one parameter name.
pub const MAX_NAME_BYTES: usize = 256;
/// Bytes of one parameter value.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Bytes of a v1 `Nonce` / Alibaba `SignatureNonce` (the clouds allow far less).
pub const MAX_NONCE_BYTES: usize = 128;

/// A request beyond one of the bounds above. `Display` is the client-facing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    TooManyParams,
    NameTooLong,
    NameTooDeep { name: String },
    ValueTooLarge { name: String },
    NotUtf8,
    BodyTooLarge,
    NonceTooLong,
}

impl LimitError {
    /// The parameter at fault, when there is one (Alibaba's `DynamicMessage`).
    pub fn parameter(&self) -> &str {
        match self {
            Self::NameTooDeep { name } | Self::ValueTooLarge { name } => name,
            Self::NonceTooLong => "Nonce",
            _ => "(request)",
        }
    }
}

/// A name shortened for an error message (a rejected name may be 10 MiB long).
fn shown(name: &str) -> String {
    if name.len() <= 64 {
        return name.to_string();
    }
    let mut end = 64;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &name[..end])
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyParams => write!(f, "The request has more than {MAX_PARAMS} parameters (the limit)."),
            Self::NameTooLong => write!(f, "A parameter name is longer than {MAX_NAME_BYTES} bytes (the limit)."),
            Self::NameTooDeep { name } => {
                write!(f, "The parameter `{}` is nested deeper than {MAX_DEPTH} levels (the limit).", shown(name))
            }
            Self::ValueTooLarge { name } => {
                write!(f, "The value of `{}` is larger than {MAX_VALUE_BYTES} bytes (the limit).", shown(name))
            }
            Self::NotUtf8 => write!(f, "A parameter name or value is not valid UTF-8."),
            Self::BodyTooLarge => write!(f, "The request body is larger than {MAX_BODY_BYTES} bytes (the limit)."),
            Self::NonceTooLong => write!(f, "The nonce is longer than {MAX_NONCE_BYTES} bytes (the limit)."),
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte; a `%` not
/// followed by two hex digits stays as it is, as browsers and `form_urlencoded` do).
fn percent_decode(raw: &[u8]) -> Result<String, LimitError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => match (raw.get(i + 1).copied().and_then(hex_digit), raw.get(i + 2).copied().and_then(hex_digit)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| LimitError::NotUtf8)
}

/// Decodes `k=v&...` pairs (a query string or a form body) within the bounds: at most
/// [`MAX_PARAMS`] pairs, names of at most [`MAX_NAME_BYTES`], values of at most
/// [`MAX_VALUE_BYTES`], all valid UTF-8. Sizes are checked on the raw text, before decoding.
pub fn decode_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, LimitError> {
    let mut pairs = Vec::new();
    for part in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        if pairs.len() == MAX_PARAMS {
            return Err(LimitError::TooManyParams);
        }
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(at) => (&part[..at], &part[at + 1..]),
            None => (part, &part[part.len()..]),
        };
        // An encoded byte is 3 characters; a raw name this long decodes longer than the limit.
        if k.len() > 3 * MAX_NAME_BYTES {
            return Err(LimitError::NameTooLong);
        }
        let name = percent_decode(k)?;
        if name.len() > MAX_NAME_BYTES {
            return Err(LimitError::NameTooLong);
        }
        if v.len() > 3 * MAX_VALUE_BYTES {
            return Err(LimitError::ValueTooLarge { name });
        }
        let value = percent_decode(v)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(LimitError::ValueTooLarge { name });
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Checks a JSON body's shape on its raw bytes, before it is parsed: nesting at most
/// [`MAX_DEPTH`] containers deep (the top-level object counts) and at most `8 x MAX_PARAMS`
/// separators, so parsing allocates in proportion to an admissible request only.
pub fn check_json_text(raw: &[u8]) -> Result<(), LimitError> {
    let (mut depth, mut commas, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in raw {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(LimitError::NameTooDeep { name: "(request body)".into() });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => {
                commas += 1;
                if commas > 8 * MAX_PARAMS {
                    return Err(LimitError::TooManyParams);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a parsed JSON body (iteratively): at most [`MAX_PARAMS`] leaf values (scalars and
/// empty containers), every string at most [`MAX_VALUE_BYTES`], every key at most
/// [`MAX_NAME_BYTES`], nesting at most [`MAX_DEPTH`].
pub fn check_json(root: &Value) -> Result<(), LimitError> {
    let mut stack: Vec<(&Value, usize, String)> = vec![(root, 0, String::new())];
    let mut leaves = 0usize;
    while let Some((v, depth, path)) = stack.pop() {
        let child = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
        let leaf = match v {
            Value::Object(m) if !m.is_empty() => {
                if depth + 1 > MAX_DEPTH {
                    return Err(LimitError::NameTooDeep { name: path });
                }
                for (k, c) in m {
                    if k.len() > MAX_NAME_BYTES {
                        return Err(LimitError::NameTooLong);
                    }
                    stack.push((c, depth + 1, child(k)));
                }
                false
            }
            Value::Array(a) if !a.is_empty() => {
                if depth + 1 > MAX_DEPTH {
                    return Err(LimitError::NameTooDeep { name: path });
                }
                for (i, c) in a.iter().enumerate() {
                    stack.push((c, depth + 1, child(&i.to_string())));
                }
                false
            }
            Value::String(s) if s.len() > MAX_VALUE_BYTES => return Err(LimitError::ValueTooLarge { name: path }),
            _ => true,
        };
        if leaf && depth > 0 {
            leaves += 1;
            if leaves > MAX_PARAMS {
                return Err(LimitError::TooManyParams);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_decoding_matches_form_urlencoded_on_ordinary_input() {
        for raw in ["a=1&b=x+y&c=%41%zz%4&d&&e=%C3%A9", "", "k=", "=v", "a=%", "a=%4"] {
            let ours = decode_pairs(raw.as_bytes()).unwrap();
            let theirs: Vec<(String, String)> =
                form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            assert_eq!(ours, theirs, "{raw}");
        }
    }

    #[test]
    fn form_decoding_refuses_each_bound_by_name() {
        let many = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert_eq!(decode_pairs(many.as_bytes()), Err(LimitError::TooManyParams));
        let long = format!("{}=1", "a".repeat(MAX_NAME_BYTES + 1));
        assert_eq!(decode_pairs(long.as_bytes()), Err(LimitError::NameTooLong));
        let big = format!("a={}", "x".repeat(MAX_VALUE_BYTES + 1));
        assert_eq!(decode_pairs(big.as_bytes()), Err(LimitError::ValueTooLarge { name: "a".into() }));
        assert_eq!(decode_pairs(b"a=%FF%FE"), Err(LimitError::NotUtf8));
        assert!(LimitError::TooManyParams.to_string().contains("1000"));
    }

    #[test]
    fn json_bodies_are_bounded_in_depth_width_and_value_size() {
        assert!(check_json_text(br#"{"a":[{"b":"[[[[[[[[[[[["}]}"#).is_ok());
        let deep = format!("{}1{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(check_json_text(deep.as_bytes()), Err(LimitError::NameTooDeep { .. })));
        let wide: Value = json!({ "A": vec![1; MAX_PARAMS + 1] });
        assert_eq!(check_json(&wide), Err(LimitError::TooManyParams));
        let nested = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}});
        assert_eq!(check_json(&nested), Err(LimitError::NameTooDeep { name: "a.b.c.d.e.f.g.h".into() }));
        let big = json!({ "A": [ "x".repeat(MAX_VALUE_BYTES + 1) ] });
        assert_eq!(check_json(&big), Err(LimitError::ValueTooLarge { name: "A.0".into() }));
        assert!(check_json(&json!({"A": {"B": [1, 2, {"C": "d"}]}})).is_ok());
    }
}
