//! Sessions to a MySQL-family server: connecting with a timeout from a `ConnectionSpec`, and
//! turning every `mysql_async` error into a classified `ConnectorError` whose summary we write.

use std::fmt;
use std::io;
use std::time::Duration;

use dts_core::{ConnectionSpec, ConnectorError, ErrorClass, TlsMode};
use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, OptsBuilder, Params, Row, SslOpts};

/// Which end of a migration a session talks to; used in every summary we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Destination => "destination",
        })
    }
}

/// Server error codes an operator must fix (privileges, credentials, unknown database).
const OPERATOR_CODES: [u16; 12] = [1044, 1045, 1049, 1142, 1143, 1211, 1227, 1370, 1419, 1698, 1820, 1862];
/// Server error codes that go away by themselves (lock waits, deadlocks, lost connections).
const TRANSIENT_CODES: [u16; 13] = [1040, 1053, 1158, 1159, 1160, 1161, 1205, 1213, 1317, 1927, 2006, 2013, 4031];
/// `ER_SECURE_TRANSPORT_REQUIRED`: the server takes only encrypted connections.
const INSECURE_TRANSPORT: u16 = 3159;
/// Access-denied family, worded as such in summaries.
const ACCESS_DENIED_CODES: [u16; 9] = [1044, 1045, 1142, 1143, 1211, 1227, 1370, 1698, 1419];

/// One open connection to the source or the destination, remembering which it is so that
/// errors are summarized with the side, address and user (never the password).
pub struct Session {
    conn: Conn,
    side: Side,
    host: String,
    port: u16,
    user: String,
}

