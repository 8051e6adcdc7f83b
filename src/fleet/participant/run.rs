//! One committed share: the engine, the stream of intervals to the
//! coordinator, the watch on the coordinator, and the aborts a share sends
//! (a script's `exec.test.abort()`, the memory watchdog).

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::deliver::{Delivery, Outgoing, Streamer};
use super::{ABORT_SEND_TIMEOUT, Coordinator, Participant, guard, mirror, succession};
use crate::engine::{self, RunOptions};
use crate::fleet::protocol::{self, Message};
use crate::plan::Plan;

/// One committed run: the engine, the stream of intervals to the
/// coordinator, and the watch on the coordinator.
pub(super) struct RunJob {
    pub(super) participant: Arc<Participant>,
    pub(super) test_id: String,
    pub(super) coordinator: watch::Receiver<Coordinator>,
    pub(super) plan: Arc<Plan>,
    pub(super) stop: CancellationToken,
    pub(super) start_at: Instant,
}

impl RunJob {
    pub(super) async fn run(self, opts: RunOptions) {
        let p = self.participant.clone();
        let (tx, rx) = mpsc::unbounded_channel::<Outgoing>();
        let delivery = Delivery::new(
            p.clone(),
            self.test_id.clone(),
            self.coordinator.clone(),
            self.stop.clone(),
        );
        let (mirror_tx, mirror_rx) = mpsc::unbounded_channel();
        tokio::spawn(mirror::run(p.clone(), self.test_id.clone(), mirror_rx));
        let sender = tokio::spawn(delivery.run(rx, mirror_tx));
        let watching = CancellationToken::new();
        // Until the test is sealed here (or its results deadline), also
        // after this share ended.
        tokio::spawn(succession::watch_coordinator(
            p.clone(),
            self.test_id.clone(),
        ));
        let started = tokio::spawn({
            let at = self.start_at;
            let clock = p.clock.clone();
            async move {
                engine::precise_sleep_until(at).await;
                clock.unix_us()
            }
        });
        if let Some(run) = &opts.script {
            // exec.test.abort() in one VU stops the whole fleet.
            tokio::spawn(forward_script_abort(
                p.clone(),
                self.test_id.clone(),
                self.coordinator.clone(),
                Arc::clone(&run.host),
                watching.clone(),
            ));
        }
        let memory_done = CancellationToken::new();
        let memory = p.guard.get().and_then(|g| g.ceiling).map(|ceiling| {
            tokio::spawn(guard_memory(
                p.clone(),
                self.test_id.clone(),
                self.coordinator.clone(),
                ceiling,
                self.stop.clone(),
                memory_done.clone(),
            ))
        });
        let mut streamer = Streamer {
            seq: 0,
            tx: tx.clone(),
            p: p.clone(),
            test_id: self.test_id.clone(),
            totals: Default::default(),
        };
        let result = engine::run(self.plan.clone(), opts, self.stop.clone(), &mut streamer).await;
        // The load stopped: `/metrics` says so before the origin can seal.
        p.share_ended(&self.test_id);
        memory_done.cancel();
        let over_ceiling = match memory {
            Some(watchdog) => watchdog.await.ok().flatten(),
            None => None,
        };
        let started_unix_us = if started.is_finished() {
            started.await.unwrap_or(0)
        } else {
            started.abort();
            0
        };
        let end = match &result {
            _ if over_ceiling.is_some() => {
                format!("failed: {}", over_ceiling.unwrap_or_default())
            }
            _ if p.draining.load(std::sync::atomic::Ordering::SeqCst) => {
                protocol::DRAINED.to_owned()
            }
            Ok(r) => format!("{:?}", r.end).to_lowercase(),
            Err(e) => format!("failed: {e}"),
        };
        let _ = tx.send(Outgoing::Done {
            message: Box::new(Message::Done {
                test_id: self.test_id.clone(),
                agent: p.me.clone(),
                started_unix_us,
                end,
                intervals: streamer.seq,
                saturated: result
                    .as_ref()
                    .ok()
                    .and_then(|r| r.saturation.as_ref())
                    .map(ToString::to_string),
            }),
        });
        drop(tx);
        drop(streamer);
        let delivered = sender.await;
        watching.cancel();
        p.finished(&self.test_id);
        if let Ok((delivery, done)) = delivered {
            tokio::spawn(delivery.linger(done));
        }
    }
}

/// Stops this agent's share when its resident memory passes `ceiling`,
/// and the whole test with it (through the coordinator); what happened, if
/// it did. Ends with the run (`done`).
async fn guard_memory(
    p: Arc<Participant>,
    test_id: String,
    coordinator: watch::Receiver<Coordinator>,
    ceiling: u64,
    stop: CancellationToken,
    done: CancellationToken,
) -> Option<String> {
    let read: Arc<dyn Fn() -> Option<u64> + Send + Sync> = Arc::new(guard::resident_bytes);
    let resident = guard::watch_memory(ceiling, read, stop, done).await?;
    let reason = guard::ceiling_reason(&p.me, resident, ceiling);
    tracing::warn!(test = %test_id, "{reason}");
    send_abort(&p, &test_id, &coordinator, reason).await;
    // The abort carries the explanation; `Done` only says what happened.
    Some(format!(
        "{}: agent {} stopped its share at {} resident, over its {} ceiling",
        protocol::MEMORY_CEILING,
        p.me,
        crate::plan::admission::bytes(resident),
        crate::plan::admission::bytes(ceiling)
    ))
}

/// Asks the coordinator to abort the test (a few tries).
async fn send_abort(
    p: &Participant,
    test_id: &str,
    coordinator: &watch::Receiver<Coordinator>,
    reason: String,
) {
    let msg = Message::Abort {
        test_id: test_id.to_owned(),
        reason,
    };
    let body = protocol::encode(&msg, &[]);
    for _ in 0..3 {
        let addr = coordinator.borrow().addr;
        match p
            .transport
            .request(addr, body.clone(), ABORT_SEND_TIMEOUT)
            .await
        {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(test = %test_id, %addr, "cannot ask the coordinator to abort: {e}")
            }
        }
    }
}

/// Tells the coordinator when this agent's script called
/// `exec.test.abort()`, so that every agent stops (and `volley run` exits
/// 108). Ends with the run (`done`).
async fn forward_script_abort(
    p: Arc<Participant>,
    test_id: String,
    coordinator: watch::Receiver<Coordinator>,
    host: Arc<crate::script::Host>,
    done: CancellationToken,
) {
    tokio::select! {
        _ = done.cancelled() => return,
        _ = host.stop.cancelled() => {}
    }
    let Some(reason) = host.aborted() else { return };
    let reason = format!("{} on agent {}: {reason}", protocol::SCRIPT_ABORT, p.me);
    send_abort(&p, &test_id, &coordinator, reason).await;
}
