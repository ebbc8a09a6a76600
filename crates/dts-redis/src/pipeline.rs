//! The destination writer: batches of commands written back to back on one connection, their
//! replies read by a task of their own, so that the writer never waits a round trip per batch.
//!
//! Ordering: batches are written and their replies read in the order they were sent, so
//! `applied()` only ever moves forward and covers every batch before it. Durability: a batch
//! counts as applied once every one of its replies was read (the destination executed it); the
//! caller checkpoints only marks that `applied()` has reached. Memory: at most `max_in_flight`
//! batches are outstanding; `send` waits for room.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::conn::{Conn, WriteHalf};
use crate::error::{RedisError, Result};
use crate::resp::{Reply, read_reply};

/// What the replies of one batch look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `n` independent replies; an error reply fails the writer (a full load must not lose a key).
    Strict(usize),
    /// `CLIENT REPLY ON` (`+OK`) and a `GET` of the marker that the batch's transaction set to
    /// this value: anything else means the destination refused the transaction.
    Marked(bytes::Bytes),
}

struct Expect {
    shape: Shape,
    mark: u64,
}

/// A pipelined writer to the destination.
pub struct Pipeline {
    writer: BufWriter<WriteHalf>,
    expect: mpsc::Sender<Expect>,
    applied: watch::Receiver<u64>,
    failure: Arc<Mutex<Option<RedisError>>>,
    task: JoinHandle<()>,
    sent_mark: u64,
}

impl Pipeline {
    /// Takes over `conn`; `start` is the mark before the first batch.
    pub fn new(conn: Conn, start: u64, max_in_flight: usize) -> Pipeline {
        let Conn { mut reader, writer, addr, .. } = conn;
        let (tx, mut rx) = mpsc::channel::<Expect>(max_in_flight.max(1));
        let (applied_tx, applied) = watch::channel(start);
        let failure = Arc::new(Mutex::new(None));
        let task_failure = failure.clone();
        let task = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                match read_batch(&mut reader, e.shape).await {
                    Ok(()) => {
                        let _ = applied_tx.send(e.mark);
                    }
                    Err(err) => {
                        tracing::warn!(destination = %addr, error = %err, "the destination refused a batch");
                        *task_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                        return;
                    }
                }
            }
        });
        Pipeline { writer, expect: tx, applied, failure, task, sent_mark: start }
    }

    /// Writes one batch (already encoded) whose replies have `shape`; `mark` becomes
    /// `applied()` once they are all read. Waits while `max_in_flight` batches are outstanding.
    pub async fn send(&mut self, bytes: &[u8], shape: Shape, mark: u64) -> Result<()> {
        self.check()?;
        if self.expect.send(Expect { shape, mark }).await.is_err() {
            return Err(self.take_failure());
        }
        self.writer.write_all(bytes).await?;
        self.writer.flush().await?;
        self.sent_mark = mark;
        Ok(())
    }

    /// The mark of the last batch the destination has executed.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// The mark of the last batch sent.
    pub fn sent(&self) -> u64 {
        self.sent_mark
    }

    /// Fails if the reply reader stopped on an error.
    pub fn check(&self) -> Result<()> {
        match self.failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None if self.task.is_finished() => Err(RedisError::Closed),
            None => Ok(()),
        }
    }

    fn take_failure(&self) -> RedisError {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or(RedisError::Closed)
    }

    /// Waits until every batch sent so far was executed.
    pub async fn drain(&mut self) -> Result<u64> {
        let target = self.sent_mark;
        loop {
            self.check()?;
            if *self.applied.borrow() >= target {
                return Ok(target);
            }
            if self.applied.changed().await.is_err() {
                self.check()?;
                if *self.applied.borrow() >= target {
                    return Ok(target);
                }
                return Err(self.take_failure());
            }
        }
    }

    /// Waits until the applied mark moves (or `timeout` passes).
    pub async fn wait_applied(&mut self, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, self.applied.changed()).await;
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_batch<R>(reader: &mut R, shape: Shape) -> Result<()>
where
    R: tokio::io::AsyncBufRead + Unpin + Send,
{
    match shape {
        Shape::Strict(n) => {
            let mut first_error = None;
            for _ in 0..n {
                if let Reply::Error(e) = read_reply(reader).await? {
                    first_error.get_or_insert(e);
                }
            }
            match first_error {
                Some(e) => Err(RedisError::Server {
                    command: "a write".into(),
                    reply: String::from_utf8_lossy(&e[..e.len().min(200)]).into_owned(),
                }),
                None => Ok(()),
            }
        }
        Shape::Marked(expected) => {
            let on = read_reply(reader).await?;
            let got = read_reply(reader).await?;
            match (&on, got.bytes()) {
                (Reply::Status(_), Some(v)) if *v == expected => Ok(()),
                _ => Err(RedisError::Server {
                    command: "a replicated transaction".into(),
                    reply: match (on, got) {
                        (Reply::Error(e), _) | (_, Reply::Error(e)) => {
                            String::from_utf8_lossy(&e).chars().take(200).collect()
                        }
                        _ => "EXEC did not run (a command was refused when queued)".into(),
                    },
                }),
            }
        }
    }
}
