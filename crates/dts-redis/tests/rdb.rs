//! The RDB reader against a real `redis-server` (7.0): a throwaway server is filled with every
//! type in compact and big encodings, `SAVE`d, and its `dump.rdb` read back; every key must
//! come out with its kind and TTL, RESTORE to an identical DUMP, decode to what the server
//! replies, and big keys must arrive in bounded chunks with every element. Corrupted and
//! truncated copies of the file must be errors, never panics.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dts_redis::rdb::{Elements, KeyRecord, RdbError, RdbEvent, RdbLimits, RdbReader, ValueKind, parse_restore_payload};

const FUNCTION_CODE: &str = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return 1 end)";

/// A RESP reply.
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    fn bulk(self) -> Vec<u8> {
        match self {
            Resp::Bulk(Some(b)) => b,
            other => panic!("expected a bulk string, got {other:?}"),
        }
    }

    fn int(self) -> i64 {
        match self {
            Resp::Int(i) => i,
            other => panic!("expected an integer, got {other:?}"),
        }
    }

    fn bulks(self) -> Vec<Vec<u8>> {
        match self {
            Resp::Array(Some(items)) => items.into_iter().map(Resp::bulk).collect(),
            other => panic!("expected an array, got {other:?}"),
        }
    }
}

/// A minimal blocking RESP client, enough for the test's own commands.
struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn { r: BufReader::new(s) })
    }

    fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.r.get_mut().write_all(&out).expect("write to redis");
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Resp {
        self.send(args);
        self.read()
    }

    /// A command that must not fail.
    fn ok(&mut self, args: &[&[u8]]) -> Resp {
        match self.cmd(args) {
            Resp::Error(e) => panic!("{:?} failed: {e}", String::from_utf8_lossy(args[0])),
            r => r,
        }
    }

    fn strs(&mut self, args: &[&str]) -> Resp {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.ok(&a)
    }

    /// A command with many arguments built from strings.
    fn owned(&mut self, args: Vec<String>) -> Resp {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.ok(&a)
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("read from redis");
        assert!(l.ends_with("\r\n"), "bad RESP line {l:?}");
        l.truncate(l.len() - 2);
        l
    }

    fn read(&mut self) -> Resp {
        let l = self.line();
        let (kind, rest) = l.split_at(1);
        match kind {
            "+" => Resp::Simple(rest.to_owned()),
            "-" => Resp::Error(rest.to_owned()),
            ":" => Resp::Int(rest.parse().expect("integer reply")),
            "$" => {
                let n: i64 = rest.parse().expect("bulk length");
                if n < 0 {
                    return Resp::Bulk(None);
                }
                let mut b = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut b).expect("read bulk");
                b.truncate(n as usize);
                Resp::Bulk(Some(b))
            }
            "*" => {
                let n: i64 = rest.parse().expect("array length");
                if n < 0 {
                    return Resp::Array(None);
                }
                Resp::Array(Some((0..n).map(|_| self.read()).collect()))
            }
            _ => panic!("unknown RESP reply {l:?}"),
        }
    }
}

