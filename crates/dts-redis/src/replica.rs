//! dts as a replica of a Redis master: the handshake (`REPLCONF` + `PSYNC`), the snapshot
//! framing of a full resync (`$<len>` disk-based or `$EOF:<mark>` diskless), and the command
//! stream that follows, read by a task of its own in chunks with the offset of each command.
//!
//! Offsets follow Redis: after `+FULLRESYNC <replid> <offset>` the replica is at `offset`; every
//! byte of the command stream read afterwards adds one. A replica at offset `o` resumes with
//! `PSYNC <replid> <o + 1>`, and the master answers `+CONTINUE` when its backlog still holds
//! everything after `o`, so nothing is read twice and nothing is skipped.

use bytes::Bytes;
use dts_core::ConnectionSpec;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::conn::{Conn, ReadHalf, WriteHalf};
use crate::error::{RedisError, Result};
use crate::resp::{Command, Reply, parse_command};

/// How a `PSYNC` was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStart {
    /// A snapshot follows; afterwards the stream is at `offset`.
    Full { replid: String, offset: i64 },
    /// The stream continues after the requested offset (the master's replication id, which a
    /// failover may have changed).
    Continue { replid: String },
}

/// How the snapshot of a full resync is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotFraming {
    /// `$<len>`: exactly `len` bytes.
    Length(u64),
    /// `$EOF:<40 bytes>`: the RDB, then the same 40 bytes.
    EofMark([u8; 40]),
}

/// A replica connection after the handshake.
pub struct ReplicaLink {
    pub reader: BufReader<ReadHalf>,
    pub writer: BufWriter<WriteHalf>,
    pub addr: String,
    pub start: SyncStart,
}

/// Connects to the master, authenticates, announces the capabilities dts reads (`eof`:
/// diskless snapshots; `psync2`: replication id changes after a failover) and asks for the
/// stream after `resume` (`None`: a full resync).
pub async fn handshake(spec: &ConnectionSpec, resume: Option<(&str, i64)>) -> Result<ReplicaLink> {
    let mut conn = Conn::open(spec).await?;
    let ping = conn.call(&["PING"]).await?;
    if let Reply::Error(e) = ping {
        return Err(crate::conn::server_error(&["PING"], &e));
    }
    let port = conn.sockets.0.port().to_string();
    conn.ok(&["REPLCONF", "listening-port", &port]).await?;
    conn.ok(&["REPLCONF", "capa", "eof", "capa", "psync2"]).await?;
    let (replid, offset) = match resume {
        Some((id, o)) => (id.to_string(), (o + 1).to_string()),
        None => ("?".to_string(), "-1".to_string()),
    };
    let mut psync = Vec::new();
    crate::resp::encode_command(&mut psync, &["PSYNC", &replid, &offset]);
    conn.writer.write_all(&psync).await?;
    conn.writer.flush().await?;
    // A master preparing a snapshot sends newlines as keep-alives, also before its answer.
    let reply = loop {
        let buf = tokio::time::timeout(crate::conn::CONNECT_TIMEOUT * 6, conn.reader.fill_buf())
            .await
            .map_err(|_| RedisError::Timeout("the answer to PSYNC".into()))??;
        match buf.first() {
            None => return Err(RedisError::Closed),
            Some(b'\n') => conn.reader.consume(1),
            Some(b'\r') if buf.get(1) == Some(&b'\n') => conn.reader.consume(2),
            Some(_) => break crate::resp::read_reply(&mut conn.reader).await?,
        }
    };
    let start = match reply {
        Reply::Status(s) => parse_psync_reply(&String::from_utf8_lossy(&s))?,
        Reply::Error(e) => {
            let text = String::from_utf8_lossy(&e).into_owned();
            if text.starts_with("NOPERM") || text.contains("unknown command") {
                return Err(RedisError::Operator(
                    "the source does not allow PSYNC for this user (renamed command or ACL); dts reads Redis as a replica"
                        .into(),
                ));
            }
            return Err(RedisError::Server { command: "PSYNC".into(), reply: text.chars().take(200).collect() });
        }
        other => return Err(RedisError::Protocol(format!("PSYNC answered {other:?}"))),
    };
    let Conn { reader, writer, addr, .. } = conn;
    Ok(ReplicaLink { reader, writer, addr, start })
}

