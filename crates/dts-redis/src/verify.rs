//! The consistency check of a Redis job, per database: every source key (`SCAN`) compared with
//! the destination by type, value and TTL, pipelined on both sides; then every destination key
//! not on the source is extra. Values compare by their DUMP payload and, when the payloads
//! differ (encodings differ between servers), by their elements; a key with many elements is
//! compared in pages, never whole. A Redis Cluster on either side is read on every master, each
//! key where its slot lives (`side`).
//!
//! Live (replication running, `settle_window`): the two sides are read moments apart, so a key
//! changed meanwhile, created or deleted on the source (by a command or its TTL), may look
//! missing, extra or different without being so. No key is reported on one reading: every key
//! found missing, extra or different is held (with the source's state as it was read) and read
//! again on both sides after the window. Equal now (or gone from both): it was in flight, and is
//! dropped. Still different while the source did not change in the window: replication had the
//! whole window to apply whatever came before, so it is a real difference, reported. Still
//! different and the source changed again: still in flux, read again after another window; after
//! the last round it is reported as unsettled, never as missing, extra or different. The rounds
//! end early once no held key's source changed. "Changed" compares what the source holds, not
//! how it reads: a TTL counts down between two reads, so expiries compare as deadlines (read time
//! plus `PTTL`, within [`TTL_TOLERANCE_MS`]); a value compared in pages (no DUMP) compares by a
//! digest of its elements read in pages. The window must exceed the replication's lag: the
//! engine passes its `ready_lag_secs` plus margin for a job that is caught up.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hasher};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dts_core::{CompareOptions, Comparison, ConnectorError, DiffRow, MigrationPlan, TableDiff};

use crate::conn::{Conn, keyspace};
use crate::dbs::DbSelection;
use crate::error::{RedisError, Result};
use crate::resp::Reply;
use crate::side::Side;

/// Two TTLs closer than this are equal (they are read a few milliseconds apart).
pub const TTL_TOLERANCE_MS: i64 = 2_000;
/// Keys per SCAN page and pipeline.
const PAGE: usize = 500;
/// Above this many elements a value is compared in pages rather than by DUMP.
const BIG: i64 = 5_000;

fn err(what: &str) -> impl FnOnce(RedisError) -> ConnectorError + '_ {
    move |e| e.into_connector(what)
}

fn is_marker(key: &[u8]) -> bool {
    key.starts_with(b"dts:applied-offset:")
}

/// The selected databases that hold keys on either side, as `(number, "")`.
pub async fn databases(plan: &MigrationPlan) -> Result<Vec<(String, String)>, ConnectorError> {
    let dbs = DbSelection::of(plan)?;
    let mut source = Side::open(&plan.source).await.map_err(err("connecting to the source"))?;
    let mut dest = Side::open(plan.destination()?).await.map_err(err("connecting to the destination"))?;
    let mut all: Vec<u32> = Vec::new();
    for c in &mut source.conns {
        all.extend(keyspace(&c.info("keyspace").await.map_err(err("reading the source"))?).into_iter().map(|(d, _)| d));
    }
    for c in &mut dest.conns {
        all.extend(
            keyspace(&c.info("keyspace").await.map_err(err("reading the destination"))?).into_iter().map(|(d, _)| d),
        );
    }
    all.sort_unstable();
    all.dedup();
    Ok(dbs.among(all).into_iter().map(|d| (d.to_string(), String::new())).collect())
}

/// One key's state on one side.
#[derive(Debug, Clone, PartialEq)]
struct KeyState {
    kind: String,
    /// Milliseconds left, -1 without expiry, -2 absent.
    pttl: i64,
    /// The DUMP payload, for small values.
    dump: Option<Bytes>,
    len: i64,
    /// When `pttl` was read (just before it was asked).
    read_at: Instant,
    /// A value without `dump` (compared in pages): a digest of its elements, read only for a
    /// source key held for settling ([`big_digest`]).
    digest: Option<u64>,
}

impl KeyState {
    fn absent() -> KeyState {
        KeyState { kind: "none".into(), pttl: -2, dump: None, len: 0, read_at: Instant::now(), digest: None }
    }

    /// A value compared in pages, not by its DUMP payload.
    fn paged(&self) -> bool {
        self.dump.is_none() && len_command(&self.kind).is_some()
    }