/// The driver options of a connection to `spec` (every session and binlog stream of the
/// family connects with these).
pub fn opts(spec: &ConnectionSpec) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname(spec.host.clone())
        .tcp_port(spec.port)
        .user(Some(spec.user.clone()))
        .pass(Some(spec.password.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .ssl_opts(ssl_opts(&spec.tls))
}

/// The driver's TLS settings for a [`TlsMode`]: none, encrypted without verifying the server
/// (`Required`), or the certificate chain checked against the given CA (else the built-in
/// roots) and the host name checked (`VerifyFull`).
fn ssl_opts(tls: &TlsMode) -> Option<SslOpts> {
    match tls {
        TlsMode::Disabled => None,
        TlsMode::Required => {
            Some(SslOpts::default().with_danger_accept_invalid_certs(true).with_danger_skip_domain_validation(true))
        }
        TlsMode::VerifyFull { ca: None } => Some(SslOpts::default()),
        TlsMode::VerifyFull { ca: Some(pem) } => Some(
            SslOpts::default().with_root_certs(vec![pem.as_bytes().to_vec().into()]).with_disable_built_in_roots(true),
        ),
    }
}

/// Whether a session's connection is encrypted, and with which cipher
/// (`SHOW STATUS LIKE 'Ssl_cipher'`: empty on a plain connection).
pub async fn cipher(session: &mut Session) -> Result<Option<String>, ConnectorError> {
    let rows: Vec<(String, String)> =
        session.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'", "reading the connection's encryption").await?;
    Ok(rows.into_iter().next().map(|(_, c)| c).filter(|c| !c.is_empty()))
}

/// `sql_mode` flags that change how the text of dts's own statements is read: string quotes and
/// escapes (`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`) and the combination modes that imply them.
/// Every session drops them at connect, so a literal or identifier dts builds (backslash
/// escapes, backquotes; `accounts`, `literal`, `binlog`) means the same on any server, whatever
/// its global `sql_mode`. Statements replayed from the binlog run in their logged mode instead
/// (`statement`).
const QUOTING_MODES: [&str; 8] =
    ["NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI", "ORACLE", "MSSQL", "DB2", "MAXDB", "POSTGRESQL"];

/// A session `sql_mode` without [`QUOTING_MODES`]; `None` when there is nothing to drop.
fn without_quoting_modes(mode: &str) -> Option<String> {
    let kept: Vec<&str> = mode.split(',').filter(|m| !m.is_empty() && !QUOTING_MODES.contains(m)).collect();
    let plain = kept.iter().all(|m| m.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
    (kept.len() != mode.split(',').filter(|m| !m.is_empty()).count() && plain).then(|| kept.join(","))
}

/// Drops [`QUOTING_MODES`] from a new session's `sql_mode`.
async fn plain_quoting(conn: &mut Conn) -> Result<(), mysql_async::Error> {
    let mode: Option<String> = conn.query_first("SELECT @@SESSION.sql_mode").await?;
    if let Some(mode) = mode.as_deref().and_then(without_quoting_modes) {
        conn.query_drop(format!("SET SESSION sql_mode = '{mode}'")).await?;
    }
    Ok(())
}

/// Whether a connect error is the TLS handshake's (tokio-rustls reports a certificate it
/// rejects as an `InvalidData` I/O error).
fn tls_failure(e: &mysql_async::Error) -> bool {
    use mysql_async::{Error, IoError};
    match e {
        Error::Io(IoError::Tls(_)) => true,
        Error::Io(IoError::Io(io)) => io.kind() == io::ErrorKind::InvalidData,
        _ => false,
    }
}

/// Opens a session; fails with a classified error after `timeout`.
pub async fn connect(spec: &ConnectionSpec, side: Side, timeout: Duration) -> Result<Session, ConnectorError> {
    let opts = opts(spec);
    let target = format!("{side} {}:{}", spec.host, spec.port);
    let open = async {
        let mut conn = Conn::new(opts).await?;
        plain_quoting(&mut conn).await?;
        Ok::<Conn, mysql_async::Error>(conn)
    };
    match tokio::time::timeout(timeout, open).await {
        Ok(Ok(conn)) => Ok(Session { conn, side, host: spec.host.clone(), port: spec.port, user: spec.user.clone() }),
        Ok(Err(e)) if spec.tls != TlsMode::Disabled && tls_failure(&e) => Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            format!(
                "TLS with {target} failed: the server's certificate is not trusted by the given CA (or the \
                 built-in roots without one), or does not name {} (verify-full)",
                spec.host
            ),
            e.to_string(),
        )),
        Ok(Err(e)) => Err(classify(&e, side, &spec.user, &target, "connecting")),
        Err(_) => Err(ConnectorError::new(
            ErrorClass::Transient,
            format!("cannot connect to {target}: timed out after {} s", timeout.as_secs()),
            format!("connect timeout to {target}"),
        )),
    }
}

impl Session {
    pub fn side(&self) -> Side {
        self.side
    }

    /// Turns a driver error that happened while `doing` into a classified error.
    pub fn error(&self, e: &mysql_async::Error, doing: &str) -> ConnectorError {
        let target = format!("{} {}:{}", self.side, self.host, self.port);
        classify(e, self.side, &self.user, &target, doing)
    }

