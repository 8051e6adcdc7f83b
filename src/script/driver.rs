//! Script worker threads and the async drivers of VU coroutines.
//!
//! A QuickJS runtime is not `Send`, so VUs live on worker threads, each a
//! current-thread tokio runtime with a `LocalSet` and one QuickJS runtime
//! ([`WorkerRuntime`]) that all of the thread's VUs share, a context each.
//! The engine's executors keep a [`ScriptVu`] handle (which is `Send`) and
//! ask it for iterations; the VU's driver task runs the coroutine, sends its
//! HTTP requests on the VU's own client, sleeps for it, and answers.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::coroutine::resume;
use super::error::ScriptError;
use super::host::Host;
use super::native::Stage;
use super::sources::Sources;
use super::vu::{self, HttpCall, IterCmd, Resume, Spawn, VuCoroutine, Yield};
use super::worker::WorkerRuntime;
use crate::engine::http::batch::Lanes;
use crate::engine::http::{HttpClientConfig, OutRequest, Response, VuClient};
use crate::engine::sink::SampleSink;

/// A VU to start on a worker thread, given the thread's runtime slot.
type Task = Box<dyn FnOnce(&RuntimeSlot) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A worker thread's runtime, made by its first VU (it needs the script's
/// module sources) and shared by the thread's later VUs.
#[derive(Default)]
struct RuntimeSlot(RefCell<Option<Rc<WorkerRuntime>>>);

impl RuntimeSlot {
    fn runtime(&self, sources: &Arc<Sources>) -> Result<Rc<WorkerRuntime>, ScriptError> {
        let mut slot = self.0.borrow_mut();
        if let Some(rt) = &*slot {
            return Ok(Rc::clone(rt));
        }
        let rt = Rc::new(WorkerRuntime::new(sources)?);
        *slot = Some(Rc::clone(&rt));
        Ok(rt)
    }
}

/// The script worker threads of one run.
pub struct Workers {
    queues: Vec<mpsc::UnboundedSender<Task>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workers({})", self.queues.len())
    }
}

impl Workers {
    /// Starts `n` worker threads (at least one). They end when the last
    /// handle to this value is dropped and their VUs are closed.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let mut queues = Vec::new();
        for i in 0..n.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<Task>();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("volley-js-{i}"))
                .spawn(move || {
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&rt, async move {
                        let slot = RuntimeSlot::default();
                        while let Some(task) = rx.recv().await {
                            tokio::task::spawn_local(task(&slot));
                        }
                    });
                    // Let every VU close its runtime before the thread ends.
                    rt.block_on(local);
                })?;
            queues.push(tx);
        }
        Ok(Workers {
            queues,
            next: AtomicUsize::new(0),
        })
    }

    /// One "worker" that is the calling thread itself: VUs run as local
    /// tasks of the `LocalSet` this is called in. With one CPU this saves
    /// two thread switches per iteration (the engine runs on the same
    /// current-thread runtime). Must be called inside a `LocalSet`.
    pub fn in_local_set() -> Workers {
        let (tx, mut rx) = mpsc::unbounded_channel::<Task>();
        tokio::task::spawn_local(async move {
            let slot = RuntimeSlot::default();
            while let Some(task) = rx.recv().await {
                tokio::task::spawn_local(task(&slot));
            }
        });
        Workers {
            queues: vec![tx],
            next: AtomicUsize::new(0),
        }
    }

    fn submit(&self, task: Task) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        // A closed queue means the worker is gone; the handle then reports
        // every iteration as failed to start.
        let _ = self.queues[i].send(task);
    }
}

enum Job {
    Iterate(IterCmd, oneshot::Sender<bool>),
    Lifecycle(
        &'static str,
        Option<String>,
        oneshot::Sender<Result<Option<String>, ScriptError>>,
    ),
}

/// The executor's handle on one script VU.
#[derive(Debug)]
pub struct ScriptVu {
    jobs: mpsc::UnboundedSender<Job>,
    interrupt: Arc<AtomicBool>,
    ready: Option<oneshot::Receiver<Result<(), ScriptError>>>,
    /// Where a failed init is reported (it stops the run, as in k6).
    host: Arc<Host>,
    /// Init failed: every iteration is refused at once.
    dead: bool,
}

