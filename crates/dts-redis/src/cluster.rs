//! The writer to a Redis Cluster destination: commands queued per master by their slot (one
//! connection per master), written to every master at once and their replies read back
//! (`flush`); a `MOVED` reply updates the slot map and sends the command to the new owner, an
//! `ASK` reply sends it there once after `ASKING`, `TRYAGAIN`/`CLUSTERDOWN`/`LOADING` retry after
//! a pause.
//!
//! Correctness: per key, commands reach their node in the order they were queued: each node's
//! queue keeps that order, and a command redirected away from a node is re-sent in the same
//! flush, before any later command is queued (a redirection moves a whole slot, or, for `ASK`,
//! every command of a key not yet on the old owner, so the redirected commands of a key are the
//! same suffix of its commands). A flush returns once every queued command was executed, so
//! whatever the caller checkpoints after it is on the destination. There is no marker spanning
//! the masters: after a crash the commands since the last checkpoint are applied again
//! (at-least-once; see `sync`).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use dts_core::ConnectionSpec;
use tokio::io::AsyncWriteExt;

use crate::conn::Conn;
use crate::error::{RedisError, Result};
use crate::resp::{Reply, encode_command, read_reply};
use crate::route::{Route, route};
use crate::slots::{NodeInfo, Redirect, SlotMap, parse_redirect};
use crate::topology::spec_at_addr;

/// How many times the commands of one flush may be redirected or retried before giving up.
const MAX_ROUNDS: usize = 64;
/// How long a node may take to answer a flush.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A queued write.
#[derive(Debug, Clone)]
enum Item {
    /// One command for `slot` (`None`: a keyless command for this node only).
    One { args: Vec<Bytes>, slot: Option<u16>, asking: bool },
    /// A source transaction whose commands all go to `slot`.
    Tx { slot: u16, commands: Vec<Vec<Bytes>>, asking: bool },
}

impl Item {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Item::One { args, asking, .. } => {
                if *asking {
                    encode_command(out, &["ASKING"]);
                }
                encode_command(out, args);
            }
            Item::Tx { commands, asking, .. } => {
                if *asking {
                    encode_command(out, &["ASKING"]);
                }
                encode_command(out, &["MULTI"]);
                for c in commands {
                    encode_command(out, c);
                }
                encode_command(out, &["EXEC"]);
            }
        }
    }

    fn name(&self) -> String {
        let args = match self {
            Item::One { args, .. } => args,
            Item::Tx { commands, .. } => match commands.first() {
                Some(c) => c,
                None => return "MULTI".into(),
            },
        };
        crate::replica::describe(args)
    }
}

/// What the replies of one item said.
enum Outcome {
    Done,
    Redirect(Redirect),
    /// The cluster is busy (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`): send again after a pause.
    Retry(String),
}

#[derive(Default)]
struct Queue {
    buf: Vec<u8>,
    items: Vec<Item>,
}

/// A writer to every master of a destination cluster.
pub struct ClusterWriter {
    template: ConnectionSpec,
    map: SlotMap,
    conns: BTreeMap<String, Conn>,
    queues: BTreeMap<String, Queue>,
    /// A full load: any error reply fails the writer. A stream: errors of executed commands are
    /// counted and logged, as a replica does.
    strict: bool,
    runtime_errors: u64,
    queued: usize,
    queued_bytes: usize,
}

impl ClusterWriter {
    /// A writer for the cluster whose nodes are `nodes`, connecting (with `template`'s
    /// credentials) to each master when it first has something for it.
    pub fn new(template: &ConnectionSpec, nodes: &[NodeInfo], strict: bool) -> ClusterWriter {
        ClusterWriter {
            template: template.clone(),
            map: SlotMap::of(nodes),
            conns: BTreeMap::new(),
            queues: BTreeMap::new(),
            strict,
            runtime_errors: 0,
            queued: 0,
            queued_bytes: 0,
        }
    }

    /// Commands and bytes queued since the last flush.
    pub fn pending(&self) -> (usize, usize) {
        (self.queued, self.queued_bytes)
    }

    /// Errors the destination answered to executed commands (stream mode).
    pub fn runtime_errors(&self) -> u64 {
        self.runtime_errors
    }

