//! The streaming RDB reader: turns an RDB file (a `SAVE` dump, or the payload of a master's
//! full resynchronization) into [`RdbEvent`]s in file order, for the writer to apply to the
//! destination. It supports RDB versions 1 to 12 (Redis 2.x to 7.4; types of 7.4's hash field
//! expiration are reported as unknown), and every value type of Redis up to 7.2.
//!
//! # Shape
//! [`RdbReader::next`] yields metadata ([`RdbEvent::Aux`], [`RdbEvent::SelectDb`],
//! [`RdbEvent::ResizeDb`], [`RdbEvent::Function`], [`RdbEvent::ModuleAux`]) and keys. A key
//! whose encoded value fits in [`RdbLimits::restore_bytes`] arrives whole as
//! [`RdbEvent::Key`]: its value bytes exactly as in the file, for a `RESTORE` payload
//! ([`KeyRecord::restore_payload`]) or for decoding ([`KeyRecord::elements`]). A bigger value
//! of an element-by-element encoding (linked list, hashtable set/hash, skiplist zset,
//! quicklist) arrives as [`RdbEvent::BigKeyStart`], [`RdbEvent::BigKeyChunk`]s of at most
//! [`RdbLimits::chunk_elements`] elements, and [`RdbEvent::BigKeyEnd`]; the writer deletes
//! the key and adds the chunks. Single-blob encodings (strings, ziplists, listpacks, intsets,
//! zipmaps), streams and module values are always read whole (each string bounded by
//! [`RdbLimits::max_string`], a stream or module value in total too) and arrive as `Key`.
//!
//! # Memory
//! While a key is read the reader holds its raw bytes (at most `restore_bytes`) and the
//! elements decoded so far. Once the raw bytes would exceed `restore_bytes` it drops them and
//! announces the big key; it then hands out the elements already decoded (about
//! `restore_bytes` of data) and from there on holds at most one chunk being filled plus the
//! elements of one unit (one element, or one quicklist node's listpack or ziplist).
//!
//! # Correctness
//! Every byte goes through one counted, checksummed input (the `input` submodule); the EOF
//! opcode's checksum is compared with the CRC-64 of every byte from `REDIS` through the 0xFF
//! opcode (zero means the writer disabled it). Opcodes are decoded as Redis 7.2's `rdbLoad`
//! does; the expire and LRU/LFU opcodes come before the key they belong to, so the expiry is
//! held until the next key takes it. Each value type is read by the reader of its shape (the
//! `value` submodule), which consumes exactly what `rdbSaveObject` wrote; the big-key split
//! happens only at unit boundaries, so the elements handed out are exactly the elements of
//! the value, in order. Single blobs are not validated on the way (their bytes go to RESTORE
//! as they are); [`KeyRecord::elements`] validates them. After an error the position in the
//! input is unknown and every later call fails.
//!
//! Not cancel-safe: dropping a `next()` future mid-way loses the reader's position.

mod compact;
mod crc64;
mod error;
mod input;
mod lzf;
mod payload;
#[cfg(test)]
mod tests;
mod value;

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::io::AsyncBufRead;

pub use crc64::crc64;
pub use error::{RdbError, show_key};
pub use payload::parse_restore_payload;
pub use value::{Elements, ValueKind, decode_value, module_name};

use input::Input;
use value::Shape;

const OP_SLOT_INFO: u8 = 244;
const OP_FUNCTION2: u8 = 245;
const OP_FUNCTION_PRE_GA: u8 = 246;
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

/// The newest RDB version this reader accepts.
pub const MAX_RDB_VERSION: u16 = 12;
/// The first RDB version with an EOF checksum.
const FIRST_CHECKSUM_VERSION: u16 = 5;
/// `RDB_MODULE_OPCODE_UINT`, the only opcode allowed before a module aux "when".
const MODULE_OPCODE_UINT: u64 = 2;

/// Bounds of what the reader holds in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdbLimits {
    /// A key whose encoded value is at most this many bytes is handed over whole
    /// ([`RdbEvent::Key`], a RESTORE payload); a bigger element-by-element value is split
    /// into [`RdbEvent::BigKeyChunk`]s. Default 512 KiB.
    pub restore_bytes: usize,
    /// The longest single string or blob (and stream or module value) accepted. Default
    /// 512 MiB (Redis' `proto-max-bulk-len`).
    pub max_string: usize,
    /// Elements per big-key chunk. Default 512.
    pub chunk_elements: usize,
}

impl Default for RdbLimits {
    fn default() -> Self {
        RdbLimits { restore_bytes: 512 * 1024, max_string: 512 * 1024 * 1024, chunk_elements: 512 }
    }
}

