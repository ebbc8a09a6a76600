//! Decoders of the single-blob encodings Redis stores in an RDB string: ziplist
//! (`ziplist.c`), listpack (`listpack.c`), intset (`intset.c`) and zipmap (`zipmap.c`). Each
//! turns a blob into its entries, integers rendered as decimal text the way Redis replies
//! with them.
//!
//! Correctness: every decoder walks the blob with a bounds-checked cursor ([`Cur`]), so a
//! length read from the blob can only make it return [`CompactError`], never index out of
//! range or allocate more than the blob implies (strings are zero-copy slices of the blob).
//! Entries are decoded exactly as the C readers do:
//! - ziplist: header `zlbytes u32 | zltail u32 | zllen u16` (little endian), entries
//!   `prevlen (1 byte, or 0xFE + u32) | encoding | data`, end byte 0xFF. Encodings: `00xxxxxx`
//!   6-bit, `01xxxxxx y` 14-bit big-endian, `10______ + u32 BE` string lengths; `0xC0` i16,
//!   `0xD0` i32, `0xE0` i64, `0xF0` i24, `0xFE` i8 (little endian), `0xF1..=0xFD` the
//!   immediate 0..=12.
//! - listpack: header `total u32 | count u16`, entries `encoding | data | backlen`, end 0xFF.
//!   Encodings: `0xxxxxxx` 7-bit uint, `10xxxxxx` 6-bit string length, `110xxxxx y` 13-bit
//!   int, `1110xxxx y` 12-bit string length, `0xF0 + u32` string length, `0xF1`/`0xF2`/
//!   `0xF3`/`0xF4` i16/i24/i32/i64; the signed forms are two's complement of their width
//!   (the C code's `negstart`/`negmax` arithmetic is the same sign extension). The backlen's
//!   size follows from the entry size (`lpEncodeBacklen`: 1 byte up to 127, 2 below 16383,
//!   3 below 2^21-1, 4 below 2^28-1, else 5).
//! - intset: `encoding u32 (2, 4 or 8) | length u32 | length × encoding bytes`, signed LE.
//! - zipmap: `count u8 | (len key len free value free-bytes)* | 0xFF`, lengths 1 byte below
//!   254, else 0xFE + u32 LE.

use bytes::Bytes;

/// Why a compact blob is corrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactError {
    /// The encoding ("ziplist", "listpack", "intset", "zipmap").
    pub encoding: &'static str,
    /// What was wrong, and where.
    pub detail: String,
}

impl std::fmt::Display for CompactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "corrupt {}: {}", self.encoding, self.detail)
    }
}

/// A bounds-checked cursor over a blob.
struct Cur<'a> {
    blob: &'a Bytes,
    pos: usize,
    encoding: &'static str,
}

impl<'a> Cur<'a> {
    fn new(blob: &'a Bytes, encoding: &'static str) -> Self {
        Cur { blob, pos: 0, encoding }
    }

    fn err(&self, what: &str) -> CompactError {
        CompactError {
            encoding: self.encoding,
            detail: format!("{what} at offset {} of {}", self.pos, self.blob.len()),
        }
    }

    fn peek(&self) -> Result<u8, CompactError> {
        self.blob.get(self.pos).copied().ok_or_else(|| self.err("blob ends without its end byte"))
    }

    fn u8(&mut self) -> Result<u8, CompactError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CompactError> {
        let blob: &'a Bytes = self.blob;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= blob.len())
            .ok_or_else(|| self.err(&format!("an entry of {n} bytes overruns the blob")))?;
        let s = &blob[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn slice(&mut self, n: usize) -> Result<Bytes, CompactError> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.blob.slice(start..self.pos))
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], CompactError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32_le(&mut self) -> Result<u32, CompactError> {
        Ok(u32::from_le_bytes(self.le::<4>()?))
    }

    /// A signed little-endian integer of `width` bytes (1..=8), sign-extended.
    fn int_le(&mut self, width: usize) -> Result<i64, CompactError> {
        let b = self.take(width)?;
        let mut v: u64 = 0;
        for (i, &byte) in b.iter().enumerate() {
            v |= u64::from(byte) << (8 * i);
        }
        let shift = 64 - 8 * width as u32;
        Ok(((v << shift) as i64) >> shift)
    }

    fn expect_end(&self) -> Result<(), CompactError> {
        if self.pos == self.blob.len() { Ok(()) } else { Err(self.err("bytes after the end byte")) }
    }
}

