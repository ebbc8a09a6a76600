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
    // The engine/family seam: deleted jobs wait for their release; the engine's own checkpoints
    // move under `engine/`, the MySQL family's under `mysql/` (every job before this release is
    // of the MySQL family). Running jobs resume from the moved keys.
    r#"
ALTER TABLE jobs ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
CREATE TABLE job_releases (
    job_id     TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    requested  TEXT NOT NULL
);
INSERT OR IGNORE INTO job_checkpoints (job_id, key, value)
    SELECT DISTINCT job_id, 'engine/replicating', '1' FROM job_checkpoints
    WHERE key IN ('incremental/started', 'incremental/position');
INSERT OR IGNORE INTO job_checkpoints (job_id, key, value)
    SELECT job_id, 'engine/stream_start', '{"kind":"binlog",' || substr(value, 2) FROM job_checkpoints
    WHERE key = 'incremental/start' AND substr(value, 1, 1) = '{';
INSERT OR IGNORE INTO job_checkpoints (job_id, key, value)
    SELECT job_id, 'engine/stream_start',
           CASE WHEN substr(value, 1, 1) = '{' THEN '{"kind":"binlog",' || substr(value, 2) ELSE '{"kind":"none"}' END
    FROM job_checkpoints WHERE key = 'full_load/snapshot';
INSERT OR IGNORE INTO job_checkpoints (job_id, key, value)
    SELECT job_id, 'engine/load_started', '1' FROM job_checkpoints WHERE key = 'full_load/plan';
UPDATE job_checkpoints SET key = 'engine/consistency_checked' WHERE key = 'incremental/consistency_checked';
UPDATE job_checkpoints SET key = 'engine/complete_mode' WHERE key = 'incremental/complete_mode';
DELETE FROM job_checkpoints WHERE key IN ('incremental/started', 'incremental/start');
UPDATE job_checkpoints SET key = 'mysql/' || key
    WHERE substr(key, 1, 10) = 'full_load/' OR key = 'incremental/position';
"#,
];

/// The schema version this build writes (the number of migrations).
pub const VERSION: usize = MIGRATIONS.len();

/// The migrations up to `version`, for tests that build a store as an older release wrote it.
pub fn migrate_to(conn: &Connection, version: usize) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(version).skip(current as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    migrate_to(conn, VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_of_the_previous_release_move_to_the_engine_and_family_scopes() {
        let conn = Connection::open_in_memory().unwrap();
        migrate_to(&conn, 3).unwrap();
        conn.execute_batch(
            "INSERT INTO jobs (job_id, account_id, kind, name, status, spec, create_time, detail, check_state, seq) \
             VALUES ('dts-a', 'default', 'migration', 'a', 8, '{}', '', '{}', '{}', 1), \
                    ('dts-b', 'default', 'migration', 'b', 7, '{}', '', '{}', '{}', 2);
             INSERT INTO job_checkpoints (job_id, key, value) VALUES
               ('dts-a', 'full_load/plan', '[]'),
               ('dts-a', 'full_load/snapshot', '{\"file\":\"bin.000001\",\"offset\":4}'),
               ('dts-a', 'full_load/done/app.t#1', '10'),
               ('dts-a', 'incremental/started', '2026-01-01 00:00:00'),
               ('dts-a', 'incremental/position', '{\"file\":\"bin.000002\",\"offset\":99}'),
               ('dts-a', 'incremental/complete_mode', 'waitForSync'),
               ('dts-a', 'consistency/report', '{}'),
               ('dts-b', 'full_load/plan', '[]'),
               ('dts-b', 'full_load/snapshot', 'null'),
               ('dts-b', 'full_load/deferred/app.t', '{}'),
               ('dts-b', 'incremental/start', '{\"file\":\"bin.000003\",\"offset\":7}');",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let keys = |job: &str| -> Vec<(String, String)> {
            let mut stmt =
                conn.prepare("SELECT key, value FROM job_checkpoints WHERE job_id = ?1 ORDER BY key").unwrap();
            stmt.query_map([job], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        let a = keys("dts-a");
        let names: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "consistency/report",
                "engine/complete_mode",
                "engine/load_started",
                "engine/replicating",
                "engine/stream_start",
                "mysql/full_load/done/app.t#1",
                "mysql/full_load/plan",
                "mysql/full_load/snapshot",
                "mysql/incremental/position",
            ]
        );
        let start = &a.iter().find(|(k, _)| k == "engine/stream_start").unwrap().1;
        assert_eq!(start, r#"{"kind":"binlog","file":"bin.000001","offset":4}"#);
        let b = keys("dts-b");
        // A job without a full load: its recorded start wins over the snapshot's null.
        let start = &b.iter().find(|(k, _)| k == "engine/stream_start").unwrap().1;
        assert_eq!(start, r#"{"kind":"binlog","file":"bin.000003","offset":7}"#);
        assert!(b.iter().any(|(k, _)| k == "mysql/full_load/deferred/app.t"));
        assert!(!b.iter().any(|(k, _)| k == "engine/replicating"));
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version as usize, VERSION);
    }
}
