//! Folding one destination transaction's replicated commands: commands on the same key are
//! brought together and merged where Redis gives the same result (`LPUSH k a` + `LPUSH k b` =
//! `LPUSH k a b`; `HSET`, `RPUSH`, `SADD`, plain `ZADD` alike; a plain `SET` overwritten by a
//! later plain `SET` of the key is dropped; keys whose only command is a plain `SET` go out as
//! one `MSET`), so the destination executes fewer, larger commands.
//!
//! Correctness: the batch runs inside one `MULTI`/`EXEC`, so no client sees an intermediate state;
//! only the final state matters. Commands on different keys commute when each touches exactly
//! one key (a whitelist of single-key commands whose key is their first argument, in one
//! database). Any other command (multi-key, keyless, database-wide, or unknown) is a barrier:
//! nothing is moved across it. Within a key, commands keep their source order; a merge joins two
//! adjacent commands of the same kind whose combined form is defined by Redis as applying the
//! elements in order (`LPUSH k a b` pushes `a` then `b`; `HSET`/`ZADD` set pairs in order, a
//! later pair of the same field or member winning), so per-key results are unchanged.

use std::collections::HashMap;

use bytes::Bytes;

/// Commands whose only key is their first argument (and that touch nothing else).
const SINGLE_KEY: &[&[u8]] = &[
    b"SET",
    b"SETEX",
    b"PSETEX",
    b"SETNX",
    b"GETSET",
    b"GETDEL",
    b"GETEX",
    b"APPEND",
    b"SETRANGE",
    b"SETBIT",
    b"INCR",
    b"INCRBY",
    b"INCRBYFLOAT",
    b"DECR",
    b"DECRBY",
    b"LPUSH",
    b"RPUSH",
    b"LPUSHX",
    b"RPUSHX",
    b"LPOP",
    b"RPOP",
    b"LREM",
    b"LSET",
    b"LTRIM",
    b"LINSERT",
    b"SADD",
    b"SREM",
    b"SPOP",
    b"HSET",
    b"HSETNX",
    b"HMSET",
    b"HDEL",
    b"HINCRBY",
    b"HINCRBYFLOAT",
    b"ZADD",
    b"ZREM",
    b"ZINCRBY",
    b"ZREMRANGEBYSCORE",
    b"ZREMRANGEBYRANK",
    b"ZREMRANGEBYLEX",
    b"ZPOPMIN",
    b"ZPOPMAX",
    b"XADD",
    b"XDEL",
    b"XTRIM",
    b"PEXPIREAT",
    b"PEXPIRE",
    b"EXPIRE",
    b"EXPIREAT",
    b"PERSIST",
    b"PFADD",
    b"RESTORE",
];

/// Keys per MSET made of plain SETs.
const MSET_KEYS: usize = 256;

/// The name (upper case, as the whitelist spells it) and key of a command that commutes with
/// commands on other keys, if it is one. Names are matched without allocating.
fn single_key(args: &[Bytes]) -> Option<(&'static [u8], Bytes)> {
    let [name, key, ..] = args else { return None };
    let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
    let found = if args.len() == 2 && is(b"DEL") {
        Some(&b"DEL"[..])
    } else if args.len() == 2 && is(b"UNLINK") {
        Some(&b"UNLINK"[..])
    } else {
        SINGLE_KEY.iter().copied().find(|n| is(n))
    };
    found.map(|n| (n, key.clone()))
}

/// One command of the batch.
struct Entry {
    db: u32,
    name: &'static [u8],
    args: Vec<Bytes>,
}

/// The commands of one destination transaction, folded when taken.
#[derive(Default)]
pub struct Folder {
    /// Finished segments (each already folded), in order.
    done: Vec<(u32, Vec<Bytes>)>,
    /// The current segment: groups by (database, key) in order of first appearance.
    groups: Vec<Vec<Entry>>,
    index: HashMap<(u32, Bytes), usize>,
    /// Commands taken (before folding).
    pub commands: u64,
}

impl Folder {
    pub fn is_empty(&self) -> bool {
        self.commands == 0
    }

    /// Adds a command to run in database `db`.
    pub fn push(&mut self, db: u32, args: Vec<Bytes>) {
        self.commands += 1;
        match single_key(&args) {
            Some((name, key)) => {
                let slot = *self.index.entry((db, key)).or_insert_with(|| {
                    self.groups.push(Vec::new());
                    self.groups.len() - 1
                });
                let group = &mut self.groups[slot];
                let merged = group.last_mut().is_some_and(|last| last.db == db && merge(last, name, &args));
                if !merged {
                    group.push(Entry { db, name, args });
                }
            }
            None => {
                self.close_segment();
                self.done.push((db, args));
            }
        }
    }

    fn close_segment(&mut self) {
        // Keys whose only command is a plain SET become one MSET per database (in chunks):
        // commands on different keys commute, so where they go in the segment does not matter.
        let mut msets: Vec<(u32, Vec<Bytes>)> = Vec::new();
        for group in self.groups.drain(..) {
            if let [only] = group.as_slice()
                && only.name == b"SET"
                && only.args.len() == 3
            {
                let at = match msets.iter().position(|(db, args)| *db == only.db && args.len() < 1 + 2 * MSET_KEYS) {
                    Some(at) => at,
                    None => {
                        msets.push((only.db, vec![Bytes::from_static(b"MSET")]));
                        msets.len() - 1
                    }
                };
                msets[at].1.extend_from_slice(&only.args[1..]);
                continue;
            }
            self.done.extend(group.into_iter().map(|e| (e.db, e.args)));
        }
        for (db, mut args) in msets {
            if args.len() == 3 {
                args[0] = Bytes::from_static(b"SET");
            }
            self.done.push((db, args));
        }
        self.index.clear();
    }