impl ScriptVu {
    /// Starts VU `vu` on one of the workers; its init runs there.
    pub fn spawn(
        workers: &Workers,
        host: Arc<Host>,
        http: Arc<HttpClientConfig>,
        vu: u64,
        sink: SampleSink,
        stage: Stage,
    ) -> ScriptVu {
        let (jobs, rx) = mpsc::unbounded_channel();
        let interrupt = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = oneshot::channel();
        let host_for_errors = Arc::clone(&host);
        let spawn = Spawn {
            script: Arc::clone(&host.script),
            host: Some(host),
            stage,
            vu,
            sink: Some(sink),
            interrupt: Arc::clone(&interrupt),
        };
        let flag = Arc::clone(&interrupt);
        workers.submit(Box::new(move |slot: &RuntimeSlot| {
            let worker = slot.runtime(&spawn.script.sources);
            Box::pin(drive(
                worker,
                vu::spawn(spawn),
                VuClient::for_vu(http, vu),
                rx,
                ready_tx,
                flag,
            ))
        }));
        ScriptVu {
            jobs,
            interrupt,
            ready: Some(ready_rx),
            host: host_for_errors,
            dead: false,
        }
    }

    /// Waits for init to finish (once).
    pub async fn ready(&mut self) -> Result<(), ScriptError> {
        match self.ready.take() {
            Some(rx) => rx
                .await
                .unwrap_or_else(|_| Err(ScriptError::Runtime("the script worker stopped".into()))),
            None => Ok(()),
        }
    }

    /// Runs one iteration; false if it was interrupted or could not run.
    /// Dropping the future interrupts the iteration.
    pub async fn iterate(&mut self, cmd: IterCmd) -> bool {
        if self.dead {
            // The run is stopping; wait for it rather than spin.
            self.host.stop.cancelled().await;
            return false;
        }
        if let Err(e) = self.ready().await {
            // k6 ends the test when a VU's init fails (exit 107).
            self.dead = true;
            self.host.fail_init(e);
            return false;
        }
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Iterate(cmd, tx)).is_err() {
            return false;
        }
        let guard = InterruptOnDrop(&self.interrupt, true);
        let done = rx.await.unwrap_or(false);
        std::mem::forget(guard);
        done
    }

    /// Runs `setup`, `teardown` or `handleSummary` (`name`) in this
    /// runtime, with `arg` as its JSON argument when given.
    pub async fn lifecycle(
        &mut self,
        name: &'static str,
        arg: Option<String>,
    ) -> Result<Option<String>, ScriptError> {
        self.ready().await?;
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Lifecycle(name, arg, tx))
            .map_err(|_| ScriptError::Runtime("the script worker stopped".into()))?;
        // Dropped (a time limit): the function is interrupted, even in a loop.
        let guard = InterruptOnDrop(&self.interrupt, true);
        let r = rx
            .await
            .unwrap_or_else(|_| Err(ScriptError::Runtime("the script worker stopped".into())));
        std::mem::forget(guard);
        r
    }
}

/// Sets the interrupt flag when an iteration's future is dropped.
struct InterruptOnDrop<'a>(&'a AtomicBool, bool);

