//! The binlog position of a time: where a change stream starts so that it yields every
//! transaction committed at or after that time (change tracking's start time, Alibaba's
//! `Checkpoint`).
//!
//! The source's files are looked at from the newest back, by the time each was begun (its format
//! description event): every commit of the files before the newest one begun before the time
//! (strictly: a file begun in the time's second may follow commits of that second) is earlier
//! than the time, so the answer is in that file or at its end. That file is read from its start
//! (row events not decoded) up to the first transaction or statement that committed at or after
//! the time; the position before it is the answer (MariaDB: with the GTID state there). A time
//! no later than the oldest retained file's beginning cannot be served: the changes of that time
//! may be purged from the binlog.

use std::time::Duration;

use dts_core::{BinlogPosition, ConnectionSpec, ConnectorError, ErrorClass};

use crate::binlog::{self, BinlogEvent, BinlogReader};
use crate::connection::{Session, text_column};

/// How long a read waits for the next event before taking the binlog's end as reached.
const IDLE: Duration = Duration::from_secs(2);

fn at(file: &str, offset: u64) -> BinlogPosition {
    BinlogPosition { file: file.to_string(), offset, gtid: None }
}

async fn reader(
    source: &ConnectionSpec,
    control: &mut Session,
    pos: &BinlogPosition,
) -> Result<BinlogReader, ConnectorError> {
    let id = binlog::dump_server_id(3_500_000);
    BinlogReader::open(source, control, pos, id, "finding the binlog position of a time").await
}

/// The first position whose transactions all committed at or after `unix_secs`.
pub async fn position_at(
    source: &ConnectionSpec,
    control: &mut Session,
    unix_secs: i64,
) -> Result<BinlogPosition, ConnectorError> {
    let rows: Vec<mysql_async::Row> = control.rows("SHOW BINARY LOGS", "listing the source's binlog files").await?;
    let files: Vec<String> = rows.iter().filter_map(|r| text_column(r, 0).ok().flatten()).collect();
    let mut begun = None;
    for file in files.iter().rev() {
        let time = reader(source, control, &at(file, 4)).await?.format_description_time(IDLE).await?;
        match time {
            Some(t) if i64::from(t) < unix_secs => {
                begun = Some(file.clone());
                break;
            }
            _ => {}
        }
    }
    let Some(file) = begun else {
        return Err(ConnectorError::new(
            ErrorClass::NeedsOperator,
            format!(
                "the source's binlog does not reach back to the start time {unix_secs} (unix seconds): its oldest \
                 file was begun later"
            ),
            format!("oldest binlog file {}", files.first().map_or("(none)", String::as_str)),
        ));
    };
    let mut boundary = at(&file, 4);
    let mut stream = reader(source, control, &boundary).await?;
    let nothing = |_: &str, _: &str| false;
    while let Some(event) = stream.next(IDLE, &nothing).await? {
        let (end, time) = match event {
            BinlogEvent::Commit { position, timestamp, .. } | BinlogEvent::Statement { position, timestamp, .. } => {
                (position, Some(timestamp))
            }
            BinlogEvent::Rotate { position } => (position, None),
            BinlogEvent::Rows { .. } | BinlogEvent::SkippedRows { .. } => continue,
        };
        if time.is_some_and(|t| i64::from(t) >= unix_secs) {
            break;
        }
        boundary = end;
    }
    drop(stream);
    boundary.gtid = None;
    binlog::with_gtid(control, &mut boundary).await;
    tracing::info!(unix_secs, position = %boundary, "binlog position of a start time");
    Ok(boundary)
}
