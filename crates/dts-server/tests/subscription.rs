//! End-to-end change tracking: an official Alibaba SDK (`tests/py/ali_subscription.py`) buys,
//! configures and starts a subscription of a throwaway MariaDB database on a real `dts serve`
//! whose change bus is a throwaway `nats-server -js`; the source's inserts, updates, deletes and
//! DDL arrive as Debezium JSON, each with its transaction's GTID; `dts` is killed with SIGKILL during a burst of writes and
//! restarted, and a consumer group read with `dts subscribe tail` (de-duplicating by id) sees
//! every change exactly once, in order per key. ModifySubscription then adds a table whose next
//! change reaches the group, with nothing earlier repeated; once the subscription is deleted its
//! stream is gone from NATS. The official Tencent SDK (`tests/py/subscribe.py`) activates a
//! subscription on NATS (Debezium JSON) and on Kafka (Alibaba Avro), rewinds its default consumer
//! group with ModifySubscribeConsumeTime (the group reads the changes from that second again,
//! nothing earlier), changes its settings and deletes it (its stream or topic is gone).

mod burst;
mod sdk_script;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use dts_bus::{BusConfig, Consumer, Delivery, MessageKind, NatsConfig, StartAt};
use dts_test_support::{DtsServer, DtsServerOptions, KafkaBroker, MariaDb, NatsServer};
use mysql_async::prelude::Queryable;
use sdk_script::{Running, api_env, job_id_printed, printed, python};
use serde_json::{Value, json};

const KEYS: i64 = 30;
const ROUNDS: i64 = 20;

async fn server(nats: &NatsServer) -> DtsServer {
    let config = format!("[change_bus]\nkind = \"nats\"\nurl = \"{}\"\nheartbeat_secs = 3600\n", nats.url());
    let options = DtsServerOptions { config_toml: Some(config), ..Default::default() };
    DtsServer::start(Path::new(env!("CARGO_BIN_EXE_dts")), options).await
}

fn json_of(bytes: Option<&[u8]>) -> Value {
    bytes.map(|b| serde_json::from_slice(b).expect("a Debezium value is JSON")).unwrap_or(Value::Null)
}