fn parse_psync_reply(s: &str) -> Result<SyncStart> {
    let mut parts = s.split_whitespace();
    match parts.next() {
        Some("FULLRESYNC") => {
            let replid = parts.next().unwrap_or_default().to_string();
            let offset = parts.next().and_then(|o| o.parse().ok()).unwrap_or(0);
            if replid.len() != 40 {
                return Err(RedisError::Protocol(format!("FULLRESYNC with replication id {replid:?}")));
            }
            Ok(SyncStart::Full { replid, offset })
        }
        Some("CONTINUE") => Ok(SyncStart::Continue { replid: parts.next().unwrap_or_default().to_string() }),
        _ => Err(RedisError::Protocol(format!("PSYNC answered {s:?}"))),
    }
}

impl ReplicaLink {
    /// After `FULLRESYNC`: skips the master's keep-alive newlines and reads the snapshot's header.
    pub async fn snapshot_framing(&mut self) -> Result<SnapshotFraming> {
        loop {
            let mut line = Vec::new();
            tokio::io::AsyncBufReadExt::read_until(&mut self.reader, b'\n', &mut line).await?;
            if line.is_empty() {
                return Err(RedisError::Closed);
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.is_empty() {
                continue;
            }
            if let Some(mark) = text.strip_prefix(b"$EOF:") {
                let mark: [u8; 40] =
                    mark.try_into().map_err(|_| RedisError::Protocol("an EOF mark that is not 40 bytes".into()))?;
                return Ok(SnapshotFraming::EofMark(mark));
            }
            if let Some(len) = text.strip_prefix(b"$") {
                let len = std::str::from_utf8(len)
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .ok_or_else(|| RedisError::Protocol("a snapshot length that is not a number".into()))?;
                return Ok(SnapshotFraming::Length(len));
            }
            if let Some(err) = text.strip_prefix(b"-") {
                return Err(RedisError::Server {
                    command: "SYNC".into(),
                    reply: String::from_utf8_lossy(err).chars().take(200).collect(),
                });
            }
            return Err(RedisError::Protocol("an unexpected line before the snapshot".into()));
        }
    }

    /// Reads the 40-byte end mark of a diskless snapshot and checks it.
    pub async fn expect_eof_mark(&mut self, mark: &[u8; 40]) -> Result<()> {
        let mut got = [0u8; 40];
        self.reader.read_exact(&mut got).await?;
        if &got != mark {
            return Err(RedisError::Protocol("the diskless snapshot did not end with its mark".into()));
        }
        Ok(())
    }

    /// Splits the link: a task reads the command stream into chunks (at most `chunk_bytes` of
    /// raw commands each, sent as soon as the socket has nothing more buffered); the writer half
    /// stays with the caller for `REPLCONF ACK`.
    pub fn stream(self, chunk_bytes: usize, depth: usize) -> (CommandStream, BufWriter<WriteHalf>) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        let reader = self.reader;
        let task = tokio::spawn(read_chunks(reader, tx, chunk_bytes));
        (CommandStream { rx, task }, self.writer)
    }
}

/// Commands read from the master (each knows its length in the stream, which the offset counts).
#[derive(Debug, Default)]
pub struct Chunk {
    /// Bytes of the stream the chunk's commands took.
    pub bytes: usize,
    pub commands: Vec<Command>,
}

/// The command stream, read ahead by a task.
pub struct CommandStream {
    rx: mpsc::Receiver<Result<Chunk>>,
    task: JoinHandle<()>,
}

impl CommandStream {
    /// The next chunk, or `Ok(None)` when none arrived within `idle`.
    pub async fn next(&mut self, idle: std::time::Duration) -> Result<Option<Chunk>> {
        match tokio::time::timeout(idle, self.rx.recv()).await {
            Err(_) => Ok(None),
            Ok(None) => Err(RedisError::Closed),
            Ok(Some(chunk)) => chunk.map(Some),
        }
    }
}

