//! The thread a push output (InfluxDB, Prometheus remote write,
//! OpenTelemetry) does its work on, so that the output never slows the
//! load: a named thread with its own current-thread tokio runtime, fed
//! through a bounded queue that drops rather than waits (what it dropped is
//! counted), and joined at the end of the run within a time limit. The
//! thread's loop (each output's own) returns what it could not deliver, by
//! reason; each output turns that into its notes for the summary.

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::AddAssign;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};

/// How long the end of a run gives a push output's last pushes.
pub(super) const FINAL_LIMIT: Duration = Duration::from_secs(15);
/// How much longer than [`FINAL_LIMIT`] the end of a run waits for the
/// thread itself (it bounds its own last pushes; this guards against one
/// that hangs regardless).
const JOIN_GRACE: Duration = Duration::from_secs(5);

/// What a push output did not deliver, by reason; `N` counts it (points,
/// samples, or exports and their data points). A count of zero marks a
/// note with no count.
pub(super) type Losses<N> = BTreeMap<String, N>;

/// Why pushes still under way at [`FINAL_LIMIT`] were given up.
pub(super) fn late() -> String {
    format!(
        "not delivered within {} s of the end of the test",
        FINAL_LIMIT.as_secs()
    )
}

/// A push output's thread and the queue to it.
pub(super) struct Worker<T, N> {
    /// `--out …` as the user wrote it, for messages.
    label: String,
    /// Dropped at the end, which tells the thread's loop to finish.
    tx: Option<mpsc::Sender<T>>,
    thread: Option<JoinHandle<Losses<N>>>,
    /// What the queue refused because it was full (or the thread gone).
    dropped: N,
}

/// What a worker left when it was closed.
pub(super) struct Closed<N> {
    /// The thread's losses, or why it gave none.
    pub losses: Losses<N>,
    /// What the queue dropped.
    pub dropped: N,
}

impl<T, N> Worker<T, N>
where
    T: Send + 'static,
    N: Default + AddAssign + Send + 'static,
{
    /// Starts the thread `name`, whose runtime runs `run` over the queue
    /// (`queue` items wait at most) until the queue closes. A runtime that
    /// cannot start is a note: the output then sends nothing.
    pub(super) fn start<F, Fut>(
        label: String,
        name: &str,
        queue: usize,
        run: F,
    ) -> Result<Worker<T, N>, String>
    where
        F: FnOnce(mpsc::Receiver<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Losses<N>>,
    {
        let (tx, rx) = mpsc::channel(queue);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run(rx)),
                    Err(e) => Losses::from([(
                        format!("cannot start its runtime ({e}); nothing sent"),
                        N::default(),
                    )]),
                }
            })
            .map_err(|e| format!("--out {label}: cannot start its thread: {e}"))?;
        Ok(Worker {
            label,
            tx: Some(tx),
            thread: Some(thread),
            dropped: N::default(),
        })
    }

    /// `--out …` as the user wrote it.
    pub(super) fn label(&self) -> &str {
        &self.label
    }

    /// Hands `item` to the thread without waiting. A full queue drops it
    /// and counts `cost`; the item is given back then.
    pub(super) fn send(&mut self, item: T, cost: N) -> Result<(), T> {
        let Some(tx) = &self.tx else {
            return Err(item);
        };
        match tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item) | TrySendError::Closed(item)) => {
                self.dropped += cost;
                Err(item)
            }
        }
    }

    /// Closes the queue and waits for the thread (its last pushes within
    /// [`FINAL_LIMIT`]); `what` names what a thread that failed or did
    /// not end may have left undelivered ("points").
    pub(super) fn close(&mut self, what: &str) -> Closed<N> {
        self.close_within(what, FINAL_LIMIT + JOIN_GRACE)
    }

    fn close_within(&mut self, what: &str, limit: Duration) -> Closed<N> {
        drop(self.tx.take());
        let mut losses = Losses::new();
        if let Some(thread) = self.thread.take() {
            match super::join_within(thread, limit) {
                Ok(l) => losses = l,
                Err(super::Unjoined::Failed) => {
                    losses.insert(
                        format!("its thread failed; {what} may be missing"),
                        N::default(),
                    );
                }
                Err(super::Unjoined::StillRunning) => {
                    losses.insert(
                        format!("its thread did not end; {what} may be missing"),
                        N::default(),
                    );
                }
            }
        }
        Closed {
            losses,
            dropped: std::mem::take(&mut self.dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_and_the_loop_finishes_at_close() {
        let (open, gate) = tokio::sync::oneshot::channel();
        // The loop waits for `gate`, then counts what it receives.
        let run = |mut rx: mpsc::Receiver<u64>| async move {
            let _ = gate.await;
            let mut losses = Losses::new();
            while let Some(n) = rx.recv().await {
                *losses.entry("received".to_owned()).or_default() += n;
            }
            losses
        };
        let mut worker = Worker::start("w".into(), "volley-test-worker", 2, run)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(worker.label(), "w");
        assert_eq!(worker.send(1, 1), Ok(()));
        assert_eq!(worker.send(2, 1), Ok(()));
        // The loop is held at its gate: the queue of 2 is full.
        assert_eq!(worker.send(4, 10), Err(4));
        assert_eq!(worker.send(8, 20), Err(8));
        let _ = open.send(());
        let closed = worker.close("points");
        assert_eq!(closed.losses, Losses::from([("received".to_owned(), 3)]));
        assert_eq!(closed.dropped, 30);
        // Closed: nothing more is taken, nor counted.
        assert_eq!(worker.send(16, 1), Err(16));
        assert_eq!(worker.close("points").dropped, 0);
    }

    #[test]
    fn a_thread_that_fails_or_hangs_is_a_note() {
        let mut failed: Worker<u64, u64> =
            Worker::start("w".into(), "volley-test-worker", 1, |_rx| async {
                panic!("the loop failed")
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            failed.close("samples").losses,
            Losses::from([("its thread failed; samples may be missing".to_owned(), 0)])
        );
        let mut stuck: Worker<u64, u64> =
            Worker::start("w".into(), "volley-test-worker", 1, |_rx| async {
                // Ignores the closed queue for a while (then ends, so the
                // test leaves no thread behind for long).
                tokio::time::sleep(Duration::from_secs(5)).await;
                Losses::new()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            stuck
                .close_within("exports", Duration::from_millis(50))
                .losses,
            Losses::from([(
                "its thread did not end; exports may be missing".to_owned(),
                0
            )])
        );
    }
}
