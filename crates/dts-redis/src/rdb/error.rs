//! The errors of the RDB reader ([`RdbError`]) and the bounded, lossy rendering of keys in
//! them.

use super::compact::CompactError;
use super::lzf::LzfError;

/// Longest key prefix (in bytes) an error message shows.
const KEY_SHOWN: usize = 64;

/// A key for a log line or an error: lossy UTF-8, cut after 64 bytes.
pub fn show_key(key: &[u8]) -> String {
    if key.len() <= KEY_SHOWN {
        String::from_utf8_lossy(key).into_owned()
    } else {
        format!("{}… ({} bytes)", String::from_utf8_lossy(&key[..KEY_SHOWN]), key.len())
    }
}

/// What went wrong reading an RDB file, a value or a DUMP payload.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    /// The input could not be read.
    #[error("reading the RDB failed: {0}")]
    Io(#[source] std::io::Error),
    /// The input ended in the middle of something.
    #[error("the RDB input is truncated: it ends at byte {offset} in the middle of {context}")]
    Truncated { offset: u64, context: &'static str },
    /// The first bytes are not `REDIS` and four digits.
    #[error("not an RDB file: it starts with {0:?} instead of REDIS and four digits")]
    BadMagic(String),
    /// The version is newer than this reader knows.
    #[error("RDB version {0} is not supported (this reader knows versions 1 to 12)")]
    UnsupportedVersion(u16),
    /// A type byte (or opcode) this reader does not know.
    #[error("unknown RDB type byte {type_byte} at byte {offset}")]
    UnknownType { type_byte: u8, offset: u64 },
    /// A module value that cannot be read past without the module.
    #[error("the value of key `{key}` has module type `{module}`, which cannot be understood without the module")]
    Module { key: String, module: String },
    /// A length over the configured limit.
    #[error("{what} of {len} bytes is over the configured limit of {limit} bytes")]
    TooLarge { what: &'static str, len: u64, limit: u64 },
    /// The EOF checksum does not match the bytes.
    #[error("RDB checksum mismatch: the file says {expected:#018x}, its bytes give {computed:#018x}")]
    ChecksumMismatch { expected: u64, computed: u64 },
    /// Something inside the input is malformed.
    #[error("corrupt RDB {what} at byte {offset}: {detail}")]
    Corrupt { what: &'static str, offset: u64, detail: String },
    /// A value that has no element form (a stream or a module value).
    #[error("a {kind} value (RDB type {rdb_type}) cannot be decoded into elements; it needs RESTORE")]
    NeedsRestore { rdb_type: u8, kind: String },
    /// A DUMP payload that is too short or whose CRC does not match.
    #[error("bad DUMP payload: {0}")]
    BadPayload(String),
    /// Something valid this reader deliberately does not support.
    #[error("unsupported RDB content: {0}")]
    Unsupported(String),
    /// [`next`](super::RdbReader::next) was called again after it returned an error.
    #[error("the RDB reader already failed; its position in the input is unknown")]
    AfterError,
}

impl RdbError {
    pub(crate) fn corrupt(what: &'static str, offset: u64, detail: impl Into<String>) -> Self {
        RdbError::Corrupt { what, offset, detail: detail.into() }
    }

    pub(crate) fn compact(e: CompactError, offset: u64) -> Self {
        RdbError::Corrupt { what: e.encoding, offset, detail: e.detail }
    }

    pub(crate) fn lzf(e: LzfError, offset: u64) -> Self {
        RdbError::Corrupt { what: "LZF string", offset, detail: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::show_key;

    #[test]
    fn a_long_binary_key_is_shown_cut_and_lossy() {
        let mut key = vec![0xFFu8];
        key.extend(std::iter::repeat_n(b'k', 500));
        let shown = show_key(&key);
        assert!(shown.starts_with('\u{FFFD}'));
        assert!(shown.ends_with("(501 bytes)"));
        assert!(shown.len() < 100);
        assert_eq!(show_key(b"short"), "short");
    }
}
