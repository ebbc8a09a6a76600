//! Throwaway Redis servers (`redis-server --port P --save '' --appendonly no`, a temp `--dir`)
//! on free loopback ports, killed and removed on drop, with a small blocking client for tests;
//! and throwaway Redis Clusters of such servers (`redis-cli --cluster create`), with a client
//! that sends each command to the master of its key's slot and a snapshot of the whole cluster.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::port::free_port;
use crate::process::{ServerProcess, Starting, find_binary};

/// A running throwaway Redis server.
pub struct RedisServer {
    /// First: killed before its directory goes.
    process: ServerProcess,
    dir: tempfile::TempDir,
    port: u16,
    extra: Vec<String>,
    /// The TLS port and the throwaway CA of a server started with [`RedisServer::start_tls`].
    tls: Option<(u16, crate::tls::TlsFiles)>,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra `--name value` arguments (e.g. `["--repl-backlog-size", "16kb"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = tempfile::Builder::new().prefix("dts-redis-").tempdir().expect("tempdir");
        Self::start_in(dir, extra.iter().map(|s| s.to_string()).collect(), None)
    }

    /// Starts a server that also speaks TLS, on a port of its own ([`Self::tls_port`]), with a
    /// certificate for 127.0.0.1 from a throwaway CA ([`Self::tls_files`]); clients need no
    /// certificate of their own. The plain port stays open for the test's own client.
    pub fn start_tls(extra: &[&str]) -> RedisServer {
        let dir = tempfile::Builder::new().prefix("dts-redis-").tempdir().expect("tempdir");
        let files = crate::tls::TlsFiles::generate(&dir.path().join("tls"));
        let tls_port = free_port();
        let mut args: Vec<String> =
            vec!["--tls-port".into(), tls_port.to_string(), "--tls-auth-clients".into(), "no".into()];
        for (flag, path) in
            [("--tls-cert-file", &files.cert), ("--tls-key-file", &files.key), ("--tls-ca-cert-file", &files.ca)]
        {
            args.extend([flag.to_string(), path.display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start_in(dir, args, Some((tls_port, files)))
    }

    fn start_in(dir: tempfile::TempDir, extra: Vec<String>, tls: Option<(u16, crate::tls::TlsFiles)>) -> RedisServer {
        let mut server = RedisServer { process: ServerProcess::default(), dir, port: free_port(), extra, tls };
        server.spawn();
        server
    }

    /// The TLS port of a server started with [`Self::start_tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|(port, _)| *port)
    }

    /// The CA and certificate files of a server started with [`Self::start_tls`].
    pub fn tls_files(&self) -> Option<&crate::tls::TlsFiles> {
        self.tls.as_ref().map(|(_, files)| files)
    }

    fn spawn(&mut self) {
        let child = Command::new(find_binary("redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--logfile", "redis.log"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        self.process.started(child);
        let start =
            Starting::new("redis-server", self.port, &self.dir.path().join("redis.log"), Duration::from_secs(30));
        let port = self.port;
        self.process.wait_ready(&start, Duration::from_millis(30), || {
            RedisClient::connect(port).is_ok_and(|mut c| {
                c.cmd(&["PING"]).is_ok_and(|r| r == Resp::Status("PONG".into()) || r.is_auth_required())
            })
        });
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory the server keeps its files in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client connection.
    pub fn client(&self) -> RedisClient {
        RedisClient::connect(self.port).expect("connect to the test redis-server")
    }

    /// Kills the server (like a crash).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same port and directory (after [`kill`](Self::kill) or a SHUTDOWN).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

/// A reply, as tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// `-NOAUTH`: the server wants a password first (it is up).
    pub fn is_auth_required(&self) -> bool {
        matches!(self, Resp::Error(e) if e.starts_with("NOAUTH"))
    }

    pub fn int(&self) -> i64 {
        match self {
            Resp::Int(i) => *i,
            Resp::Bulk(Some(b)) => String::from_utf8_lossy(b).parse().unwrap_or(i64::MIN),
            other => panic!("not an integer: {other:?}"),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Resp::Status(s) | Resp::Error(s) => s.clone(),
            Resp::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Resp::Bulk(None) => String::new(),
            other => panic!("not text: {other:?}"),
        }
    }

    pub fn list(&self) -> Vec<Resp> {
        match self {
            Resp::Array(Some(v)) => v.clone(),
            other => panic!("not an array: {other:?}"),
        }
    }
}

/// A blocking RESP client for tests.
pub struct RedisClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RedisClient {
    pub fn connect(port: u16) -> std::io::Result<RedisClient> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.set_nodelay(true)?;
        Ok(RedisClient { reader: BufReader::new(s.try_clone()?), writer: s })
    }

    /// Sends a command and reads its reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<Resp> {
        self.send(args)?;
        self.read()
    }

    /// Sends a command, panicking on an error reply.
    pub fn run<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Resp {
        let r = self.cmd(args).expect("redis command");
        if let Resp::Error(e) = &r {
            panic!("{} failed: {e}", String::from_utf8_lossy(args[0].as_ref()));
        }
        r
    }

    /// Sends many commands and reads all replies (errors panic).
    pub fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) {
        let mut buf = Vec::new();
        for c in commands {
            encode(&mut buf, c);
        }
        self.writer.write_all(&buf).expect("write");
        for _ in commands {
            if let Resp::Error(e) = self.read().expect("read") {
                panic!("pipelined command failed: {e}");
            }
        }
    }

    fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        encode(&mut buf, args);
        self.writer.write_all(&buf)
    }

    fn read(&mut self) -> std::io::Result<Resp> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(1.min(line.len()));
        Ok(match kind {
            "+" => Resp::Status(rest.into()),
            "-" => Resp::Error(rest.into()),
            ":" => Resp::Int(rest.parse().unwrap_or(0)),
            "$" => {
                let n: i64 = rest.parse().unwrap_or(-1);
                if n < 0 {
                    Resp::Bulk(None)
                } else {
                    let mut b = vec![0u8; n as usize + 2];
                    self.reader.read_exact(&mut b)?;
                    b.truncate(n as usize);
                    Resp::Bulk(Some(b))
                }
            }
            "*" => {
                let n: i64 = rest.parse().unwrap_or(-1);
                if n < 0 {
                    Resp::Array(None)
                } else {
                    let mut v = Vec::new();
                    for _ in 0..n {
                        v.push(self.read()?);
                    }
                    Resp::Array(Some(v))
                }
            }
            _ => return Err(std::io::Error::other(format!("bad reply line {line:?}"))),
        })
    }

    /// `INFO section` field.
    pub fn info_field(&mut self, section: &str, field: &str) -> Option<String> {
        let text = self.run(&["INFO", section]).text();
        text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
    }

    /// Every key of the selected database with its TYPE, a digest of its content (elements in
    /// a canonical order, so encodings do not matter) and whether it has a TTL, sorted by key:
    /// what two servers must agree on after a migration.
    pub fn snapshot(&mut self, db: u32) -> Vec<(String, String, u64, bool)> {
        self.run(&["SELECT".to_string(), db.to_string()]);
        let mut keys = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let r = self.run(&["SCAN", &cursor, "COUNT", "1000"]).list();
            cursor = r[0].text();
            for k in r[1].list() {
                if let Resp::Bulk(Some(k)) = k
                    && !k.starts_with(b"dts:applied-offset:")
                {
                    keys.push(k);
                }
            }
            if cursor == "0" {
                break;
            }
        }
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let t = self.run(&[&b"TYPE"[..], &k]).text();
                let content = self.content(&k, &t);
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&content, &mut h);
                let ttl = self.run(&[&b"PTTL"[..], &k]).int() >= 0;
                (String::from_utf8_lossy(&k).into_owned(), t, std::hash::Hasher::finish(&h), ttl)
            })
            .collect()
    }

    /// A key's value in a canonical form.
    fn content(&mut self, k: &[u8], kind: &str) -> Vec<Vec<u8>> {
        let flat = |r: Resp| -> Vec<Vec<u8>> {
            r.list()
                .into_iter()
                .map(|x| match x {
                    Resp::Bulk(Some(b)) => b,
                    other => format!("{other:?}").into_bytes(),
                })
                .collect()
        };
        match kind {
            "string" => vec![self.run(&[&b"GET"[..], k]).text().into_bytes()],
            "list" => flat(self.run(&[&b"LRANGE"[..], k, b"0", b"-1"])),
            "set" => {
                let mut v = flat(self.run(&[&b"SMEMBERS"[..], k]));
                v.sort();
                v
            }
            "zset" => flat(self.run(&[&b"ZRANGE"[..], k, b"0", b"-1", b"WITHSCORES"])),
            "hash" => {
                let v = flat(self.run(&[&b"HGETALL"[..], k]));
                let mut pairs: Vec<Vec<u8>> = v.chunks(2).map(|p| p.concat()).collect();
                pairs.sort();
                pairs
            }
            "stream" => {
                let mut v = vec![format!("{:?}", self.run(&[&b"XRANGE"[..], k, b"-", b"+"])).into_bytes()];
                // Groups by name, consumers, pending and last delivered id (`entries-read` and
                // `lag` are estimates a replica may compute differently).
                for g in self.run(&[&b"XINFO"[..], b"GROUPS", k]).list() {
                    let g = g.list();
                    for pair in g.chunks(2) {
                        let name = pair[0].text();
                        if ["name", "consumers", "pending", "last-delivered-id"].contains(&name.as_str()) {
                            v.push(format!("{name}={:?}", pair[1]).into_bytes());
                        }
                    }
                }
                v
            }
            _ => match self.run(&[&b"DUMP"[..], k]) {
                Resp::Bulk(Some(d)) => vec![d],
                _ => Vec::new(),
            },
        }
    }
}

