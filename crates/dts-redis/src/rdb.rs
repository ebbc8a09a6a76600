//! The streaming RDB reader (interface placeholder, replaced by the reader's branch).
#![allow(dead_code, unused_variables)]
use bytes::Bytes;
use tokio::io::AsyncBufRead;

#[derive(Debug, Clone)]
pub struct RdbLimits { pub restore_bytes: usize, pub max_string: usize, pub chunk_elements: usize }
impl Default for RdbLimits { fn default() -> Self { Self { restore_bytes: 512 * 1024, max_string: 512 << 20, chunk_elements: 512 } } }
#[derive(Debug, thiserror::Error)]
pub enum RdbError { #[error("x")] X }
pub struct RdbReader<R> { r: R }
impl<R: AsyncBufRead + Unpin> RdbReader<R> {
    pub fn new(input: R, limits: RdbLimits) -> Self { Self { r: input } }
    pub async fn header(&mut self) -> Result<u16, RdbError> { todo!() }
    pub async fn next(&mut self) -> Result<Option<RdbEvent>, RdbError> { todo!() }
    pub fn consumed(&self) -> u64 { 0 }
    pub fn into_inner(self) -> R { self.r }
}
pub enum RdbEvent {
    Aux { key: Bytes, value: Bytes },
    SelectDb(u32),
    ResizeDb { db_size: u64, expires_size: u64 },
    Key(KeyRecord),
    BigKeyStart { key: Bytes, kind: ValueKind, expire_at_ms: Option<i64> },
    BigKeyChunk(Elements),
    BigKeyEnd,
    Function(Bytes),
    ModuleAux,
}
pub struct KeyRecord { pub key: Bytes, pub kind: ValueKind, pub expire_at_ms: Option<i64>, pub rdb_type: u8, pub encoded: Bytes }
impl KeyRecord {
    pub fn restore_payload(&self, rdb_version: u16) -> Bytes { todo!() }
    pub fn elements(&self, chunk: usize) -> Result<Vec<Elements>, RdbError> { todo!() }
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind { String, List, Set, SortedSet, Hash, Stream, Module(String) }
pub enum Elements { String(Bytes), List(Vec<Bytes>), Set(Vec<Bytes>), SortedSet(Vec<(Bytes, f64)>), Hash(Vec<(Bytes, Bytes)>) }
pub fn decode_value(rdb_type: u8, encoded: &[u8], chunk: usize) -> Result<Vec<Elements>, RdbError> { todo!() }
pub fn parse_restore_payload(payload: &[u8]) -> Result<(u8, Bytes, u16), RdbError> { todo!() }
