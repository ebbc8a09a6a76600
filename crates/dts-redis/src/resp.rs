//! RESP2, the Redis wire protocol: replies and commands read from a buffered stream with every
//! length bounded before anything is allocated, commands encoded into a buffer, and the raw
//! bytes of each replicated command kept (the replication offset counts them, and they are
//! forwarded to the destination as they came).

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::error::RedisError;

/// The largest bulk string accepted (Redis' own `proto-max-bulk-len` default).
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// The most elements of one array (a command's arguments or a reply).
pub const MAX_ARRAY: usize = 16 * 1024 * 1024;
/// Nesting of arrays in a reply (EXEC of commands that return arrays is two levels).
pub const MAX_DEPTH: usize = 8;
/// The longest line of a simple string, error or header.
const MAX_LINE: usize = 64 * 1024;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(Bytes),
    Error(Bytes),
    Int(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text, for status and bulk replies.
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Status(b) | Self::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    pub fn bytes(&self) -> Option<&Bytes> {
        match self {
            Self::Status(b) | Self::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::Bulk(Some(b)) | Self::Status(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Self::Error(_))
    }

    pub fn array(self) -> Option<Vec<Reply>> {
        match self {
            Self::Array(Some(v)) => Some(v),
            _ => None,
        }
    }
}

/// Appends one command (an array of bulk strings) to `out`.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.push(b'*');
    push_decimal(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        push_decimal(out, a.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Reads one line without its `\r\n`, appending the raw bytes (with `\r\n`) to `raw`.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, raw: &mut Vec<u8>) -> Result<Vec<u8>, RedisError> {
    let start = raw.len();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(RedisError::Closed);
        }
        let (taken, done) = match memchr_newline(buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        raw.extend_from_slice(&buf[..taken]);
        r.consume(taken);
        if raw.len() - start > MAX_LINE {
            return Err(RedisError::Protocol("a protocol line is longer than 64 KiB".into()));
        }
        if done {
            break;
        }
    }
    let line = &raw[start..];
    let line = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n")).unwrap_or(line);
    Ok(line.to_vec())
}

fn memchr_newline(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

fn parse_int(line: &[u8]) -> Result<i64, RedisError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RedisError::Protocol(format!("expected a number, got {:?}", String::from_utf8_lossy(line))))
}

async fn read_bulk_body<R: AsyncBufRead + Unpin>(
    r: &mut R,
    len: usize,
    raw: Option<&mut Vec<u8>>,
) -> Result<Bytes, RedisError> {
    if len > MAX_BULK {
        return Err(RedisError::Protocol(format!("a bulk string of {len} bytes is over the 512 MiB limit")));
    }
    let mut body = vec![0u8; len + 2];
    r.read_exact(&mut body).await.map_err(eof_is_closed)?;
    if &body[len..] != b"\r\n" {
        return Err(RedisError::Protocol("a bulk string does not end with CRLF".into()));
    }
    if let Some(raw) = raw {
        raw.extend_from_slice(&body);
    }
    body.truncate(len);
    Ok(Bytes::from(body))
}

fn eof_is_closed(e: std::io::Error) -> RedisError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof { RedisError::Closed } else { RedisError::Io(e) }
}

/// Reads one reply.
pub async fn read_reply<R: AsyncBufRead + Unpin + Send>(r: &mut R) -> Result<Reply, RedisError> {
    let mut scratch = Vec::new();
    read_reply_at(r, 0, &mut scratch).await
}