fn encode<A: AsRef<[u8]>>(buf: &mut Vec<u8>, args: &[A]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

/// CRC16/XMODEM slot of a key (its `{hash tag}` when it has one), as Redis Cluster computes it.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let mut crc: u16 = 0;
    for &b in tagged.unwrap_or(key) {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

/// A throwaway Redis Cluster on loopback: `masters` masters (and one replica each when asked),
/// every slot assigned, `cluster_state:ok` on every node; killed on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// A cluster of `masters` masters, no replicas.
    pub fn start(masters: usize) -> RedisCluster {
        Self::create(masters, 0)
    }

    /// A cluster of `masters` masters with one replica each (for failovers).
    pub fn start_with_replicas(masters: usize) -> RedisCluster {
        Self::create(masters, 1)
    }

    fn create(masters: usize, replicas: usize) -> RedisCluster {
        let count = masters * (1 + replicas);
        let buses: Vec<u16> = (0..count).map(|_| free_port()).collect();
        let nodes: Vec<RedisServer> = buses
            .iter()
            .map(|bus| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus.to_string(),
                    "--cluster-node-timeout",
                    "2000",
                ])
            })
            .collect();
        if masters >= 3 {
            let mut cli = Command::new(find_binary("redis-server").with_file_name("redis-cli"));
            cli.arg("--cluster").arg("create");
            for n in &nodes {
                cli.arg(format!("127.0.0.1:{}", n.port()));
            }
            cli.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
            let out = cli.output().expect("run redis-cli --cluster create");
            assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        } else {
            // redis-cli wants 3 masters: assign the slots and introduce the nodes by hand.
            assert_eq!(replicas, 0, "replicas need 3 masters or more");
            for (i, n) in nodes.iter().enumerate() {
                let (lo, hi) = (16384 * i / masters, 16384 * (i + 1) / masters - 1);
                n.client().run(&["CLUSTER".to_string(), "ADDSLOTSRANGE".into(), lo.to_string(), hi.to_string()]);
                n.client().run(&["CLUSTER".to_string(), "SET-CONFIG-EPOCH".into(), (i + 1).to_string()]);
            }
            for (n, bus) in nodes.iter().zip(&buses).skip(1) {
                nodes[0].client().run(&[
                    "CLUSTER".to_string(),
                    "MEET".into(),
                    "127.0.0.1".into(),
                    n.port().to_string(),
                    bus.to_string(),
                ]);
            }
        }
        let cluster = RedisCluster { nodes };
        cluster.wait_healthy();
        cluster
    }

    /// Waits until every node says `cluster_state:ok`, knows every other node, and every
    /// replica's link to its master is up.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let healthy = self.nodes.iter().all(|n| {
                let Ok(mut c) = RedisClient::connect(n.port()) else { return false };
                let ok = c.cmd(&["CLUSTER", "INFO"]).is_ok_and(|r| r.text().contains("cluster_state:ok"));
                let known = c
                    .cmd(&["CLUSTER", "NODES"])
                    .is_ok_and(|r| r.text().lines().filter(|l| !l.contains("fail")).count() == self.nodes.len());
                let role = c.info_field("replication", "role").unwrap_or_default();
                let linked =
                    role == "master" || c.info_field("replication", "master_link_status").is_some_and(|s| s == "up");
                ok && known && linked
            });
            if healthy {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not become healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first node's port (where a job is pointed at).
    pub fn port(&self) -> u16 {
        self.nodes[0].port()
    }

    /// Every node's port.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// A client of node `i`.
    pub fn client(&self, i: usize) -> RedisClient {
        self.nodes[i].client()
    }

    /// The masters now, as `(port, first slot)`, in slot order.
    pub fn masters(&self) -> Vec<(u16, u16)> {
        let text = self.any_client().run(&["CLUSTER", "NODES"]).text();
        let mut masters: Vec<(u16, u16)> = text
            .lines()
            .filter(|l| l.contains("master") && !l.contains("fail"))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let port = f[1].split('@').next()?.rsplit_once(':')?.1.parse().ok()?;
                let first = f.get(8)?.split('-').next()?.parse().ok()?;
                Some((port, first))
            })
            .collect();
        masters.sort_by_key(|m| m.1);
        masters
    }

    fn any_client(&self) -> RedisClient {
        self.nodes.iter().find_map(|n| RedisClient::connect(n.port()).ok()).expect("a node of the cluster answers")
    }

    /// A client that sends each command to the master of its first key's slot.
    pub fn cluster_client(&self) -> ClusterClient {
        ClusterClient { seeds: self.ports(), conns: Vec::new(), slots: Vec::new() }
    }

    /// A client of the master that serves `key` (for transactions on one slot).
    pub fn client_for(&self, key: &str) -> RedisClient {
        let port = self.cluster_client().port_of(key.as_bytes());
        RedisClient::connect(port).expect("connect to the slot's master")
    }

    /// Every key of the cluster, as [`RedisClient::snapshot`] gives them, sorted by key.
    pub fn snapshot(&self) -> Vec<(String, String, u64, bool)> {
        let mut all = Vec::new();
        for (port, _) in self.masters() {
            all.extend(RedisClient::connect(port).expect("connect to a master").snapshot(0));
        }
        all.sort();
        all
    }

    /// Keys on every master together.
    pub fn dbsize(&self) -> i64 {
        self.masters().iter().map(|(p, _)| RedisClient::connect(*p).expect("master").run(&["DBSIZE"]).int()).sum()
    }

    /// Starts moving `slot` to the master on `to` (`IMPORTING`/`MIGRATING`: its owner answers
    /// `ASK` for keys it does not hold); with `finish`, moves its keys (`MIGRATE`) and gives the
    /// slot to `to` on every master (then the old owner answers `MOVED`).
    pub fn migrate_slot(&self, slot: u16, to: u16, finish: bool) {
        let from = self.cluster_client().port_of_slot(slot);
        let id = |port: u16| RedisClient::connect(port).expect("node").run(&["CLUSTER", "MYID"]).text();
        let (from_id, to_id) = (id(from), id(to));
        let slot_s = slot.to_string();
        let mut src = RedisClient::connect(from).expect("owner");
        let mut dst = RedisClient::connect(to).expect("target");
        dst.run(&["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &from_id]);
        src.run(&["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &to_id]);
        if !finish {
            return;
        }
        loop {
            let keys = src.run(&["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"]).list();
            if keys.is_empty() {
                break;
            }
            let mut cmd: Vec<Vec<u8>> = ["MIGRATE", "127.0.0.1", &to.to_string(), "", "0", "5000", "KEYS"]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect();
            cmd.extend(keys.into_iter().map(|k| match k {
                Resp::Bulk(Some(k)) => k,
                other => panic!("a key: {other:?}"),
            }));
            src.run(&cmd);
        }
        for (port, _) in self.masters() {
            RedisClient::connect(port).expect("master").run(&["CLUSTER", "SETSLOT", &slot_s, "NODE", &to_id]);
        }
        self.wait_healthy();
    }

    /// A manual failover of the master serving `slot` (`CLUSTER FAILOVER` on its replica);
    /// returns the new master's port once the cluster is healthy again.
    pub fn failover(&self, slot: u16) -> u16 {
        let text = self.any_client().run(&["CLUSTER", "NODES"]).text();
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        let master = lines
            .iter()
            .find(|f| {
                f[2].contains("master")
                    && f[8..].iter().any(|r| {
                        let mut p = r.split('-').filter_map(|x| x.parse::<u16>().ok());
                        let a = p.next().unwrap_or(u16::MAX);
                        let b = p.next().unwrap_or(a);
                        a <= slot && slot <= b
                    })
            })
            .expect("the slot's master");
        let replica = lines.iter().find(|f| f[3] == master[0]).expect("the master has a replica");
        let port: u16 = replica[1].split('@').next().and_then(|a| a.rsplit_once(':')).unwrap().1.parse().unwrap();
        RedisClient::connect(port).expect("replica").run(&["CLUSTER", "FAILOVER"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while RedisClient::connect(port).ok().and_then(|mut c| c.info_field("replication", "role")).as_deref()
            != Some("master")
        {
            assert!(Instant::now() < deadline, "the failover did not happen");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_healthy();
        port
    }
}

/// A blocking client of a cluster: each command to the master of its first key's slot (the
/// slot computed here, its master from `CLUSTER SLOTS`, following `MOVED`).
pub struct ClusterClient {
    seeds: Vec<u16>,
    conns: Vec<(u16, RedisClient)>,
    /// Slot → port of its master (empty until first asked).
    slots: Vec<u16>,
}

impl ClusterClient {
    fn conn(&mut self, port: u16) -> &mut RedisClient {
        if let Some(i) = self.conns.iter().position(|(p, _)| *p == port) {
            return &mut self.conns[i].1;
        }
        self.conns.push((port, RedisClient::connect(port).expect("connect to a cluster node")));
        &mut self.conns.last_mut().expect("pushed").1
    }

    /// The port of the master serving `key` (from `CLUSTER SLOTS`, updated by `MOVED`).
    pub fn port_of(&mut self, key: &[u8]) -> u16 {
        if self.slots.is_empty() {
            let seeds = self.seeds.clone();
            for seed in seeds {
                let Ok(mut c) = RedisClient::connect(seed) else { continue };
                let Ok(Resp::Array(Some(ranges))) = c.cmd(&["CLUSTER", "SLOTS"]) else { continue };
                self.slots = vec![0; 16384];
                for range in ranges {
                    let r = range.list();
                    let port = r[2].list()[1].int() as u16;
                    for s in r[0].int()..=r[1].int() {
                        self.slots[s as usize] = port;
                    }
                }
                break;
            }
        }
        let port = self.slots.get(key_slot(key) as usize).copied().unwrap_or(0);
        assert!(port != 0, "no node serves the key's slot");
        port
    }

    /// The port of the master serving `slot` (from `CLUSTER SLOTS`, asked now).
    pub fn port_of_slot(&mut self, slot: u16) -> u16 {
        self.slots.clear();
        let key = (0..).map(|i| format!("k{i}")).find(|k| key_slot(k.as_bytes()) == slot).expect("a key of the slot");
        self.port_of(key.as_bytes())
    }

    /// Runs a command at the master of `args[1]`'s slot, following `MOVED`; panics on any other
    /// error reply.
    pub fn run<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Resp {
        let mut port = self.port_of(args[1].as_ref());
        for _ in 0..10 {
            let r = self.conn(port).cmd(args).expect("cluster command");
            match &r {
                Resp::Error(e) if e.starts_with("MOVED") => {
                    port = e.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("MOVED port");
                    let slot = key_slot(args[1].as_ref()) as usize;
                    self.slots[slot] = port;
                }
                Resp::Error(e) => panic!("{} failed: {e}", String::from_utf8_lossy(args[0].as_ref())),
                _ => return r,
            }
        }
        panic!("redirected too often");
    }
}
