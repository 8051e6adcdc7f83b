//! Per-VU sample batching: the lock-free path from a VU to the recorder.
//!
//! A VU appends samples to its own `Vec` (no lock, no atomics beyond one
//! relaxed load per iteration) and hands the whole batch to the recorder
//! task through an unbounded channel when it is full, or at the end of an
//! iteration once the recorder has started a new interval (the `epoch`),
//! so interval snapshots stay close to when samples happened.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc::UnboundedSender;

use crate::metrics::Sample;

/// Samples are shipped at the latest when this many are waiting.
const BATCH: usize = 256;

/// The sending half, shared by every VU of a run.
#[derive(Clone)]
pub struct SinkHandle {
    tx: UnboundedSender<Vec<Sample>>,
    epoch: Arc<AtomicU64>,
}

/// One VU's (or executor's) private batch.
pub struct SampleSink {
    handle: SinkHandle,
    batch: Vec<Sample>,
    /// Recorder epoch when the first sample of `batch` was pushed.
    batch_epoch: u64,
}

// === impl SinkHandle ===

impl SinkHandle {
    pub fn new(tx: UnboundedSender<Vec<Sample>>, epoch: Arc<AtomicU64>) -> Self {
        SinkHandle { tx, epoch }
    }

    pub fn sink(&self) -> SampleSink {
        SampleSink {
            handle: self.clone(),
            batch: Vec::new(),
            batch_epoch: 0,
        }
    }

    /// Sends one sample on its own (executors: dropped iterations, gauges).
    pub fn send_one(&self, sample: Sample) {
        // A closed channel means the run is over; late samples are moot.
        let _ = self.tx.send(vec![sample]);
    }
}

// === impl SampleSink ===

impl SampleSink {
    /// Another empty batch on the same channel (a script VU's runtime
    /// reports from its worker thread while the executor keeps this one).
    pub fn fork(&self) -> SampleSink {
        self.handle.sink()
    }

    pub fn push(&mut self, sample: Sample) {
        if self.batch.is_empty() {
            // Small: a VU that sleeps between requests ships a few samples
            // at a time, and 1000s of VUs may hold a batch at once.
            self.batch.reserve(2);
            self.batch_epoch = self.handle.epoch.load(Ordering::Relaxed);
        }
        self.batch.push(sample);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    /// Ships the batch if the recorder moved to a new interval since it began.
    pub fn flush_if_stale(&mut self) {
        if !self.batch.is_empty() && self.handle.epoch.load(Ordering::Relaxed) != self.batch_epoch {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            let _ = self.handle.tx.send(batch);
        }
    }
}

impl Drop for SampleSink {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Sample;

    fn sample() -> Sample {
        Sample::Dropped {
            scenario: 0,
            count: 1,
        }
    }

    #[test]
    fn batches_until_full_or_stale_and_flushes_on_drop() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let epoch = Arc::new(AtomicU64::new(0));
        let handle = SinkHandle::new(tx, epoch.clone());
        let mut sink = handle.sink();
        for _ in 0..BATCH + 1 {
            sink.push(sample());
        }
        assert_eq!(rx.try_recv().map(|b| b.len()).ok(), Some(BATCH));
        assert!(rx.try_recv().is_err());
        sink.flush_if_stale();
        assert!(rx.try_recv().is_err(), "same epoch: keep batching");
        epoch.fetch_add(1, Ordering::Relaxed);
        sink.flush_if_stale();
        assert_eq!(rx.try_recv().map(|b| b.len()).ok(), Some(1));
        sink.push(sample());
        drop(sink);
        assert_eq!(rx.try_recv().map(|b| b.len()).ok(), Some(1));
    }
}
