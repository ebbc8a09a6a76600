//! RDB value types: which type byte is which kind and shape, the element form of a value
//! ([`Elements`]), reading one element-by-element unit (an element, or a quicklist node),
//! decoding single-blob values, reading past streams and module values, and
//! [`decode_value`] for a whole encoded value (from the reader or a DUMP payload).
//!
//! Correctness: each type byte maps to exactly one [`Shape`], and each shape's reader consumes
//! precisely what Redis 7.2's `rdbSaveObject` writes for it (so the next opcode is read at the
//! right place):
//! - units (1 list, 2 set, 3 zset, 4 hash, 5 zset2, 14 quicklist, 18 quicklist2): a length
//!   `n`, then `n` units: a string; a string and a text double (3) or a binary double (5); two
//!   strings (4); a ziplist blob (14); a container length (1 plain, 2 packed) and a blob (18);
//! - blobs (0 string, 9 zipmap, 10 list ziplist, 11 intset, 12 zset ziplist, 13 hash ziplist,
//!   16 hash listpack, 17 zset listpack, 20 set listpack): one string;
//! - streams (15, 19, 21): listpack pairs, length, last id, the 7.0 (19+) metadata, consumer
//!   groups with their PEL and consumers (active time for 21), as `rdbLoadObject` reads them;
//! - modules (7): a 64-bit module id, then opcode-tagged values until the EOF opcode, as
//!   `rdbLoadCheckModuleValue` reads them. Type 6 (pre-GA modules) has no such framing and
//!   cannot be read past.
//!
//! Chunking ([`move_chunks`]) moves elements, in order, out of a pending buffer into chunks of
//! exactly `chunk` elements (the last one of a value may be shorter), in time linear in the
//! elements moved.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::io::AsyncBufRead;

use super::compact;
use super::error::RdbError;
use super::input::{Input, run_sync};

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_ZSET: u8 = 3;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;
pub const TYPE_MODULE_PRE_GA: u8 = 6;
pub const TYPE_MODULE_2: u8 = 7;
pub const TYPE_HASH_ZIPMAP: u8 = 9;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_ZSET_LISTPACK: u8 = 17;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub const TYPE_SET_LISTPACK: u8 = 20;
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

/// Quicklist 2 node containers.
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// Module value opcodes (`RDB_MODULE_OPCODE_*`).
const MODULE_OPCODE_EOF: u64 = 0;
const MODULE_OPCODE_SINT: u64 = 1;
const MODULE_OPCODE_UINT: u64 = 2;
const MODULE_OPCODE_FLOAT: u64 = 3;
const MODULE_OPCODE_DOUBLE: u64 = 4;
const MODULE_OPCODE_STRING: u64 = 5;

/// The Redis data type of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValueKind {
    String,
    List,
    Set,
    SortedSet,
    Hash,
    Stream,
    /// A module type, by its 9-character name.
    Module(String),
}

impl ValueKind {
    /// The kind of a (non-module) RDB type byte.
    pub fn of_type(rdb_type: u8) -> Option<ValueKind> {
        Some(match rdb_type {
            TYPE_STRING => ValueKind::String,
            TYPE_LIST | TYPE_LIST_ZIPLIST | TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => ValueKind::List,
            TYPE_SET | TYPE_SET_INTSET | TYPE_SET_LISTPACK => ValueKind::Set,
            TYPE_ZSET | TYPE_ZSET_2 | TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => ValueKind::SortedSet,
            TYPE_HASH | TYPE_HASH_ZIPMAP | TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => ValueKind::Hash,
            TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => ValueKind::Stream,
            _ => return None,
        })
    }

    /// The name Redis' `TYPE` command replies with (a module type's own name).
    pub fn type_name(&self) -> &str {
        match self {
            ValueKind::String => "string",
            ValueKind::List => "list",
            ValueKind::Set => "set",
            ValueKind::SortedSet => "zset",
            ValueKind::Hash => "hash",
            ValueKind::Stream => "stream",
            ValueKind::Module(name) => name,
        }
    }
}

