//! A per-sample output's file (or stdout) and the thread that writes it.
//!
//! The recorder hands each batch of points over a bounded queue and never
//! waits: when the queue is full (the disk cannot keep up) the batch's
//! points are dropped and counted, and the series it introduced are kept
//! for the next batch, so later points still name the right series. A
//! write error stops the output (its later points are counted as dropped)
//! but never the test. At the end the thread gets a time limit to write
//! what is queued.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::spec::Dest;
use crate::metrics::points::PointEncoder;
use crate::metrics::{Point, SeriesKey};

/// Batches waiting for the writer before new ones are dropped (a batch
/// holds at most 256 samples' points, so at most a few MiB wait).
const QUEUE: usize = 256;

/// How long the end of a run waits for queued points to be written.
pub const FINAL_FLUSH_LIMIT: Duration = Duration::from_secs(30);

/// What the writer thread is sent.
struct Batch {
    time_unix_ns: u128,
    new_keys: Vec<SeriesKey>,
    points: Vec<Point>,
}

/// One open per-sample output.
pub struct PointFile {
    /// `json (out.json)`, for messages.
    label: String,
    tx: Option<SyncSender<Batch>>,
    thread: Option<JoinHandle<Result<(), String>>>,
    /// Series the writer has not been sent yet (their batch was dropped).
    pending_keys: Vec<SeriesKey>,
    /// Points dropped because the queue was full.
    dropped_full: u64,
    /// Points dropped because the file could not be written.
    dropped_failed: Arc<AtomicU64>,
}

impl PointFile {
    /// Opens `dest` (creating the file now, so a bad path fails before
    /// the test starts) and starts its writer, which flushes at least
    /// every `flush_every`.
    pub fn open(
        label: String,
        dest: &Dest,
        mut encoder: Box<dyn PointEncoder>,
        flush_every: Duration,
    ) -> Result<PointFile, String> {
        let mut sink = Sink::open(dest).map_err(|e| format!("--out {label}: {e}"))?;
        let (tx, rx) = sync_channel(QUEUE);
        let dropped_failed = Arc::new(AtomicU64::new(0));
        let failed = dropped_failed.clone();
        let name = label.clone();
        let thread = std::thread::Builder::new()
            .name("volley-out".into())
            .spawn(move || {
                let mut head = Vec::new();
                encoder.start(&mut head);
                let started = sink.write_all(&head).map_err(|e| e.to_string());
                write_loop(&mut *encoder, &mut sink, rx, flush_every, &failed, started)
                    .map_err(|e| format!("--out {name}: cannot write: {e}"))
            })
            .map_err(|e| format!("--out {label}: cannot start its writer thread: {e}"))?;
        Ok(PointFile {
            label,
            tx: Some(tx),
            thread: Some(thread),
            pending_keys: Vec::new(),
            dropped_full: 0,
            dropped_failed,
        })
    }

    /// Closes the queue and waits (up to `limit`) for the writer to write
    /// what is queued and close the file. Returns what the summary should
    /// say about points not written.
    fn close(&mut self, limit: Duration) -> Vec<String> {
        drop(self.tx.take());
        let mut notes = Vec::new();
        let Some(thread) = self.thread.take() else {
            return notes;
        };
        let error = match super::join_within(thread, limit) {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(super::Unjoined::Failed) => {
                Some(format!("--out {}: the writer thread failed", self.label))
            }
            Err(super::Unjoined::StillRunning) => Some(format!(
                "--out {}: still writing after {} s; what was queued may be missing",
                self.label,
                limit.as_secs()
            )),
        };
        if self.dropped_full > 0 {
            notes.push(format!(
                "--out {}: {} points dropped: the output could not keep up with the samples",
                self.label, self.dropped_full
            ));
        }
        let failed = self.dropped_failed.load(Ordering::Relaxed);
        if let Some(e) = error {
            notes.push(format!("{e}; {failed} points dropped after it"));
        }
        notes
    }
}

impl super::PointOutput for PointFile {
    fn send(&mut self, time_unix_ns: u128, new_keys: &[SeriesKey], points: &[Point]) {
        let Some(tx) = &self.tx else { return };
        let mut keys = std::mem::take(&mut self.pending_keys);
        keys.extend_from_slice(new_keys);
        let batch = Batch {
            time_unix_ns,
            new_keys: keys,
            points: points.to_vec(),
        };
        match tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(b)) => {
                self.dropped_full += b.points.len() as u64;
                self.pending_keys = b.new_keys;
            }
            // The writer stopped on an error; it reports it at the end.
            Err(TrySendError::Disconnected(b)) => {
                self.dropped_failed
                    .fetch_add(b.points.len() as u64, Ordering::Relaxed);
            }
        }
    }

    fn finish(mut self: Box<Self>) -> Vec<String> {
        self.close(FINAL_FLUSH_LIMIT)
    }
}

/// A run that ends early (a failed `setup()`) still gets its file closed
/// (a gzip file its trailer).
impl Drop for PointFile {
    fn drop(&mut self) {
        if self.thread.is_some() {
            for note in self.close(FINAL_FLUSH_LIMIT) {
                eprintln!("warning: {note}");
            }
        }
    }
}

