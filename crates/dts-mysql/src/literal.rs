//! SQL literals for the full load's INSERT statements, and fields of its `LOAD DATA` text: the
//! hot path of the copy.
//!
//! Rows are read with `SET NAMES binary`, so every value arrives as the column's raw bytes (no
//! charset conversion); the writer session also uses `SET NAMES binary`, so a quoted literal is
//! a binary string that the server stores byte for byte into a latin1, utf8mb4 or BLOB column,
//! and converts to numbers, dates and BIT values exactly as `mysqldump --default-character-set
//! =binary` relies on. The writer's `sql_mode` excludes `NO_BACKSLASH_ESCAPES`, so backslash
//! escapes are the escaping scheme.

/// Appends `bytes` as a quoted, escaped literal.
pub fn push_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'\'');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            0 => b"\\0",
            b'\'' => b"\\'",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0x1a => b"\\Z",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'\'');
}

/// Appends one field of `LOAD DATA` text (`None` is NULL, `\N`): backslash, tab and newline
/// escaped, and NUL, so the text never holds one. Every type goes as its bytes: the statement
/// reads the text as the binary character set (see `full_load::load_sql`).
pub fn push_load_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(bytes) = value else { return out.extend_from_slice(b"\\N") };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0 => b"\\0",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// How a column's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralKind {
    /// A quoted binary string (every type but MySQL's JSON and FLOAT).
    Bytes,
    /// A FLOAT column: the text protocol prints it with 6 significant digits only (1.2345678
    /// arrives as `1.23457`), so the reader selects it widened to DOUBLE (`col * 1e0`, exact,
    /// keeps -0) and the writer stores that decimal text, which rounds back to the same FLOAT.
    Float,
    /// MySQL's native JSON type refuses binary strings: `CONVERT('..' USING utf8mb4)`.
    Json,
}

/// Appends one value (`None` is NULL).
pub fn push_value(out: &mut Vec<u8>, kind: LiteralKind, value: Option<&[u8]>) {
    match (value, kind) {
        (None, _) => out.extend_from_slice(b"NULL"),
        (Some(v), LiteralKind::Bytes | LiteralKind::Float) => push_quoted(out, v),
        (Some(v), LiteralKind::Json) => {
            out.extend_from_slice(b"CONVERT(");
            push_quoted(out, v);
            out.extend_from_slice(b" USING utf8mb4)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bytes_are_escaped_and_everything_else_is_copied() {
        let mut out = Vec::new();
        push_quoted(&mut out, b"a'b\\c\0d\ne\rf\x1ag\xff");
        assert_eq!(out, b"'a\\'b\\\\c\\0d\\ne\\rf\\Zg\xff'".to_vec());
        let mut out = Vec::new();
        push_value(&mut out, LiteralKind::Bytes, None);
        push_value(&mut out, LiteralKind::Json, Some(b"{}"));
        assert_eq!(out, b"NULLCONVERT('{}' USING utf8mb4)".to_vec());
    }

    #[test]
    fn load_data_fields_escape_only_what_the_text_format_needs() {
        let mut out = Vec::new();
        push_load_field(&mut out, Some(b"a\tb\\c\nd\0e'f\r\xff"));
        out.push(b'\t');
        push_load_field(&mut out, None);
        assert_eq!(out, b"a\\tb\\\\c\\nd\\0e'f\r\xff\t\\N".to_vec());
    }
}