    /// The source changed between this read and `now`: another type, value or expiry. Values
    /// compare by DUMP payload, or by length and element digest when paged (no digest: unknown,
    /// so changed). Expiries compare as deadlines, since a TTL counts down between two reads of
    /// an unchanged key: equal within `TTL_TOLERANCE_MS` (the two reads are each timed before
    /// their pipeline, which lasts milliseconds).
    fn changed_to(&self, now: &KeyState) -> bool {
        if self.kind != now.kind || self.len != now.len || self.dump != now.dump {
            return true;
        }
        if self.paged() && (self.digest.is_none() || self.digest != now.digest) {
            return true;
        }
        if (self.pttl < 0) != (now.pttl < 0) {
            return true;
        }
        let elapsed = now.read_at.saturating_duration_since(self.read_at).as_millis() as i64;
        self.pttl >= 0 && (self.pttl - elapsed - now.pttl).abs() > TTL_TOLERANCE_MS
    }
}

/// A key held for settling: why it differed when last read, the source as it was then, and
/// whether the source had changed since the read before.
struct Pending {
    why: String,
    source: KeyState,
    moving: bool,
}

/// [`states`] of keys held by the servers of a side.
async fn side_states(side: &mut Side, keys: &[Bytes]) -> Result<Vec<KeyState>> {
    let mut out: Vec<Option<KeyState>> = vec![None; keys.len()];
    for (node, positions) in side.groups(keys) {
        let subset: Vec<Bytes> = positions.iter().map(|&i| keys[i].clone()).collect();
        for (i, s) in positions.into_iter().zip(states(&mut side.conns[node], &subset).await?) {
            out[i] = Some(s);
        }
    }
    Ok(out.into_iter().map(|s| s.expect("every key read")).collect())
}

fn len_command(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "list" => "LLEN",
        "set" => "SCARD",
        "zset" => "ZCARD",
        "hash" => "HLEN",
        "stream" => "XLEN",
        _ => return None,
    })
}

/// TYPE, PTTL and length (or DUMP for small values) of `keys`.
async fn states(c: &mut Conn, keys: &[Bytes]) -> Result<Vec<KeyState>> {
    let mut cmds: Vec<Vec<Bytes>> = Vec::with_capacity(keys.len() * 2);
    for k in keys {
        cmds.push(vec![Bytes::from_static(b"TYPE"), k.clone()]);
        cmds.push(vec![Bytes::from_static(b"PTTL"), k.clone()]);
    }
    let read_at = Instant::now();
    let replies = c.pipeline(&cmds).await?;
    let mut out: Vec<KeyState> = replies
        .chunks(2)
        .map(|r| KeyState {
            kind: r[0].text().unwrap_or_default(),
            pttl: r[1].int().unwrap_or(-2),
            dump: None,
            len: 0,
            read_at,
            digest: None,
        })
        .collect();
    let mut lens = Vec::new();
    for (k, s) in keys.iter().zip(&out) {
        if let Some(cmd) = len_command(&s.kind) {
            lens.push(vec![Bytes::from_static(cmd.as_bytes()), k.clone()]);
        } else {
            lens.push(vec![Bytes::from_static(b"STRLEN"), k.clone()]);
        }
    }
    let lens = c.pipeline(&lens).await?;
    let mut dumps = Vec::new();
    let mut dump_at = Vec::new();
    for (i, (k, s)) in keys.iter().zip(out.iter_mut()).enumerate() {
        s.len = lens[i].int().unwrap_or(0);
        if s.kind != "none" && (s.kind == "string" || s.len <= BIG) {
            dumps.push(vec![Bytes::from_static(b"DUMP"), k.clone()]);
            dump_at.push(i);
        }
    }
    if !dumps.is_empty() {
        for (i, r) in dump_at.into_iter().zip(c.pipeline(&dumps).await?) {
            out[i].dump = r.bytes().cloned();
        }
    }
    Ok(out)
}