    /// The folded commands with their databases, in an order with the same final state.
    pub fn take(&mut self) -> Vec<(u32, Vec<Bytes>)> {
        self.close_segment();
        self.commands = 0;
        std::mem::take(&mut self.done)
    }
}

fn is_score(b: &[u8]) -> bool {
    std::str::from_utf8(b).ok().and_then(|s| s.parse::<f64>().ok()).is_some() || matches!(b, b"inf" | b"+inf" | b"-inf")
}

/// Merges `args` (command `name`) into `last` when their combination is one command with the
/// same effect as both in order.
fn merge(last: &mut Entry, name: &[u8], args: &[Bytes]) -> bool {
    if last.name != name {
        return false;
    }
    match name {
        b"LPUSH" | b"RPUSH" | b"SADD" if args.len() >= 3 => {
            last.args.extend_from_slice(&args[2..]);
            true
        }
        b"HSET" | b"HMSET" if args.len() >= 4 && args.len().is_multiple_of(2) && last.args.len().is_multiple_of(2) => {
            last.args.extend_from_slice(&args[2..]);
            true
        }
        // Plain ZADD (no NX/XX/GT/LT/CH/INCR): score member pairs only.
        b"ZADD"
            if args.len() >= 4
                && args.len().is_multiple_of(2)
                && is_score(&args[2])
                && last.args.len().is_multiple_of(2)
                && is_score(&last.args[2]) =>
        {
            last.args.extend_from_slice(&args[2..]);
            true
        }
        // A plain SET overwrites a plain SET: only the later one's value remains.
        b"SET" if args.len() == 3 && last.args.len() == 3 => {
            last.args[2] = args[2].clone();
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|p| Bytes::copy_from_slice(p.as_bytes())).collect()
    }

    fn text(out: Vec<(u32, Vec<Bytes>)>) -> Vec<String> {
        out.into_iter()
            .map(|(db, a)| {
                format!(
                    "{db}:{}",
                    a.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect::<Vec<_>>().join(" ")
                )
            })
            .collect()
    }

    #[test]
    fn commands_on_one_key_are_merged_and_keys_keep_their_own_order() {
        let mut f = Folder::default();
        for cmd in [
            "LPUSH l a",
            "SET k1 v1",
            "LPUSH l b",
            "HSET h f1 x",
            "SET k1 v2",
            "HSET h f2 y f1 z",
            "ZADD z 1 m",
            "ZADD z 2 n",
            "ZADD z NX 3 o",
            "INCR n",
            "INCR n",
        ] {
            f.push(0, c(cmd));
        }
        assert_eq!(f.commands, 11);
        assert_eq!(
            text(f.take()),
            vec![
                "0:LPUSH l a b",
                "0:HSET h f1 x f2 y f1 z",
                "0:ZADD z 1 m 2 n",
                "0:ZADD z NX 3 o",
                "0:INCR n",
                "0:INCR n",
                "0:SET k1 v2"
            ]
        );
    }

    #[test]
    fn nothing_moves_across_a_multi_key_or_keyless_command_or_between_databases() {
        let mut f = Folder::default();
        for (db, cmd) in [
            (0, "LPUSH l a"),
            (0, "RENAME l l2"),
            (0, "LPUSH l b"),
            (1, "LPUSH l c"),
            (0, "FLUSHDB"),
            (0, "LPUSH l d"),
            (0, "DEL a b"),
            (0, "LPUSH l e"),
        ] {
            f.push(db, c(cmd));
        }
        assert_eq!(
            text(f.take()),
            vec![
                "0:LPUSH l a",
                "0:RENAME l l2",
                "0:LPUSH l b",
                "1:LPUSH l c",
                "0:FLUSHDB",
                "0:LPUSH l d",
                "0:DEL a b",
                "0:LPUSH l e"
            ]
        );
    }

    #[test]
    fn a_set_with_options_is_never_dropped_or_merged() {
        let mut f = Folder::default();
        for cmd in ["SET k a PXAT 99", "SET k b", "SET k c", "SET k d KEEPTTL"] {
            f.push(0, c(cmd));
        }
        assert_eq!(text(f.take()), vec!["0:SET k a PXAT 99", "0:SET k c", "0:SET k d KEEPTTL"]);
    }

    #[test]
    fn keys_set_once_go_out_as_one_mset_per_database() {
        let mut f = Folder::default();
        for (db, cmd) in
            [(0, "SET a 1"), (0, "SET b 2"), (1, "SET c 3"), (0, "SET a 4"), (0, "SET d 5 PX 9"), (0, "INCR e")]
        {
            f.push(db, c(cmd));
        }
        assert_eq!(text(f.take()), vec!["0:SET d 5 PX 9", "0:INCR e", "0:MSET a 4 b 2", "1:SET c 3"]);
    }
}
