//! Getting a participant's results to whoever coordinates its test.
//!
//! Every interval is kept in the data directory first, then sent, in order,
//! with retries. When the coordinator changes (the origin died and a
//! successor took over), every interval already sent is sent again, from
//! disk, to the new coordinator, which rebuilds the test's results from
//! them. When nothing gets through for the orphan timeout, the load stops
//! and the remaining intervals are only kept on disk. After the share's
//! `Done`, the delivery lingers until the summary is sealed: a coordinator
//! that dies then still gets a successor that is sent everything again,
//! `Done` included. While this agent coordinates, its intervals are also
//! handed to [`super::mirror`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::relay::Route;
use super::{Coordinator, Participant};
use crate::engine::{IntervalReport, Observer};
use crate::fleet::merge::combine::Combined;
use crate::fleet::protocol::{self, Message, Response};

/// How long one delivery may take before it is retried.
const SEND_TIMEOUT: Duration = Duration::from_secs(3);
/// The shortest wait for a delivery, once the orphan timeout is (nearly) used up.
const MIN_SEND_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest pause between two attempts of one delivery.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What the engine's observer hands to the delivery task.
pub(super) enum Outgoing {
    Interval { seq: u64, bytes: Bytes },
    Done { message: Box<Message> },
}

/// The engine observer of a fleet run: every interval snapshot, encoded,
/// goes to the delivery task; the share's totals go to `/metrics`.
pub(super) struct Streamer {
    pub(super) seq: u64,
    pub(super) tx: mpsc::UnboundedSender<Outgoing>,
    pub(super) p: Arc<Participant>,
    pub(super) test_id: String,
    /// The share's totals so far, one interval at a time.
    pub(super) totals:
        std::collections::BTreeMap<String, crate::metrics::exposition::ScenarioTotals>,
}

impl Observer for Streamer {
    fn on_interval(&mut self, report: &IntervalReport<'_>) {
        crate::metrics::exposition::add_series(
            &mut self.totals,
            report.snapshot.series.iter().map(|(k, v)| (k, v)),
        );
        self.p.set_share(super::ShareTotals {
            test_id: self.test_id.clone(),
            running: true,
            vus: report.vus,
            scenarios: self.totals.clone(),
        });
        let bytes = Bytes::from(report.snapshot.encode());
        let _ = self.tx.send(Outgoing::Interval {
            seq: self.seq,
            bytes,
        });
        self.seq += 1;
    }
}

/// The delivery task of one run.
pub(super) struct Delivery {
    p: Arc<Participant>,
    test_id: String,
    coordinator: watch::Receiver<Coordinator>,
    /// Where results have been going (`coordinator` says where they should).
    current: Coordinator,
    stop: CancellationToken,
}

/// How one send ended.
enum Sent {
    Delivered,
    /// The coordinator changed before it got through: start over with the new one.
    Redirected,
    /// Nothing got through for the orphan timeout; the load was stopped.
    GaveUp,
}

impl Delivery {
    pub(super) fn new(
        p: Arc<Participant>,
        test_id: String,
        coordinator: watch::Receiver<Coordinator>,
        stop: CancellationToken,
    ) -> Delivery {
        let current = coordinator.borrow().clone();
        Delivery {
            p,
            test_id,
            coordinator,
            current,
            stop,
        }
    }