/// How a value of a type byte is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One string.
    Blob,
    /// A count, then that many units (elements, or quicklist nodes).
    Units,
    Stream,
    Module2,
    ModulePreGa,
}

pub fn shape(rdb_type: u8) -> Option<Shape> {
    Some(match rdb_type {
        TYPE_STRING | TYPE_HASH_ZIPMAP | TYPE_LIST_ZIPLIST | TYPE_SET_INTSET | TYPE_ZSET_ZIPLIST
        | TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK | TYPE_ZSET_LISTPACK | TYPE_SET_LISTPACK => Shape::Blob,
        TYPE_LIST | TYPE_SET | TYPE_ZSET | TYPE_HASH | TYPE_ZSET_2 | TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            Shape::Units
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => Shape::Stream,
        TYPE_MODULE_2 => Shape::Module2,
        TYPE_MODULE_PRE_GA => Shape::ModulePreGa,
        _ => return None,
    })
}

/// Elements of one value, in file order: a whole string, or a run of collection elements (a
/// hash field with its value, a sorted-set member with its score, count as one element).
#[derive(Debug, Clone, PartialEq)]
pub enum Elements {
    String(Bytes),
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    SortedSet(Vec<(Bytes, f64)>),
    Hash(Vec<(Bytes, Bytes)>),
}

