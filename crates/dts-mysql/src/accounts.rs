//! Accounts and grants of a whole-instance migration: every account of the source except the
//! server's own (`mariadb.sys`, `mysql`, anonymous), roles, and `root` unless `IsOverrideRoot`
//! is 1, is created on the destination with its authentication (`SHOW CREATE USER`) and given
//! its grants (`SHOW GRANTS`). The account dts itself logs in with on the destination is never
//! touched. Idempotent: an existing account keeps its authentication (except `root` when
//! overriding, which is altered), and grants are additive.

use dts_core::{ConnectorError, ErrorClass};
use mysql_async::Row;

use crate::connection::{Session, server_code, text_column};

/// A string literal for dts's sessions, which never run with `NO_BACKSLASH_ESCAPES` or
/// `ANSI_QUOTES` (`connection::connect` drops them), so backslash escapes are the scheme.
fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn account(user: &str, host: &str) -> String {
    format!("{}@{}", quote_string(user), quote_string(host))
}

async fn first_texts(s: &mut Session, sql: &str, doing: &str) -> Result<Vec<String>, ConnectorError> {
    let rows: Vec<Row> = s.rows(sql, doing).await?;
    Ok(rows.iter().filter_map(|r| text_column(r, 0).ok().flatten()).collect())
}

/// Migrates the source's accounts; returns how many were created or updated.
pub async fn migrate(
    src: &mut Session,
    dst: &mut Session,
    dst_login: &str,
    override_root: bool,
) -> Result<u64, ConnectorError> {
    let accounts: Vec<(String, String)> = match src
        .query::<(String, String)>("SELECT User, Host FROM mysql.user WHERE is_role = 'N'", "listing accounts")
        .await
    {
        Ok(a) => a,
        Err(_) => src.query("SELECT User, Host FROM mysql.user", "listing accounts").await?,
    };
    let login: Vec<(String, String)> = dst
        .query(
            "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1), SUBSTRING_INDEX(CURRENT_USER(), '@', -1)",
            "reading the login",
        )
        .await?;
    let login = login.into_iter().next().unwrap_or_else(|| (dst_login.to_string(), String::new()));
    let mut migrated = 0;
    let mut failed = Vec::new();
    for (user, host) in accounts {
        let system = user.is_empty() || user == "mariadb.sys" || user == "mysql" || user == "mysql.sys";
        if system || (user == "root" && !override_root) || (user == login.0 && host == login.1) {
            continue;
        }
        let who = account(&user, &host);
        // An account the server does not load (a host name under skip-name-resolve) is skipped.
        let create = match src.rows_raw(&format!("SHOW CREATE USER {who}")).await {
            Ok(rows) => rows.first().and_then(|r| text_column(r, 0).ok().flatten()),
            Err(e) if server_code(&e) == Some(1133) => None,
            Err(e) => return Err(src.error(&e, "reading an account")),
        };
        let Some(create) = create else {
            tracing::info!(account = %who, "account not loaded by the source server; skipped");
            continue;
        };
        let exists: Vec<i64> = dst
            .exec(
                "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?",
                vec![user.clone(), host.clone()],
                "looking for an account",
            )
            .await?;
        let mut statements = Vec::new();
        if exists.first().copied().unwrap_or(0) == 0 {
            statements.push(create);
        } else if user == "root" {
            statements.push(create.replacen("CREATE USER", "ALTER USER", 1));
        }
        statements.extend(first_texts(src, &format!("SHOW GRANTS FOR {who}"), "reading grants").await?);
        let mut ok = true;
        for sql in statements {
            if let Err(e) = dst.query_drop_raw(&sql).await {
                // The statement and the server's text about it may carry the authentication
                // string: log the account and the error code only.
                tracing::warn!(account = %who, code = ?server_code(&e), "cannot apply an account statement on the destination");
                ok = false;
            }
        }
        if ok {
            migrated += 1;
        } else {
            failed.push(format!("{user}@{host}"));
        }
    }
    if !failed.is_empty() {
        return Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            format!("accounts or grants could not be created on the destination: {}", failed.join(", ")),
            "see the server log",
        ));
    }
    Ok(migrated)
}
