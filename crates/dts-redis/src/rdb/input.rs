//! The byte layer under the RDB reader: reads from an `AsyncBufRead` while counting the bytes
//! consumed, folding them into the running CRC-64 (the EOF checksum) and, while a key's value
//! is being read, copying them into a bounded capture buffer (the value's raw encoding, for
//! RESTORE). On top of it: the RDB length encoding, strings (plain, integer and LZF), and the
//! two double encodings.
//!
//! Correctness: bytes leave the inner reader only in `pull` and `array`, which count,
//! checksum and capture each piece before consuming it, so `consumed`, the CRC and the
//! capture all see the same byte sequence, in file order, exactly once. A
//! length read from the input is checked against the caller's limit before anything is read
//! for it, and buffers grow with the bytes actually received (never sized from a declared
//! length alone), so a corrupt length costs at most the limit and a truncated input costs no
//! more than what arrived. The capture stops (and says so) the moment it would exceed its
//! limit, so it never holds more than that limit.
//!
//! [`run_sync`] drives the same async code over an in-memory `&[u8]`, whose reads never
//! return `Pending`: one poll with a no-op waker completes the future; were it ever pending,
//! that is reported as an error, not a panic.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::crc64::crc64;
use super::error::RdbError;
use super::lzf;

/// Length-prefix special encodings (`RDB_ENC_*`).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Largest piece a buffer grows by before the bytes for it have arrived.
const GROW_STEP: usize = 64 * 1024;

/// A decoded length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// A plain length (6, 14, 32 or 64 bits).
    Plain(u64),
    /// The special string encoding in the low 6 bits of a `11xxxxxx` prefix.
    Encoded(u8),
}

/// The capture of a value's raw bytes.
#[derive(Debug, Default)]
enum Capture {
    #[default]
    Off,
    On {
        buf: Vec<u8>,
        limit: usize,
    },
    /// The capture exceeded its limit and was dropped.
    Overflowed,
}

/// A counted, checksummed, optionally capturing reader.
#[derive(Debug)]
pub struct Input<R> {
    inner: R,
    consumed: u64,
    crc: u64,
    capture: Capture,
    /// What is being read, for the truncation error.
    pub context: &'static str,
}

impl<R> Input<R> {
    pub fn new(inner: R) -> Self {
        Input { inner, consumed: 0, crc: 0, capture: Capture::Off, context: "the header" }
    }

    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The CRC-64 of every byte consumed so far.
    pub fn crc(&self) -> u64 {
        self.crc
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Starts copying consumed bytes, up to `limit` bytes.
    pub fn start_capture(&mut self, limit: usize) {
        self.capture = Capture::On { buf: Vec::with_capacity(limit.min(4096)), limit };
    }

    /// Stops copying; the bytes copied, or `None` when the capture overflowed its limit.
    pub fn end_capture(&mut self) -> Option<Vec<u8>> {
        match std::mem::take(&mut self.capture) {
            Capture::On { buf, .. } => Some(buf),
            Capture::Off | Capture::Overflowed => None,
        }
    }

    /// True once the capture went over its limit (the bytes kept were dropped).
    pub fn capture_overflowed(&self) -> bool {
        matches!(self.capture, Capture::Overflowed)
    }

    pub fn corrupt(&self, what: &'static str, detail: impl Into<String>) -> RdbError {
        RdbError::corrupt(what, self.consumed, detail)
    }
}

/// Appends to the capture, or drops it once it would exceed its limit.
fn capture_push(capture: &mut Capture, bytes: &[u8]) {
    if let Capture::On { buf, limit } = capture {
        if buf.len() + bytes.len() > *limit {
            *capture = Capture::Overflowed;
        } else {
            buf.extend_from_slice(bytes);
        }
    }
}

fn io_error(e: std::io::Error, input_offset: u64, context: &'static str) -> RdbError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        RdbError::Truncated { offset: input_offset, context }
    } else {
        RdbError::Io(e)
    }
}

impl<R: AsyncBufRead + Unpin> Input<R> {
    /// Consumes exactly `n` bytes, appending them to `out` when given. Each piece is counted,
    /// checksummed and captured as it leaves the inner reader.
    async fn pull(&mut self, n: usize, mut out: Option<&mut Vec<u8>>) -> Result<(), RdbError> {
        let mut left = n;
        while left > 0 {
            let (offset, context) = (self.consumed, self.context);
            let buf = self.inner.fill_buf().await.map_err(|e| io_error(e, offset, context))?;
            if buf.is_empty() {
                return Err(RdbError::Truncated { offset, context });
            }
            let k = buf.len().min(left);
            let piece = &buf[..k];
            self.consumed += k as u64;
            self.crc = crc64(self.crc, piece);
            capture_push(&mut self.capture, piece);
            if let Some(o) = out.as_deref_mut() {
                if o.capacity() - o.len() < k {
                    o.reserve(k.max(left.min(GROW_STEP)));
                }
                o.extend_from_slice(piece);
            }
            self.inner.consume(k);
            left -= k;
        }
        Ok(())
    }