/// The writer thread's loop: batches to bytes to the sink, flushed every
/// `flush_every`; after an error, the rest is counted as dropped.
fn write_loop(
    encoder: &mut dyn PointEncoder,
    sink: &mut Sink,
    rx: Receiver<Batch>,
    flush_every: Duration,
    dropped: &AtomicU64,
    started: Result<(), String>,
) -> Result<(), String> {
    let mut error = started.err();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut next_flush = Instant::now() + flush_every;
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(batch) if error.is_none() => {
                for key in &batch.new_keys {
                    encoder.add_series(key, &mut buf);
                }
                encoder.write(batch.time_unix_ns, &batch.points, &mut buf);
                if let Err(e) = sink.write_all(&buf) {
                    dropped.fetch_add(batch.points.len() as u64, Ordering::Relaxed);
                    error = Some(e.to_string());
                }
                buf.clear();
            }
            Ok(batch) => {
                dropped.fetch_add(batch.points.len() as u64, Ordering::Relaxed);
            }
            Err(RecvTimeoutError::Timeout) => {
                if error.is_none()
                    && let Err(e) = sink.flush()
                {
                    error = Some(e.to_string());
                }
                next_flush = Instant::now() + flush_every;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    match error {
        Some(e) => Err(e),
        None => sink.finish().map_err(|e| e.to_string()),
    }
}

/// Where the bytes go.
enum Sink {
    Stdout(std::io::Stdout),
    File(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn open(dest: &Dest) -> Result<Sink, String> {
        match dest {
            Dest::Stdout => Ok(Sink::Stdout(std::io::stdout())),
            Dest::File(path) => {
                let file = File::create(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                let out = BufWriter::with_capacity(256 * 1024, file);
                let gzip = path.extension().is_some_and(|ext| ext == "gz");
                Ok(if gzip {
                    Sink::Gzip(GzEncoder::new(out, Compression::default()))
                } else {
                    Sink::File(out)
                })
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout(s) => s.lock().write_all(bytes),
            Sink::File(f) => f.write_all(bytes),
            Sink::Gzip(g) => g.write_all(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(s) => s.lock().flush(),
            Sink::File(f) => f.flush(),
            Sink::Gzip(g) => g.flush(),
        }
    }

    /// Ends the stream (the gzip trailer) and flushes it to the file.
    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Gzip(g) => {
                g.try_finish()?;
                g.get_mut().flush()
            }
            _ => self.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::metrics::{Metric, TagSet};
    use crate::outputs::PointOutput;

    /// An encoder that waits at the start until the test lets it go, and
    /// notes the series it is given.
    struct Held {
        go: Option<Receiver<()>>,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl PointEncoder for Held {
        fn start(&mut self, _out: &mut Vec<u8>) {
            if let Some(go) = self.go.take() {
                let _ = go.recv();
            }
        }

        fn add_series(&mut self, key: &SeriesKey, _out: &mut Vec<u8>) {
            self.seen
                .lock()
                .expect("not poisoned")
                .push(key.to_string());
        }

        fn write(&mut self, _t: u128, points: &[Point], out: &mut Vec<u8>) {
            for p in points {
                out.extend_from_slice(format!("{} {}\n", p.series, p.value).as_bytes());
            }
        }
    }

    fn key(i: usize) -> SeriesKey {
        SeriesKey::new(
            Metric::HttpReqs,
            TagSet::from_pairs([("name", format!("r{i}"))]),
        )
    }

    #[test]
    fn a_full_queue_drops_points_keeps_series_and_says_so() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("out.txt");
        let (go_tx, go_rx): (Sender<()>, Receiver<()>) = channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let encoder = Held {
            go: Some(go_rx),
            seen: seen.clone(),
        };
        let mut out = PointFile::open(
            "test (out.txt)".into(),
            &Dest::File(path.clone()),
            Box::new(encoder),
            Duration::from_millis(50),
        )
        .expect("opens");
        // The writer waits, so the queue fills: QUEUE batches wait, the
        // next ones are dropped, and their new series are kept.
        let point = |series: u32| Point { series, value: 1.0 };
        let extra = 5;
        for i in 0..QUEUE + extra {
            let series = u32::try_from(i).expect("small");
            out.send(0, &[key(i)], &[point(series), point(series)]);
        }
        assert_eq!(out.dropped_full, 2 * extra as u64);
        assert_eq!(out.pending_keys.len(), extra);
        // Once the writer goes, the next batch brings the kept series.
        go_tx.send(()).expect("the writer waits");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !out.pending_keys.is_empty() {
            out.send(0, &[], &[]);
            assert!(Instant::now() < deadline, "the writer never took a batch");
            std::thread::sleep(Duration::from_millis(5));
        }
        let notes = Box::new(out).finish();
        assert_eq!(
            notes,
            [format!(
                "--out test (out.txt): {} points dropped: the output could not keep up with the samples",
                2 * extra
            )]
        );
        let seen = seen.lock().expect("not poisoned").clone();
        let expected: Vec<String> = (0..QUEUE + extra).map(|i| key(i).to_string()).collect();
        assert_eq!(seen, expected, "every series once, in id order");
        let written = std::fs::read_to_string(&path).expect("written");
        assert_eq!(written.lines().count(), 2 * QUEUE);
    }
}
