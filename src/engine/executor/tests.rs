//! What an idle closed-model VU costs: the VU and the task future it lives
//! in, measured, against budgets well below the 4 KiB a VU may cost in all
//! (ARCHITECTURE.md, "what an idle VU holds"). A request's state is boxed
//! while it runs and buffers are dropped before a sleep, so neither grows
//! with the request path; these sizes do, if that is undone.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::iterations::Budget;
use super::{Retire, Stops, VuGauges, vu_loop};
use crate::engine::http::HttpClientConfig;
use crate::engine::sink::SinkHandle;
use crate::engine::vu::{Shared, Vu};
use crate::plan::{Format, FsFiles, LoadOptions};

/// Largest `Vu` (its connections, cookies, variables and sample batch
/// inline; everything else boxed or dropped while it sleeps). A debug build
/// measures 240 bytes.
const VU_BUDGET: usize = 256;
/// Largest future of a closed-model VU's task (the VU included, once: the
/// loop is an `async` block, not an `async fn` that would copy it). Debug
/// builds lay futures out larger than release builds; the budget holds for
/// both. A debug build measures 824 bytes (1,288 in a release build with
/// the VU held twice; 848 before an iteration's steps shared one `Where`).
const VU_TASK_BUDGET: usize = 848;

fn shared(yaml: &str) -> Arc<Shared> {
    let plan = match crate::plan::parse(yaml, Format::Yaml, &LoadOptions::default(), &FsFiles) {
        Ok(p) => p,
        Err(e) => panic!("test plan does not parse: {e}"),
    };
    let http = HttpClientConfig::new(&plan.http).expect("default HTTP options");
    Arc::new(Shared::new(Arc::new(plan), http, None))
}

#[test]
fn an_idle_vu_and_its_task_stay_within_their_budgets() {
    // Every kind of step a plan VU runs, so that each one's future counts.
    let shared = shared(
        "flow:\n\
         - request: {url: 'http://127.0.0.1:1/'}\n\
         - batch: [{url: 'http://127.0.0.1:1/a'}, {url: 'http://127.0.0.1:1/b'}]\n\
         - group: {name: g, flow: [{sleep: 1s}]}\n\
         - sleep: 1s\n",
    );
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = SinkHandle::new(tx, Arc::new(AtomicU64::new(0)));
    let vu = Vu::new(1, &shared, sink.sink());
    let vu_size = size_of::<Vu>();
    assert!(
        vu_size <= VU_BUDGET,
        "a Vu is {vu_size} bytes, over its budget of {VU_BUDGET}: box what only a request needs"
    );
    let task = vu_loop(
        vu,
        shared.clone(),
        0,
        Instant::now(),
        Budget::Unlimited,
        Stops {
            retire: Retire::with_run(&CancellationToken::new()),
            interrupt: CancellationToken::new(),
        },
        Arc::new(VuGauges::planned(1, 1)),
    );
    let task_size = size_of_val(&task);
    eprintln!("a Vu: {vu_size} bytes; a VU's task future: {task_size} bytes");
    assert!(
        task_size <= VU_TASK_BUDGET,
        "a VU's task future is {task_size} bytes, over its budget of {VU_TASK_BUDGET}: \
         is a request's future inlined again?"
    );
}
