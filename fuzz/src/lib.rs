//! The fuzz harnesses of the API's request parsing and of the binlog event decoder, and a
//! stable-Rust driver for them.
//!
//! Each harness takes arbitrary bytes, feeds them to one parser or canonicaliser of `dts-api` and
//! checks what must always hold (no panic; a signature made over a canonical form verifies over
//! the same form; a parameter tree is never deeper than the limit). `cargo fuzz run <target>`
//! (nightly, feature `libfuzzer`) drives them with libFuzzer; without nightly, each target's
//! binary runs [`drive`]: random and mutated inputs for a bounded time, a crashing input written
//! to `fuzz/artifacts/<target>/` so it can become a regression test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use dts_api::alibaba::signature as ali;
use dts_api::limits;
use dts_api::tencent::signature::{self as tc, Tc3Input, V1Method};
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Splits input bytes into `n` fields at `\n` (missing fields are empty), lossily as UTF-8.
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> =
        data.splitn(n, |b| *b == b'\n').map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    out.resize(n, String::new());
    out
}

/// TC3: the `Authorization` parser and the canonical request / signature over any fields.
pub fn tc3_canonical(data: &[u8]) {
    let f = fields(data, 7);
    let _ = tc::parse_tc3_authorization(&f[0]);
    let input = Tc3Input {
        method: &f[1],
        query: &f[2],
        content_type: &f[3],
        host: &f[4],
        payload: f[5].as_bytes(),
        unsigned_payload: f[6].len() % 2 == 1,
        timestamp: &f[6],
        date: &f[0],
        service: "dts",
    };
    let sig = tc::tc3_sign("key", &input);
    assert!(tc::tc3_verify("key", &input, &sig), "a TC3 signature does not verify over its own input");
    assert!(!tc::tc3_verify("other", &input, &sig));
}

/// v1: bounded form decoding, the string to sign and both algorithms.
pub fn v1_canonical(data: &[u8]) {
    let Ok(pairs) = limits::decode_pairs(data) else { return };
    assert!(pairs.len() <= limits::MAX_PARAMS);
    let sts = tc::v1_string_to_sign("POST", "h", &pairs);
    for m in [V1Method::HmacSha1, V1Method::HmacSha256] {
        let sig = tc::v1_sign("key", m, &sts);
        assert!(tc::v1_verify("key", m, &sts, &sig));
    }
    let _ = V1Method::parse(pairs.first().map(|(_, v)| v.as_str()));
}

/// Alibaba: RPC v1 and ACS3 string-to-sign, the `Authorization` parser, percent-encoding.
pub fn alibaba_canonical(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = ali::parse_acs3_authorization(&text);
    let encoded = ali::percent_encode(&text);
    assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
    let Ok(pairs) = limits::decode_pairs(data) else { return };
    let sts = ali::rpc_v1_string_to_sign("POST", &pairs);
    assert!(ali::rpc_v1_verify("s", &sts, &ali::rpc_v1_sign("s", &sts)));
    let headers: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    let input =
        ali::Acs3Input { method: "POST", query: &pairs, headers: &headers, content_sha256: &ali::body_sha256(data) };
    let sts = ali::acs3_string_to_sign(&input);
    assert!(ali::acs3_verify("s", &sts, &ali::acs3_sign("s", &sts)));
}

fn depth(v: &Value) -> usize {
    let mut stack = vec![(v, 0usize)];
    let mut max = 0;
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Object(m) => stack.extend(m.values().map(|c| (c, d + 1))),
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, d + 1))),
            _ => {}
        }
    }
    max
}

const ACTIONS: [&str; 5] =
    ["CreateMigrateJob", "ModifyMigrateJob", "DescribeMigrateJobs", "CompleteMigrateJob", "StartMigrateJob"];

/// The parameter parser: flattened pairs and JSON bodies, un-flattened and validated against
/// every action's schema; a tree is never deeper than `MAX_DEPTH`.
pub fn params(data: &[u8]) {
    let action = ACTIONS[data.first().map_or(0, |b| *b as usize) % ACTIONS.len()];
    let schema = dts_api::tencent::schema(action).expect("a known action");
    if let Ok(pairs) = limits::decode_pairs(data)
        && let Ok(tree) = dts_api::tencent::unflatten(&pairs)
    {
        assert!(depth(&tree) <= limits::MAX_DEPTH, "unflatten built a tree deeper than the limit");
        let _ = dts_api::tencent::validate(tree, schema, true);
    }
    if limits::check_json_text(data).is_ok()
        && let Ok(v) = serde_json::from_slice::<Value>(data)
        && limits::check_json(&v).is_ok()
    {
        assert!(depth(&v) <= limits::MAX_DEPTH);
        let _ = dts_api::tencent::validate(v, schema, false);
    }
}

