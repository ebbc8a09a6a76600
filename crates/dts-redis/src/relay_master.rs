//! dts as the destination's master for one snapshot (the snapshot relay, see `relay`): a
//! listener on an ephemeral port of the address the destination reaches dts at, one accepted
//! connection from the destination's IP, the replica handshake answered (`PING`, `AUTH <token>`,
//! `REPLCONF`, `PSYNC` → `+FULLRESYNC <source replid> <source offset>`), then the source's
//! snapshot framing line and RDB bytes forwarded verbatim, in chunks of what the source link's
//! reader holds (never the whole RDB).
//!
//! Correctness of the forwarding (the destination must get exactly the snapshot, and the command
//! stream after it must stay in the source link's reader for `apply`):
//! - `$<len>`: exactly `len` bytes are taken from the reader; whatever it buffered beyond them is
//!   left in it.
//! - `$EOF:<mark>`: bytes are forwarded up to and including the first occurrence of the 40-byte
//!   mark, found with `memmem` inside each chunk and, across chunk boundaries, in the last 39
//!   bytes forwarded joined with the first 39 of the next chunk; nothing after the mark is
//!   consumed. The mark is 40 random characters the source chose for this transfer, so it does
//!   not occur inside the RDB (the assumption the destination's own replica code makes, which
//!   looks for it at the end of each read); a Redis master sends the command stream of a
//!   diskless transfer only after the replica's first `REPLCONF ACK`, which dts sends after
//!   the snapshot.
//!
//! Who may connect: one connection, from the destination's IP only (others are closed unread),
//! which must authenticate with the one-time token dts set as the destination's `masterauth`
//! before anything but `PING`; a wrong token or another command ends the relay. Handshake
//! commands are bounded (64 KiB each) and must arrive before the deadline.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use memchr::memmem;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use crate::error::{RedisError, Result};
use crate::replica::SnapshotFraming;
use crate::resp::read_command;

/// The most bytes one handshake command may take.
const HANDSHAKE_COMMAND_BYTES: u64 = 64 * 1024;

/// How long one read from the source or one write to the destination may wait (a Redis replica
/// gives up on a silent master after `repl-timeout`, 60 s by default).
pub const STALL: Duration = Duration::from_secs(60);

/// The listener of one relay.
pub struct RelayListener {
    listener: TcpListener,
    addr: SocketAddr,
    replica_ip: IpAddr,
}

impl RelayListener {
    /// Listens on an ephemeral port of `local` (the local address of dts's own connection to
    /// the destination, which the destination can reach back), for `replica_ip` only.
    pub async fn bind(local: IpAddr, replica_ip: IpAddr) -> Result<RelayListener> {
        let listener = TcpListener::bind(SocketAddr::new(local, 0)).await?;
        let addr = listener.local_addr()?;
        Ok(RelayListener { listener, addr, replica_ip: replica_ip.to_canonical() })
    }

    /// Where the destination is to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accepts the destination's connection (connections from other addresses are closed) and
    /// answers its handshake up to `PSYNC`, all before `deadline`.
    pub async fn accept(&self, token: &str, deadline: Instant) -> Result<RelayReplica> {
        loop {
            let (stream, peer) = tokio::time::timeout_at(deadline, self.listener.accept())
                .await
                .map_err(|_| RedisError::Timeout("the destination connecting to dts's snapshot relay".into()))??;
            if peer.ip().to_canonical() != self.replica_ip {
                tracing::warn!(%peer, expected = %self.replica_ip, "a connection to the snapshot relay from another address was closed");
                continue;
            }
            stream.set_nodelay(true)?;
            let (r, w) = stream.into_split();
            let mut replica =
                RelayReplica { reader: BufReader::with_capacity(16 * 1024, r), writer: w, capa_eof: false, peer };
            tokio::time::timeout_at(deadline, replica.handshake(token))
                .await
                .map_err(|_| RedisError::Timeout("the destination's replica handshake with dts".into()))??;
            return Ok(replica);
        }
    }
}

/// The destination's replica connection to dts.
pub struct RelayReplica {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// The replica announced `capa eof` (it reads a diskless `$EOF:` transfer).
    capa_eof: bool,
    peer: SocketAddr,
}

