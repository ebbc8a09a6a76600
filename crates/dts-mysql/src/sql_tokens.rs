//! The tokens of one MySQL/MariaDB statement as the server reads it, for deciding what a
//! logged statement names (`binlog_filter`): words, quoted identifiers, string literals and
//! punctuation, with comments dropped.
//!
//! Read as the server does, under the logging session's `sql_mode`:
//! - `'...'` (and `"..."` unless `ANSI_QUOTES`) is a string; a doubled quote is a quote, and a
//!   backslash escapes the next character unless `NO_BACKSLASH_ESCAPES`;
//! - `` `...` `` (and `"..."` under `ANSI_QUOTES`) is an identifier, the doubled quote a quote;
//! - `-- ` (two dashes and a space or control character), `#` and `/* ... */` are comments;
//!   `/*! ... */`, `/*!50100 ... */` and MariaDB's `/*M! ... */` are *executable* comments whose
//!   text the server runs, so their content is read as statement text (the conservative reading:
//!   a server of another version might skip it, but never runs more than it).
//!
//! Anything this reader does not understand ends as a `Other` token; a string or comment that
//! never closes ends the statement (the server would have refused it).

/// `sql_mode` bits (the Query event's `Q_SQL_MODE_CODE` value).
const MODE_ANSI_QUOTES: u64 = 0x0000_0004;
const MODE_NO_BACKSLASH_ESCAPES: u64 = 0x0010_0000;

/// How the logging session read quotes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dialect {
    pub ansi_quotes: bool,
    pub no_backslash_escapes: bool,
}

impl Dialect {
    /// The dialect of a logged `sql_mode` (`None`: the server's default, backslash escapes on).
    pub fn of_sql_mode(mode: Option<u64>) -> Dialect {
        let mode = mode.unwrap_or(0);
        Dialect {
            ansi_quotes: mode & MODE_ANSI_QUOTES != 0,
            no_backslash_escapes: mode & MODE_NO_BACKSLASH_ESCAPES != 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An unquoted word: a keyword or an identifier, as written.
    Word(String),
    /// A quoted identifier, unquoted.
    Ident(String),
    /// A string literal, unescaped only as far as quotes go (its content is never a name).
    Str(String),
    /// One punctuation character (`.`, `,`, `(`, `)`, `;`, `=`, `@`, ...).
    Punct(char),
}

impl Token {
    /// Whether this is the unquoted keyword `kw` (case-insensitive).
    pub fn is(&self, kw: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    /// The name this token spells when it stands where an identifier may (a word or a quoted
    /// identifier).
    pub fn name(&self) -> Option<&str> {
        match self {
            Token::Word(w) | Token::Ident(w) => Some(w),
            _ => None,
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Tokens of `sql`, read in `dialect`.
pub fn tokenize(sql: &str, dialect: Dialect) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    // Depth of open executable comments: their closing `*/` is skipped.
    let mut executable = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '#'
            || (c == '-' && next == Some('-') && chars.get(i + 2).is_none_or(|n| n.is_whitespace() || n.is_control()))
        {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '*' && next == Some('/') && executable > 0 {
            executable -= 1;
            i += 2;
        } else if c == '/' && next == Some('*') {
            let mut j = i + 2;
            let marker = match (chars.get(j), chars.get(j + 1)) {
                (Some('!'), _) => Some(j + 1),
                (Some('M' | 'm'), Some('!')) => Some(j + 2),
                _ => None,
            };
            if let Some(mut k) = marker {
                // `/*!` with an optional version number: the rest is statement text.
                while k < chars.len() && chars[k].is_ascii_digit() {
                    k += 1;
                }
                executable += 1;
                i = k;
            } else {
                while j + 1 < chars.len() && !(chars[j] == '*' && chars[j + 1] == '/') {
                    j += 1;
                }
                i = j + 2;
            }
        } else if c == '\'' || c == '"' || c == '`' {
            let backslash = c != '`' && !dialect.no_backslash_escapes;
            let (text, end) = quoted(&chars, i, backslash);
            i = end;
            out.push(if c == '`' || (c == '"' && dialect.ansi_quotes) { Token::Ident(text) } else { Token::Str(text) });
        } else if is_word_char(c) {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

/// The content of the quoted token opening at `start`, and the index after it.
fn quoted(chars: &[char], start: usize, backslash: bool) -> (String, usize) {
    let q = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if backslash && c == '\\' {
            if let Some(&n) = chars.get(i + 1) {
                text.push(n);
            }
            i += 2;
        } else if c == q {
            if chars.get(i + 1) == Some(&q) {
                text.push(q);
                i += 2;
            } else {
                return (text, i + 1);
            }
        } else {
            text.push(c);
            i += 1;
        }
    }
    (text, chars.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str, dialect: Dialect) -> Vec<Token> {
        tokenize(sql, dialect)
    }

    #[test]
    fn identifiers_with_doubled_backquotes_are_one_name() {
        let t = words("DROP TABLE `a``b`.`c.d`", Dialect::default());
        assert_eq!(
            t,
            vec![
                Token::Word("DROP".into()),
                Token::Word("TABLE".into()),
                Token::Ident("a`b".into()),
                Token::Punct('.'),
                Token::Ident("c.d".into())
            ]
        );
    }

    #[test]
    fn a_backslash_ends_a_string_only_under_no_backslash_escapes() {
        let sql = r"ALTER TABLE t COMMENT 'x\', COMMENT '; DROP DATABASE other; -- '";
        let plain = words(sql, Dialect::default());
        assert!(plain.contains(&Token::Str("x', COMMENT ".into())), "{plain:?}");
        assert!(plain.iter().any(|t| t.is("other")), "read with backslash escapes, it drops `other`");
        let nbe = words(sql, Dialect { no_backslash_escapes: true, ..Dialect::default() });
        assert!(nbe.contains(&Token::Str("x\\".into())));
        assert!(nbe.contains(&Token::Str("; DROP DATABASE other; -- ".into())));
        assert!(!nbe.iter().any(|t| t.is("other")));
    }

    #[test]
    fn comments_are_dropped_and_executable_comments_are_read() {
        let t = words("DROP /* TABLE x */ -- y\n # z\n /*!40000 TABLE */ /*M!100000 IF EXISTS*/ a", Dialect::default());
        let names: Vec<&str> = t.iter().filter_map(Token::name).collect();
        assert_eq!(names, ["DROP", "TABLE", "IF", "EXISTS", "a"]);
        let t = words("SELECT 1--2", Dialect::default());
        assert!(t.contains(&Token::Word("2".into())), "`--` without a space is two minus signs");
    }

    #[test]
    fn double_quotes_are_identifiers_under_ansi_quotes() {
        assert_eq!(words("\"a\"\"b\"", Dialect::of_sql_mode(Some(4))), vec![Token::Ident("a\"b".into())]);
        assert_eq!(words("\"a\\\"b\"", Dialect::of_sql_mode(None)), vec![Token::Str("a\"b".into())]);
    }

    #[test]
    fn non_ascii_words_and_unclosed_strings_do_not_panic() {
        let t = words("CREATE TABLE café.naïve (x int) COMMENT 'open", Dialect::default());
        assert!(t.contains(&Token::Word("café".into())));
        assert!(matches!(t.last(), Some(Token::Str(_))));
    }
}
