//! LZF decompression (the format of Redis' `lzf_d.c`), for RDB strings saved with the LZF
//! special encoding. Compression is never needed: dts only reads RDB files.
//!
//! Format: a sequence of control bytes. `ctrl < 32` starts a literal run of `ctrl + 1` bytes
//! copied from the input. Otherwise it is a back reference: length `ctrl >> 5` (7 means "7 plus
//! the next byte"), plus 2; offset `((ctrl & 0x1f) << 8) + next byte + 1` back from the end of
//! the output produced so far; the copy goes byte by byte, so it may overlap what it writes
//! (a run).
//!
//! Correctness and bounds: every input read is checked against the input length and every
//! back reference against the output produced so far, so no index can go out of range; the
//! output never grows past the declared uncompressed length (the caller bounded that length by
//! its limits before calling), and a result of another length is an error, as in Redis
//! (`lzf_decompress(...) != len` is "Invalid LZF compressed string").

/// Why an LZF input is corrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LzfError {
    /// The input ended inside a literal run or a back reference.
    InputTruncated,
    /// A back reference points before the start of the output.
    BadReference,
    /// The output would be longer than declared.
    OutputOverflow,
    /// The input ended with fewer output bytes than declared.
    OutputShort { got: usize, expected: usize },
}

impl std::fmt::Display for LzfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LzfError::InputTruncated => write!(f, "the compressed input ends inside a run"),
            LzfError::BadReference => write!(f, "a back reference points before the output"),
            LzfError::OutputOverflow => write!(f, "the output is longer than declared"),
            LzfError::OutputShort { got, expected } => {
                write!(f, "the output is {got} bytes, {expected} were declared")
            }
        }
    }
}

/// Decompresses `input` into exactly `expected_len` bytes.
pub fn decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>, LzfError> {
    // Grow with the data rather than trusting the declared length for the allocation.
    let mut out: Vec<u8> = Vec::with_capacity(expected_len.min(input.len().saturating_mul(4)));
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input.get(ip..ip + run).ok_or(LzfError::InputTruncated)?;
            if out.len() + run > expected_len {
                return Err(LzfError::OutputOverflow);
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(ip).ok_or(LzfError::InputTruncated)?);
                ip += 1;
            }
            len += 2;
            let low = usize::from(*input.get(ip).ok_or(LzfError::InputTruncated)?);
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            if back > out.len() {
                return Err(LzfError::BadReference);
            }
            if out.len() + len > expected_len {
                return Err(LzfError::OutputOverflow);
            }
            let start = out.len() - back;
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    if out.len() != expected_len {
        return Err(LzfError::OutputShort { got: out.len(), expected: expected_len });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{LzfError, decompress};

    #[test]
    fn a_literal_run_is_copied() {
        assert_eq!(decompress(&[2, b'a', b'b', b'c'], 3).unwrap(), b"abc");
    }

    #[test]
    fn an_overlapping_back_reference_repeats_the_last_byte() {
        // "a", then a reference of length 1+2 = 3 at distance 1: "aaaa".
        assert_eq!(decompress(&[0, b'a', 0x20, 0x00], 4).unwrap(), b"aaaa");
    }

    #[test]
    fn a_long_back_reference_reads_its_extra_length_byte() {
        // "ab", then ctrl 0xE0 (len 7 + extra 10 + 2 = 19) at distance 2.
        let out = decompress(&[1, b'a', b'b', 0xE0, 10, 1], 21).unwrap();
        assert_eq!(out, b"ababababababababababa".to_vec());
    }

    #[test]
    fn a_reference_before_the_start_is_refused() {
        assert_eq!(decompress(&[0, b'a', 0x20, 0x05], 4), Err(LzfError::BadReference));
    }

    #[test]
    fn output_longer_than_declared_is_refused() {
        assert_eq!(decompress(&[2, b'a', b'b', b'c'], 2), Err(LzfError::OutputOverflow));
    }

    #[test]
    fn output_shorter_than_declared_is_refused() {
        assert_eq!(decompress(&[2, b'a', b'b', b'c'], 5), Err(LzfError::OutputShort { got: 3, expected: 5 }));
    }

    #[test]
    fn truncated_input_is_refused() {
        assert_eq!(decompress(&[5, b'a'], 6), Err(LzfError::InputTruncated));
        assert_eq!(decompress(&[0, b'a', 0xE0], 20), Err(LzfError::InputTruncated));
        assert_eq!(decompress(&[0, b'a', 0x20], 4), Err(LzfError::InputTruncated));
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
            let _ = decompress(&bytes, (x >> 40) as usize % 64);
        }
    }
}
