//! One connection to a Redis server: connect with a deadline (TLS when the spec asks for it),
//! authenticate (ACL user or password), send a command or a pipeline of commands and read their
//! replies in order.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use dts_core::{ConnectionSpec, TlsMode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

use crate::error::{RedisError, Result};
use crate::resp::{Reply, encode_command, read_reply};

/// How long a connect or a handshake reply may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The reading half of a connection, plain or TLS.
pub type ReadHalf = Box<dyn AsyncRead + Send + Sync + Unpin>;
/// The writing half of a connection, plain or TLS.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Sync + Unpin>;

/// A connection: a buffered reader and writer over one TCP stream, plain or TLS.
pub struct Conn {
    pub reader: BufReader<ReadHalf>,
    pub writer: BufWriter<WriteHalf>,
    /// `host:port`, for logs and errors.
    pub addr: String,
    /// The TCP stream's two ends: `(this side, the server)`.
    pub sockets: (SocketAddr, SocketAddr),
}

impl Conn {
    /// Connects and authenticates: `AUTH user password` when a user other than `default` is
    /// given, `AUTH password` when only a password is.
    pub async fn open(spec: &ConnectionSpec) -> Result<Conn> {
        let addr = format!("{}:{}", spec.host, spec.port);
        let mut conn = Self::connect_with(&addr, &spec.host, &spec.tls).await?;
        if !spec.password.is_empty() {
            let reply = if spec.user.is_empty() || spec.user == "default" {
                conn.call(&[&b"AUTH"[..], spec.password.as_bytes()]).await?
            } else {
                conn.call(&[&b"AUTH"[..], spec.user.as_bytes(), spec.password.as_bytes()]).await?
            };
            if let Reply::Error(e) = reply {
                return Err(RedisError::Auth(String::from_utf8_lossy(&e).into_owned()));
            }
        }
        Ok(conn)
    }

    /// A plain TCP connection to `addr` (no authentication).
    pub async fn connect(addr: &str) -> Result<Conn> {
        Self::connect_with(addr, "", &TlsMode::Disabled).await
    }

    /// A connection to `addr`, TLS per `tls` with the server named `host` (no authentication).
    async fn connect_with(addr: &str, host: &str, tls: &TlsMode) -> Result<Conn> {
        let config = crate::tls::client_config(tls)?;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| RedisError::Timeout(format!("connecting to {addr}")))??;
        stream.set_nodelay(true)?;
        let sockets = (stream.local_addr()?, stream.peer_addr()?);
        let (r, w): (ReadHalf, WriteHalf) = match config {
            None => {
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
            Some(config) => {
                // A port without TLS (Redis reads the hello as an unfinished command) never
                // answers: the timeout says what to check.
                let tls =
                    tokio::time::timeout(CONNECT_TIMEOUT, crate::tls::handshake(config, host, stream)).await.map_err(
                        |_| RedisError::Timeout(format!("the TLS handshake with {addr} (does the port speak TLS?)")),
                    )??;
                let (r, w) = tokio::io::split(tls);
                (Box::new(r), Box::new(w))
            }
        };
        Ok(Conn {
            reader: BufReader::with_capacity(256 * 1024, r),
            writer: BufWriter::with_capacity(256 * 1024, w),
            addr: addr.to_string(),
            sockets,
        })
    }

    /// Sends one command and reads its reply (an error reply is returned, not raised).
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply> {
        let mut buf = Vec::new();
        encode_command(&mut buf, args);
        self.writer.write_all(&buf).await?;
        self.writer.flush().await?;
        tokio::time::timeout(CONNECT_TIMEOUT * 6, read_reply(&mut self.reader))
            .await
            .map_err(|_| RedisError::Timeout(format!("a reply from {}", self.addr)))?
    }

    /// Sends one command; an error reply becomes [`RedisError::Server`].
    pub async fn ok<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply> {
        let reply = self.call(args).await?;
        if let Reply::Error(e) = &reply {
            return Err(server_error(args, e));
        }
        Ok(reply)
    }

    /// Sends every command, then reads every reply, in order.
    pub async fn pipeline(&mut self, commands: &[Vec<Bytes>]) -> Result<Vec<Reply>> {
        let mut buf = Vec::new();
        for c in commands {
            encode_command(&mut buf, c);
        }
        self.writer.write_all(&buf).await?;
        self.writer.flush().await?;
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(read_reply(&mut self.reader).await?);
        }
        Ok(replies)
    }

    /// `INFO section` as `field → value`.
    pub async fn info(&mut self, section: &str) -> Result<Vec<(String, String)>> {
        let reply = self.ok(&["INFO", section]).await?;
        let text = reply.text().unwrap_or_default();
        Ok(parse_info(&text))
    }
}

/// The lines `field:value` of an INFO reply.
pub fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// One field of parsed INFO.
pub fn info_field<'a>(info: &'a [(String, String)], name: &str) -> Option<&'a str> {
    info.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// An error reply to `args` (only the command's name is kept, never its arguments: they may
/// carry a password or user data).
pub fn server_error<A: AsRef<[u8]>>(args: &[A], reply: &[u8]) -> RedisError {
    let command = args.first().map(|a| String::from_utf8_lossy(a.as_ref()).to_ascii_uppercase()).unwrap_or_default();
    let mut reply = String::from_utf8_lossy(reply).into_owned();
    reply.truncate(200);
    RedisError::Server { command, reply }
}

/// The keys per database of `INFO keyspace` (`db0:keys=3,expires=0,avg_ttl=0`).
pub fn keyspace(info: &[(String, String)]) -> Vec<(u32, u64)> {
    info.iter()
        .filter_map(|(k, v)| {
            let db = k.strip_prefix("db")?.parse().ok()?;
            let keys = v.split(',').find_map(|p| p.strip_prefix("keys="))?.parse().ok()?;
            Some((db, keys))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_lines_give_keys_per_database() {
        let info = parse_info("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb5:keys=10,expires=0,avg_ttl=0\r\n");
        assert_eq!(keyspace(&info), vec![(0, 3), (5, 10)]);
    }
}