/// Every message of the subscription from the start, until `done` holds for them (heartbeats
/// left out); panics after 60 s.
async fn read_until(
    nats: &NatsServer,
    job: &str,
    server: &DtsServer,
    done: impl Fn(&[Delivery]) -> bool,
) -> Vec<Delivery> {
    let config = BusConfig::Nats(NatsConfig::new(nats.url()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut consumer = loop {
        match Consumer::open(&config, job, StartAt::Beginning).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "the subscription's stream never appeared: {e}\n{}", server.log());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let mut got = Vec::new();
    while !done(&got) {
        assert!(Instant::now() < deadline, "events missing after 60 s; got {got:#?}\n{}", server.log());
        let batch = consumer.next_batch(256, Duration::from_millis(300)).await.expect("read the stream");
        got.extend(batch.into_iter().filter(|d| d.kind != Some(MessageKind::Heartbeat)));
    }
    got
}

/// Writes the burst: `KEYS` rows, then `ROUNDS` rounds updating every row to the round number,
/// half of each round as one multi-row transaction, 25 ms apart; returns when it ended.
async fn burst(db: &MariaDb) -> Instant {
    burst::insert_and_update(&mut db.conn().await, KEYS, ROUNDS).await;
    Instant::now()
}

/// Runs `dts subscribe tail --group` until it has been idle for 3 s; returns its JSON lines.
async fn tail_group(server: &DtsServer, nats: &NatsServer, job: &str, group: &str) -> Vec<Value> {
    let args = ["subscribe", "tail", job, "--group", group, "--bus", &nats.url(), "--idle-exit", "3"];
    let stdout = server.cli_ok(&args);
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alibaba_sdk_subscription_publishes_debezium_events_to_nats_exactly_once_across_a_kill_9_and_a_new_selection()
 {
    let (src, python) = tokio::join!(MariaDb::start(), python());
    let nats = NatsServer::start();
    let mut server = server(&nats).await;
    src.exec(
        "CREATE DATABASE track;
         CREATE TABLE track.items (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(40)) ENGINE=InnoDB;
         CREATE DATABASE other;
         CREATE TABLE other.t (id INT PRIMARY KEY) ENGINE=InnoDB",
    )
    .await;
    let phase = server.data_dir().join("phase");
    std::fs::write(&phase, "").expect("phase file");
    let env = api_env(
        &server,
        &[
            ("SRC_PORT", &src.port().to_string()),
            ("DB_NAME", "track"),
            ("ALI_SDK", "tea"),
            ("BUS_ADDRESS", &format!("127.0.0.1:{}", nats.port())),
            ("PHASE_FILE", phase.to_str().expect("utf-8 path")),
        ],
    );
    let mut script = Running::start(&python, "ali_subscription.py", &env);
    script.wait_line("READY", Duration::from_secs(180), &server).await;
    let job = job_id_printed(&script.stdout());
    let group = printed(&script.stdout(), "GROUP=");

    // Inserts, an update, a delete and a DDL of the selected database; nothing of `other`.
    let gtid_pos = async || -> String {
        let mut conn = src.conn().await;
        conn.query_first("SELECT @@gtid_binlog_pos").await.expect("read @@gtid_binlog_pos").expect("a GTID position")
    };
    let gtid_before = gtid_pos().await;
    src.exec(
        "INSERT INTO other.t VALUES (1);
         INSERT INTO track.items VALUES (1, 10, 'one');
         UPDATE track.items SET v = 11, note = NULL WHERE id = 1;
         DELETE FROM track.items WHERE id = 1;
         ALTER TABLE track.items ADD COLUMN extra INT;
         INSERT INTO track.items VALUES (2, 20, 'two', 7)",
    )
    .await;
    let got = read_until(&nats, &job, &server, |g| {
        g.iter().any(|d| d.kind == Some(MessageKind::Insert) && json_of(d.key.as_deref()) == json!({"id": 2}))
    })
    .await;
    let kinds: Vec<_> = got.iter().map(|d| d.kind.expect("dts sets dts-kind")).collect();
    assert_eq!(
        kinds,
        [
            MessageKind::Insert,
            MessageKind::Update,
            MessageKind::Delete,
            MessageKind::Tombstone,
            MessageKind::Ddl,
            MessageKind::Insert
        ],
        "{got:#?}"
    );
    let values: Vec<Value> = got.iter().map(|d| json_of(d.payload.as_deref())).collect();
    let insert = &values[0];
    assert_eq!(insert["op"], "c");
    assert_eq!(insert["before"], Value::Null);
    assert_eq!(insert["after"], json!({"id": 1, "v": 10, "note": "one"}));
    assert_eq!((&insert["source"]["db"], &insert["source"]["table"]), (&json!("track"), &json!("items")));
    assert!(insert["source"]["file"].as_str().is_some_and(|f| !f.is_empty()), "{insert}");
    assert!(insert["source"]["pos"].as_u64().is_some_and(|p| p > 0), "{insert}");
    assert_eq!(insert["source"]["server_id"], json!(src.server_id()));
    assert_eq!(json_of(got[0].key.as_deref()), json!({"id": 1}));
    assert!(got[0].subject.ends_with(".track.items"), "{}", got[0].subject);
    let update = &values[1];
    assert_eq!(update["op"], "u");
    assert_eq!(update["before"], json!({"id": 1, "v": 10, "note": "one"}));
    assert_eq!(update["after"], json!({"id": 1, "v": 11, "note": null}));
    let delete = &values[2];
    assert_eq!((&delete["op"], &delete["after"]), (&json!("d"), &Value::Null));
    assert_eq!(delete["before"], json!({"id": 1, "v": 11, "note": null}));
    assert_eq!((json_of(got[3].key.as_deref()), &got[3].payload), (json!({"id": 1}), &None), "tombstone");
    let ddl = &values[4];
    assert!(ddl["ddl"].as_str().is_some_and(|s| s.contains("ADD COLUMN extra")), "{ddl}");
    assert_eq!(ddl["databaseName"], "track");
    assert_eq!(values[5]["after"], json!({"id": 2, "v": 20, "note": "two", "extra": 7}));
    let ids: HashSet<&str> = got.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "message ids are unique");
    // Each statement its own transaction (the first, of `other`, not published), the DDL too:
    // consecutive GTIDs after the position before them, the last the source's position after.
    let (domain_server, seq) = gtid_before.rsplit_once('-').expect("domain-server-seq");
    let seq: u64 = seq.parse().expect("a sequence number");
    let want: Vec<String> = [2, 3, 4, 5, 6].iter().map(|n| format!("{domain_server}-{}", seq + n)).collect();
    let gtids: Vec<&str> =
        [0, 1, 2, 4, 5].iter().map(|&i| values[i]["source"]["gtid"].as_str().unwrap_or("-")).collect();
    assert_eq!(gtids, want, "{values:#?}");
    assert_eq!(gtid_pos().await, want[4]);

    // A burst of writes, a second or more after the first part (times are in seconds); dts is
    // killed with SIGKILL while publishing it, then restarted.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let burst_from = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let writer = burst(&src);
    let killer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.kill();
        let killed = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.restart().await;
        killed
    };
    let (written, killed) = tokio::join!(writer, killer);
    assert!(killed < written, "dts was killed only after the burst ended; make the burst longer");

    // The group reads everything, resuming across several tail runs.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut lines: Vec<Value> = Vec::new();
    let expected = (KEYS * (ROUNDS + 1)) as usize;
    loop {
        lines.extend(tail_group(&server, &nats, &job, &group).await);
        let burst_changes =
            lines.iter().filter(|l| l["key"]["id"].as_i64().is_some_and(|k| k >= 100) && l["value"]["op"].is_string());
        if burst_changes.count() >= expected {
            break;
        }
        assert!(Instant::now() < deadline, "the group read only part of the burst: {lines:#?}\n{}", server.log());
    }
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "the group saw a message id twice");
    let mut per_key: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for l in &lines {
        let Some(k) = l["key"]["id"].as_i64().filter(|k| *k >= 100) else { continue };
        if l["value"]["op"].is_string() {
            per_key.entry(k).or_default().push(l["value"]["after"]["v"].as_i64().expect("v"));
        }
    }
    let want: Vec<i64> = (0..=ROUNDS).collect();
    assert_eq!(per_key.len(), KEYS as usize);
    for (k, seen) in &per_key {
        assert_eq!(seen, &want, "key {k}: each change exactly once, in order");
    }
    // The first part is in the group's view too, once.
    assert_eq!(lines.iter().filter(|l| l["value"]["op"] == "d").count(), 1);

    // A reader from the burst's start time sees the burst, and nothing of the first part.
    let from = burst_from.to_string();
    let stdout = server.cli_ok(&["subscribe", "tail", &job, "--from", &from, "--bus", &nats.url(), "--idle-exit", "2"]);
    let rewound: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let rows: Vec<&Value> = rewound.iter().filter(|l| l["value"]["op"].is_string()).collect();
    assert_eq!(rows.len(), expected, "the burst from its start time, each change once");
    assert!(rows.iter().all(|l| l["key"]["id"].as_i64().is_some_and(|k| k >= 100)), "nothing before the burst");

    // Drain whatever the restart added (a heartbeat).
    lines.extend(tail_group(&server, &nats, &job, &group).await);

    // ModifySubscription adds `other.t` to the running subscription: its next change reaches the
    // group, the row written before the modification never does, and nothing is seen twice.
    std::fs::write(&phase, "modify").expect("phase file");
    script.wait_line("MODIFIED", Duration::from_secs(60), &server).await;
    src.exec("INSERT INTO other.t VALUES (2); INSERT INTO track.items VALUES (3, 30, 'three', NULL)").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after: Vec<Value> = Vec::new();
    let row_of = |l: &Value, table: &str| {
        l["value"]["op"].is_string() && l["subject"].as_str().is_some_and(|s| s.ends_with(table))
    };
    while !(after.iter().any(|l| row_of(l, ".other.t")) && after.iter().any(|l| row_of(l, ".track.items"))) {
        assert!(Instant::now() < deadline, "the added table's change did not arrive: {after:#?}\n{}", server.log());
        after.extend(tail_group(&server, &nats, &job, &group).await);
    }
    let other: Vec<i64> =
        after.iter().filter(|l| row_of(l, ".other.t")).filter_map(|l| l["key"]["id"].as_i64()).collect();
    assert_eq!(other, [2], "the added table's change, once; nothing of it from before: {after:#?}");
    let items: Vec<i64> =
        after.iter().filter(|l| row_of(l, ".track.items")).filter_map(|l| l["key"]["id"].as_i64()).collect();
    assert_eq!(items, [3], "the subscribed table goes on, nothing earlier repeated: {after:#?}");
    let seen: HashSet<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    let mut again: HashSet<&str> = HashSet::new();
    for id in after.iter().filter_map(|l| l["id"].as_str()) {
        assert!(!seen.contains(id) && again.insert(id), "message {id} seen twice: {after:#?}");
    }

    // The script checks the group's position (also through the legacy calls), stops and
    // deletes the subscription; its stream goes from NATS.
    std::fs::write(&phase, "stop").expect("phase file");
    let stdout = script.finish(&server).await;
    assert!(stdout.lines().any(|l| l.trim() == "STOPPED"), "{stdout}");
    stream_gone(&nats, &job, &server).await;
}