/// Bytes that look like requests: form pairs with dotted names, JSON, percent escapes.
const ALPHABET: &[u8] = b"aAzZ09.=&%+_-~{}[]\":, \n\\tc3TC3-HMAC-SHA256 Credential=/dts/tc3_request";

fn random_input(rng: &mut impl Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    match rng.gen_range(0..4) {
        // A deep or wide structure.
        0 => {
            let n = rng.gen_range(1..2_000);
            match rng.gen_range(0..4) {
                0 => format!("{}=v", vec!["a"; n].join(".")).into_bytes(),
                1 => (0..n).map(|i| format!("P{i}.{}={i}", i % 7)).collect::<Vec<_>>().join("&").into_bytes(),
                2 => format!("{}1{}", "[".repeat(n), "]".repeat(n)).into_bytes(),
                _ => format!("{{\"JobName\":\"{}\"}}", "x".repeat(n * 100)).into_bytes(),
            }
        }
        // Random bytes.
        1 => (0..rng.gen_range(0..512)).map(|_| rng.r#gen()).collect(),
        // Random text from the request alphabet.
        2 => (0..rng.gen_range(0..512)).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect(),
        // A corpus entry, mutated.
        _ => {
            let mut v = corpus[rng.gen_range(0..corpus.len())].clone();
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..=v.len());
                match rng.gen_range(0..3) {
                    0 => v.insert(at, ALPHABET[rng.gen_range(0..ALPHABET.len())]),
                    1 if at < v.len() => {
                        v.remove(at);
                    }
                    _ => v.insert(at, rng.r#gen()),
                }
            }
            v
        }
    }
}

/// Seeds: the captured requests of `shared/reference/api-dialects.md` Appendix A, in short.
fn corpus() -> Vec<Vec<u8>> {
    [
        "JobName=a+b&Limit=2&TagFilters.0.TagKey=k&TagFilters.0.TagValue.0=v1&TagFilters.0.TagValue.1=v2",
        "{\"JobName\": \"a b\", \"Limit\": 2, \"TagFilters\": [{\"TagKey\": \"k\", \"TagValue\": [\"v1\", \"v2\"]}]}",
        "TC3-HMAC-SHA256 Credential=AKIDtest/2026-11-22/dts/tc3_request, SignedHeaders=content-type;host, Signature=9e\nPOST\n\napplication/json\n127.0.0.1:18080\n{}\n1795329750",
        "DbList=%7B%22db1%22%3A%7B%22name%22%3A%22db1%22%2C%22all%22%3Atrue%7D%7D&DtsJobName=j%201",
        "ACS3-HMAC-SHA256 Credential=LTAItest,SignedHeaders=host;x-acs-action,Signature=e2",
        "SrcInfo.Ip=1.2.3.4&SrcInfo.Port=3306&MigrateOption.MigrateType=2&DatabaseInfo=%5B%5D",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// Runs `harness` on random and mutated inputs for `seconds` (argument 1, default 60). A panic
/// stops the run: the input is written to `fuzz/artifacts/<name>/crash-<n>` and the process
/// exits with status 1.
/// The binlog event decoder (`dts_mysql::decode_stream`): the input read as events with valid
/// v4 headers (a type byte, a body length byte, the body), so every event type's body parser is
/// reached, then as a raw stream too. A malformed event must end the stream with an error;
/// nothing may panic or abort.
pub fn binlog_events(data: &[u8]) {
    let mut stream = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], usize::from(rest[1]));
        let end = (2 + len).min(rest.len());
        let body = &rest[2..end];
        rest = &rest[end..];
        stream.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        stream.push(kind);
        stream.extend_from_slice(&1u32.to_le_bytes());
        stream.extend_from_slice(&(19 + body.len() as u32).to_le_bytes());
        stream.extend_from_slice(&((stream.len() + 19 + body.len()) as u32).to_le_bytes());
        stream.extend_from_slice(&0u16.to_le_bytes());
        stream.extend_from_slice(body);
    }
    let _ = dts_mysql::decode_stream(&stream);
    let _ = dts_mysql::decode_stream(data);
}

pub fn drive(name: &str, harness: fn(&[u8])) {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = std::env::var("DTS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let corpus = corpus();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    std::panic::set_hook(Box::new(|_| {}));
    let mut runs: u64 = 0;
    while Instant::now() < deadline {
        let input = random_input(&mut rng, &corpus);
        if catch_unwind(AssertUnwindSafe(|| harness(&input))).is_err() {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts").join(name);
            std::fs::create_dir_all(&dir).expect("create the artifacts directory");
            let path = dir.join(format!("crash-{runs}"));
            std::fs::write(&path, &input).expect("write the crashing input");
            let _ = std::panic::take_hook();
            eprintln!("{name}: crash after {runs} runs (seed {seed}); input in {}", path.display());
            harness(&input);
            std::process::exit(1);
        }
        runs += 1;
    }
    println!("{name}: {runs} runs in {seconds} s without a crash (seed {seed})");
}
