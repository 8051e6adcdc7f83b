//! What a VU at work holds besides its task: a request step's boxed future
//! and its request state, measured against budgets (BENCHMARKS.md, "small
//! VUs"). Every VU of a run may be waiting for its response at the same
//! instant, so these sizes are what a VU at work costs; they grow when a
//! layer of the request path keeps more across an await.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::*;
use crate::engine::sink::SinkHandle;
use crate::plan::{Format, FsFiles, LoadOptions};

/// Largest future of a request step (`Vu::request`, with the client's
/// dial and exchange inline). A debug build measures 912 bytes (a release
/// build held 1,928 before each layer stopped copying its arguments, the
/// waits became poll functions and the connection stayed in its origin
/// while in use).
const REQUEST_BUDGET: usize = 1000;
/// Largest request state a VU makes while it sends (`vu::Work`); a debug
/// build measures 336 bytes.
const WORK_BUDGET: usize = 352;

/// The size of the future `make` would return, without making it.
fn future_size<F: Future>(_: impl FnOnce() -> F) -> usize {
    size_of::<F>()
}

#[test]
fn a_request_step_and_its_state_stay_within_their_budgets() {
    let plan = match crate::plan::parse(
        "flow:\n- request: {url: 'http://127.0.0.1:1/'}\n- sleep: 1s\n",
        Format::Yaml,
        &LoadOptions::default(),
        &FsFiles,
    ) {
        Ok(p) => p,
        Err(e) => panic!("test plan does not parse: {e}"),
    };
    let http = HttpClientConfig::new(&plan.http).expect("default HTTP options");
    let shared = Shared::new(Arc::new(plan), http, None);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = SinkHandle::new(tx, Arc::new(AtomicU64::new(0)));
    let mut vu = Vu::new(1, &shared, sink.sink());
    let Some(Op::Request(p)) = shared.program.scenarios[0].first() else {
        panic!("the plan's first op is its request");
    };
    let at = Where {
        iter: 0,
        scenario: "default",
        row: None,
        lag: None,
        http: &shared.plan.http,
    };
    let (at, vu) = (&at, &mut vu);
    let request = future_size(move || vu.request(p, at));
    eprintln!(
        "a request step's future: {request} bytes; vu::Work {} bytes",
        size_of::<Work>()
    );
    assert!(
        request <= REQUEST_BUDGET,
        "a request step's future is {request} bytes, over its budget of {REQUEST_BUDGET}: \
         does a layer of the request path keep more across an await?"
    );
    let work = size_of::<Work>();
    assert!(
        work <= WORK_BUDGET,
        "a VU's request state is {work} bytes, over its budget of {WORK_BUDGET}: box what \
         only rare requests need"
    );
}