/// Waits until the subscription's stream is gone from NATS (its deletion's release ran).
async fn stream_gone(nats: &NatsServer, job: &str, server: &DtsServer) {
    let config = BusConfig::Nats(NatsConfig::new(nats.url()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match dts_bus::consumer::window(&config, job).await {
            Err(dts_bus::BusError::NotFound { .. }) => return,
            other => assert!(
                Instant::now() < deadline,
                "the deleted subscription's stream is still on NATS: {other:?}\n{}",
                server.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The topics of a Kafka broker, as kafka-python lists them (a Metadata request for all topics,
/// which creates none).
fn kafka_topics(broker: &KafkaBroker) -> Vec<String> {
    let list = "import sys\nfrom kafka import KafkaConsumer\n\
                print('\\n'.join(sorted(KafkaConsumer(bootstrap_servers=sys.argv[1]).topics())))";
    let out = std::process::Command::new(broker.python())
        .args(["-c", list, &broker.bootstrap()])
        .output()
        .expect("run kafka-python");
    assert!(out.status.success(), "list topics: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// The change bus of a test: NATS with Debezium JSON, or Kafka (tansu) with Alibaba Avro.
enum Bus {
    Nats(NatsServer),
    Kafka(KafkaBroker),
}

impl Bus {
    fn config(&self) -> String {
        match self {
            Bus::Nats(n) => format!("[change_bus]\nurl = \"{}\"\nheartbeat_secs = 3600\n", n.url()),
            Bus::Kafka(k) => format!(
                "[change_bus]\nkind = \"kafka\"\nbootstrap = \"{}\"\nformat = \"avro\"\nheartbeat_secs = 3600\n",
                k.bootstrap()
            ),
        }
    }

    fn address(&self) -> String {
        match self {
            Bus::Nats(n) => format!("127.0.0.1:{}", n.port()),
            Bus::Kafka(k) => k.bootstrap(),
        }
    }

    /// Waits until the deleted subscription's stream (NATS) or topic (Kafka, as kafka-python
    /// lists the broker's topics) is gone.
    async fn gone(&self, job: &str, server: &DtsServer) {
        let broker = match self {
            Bus::Nats(nats) => return stream_gone(nats, job, server).await,
            Bus::Kafka(broker) => broker,
        };
        let topic = format!("dts.{job}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let topics = kafka_topics(broker);
            if !topics.contains(&topic) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the deleted subscription's topic {topic} is still on Kafka: {topics:?}\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `dts subscribe tail` arguments naming this bus and format.
    fn tail_args(&self) -> Vec<String> {
        match self {
            Bus::Nats(n) => vec!["--bus".into(), n.url(), "--format".into(), "json".into()],
            Bus::Kafka(k) => {
                vec!["--bus".into(), format!("kafka://{}", k.bootstrap()), "--format".into(), "avro".into()]
            }
        }
    }
}

/// Runs `dts subscribe tail --group` on `bus` until idle for 8 s (a Kafka group join takes
/// seconds); returns its JSON lines.
fn tail_bus_group(server: &DtsServer, bus: &Bus, job: &str, group: &str) -> Vec<Value> {
    let mut args: Vec<String> =
        ["subscribe", "tail", job, "--group", group, "--idle-exit", "8"].map(String::from).into();
    args.extend(bus.tail_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = server.cli_ok(&args);
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

/// The row events of tail lines, as (operation, id, subject) whichever the format.
fn row_events(lines: &[Value]) -> Vec<(String, i64, String)> {
    lines
        .iter()
        .filter(|l| matches!(l["kind"].as_str(), Some("insert" | "update" | "delete")))
        .map(|l| {
            let op = match (&l["value"]["op"], &l["value"]["operation"]) {
                (Value::String(op), _) => op.clone(),
                (_, Value::String(op)) => op.clone(),
                _ => panic!("neither a Debezium nor an Alibaba record: {l}"),
            };
            (op, l["key"]["id"].as_i64().unwrap_or(-1), l["subject"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

async fn tencent_subscription(bus: Bus) {
    let (src, python) = tokio::join!(MariaDb::start(), python());
    let config = format!(
        "{}\n[instances.cdb-src]\nengine = \"mariadb\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"root\"\n",
        bus.config(),
        src.port()
    );
    let server = DtsServer::start(
        Path::new(env!("CARGO_BIN_EXE_dts")),
        DtsServerOptions { config_toml: Some(config), ..Default::default() },
    )
    .await;
    src.exec(
        "CREATE DATABASE tdb;
         CREATE TABLE tdb.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;
         CREATE TABLE tdb.u (id INT PRIMARY KEY) ENGINE=InnoDB",
    )
    .await;
    let phase = server.data_dir().join("phase");
    std::fs::write(&phase, "").expect("phase file");
    let env = api_env(
        &server,
        &[
            ("INSTANCE_ID", "cdb-src"),
            ("DB_NAME", "tdb"),
            ("TABLE_NAME", "t"),
            ("BUS_ADDRESS", &bus.address()),
            ("PHASE_FILE", phase.to_str().expect("utf-8 path")),
            ("REWIND", "1"),
        ],
    );
    let mut script = Running::start(&python, "subscribe.py", &env);
    script.wait_line("READY", Duration::from_secs(180), &server).await;
    let sub = printed(&script.stdout(), "SUBSCRIBE_ID=");
    let channel = printed(&script.stdout(), "CHANNEL=");
    let job = channel.trim_start_matches("dts.").to_string();

    // An early change, then a second boundary: the rewind below goes back to the second the
    // later changes were made in, after the early one.
    src.exec("INSERT INTO tdb.t VALUES (0, 'early')").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let changed_at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    src.exec("INSERT INTO tdb.u VALUES (1); INSERT INTO tdb.t VALUES (1, 'x'); UPDATE tdb.t SET v = 'y' WHERE id = 1")
        .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut lines = Vec::new();
    while row_events(&lines).len() < 3 {
        assert!(Instant::now() < deadline, "the table's changes did not arrive: {lines:#?}\n{}", server.log());
        lines.extend(tail_bus_group(&server, &bus, &job, &sub));
    }
    let rows = row_events(&lines);
    assert_eq!(rows.len(), 3, "only the subscribed table, each change once: {lines:#?}");
    assert!(matches!(rows[0].0.as_str(), "c" | "INSERT") && rows[0].1 == 0, "{rows:?}");
    assert!(matches!(rows[1].0.as_str(), "c" | "INSERT") && rows[1].1 == 1, "{rows:?}");
    assert!(matches!(rows[2].0.as_str(), "u" | "UPDATE") && rows[2].1 == 1, "{rows:?}");
    if let Bus::Kafka(_) = bus {
        let update = lines.iter().find(|l| l["kind"] == "update").expect("the update");
        assert_eq!(update["value"]["objectName"], "tdb.t", "{update}");
        assert_eq!(update["value"]["source"]["sourceType"], "MySQL", "{update}");
    } else {
        let update = lines.iter().find(|l| l["kind"] == "update").expect("the update");
        assert_eq!(update["value"]["after"], json!({"id": 1, "v": "y"}));
        assert!(rows.iter().all(|r| r.2.ends_with(".tdb.t")), "{rows:?}");
    }

    // ModifySubscribeConsumeTime rewinds the default group to the later changes' second: the
    // group reads those changes (the same messages) again, and not the early one.
    std::fs::write(&phase, format!("rewind {changed_at}")).expect("phase file");
    script.wait_line("REWOUND", Duration::from_secs(60), &server).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut again = Vec::new();
    while row_events(&again).len() < 2 {
        assert!(Instant::now() < deadline, "the rewound group read nothing again: {again:#?}\n{}", server.log());
        again.extend(tail_bus_group(&server, &bus, &job, &sub));
    }
    assert_eq!(row_events(&again), rows[1..], "the later changes, read again, and nothing earlier");
    let ids = |lines: &[Value]| -> Vec<String> {
        lines.iter().filter(|l| l["kind"] == "insert" || l["kind"] == "update").map(|l| l["id"].to_string()).collect()
    };
    assert_eq!(ids(&again), ids(&lines)[1..], "the same messages");
    if let Bus::Kafka(broker) = &bus {
        assert!(kafka_topics(broker).contains(&format!("dts.{job}")), "the subscription's topic is listed");
    }
    std::fs::write(&phase, "stop").expect("phase file");
    let stdout = script.finish(&server).await;
    assert!(stdout.lines().any(|l| l.trim() == "STOPPED"), "{stdout}");
    bus.gone(&job, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tencent_sdk_activates_rewinds_and_deletes_a_subscription_whose_table_changes_reach_a_nats_consumer_group()
{
    tencent_subscription(Bus::Nats(NatsServer::start())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tencent_sdk_activates_rewinds_and_deletes_a_subscription_published_to_kafka_as_alibaba_avro() {
    let broker = tokio::task::spawn_blocking(KafkaBroker::start).await.expect("start the Kafka broker");
    tencent_subscription(Bus::Kafka(broker)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_outage_is_retried_and_shown_until_the_bus_returns_and_nothing_is_lost() {
    let (src, python) = tokio::join!(MariaDb::start(), python());
    let mut nats = NatsServer::start();
    let config = format!(
        "{}\n[instances.cdb-src]\nengine = \"mariadb\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"root\"\n",
        format_args!("[change_bus]\nurl = \"{}\"\nheartbeat_secs = 3600\n", nats.url()),
        src.port()
    );
    let server = DtsServer::start(
        Path::new(env!("CARGO_BIN_EXE_dts")),
        DtsServerOptions { config_toml: Some(config), ..Default::default() },
    )
    .await;
    src.exec("CREATE DATABASE odb; CREATE TABLE odb.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB").await;
    let env = api_env(&server, &[("INSTANCE_ID", "cdb-src"), ("DB_NAME", "odb")]);
    let stdout = sdk_script::run_script(&python, "subscribe_start.py", &env, &server).await;
    let sub = printed(&stdout, "SUBSCRIBE_ID=");
    let job = printed(&stdout, "CHANNEL=").trim_start_matches("dts.").to_string();
    let nats_url = nats.url();
    let tail = |server: &DtsServer| {
        let args = ["subscribe", "tail", &job, "--group", &sub, "--bus", &nats_url, "--idle-exit", "3"];
        let out = server.cli_ok(&args);
        out.lines().map(|l| serde_json::from_str::<Value>(l).expect("JSON line")).collect::<Vec<_>>()
    };

    src.exec("INSERT INTO odb.t VALUES (1, 1)").await;
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while row_events(&lines).is_empty() {
        assert!(Instant::now() < deadline, "the first row did not arrive\n{}", server.log());
        lines.extend(tail(&server));
    }

    // The bus goes away; the source keeps changing; the job shows its retries.
    nats.kill();
    for id in 2..=20 {
        src.exec(&format!("INSERT INTO odb.t VALUES ({id}, {id})")).await;
    }
    let retrying = server.wait_job(&job, "a retry state", |j| !j["Detail"]["RetryState"].is_null()).await;
    assert_eq!(retrying["Status"], 7, "a bus outage does not fail the job: {retrying}");
    nats.restart();
    server.wait_job(&job, "the retries to end", |j| j["Detail"]["RetryState"].is_null()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while row_events(&lines).len() < 20 {
        assert!(Instant::now() < deadline, "rows missing after the bus returned: {lines:#?}\n{}", server.log());
        lines.extend(tail(&server));
    }
    let ids: Vec<i64> = row_events(&lines).iter().map(|r| r.1).collect();
    assert_eq!(ids, (1..=20).collect::<Vec<_>>(), "every row once, in order");
}
