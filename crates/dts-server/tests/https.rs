//! HTTPS: `dts serve --tls-cert --tls-key` with a self-signed certificate, driven by the official
//! Tencent SDK (`HttpProfile(protocol="https", certification=...)`, TC3 and v1) and Alibaba tea
//! SDK (`Config(protocol="https")`, `RuntimeOptions(ca=...)`) trusting that certificate; plain HTTP on the port gets no answer.

mod sdk_script;

use std::path::Path;
use std::time::Duration;

use dts_test_support::{DtsServer, DtsServerOptions};
use sdk_script::{api_env, python, run_script};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_sdks_talk_to_dts_over_https_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let server = DtsServer::start(
        Path::new(env!("CARGO_BIN_EXE_dts")),
        DtsServerOptions { tls: Some((cert_path.clone(), key_path)), ..Default::default() },
    )
    .await;
    let python = python().await;
    let ca = cert_path.display().to_string();
    let env = api_env(&server, &[("DTS_CA_FILE", &ca)]);
    let out = run_script(&python, "https.py", &env, &server).await;
    assert!(out.contains("tencent TC3 ok") && out.contains("tencent HmacSHA256 ok"), "{out}");
    assert!(out.contains("alibaba ok"), "{out}");

    // Plain HTTP to the HTTPS port: no HTTP answer comes back.
    let mut tcp = tokio::net::TcpStream::connect(server.endpoint()).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut reply)).await;
    assert!(!String::from_utf8_lossy(&reply).contains("ok"), "{:?}", String::from_utf8_lossy(&reply));
}