    /// Runs a text-protocol query and collects its rows.
    pub async fn query<T: FromRow + Send + 'static>(
        &mut self,
        sql: &str,
        doing: &str,
    ) -> Result<Vec<T>, ConnectorError> {
        let rows = self.rows(sql, doing).await?;
        self.convert(rows, doing)
    }

    /// Runs a text-protocol query and returns its raw rows.
    pub async fn rows(&mut self, sql: &str, doing: &str) -> Result<Vec<Row>, ConnectorError> {
        match self.conn.query::<Row, _>(sql).await {
            Ok(rows) => Ok(rows),
            Err(e) => Err(self.error(&e, doing)),
        }
    }

    /// Runs a text-protocol query and returns the raw driver error, for callers that react
    /// to specific server codes (an object that does not exist).
    pub async fn rows_raw(&mut self, sql: &str) -> Result<Vec<Row>, mysql_async::Error> {
        self.conn.query::<Row, _>(sql).await
    }

    /// Converts rows without panicking on unexpected shapes or values.
    fn convert<T: FromRow>(&self, rows: Vec<Row>, doing: &str) -> Result<Vec<T>, ConnectorError> {
        rows.into_iter()
            .map(|r| {
                mysql_async::from_row_opt::<T>(r).map_err(|e| {
                    ConnectorError::new(
                        ErrorClass::Fatal,
                        format!("unexpected result from the {} while {doing}", self.side),
                        format!("{e:?}"),
                    )
                })
            })
            .collect()
    }

    /// Runs a text-protocol statement, discarding any result.
    pub async fn query_drop(&mut self, sql: &str, doing: &str) -> Result<(), ConnectorError> {
        match self.conn.query_drop(sql).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.error(&e, doing)),
        }
    }

    /// Runs a text-protocol statement and returns the raw driver error, for callers that
    /// react to specific server codes (dependency retries).
    pub async fn query_drop_raw(&mut self, sql: &str) -> Result<(), mysql_async::Error> {
        self.conn.query_drop(sql).await
    }

    /// Runs a prepared statement with positional parameters and collects its rows.
    pub async fn exec<T: FromRow + Send + 'static>(
        &mut self,
        sql: &str,
        params: Vec<String>,
        doing: &str,
    ) -> Result<Vec<T>, ConnectorError> {
        let params = if params.is_empty() { Params::Empty } else { Params::from(params) };
        match self.conn.exec::<Row, _, _>(sql, params).await {
            Ok(rows) => self.convert(rows, doing),
            Err(e) => Err(self.error(&e, doing)),
        }
    }

    /// The driver connection, for streaming reads on the full-load hot path.
    pub fn conn_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Closes the session politely; errors on close are irrelevant.
    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}

/// Column `index` of a row as text: `Ok(None)` for SQL NULL or a missing column, `Err` when
/// the bytes are not UTF-8 (a definition we could not reproduce faithfully).
pub fn text_column(row: &Row, index: usize) -> Result<Option<String>, std::string::FromUtf8Error> {
    match row.as_ref(index) {
        None | Some(mysql_async::Value::NULL) => Ok(None),
        Some(mysql_async::Value::Bytes(b)) => String::from_utf8(b.clone()).map(Some),
        Some(other) => Ok(Some(other.as_sql(true))),
    }
}

/// The server code of a driver error, if the server sent one.
pub fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

fn io_reason(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset",
        io::ErrorKind::ConnectionAborted => "connection aborted",
        io::ErrorKind::TimedOut => "timed out",
        io::ErrorKind::NotFound => "host not found",
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => "connection closed by the server",
        io::ErrorKind::AddrNotAvailable => "address not available",
        _ => "network error",
    }
}