impl Elements {
    /// The number of elements (1 for a string).
    pub fn len(&self) -> usize {
        match self {
            Elements::String(_) => 1,
            Elements::List(v) | Elements::Set(v) => v.len(),
            Elements::SortedSet(v) => v.len(),
            Elements::Hash(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of value these elements belong to.
    pub fn kind(&self) -> ValueKind {
        match self {
            Elements::String(_) => ValueKind::String,
            Elements::List(_) => ValueKind::List,
            Elements::Set(_) => ValueKind::Set,
            Elements::SortedSet(_) => ValueKind::SortedSet,
            Elements::Hash(_) => ValueKind::Hash,
        }
    }

    /// An empty collection of a kind (`None` for kinds without elements).
    pub(crate) fn empty(kind: &ValueKind) -> Option<Elements> {
        Some(match kind {
            ValueKind::List => Elements::List(Vec::new()),
            ValueKind::Set => Elements::Set(Vec::new()),
            ValueKind::SortedSet => Elements::SortedSet(Vec::new()),
            ValueKind::Hash => Elements::Hash(Vec::new()),
            _ => return None,
        })
    }
}

fn split_vec<T>(v: &mut Vec<T>, chunk: usize, flush: bool, wrap: fn(Vec<T>) -> Elements, out: &mut VecDeque<Elements>) {
    let take = if flush { v.len() } else { v.len() / chunk * chunk };
    if take == 0 {
        return;
    }
    let rest = v.split_off(take);
    let mut it = std::mem::replace(v, rest).into_iter();
    loop {
        let c: Vec<T> = it.by_ref().take(chunk).collect();
        if c.is_empty() {
            break;
        }
        out.push_back(wrap(c));
    }
}

/// Moves every full chunk of `chunk` elements from the front of `pending` to `out`; with
/// `flush`, the partial rest too (a string is always moved whole).
pub fn move_chunks(pending: &mut Elements, chunk: usize, flush: bool, out: &mut VecDeque<Elements>) {
    let chunk = chunk.max(1);
    match pending {
        Elements::String(s) => {
            if flush {
                out.push_back(Elements::String(std::mem::take(s)));
            }
        }
        Elements::List(v) => split_vec(v, chunk, flush, Elements::List, out),
        Elements::Set(v) => split_vec(v, chunk, flush, Elements::Set, out),
        Elements::SortedSet(v) => split_vec(v, chunk, flush, Elements::SortedSet, out),
        Elements::Hash(v) => split_vec(v, chunk, flush, Elements::Hash, out),
    }
}

/// Reads one unit of an element-by-element value and appends its elements to `out`.
pub async fn read_unit<R: AsyncBufRead + Unpin>(
    input: &mut Input<R>,
    rdb_type: u8,
    out: &mut Elements,
    max: usize,
) -> Result<(), RdbError> {
    match (rdb_type, out) {
        (TYPE_LIST, Elements::List(v)) | (TYPE_SET, Elements::Set(v)) => {
            v.push(input.string(max).await?);
        }
        (TYPE_ZSET, Elements::SortedSet(v)) => {
            let member = input.string(max).await?;
            v.push((member, input.text_double().await?));
        }
        (TYPE_ZSET_2, Elements::SortedSet(v)) => {
            let member = input.string(max).await?;
            v.push((member, input.binary_double().await?));
        }
        (TYPE_HASH, Elements::Hash(v)) => {
            let field = input.string(max).await?;
            v.push((field, input.string(max).await?));
        }
        (TYPE_LIST_QUICKLIST, Elements::List(v)) => {
            let node = input.string(max).await?;
            let entries = compact::ziplist_entries(&node).map_err(|e| RdbError::compact(e, input.consumed()))?;
            v.extend(entries);
        }
        (TYPE_LIST_QUICKLIST_2, Elements::List(v)) => {
            let container = input.len().await?;
            let node = input.string(max).await?;
            match container {
                CONTAINER_PLAIN => v.push(node),
                CONTAINER_PACKED => {
                    v.extend(compact::listpack_entries(&node).map_err(|e| RdbError::compact(e, input.consumed()))?)
                }
                other => {
                    return Err(input.corrupt("quicklist node", format!("unknown container {other}")));
                }
            }
        }
        (t, out) => {
            return Err(input.corrupt("value", format!("type {t} is not read into {:?} elements", out.kind())));
        }
    }
    Ok(())
}

/// Decodes the blob of a single-blob value.
pub fn decode_blob(rdb_type: u8, blob: Bytes, offset: u64) -> Result<Elements, RdbError> {
    let c = |e| RdbError::compact(e, offset);
    Ok(match rdb_type {
        TYPE_STRING => Elements::String(blob),
        TYPE_HASH_ZIPMAP => Elements::Hash(compact::zipmap_pairs(&blob).map_err(c)?),
        TYPE_LIST_ZIPLIST => Elements::List(compact::ziplist_entries(&blob).map_err(c)?),
        TYPE_SET_INTSET => Elements::Set(compact::intset_members(&blob).map_err(c)?),
        TYPE_SET_LISTPACK => Elements::Set(compact::listpack_entries(&blob).map_err(c)?),
        TYPE_ZSET_ZIPLIST => {
            Elements::SortedSet(compact::scored(compact::ziplist_entries(&blob).map_err(c)?, "ziplist").map_err(c)?)
        }
        TYPE_ZSET_LISTPACK => {
            Elements::SortedSet(compact::scored(compact::listpack_entries(&blob).map_err(c)?, "listpack").map_err(c)?)
        }
        TYPE_HASH_ZIPLIST => {
            Elements::Hash(compact::pairs(compact::ziplist_entries(&blob).map_err(c)?, "ziplist").map_err(c)?)
        }
        TYPE_HASH_LISTPACK => {
            Elements::Hash(compact::pairs(compact::listpack_entries(&blob).map_err(c)?, "listpack").map_err(c)?)
        }
        other => {
            return Err(RdbError::corrupt("value", offset, format!("type {other} is not a single-blob encoding")));
        }
    })
}

/// Reads past a stream value (types 15, 19, 21).
pub async fn skip_stream<R: AsyncBufRead + Unpin>(
    input: &mut Input<R>,
    rdb_type: u8,
    max: usize,
) -> Result<(), RdbError> {
    let listpacks = input.len().await?;
    for _ in 0..listpacks {
        input.skip_string(max).await?; // the master id (16 bytes)
        input.skip_string(max).await?; // the listpack
    }
    input.len().await?; // length
    input.len().await?; // last id ms
    input.len().await?; // last id seq
    if rdb_type >= TYPE_STREAM_LISTPACKS_2 {
        for _ in 0..5 {
            // first id (ms, seq), max deleted id (ms, seq), entries added
            input.len().await?;
        }
    }
    let groups = input.len().await?;
    for _ in 0..groups {
        input.skip_string(max).await?; // name
        input.len().await?; // last id ms
        input.len().await?; // last id seq
        if rdb_type >= TYPE_STREAM_LISTPACKS_2 {
            input.len().await?; // entries read
        }
        let pel = input.len().await?;
        for _ in 0..pel {
            input.skip(16).await?; // raw id
            input.skip(8).await?; // delivery time
            input.len().await?; // delivery count
        }
        let consumers = input.len().await?;
        for _ in 0..consumers {
            input.skip_string(max).await?; // name
            input.skip(8).await?; // seen time
            if rdb_type >= TYPE_STREAM_LISTPACKS_3 {
                input.skip(8).await?; // active time
            }
            let pel = input.len().await?;
            for _ in 0..pel {
                input.skip(16).await?;
            }
        }
    }
    Ok(())
}

/// The 9-character name of a module type from its 64-bit id (`moduleTypeNameByID`).
pub fn module_name(id: u64) -> String {
    const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = id >> 10;
    let mut name = [0u8; 9];
    for slot in name.iter_mut().rev() {
        *slot = CHARSET[(id & 63) as usize];
        id >>= 6;
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// Reads past opcode-tagged module data up to and including its EOF opcode.
pub async fn skip_module_value<R: AsyncBufRead + Unpin>(input: &mut Input<R>, max: usize) -> Result<(), RdbError> {
    loop {
        match input.len().await? {
            MODULE_OPCODE_EOF => return Ok(()),
            MODULE_OPCODE_SINT | MODULE_OPCODE_UINT => {
                input.len().await?;
            }
            MODULE_OPCODE_FLOAT => input.skip(4).await?,
            MODULE_OPCODE_DOUBLE => input.skip(8).await?,
            MODULE_OPCODE_STRING => input.skip_string(max).await?,
            other => {
                return Err(input.corrupt("module value", format!("unknown opcode {other}")));
            }
        }
    }
}

/// Decodes an encoded value (without its type byte: as in a DUMP payload or
/// [`KeyRecord::encoded`](super::KeyRecord)) into elements, at most `chunk` per [`Elements`]
/// (a string is one). Streams and module values have no element form: they need RESTORE.
pub fn decode_value(rdb_type: u8, encoded: &[u8], chunk: usize) -> Result<Vec<Elements>, RdbError> {
    let kind = match ValueKind::of_type(rdb_type) {
        Some(ValueKind::Stream) => {
            return Err(RdbError::NeedsRestore { rdb_type, kind: "stream".into() });
        }
        Some(k) => k,
        None if matches!(rdb_type, TYPE_MODULE_2 | TYPE_MODULE_PRE_GA) => {
            return Err(RdbError::NeedsRestore { rdb_type, kind: "module".into() });
        }
        None => {
            return Err(RdbError::UnknownType { type_byte: rdb_type, offset: 0 });
        }
    };
    let max = usize::MAX;
    run_sync(async {
        let mut input = Input::new(encoded);
        input.context = "an encoded value";
        let mut out = VecDeque::new();
        match shape(rdb_type) {
            Some(Shape::Blob) => {
                let blob = input.string(max).await?;
                let mut all = decode_blob(rdb_type, blob, input.consumed())?;
                move_chunks(&mut all, chunk, true, &mut out);
            }
            _ => {
                let Some(mut pending) = Elements::empty(&kind) else {
                    return Err(input.corrupt("value", "no element form"));
                };
                let n = input.len().await?;
                for _ in 0..n {
                    read_unit(&mut input, rdb_type, &mut pending, max).await?;
                    move_chunks(&mut pending, chunk, false, &mut out);
                }
                move_chunks(&mut pending, chunk, true, &mut out);
            }
        }
        if input.consumed() != encoded.len() as u64 {
            return Err(
                input.corrupt("value", format!("{} bytes after the value", encoded.len() as u64 - input.consumed()))
            );
        }
        Ok(out.into_iter().collect())
    })
}