impl Drop for CommandStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_chunks<R: AsyncBufRead + Unpin + Send>(
    mut reader: R,
    tx: mpsc::Sender<Result<Chunk>>,
    chunk_bytes: usize,
) {
    // Commands are parsed where they lie in `buf`; each chunk's bytes are split off and frozen
    // once, and the arguments are slices of them (no copy, no allocation per argument).
    let mut buf = bytes::BytesMut::with_capacity(chunk_bytes + 64 * 1024);
    loop {
        let mut chunk = Chunk::default();
        let mut ranges: Vec<(usize, Vec<(usize, usize)>)> = Vec::new();
        let mut parsed = 0usize;
        let failure = loop {
            match parse_command(&buf[parsed..]) {
                Ok(Some((len, args))) => {
                    ranges.push((len, args));
                    parsed += len;
                    if parsed >= chunk_bytes {
                        break None;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => break Some(e),
            }
            // More bytes are needed: end the chunk if some commands are complete and nothing
            // more is buffered (the next read would wait for the network).
            if !ranges.is_empty() && buffered(&mut reader).await == 0 {
                break None;
            }
            match reader.fill_buf().await {
                Ok([]) => break Some(RedisError::Closed),
                Ok(data) => {
                    let n = data.len();
                    buf.extend_from_slice(data);
                    reader.consume(n);
                }
                Err(e) => break Some(e.into()),
            }
        };
        let frame = buf.split_to(parsed).freeze();
        let mut at = 0usize;
        chunk.commands.reserve(ranges.len());
        for (len, args) in ranges {
            chunk.commands.push(Command {
                args: args.into_iter().map(|(s, l)| frame.slice(at + s..at + s + l)).collect(),
                raw_len: len,
            });
            at += len;
        }
        chunk.bytes = parsed;
        if !chunk.commands.is_empty() && tx.send(Ok(chunk)).await.is_err() {
            return;
        }
        if let Some(e) = failure {
            let _ = tx.send(Err(e)).await;
            return;
        }
    }
}

/// How many bytes the reader holds without reading the socket again.
async fn buffered<R: AsyncBufRead + Unpin>(reader: &mut R) -> usize {
    use std::task::Poll;
    std::future::poll_fn(|cx| match std::pin::Pin::new(&mut *reader).poll_fill_buf(cx) {
        Poll::Ready(Ok(buf)) => Poll::Ready(buf.len()),
        Poll::Ready(Err(_)) => Poll::Ready(1),
        Poll::Pending => Poll::Ready(0),
    })
    .await
}

/// Tells the master how far dts has processed the stream.
pub async fn send_ack(writer: &mut BufWriter<WriteHalf>, offset: i64) -> Result<()> {
    let mut buf = Vec::new();
    crate::resp::encode_command(&mut buf, &[&b"REPLCONF"[..], b"ACK", offset.to_string().as_bytes()]);
    writer.write_all(&buf).await?;
    writer.flush().await?;
    Ok(())
}

/// The arguments of a command as text, for logs (bounded).
pub fn describe(args: &[Bytes]) -> String {
    args.first().map(|a| String::from_utf8_lossy(&a[..a.len().min(32)]).to_ascii_uppercase()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psync_replies_are_understood() {
        let id = "a".repeat(40);
        assert_eq!(
            parse_psync_reply(&format!("FULLRESYNC {id} 1234")).unwrap(),
            SyncStart::Full { replid: id.clone(), offset: 1234 }
        );
        assert_eq!(parse_psync_reply(&format!("CONTINUE {id}")).unwrap(), SyncStart::Continue { replid: id });
        assert_eq!(parse_psync_reply("CONTINUE").unwrap(), SyncStart::Continue { replid: String::new() });
        assert!(parse_psync_reply("FULLRESYNC short 1").is_err());
    }
}