/// Classifies a driver error and writes its summary; the raw text goes to `detail` only.
fn classify(e: &mysql_async::Error, side: Side, user: &str, target: &str, doing: &str) -> ConnectorError {
    use mysql_async::{DriverError, Error, IoError};
    let detail = e.to_string();
    let (class, summary) = match e {
        Error::Io(IoError::Io(io)) if doing == "connecting" => {
            (ErrorClass::Transient, format!("cannot connect to {target}: {}", io_reason(io)))
        }
        Error::Io(IoError::Io(io)) => {
            (ErrorClass::Transient, format!("lost connection to {target} while {doing}: {}", io_reason(io)))
        }
        Error::Io(IoError::Tls(_)) => (
            ErrorClass::NeedsOperator,
            format!(
                "TLS with {target} failed while {doing}: the server's certificate is not trusted by the given CA \
                 or does not name the host (verify-full), or the TLS handshake was refused"
            ),
        ),
        Error::Server(s) if s.code == INSECURE_TRANSPORT => (
            ErrorClass::NeedsOperator,
            format!(
                "{target} accepts only encrypted connections (require_secure_transport=ON): give the job's {side} \
                 a TLS mode (required, or verify-full with a CA)"
            ),
        ),
        Error::Driver(DriverError::NoClientSslFlagFromServer) => (
            ErrorClass::NeedsOperator,
            format!("{target} does not offer TLS, and the job's {side} asks for it: enable TLS on the server"),
        ),
        Error::Server(s) if ACCESS_DENIED_CODES.contains(&s.code) => (
            ErrorClass::NeedsOperator,
            format!("access denied for user '{user}' on {target} while {doing} (MySQL error {})", s.code),
        ),
        Error::Server(s) if s.code == 1049 => {
            (ErrorClass::NeedsOperator, format!("unknown database on {target} while {doing} (MySQL error 1049)"))
        }
        Error::Server(s) => {
            let class = if TRANSIENT_CODES.contains(&s.code) {
                ErrorClass::Transient
            } else if OPERATOR_CODES.contains(&s.code) {
                ErrorClass::NeedsOperator
            } else {
                ErrorClass::Fatal
            };
            (class, format!("server error {} ({}) on {side} while {doing}", s.code, s.state))
        }
        Error::Driver(DriverError::ConnectionClosed | DriverError::PoolDisconnected) => {
            (ErrorClass::Transient, format!("lost connection to {target} while {doing}"))
        }
        Error::Driver(DriverError::UnknownAuthPlugin { .. } | DriverError::CleartextPluginDisabled) => {
            (ErrorClass::NeedsOperator, format!("unsupported authentication method for user '{user}' on {target}"))
        }
        Error::Driver(_) => (ErrorClass::Fatal, format!("protocol error with {target} while {doing}")),
        Error::Url(_) => (ErrorClass::NeedsOperator, format!("invalid connection settings for {target}")),
        Error::Other(_) => (ErrorClass::Fatal, format!("unexpected error with {target} while {doing}")),
    };
    tracing::debug!(%side, %summary, %detail, "mysql error");
    ConnectorError::new(class, summary, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_needs_an_operator_and_keeps_the_server_text_out_of_the_summary() {
        let e = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1045,
            message: "Access denied for user 'u'@'x' (using password: YES) secret-ish".into(),
            state: "28000".into(),
        });
        let c = classify(&e, Side::Destination, "u", "destination 127.0.0.1:3306", "connecting");
        assert_eq!(c.class, ErrorClass::NeedsOperator);
        assert!(!c.summary.contains("secret-ish"));
        assert!(c.summary.contains("access denied for user 'u'"));
        assert!(c.detail.contains("secret-ish"));
    }

    #[test]
    fn deadlocks_and_gone_away_are_transient_and_syntax_errors_fatal() {
        for (code, class) in [(1213, ErrorClass::Transient), (2006, ErrorClass::Transient), (1064, ErrorClass::Fatal)] {
            let e = mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: "m".into(),
                state: "HY000".into(),
            });
            assert_eq!(classify(&e, Side::Source, "u", "source h:1", "reading").class, class);
        }
    }

    #[test]
    fn quoting_modes_are_dropped_from_a_session_sql_mode_and_others_kept() {
        assert_eq!(
            without_quoting_modes("STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES,ANSI_QUOTES,NO_ENGINE_SUBSTITUTION")
                .as_deref(),
            Some("STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION")
        );
        assert_eq!(without_quoting_modes("NO_BACKSLASH_ESCAPES").as_deref(), Some(""));
        assert_eq!(without_quoting_modes("STRICT_TRANS_TABLES"), None);
        assert_eq!(without_quoting_modes(""), None);
        assert_eq!(without_quoting_modes("ANSI_QUOTES,x'"), None, "never spliced unless plain words");
    }

    #[test]
    fn refused_connections_are_transient() {
        let e = mysql_async::Error::Io(mysql_async::IoError::Io(io::Error::from(io::ErrorKind::ConnectionRefused)));
        let c = classify(&e, Side::Source, "u", "source 127.0.0.1:3307", "connecting");
        assert_eq!(c.class, ErrorClass::Transient);
        assert_eq!(c.summary, "cannot connect to source 127.0.0.1:3307: connection refused");
    }
}
