//! The SQLite schema and its forward-only migrations (`PRAGMA user_version`).

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE api_keys (
    secret_id      TEXT PRIMARY KEY,
    secret_key_enc TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE TABLE jobs (
    job_id        TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        INTEGER NOT NULL,
    spec          TEXT NOT NULL,
    src_password  TEXT,
    dst_password  TEXT,
    create_time   TEXT NOT NULL,
    start_time    TEXT NOT NULL DEFAULT '',
    end_time      TEXT NOT NULL DEFAULT '',
    detail        TEXT NOT NULL,
    errors        TEXT NOT NULL DEFAULT '[]',
    check_state   TEXT NOT NULL,
    version       INTEGER NOT NULL DEFAULT 0,
    seq           INTEGER NOT NULL
);
CREATE INDEX jobs_account ON jobs(account_id, seq);
CREATE INDEX jobs_status ON jobs(status);
"#,
    r#"
CREATE TABLE job_checkpoints (
    job_id  TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (job_id, key)
);
"#,
    r#"
CREATE TABLE dts_instances (
    instance_id     TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    info            TEXT NOT NULL,
    forward_job_id  TEXT NOT NULL UNIQUE,
    reverse_job_id  TEXT UNIQUE,
    create_time     TEXT NOT NULL,
    seq             INTEGER NOT NULL
);
CREATE INDEX dts_instances_account ON dts_instances(account_id, seq);
"#,
];

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
