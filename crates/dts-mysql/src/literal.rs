//! SQL literals for the full load's INSERT statements, and fields of its `LOAD DATA` text: the
//! hot path of the copy.
//!
//! Rows are read with `SET NAMES binary`, so every value arrives as the column's raw bytes (no
//! charset conversion); the writer session also uses `SET NAMES binary`, so a quoted literal is
//! a binary string that the server stores byte for byte into a latin1, utf8mb4 or BLOB column,
//! and converts to numbers, dates and BIT values exactly as `mysqldump --default-character-set
//! =binary` relies on. The writer's `sql_mode` excludes `NO_BACKSLASH_ESCAPES`, so backslash
//! escapes are the escaping scheme.

/// Appends `bytes`, each byte that `escape` maps replaced by its escape sequence (the
/// unescaped runs between them are copied whole).
#[inline]
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8], escape: impl Fn(u8) -> Option<&'static [u8]>) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let Some(esc) = escape(b) else { continue };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `bytes` as a quoted, escaped literal.
pub fn push_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'\'');
    push_escaped(out, bytes, |b| match b {
        0 => Some(b"\\0"),
        b'\'' => Some(b"\\'"),
        b'\\' => Some(b"\\\\"),
        b'\n' => Some(b"\\n"),
        b'\r' => Some(b"\\r"),
        0x1a => Some(b"\\Z"),
        _ => None,
    });
    out.push(b'\'');
}

/// Appends one field of `LOAD DATA` text (`None` is NULL, `\N`): backslash, tab and newline
/// escaped, and NUL, so the text never holds one. Every type goes as its bytes: the statement
/// reads the text as the binary character set (see `full_load::load_sql`).
pub fn push_load_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(bytes) = value else { return out.extend_from_slice(b"\\N") };
    push_escaped(out, bytes, |b| match b {
        b'\\' => Some(b"\\\\"),
        b'\t' => Some(b"\\t"),
        b'\n' => Some(b"\\n"),
        0 => Some(b"\\0"),
        _ => None,
    });
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