impl Drop for InterruptOnDrop<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs one coroutine in its worker's runtime: init, then jobs until the
/// handle is dropped.
async fn drive(
    worker: Result<Rc<WorkerRuntime>, ScriptError>,
    mut co: VuCoroutine,
    mut client: VuClient,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    ready: oneshot::Sender<Result<(), ScriptError>>,
    interrupt: Arc<AtomicBool>,
) {
    let worker = match worker {
        Ok(w) => w,
        Err(e) => {
            // The coroutine never started: it holds no JavaScript.
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut response = Box::<Response>::default();
    let mut lanes = Lanes::default();
    let mut first = resume(&mut co, Resume::Start(worker));
    // A long init gives the thread back now and then (see `vu::PREEMPT_AFTER`).
    while let Some(Yield::Preempted) = first {
        tokio::task::yield_now().await;
        first = resume(&mut co, Resume::Continue);
    }
    match first {
        Some(Yield::Ready(Ok(()))) => {
            let _ = ready.send(Ok(()));
        }
        Some(Yield::Ready(Err(e))) => {
            let _ = ready.send(Err(e));
            finish(&mut co);
            return;
        }
        _ => {
            let _ = ready.send(Err(ScriptError::Runtime("init did not finish".into())));
            finish(&mut co);
            return;
        }
    }
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Iterate(cmd, mut done) => {
                // A cut that landed after the last iteration ended is moot.
                interrupt.store(false, Ordering::Relaxed);
                let mut y = resume(&mut co, Resume::Iterate(cmd));
                loop {
                    match y {
                        Some(Yield::Done(ok)) => {
                            let _ = done.send(ok);
                            break;
                        }
                        Some(other) => {
                            match serve(&other, &mut client, &mut lanes, &mut response, &mut done)
                                .await
                            {
                                Some(r) => y = resume(&mut co, r),
                                None => {
                                    let _ = done.send(false);
                                    return;
                                }
                            }
                        }
                        None => {
                            let _ = done.send(false);
                            return;
                        }
                    }
                }
            }
            Job::Lifecycle(name, arg, mut done) => {
                interrupt.store(false, Ordering::Relaxed);
                let mut y = resume(&mut co, Resume::Lifecycle(name, arg));
                let unfinished = || Err(ScriptError::Runtime(format!("{name}() did not finish")));
                loop {
                    match y {
                        Some(Yield::LifecycleDone(r)) => {
                            let _ = done.send(r);
                            break;
                        }
                        Some(other) => {
                            match serve(&other, &mut client, &mut lanes, &mut response, &mut done)
                                .await
                            {
                                Some(r) => y = resume(&mut co, r),
                                None => {
                                    let _ = done.send(unfinished());
                                    return;
                                }
                            }
                        }
                        None => {
                            let _ = done.send(unfinished());
                            return;
                        }
                    }
                }
            }
        }
    }
    client.close_all();
    finish(&mut co);
}

/// Does what the coroutine asked (a request, a sleep, a turn for the
/// others) and says what to resume it with: `Stop` once the caller is
/// gone (the iteration was cut, a time limit passed). `None` for anything
/// that is not such a request.
async fn serve<T>(
    y: &Yield,
    client: &mut VuClient,
    lanes: &mut Lanes,
    response: &mut Box<Response>,
    done: &mut oneshot::Sender<T>,
) -> Option<Resume> {
    Some(match y {
        Yield::Http(call) => tokio::select! {
            biased;
            _ = done.closed() => Resume::Stop,
            _ = send(client, call, response) => Resume::Http(std::mem::take(response)),
        },
        Yield::Batch(calls) => {
            let reqs: Vec<OutRequest<'_>> = calls.iter().map(out_request).collect();
            tokio::select! {
                biased;
                _ = done.closed() => Resume::Stop,
                r = lanes.send_all(client, &reqs) => Resume::Batch(r),
            }
        }
        Yield::Sleep(d) => {
            // A sleeping VU holds no read buffers.
            client.release_buffers();
            lanes.release_buffers();
            tokio::select! {
                biased;
                _ = done.closed() => Resume::Stop,
                _ = tokio::time::sleep(*d) => Resume::Slept,
            }
        }
        Yield::Preempted => tokio::select! {
            biased;
            _ = done.closed() => Resume::Stop,
            _ = tokio::task::yield_now() => Resume::Continue,
        },
        _ => return None,
    })
}

/// Runs a coroutine to its end: it must never be dropped while suspended
/// inside JavaScript.
fn finish(co: &mut VuCoroutine) {
    while !co.is_done() {
        let _ = resume(co, Resume::Stop);
    }
}

async fn send(client: &mut VuClient, call: &HttpCall, out: &mut Response) {
    client.send(&out_request(call), out).await;
}

/// A script's call as the client sends it (every response header is kept:
/// the script may read any).
fn out_request(call: &HttpCall) -> OutRequest<'_> {
    OutRequest {
        method: &call.method,
        url: &call.url,
        headers: &call.headers,
        body: &call.body,
        timeout: call.timeout,
        keep_body: call.keep_body,
        keep_headers: true,
    }
}