fn int_text(v: i64) -> Bytes {
    Bytes::from(v.to_string())
}

/// The entries of a ziplist, in order.
pub fn ziplist_entries(blob: &Bytes) -> Result<Vec<Bytes>, CompactError> {
    let mut c = Cur::new(blob, "ziplist");
    let zlbytes = c.u32_le()? as usize;
    if zlbytes != blob.len() {
        return Err(c.err(&format!("header says {zlbytes} bytes")));
    }
    let _zltail = c.u32_le()?;
    let zllen = u16::from_le_bytes(c.le::<2>()?);
    let mut out = Vec::with_capacity(usize::from(zllen).min(blob.len() / 2));
    loop {
        let first = c.u8()?;
        if first == 0xFF {
            break;
        }
        // prevlen
        if first == 0xFE {
            c.take(4)?;
        }
        let enc = c.u8()?;
        let entry = match enc >> 6 {
            0 => c.slice(usize::from(enc & 0x3f))?,
            1 => {
                let low = c.u8()?;
                c.slice((usize::from(enc & 0x3f) << 8) | usize::from(low))?
            }
            2 => {
                let len = u32::from_be_bytes(c.le::<4>()?) as usize;
                c.slice(len)?
            }
            _ => match enc {
                0xC0 => int_text(c.int_le(2)?),
                0xD0 => int_text(c.int_le(4)?),
                0xE0 => int_text(c.int_le(8)?),
                0xF0 => int_text(c.int_le(3)?),
                0xFE => int_text(c.int_le(1)?),
                0xF1..=0xFD => int_text(i64::from(enc & 0x0f) - 1),
                _ => return Err(c.err(&format!("unknown entry encoding {enc:#04x}"))),
            },
        };
        out.push(entry);
    }
    c.expect_end()?;
    Ok(out)
}

/// The size of a listpack entry's backlen for an entry of `len` bytes (encoding + data).
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// The entries of a listpack, in order.
pub fn listpack_entries(blob: &Bytes) -> Result<Vec<Bytes>, CompactError> {
    let mut c = Cur::new(blob, "listpack");
    let total = c.u32_le()? as usize;
    if total != blob.len() {
        return Err(c.err(&format!("header says {total} bytes")));
    }
    let count = u16::from_le_bytes(c.le::<2>()?);
    let mut out = Vec::with_capacity(usize::from(count).min(blob.len() / 2));
    loop {
        let start = c.pos;
        let b = c.u8()?;
        if b == 0xFF {
            break;
        }
        let entry = if b & 0x80 == 0 {
            int_text(i64::from(b & 0x7f))
        } else if b & 0xC0 == 0x80 {
            c.slice(usize::from(b & 0x3f))?
        } else if b & 0xE0 == 0xC0 {
            let low = c.u8()?;
            let v = (i64::from(b & 0x1f) << 8) | i64::from(low);
            int_text(if v >= 1 << 12 { v - (1 << 13) } else { v })
        } else if b & 0xF0 == 0xE0 {
            let low = c.u8()?;
            c.slice((usize::from(b & 0x0f) << 8) | usize::from(low))?
        } else {
            match b {
                0xF0 => {
                    let len = c.u32_le()? as usize;
                    c.slice(len)?
                }
                0xF1 => int_text(c.int_le(2)?),
                0xF2 => int_text(c.int_le(3)?),
                0xF3 => int_text(c.int_le(4)?),
                0xF4 => int_text(c.int_le(8)?),
                _ => return Err(c.err(&format!("unknown entry encoding {b:#04x}"))),
            }
        };
        let entry_len = c.pos - start;
        c.take(backlen_size(entry_len))?;
        out.push(entry);
    }
    c.expect_end()?;
    Ok(out)
}

/// The members of an intset, in order.
pub fn intset_members(blob: &Bytes) -> Result<Vec<Bytes>, CompactError> {
    let mut c = Cur::new(blob, "intset");
    let width = c.u32_le()? as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(c.err(&format!("unknown width {width}")));
    }
    let len = c.u32_le()? as usize;
    if len.checked_mul(width) != Some(blob.len() - 8) {
        return Err(c.err(&format!("{len} members of {width} bytes do not fill the blob")));
    }
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(int_text(c.int_le(width)?));
    }
    Ok(out)
}