    /// Delivers everything `rx` yields, in order, until it closes. Once the
    /// orphan timeout gave up, the rest only goes to disk. While this agent
    /// coordinates the test, every interval also goes to `mirror`. Returns
    /// the delivery, to [`Delivery::linger`], with the encoded `Done`.
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Outgoing>,
        mirror: mpsc::UnboundedSender<(u64, Bytes)>,
    ) -> (Delivery, Option<Bytes>) {
        let mut done = None;
        let mut last_ok = Instant::now();
        // Intervals `0..next` have been handed to some coordinator.
        let mut next: u64 = 0;
        let mut orphaned = false;
        while let Some(out) = rx.recv().await {
            let (body, what) = match &out {
                Outgoing::Interval { seq, bytes } => {
                    // On disk before it leaves: a successor may need it again.
                    self.keep_on_disk(*seq, bytes.clone()).await;
                    if self.coordinator.borrow().node == self.p.me {
                        let _ = mirror.send((*seq, bytes.clone()));
                    }
                    if !orphaned && self.via_tree(*seq, bytes).await {
                        last_ok = Instant::now();
                        next = seq + 1;
                        continue;
                    }
                    (self.interval_body(*seq, bytes), format!("interval {seq}"))
                }
                Outgoing::Done { message } => {
                    let body = protocol::encode(&**message, &[]);
                    done = Some(body.clone());
                    (body, "done".into())
                }
            };
            while !orphaned {
                match self.send(&body, &what, &mut last_ok).await {
                    Sent::Delivered => break,
                    Sent::GaveUp => orphaned = true,
                    Sent::Redirected => {
                        self.current = self.coordinator.borrow().clone();
                        orphaned = !self.resend(next, &mut last_ok).await;
                    }
                }
            }
            if let Outgoing::Interval { seq, .. } = out {
                next = seq + 1;
            }
        }
        (self, done)
    }

    /// After the share ended: whenever the coordinator changes (it died
    /// before sealing), sends the new one every kept interval and `done`
    /// again. Ends when the test is no longer lingering here (sealed, or
    /// its results deadline passed).
    pub(super) async fn linger(mut self, done: Option<Bytes>) {
        loop {
            if *self.coordinator.borrow_and_update() == self.current {
                if self.coordinator.changed().await.is_err() {
                    return;
                }
                continue;
            }
            self.current = self.coordinator.borrow().clone();
            let mut last_ok = Instant::now();
            if !self.resend(u64::MAX, &mut last_ok).await
                || *self.coordinator.borrow() != self.current
            {
                continue;
            }
            if let Some(done) = &done {
                self.send(done, "done (again)", &mut last_ok).await;
            }
        }
    }

    fn interval_body(&self, seq: u64, bytes: &[u8]) -> Bytes {
        self.body(seq, bytes, false)
    }

    fn body(&self, seq: u64, bytes: &[u8], to_relay: bool) -> Bytes {
        let message = Message::Interval {
            test_id: self.test_id.clone(),
            agent: self.p.me.clone(),
            seq,
            to_relay,
        };
        protocol::encode(&message, bytes)
    }

    /// Delivers an interval through the test's merge tree: to this
    /// agent's relay, or merged here when this agent relays. A relay that
    /// fails or does not answer in time is skipped for the rest of the
    /// test (the next level up, in the end the origin, takes its place).
    /// False when the interval has to go straight to the coordinator: no
    /// tree, a new coordinator, or nothing above took it.
    async fn via_tree(&self, seq: u64, bytes: &Bytes) -> bool {
        let Some(tree) = self.p.tree(&self.test_id) else {
            return false;
        };
        loop {
            if tree.origin() != self.current.node || *self.coordinator.borrow() != self.current {
                return false;
            }
            match tree.route() {
                Route::Origin => return false,
                Route::Here => {
                    let combined = match crate::metrics::Snapshot::decode(bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|s| Combined::of(&self.p.me, seq, s).map_err(|e| e.to_string()))
                    {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(test = %self.test_id, "interval {seq}: {e}");
                            return false;
                        }
                    };
                    return matches!(tree.offer(combined).await, Response::Ok);
                }
                Route::Relay { agent, addr } => {
                    let body = self.body(seq, bytes, true);
                    let reply = self
                        .p
                        .transport
                        .request(addr, body, tree.relay_timeout())
                        .await;
                    match reply.map(|r| protocol::decode::<Response>(&r)) {
                        Ok(Ok((Response::Ok, _))) => return true,
                        // The relay reached the origin, which did not take it:
                        // the straight path says why and retries.
                        Ok(Ok((Response::UnknownTest { .. }, _))) => return false,
                        Ok(Ok((other, _))) => {
                            tracing::debug!(test = %self.test_id, relay = %agent, "interval {seq}: {other:?}");
                            tree.skip(&agent);
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(test = %self.test_id, relay = %agent, "interval {seq}: {e}");
                            tree.skip(&agent);
                        }
                        Err(e) => {
                            tracing::debug!(test = %self.test_id, relay = %agent, "interval {seq}: {e}");
                            tree.skip(&agent);
                        }
                    }
                }
            }
        }
    }

    /// Sends intervals `0..upto` again, from disk, to a new coordinator;
    /// false when the orphan timeout gave up meanwhile.
    async fn resend(&mut self, upto: u64, last_ok: &mut Instant) -> bool {
        let coordinator = self.current.node.clone();
        let stored = match &self.p.store {
            Some(store) => {
                let (store, id, me) = (store.clone(), self.test_id.clone(), self.p.me.clone());
                tokio::task::spawn_blocking(move || store.read_intervals(&id, &me))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
            }
            None => Err("this agent has no data directory".into()),
        };
        let stored = match stored {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(test = %self.test_id, %coordinator,
                    "cannot send earlier intervals to the new coordinator: {e}");
                return true;
            }
        };
        let count = stored.iter().filter(|(seq, _)| *seq < upto).count();
        tracing::info!(test = %self.test_id, %coordinator, "sending {count} earlier intervals to the new coordinator");
        for (seq, bytes) in stored.into_iter().filter(|(seq, _)| *seq < upto) {
            let body = self.interval_body(seq, &bytes);
            match self
                .send(&body, &format!("interval {seq} (again)"), last_ok)
                .await
            {
                Sent::Delivered => {}
                Sent::GaveUp => return false,
                // Yet another coordinator: the caller starts over with it.
                Sent::Redirected => return true,
            }
        }
        true
    }

    /// One delivery, retried until it gets through, the coordinator changes
    /// or nothing got through for the orphan timeout.
    async fn send(&mut self, body: &Bytes, what: &str, last_ok: &mut Instant) -> Sent {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *self.coordinator.borrow() != self.current {
                return Sent::Redirected;
            }
            let addr = self.current.addr;
            // One delivery never waits past the orphan timeout: a coordinator that stopped
            // answering (paused, partitioned) must not keep the load going for longer.
            let orphan = self.p.orphan_timeout;
            let budget = orphan.saturating_sub(last_ok.elapsed());
            let timeout = SEND_TIMEOUT.min(budget.max(MIN_SEND_TIMEOUT));
            let failure = match self.p.transport.request(addr, body.clone(), timeout).await {
                Ok(reply) => match protocol::decode::<Response>(&reply) {
                    // A successor that has not taken the test over yet: it will.
                    Ok((Response::UnknownTest { message, .. }, _)) => message,
                    Ok((Response::Error { message }, _)) => {
                        tracing::warn!(test = %self.test_id, %addr, "{what} refused: {message}");
                        *last_ok = Instant::now();
                        return Sent::Delivered;
                    }
                    _ => {
                        *last_ok = Instant::now();
                        return Sent::Delivered;
                    }
                },
                Err(e) => e.to_string(),
            };
            if last_ok.elapsed() > orphan {
                if !self.stop.is_cancelled() {
                    tracing::warn!(%addr, "cannot reach the coordinator for {orphan:?}: stopping the load ({failure})");
                    self.stop.cancel();
                }
                return Sent::GaveUp;
            }
            tracing::debug!(%addr, "{what} not delivered yet: {failure}");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                Ok(()) = self.coordinator.changed() => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Keeps an interval in the data directory (off the runtime's threads:
    /// the store syncs to disk) until the test's summary is sealed.
    async fn keep_on_disk(&self, seq: u64, bytes: Bytes) {
        let Some(store) = self.p.store.clone() else {
            return;
        };
        let (id, me) = (self.test_id.clone(), self.p.me.clone());
        let written =
            tokio::task::spawn_blocking(move || store.append_interval(&id, &me, seq, &bytes))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::warn!(test = %self.test_id, "cannot keep interval {seq} on disk: {e}");
        }
    }
}