    /// Exactly `N` bytes.
    pub async fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut a = [0u8; N];
        let mut filled = 0;
        while filled < N {
            let (offset, context) = (self.consumed, self.context);
            let buf = self.inner.fill_buf().await.map_err(|e| io_error(e, offset, context))?;
            if buf.is_empty() {
                return Err(RdbError::Truncated { offset, context });
            }
            let k = buf.len().min(N - filled);
            a[filled..filled + k].copy_from_slice(&buf[..k]);
            self.inner.consume(k);
            let piece = &a[filled..filled + k];
            self.consumed += k as u64;
            self.crc = crc64(self.crc, piece);
            capture_push(&mut self.capture, piece);
            filled += k;
        }
        Ok(a)
    }

    pub async fn u8(&mut self) -> Result<u8, RdbError> {
        Ok(self.array::<1>().await?[0])
    }

    /// Exactly `n` bytes, `n` already bounded by the caller.
    pub async fn bytes(&mut self, n: usize) -> Result<Vec<u8>, RdbError> {
        let mut v = Vec::new();
        self.pull(n, Some(&mut v)).await?;
        Ok(v)
    }

    /// Reads and drops `n` bytes (still counted, checksummed and captured).
    pub async fn skip(&mut self, n: usize) -> Result<(), RdbError> {
        self.pull(n, None).await
    }

    /// A length prefix.
    pub async fn length(&mut self) -> Result<Length, RdbError> {
        let b = self.u8().await?;
        Ok(match b >> 6 {
            0 => Length::Plain(u64::from(b & 0x3f)),
            1 => {
                let low = self.u8().await?;
                Length::Plain((u64::from(b & 0x3f) << 8) | u64::from(low))
            }
            2 => match b {
                0x80 => Length::Plain(u64::from(u32::from_be_bytes(self.array().await?))),
                0x81 => Length::Plain(u64::from_be_bytes(self.array().await?)),
                _ => {
                    return Err(self.corrupt("length", format!("unknown length prefix {b:#04x}")));
                }
            },
            _ => Length::Encoded(b & 0x3f),
        })
    }

    /// A plain length (a special encoding here is corrupt).
    pub async fn len(&mut self) -> Result<u64, RdbError> {
        match self.length().await? {
            Length::Plain(n) => Ok(n),
            Length::Encoded(e) => {
                Err(self.corrupt("length", format!("a string encoding ({e}) where a length was expected")))
            }
        }
    }

    /// A plain length, bounded by `limit`.
    pub async fn len_within(&mut self, what: &'static str, limit: usize) -> Result<usize, RdbError> {
        let n = self.len().await?;
        bounded(what, n, limit)
    }

    /// A string (plain, integer-encoded, or LZF-compressed), at most `max` bytes long both
    /// as stored and as decompressed.
    pub async fn string(&mut self, max: usize) -> Result<Bytes, RdbError> {
        match self.length().await? {
            Length::Plain(n) => {
                let n = bounded("a string", n, max)?;
                Ok(Bytes::from(self.bytes(n).await?))
            }
            Length::Encoded(ENC_INT8) => Ok(Bytes::from(i8::from_le_bytes(self.array().await?).to_string())),
            Length::Encoded(ENC_INT16) => Ok(Bytes::from(i16::from_le_bytes(self.array().await?).to_string())),
            Length::Encoded(ENC_INT32) => Ok(Bytes::from(i32::from_le_bytes(self.array().await?).to_string())),
            Length::Encoded(ENC_LZF) => {
                let clen = self.len_within("an LZF string (compressed)", max).await?;
                let ulen = self.len_within("an LZF string", max).await?;
                let packed = self.bytes(clen).await?;
                let plain = lzf::decompress(&packed, ulen).map_err(|e| RdbError::lzf(e, self.consumed))?;
                Ok(Bytes::from(plain))
            }
            Length::Encoded(e) => Err(self.corrupt("string", format!("unknown string encoding {e}"))),
        }
    }

    /// Reads past a string without decoding it (no decompression).
    pub async fn skip_string(&mut self, max: usize) -> Result<(), RdbError> {
        match self.length().await? {
            Length::Plain(n) => {
                let n = bounded("a string", n, max)?;
                self.skip(n).await
            }
            Length::Encoded(ENC_INT8) => self.skip(1).await,
            Length::Encoded(ENC_INT16) => self.skip(2).await,
            Length::Encoded(ENC_INT32) => self.skip(4).await,
            Length::Encoded(ENC_LZF) => {
                let clen = self.len_within("an LZF string (compressed)", max).await?;
                let _ulen = self.len_within("an LZF string", max).await?;
                self.skip(clen).await
            }
            Length::Encoded(e) => Err(self.corrupt("string", format!("unknown string encoding {e}"))),
        }
    }

    /// A binary double (8 bytes little endian; `RDB_TYPE_ZSET_2`).
    pub async fn binary_double(&mut self) -> Result<f64, RdbError> {
        Ok(f64::from_le_bytes(self.array().await?))
    }

    /// A double as text with a one-byte length; 253, 254, 255 are NaN, +inf, -inf
    /// (`RDB_TYPE_ZSET`).
    pub async fn text_double(&mut self) -> Result<f64, RdbError> {
        match self.u8().await? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.bytes(usize::from(n)).await?;
                super::compact::parse_score(&text).ok_or_else(|| {
                    self.corrupt("double", format!("{:?} is not a number", String::from_utf8_lossy(&text)))
                })
            }
        }
    }
}

/// Checks a declared length against a limit.
pub fn bounded(what: &'static str, n: u64, limit: usize) -> Result<usize, RdbError> {
    match usize::try_from(n) {
        Ok(v) if v <= limit => Ok(v),
        _ => Err(RdbError::TooLarge { what, len: n, limit: limit as u64 }),
    }
}

/// Runs a future over in-memory input to completion (see the module docs).
pub fn run_sync<T>(fut: impl Future<Output = Result<T, RdbError>>) -> Result<T, RdbError> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(RdbError::Unsupported("in-memory decoding waited for input".into())),
    }
}