/// Why a key differs, if it does.
async fn differs(
    source: &mut Conn,
    dest: &mut Conn,
    key: &Bytes,
    s: &KeyState,
    d: &KeyState,
) -> Result<Option<String>> {
    if d.kind == "none" {
        return Ok(Some("missing".into()));
    }
    if s.kind != d.kind {
        return Ok(Some("type".into()));
    }
    let ttl_differs = (s.pttl < 0) != (d.pttl < 0) || (s.pttl >= 0 && (s.pttl - d.pttl).abs() > TTL_TOLERANCE_MS);
    let value_same = match (&s.dump, &d.dump) {
        (Some(a), Some(b)) if a == b => true,
        (Some(a), Some(b)) => same_elements(a, b),
        // A string without a payload on one side was deleted or replaced between the reads of
        // its state: different now; settling reads it again.
        _ if len_command(&s.kind).is_none() => false,
        _ => s.len == d.len && unless_retyped(paged_equal(source, dest, key, &s.kind).await)?,
    };
    Ok(match (value_same, ttl_differs) {
        (false, _) => Some("value".into()),
        (true, true) => Some("ttl".into()),
        (true, false) => None,
    })
}

/// A paged comparison of a key that became another type on either side after its TYPE was read
/// (`WRONGTYPE`) found it different: settling reads it again.
fn unless_retyped(equal: Result<bool>) -> Result<bool> {
    match equal {
        Err(RedisError::Server { reply, .. }) if reply.starts_with("WRONGTYPE") => Ok(false),
        other => other,
    }
}

/// A digest of a value compared in pages, read in pages: lists and sorted sets in order, sets
/// and hashes as an order-free sum of their elements' hashes (`SSCAN`/`HSCAN` order follows
/// the table, not the content), streams by their summary. Only what tells a source that changed
/// between two settle rounds from one that did not; the value is never held whole. A key that
/// became another type meanwhile has none (it counts as changed).
async fn big_digest(c: &mut Conn, key: &Bytes, kind: &str) -> Result<Option<u64>> {
    fn feed(h: &mut DefaultHasher, r: &Reply) {
        match r {
            Reply::Status(b) | Reply::Error(b) | Reply::Bulk(Some(b)) => {
                h.write_usize(b.len());
                h.write(b);
            }
            Reply::Int(i) => h.write_i64(*i),
            Reply::Bulk(None) | Reply::Array(None) => h.write_u8(0xff),
            Reply::Array(Some(v)) => {
                h.write_usize(v.len());
                v.iter().for_each(|x| feed(h, x));
            }
        }
    }
    let mut h = DefaultHasher::new();
    let digest = match kind {
        "list" | "zset" => {
            let mut start: i64 = 0;
            loop {
                let page = match c.ok(&range_page(key, kind, start)).await {
                    Ok(r) => r.array().unwrap_or_default(),
                    Err(e) => return unless_retyped(Err(e)).map(|_| None),
                };
                page.iter().for_each(|r| feed(&mut h, r));
                if page.len() < full_page(kind) {
                    break h.finish();
                }
                start += PAGE as i64;
            }
        }
        "set" | "hash" => {
            let scan: &[u8] = if kind == "set" { b"SSCAN" } else { b"HSCAN" };
            let per = if kind == "set" { 1 } else { 2 };
            let mut sum: u64 = 0;
            let mut cursor = Bytes::from_static(b"0");
            loop {
                let page = match c.ok(&[scan, key, &cursor, b"COUNT", b"500"]).await {
                    Ok(r) => r.array().unwrap_or_default(),
                    Err(e) => return unless_retyped(Err(e)).map(|_| None),
                };
                let [next, items] =
                    <[Reply; 2]>::try_from(page).map_err(|_| RedisError::Protocol("a scan reply".into()))?;
                for element in items.array().unwrap_or_default().chunks(per) {
                    let mut e = DefaultHasher::new();
                    element.iter().for_each(|r| feed(&mut e, r));
                    sum = sum.wrapping_add(e.finish());
                }
                cursor = next.bytes().cloned().unwrap_or_else(|| Bytes::from_static(b"0"));
                if cursor.as_ref() == b"0" {
                    break sum;
                }
            }
        }
        "stream" => match c.ok(&[&b"XINFO"[..], b"STREAM", key]).await {
            Ok(r) => {
                stream_summary(r).iter().for_each(|x| feed(&mut h, x));
                h.finish()
            }
            Err(e) => return unless_retyped(Err(e)).map(|_| None),
        },
        _ => return Ok(None),
    };
    Ok(Some(digest))
}

