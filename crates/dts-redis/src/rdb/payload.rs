//! DUMP/RESTORE payloads: building one from a value read out of an RDB file, and checking and
//! splitting one (for the consistency check, which compares DUMP replies).
//!
//! Layout (Redis `createDumpPayload`/`verifyDumpPayload`): the type byte, the encoded value,
//! the RDB version as 2 bytes little endian, then the CRC-64 (see [`crc64`]) of everything
//! before it as 8 bytes little endian. A value copied byte for byte out of an RDB file is a
//! valid payload body because `DUMP` serializes with the same `rdbSaveObject` as the RDB
//! writer; RESTORE on the destination accepts it when the destination's own RDB version is
//! at least the payload's version.

use bytes::Bytes;

use super::crc64::crc64;
use super::error::RdbError;

/// Bytes after the value: the version (2) and the CRC (8).
const FOOTER: usize = 10;

/// Builds the RESTORE payload of a value.
pub fn restore_payload(rdb_type: u8, encoded: &[u8], rdb_version: u16) -> Bytes {
    let mut v = Vec::with_capacity(1 + encoded.len() + FOOTER);
    v.push(rdb_type);
    v.extend_from_slice(encoded);
    v.extend_from_slice(&rdb_version.to_le_bytes());
    let crc = crc64(0, &v);
    v.extend_from_slice(&crc.to_le_bytes());
    Bytes::from(v)
}

/// Checks a DUMP payload's CRC and splits it into (type byte, encoded value, RDB version).
pub fn parse_restore_payload(payload: &Bytes) -> Result<(u8, Bytes, u16), RdbError> {
    let n = payload.len();
    if n < 1 + FOOTER {
        return Err(RdbError::BadPayload(format!(
            "{n} bytes is shorter than a type byte and the {FOOTER}-byte footer"
        )));
    }
    let mut crc_bytes = [0u8; 8];
    crc_bytes.copy_from_slice(&payload[n - 8..]);
    let stored = u64::from_le_bytes(crc_bytes);
    let computed = crc64(0, &payload[..n - 8]);
    if stored != computed {
        return Err(RdbError::BadPayload(format!("the CRC says {stored:#018x}, the bytes give {computed:#018x}")));
    }
    let version = u16::from_le_bytes([payload[n - FOOTER], payload[n - FOOTER + 1]]);
    Ok((payload[0], payload.slice(1..n - FOOTER), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_payload_parses_back_to_its_parts() {
        let p = restore_payload(0, b"\x03abc", 10);
        let (t, enc, ver) = parse_restore_payload(&p).unwrap();
        assert_eq!((t, &enc[..], ver), (0, &b"\x03abc"[..], 10));
    }

    #[test]
    fn a_real_redis_dump_payload_is_accepted() {
        // redis-cli: SET k hello; DUMP k (Redis 7.0.15).
        let p = Bytes::from_static(b"\x00\x05hello\n\x00cr\xdfve4 \n");
        let got = parse_restore_payload(&p);
        // The vector pins the byte layout and the CRC variant together.
        let (t, enc, ver) = got.unwrap();
        assert_eq!((t, &enc[..], ver), (0, &b"\x05hello"[..], 10));
        assert_eq!(restore_payload(0, b"\x05hello", 10), p);
    }

    #[test]
    fn a_flipped_byte_or_a_short_payload_is_refused() {
        let mut p = restore_payload(0, b"\x03abc", 10).to_vec();
        p[2] ^= 1;
        assert!(matches!(parse_restore_payload(&Bytes::from(p)), Err(RdbError::BadPayload(_))));
        assert!(parse_restore_payload(&Bytes::from_static(b"\x00\x01")).is_err());
    }
}