fn read_reply_at<'a, R: AsyncBufRead + Unpin + Send>(
    r: &'a mut R,
    depth: usize,
    scratch: &'a mut Vec<u8>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, RedisError>> + Send + 'a>> {
    Box::pin(async move {
        scratch.clear();
        let line = read_line(r, scratch).await?;
        let Some((&kind, rest)) = line.split_first() else {
            return Err(RedisError::Protocol("an empty reply line".into()));
        };
        match kind {
            b'+' => Ok(Reply::Status(Bytes::copy_from_slice(rest))),
            b'-' => Ok(Reply::Error(Bytes::copy_from_slice(rest))),
            b':' => Ok(Reply::Int(parse_int(rest)?)),
            b'$' => {
                let n = parse_int(rest)?;
                if n < 0 {
                    return Ok(Reply::Bulk(None));
                }
                Ok(Reply::Bulk(Some(read_bulk_body(r, n as usize, None).await?)))
            }
            b'*' => {
                let n = parse_int(rest)?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                let n = n as usize;
                if n > MAX_ARRAY {
                    return Err(RedisError::Protocol(format!("an array of {n} elements is over the limit")));
                }
                if depth >= MAX_DEPTH {
                    return Err(RedisError::Protocol("replies nest too deep".into()));
                }
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    items.push(read_reply_at(r, depth + 1, scratch).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            other => Err(RedisError::Protocol(format!("unexpected reply type byte 0x{other:02x}"))),
        }
    })
}

/// One replicated command: its arguments and its bytes as sent (what the offset counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub args: Vec<Bytes>,
    pub raw_len: usize,
}

impl Command {
    /// The command's name in upper case.
    pub fn name(&self) -> String {
        self.args.first().map(|a| String::from_utf8_lossy(a).to_ascii_uppercase()).unwrap_or_default()
    }

    pub fn is(&self, name: &str) -> bool {
        self.args.first().is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// Reads one command of a replication stream, appending its raw bytes to `raw`. An inline
/// newline (a master's keep-alive while it prepares a snapshot) is a command of no arguments.
pub async fn read_command<R: AsyncBufRead + Unpin>(r: &mut R, raw: &mut Vec<u8>) -> Result<Command, RedisError> {
    let start = raw.len();
    let line = read_line(r, raw).await?;
    if line.is_empty() {
        return Ok(Command { args: Vec::new(), raw_len: raw.len() - start });
    }
    if line[0] != b'*' {
        // An inline command (space separated), as a master never sends but a test might.
        let args = line.split(|&b| b == b' ').filter(|s| !s.is_empty()).map(Bytes::copy_from_slice).collect();
        return Ok(Command { args, raw_len: raw.len() - start });
    }
    let n = parse_int(&line[1..])?;
    if n < 0 || n as usize > MAX_ARRAY {
        return Err(RedisError::Protocol(format!("a command of {n} arguments")));
    }
    let mut args = Vec::with_capacity((n as usize).min(1024));
    for _ in 0..n {
        let header = read_line(r, raw).await?;
        if header.first() != Some(&b'$') {
            return Err(RedisError::Protocol("a command argument is not a bulk string".into()));
        }
        let len = parse_int(&header[1..])?;
        if len < 0 {
            return Err(RedisError::Protocol("a command argument is null".into()));
        }
        args.push(read_bulk_body(r, len as usize, Some(raw)).await?);
    }
    Ok(Command { args, raw_len: raw.len() - start })
}

/// A command found in a buffer: its length and its arguments' `(start, len)` ranges.
pub type Framed = (usize, Vec<(usize, usize)>);

/// Parses one command at the start of `buf` without copying: `Ok(None)` when `buf` does not
/// hold all of it yet; otherwise the command's length in bytes and its arguments as
/// `(start, len)` ranges of `buf`. An empty line (a master's keep-alive) is a command of no
/// arguments.
pub fn parse_command(buf: &[u8]) -> Result<Option<Framed>, RedisError> {
    fn line(buf: &[u8], from: usize) -> Result<Option<(usize, usize)>, RedisError> {
        // (end of the line's content, index after its `\n`)
        match buf[from..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = from + i;
                let content_end = if end > from && buf[end - 1] == b'\r' { end - 1 } else { end };
                Ok(Some((content_end, end + 1)))
            }
            None if buf.len() - from > MAX_LINE => {
                Err(RedisError::Protocol("a protocol line is longer than 64 KiB".into()))
            }
            None => Ok(None),
        }
    }
    if buf.is_empty() {
        return Ok(None);
    }
    let Some((content_end, mut at)) = line(buf, 0)? else { return Ok(None) };
    if content_end == 0 {
        return Ok(Some((at, Vec::new())));
    }
    if buf[0] != b'*' {
        return Err(RedisError::Protocol("an inline command in the replication stream".into()));
    }
    let n = parse_int(&buf[1..content_end])?;
    if n < 0 || n as usize > MAX_ARRAY {
        return Err(RedisError::Protocol(format!("a command of {n} arguments")));
    }
    let mut args = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let Some((header_end, body)) = line(buf, at)? else { return Ok(None) };
        if buf[at] != b'$' {
            return Err(RedisError::Protocol("a command argument is not a bulk string".into()));
        }
        let len = parse_int(&buf[at + 1..header_end])?;
        if len < 0 || len as usize > MAX_BULK {
            return Err(RedisError::Protocol(format!("a command argument of {len} bytes")));
        }
        let len = len as usize;
        if buf.len() < body + len + 2 {
            return Ok(None);
        }
        if &buf[body + len..body + len + 2] != b"\r\n" {
            return Err(RedisError::Protocol("a bulk string does not end with CRLF".into()));
        }
        args.push((body, len));
        at = body + len + 2;
    }
    Ok(Some((at, args)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_in_place_and_incomplete_ones_wait_for_more() {
        let mut buf = Vec::new();
        encode_command(&mut buf, &[&b"SET"[..], b"k", b"v\r\nx"]);
        let whole = buf.len();
        buf.extend_from_slice(b"\n*1\r\n$4\r\nPI");
        let (len, args) = parse_command(&buf).unwrap().unwrap();
        assert_eq!(len, whole);
        let got: Vec<&[u8]> = args.iter().map(|(s, l)| &buf[*s..*s + *l]).collect();
        assert_eq!(got, vec![&b"SET"[..], b"k", b"v\r\nx"]);
        assert_eq!(parse_command(&buf[whole..]).unwrap(), Some((1, vec![])));
        assert_eq!(parse_command(&buf[whole + 1..]).unwrap(), None);
        for cut in 0..whole {
            assert_eq!(parse_command(&buf[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse_command(b"*1\r\n$999999999999\r\n").is_err());
        assert!(parse_command(b"*1\r\n$1\r\nab\r\n").is_err());
    }

    #[tokio::test]
    async fn commands_round_trip_through_the_encoder_and_the_reader() {
        let mut buf = Vec::new();
        encode_command(&mut buf, &[&b"SET"[..], b"k", b"v\r\nwith crlf"]);
        encode_command(&mut buf, &[&b"PING"[..]]);
        let mut r = &buf[..];
        let mut raw = Vec::new();
        let c = read_command(&mut r, &mut raw).await.unwrap();
        assert_eq!(c.args, vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from("v\r\nwith crlf")]);
        let first = c.raw_len;
        let p = read_command(&mut r, &mut raw).await.unwrap();
        assert!(p.is("ping"));
        assert_eq!(first + p.raw_len, buf.len());
        assert_eq!(raw, buf);
    }

    #[tokio::test]
    async fn nested_replies_are_read_and_over_long_ones_refused() {
        let input = b"*3\r\n:1\r\n$-1\r\n*2\r\n+OK\r\n-ERR no\r\n".to_vec();
        let mut r = &input[..];
        let reply = read_reply(&mut r).await.unwrap();
        assert_eq!(
            reply,
            Reply::Array(Some(vec![
                Reply::Int(1),
                Reply::Bulk(None),
                Reply::Array(Some(vec![Reply::Status("OK".into()), Reply::Error("ERR no".into())])),
            ]))
        );
        let huge = b"$999999999999\r\n".to_vec();
        assert!(read_reply(&mut &huge[..]).await.is_err());
        let truncated = b"$5\r\nab".to_vec();
        assert!(matches!(read_reply(&mut &truncated[..]).await, Err(RedisError::Closed)));
    }
}