/// Whether `given` is `token`, in time independent of where they differ.
fn token_matches(given: &[u8], token: &[u8]) -> bool {
    given.len() == token.len() && given.iter().zip(token).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

impl RelayReplica {
    /// The replica's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the replica reads `framing`.
    pub fn reads(&self, framing: &SnapshotFraming) -> bool {
        matches!(framing, SnapshotFraming::Length(_)) || self.capa_eof
    }

    async fn reply(&mut self, line: &str) -> Result<()> {
        tokio::time::timeout(STALL, self.writer.write_all(format!("{line}\r\n").as_bytes()))
            .await
            .map_err(|_| RedisError::Timeout("writing to the destination's replica link".into()))??;
        Ok(())
    }

    /// Answers the replica's commands until its `PSYNC` (see the module docs).
    async fn handshake(&mut self, token: &str) -> Result<()> {
        let mut authenticated = false;
        let mut raw = Vec::new();
        loop {
            raw.clear();
            let mut limited = (&mut self.reader).take(HANDSHAKE_COMMAND_BYTES);
            let cmd = read_command(&mut limited, &mut raw).await?;
            let args = &cmd.args;
            if args.is_empty() {
                continue;
            }
            if cmd.is("PING") {
                self.reply("+PONG").await?;
                continue;
            }
            if cmd.is("AUTH") && (args.len() == 2 || args.len() == 3) {
                let user_ok = args.len() == 2 || args[1].as_ref() == b"default";
                if user_ok && token_matches(&args[args.len() - 1], token.as_bytes()) {
                    authenticated = true;
                    self.reply("+OK").await?;
                    continue;
                }
                let _ = self.reply("-WRONGPASS invalid username-password pair or user is disabled.").await;
                return Err(RedisError::Auth("the replica connecting to the snapshot relay gave a wrong token".into()));
            }
            if !authenticated {
                let _ = self.reply("-NOAUTH Authentication required.").await;
                return Err(RedisError::Auth(format!(
                    "the replica connecting to the snapshot relay sent {} before AUTH",
                    cmd.name()
                )));
            }
            if cmd.is("REPLCONF") {
                let capa = args.iter().skip(1).step_by(2).zip(args.iter().skip(2).step_by(2));
                for (name, value) in capa {
                    if name.eq_ignore_ascii_case(b"capa") && value.eq_ignore_ascii_case(b"eof") {
                        self.capa_eof = true;
                    }
                }
                self.reply("+OK").await?;
                continue;
            }
            if cmd.is("PSYNC") {
                return Ok(());
            }
            let _ = self.reply("-ERR the snapshot relay of dts answers only the replica handshake").await;
            return Err(RedisError::Protocol(format!("the replica sent {} to the snapshot relay", cmd.name())));
        }
    }

    /// Answers the `PSYNC` with a full resync at the source's `(replid, offset)` and sends the
    /// snapshot's framing line as the source sent it.
    pub async fn start_full_resync(&mut self, replid: &str, offset: i64, framing: &SnapshotFraming) -> Result<()> {
        let line = match framing {
            SnapshotFraming::Length(n) => format!("${n}"),
            SnapshotFraming::EofMark(mark) => format!("$EOF:{}", String::from_utf8_lossy(mark)),
        };
        self.reply(&format!("+FULLRESYNC {replid} {offset}\r\n{line}")).await
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        match tokio::time::timeout(STALL, self.writer.write_all(bytes)).await {
            Err(_) => Err(RedisError::Relay("the destination stopped reading the snapshot".into())),
            Ok(Err(e)) => Err(RedisError::Relay(format!("the destination's replica link failed: {e}"))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Forwards the snapshot's bytes from `source` (see the module docs); returns how many.
    pub async fn forward<R: AsyncBufRead + Unpin>(&mut self, source: &mut R, framing: &SnapshotFraming) -> Result<u64> {
        let mut sent = 0u64;
        match framing {
            SnapshotFraming::Length(len) => {
                while sent < *len {
                    let chunk = fill(source).await?;
                    let take = chunk.len().min(usize::try_from(*len - sent).unwrap_or(usize::MAX));
                    self.send(&chunk[..take]).await?;
                    source.consume(take);
                    sent += take as u64;
                }
            }
            SnapshotFraming::EofMark(mark) => {
                let finder = memmem::Finder::new(&mark[..]);
                let mut tail: Vec<u8> = Vec::with_capacity(2 * (mark.len() - 1));
                loop {
                    let chunk = fill(source).await?;
                    let end = mark_end(&finder, &tail, chunk);
                    let take = end.unwrap_or(chunk.len());
                    self.send(&chunk[..take]).await?;
                    keep_tail(&mut tail, &chunk[..take], mark.len() - 1);
                    source.consume(take);
                    sent += take as u64;
                    if end.is_some() {
                        break;
                    }
                }
            }
        }
        tokio::time::timeout(STALL, self.writer.flush())
            .await
            .map_err(|_| RedisError::Relay("the destination stopped reading the snapshot".into()))??;
        Ok(sent)
    }

    /// Reads and drops what the replica sent (its `REPLCONF ACK`s) without waiting; whether it
    /// closed the connection.
    pub async fn closed(&mut self) -> bool {
        std::future::poll_fn(|cx| {
            loop {
                let n = match Pin::new(&mut self.reader).poll_fill_buf(cx) {
                    Poll::Ready(Ok([])) | Poll::Ready(Err(_)) => return Poll::Ready(true),
                    Poll::Ready(Ok(buf)) => buf.len(),
                    Poll::Pending => return Poll::Ready(false),
                };
                Pin::new(&mut self.reader).consume(n);
            }
        })
        .await
    }
}

/// The next bytes of the source's snapshot (an error if it closes or stalls).
async fn fill<R: AsyncBufRead + Unpin>(source: &mut R) -> Result<&[u8]> {
    let chunk = tokio::time::timeout(STALL, source.fill_buf())
        .await
        .map_err(|_| RedisError::Timeout("the source's snapshot".into()))??;
    if chunk.is_empty() {
        return Err(RedisError::Closed);
    }
    Ok(chunk)
}

/// Where the first occurrence of the mark ends in `chunk` (the index after it), when it ends
/// there: begun in `tail` (the last bytes forwarded, fewer than the mark's length) or wholly
/// inside `chunk`.
fn mark_end(finder: &memmem::Finder<'_>, tail: &[u8], chunk: &[u8]) -> Option<usize> {
    let len = finder.needle().len();
    if !tail.is_empty() {
        let head = &chunk[..chunk.len().min(len - 1)];
        let mut joined = Vec::with_capacity(tail.len() + head.len());
        joined.extend_from_slice(tail);
        joined.extend_from_slice(head);
        if let Some(at) = finder.find(&joined).filter(|at| *at < tail.len()) {
            return Some(at + len - tail.len());
        }
    }
    finder.find(chunk).map(|at| at + len)
}

/// Keeps the last `keep` bytes of what was forwarded.
fn keep_tail(tail: &mut Vec<u8>, forwarded: &[u8], keep: usize) {
    if forwarded.len() >= keep {
        tail.clear();
        tail.extend_from_slice(&forwarded[forwarded.len() - keep..]);
    } else {
        tail.extend_from_slice(forwarded);
        let excess = tail.len().saturating_sub(keep);
        tail.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forwards `data` cut into pieces of `piece` bytes with the EOF framing; returns what was
    /// forwarded and what stayed in the reader.
    async fn relay_eof(data: &[u8], mark: [u8; 40], piece: usize) -> (Vec<u8>, Vec<u8>) {
        let listener = RelayListener::bind("127.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap()).await.unwrap();
        let addr = listener.addr();
        let replica = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nAUTH\r\n$3\r\ntok\r\n*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n").await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut r =
            listener.accept("tok", Instant::now() + Duration::from_secs(10)).await.expect("handshake with the replica");
        assert!(r.reads(&SnapshotFraming::EofMark(mark)));
        let framing = SnapshotFraming::EofMark(mark);
        r.start_full_resync(&"a".repeat(40), 7, &framing).await.unwrap();
        let pieces = data.chunks(piece).map(|c| c.to_vec()).collect();
        let mut source = BufReader::with_capacity(piece, Pieces(pieces));
        r.forward(&mut source, &framing).await.unwrap();
        let mut rest = Vec::new();
        source.read_to_end(&mut rest).await.unwrap();
        drop(r);
        let got = replica.await.unwrap();
        (got, rest)
    }

    /// A reader that yields `pieces` one per read, then the end.
    struct Pieces(std::collections::VecDeque<Vec<u8>>);

    impl tokio::io::AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if let Some(mut piece) = self.0.pop_front() {
                let n = piece.len().min(buf.remaining());
                buf.put_slice(&piece[..n]);
                if n < piece.len() {
                    piece.drain(..n);
                    self.0.push_front(piece);
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn an_eof_framed_snapshot_is_forwarded_up_to_its_mark_wherever_the_reads_cut_it() {
        let mark = *b"0123456789abcdef0123456789abcdef01234567";
        let mut rdb = b"REDIS0010".to_vec();
        rdb.extend((0..5000u32).flat_map(|i| i.to_le_bytes()));
        // A near miss: the mark's first 39 bytes inside the RDB.
        rdb.extend_from_slice(&mark[..39]);
        rdb.extend_from_slice(b"xyz");
        let mut stream = rdb.clone();
        stream.extend_from_slice(&mark);
        stream.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        for piece in [1, 7, 39, 40, 41, 1000, 1 << 20] {
            let (got, rest) = relay_eof(&stream, mark, piece).await;
            let header = format!("+PONG\r\n+OK\r\n+OK\r\n+FULLRESYNC {} 7\r\n$EOF:", "a".repeat(40));
            assert!(got.starts_with(header.as_bytes()), "piece {piece}: {:?}", String::from_utf8_lossy(&got[..80]));
            let body = &got[header.len() + 40 + 2..];
            assert_eq!(body.len(), rdb.len() + 40, "piece {piece}");
            assert_eq!(&body[..rdb.len()], &rdb[..], "piece {piece}");
            assert_eq!(&body[rdb.len()..], &mark[..], "piece {piece}");
            assert_eq!(rest, b"*1\r\n$4\r\nPING\r\n", "piece {piece}: the command stream stays with the link");
        }
    }

    #[tokio::test]
    async fn a_length_framed_snapshot_is_forwarded_to_its_last_byte_and_no_further() {
        let listener = RelayListener::bind("127.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap()).await.unwrap();
        let addr = listener.addr();
        let replica = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"PING\r\nAUTH tok\r\nREPLCONF listening-port 1\r\nPSYNC ? -1\r\n").await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut r = listener.accept("tok", Instant::now() + Duration::from_secs(10)).await.unwrap();
        let framing = SnapshotFraming::Length(10_000);
        assert!(r.reads(&framing) && !r.reads(&SnapshotFraming::EofMark([b'x'; 40])));
        r.start_full_resync(&"b".repeat(40), 9, &framing).await.unwrap();
        let mut stream = vec![b'r'; 10_000];
        stream.extend_from_slice(b"\n*1\r\n$4\r\nPING\r\n");
        let mut source = BufReader::with_capacity(333, &stream[..]);
        assert_eq!(r.forward(&mut source, &framing).await.unwrap(), 10_000);
        let mut rest = Vec::new();
        source.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"\n*1\r\n$4\r\nPING\r\n");
        drop(r);
        let got = replica.await.unwrap();
        let header = format!("+PONG\r\n+OK\r\n+OK\r\n+FULLRESYNC {} 9\r\n$10000\r\n", "b".repeat(40));
        assert_eq!(&got[..header.len()], header.as_bytes());
        assert_eq!(got.len(), header.len() + 10_000);
    }

    #[tokio::test]
    async fn a_replica_without_the_token_is_refused_before_anything_but_ping() {
        for (script, answer) in [
            (&b"PING\r\nAUTH wrong\r\n"[..], "-WRONGPASS"),
            (&b"REPLCONF capa eof\r\n"[..], "-NOAUTH"),
            (&b"AUTH someone tok\r\n"[..], "-WRONGPASS"),
        ] {
            let listener =
                RelayListener::bind("127.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap()).await.unwrap();
            let addr = listener.addr();
            let replica = tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.write_all(script).await.unwrap();
                let mut got = Vec::new();
                let _ = s.read_to_end(&mut got).await;
                String::from_utf8_lossy(&got).into_owned()
            });
            let e = listener.accept("tok", Instant::now() + Duration::from_secs(10)).await.err().expect("refused");
            assert!(matches!(e, RedisError::Auth(_)), "{e:?}");
            assert!(replica.await.unwrap().contains(answer));
        }
    }

    #[tokio::test]
    async fn a_connection_from_another_address_is_closed_and_the_relay_waits_for_the_destination() {
        let listener = RelayListener::bind("127.0.0.1".parse().unwrap(), "10.1.2.3".parse().unwrap()).await.unwrap();
        let addr = listener.addr();
        let stranger = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = s.write_all(b"PING\r\n").await;
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            got
        });
        let e = listener.accept("tok", Instant::now() + Duration::from_millis(500)).await.err().expect("nobody else");
        assert!(matches!(e, RedisError::Timeout(_)), "{e:?}");
        assert!(stranger.await.unwrap().is_empty(), "the stranger got no answer");
    }

    #[test]
    fn a_mark_split_across_reads_is_found_where_it_ends() {
        let mark = *b"0123456789abcdef0123456789abcdef01234567";
        let finder = memmem::Finder::new(&mark[..]);
        let mut tail = Vec::new();
        keep_tail(&mut tail, b"....0123456789abcdef0123456789", 39);
        assert_eq!(mark_end(&finder, &tail, b"abcdef01234567*1"), Some(14));
        assert_eq!(mark_end(&finder, &tail, b"abcdef0123456X*1"), None);
        assert_eq!(mark_end(&finder, &[], b"xx0123456789abcdef0123456789abcdef01234567yy"), Some(42));
        keep_tail(&mut tail, &[b'z'; 100], 39);
        assert_eq!(tail, vec![b'z'; 39]);
    }
}
