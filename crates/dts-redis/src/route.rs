//! Where a command goes on a cluster destination: the slot of its first key (`args[1]` for key
//! commands; `BITOP`'s destination, `XGROUP`'s stream, a script's first key), every master for
//! keyless writes (`FLUSHDB`, `FLUSHALL`, `FUNCTION`, `SCRIPT`), or split by slot for the
//! commands whose keys are independent (`DEL`, `UNLINK`, `MSET`, `MSETNX`, which a source
//! propagates only when it succeeded and so becomes `MSET`).
//!
//! A command whose keys hash to different slots and cannot be split (`RENAME a b`, `SUNIONSTORE`)
//! goes to its first key's node, which answers `CROSSSLOT`; the writer then stops with an error
//! naming the command (a cluster cannot hold that command's effect atomically).

use bytes::Bytes;

use crate::slots::key_slot;

/// Where one command goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The node serving this slot.
    Slot(u16),
    /// Every master.
    All,
    /// These commands instead, each to its slot's node (in this order).
    Split(Vec<(u16, Vec<Bytes>)>),
}

fn upper(a: &Bytes) -> Vec<u8> {
    a.to_ascii_uppercase()
}

/// The route of `args` (a command with its name first).
pub fn route(args: &[Bytes]) -> Route {
    let Some(name) = args.first() else { return Route::All };
    let name = upper(name);
    match name.as_slice() {
        b"FLUSHDB" | b"FLUSHALL" | b"FUNCTION" | b"SCRIPT" => Route::All,
        b"DEL" | b"UNLINK" | b"TOUCH" if args.len() > 2 => split(args, 1, Bytes::copy_from_slice(&name)),
        b"MSET" | b"MSETNX" if args.len() > 3 => split(args, 2, Bytes::from_static(b"MSET")),
        b"MSETNX" => {
            let mut a = args.to_vec();
            a[0] = Bytes::from_static(b"MSET");
            match a.get(1) {
                Some(k) => Route::Split(vec![(key_slot(k), a.clone())]),
                None => Route::All,
            }
        }
        b"BITOP" | b"XGROUP" => args.get(2).map(|k| Route::Slot(key_slot(k))).unwrap_or(Route::All),
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let keys: usize = args.get(2).and_then(|n| std::str::from_utf8(n).ok()?.parse().ok()).unwrap_or(0);
            match (keys, args.get(3), args.get(1)) {
                (1.., Some(k), _) => Route::Slot(key_slot(k)),
                (_, _, Some(script)) => Route::Slot(key_slot(script)),
                _ => Route::All,
            }
        }
        _ => match args.get(1) {
            Some(k) => Route::Slot(key_slot(k)),
            None => Route::All,
        },
    }
}

/// Splits a command of `stride`-argument groups (a key first in each) into one command per slot,
/// keeping the order of the groups within a slot.
fn split(args: &[Bytes], stride: usize, name: Bytes) -> Route {
    let mut by_slot: Vec<(u16, Vec<Bytes>)> = Vec::new();
    for group in args[1..].chunks(stride) {
        let slot = key_slot(&group[0]);
        match by_slot.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, cmd)) => cmd.extend(group.iter().cloned()),
            None => {
                let mut cmd = vec![name.clone()];
                cmd.extend(group.iter().cloned());
                by_slot.push((slot, cmd));
            }
        }
    }
    Route::Split(by_slot)
}

/// The single slot of a group of routes (a source transaction), if every command of it goes to
/// one slot: then it can stay a transaction on that slot's node.
pub fn single_slot(routes: &[Route]) -> Option<u16> {
    let mut slot = None;
    for r in routes {
        let s = match r {
            Route::Slot(s) => *s,
            Route::Split(list) if list.len() == 1 => list[0].0,
            _ => return None,
        };
        if *slot.get_or_insert(s) != s {
            return None;
        }
    }
    slot
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    #[test]
    fn commands_go_to_their_first_keys_slot_and_multi_key_writes_are_split() {
        assert_eq!(route(&cmd(&["SET", "foo", "1"])), Route::Slot(12182));
        assert_eq!(route(&cmd(&["flushall"])), Route::All);
        assert_eq!(route(&cmd(&["FUNCTION", "LOAD", "x"])), Route::All);
        assert_eq!(route(&cmd(&["XGROUP", "CREATE", "foo", "g", "0"])), Route::Slot(12182));
        assert_eq!(route(&cmd(&["BITOP", "AND", "foo", "{foo}a"])), Route::Slot(12182));
        assert_eq!(
            route(&cmd(&["DEL", "foo", "bar", "{foo}x"])),
            Route::Split(vec![(12182, cmd(&["DEL", "foo", "{foo}x"])), (5061, cmd(&["DEL", "bar"]))])
        );
        assert_eq!(
            route(&cmd(&["MSETNX", "foo", "1", "bar", "2"])),
            Route::Split(vec![(12182, cmd(&["MSET", "foo", "1"])), (5061, cmd(&["MSET", "bar", "2"]))])
        );
        assert_eq!(route(&cmd(&["MSETNX", "foo", "1"])), Route::Split(vec![(12182, cmd(&["MSET", "foo", "1"]))]));
        assert_eq!(route(&cmd(&["EVAL", "return 1", "1", "foo"])), Route::Slot(12182));
    }

    #[test]
    fn a_transaction_stays_one_when_all_its_commands_share_a_slot() {
        let same = [route(&cmd(&["INCR", "{u}a"])), route(&cmd(&["DEL", "{u}b", "{u}c"]))];
        assert_eq!(single_slot(&same), Some(key_slot(b"u")));
        let mixed = [route(&cmd(&["INCR", "foo"])), route(&cmd(&["INCR", "bar"]))];
        assert_eq!(single_slot(&mixed), None);
        assert_eq!(single_slot(&[Route::All]), None);
    }
}
