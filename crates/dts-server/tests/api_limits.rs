//! The request bounds through a real `dts serve` over TCP: the v1 request with a 200,000-segment
//! parameter name that used to overflow a worker's stack and abort the server is answered with
//! `InvalidParameter`, a declared 11 MiB body with `RequestSizeLimitExceeded`, and the server
//! keeps serving signed requests afterwards.

use std::path::Path;
use std::time::Duration;

use dts_api::tencent::signature::{V1Method, v1_sign, v1_string_to_sign};
use dts_test_support::{DtsServer, DtsServerOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn v1_body(server: &DtsServer, host: &str, mut params: Vec<(String, String)>, nonce: &str) -> String {
    params.extend([
        ("Action".to_string(), "DescribeMigrateJobs".to_string()),
        ("Version".to_string(), "2018-03-30".to_string()),
        ("Region".to_string(), "ap-guangzhou".to_string()),
        ("Timestamp".to_string(), chrono::Utc::now().timestamp().to_string()),
        ("Nonce".to_string(), nonce.to_string()),
        ("SecretId".to_string(), server.secret_id().to_string()),
        ("SignatureMethod".to_string(), "HmacSHA256".to_string()),
    ]);
    let sig = v1_sign(server.secret_key(), V1Method::HmacSha256, &v1_string_to_sign("POST", host, &params));
    params.push(("Signature".to_string(), sig));
    form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish()
}

async fn post(client: &reqwest::Client, server: &DtsServer, body: String) -> Value {
    let resp = client
        .post(format!("http://{}/", server.endpoint()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the server did not answer ({e}); its log:\n{}", server.log()));
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("a JSON envelope")
}

#[tokio::test]
async fn a_200000_segment_parameter_name_is_refused_and_the_server_stays_up() {
    let mut server = DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), DtsServerOptions::default()).await;
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let host = server.endpoint();
    let name = vec!["a"; 200_000].join(".");
    for attempt in 0..3 {
        let v =
            post(&client, &server, v1_body(&server, &host, vec![(name.clone(), "v".into())], &format!("1{attempt}")))
                .await;
        assert_eq!(v["Response"]["Error"]["Code"], "InvalidParameter", "{v}");
        assert!(v["Response"]["Error"]["Message"].as_str().unwrap().contains("longer than 256 bytes"), "{v}");
    }
    let nine = ["A"; 9].join(".");
    let v = post(&client, &server, v1_body(&server, &host, vec![(nine, "v".into())], "20")).await;
    assert!(v["Response"]["Error"]["Message"].as_str().unwrap().contains("deeper than 8 levels"), "{v}");
    // Declared too large: answered from the headers alone, before any of the body is sent.
    let mut tcp = tokio::net::TcpStream::connect(server.endpoint()).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        11 << 20
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("RequestSizeLimitExceeded"), "{reply}");
    assert!(server.is_running(), "dts serve died; its log:\n{}", server.log());
    let v = post(&client, &server, v1_body(&server, &host, Vec::new(), "30")).await;
    assert!(v["Response"]["Error"].is_null(), "{v}");
    assert!(v["Response"]["JobList"].is_array(), "{v}");
}