/// Two DUMP payloads hold the same elements (in different encodings).
fn same_elements(a: &Bytes, b: &Bytes) -> bool {
    fn normal(p: &Bytes) -> Option<Vec<Vec<u8>>> {
        let (t, encoded, _) = crate::rdb::parse_restore_payload(p).ok()?;
        let chunks = crate::rdb::decode_value(t, &encoded, usize::MAX).ok()?;
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut ordered = false;
        for c in chunks {
            match c {
                crate::rdb::Elements::String(v) => out.push(v.to_vec()),
                crate::rdb::Elements::List(v) => {
                    ordered = true;
                    out.extend(v.into_iter().map(|b| b.to_vec()));
                }
                crate::rdb::Elements::Set(v) => out.extend(v.into_iter().map(|b| b.to_vec())),
                crate::rdb::Elements::SortedSet(v) => {
                    out.extend(v.into_iter().map(|(m, s)| [m.to_vec(), s.to_bits().to_be_bytes().to_vec()].concat()))
                }
                crate::rdb::Elements::Hash(v) => out.extend(v.into_iter().map(|(f, x)| {
                    let mut e = (f.len() as u64).to_be_bytes().to_vec();
                    e.extend_from_slice(&f);
                    e.extend_from_slice(&x);
                    e
                })),
            }
        }
        if !ordered {
            out.sort_unstable();
        }
        Some(out)
    }
    matches!((normal(a), normal(b)), (Some(x), Some(y)) if x == y)
}

/// Compares a big value page by page.
async fn paged_equal(source: &mut Conn, dest: &mut Conn, key: &Bytes, kind: &str) -> Result<bool> {
    let mut start: i64 = 0;
    loop {
        let cmd: Vec<Bytes> = match kind {
            "list" | "zset" => range_page(key, kind, start),
            "stream" => {
                // Streams: compare lengths and the last entries' ids.
                let a = source.ok(&[&b"XINFO"[..], b"STREAM", key]).await?;
                let b = dest.ok(&[&b"XINFO"[..], b"STREAM", key]).await?;
                return Ok(stream_summary(a) == stream_summary(b));
            }
            _ => return scan_equal(source, dest, key, kind).await,
        };
        let a = source.ok(&cmd).await?.array().unwrap_or_default();
        let b = dest.ok(&cmd).await?.array().unwrap_or_default();
        if a != b {
            return Ok(false);
        }
        if a.len() < full_page(kind) {
            return Ok(true);
        }
        start += PAGE as i64;
    }
}

/// The command reading the page of a list or sorted set (with scores) that starts at `start`.
fn range_page(key: &Bytes, kind: &str, start: i64) -> Vec<Bytes> {
    let (from, end) = (start.to_string(), (start + PAGE as i64 - 1).to_string());
    if kind == "list" {
        vec!["LRANGE".into(), key.clone(), from.into(), end.into()]
    } else {
        vec!["ZRANGE".into(), key.clone(), from.into(), end.into(), "WITHSCORES".into()]
    }
}

/// How many replies a full page of [`range_page`] holds (a member and its score for a zset).
fn full_page(kind: &str) -> usize {
    if kind == "zset" { 2 * PAGE } else { PAGE }
}

fn stream_summary(r: Reply) -> Vec<Reply> {
    let v = r.array().unwrap_or_default();
    let mut out = Vec::new();
    for pair in v.chunks(2) {
        if let [Reply::Bulk(Some(name)) | Reply::Status(name), value] = pair
            && matches!(name.as_ref(), b"length" | b"last-generated-id" | b"groups" | b"first-entry" | b"last-entry")
        {
            out.push(value.clone());
        }
    }
    out
}