    /// Queues one command by its route.
    pub fn push(&mut self, args: Vec<Bytes>) -> Result<()> {
        match route(&args) {
            Route::Slot(slot) => self.queue(Item::One { args, slot: Some(slot), asking: false }),
            Route::All => self.push_all(&args),
            Route::Split(list) => {
                for (slot, args) in list {
                    self.queue(Item::One { args, slot: Some(slot), asking: false })?;
                }
                Ok(())
            }
        }
    }

    /// Queues a command for every master.
    pub fn push_all(&mut self, args: &[Bytes]) -> Result<()> {
        let owners: Vec<String> = self.owners();
        for addr in owners {
            self.queue_to(addr, Item::One { args: args.to_vec(), slot: None, asking: false });
        }
        Ok(())
    }

    /// Queues a transaction whose commands all go to `slot`.
    pub fn push_tx(&mut self, slot: u16, commands: Vec<Vec<Bytes>>) -> Result<()> {
        self.queue(Item::Tx { slot, commands, asking: false })
    }

    /// The masters that serve at least one slot.
    fn owners(&self) -> Vec<String> {
        let mut owners: Vec<String> = (0..crate::slots::SLOTS as u16)
            .filter_map(|s| self.map.node(s).map(str::to_string))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        owners.sort();
        owners
    }

    fn queue(&mut self, item: Item) -> Result<()> {
        let slot = match &item {
            Item::One { slot, .. } => slot.unwrap_or(0),
            Item::Tx { slot, .. } => *slot,
        };
        let addr = self.map.node(slot).map(str::to_string).ok_or_else(|| RedisError::Server {
            command: item.name(),
            reply: format!("CLUSTERDOWN no node serves slot {slot}"),
        })?;
        self.queue_to(addr, item);
        Ok(())
    }

    fn queue_to(&mut self, addr: String, item: Item) {
        let q = self.queues.entry(addr).or_default();
        let before = q.buf.len();
        item.encode(&mut q.buf);
        self.queued += 1;
        self.queued_bytes += q.buf.len() - before;
        q.items.push(item);
    }

    async fn conn(&mut self, addr: &str) -> Result<&mut Conn> {
        if !self.conns.contains_key(addr) {
            let conn = Conn::open(&spec_at_addr(&self.template, addr)?).await?;
            self.conns.insert(addr.to_string(), conn);
        }
        Ok(self.conns.get_mut(addr).expect("inserted"))
    }