/// One event of an RDB file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbEvent {
    /// An auxiliary field (`redis-ver`, `repl-id`, `aof-base`...); integer-encoded values are
    /// rendered as decimal text.
    Aux { key: Bytes, value: Bytes },
    /// The following keys belong to this database.
    SelectDb(u32),
    /// Size hints for the current database.
    ResizeDb { db_size: u64, expires_size: u64 },
    /// A key whose value was read whole.
    Key(KeyRecord),
    /// A key too big to hold: its elements follow in [`RdbEvent::BigKeyChunk`]s, then
    /// [`RdbEvent::BigKeyEnd`]. The writer deletes the key, adds each chunk, then sets the
    /// expiry.
    BigKeyStart { key: Bytes, kind: ValueKind, expire_at_ms: Option<i64> },
    /// Up to [`RdbLimits::chunk_elements`] elements of the current big key, in file order.
    BigKeyChunk(Elements),
    /// The current big key is complete.
    BigKeyEnd,
    /// A function library's code (`RDB_OPCODE_FUNCTION2`), for `FUNCTION LOAD REPLACE`.
    Function(Bytes),
    /// Module auxiliary data (not tied to a key), read past; reported so it can be logged.
    ModuleAux { module: String },
}

/// A key read whole.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub key: Bytes,
    pub kind: ValueKind,
    /// Absolute expiry, Unix milliseconds.
    pub expire_at_ms: Option<i64>,
    /// The RDB type byte of the value's encoding.
    pub rdb_type: u8,
    /// The encoded value exactly as in the file (without the type byte).
    pub encoded: Bytes,
}

impl KeyRecord {
    /// The DUMP/RESTORE payload: the type byte, the encoded value, `rdb_version` (2 bytes
    /// LE) and the CRC-64 of all that (8 bytes LE). Give the source's RDB version (what
    /// [`RdbReader::header`] returned); the destination refuses versions above its own.
    pub fn restore_payload(&self, rdb_version: u16) -> Bytes {
        payload::restore_payload(self.rdb_type, &self.encoded, rdb_version)
    }

    /// The value decoded into elements, at most `chunk` per [`Elements`], for a destination
    /// that cannot RESTORE it. Streams and module values return
    /// [`RdbError::NeedsRestore`].
    pub fn elements(&self, chunk: usize) -> Result<Vec<Elements>, RdbError> {
        decode_value(self.rdb_type, &self.encoded, chunk)
    }
}

fn key_event(key: Bytes, kind: ValueKind, expire_at_ms: Option<i64>, rdb_type: u8, encoded: Vec<u8>) -> RdbEvent {
    RdbEvent::Key(KeyRecord { key, kind, expire_at_ms, rdb_type, encoded: Bytes::from(encoded) })
}

/// A big key being handed out.
#[derive(Debug)]
struct BigKey {
    rdb_type: u8,
    /// Units (elements or quicklist nodes) still in the input.
    remaining: u64,
    /// Elements read and not yet in a chunk (fewer than a chunk, plus one unit).
    pending: Elements,
    /// Full chunks ready to hand out.
    ready: VecDeque<Elements>,
}

#[derive(Debug)]
enum State {
    Body,
    Big(BigKey),
    Done,
    Failed,
}

/// The streaming RDB reader (see the module docs).
#[derive(Debug)]
pub struct RdbReader<R> {
    input: Input<R>,
    limits: RdbLimits,
    version: Option<u16>,
    state: State,
    /// The expiry of the next key (from an expire opcode).
    expire: Option<i64>,
}

impl<R: AsyncBufRead + Unpin> RdbReader<R> {
    pub fn new(input: R, limits: RdbLimits) -> Self {
        RdbReader { input: Input::new(input), limits, version: None, state: State::Body, expire: None }
    }