/// The (field, value) pairs of a zipmap, in order.
pub fn zipmap_pairs(blob: &Bytes) -> Result<Vec<(Bytes, Bytes)>, CompactError> {
    let mut c = Cur::new(blob, "zipmap");
    let _count = c.u8()?;
    let mut out = Vec::new();
    fn zm_len(c: &mut Cur<'_>) -> Result<Option<usize>, CompactError> {
        match c.u8()? {
            0xFF => Ok(None),
            0xFE => Ok(Some(c.u32_le()? as usize)),
            b => Ok(Some(usize::from(b))),
        }
    }
    while let Some(klen) = zm_len(&mut c)? {
        let key = c.slice(klen)?;
        let Some(vlen) = zm_len(&mut c)? else {
            return Err(c.err("a field without a value"));
        };
        let free = usize::from(c.u8()?);
        let value = c.slice(vlen)?;
        c.take(free)?;
        out.push((key, value));
    }
    c.expect_end()?;
    Ok(out)
}

/// Pairs up a flat entry list (field, value, field, value...).
pub fn pairs(entries: Vec<Bytes>, encoding: &'static str) -> Result<Vec<(Bytes, Bytes)>, CompactError> {
    if !entries.len().is_multiple_of(2) {
        return Err(CompactError { encoding, detail: format!("{} entries cannot be pairs", entries.len()) });
    }
    let mut out = Vec::with_capacity(entries.len() / 2);
    let mut it = entries.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

/// Pairs up a flat (member, score, member, score...) list, scores parsed as doubles.
pub fn scored(entries: Vec<Bytes>, encoding: &'static str) -> Result<Vec<(Bytes, f64)>, CompactError> {
    let mut out = Vec::with_capacity(entries.len() / 2);
    for (member, score) in pairs(entries, encoding)? {
        let s = parse_score(&score).ok_or_else(|| CompactError {
            encoding,
            detail: format!("score {:?} is not a number", String::from_utf8_lossy(&score)),
        })?;
        out.push((member, s));
    }
    Ok(out)
}

/// Parses a score as Redis writes it (`%.17g`, `inf`, `-inf`, `nan`, or an integer).
pub fn parse_score(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.trim().parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: &[Bytes]) -> Vec<String> {
        v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
    }

    /// Builds a ziplist from raw entries (prevlen byte, encoding bytes and data).
    fn ziplist(entries: &[&[u8]]) -> Bytes {
        let body: Vec<u8> = entries.concat();
        let total = 10 + body.len() + 1;
        let mut v = Vec::new();
        v.extend_from_slice(&(total as u32).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        v.extend_from_slice(&body);
        v.push(0xFF);
        Bytes::from(v)
    }

    #[test]
    fn a_ziplist_yields_strings_and_every_integer_encoding() {
        let mut long = vec![0u8, 0x40 | 1, 0x2C];
        long.extend(std::iter::repeat_n(b'x', 300));
        let zl = ziplist(&[
            &[0, 0x03, b'a', b'b', b'c'],
            &[5, 0xF1],                         // immediate 0
            &[2, 0xFD],                         // immediate 12
            &[2, 0xFE, 0x80],                   // i8 -128
            &[3, 0xC0, 0x00, 0x80],             // i16 -32768
            &[4, 0xF0, 0xFF, 0xFF, 0x7F],       // i24 8388607
            &[5, 0xD0, 0xFF, 0xFF, 0xFF, 0xFF], // i32 -1
            &[6, 0xE0, 1, 0, 0, 0, 0, 0, 0, 0], // i64 1
            &long,
        ]);
        let got = ziplist_entries(&zl).unwrap();
        assert_eq!(texts(&got[..8]), ["abc", "0", "12", "-128", "-32768", "8388607", "-1", "1"]);
        assert_eq!(got[8].len(), 300);
    }

    #[test]
    fn a_ziplist_entry_with_a_five_byte_prevlen_is_read() {
        let zl = ziplist(&[&[0xFE, 0, 1, 0, 0, 0x01, b'z']]);
        assert_eq!(texts(&ziplist_entries(&zl).unwrap()), ["z"]);
    }

    #[test]
    fn a_ziplist_whose_entry_overruns_the_blob_is_refused() {
        let zl = ziplist(&[&[0, 0x3f, b'a']]);
        assert!(ziplist_entries(&zl).is_err());
        let mut bad = ziplist(&[&[0, 0x01, b'a']]).to_vec();
        bad[0] = 99;
        assert!(ziplist_entries(&Bytes::from(bad)).is_err());
    }

    fn listpack(entries: &[&[u8]]) -> Bytes {
        let mut body = Vec::new();
        for e in entries {
            body.extend_from_slice(e);
            let n = e.len();
            // A valid backlen of the right size (its value is not read).
            body.extend(std::iter::repeat_n(0u8, backlen_size(n)));
        }
        let total = 6 + body.len() + 1;
        let mut v = Vec::new();
        v.extend_from_slice(&(total as u32).to_le_bytes());
        v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        v.extend_from_slice(&body);
        v.push(0xFF);
        Bytes::from(v)
    }

    #[test]
    fn a_listpack_yields_strings_and_every_integer_encoding() {
        let mut s12 = vec![0xE0 | 0x01, 0x00];
        s12.extend(std::iter::repeat_n(b'y', 256));
        let mut s32 = vec![0xF0];
        s32.extend_from_slice(&5000u32.to_le_bytes());
        s32.extend(std::iter::repeat_n(b'w', 5000));
        let lp = listpack(&[
            &[0x83, b'f', b'o', b'o'],
            &[0x7f],                                                 // 127
            &[0xC0 | 0x1f, 0xff],                                    // 13-bit -1
            &[0xC0 | 0x10, 0x00],                                    // 13-bit -4096
            &[0xC0 | 0x0f, 0xff],                                    // 13-bit 4095
            &[0xF1, 0x00, 0x80],                                     // i16 -32768
            &[0xF2, 0xff, 0xff, 0xff],                               // i24 -1
            &[0xF3, 0x00, 0x00, 0x00, 0x80],                         // i32 min
            &[0xF4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // i64 max
            &s12,
            &s32,
        ]);
        let got = listpack_entries(&lp).unwrap();
        assert_eq!(
            texts(&got[..9]),
            ["foo", "127", "-1", "-4096", "4095", "-32768", "-1", "-2147483648", "9223372036854775807"]
        );
        assert_eq!(got[9].len(), 256);
        assert_eq!(got[10].len(), 5000);
    }

    #[test]
    fn a_listpack_with_an_unknown_encoding_is_refused() {
        let lp = listpack(&[&[0xF5]]);
        assert!(listpack_entries(&lp).is_err());
    }

    #[test]
    fn an_intset_yields_its_members_at_every_width() {
        for (width, vals) in [(2u32, vec![-5i64, 7]), (4, vec![-70000, 70000]), (8, vec![i64::MIN, 1 << 40])] {
            let mut v = Vec::new();
            v.extend_from_slice(&width.to_le_bytes());
            v.extend_from_slice(&(vals.len() as u32).to_le_bytes());
            for x in &vals {
                v.extend_from_slice(&x.to_le_bytes()[..width as usize]);
            }
            let got = intset_members(&Bytes::from(v)).unwrap();
            let want: Vec<String> = vals.iter().map(|x| x.to_string()).collect();
            assert_eq!(texts(&got), want);
        }
    }

    #[test]
    fn an_intset_whose_length_does_not_fit_is_refused() {
        let mut v = Vec::new();
        v.extend_from_slice(&2u32.to_le_bytes());
        v.extend_from_slice(&u32::MAX.to_le_bytes());
        v.extend_from_slice(&[1, 0]);
        assert!(intset_members(&Bytes::from(v)).is_err());
        let mut v = Vec::new();
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        assert!(intset_members(&Bytes::from(v)).is_err());
    }

    #[test]
    fn a_zipmap_yields_its_pairs_and_skips_free_bytes() {
        let blob = Bytes::from_static(&[2, 1, b'a', 2, 1, b'x', b'y', 0, 1, b'b', 1, 0, b'z', 0xFF]);
        let got = zipmap_pairs(&blob).unwrap();
        assert_eq!(
            got,
            vec![
                (Bytes::from_static(b"a"), Bytes::from_static(b"xy")),
                (Bytes::from_static(b"b"), Bytes::from_static(b"z"))
            ]
        );
    }

    #[test]
    fn scores_parse_as_redis_writes_them() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-3"), Some(-3.0));
        assert_eq!(parse_score(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"1.0000000000000001e+20"), Some(1.0000000000000001e20));
        assert_eq!(parse_score(b"x"), None);
    }
}
