//! Where a subscription's events live on the bus: NATS stream names and subjects, Kafka topic
//! names, consumer group names, and the escaping that keeps any database or table name inside
//! one subject token.
//!
//! Subjects are `<prefix>.<subscription>.<database>.<table>` for row and TRUNCATE events,
//! `<prefix>.<subscription>.<database>.$ddl` for DDL, `<prefix>.<subscription>.$tx` for
//! transaction boundaries and `<prefix>.<subscription>.$heartbeat` for heartbeats, so a consumer
//! can filter by database (`<prefix>.<sub>.<db>.>`) or table. Database and table names are
//! escaped injectively: ASCII letters, digits, `_` and `-` stay, every other byte of the UTF-8
//! name becomes `%XX` (upper-case hex). So `.`, `*`, `>`, whitespace and `$` never reach a subject
//! from a name, the reserved `$` tokens cannot collide with a name, and two names never share
//! a token. (The empty name, which MySQL does not allow, becomes a lone `%`.)

use crate::error::BusError;

/// The longest subscription or prefix name accepted (a Kafka topic name is at most 249 bytes).
pub const MAX_NAME: usize = 120;

/// The subject token of the DDL events of a database.
pub const DDL_TOKEN: &str = "$ddl";
/// The subject token of transaction boundary events.
pub const TX_TOKEN: &str = "$tx";
/// The subject token of heartbeat events.
pub const HEARTBEAT_TOKEN: &str = "$heartbeat";

/// Escapes a database or table name into one subject token.
pub fn escape_token(name: &str) -> String {
    if name.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0').to_ascii_uppercase());
            out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0').to_ascii_uppercase());
        }
    }
    out
}

/// The inverse of [`escape_token`]; `None` for text it cannot have produced.
pub fn unescape_token(token: &str) -> Option<String> {
    if token == "%" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Checks a subscription, prefix or group name: 1 to [`MAX_NAME`] ASCII letters, digits, `_`
/// or `-`, so that it is one subject token, part of a stream name, a consumer name and a
/// Kafka topic name as it is.
pub fn check_name(what: &'static str, name: &str) -> Result<(), BusError> {
    let rule = "1 to 120 ASCII letters, digits, '_' or '-'";
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(BusError::BadName { what, name: name.into(), rule });
    }
    Ok(())
}

/// Where on the bus one subscription's events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionNames {
    /// `<prefix>.<subscription>`: the subject prefix and the Kafka topic.
    pub base: String,
    /// The NATS stream (`<PREFIX>_<subscription>`, upper-cased prefix).
    pub stream: String,
}

impl SubscriptionNames {
    pub fn new(prefix: &str, subscription: &str) -> Result<Self, BusError> {
        check_name("prefix", prefix)?;
        check_name("subscription", subscription)?;
        Ok(Self {
            base: format!("{prefix}.{subscription}"),
            stream: format!("{}_{subscription}", prefix.to_uppercase()),
        })
    }

    /// The Kafka topic of the subscription.
    pub fn topic(&self) -> &str {
        &self.base
    }

    /// The subject filter of the whole stream.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.base)
    }

    pub fn subject(&self, route: &Route) -> String {
        match route {
            Route::Table { database, table } => {
                format!("{}.{}.{}", self.base, escape_token(database), escape_token(table))
            }
            Route::Ddl { database } => format!("{}.{}.{DDL_TOKEN}", self.base, escape_token(database)),
            Route::Transaction => format!("{}.{TX_TOKEN}", self.base),
            Route::Heartbeat => format!("{}.{HEARTBEAT_TOKEN}", self.base),
        }
    }
}

/// What an encoded message is about, which picks its subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// A row change, a tombstone or a TRUNCATE of one table.
    Table {
        database: String,
        table: String,
    },
    /// A schema change in a database.
    Ddl {
        database: String,
    },
    /// BEGIN or COMMIT of a source transaction.
    Transaction,
    Heartbeat,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_subject_syntax_are_escaped_into_one_token_and_back() {
        for name in ["plain_Name-1", "a.b", "*", ">", "with space", "$ddl", "%41", "é😀", "", "tab\there", "x.>.*"] {
            let t = escape_token(name);
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-%".contains(&b)), "{name:?} -> {t}");
            assert_eq!(unescape_token(&t).as_deref(), Some(name), "{t}");
        }
        assert_eq!(escape_token("a.b"), "a%2Eb");
        assert_eq!(escape_token("$ddl"), "%24ddl");
        assert_ne!(escape_token("$ddl"), DDL_TOKEN);
        assert_eq!(unescape_token("%4"), None);
        assert_eq!(unescape_token("%ZZ"), None);
    }

    #[test]
    fn subjects_put_database_and_table_in_their_own_tokens() {
        let n = SubscriptionNames::new("dts", "sub-1").unwrap();
        assert_eq!(n.stream, "DTS_sub-1");
        assert_eq!(n.topic(), "dts.sub-1");
        assert_eq!(n.all_subjects(), "dts.sub-1.>");
        let t = Route::Table { database: "shop.eu".into(), table: "order*items".into() };
        assert_eq!(n.subject(&t), "dts.sub-1.shop%2Eeu.order%2Aitems");
        assert_eq!(n.subject(&Route::Ddl { database: "shop".into() }), "dts.sub-1.shop.$ddl");
        assert_eq!(n.subject(&Route::Transaction), "dts.sub-1.$tx");
        assert_eq!(n.subject(&Route::Heartbeat), "dts.sub-1.$heartbeat");
    }

    #[test]
    fn subscription_names_outside_the_safe_alphabet_are_refused() {
        for bad in ["", "a.b", "a b", "a*", "é", &"x".repeat(MAX_NAME + 1)] {
            assert!(matches!(SubscriptionNames::new("dts", bad), Err(BusError::BadName { .. })), "{bad:?}");
        }
        assert!(SubscriptionNames::new("a.b", "s").is_err());
    }
}