    /// Reads `REDIS` and four ASCII digits; returns the RDB version. Idempotent; called by
    /// [`next`](Self::next) if not called before.
    pub async fn header(&mut self) -> Result<u16, RdbError> {
        if let Some(v) = self.version {
            return Ok(v);
        }
        if matches!(self.state, State::Failed) {
            return Err(RdbError::AfterError);
        }
        match self.read_header().await {
            Ok(v) => {
                self.version = Some(v);
                Ok(v)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    async fn read_header(&mut self) -> Result<u16, RdbError> {
        self.input.context = "the header";
        let magic: [u8; 9] = self.input.array().await?;
        if &magic[..5] != b"REDIS" || !magic[5..].iter().all(u8::is_ascii_digit) {
            return Err(RdbError::BadMagic(String::from_utf8_lossy(&magic).into_owned()));
        }
        let version = magic[5..].iter().fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
        if version == 0 || version > MAX_RDB_VERSION {
            return Err(RdbError::UnsupportedVersion(version));
        }
        Ok(version)
    }

    /// The RDB version, once the header was read.
    pub fn version(&self) -> Option<u16> {
        self.version
    }

    /// The next event in file order; `Ok(None)` after the EOF opcode and its checksum were
    /// read (and, when not zero, verified), and on every call after that.
    pub async fn next(&mut self) -> Result<Option<RdbEvent>, RdbError> {
        self.header().await?;
        let result = match self.state {
            State::Failed => return Err(RdbError::AfterError),
            State::Done => return Ok(None),
            State::Big(_) => self.next_big().await.map(Some),
            State::Body => self.next_in_body().await,
        };
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.input.consumed()
    }

    /// The input, positioned just after the last byte read (after the checksum once `next`
    /// returned `None`).
    pub fn into_inner(self) -> R {
        self.input.into_inner()
    }

    async fn next_in_body(&mut self) -> Result<Option<RdbEvent>, RdbError> {
        let max = self.limits.max_string;
        loop {
            self.input.context = "an opcode";
            let offset = self.input.consumed();
            let op = self.input.u8().await?;
            match op {
                OP_AUX => {
                    self.input.context = "an AUX field";
                    let key = self.input.string(max).await?;
                    let value = self.input.string(max).await?;
                    return Ok(Some(RdbEvent::Aux { key, value }));
                }
                OP_RESIZEDB => {
                    self.input.context = "a RESIZEDB opcode";
                    let db_size = self.input.len().await?;
                    let expires_size = self.input.len().await?;
                    return Ok(Some(RdbEvent::ResizeDb { db_size, expires_size }));
                }
                OP_SELECTDB => {
                    self.input.context = "a SELECTDB opcode";
                    let db = self.input.len().await?;
                    let db = u32::try_from(db)
                        .map_err(|_| self.input.corrupt("SELECTDB", format!("database {db} is out of range")))?;
                    return Ok(Some(RdbEvent::SelectDb(db)));
                }
                OP_EXPIRETIME_MS => {
                    self.input.context = "an expire time";
                    self.expire = Some(i64::from_le_bytes(self.input.array().await?));
                }
                OP_EXPIRETIME => {
                    self.input.context = "an expire time";
                    let secs = i32::from_le_bytes(self.input.array().await?);
                    self.expire = Some(i64::from(secs) * 1000);
                }
                OP_IDLE => {
                    self.input.context = "an IDLE opcode";
                    self.input.len().await?;
                }
                OP_FREQ => {
                    self.input.context = "a FREQ opcode";
                    self.input.u8().await?;
                }
                OP_SLOT_INFO => {
                    self.input.context = "a SLOT_INFO opcode";
                    for _ in 0..3 {
                        self.input.len().await?;
                    }
                }
                OP_MODULE_AUX => {
                    self.input.context = "module aux data";
                    let module = module_name(self.input.len().await?);
                    let when_opcode = self.input.len().await?;
                    if when_opcode != MODULE_OPCODE_UINT {
                        return Err(self
                            .input
                            .corrupt("module aux data", format!("`when` has opcode {when_opcode}, not UINT")));
                    }
                    self.input.len().await?;
                    value::skip_module_value(&mut self.input, max).await?;
                    tracing::debug!(module, "RDB module aux data skipped");
                    return Ok(Some(RdbEvent::ModuleAux { module }));
                }
                OP_FUNCTION2 => {
                    self.input.context = "a function library";
                    let code = self.input.string(max).await?;
                    return Ok(Some(RdbEvent::Function(code)));
                }
                OP_FUNCTION_PRE_GA => {
                    return Err(RdbError::Unsupported(
                        "function libraries of Redis 7.0 release candidates (opcode 246; \
                         Redis 7.0 GA refuses them too)"
                            .into(),
                    ));
                }
                OP_EOF => {
                    let computed = self.input.crc();
                    let version = self.version.unwrap_or(0);
                    if version >= FIRST_CHECKSUM_VERSION {
                        self.input.context = "the checksum";
                        let expected = u64::from_le_bytes(self.input.array().await?);
                        if expected != 0 && expected != computed {
                            return Err(RdbError::ChecksumMismatch { expected, computed });
                        }
                    }
                    self.state = State::Done;
                    return Ok(None);
                }
                rdb_type => return self.read_key(rdb_type, offset).await.map(Some),
            }
        }
    }

    async fn read_key(&mut self, rdb_type: u8, offset: u64) -> Result<RdbEvent, RdbError> {
        let Some(shape) = value::shape(rdb_type) else {
            return Err(RdbError::UnknownType { type_byte: rdb_type, offset });
        };
        let max = self.limits.max_string;
        self.input.context = "a key";
        let key = self.input.string(max).await?;
        let expire_at_ms = self.expire.take();
        self.input.context = "a value";
        let value_start = self.input.consumed();
        let kind = ValueKind::of_type(rdb_type);
        match (shape, kind) {
            (Shape::Blob, Some(kind)) => {
                // One string, itself bounded by max_string.
                self.input.start_capture(usize::MAX);
                self.input.skip_string(max).await?;
                let encoded = self.whole_value_capture("a string value", value_start)?;
                Ok(key_event(key, kind, expire_at_ms, rdb_type, encoded))
            }
            (Shape::Units, Some(kind)) => self.read_units(rdb_type, kind, key, expire_at_ms).await,
            (Shape::Stream, Some(kind)) => {
                self.input.start_capture(max);
                value::skip_stream(&mut self.input, rdb_type, max).await?;
                let encoded = self.whole_value_capture("a stream value", value_start)?;
                Ok(key_event(key, kind, expire_at_ms, rdb_type, encoded))
            }
            (Shape::Module2, _) => {
                self.input.start_capture(max);
                let module = module_name(self.input.len().await?);
                value::skip_module_value(&mut self.input, max).await?;
                let encoded = self.whole_value_capture("a module value", value_start)?;
                let kind = ValueKind::Module(module);
                Ok(key_event(key, kind, expire_at_ms, rdb_type, encoded))
            }
            (Shape::ModulePreGa, _) => {
                let module = module_name(self.input.len().await?);
                Err(RdbError::Module { key: show_key(&key), module })
            }
            (_, None) => Err(RdbError::UnknownType { type_byte: rdb_type, offset }),
        }
    }

    /// The capture of a value that must be read whole, or an error when it overflowed.
    fn whole_value_capture(&mut self, what: &'static str, start: u64) -> Result<Vec<u8>, RdbError> {
        let len = self.input.consumed() - start;
        self.input.end_capture().ok_or(RdbError::TooLarge { what, len, limit: self.limits.max_string as u64 })
    }

    /// Reads an element-by-element value: whole while its bytes fit in `restore_bytes`, else
    /// the start of a big key.
    async fn read_units(
        &mut self,
        rdb_type: u8,
        kind: ValueKind,
        key: Bytes,
        expire_at_ms: Option<i64>,
    ) -> Result<RdbEvent, RdbError> {
        let max = self.limits.max_string;
        let Some(mut pending) = Elements::empty(&kind) else {
            return Err(self.input.corrupt("value", "no element form"));
        };
        self.input.start_capture(self.limits.restore_bytes);
        let units = self.input.len().await?;
        let mut read = 0u64;
        loop {
            if self.input.capture_overflowed() {
                self.input.end_capture();
                let mut ready = VecDeque::new();
                value::move_chunks(&mut pending, self.limits.chunk_elements, false, &mut ready);
                self.state = State::Big(BigKey { rdb_type, remaining: units - read, pending, ready });
                return Ok(RdbEvent::BigKeyStart { key, kind, expire_at_ms });
            }
            if read == units {
                break;
            }
            value::read_unit(&mut self.input, rdb_type, &mut pending, max).await?;
            read += 1;
        }
        let start = self.input.consumed();
        let encoded = self.whole_value_capture("an element value", start)?;
        Ok(key_event(key, kind, expire_at_ms, rdb_type, encoded))
    }

    /// The next event of a big key.
    async fn next_big(&mut self) -> Result<RdbEvent, RdbError> {
        let max = self.limits.max_string;
        let chunk = self.limits.chunk_elements;
        self.input.context = "a big value";
        loop {
            let State::Big(big) = &mut self.state else {
                return Err(RdbError::Unsupported("big key state lost".into()));
            };
            if let Some(c) = big.ready.pop_front() {
                return Ok(RdbEvent::BigKeyChunk(c));
            }
            if big.remaining == 0 {
                if !big.pending.is_empty() {
                    value::move_chunks(&mut big.pending, chunk, true, &mut big.ready);
                    continue;
                }
                self.state = State::Body;
                return Ok(RdbEvent::BigKeyEnd);
            }
            value::read_unit(&mut self.input, big.rdb_type, &mut big.pending, max).await?;
            big.remaining -= 1;
            value::move_chunks(&mut big.pending, chunk, false, &mut big.ready);
        }
    }
}
