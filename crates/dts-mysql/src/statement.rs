//! Running a statement the source logged (replayed DDL) on the destination as the source ran
//! it: with the `sql_mode`, character set and default database of the logging session (the
//! Query event's status variables), and as exactly one statement.
//!
//! Why both matter: the text of a statement means what its session state says. Under the
//! source's `NO_BACKSLASH_ESCAPES`, `COMMENT 'x\', COMMENT '; DROP DATABASE other; -- '` is one
//! ALTER with two comments; under another `sql_mode` the same bytes are three statements. So
//! the statement is parsed in the logged state, and it is sent as a prepared statement, which
//! the server parses as a single statement whatever it contains (a multi-statement text never
//! is). Statements the server cannot prepare (routines and triggers on some servers) go as text
//! in the logged state, where the server's parser reads them exactly as the source's did (the
//! source logged exactly one statement).

use dts_core::{ConnectorError, ErrorClass};
use mysql_async::prelude::Queryable;

use crate::binlog::StatementSession;
use crate::connection::{Session, server_code};
use crate::definition::quote_ident;

/// `ER_UNSUPPORTED_PS`: this statement cannot be prepared.
const UNSUPPORTED_PS: u16 = 1295;

/// The session state the applier's DDL session returns to afterwards.
const RESTORE: &str = "SET NAMES binary, SESSION collation_server = DEFAULT, \
                       SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'";

/// Runs `sql` in `schema` (empty: none) in the logged `session` state, then restores the
/// session.
pub async fn run_logged(
    control: &mut Session,
    schema: &str,
    sql: &[u8],
    session: &StatementSession,
) -> Result<(), ConnectorError> {
    let result = run(control, schema, sql, session).await;
    let _ = control.conn_mut().query_drop(RESTORE).await;
    result
}

async fn run(
    control: &mut Session,
    schema: &str,
    sql: &[u8],
    session: &StatementSession,
) -> Result<(), ConnectorError> {
    let conn = control.conn_mut();
    let prepared = async {
        if !schema.is_empty() {
            conn.query_drop(format!("USE {}", quote_ident(schema))).await?;
        }
        if let Some(mode) = session.sql_mode {
            conn.query_drop(format!("SET SESSION sql_mode = {mode}")).await?;
        }
        if let Some((client, connection, server)) = session.charset {
            let full = format!(
                "SET SESSION character_set_client = {client}, SESSION collation_connection = {connection}, \
                 SESSION collation_server = {server}"
            );
            if conn.query_drop(full).await.is_err() {
                // A collation the destination does not know (another server family): the
                // client character set alone decides how the statement's bytes are read.
                conn.query_drop(format!("SET SESSION character_set_client = {client}")).await?;
            }
        }
        Ok::<(), mysql_async::Error>(())
    }
    .await;
    if let Err(e) = prepared {
        return Err(control.error(&e, "preparing the session of a replayed DDL statement"));
    }
    let conn = control.conn_mut();
    let result = match std::str::from_utf8(sql) {
        Ok(text) => match conn.exec_drop(text, ()).await {
            Err(e) if server_code(&e) == Some(UNSUPPORTED_PS) => conn.query_drop(text).await,
            other => other,
        },
        // Not UTF-8 (a latin1 literal, say): the text protocol carries the bytes as logged.
        Err(_) => conn.query_drop(sql).await,
    };
    result.map_err(|e| {
        let mut err = control.error(&e, "replaying a DDL statement");
        if err.class == ErrorClass::Fatal {
            err.class = ErrorClass::NeedsOperator;
        }
        err
    })
}
