//! Object definitions as text: quoting identifiers, removing `DEFINER=` clauses, and the
//! normal form used to decide whether a destination object equals its source.

/// Quotes an identifier with backticks, doubling embedded backticks.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `` `db`.`name` `` for messages and qualified statements.
pub fn qualified(db: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(db), quote_ident(name))
}

/// Whether a charset or collation name is safe to splice into SQL (letters, digits, `_`).
pub fn is_plain_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Keywords that end the header of a `CREATE ... VIEW/PROCEDURE/FUNCTION/TRIGGER` statement;
/// a `DEFINER=` clause is only looked for before the first of them.
const OBJECT_KEYWORDS: [&str; 5] = [" VIEW ", " PROCEDURE ", " FUNCTION ", " TRIGGER ", " EVENT "];

/// Removes the `DEFINER=user@host ` clause from a `SHOW CREATE` statement, so the object is
/// created with the destination session's user and definitions compare across servers.
/// Statements without a definer are returned unchanged.
pub fn strip_definer(sql: &str) -> String {
    let upper = sql.to_ascii_uppercase();
    let header_end = OBJECT_KEYWORDS.iter().filter_map(|k| upper.find(k)).min().unwrap_or(sql.len());
    let Some(start) = upper[..header_end].find("DEFINER=") else {
        return sql.to_string();
    };
    let mut pos = start + "DEFINER=".len();
    pos = skip_token(sql, pos);
    if sql[pos..].starts_with('@') {
        pos = skip_token(sql, pos + 1);
    }
    let rest = sql[pos..].trim_start_matches(' ');
    let head = sql[..start].trim_end_matches(' ');
    format!("{head} {rest}")
}

/// Skips one quoted (`` ` ``, `"`, `'`, doubled quotes escape) or bare token starting at `pos`.
fn skip_token(sql: &str, pos: usize) -> usize {
    let bytes = sql.as_bytes();
    let Some(&q) = bytes.get(pos) else { return pos };
    if q == b'`' || q == b'"' || q == b'\'' {
        let mut i = pos + 1;
        while i < bytes.len() {
            if bytes[i] == q {
                if bytes.get(i + 1) == Some(&q) {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            i += 1;
        }
        bytes.len()
    } else {
        let mut i = pos;
        while i < bytes.len() && !matches!(bytes[i], b' ' | b'@' | b'\n' | b'\t') {
            i += 1;
        }
        i
    }
}

/// The comparable form of a `SHOW CREATE TABLE` result: the `AUTO_INCREMENT=N` table option
/// is removed (it moves with the data, not the structure).
pub fn normalize_table(sql: &str) -> String {
    let mut out = Vec::new();
    let mut in_options = false;
    for line in sql.split('\n') {
        if !in_options && line.starts_with(')') {
            in_options = true;
            out.push(remove_auto_increment_option(line));
        } else {
            out.push(line.to_string());
        }
    }
    out.join("\n")
}

fn remove_auto_increment_option(line: &str) -> String {
    let Some(start) = line.find(" AUTO_INCREMENT=") else {
        return line.to_string();
    };
    let digits_from = start + " AUTO_INCREMENT=".len();
    let digits = line[digits_from..].bytes().take_while(u8::is_ascii_digit).count();
    format!("{}{}", &line[..start], &line[digits_from + digits..])
}

/// The comparable form of a view, routine or trigger definition: without its definer and its
/// `SQL SECURITY` (dts creates objects with invoker rights unless told to keep the source's;
/// see `definer`), whitespace runs as one space.
pub fn normalize_program(sql: &str) -> String {
    let stripped = strip_definer(sql);
    let words: Vec<&str> = stripped.split_whitespace().collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let security = words[i].eq_ignore_ascii_case("SQL")
            && words.get(i + 1).is_some_and(|w| w.eq_ignore_ascii_case("SECURITY"))
            && words.get(i + 2).is_some_and(|w| w.eq_ignore_ascii_case("DEFINER") || w.eq_ignore_ascii_case("INVOKER"));
        if security {
            i += 3;
        } else {
            out.push(words[i]);
            i += 1;
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_backquoted_with_embedded_backquotes_doubled() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(qualified("d", "t"), "`d`.`t`");
    }

    #[test]
    fn definer_is_removed_and_sql_security_kept() {
        let v = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`local``host` SQL SECURITY DEFINER VIEW `v` AS select 1";
        assert_eq!(strip_definer(v), "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1");
        let p = "CREATE DEFINER=`root`@`%` PROCEDURE `p`()\nBEGIN SELECT 'DEFINER=x'; END";
        assert_eq!(strip_definer(p), "CREATE PROCEDURE `p`()\nBEGIN SELECT 'DEFINER=x'; END");
        let r = "CREATE DEFINER=`some_role` TRIGGER `t` BEFORE INSERT ON `x` FOR EACH ROW SET @a=1";
        assert_eq!(strip_definer(r), "CREATE TRIGGER `t` BEFORE INSERT ON `x` FOR EACH ROW SET @a=1");
        let none = "CREATE PROCEDURE `p`() SELECT 'DEFINER=`x`@`y`'";
        assert_eq!(strip_definer(none), none);
    }

    #[test]
    fn programs_compare_equal_whatever_their_security_and_definer() {
        let source = "CREATE DEFINER=`root`@`%` PROCEDURE `p`()\nSELECT 1";
        let destination = "CREATE DEFINER=`dts`@`%` PROCEDURE `p`()\n    SQL SECURITY INVOKER\nSELECT 1";
        assert_eq!(normalize_program(source), normalize_program(destination));
        assert_ne!(normalize_program(source), normalize_program("CREATE PROCEDURE `p`() SELECT 2"));
    }

    #[test]
    fn auto_increment_option_is_ignored_but_column_attribute_kept() {
        let a = "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=1000 DEFAULT CHARSET=utf8mb4";
        let b = "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
        assert_eq!(normalize_table(a), b);
        assert_eq!(normalize_table(b), b);
    }

    #[test]
    fn only_plain_words_pass_as_charset_names() {
        assert!(is_plain_word("utf8mb4_unicode_ci"));
        assert!(!is_plain_word("utf8; DROP"));
        assert!(!is_plain_word(""));
    }
}
