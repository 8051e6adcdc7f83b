//! A fleet test with outputs, as the output tests run it: three agents in
//! regions `us`, `us` and `eu`, 300 shared iterations submitted to agent-1
//! with the outputs, and the sealed summary checked to hold all 300 and no
//! note of undelivered data, before the backend is asked.

use std::net::SocketAddr;
use std::time::Duration;

use volley::api::SummaryView;

use super::{Fleet, FleetOptions, plans, results};

/// Three agents in regions `us`, `us` and `eu`.
pub async fn start() -> Fleet {
    Fleet::start(
        3,
        FleetOptions {
            regions: vec!["us".into(), "us".into(), "eu".into()],
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet forms")
}

impl Fleet {
    /// Runs 300 shared iterations against `target` with `outputs` (grouped
    /// `by` region or agent): the test's id and its sealed summary, which
    /// holds all 300 requests and no line with `undelivered` (the output's
    /// word for what it could not deliver).
    pub async fn run_with_outputs(
        &self,
        target: SocketAddr,
        outputs: Vec<String>,
        by: Option<&str>,
        undelivered: &str,
    ) -> (String, SummaryView) {
        let mut req = plans::submit(plans::shared_iterations(target, 6, 300, "/"));
        req.outputs = outputs;
        req.outputs_by = by.map(str::to_owned);
        let accepted = self.client(1).submit(&req).await.expect("submit accepted");
        let view = self
            .wait_summary(1, &accepted.id, Duration::from_secs(60))
            .await
            .expect("the test seals");
        let requests: u64 = results::total_requests(&view.summary);
        assert_eq!(requests, 300, "{}", view.text);
        assert!(
            !view.text.contains(undelivered),
            "the outputs delivered everything: {}",
            view.text
        );
        (accepted.id, view)
    }
}
