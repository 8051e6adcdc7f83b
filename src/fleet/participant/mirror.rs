//! The coordinator's own intervals, kept where its successor would be.
//!
//! The origin runs a share of its own test, and its intervals go to
//! itself. If it died, they would die with it: so every interval this agent
//! produces while it coordinates is also sent ([`Message::Keep`]) to the
//! agent that would take the test over ([`succession::designated`]), which
//! keeps it in its data directory and, when it adopts the test, merges it
//! ([`crate::fleet::origin::Origin::adopt`]). When that agent changes (it
//! died, or this agent took over from another), the new one first gets every
//! earlier interval again, from disk. A keep that fails is tried again with
//! the next interval; the delivery to the coordinator never waits for it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Participant, succession};
use crate::fleet::protocol::{self, Message, Response};

/// How long the designated successor has to keep one interval.
const KEEP_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends every interval `rx` yields to the designated successor of this
/// agent, the coordinator of `test_id`, until `rx` closes.
pub(super) async fn run(
    p: Arc<Participant>,
    test_id: String,
    mut rx: mpsc::UnboundedReceiver<(u64, Bytes)>,
) {
    // The agent that holds every interval before `upto` (None: nobody yet).
    let mut kept: Option<(String, u64)> = None;
    while let Some((seq, bytes)) = rx.recv().await {
        let Some(succession) = p.succession.get().cloned() else {
            return;
        };
        let Some(view) = p.coordination(&test_id) else {
            return;
        };
        let agents: Vec<String> = view.allocation.agents().map(str::to_owned).collect();
        let agents: Vec<&str> = agents.iter().map(String::as_str).collect();
        let live = |a: &str| succession.member(a).is_some();
        let Some(target) = succession::designated(&agents, &p.me, live).map(str::to_owned) else {
            kept = None;
            continue;
        };
        let Some(member) = succession.member(&target) else {
            continue;
        };
        let from = match &kept {
            Some((agent, upto)) if *agent == target => *upto,
            _ => 0,
        };
        kept = None;
        if from < seq && !keep_earlier(&p, &test_id, member.quic, from, seq).await {
            continue;
        }
        if keep_one(&p, &test_id, member.quic, seq, &bytes).await {
            kept = Some((target, seq + 1));
        }
    }
}

/// Sends intervals `from..upto` of this agent from disk; false when one
/// was not kept.
async fn keep_earlier(
    p: &Participant,
    test_id: &str,
    addr: std::net::SocketAddr,
    from: u64,
    upto: u64,
) -> bool {
    let Some(store) = p.store.clone() else {
        return false;
    };
    let (id, me) = (test_id.to_owned(), p.me.clone());
    let stored = tokio::task::spawn_blocking(move || store.read_intervals(&id, &me))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let stored = match stored {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(test = %test_id, "cannot read earlier intervals to keep them at the successor: {e}");
            return false;
        }
    };
    for (seq, bytes) in stored
        .into_iter()
        .filter(|(seq, _)| (from..upto).contains(seq))
    {
        if !keep_one(p, test_id, addr, seq, &bytes).await {
            return false;
        }
    }
    true
}

/// Sends one interval to be kept; true once it is on the other's disk.
async fn keep_one(
    p: &Participant,
    test_id: &str,
    addr: std::net::SocketAddr,
    seq: u64,
    bytes: &[u8],
) -> bool {
    let message = Message::Keep {
        test_id: test_id.to_owned(),
        agent: p.me.clone(),
        seq,
    };
    let body = protocol::encode(&message, bytes);
    let reply = p.transport.request(addr, body, KEEP_TIMEOUT).await;
    match reply.map(|r| protocol::decode::<Response>(&r)) {
        Ok(Ok((Response::Ok, _))) => true,
        other => {
            tracing::debug!(test = %test_id, %addr, "interval {seq} not kept at the successor: {other:?}");
            false
        }
    }
}