/// A throwaway redis-server on a free loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start() -> Server {
        let port = dts_test_support::free_port();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let dir = std::env::temp_dir().join(format!("dts-redis-rdb-{}-{port}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (is it installed?)");
        let server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = Conn::open(port)
                && c.cmd(&[b"PING"]) == Resp::Simple("PONG".into())
            {
                return server;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn conn(&self) -> Conn {
        Conn::open(self.port).expect("connect to redis-server")
    }

    fn dump_path(&self) -> PathBuf {
        self.dir.join("dump.rdb")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const BIG_LIST: usize = 10_000;
const BIG_ZSET: usize = 20_000;
const BIG_HASH: usize = 20_000;
const BIG_SET: usize = 20_000;

/// A poorly compressible suffix, so that big values stay big under LZF.
fn scramble(i: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    x ^= x >> 29;
    x.wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Fills db 0 and db 1 with every type, compact and big, and saves.
fn fill_and_save(server: &Server) {
    let mut c = server.conn();
    c.strs(&["SET", "str:plain", "hello world"]);
    c.strs(&["SET", "str:int", "12345"]);
    c.strs(&["SET", "str:neg", "-7"]);
    c.strs(&["SET", "str:wide", "9876543210"]);
    c.strs(&["SET", "str:empty", ""]);
    c.owned(vec!["SET".into(), "str:lzf".into(), "abcdefghij".repeat(10_000)]);
    c.ok(&[b"SET", b"str:binary", &[0u8, 255, 1, 254, b'\r', b'\n']]);
    c.strs(&["RPUSH", "list:small", "a", "b", "c", "1", "-2", "300000"]);
    let mut args: Vec<String> = vec!["RPUSH".into(), "list:big".into()];
    args.extend((0..BIG_LIST).map(|i| format!("item:{i}:{:016x}", scramble(i as u64))));
    c.owned(args);
    c.strs(&["RPUSH", "list:plain", &"x".repeat(20_000), "small"]);
    let mut args: Vec<String> = vec!["SADD".into(), "set:ints".into()];
    args.extend((0..100).map(|i| (i * 7 - 50).to_string()));
    c.owned(args);
    c.strs(&["SADD", "set:strs", "alpha", "beta", "gamma"]);
    let mut args: Vec<String> = vec!["SADD".into(), "set:big".into()];
    args.extend((0..BIG_SET).map(|i| format!("member-{i}")));
    c.owned(args);
    c.strs(&["ZADD", "zset:small", "1", "a", "2.5", "b", "-3", "c", "+inf", "top", "-inf", "bottom"]);
    let mut args: Vec<String> = vec!["ZADD".into(), "zset:big".into()];
    for i in 0..BIG_ZSET {
        args.push(format!("{}", i as f64 / 8.0));
        args.push(format!("zmember:{i}"));
    }
    c.owned(args);
    c.strs(&["HSET", "hash:small", "f1", "v1", "f2", "22", "f3", ""]);
    let mut args: Vec<String> = vec!["HSET".into(), "hash:big".into()];
    for i in 0..BIG_HASH {
        args.push(format!("field:{i}"));
        args.push(format!("value:{i}"));
    }
    c.owned(args);
    c.strs(&["PEXPIRE", "hash:big", "86400000"]);
    for i in 0..20 {
        c.strs(&["XADD", "stream", "*", "n", &i.to_string(), "text", "some payload"]);
    }
    c.strs(&["XGROUP", "CREATE", "stream", "g1", "0"]);
    c.strs(&["XGROUP", "CREATE", "stream", "g2", "0"]);
    c.strs(&["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "5", "STREAMS", "stream", ">"]);
    c.strs(&["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "3", "STREAMS", "stream", ">"]);
    c.strs(&["XREADGROUP", "GROUP", "g2", "carol", "COUNT", "2", "STREAMS", "stream", ">"]);
    c.strs(&["SET", "ttl:ms", "v", "PX", "5000000"]);
    c.strs(&["SET", "ttl:s", "v", "EX", "7200"]);
    c.strs(&["FUNCTION", "LOAD", FUNCTION_CODE]);
    c.strs(&["SELECT", "1"]);
    c.strs(&["SET", "db1:key", "in db one", "EX", "3600"]);
    c.strs(&["HSET", "db1:hash", "a", "1"]);
    c.strs(&["SADD", "db1:set", "x", "y"]);
    c.strs(&["SELECT", "0"]);
    c.strs(&["SAVE"]);
}

/// Every key of a database: its TYPE, PEXPIRETIME and DUMP.
struct Original {
    kind: String,
    expire_at_ms: Option<i64>,
    dump: Vec<u8>,
}

fn originals(c: &mut Conn, db: u32) -> BTreeMap<Vec<u8>, Original> {
    c.strs(&["SELECT", &db.to_string()]);
    let mut out = BTreeMap::new();
    for key in c.strs(&["KEYS", "*"]).bulks() {
        let kind = match c.ok(&[b"TYPE", &key]) {
            Resp::Simple(s) => s,
            other => panic!("{other:?}"),
        };
        let t = c.ok(&[b"PEXPIRETIME", &key]).int();
        let dump = c.ok(&[b"DUMP", &key]).bulk();
        out.insert(key, Original { kind, expire_at_ms: (t >= 0).then_some(t), dump });
    }
    out
}

/// What the server replies for a key, in the element form.
fn server_elements(c: &mut Conn, key: &[u8], kind: &ValueKind) -> Elements {
    match kind {
        ValueKind::String => Elements::String(Bytes::from(c.ok(&[b"GET", key]).bulk())),
        ValueKind::List => {
            Elements::List(c.ok(&[b"LRANGE", key, b"0", b"-1"]).bulks().into_iter().map(Bytes::from).collect())
        }
        ValueKind::Set => {
            let mut v: Vec<Bytes> = c.ok(&[b"SMEMBERS", key]).bulks().into_iter().map(Bytes::from).collect();
            v.sort();
            Elements::Set(v)
        }
        ValueKind::SortedSet => {
            let flat = c.ok(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]).bulks();
            let mut v: Vec<(Bytes, f64)> = flat
                .chunks(2)
                .map(|p| (Bytes::from(p[0].clone()), String::from_utf8_lossy(&p[1]).parse::<f64>().expect("score")))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            Elements::SortedSet(v)
        }
        ValueKind::Hash => {
            let flat = c.ok(&[b"HGETALL", key]).bulks();
            let mut v: Vec<(Bytes, Bytes)> =
                flat.chunks(2).map(|p| (Bytes::from(p[0].clone()), Bytes::from(p[1].clone()))).collect();
            v.sort();
            Elements::Hash(v)
        }
        other => panic!("no element form for {other:?}"),
    }
}

/// Concatenates chunks into one, sorting the unordered kinds as `server_elements` does.
fn merged(chunks: Vec<Elements>, kind: &ValueKind) -> Elements {
    let mut out = match kind {
        ValueKind::String => {
            assert_eq!(chunks.len(), 1);
            return chunks.into_iter().next().unwrap_or(Elements::String(Bytes::new()));
        }
        ValueKind::List => Elements::List(Vec::new()),
        ValueKind::Set => Elements::Set(Vec::new()),
        ValueKind::SortedSet => Elements::SortedSet(Vec::new()),
        ValueKind::Hash => Elements::Hash(Vec::new()),
        other => panic!("no element form for {other:?}"),
    };
    for c in chunks {
        match (&mut out, c) {
            (Elements::List(a), Elements::List(b)) | (Elements::Set(a), Elements::Set(b)) => a.extend(b),
            (Elements::SortedSet(a), Elements::SortedSet(b)) => a.extend(b),
            (Elements::Hash(a), Elements::Hash(b)) => a.extend(b),
            (a, b) => panic!("chunk {b:?} does not belong to {a:?}"),
        }
    }
    match &mut out {
        Elements::Set(v) => v.sort(),
        Elements::SortedSet(v) => v.sort_by(|a, b| a.0.cmp(&b.0)),
        Elements::Hash(v) => v.sort(),
        _ => {}
    }
    out
}

/// A big key as read: kind, expiry, chunks.
type BigKey = (ValueKind, Option<i64>, Vec<Elements>);

/// Everything read from a file.
#[derive(Default)]
struct FileRead {
    version: u16,
    /// (db, key) → the record, for keys read whole.
    keys: BTreeMap<(u32, Vec<u8>), KeyRecord>,
    /// (db, key) → kind, expiry and chunks, for big keys.
    big: BTreeMap<(u32, Vec<u8>), BigKey>,
    functions: Vec<Bytes>,
    aux: BTreeMap<Vec<u8>, Vec<u8>>,
}

async fn read_file(path: &Path, limits: RdbLimits) -> Result<FileRead, RdbError> {
    let file = tokio::fs::File::open(path).await.map_err(RdbError::Io)?;
    let mut reader = RdbReader::new(tokio::io::BufReader::new(file), limits);
    let mut out = FileRead { version: reader.header().await?, ..FileRead::default() };
    let mut db = 0u32;
    let mut current: Option<(Vec<u8>, BigKey)> = None;
    while let Some(ev) = reader.next().await? {
        match ev {
            RdbEvent::Aux { key, value } => {
                out.aux.insert(key.to_vec(), value.to_vec());
            }
            RdbEvent::SelectDb(n) => db = n,
            RdbEvent::ResizeDb { .. } | RdbEvent::ModuleAux { .. } => {}
            RdbEvent::Key(k) => {
                assert!(current.is_none(), "a key inside a big key");
                out.keys.insert((db, k.key.to_vec()), k);
            }
            RdbEvent::BigKeyStart { key, kind, expire_at_ms } => {
                assert!(current.is_none(), "a big key inside a big key");
                current = Some((key.to_vec(), (kind, expire_at_ms, Vec::new())));
            }
            RdbEvent::BigKeyChunk(c) => current.as_mut().expect("a chunk outside a big key").1.2.push(c),
            RdbEvent::BigKeyEnd => {
                let (key, big) = current.take().expect("an end outside a big key");
                out.big.insert((db, key), big);
            }
            RdbEvent::Function(code) => out.functions.push(code),
        }
    }
    assert!(current.is_none(), "the file ended inside a big key");
    Ok(out)
}

fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

#[tokio::test]
async fn every_key_of_a_real_dump_restores_to_an_identical_dump_and_decodes_to_its_values() {
    let server = Server::start();
    fill_and_save(&server);
    let mut c = server.conn();
    let want: BTreeMap<u32, _> = [(0, originals(&mut c, 0)), (1, originals(&mut c, 1))].into();

    // Big enough that every key arrives whole.
    let limits = RdbLimits { restore_bytes: 64 << 20, ..RdbLimits::default() };
    let read = read_file(&server.dump_path(), limits).await.expect("read the dump");
    assert_eq!(read.version, 10);
    assert!(read.big.is_empty(), "no big keys expected with a 64 MiB restore limit");
    assert_eq!(read.aux.get(&b"redis-ver"[..]).map(|v| show(v)).as_deref(), Some("7.0.15"));
    assert_eq!(read.functions, vec![Bytes::from(FUNCTION_CODE)]);

    let seen: BTreeSet<(u32, Vec<u8>)> = read.keys.keys().cloned().collect();
    let expected: BTreeSet<(u32, Vec<u8>)> =
        want.iter().flat_map(|(db, keys)| keys.keys().map(move |k| (*db, k.clone()))).collect();
    assert_eq!(seen, expected);

    let mut types_seen = BTreeSet::new();
    for ((db, key), rec) in &read.keys {
        let orig = &want[db][key];
        let name = show(key);
        types_seen.insert(rec.rdb_type);
        assert_eq!(rec.kind.type_name(), orig.kind, "{name}");
        assert_eq!(rec.expire_at_ms, orig.expire_at_ms, "{name}");

        // The payload built from the file is the server's own DUMP, byte for byte...
        let payload = rec.restore_payload(read.version);
        assert_eq!(payload.to_vec(), orig.dump, "{name}: payload differs from DUMP");
        let (t, encoded, v) = parse_restore_payload(&payload).expect("our payload parses");
        assert_eq!((t, &encoded, v), (rec.rdb_type, &rec.encoded, 10));
        // ...and RESTOREs into the same value: an identical DUMP, except for hashtable sets
        // and hashes, whose iteration order depends on the table's history (compared by
        // elements below).
        c.strs(&["SELECT", "15"]);
        let restored = [b"restored:".as_slice(), key].concat();
        c.ok(&[b"RESTORE", &restored, b"0", &payload]);
        let hashtable = matches!(rec.rdb_type, 2 | 4);
        if !hashtable {
            assert_eq!(c.ok(&[b"DUMP", &restored]).bulk(), orig.dump, "{name}: DUMP after RESTORE");
        }

        // The element form equals what the server replies.
        c.strs(&["SELECT", &db.to_string()]);
        if rec.kind == ValueKind::Stream {
            assert!(matches!(rec.elements(100), Err(RdbError::NeedsRestore { .. })));
            continue;
        }
        let chunks = rec.elements(100).expect("decode elements");
        assert!(chunks.iter().all(|ch| ch.len() <= 100), "{name}: chunk over 100");
        let decoded = merged(chunks, &rec.kind);
        assert_eq!(decoded, server_elements(&mut c, key, &rec.kind), "{name}");
        if hashtable {
            c.strs(&["SELECT", "15"]);
            assert_eq!(decoded, server_elements(&mut c, &restored, &rec.kind), "{name}: restored elements");
        }
    }
    // 0 string, 2 set (hashtable), 4 hash, 5 zset skiplist, 11 intset, 16 hash listpack,
    // 17 zset listpack, 18 quicklist 2, 19 stream: every encoding Redis 7.0 writes.
    assert_eq!(types_seen, [0, 2, 4, 5, 11, 16, 17, 18, 19].into());
    let stream = &read.keys[&(0, b"stream".to_vec())];
    assert_eq!(stream.kind, ValueKind::Stream);
    let lzf = &read.keys[&(0, b"str:lzf".to_vec())];
    assert!(lzf.encoded.len() < 10_000, "the 100 KB string is stored LZF-compressed");
}

#[tokio::test]
async fn big_keys_of_a_real_dump_arrive_in_bounded_chunks_with_every_element() {
    let server = Server::start();
    fill_and_save(&server);
    let mut c = server.conn();
    let hash_ttl = c.strs(&["PEXPIRETIME", "hash:big"]).int();

    let limits = RdbLimits { restore_bytes: 64 * 1024, chunk_elements: 500, ..RdbLimits::default() };
    let read = read_file(&server.dump_path(), limits).await.expect("read the dump");
    let big: BTreeSet<&[u8]> = read.big.keys().map(|(_, k)| k.as_slice()).collect();
    assert_eq!(big, [&b"hash:big"[..], b"list:big", b"set:big", b"zset:big"].into());
    // Small keys still arrive whole, strings too however long.
    for k in [&b"list:small"[..], b"set:ints", b"zset:small", b"hash:small", b"str:lzf", b"stream", b"list:plain"] {
        assert!(read.keys.contains_key(&(0, k.to_vec())), "{} not whole", show(k));
    }

    for ((db, key), (kind, exp, chunks)) in &read.big {
        let name = show(key);
        assert_eq!(*db, 0);
        assert!(chunks.iter().all(|ch| (1..=500).contains(&ch.len())), "{name}: chunk sizes");
        let expected_len = match kind {
            ValueKind::List => BIG_LIST,
            ValueKind::Set => BIG_SET,
            ValueKind::SortedSet => BIG_ZSET,
            ValueKind::Hash => BIG_HASH,
            other => panic!("{name}: unexpected big kind {other:?}"),
        };
        assert_eq!(chunks.iter().map(Elements::len).sum::<usize>(), expected_len, "{name}");
        if *kind == ValueKind::Hash {
            assert_eq!(*exp, Some(hash_ttl), "{name}: TTL");
        } else {
            assert_eq!(*exp, None, "{name}: TTL");
        }
        // A few values, in place.
        match (kind, &chunks[0], chunks.last()) {
            (ValueKind::List, Elements::List(first), Some(Elements::List(last))) => {
                assert_eq!(first[0], Bytes::from(format!("item:0:{:016x}", scramble(0))));
                let n = BIG_LIST as u64 - 1;
                assert_eq!(last.last(), Some(&Bytes::from(format!("item:{n}:{:016x}", scramble(n)))));
            }
            (ValueKind::SortedSet, Elements::SortedSet(first), _) => {
                let (m, s) = &first[0];
                let i: usize = show(m).trim_start_matches("zmember:").parse().expect("member number");
                assert_eq!(*s, i as f64 / 8.0);
            }
            (ValueKind::Hash, Elements::Hash(first), _) => {
                let (f, v) = &first[0];
                assert_eq!(show(f).replace("field", "value"), show(v));
            }
            (ValueKind::Set, Elements::Set(first), _) => assert!(show(&first[0]).starts_with("member-")),
            (k, first, _) => panic!("{name}: {k:?} arrived as {first:?}"),
        }
        let all = merged(chunks.clone(), kind);
        assert_eq!(all, server_elements(&mut c, key, kind), "{name}: elements differ from the server's");
    }
}

#[tokio::test]
async fn a_flipped_byte_in_a_real_dump_is_an_error_and_never_a_panic() {
    let server = Server::start();
    fill_and_save(&server);
    let file = std::fs::read(server.dump_path()).expect("read dump.rdb");

    // A byte inside a string value: the structure stays valid, only the checksum can tell.
    let at = file.windows(11).position(|w| w == b"hello world").expect("the string is stored plain") + 3;
    let mut bad = file.clone();
    bad[at] ^= 0x20;
    let err = read_all(&bad, RdbLimits::default()).await.expect_err("a flipped byte must fail");
    assert!(matches!(err, RdbError::ChecksumMismatch { .. }), "{err}");

    // Any flipped byte anywhere: an error of some kind, no panic.
    let limits = RdbLimits { restore_bytes: 4096, chunk_elements: 100, ..RdbLimits::default() };
    let step = (file.len() / 300).max(1);
    for at in (0..file.len()).step_by(step) {
        let mut bad = file.clone();
        bad[at] ^= 0x55;
        assert!(read_all(&bad, limits).await.is_err(), "flipping byte {at} went unnoticed");
    }
    read_all(&file, limits).await.expect("the untouched file reads");
}

#[tokio::test]
async fn truncations_of_a_real_dump_are_errors_and_never_panics() {
    let server = Server::start();
    fill_and_save(&server);
    let file = std::fs::read(server.dump_path()).expect("read dump.rdb");
    let limits = RdbLimits { restore_bytes: 4096, chunk_elements: 100, ..RdbLimits::default() };
    let step = (file.len() / 200).max(1);
    let cuts = (0..file.len().min(2048)).chain((2048..file.len()).step_by(step));
    for cut in cuts {
        let err = read_all(&file[..cut], limits).await.expect_err("a truncated file must fail");
        assert!(matches!(err, RdbError::Truncated { .. }), "cut at {cut}: {err}");
    }
}

/// Reads a whole in-memory file, decoding every whole key's elements too.
async fn read_all(file: &[u8], limits: RdbLimits) -> Result<u64, RdbError> {
    let mut reader = RdbReader::new(file, limits);
    let mut events = 0u64;
    while let Some(ev) = reader.next().await? {
        if let RdbEvent::Key(k) = ev
            && k.kind != ValueKind::Stream
        {
            k.elements(100)?;
        }
        events += 1;
    }
    Ok(events)
}

/// Every event of a reader, to the end.
async fn all_events<R: tokio::io::AsyncBufRead + Unpin>(reader: R, limits: RdbLimits) -> Vec<RdbEvent> {
    let mut reader = RdbReader::new(reader, limits);
    let mut out = Vec::new();
    while let Some(ev) = reader.next().await.expect("read the dump") {
        out.push(ev);
    }
    out
}

#[tokio::test]
async fn reading_over_a_pipe_in_odd_pieces_gives_the_same_events_as_the_file() {
    use tokio::io::AsyncWriteExt;

    let server = Server::start();
    fill_and_save(&server);
    let file = std::fs::read(server.dump_path()).expect("read dump.rdb");
    let limits = RdbLimits { restore_bytes: 16 * 1024, chunk_elements: 333, ..RdbLimits::default() };
    let want = all_events(&file[..], limits).await;

    // A socket-like input: the bytes arrive in pieces of 1 to 97 bytes, with waits, and the
    // reader's buffer is smaller than most values.
    let (mut tx, rx) = tokio::io::duplex(64);
    let bytes = file.clone();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        let mut piece = 1;
        while at < bytes.len() {
            let end = (at + piece).min(bytes.len());
            tx.write_all(&bytes[at..end]).await.expect("write to the pipe");
            at = end;
            piece = piece % 97 + 1;
        }
        // Bytes after the RDB (as the replication stream that follows it) stay unread.
        tx.write_all(b"*1\r\n$4\r\nPING\r\n").await.expect("write the tail");
    });
    let mut reader = RdbReader::new(tokio::io::BufReader::with_capacity(13, rx), limits);
    let mut got = Vec::new();
    while let Some(ev) = reader.next().await.expect("read the dump over the pipe") {
        got.push(ev);
    }
    assert_eq!(reader.consumed(), file.len() as u64);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the events over the pipe differ from the events of the file");
    writer.await.expect("the writer task");
    let mut rest = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut reader.into_inner(), &mut rest).await.expect("read the tail");
    assert_eq!(rest, b"*1\r\n$4\r\nPING\r\n");
}