/// Sets and hashes: every source element is on the destination (SSCAN/HSCAN pages); with
/// equal sizes that makes them equal.
async fn scan_equal(source: &mut Conn, dest: &mut Conn, key: &Bytes, kind: &str) -> Result<bool> {
    let scan: &[u8] = if kind == "set" { b"SSCAN" } else { b"HSCAN" };
    let mut cursor = Bytes::from_static(b"0");
    loop {
        let page = source.ok(&[scan, key, &cursor, b"COUNT", b"500"]).await?.array().unwrap_or_default();
        let [next, items] = <[Reply; 2]>::try_from(page).map_err(|_| RedisError::Protocol("a scan reply".into()))?;
        let items: Vec<Bytes> =
            items.array().unwrap_or_default().into_iter().filter_map(|r| r.bytes().cloned()).collect();
        if kind == "set" {
            if !items.is_empty() {
                let mut cmd = vec![Bytes::from_static(b"SMISMEMBER"), key.clone()];
                cmd.extend(items.iter().cloned());
                let found = dest.ok(&cmd).await?.array().unwrap_or_default();
                if found.iter().any(|r| r.int() != Some(1)) {
                    return Ok(false);
                }
            }
        } else {
            let fields: Vec<Bytes> = items.iter().step_by(2).cloned().collect();
            let values: Vec<Bytes> = items.iter().skip(1).step_by(2).cloned().collect();
            if !fields.is_empty() {
                let mut cmd = vec![Bytes::from_static(b"HMGET"), key.clone()];
                cmd.extend(fields);
                let found = dest.ok(&cmd).await?.array().unwrap_or_default();
                if found.iter().map(|r| r.bytes().cloned()).ne(values.into_iter().map(Some)) {
                    return Ok(false);
                }
            }
        }
        cursor = next.bytes().cloned().unwrap_or_else(|| Bytes::from_static(b"0"));
        if cursor.as_ref() == b"0" {
            return Ok(true);
        }
    }
}

fn printable(key: &[u8]) -> String {
    let mut s: String = String::from_utf8_lossy(&key[..key.len().min(200)]).into_owned();
    if key.len() > 200 {
        s.push('…');
    }
    s
}