    /// Sends everything queued and waits until every master executed it, following
    /// redirections (see the module docs).
    pub async fn flush(&mut self) -> Result<()> {
        self.queued = 0;
        self.queued_bytes = 0;
        for round in 0.. {
            let queues = std::mem::take(&mut self.queues);
            if queues.is_empty() {
                return Ok(());
            }
            if round >= MAX_ROUNDS {
                return Err(RedisError::Timeout("the destination cluster kept redirecting dts's writes".into()));
            }
            for (addr, q) in &queues {
                let conn = self.conn(addr).await?;
                conn.writer.write_all(&q.buf).await?;
                conn.writer.flush().await?;
            }
            let mut pause = false;
            for (addr, q) in queues {
                let strict = self.strict;
                let conn = self.conns.get_mut(&addr).expect("connected above");
                let outcomes = tokio::time::timeout(REPLY_TIMEOUT, read_items(conn, &q.items, strict))
                    .await
                    .map_err(|_| RedisError::Timeout(format!("replies from {addr}")))??;
                for (mut item, (outcome, errors)) in q.items.into_iter().zip(outcomes) {
                    self.runtime_errors += errors;
                    match outcome {
                        Outcome::Done => {}
                        Outcome::Redirect(Redirect::Moved { slot, addr }) => {
                            self.map.moved(slot, &addr);
                            set_asking(&mut item, false);
                            self.queue_to(addr, item);
                        }
                        Outcome::Redirect(Redirect::Ask { addr, .. }) => {
                            set_asking(&mut item, true);
                            self.queue_to(addr, item);
                        }
                        Outcome::Retry(reply) => {
                            tracing::debug!(%reply, "destination cluster busy; retrying");
                            pause = true;
                            set_asking(&mut item, false);
                            match &item {
                                Item::One { slot: None, .. } => self.queue_to(addr.clone(), item),
                                _ => self.queue(item)?,
                            }
                        }
                    }
                }
            }
            if pause {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}

fn set_asking(item: &mut Item, value: bool) {
    match item {
        Item::One { asking, .. } | Item::Tx { asking, .. } => *asking = value,
    }
}

/// How an error reply is handled: a redirection, a pause, or a failure.
fn classify_error(e: &[u8]) -> Option<Outcome> {
    if let Some(r) = parse_redirect(e) {
        return Some(Outcome::Redirect(r));
    }
    ["TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN"]
        .iter()
        .any(|p| e.starts_with(p.as_bytes()))
        .then(|| Outcome::Retry(String::from_utf8_lossy(&e[..e.len().min(120)]).into_owned()))
}

fn failure(item: &Item, e: &[u8]) -> RedisError {
    let reply = String::from_utf8_lossy(&e[..e.len().min(200)]).into_owned();
    if e.starts_with(b"CROSSSLOT") {
        return RedisError::Operator(format!(
            "{} touches keys of different cluster slots, which a cluster destination cannot apply; \
             use hash tags on the source so that such keys share a slot",
            item.name()
        ));
    }
    RedisError::Server { command: item.name(), reply }
}

/// Reads the replies of `items`: per item its outcome and how many of its commands failed.
async fn read_items(conn: &mut Conn, items: &[Item], strict: bool) -> Result<Vec<(Outcome, u64)>> {
    let mut out = Vec::with_capacity(items.len());
    let mut fatal = None;
    for item in items {
        let (asking, queued) = match item {
            Item::One { asking, .. } => (*asking, 0),
            Item::Tx { asking, commands, .. } => (*asking, commands.len()),
        };
        if asking {
            read_reply(&mut conn.reader).await?;
        }
        let outcome = match item {
            Item::One { .. } => match read_reply(&mut conn.reader).await? {
                Reply::Error(e) => match classify_error(&e) {
                    Some(o) => (o, 0),
                    None if strict || e.starts_with(b"CROSSSLOT") => {
                        fatal.get_or_insert_with(|| failure(item, &e));
                        (Outcome::Done, 1)
                    }
                    None => {
                        log_runtime_error(item, &e);
                        (Outcome::Done, 1)
                    }
                },
                _ => (Outcome::Done, 0),
            },
            Item::Tx { .. } => {
                let mut redirect = None;
                let mut queue_error = None;
                // MULTI, each command's QUEUED, EXEC.
                for i in 0..queued + 1 {
                    if let Reply::Error(e) = read_reply(&mut conn.reader).await? {
                        match classify_error(&e) {
                            Some(o) => {
                                redirect.get_or_insert(o);
                            }
                            None if i > 0 => {
                                queue_error.get_or_insert(e);
                            }
                            None => {}
                        }
                    }
                }
                match read_reply(&mut conn.reader).await? {
                    Reply::Array(Some(results)) => {
                        let failed = results.iter().filter(|r| r.is_error()).count() as u64;
                        if let Some(Reply::Error(e)) = results.iter().find(|r| r.is_error()) {
                            if strict {
                                fatal.get_or_insert_with(|| failure(item, e));
                            } else {
                                log_runtime_error(item, e);
                            }
                        }
                        (Outcome::Done, failed)
                    }
                    _ => match (redirect, queue_error) {
                        (Some(o), _) => (o, 0),
                        (None, Some(e)) => {
                            fatal.get_or_insert_with(|| failure(item, &e));
                            (Outcome::Done, 1)
                        }
                        (None, None) => {
                            fatal.get_or_insert_with(|| failure(item, b"EXEC failed"));
                            (Outcome::Done, 1)
                        }
                    },
                }
            }
        };
        out.push(outcome);
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn log_runtime_error(item: &Item, e: &[u8]) {
    tracing::warn!(
        command = %item.name(),
        reply = %String::from_utf8_lossy(&e[..e.len().min(120)]),
        "a replicated command failed on the destination cluster (kept going, as a replica does)"
    );
}