fn row(key: &[u8], column: Option<String>) -> DiffRow {
    DiffRow { key: printable(key), columns: column.into_iter().collect(), predicate: hex_of(key) }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compares one database.
pub async fn compare(
    plan: &MigrationPlan,
    database: &str,
    options: &CompareOptions,
) -> Result<TableDiff, ConnectorError> {
    let mut diff = TableDiff::new(database, "", Comparison::Rows);
    let mut source = Side::open(&plan.source).await.map_err(err("connecting to the source"))?;
    let mut dest = Side::open(plan.destination()?).await.map_err(err("connecting to the destination"))?;
    source.select(database).await.map_err(err("reading the source"))?;
    dest.select(database).await.map_err(err("reading the destination"))?;
    let mut pending: BTreeMap<Bytes, Pending> = BTreeMap::new();
    for node in 0..source.conns.len() {
        let mut cursor = Bytes::from_static(b"0");
        loop {
            let page = source.conns[node]
                .ok(&[&b"SCAN"[..], &cursor, b"COUNT", b"500"])
                .await
                .map_err(err("scanning the source"))?;
            let (next, keys) = scan_page(page).map_err(err("scanning the source"))?;
            let keys: Vec<Bytes> = keys.into_iter().filter(|k| !is_marker(k)).collect();
            diff.chunks += 1;
            diff.chunks_compared += 1;
            diff.source_rows += keys.len() as u64;
            if !keys.is_empty() {
                let s = states(&mut source.conns[node], &keys).await.map_err(err("reading the source"))?;
                let d = side_states(&mut dest, &keys).await.map_err(err("reading the destination"))?;
                for ((k, s), d) in keys.iter().zip(s).zip(&d) {
                    if s.kind == "none" {
                        diff.source_rows -= 1;
                        continue;
                    }
                    let why =
                        differs(source.conn_for(k), dest.conn_for(k), k, &s, d).await.map_err(err("comparing"))?;
                    if let Some(why) = why {
                        let source = held(source.conn_for(k), k, s, options).await?;
                        pending.insert(k.clone(), Pending { why, source, moving: false });
                    }
                }
            }
            if pending.len() >= options.pending_keys.max(1) {
                settle(&mut source, &mut dest, &mut pending, options, &mut diff).await?;
            }
            cursor = next;
            if cursor.as_ref() == b"0" {
                break;
            }
        }
    }
    // Extra keys: on the destination, not on the source.
    for node in 0..dest.conns.len() {
        let mut cursor = Bytes::from_static(b"0");
        loop {
            let page = dest.conns[node]
                .ok(&[&b"SCAN"[..], &cursor, b"COUNT", b"500"])
                .await
                .map_err(err("scanning the destination"))?;
            let (next, keys) = scan_page(page).map_err(err("scanning the destination"))?;
            let keys: Vec<Bytes> = keys.into_iter().filter(|k| !is_marker(k)).collect();
            diff.destination_rows += keys.len() as u64;
            if !keys.is_empty() {
                let read_at = Instant::now();
                let found = source.each_key(b"EXISTS", &keys).await.map_err(err("reading the source"))?;
                for (k, r) in keys.iter().zip(found) {
                    if r.int() == Some(0) {
                        // (A key held already keeps the source as first read.)
                        pending.entry(k.clone()).or_insert_with(|| Pending {
                            why: "extra".into(),
                            source: KeyState { read_at, ..KeyState::absent() },
                            moving: false,
                        });
                    }
                }
            }
            if pending.len() >= options.pending_keys.max(1) {
                settle(&mut source, &mut dest, &mut pending, options, &mut diff).await?;
            }
            cursor = next;
            if cursor.as_ref() == b"0" {
                break;
            }
        }
    }
    settle(&mut source, &mut dest, &mut pending, options, &mut diff).await?;
    Ok(diff)
}

/// The source's state of a key to hold for settling: with the digest of a paged value when the
/// check is live (only then is it compared with a later read).
async fn held(
    c: &mut Conn,
    key: &Bytes,
    mut s: KeyState,
    options: &CompareOptions,
) -> Result<KeyState, ConnectorError> {
    if options.settle_window.is_some() && s.paged() {
        s.digest = big_digest(c, key, &s.kind).await.map_err(err("reading the source"))?;
    }
    Ok(s)
}

fn scan_page(page: Reply) -> Result<(Bytes, Vec<Bytes>)> {
    let mut v = page.array().ok_or_else(|| RedisError::Protocol("a SCAN reply".into()))?;
    if v.len() != 2 {
        return Err(RedisError::Protocol("a SCAN reply".into()));
    }
    let keys =
        v.pop().and_then(|k| k.array()).unwrap_or_default().into_iter().filter_map(|r| r.bytes().cloned()).collect();
    let next = v.pop().and_then(|c| c.bytes().cloned()).unwrap_or_else(|| Bytes::from_static(b"0"));
    Ok((next, keys))
}

/// Reads the held keys again after the settle window (live checks), round after round while
/// some held key's source keeps changing (at most `settle_rounds`), then counts what still
/// differs: as unsettled when its source changed in the last round, else by why it differs.
/// Without a settle window every held key is counted as first found.
async fn settle(
    source: &mut Side,
    dest: &mut Side,
    pending: &mut BTreeMap<Bytes, Pending>,
    options: &CompareOptions,
    diff: &mut TableDiff,
) -> Result<(), ConnectorError> {
    if let Some(window) = options.settle_window {
        for _ in 0..options.settle_rounds.max(1) {
            if pending.is_empty() {
                break;
            }
            tokio::time::sleep(window.min(Duration::from_secs(30))).await;
            let keys: Vec<Bytes> = pending.keys().cloned().collect();
            let s = side_states(source, &keys).await.map_err(err("reading the source"))?;
            let d = side_states(dest, &keys).await.map_err(err("reading the destination"))?;
            let mut moving = false;
            for ((k, s), d) in keys.into_iter().zip(s).zip(d) {
                let why = match (s.kind.as_str(), d.kind.as_str()) {
                    ("none", "none") => None,
                    ("none", _) => Some("extra".to_string()),
                    _ => differs(source.conn_for(&k), dest.conn_for(&k), &k, &s, &d).await.map_err(err("comparing"))?,
                };
                let Some(why) = why else {
                    pending.remove(&k);
                    continue;
                };
                let now = held(source.conn_for(&k), &k, s, options).await?;
                let p = pending.get_mut(&k).expect("a held key");
                let moved = p.source.changed_to(&now);
                moving |= moved;
                *p = Pending { why, source: now, moving: moved };
            }
            if !moving {
                break;
            }
        }
    }
    for (k, p) in std::mem::take(pending) {
        if p.moving {
            diff.unsettled_count += 1;
            if diff.unsettled.len() < options.keep_keys {
                diff.unsettled.push(printable(&k));
            } else {
                diff.truncated = true;
            }
            continue;
        }
        let (count, list, column) = match p.why.as_str() {
            "missing" => (&mut diff.missing_count, &mut diff.missing, None),
            "extra" => (&mut diff.extra_count, &mut diff.extra, None),
            _ => (&mut diff.different_count, &mut diff.different, Some(p.why)),
        };
        *count += 1;
        if list.len() < options.keep_keys {
            list.push(row(&k, column));
        } else {
            diff.truncated = true;
        }
    }
    if diff.missing_count + diff.extra_count + diff.different_count > 0 {
        diff.chunks_differing = diff.chunks_differing.max(1);
    }
    Ok(())
}

/// `redis-cli` commands that make the destination's differing keys equal the source's now:
/// `DEL` for extra keys, `RESTORE ... REPLACE` (the source's DUMP, hex-escaped) for the rest.
pub async fn repair_commands(
    plan: &MigrationPlan,
    diff: &TableDiff,
    limit: usize,
) -> Result<Vec<String>, ConnectorError> {
    let mut out = vec![format!("SELECT {}", diff.database)];
    let mut source = Side::open(&plan.source).await.map_err(err("connecting to the source"))?;
    source.select(&diff.database).await.map_err(err("reading the source"))?;
    for r in diff.extra.iter() {
        if out.len() > limit {
            break;
        }
        out.push(format!("DEL {}", quote(&unhex(&r.predicate))));
    }
    for r in diff.missing.iter().chain(&diff.different) {
        if out.len() > limit {
            break;
        }
        let key = unhex(&r.predicate);
        let conn = source.conn_for(&key);
        let dump = conn.ok(&[&b"DUMP"[..], &key]).await.map_err(err("reading the source"))?;
        let pttl = conn.ok(&[&b"PTTL"[..], &key]).await.map_err(err("reading the source"))?.int().unwrap_or(-1);
        match dump.bytes() {
            Some(payload) => out.push(format!("RESTORE {} {} {} REPLACE", quote(&key), pttl.max(0), quote(payload))),
            None => out.push(format!("DEL {}", quote(&key))),
        }
    }
    out.truncate(limit.max(1));
    Ok(out)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()).collect()
}

/// A `redis-cli` double-quoted argument.
fn quote(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pttl: i64, read_at: Instant) -> KeyState {
        KeyState { kind: "string".into(), pttl, dump: Some(Bytes::from_static(b"v")), len: 1, read_at, digest: None }
    }

    #[test]
    fn a_ttl_counting_down_is_no_change_of_the_source_but_a_new_expiry_is() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(3);
        assert!(!state(60_000, t0).changed_to(&state(57_010, t1)), "the same deadline, read 3 s later");
        assert!(state(60_000, t0).changed_to(&state(60_000, t1)), "EXPIRE again: the deadline moved 3 s");
        assert!(state(60_000, t0).changed_to(&state(-1, t1)), "PERSIST");
        assert!(!state(-1, t0).changed_to(&state(-1, t1)));
        let mut value = state(-1, t1);
        value.dump = Some(Bytes::from_static(b"w"));
        assert!(state(-1, t0).changed_to(&value));
    }

    #[test]
    fn a_paged_value_changed_when_its_digest_did_or_is_unknown() {
        let at = Instant::now();
        let big = |digest| KeyState { kind: "list".into(), pttl: -1, dump: None, len: 6000, read_at: at, digest };
        assert!(!big(Some(1)).changed_to(&big(Some(1))));
        assert!(big(Some(1)).changed_to(&big(Some(2))), "LPUSH and LTRIM: the same length, other elements");
        assert!(big(None).changed_to(&big(None)), "no digest (retyped meanwhile): counted as changed");
    }

    #[test]
    fn repair_arguments_are_quoted_for_redis_cli() {
        assert_eq!(quote(b"a\"b\\c\x00"), "\"a\\\"b\\\\c\\x00\"");
        assert_eq!(unhex(&hex_of(b"k\x01")), b"k\x01");
    }
}
