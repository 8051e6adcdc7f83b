//! `volley tests` / `GET /v1/tests`: the fleet's tests, gathered from this
//! agent and every live member (each asked for its own list only, so the
//! listing never recurses), merged by test id.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;

use super::core::AgentCore;
use crate::api::{self, TestBrief};

/// How long a member may take to list its tests before it is left out.
const PEER_LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// A sealed verdict: the phase no record can leave.
fn is_verdict(phase: &str) -> bool {
    matches!(phase, "passed" | "failed" | "aborted" | "error")
}

/// How much a record of a test is believed: a verdict (sealed by whoever
/// coordinated it last), then the origin's own record (it coordinates the
/// test), then `interrupted` (a member that lost track of it), then a
/// member's record that it still runs.
fn weight(brief: &TestBrief, from: &str) -> (u8, bool) {
    let from_origin = brief.origin == from;
    let rank = if is_verdict(&brief.phase) {
        3
    } else if from_origin {
        2
    } else if brief.phase == "interrupted" {
        1
    } else {
        0
    };
    (rank, from_origin)
}

/// Merges lists by test id, keeping each test's most believable record
/// ([`weight`]; the origin's among equals); newest first.
pub(super) fn merge_briefs(lists: Vec<(String, Vec<TestBrief>)>) -> Vec<TestBrief> {
    let mut by_id: BTreeMap<String, ((u8, bool), TestBrief)> = BTreeMap::new();
    for (from, list) in lists {
        for brief in list {
            let w = weight(&brief, &from);
            let better = by_id.get(&brief.id).is_none_or(|(kept, _)| w > *kept);
            if better {
                by_id.insert(brief.id.clone(), (w, brief));
            }
        }
    }
    let mut merged: Vec<TestBrief> = by_id.into_values().map(|(_, brief)| brief).collect();
    merged.sort_by_key(|t| std::cmp::Reverse(t.start_unix_ms));
    merged
}

// === impl AgentCore: listing ===

impl AgentCore {
    /// This agent's tests and every live member's, merged.
    pub(super) async fn fleet_tests(&self) -> Vec<TestBrief> {
        let own = api::Agent::list_tests(self).await;
        let members = self.h.membership.members().await;
        let asks = members.iter().filter(|m| !m.is_self).filter_map(|m| {
            let info = m.usable()?;
            let client = api::ApiClient::new(&format!("http://{}", info.api), None)
                .ok()?
                .with_timeout(PEER_LIST_TIMEOUT);
            let node = m.node_id.clone();
            Some(async move {
                match client.list_local_tests().await {
                    Ok(list) => Some((node, list)),
                    Err(e) => {
                        tracing::debug!(peer = %node, "cannot list its tests: {e}");
                        None
                    }
                }
            })
        });
        let mut lists: Vec<(String, Vec<TestBrief>)> =
            join_all(asks).await.into_iter().flatten().collect();
        lists.insert(0, (self.h.settings.node_id.clone(), own));
        merge_briefs(lists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(id: &str, origin: &str, phase: &str, start: u64) -> TestBrief {
        TestBrief {
            id: id.into(),
            name: "t".into(),
            phase: phase.into(),
            origin: origin.into(),
            start_unix_ms: start,
            end_unix_ms: None,
            agents: 1,
            passed: None,
            partial: false,
        }
    }

    #[test]
    fn the_origins_record_wins_and_every_test_shows_once() {
        let merged = merge_briefs(vec![
            (
                "b".into(),
                vec![
                    brief("t1", "a", "running", 10),
                    brief("t2", "b", "passed", 20),
                ],
            ),
            ("a".into(), vec![brief("t1", "a", "failed", 10)]),
            (
                "c".into(),
                vec![
                    brief("t3", "c", "running", 30),
                    brief("t1", "a", "passed", 10),
                ],
            ),
        ]);
        let seen: Vec<(&str, &str)> = merged
            .iter()
            .map(|t| (t.id.as_str(), t.phase.as_str()))
            .collect();
        assert_eq!(
            seen,
            [("t3", "running"), ("t2", "passed"), ("t1", "failed")]
        );
    }

    #[test]
    fn without_the_origin_an_ended_record_wins() {
        let merged = merge_briefs(vec![
            ("b".into(), vec![brief("t1", "a", "running", 10)]),
            ("c".into(), vec![brief("t1", "a", "aborted", 10)]),
        ]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].phase, "aborted");
    }

    #[test]
    fn a_verdict_beats_an_interrupted_origin_and_a_live_origin_beats_a_lost_member() {
        // The origin restarted mid-test (interrupted); a successor sealed it.
        let merged = merge_briefs(vec![
            ("a".into(), vec![brief("t1", "a", "interrupted", 10)]),
            ("b".into(), vec![brief("t1", "a", "passed", 10)]),
        ]);
        assert_eq!(merged[0].phase, "passed");
        // A member restarted (interrupted) while the origin still runs it.
        let merged = merge_briefs(vec![
            ("b".into(), vec![brief("t1", "a", "interrupted", 10)]),
            ("a".into(), vec![brief("t1", "a", "running", 10)]),
        ]);
        assert_eq!(merged[0].phase, "running");
        // Only members that lost track of it, and one that still runs it.
        let merged = merge_briefs(vec![
            ("b".into(), vec![brief("t1", "a", "running", 10)]),
            ("c".into(), vec![brief("t1", "a", "interrupted", 10)]),
        ]);
        assert_eq!(merged[0].phase, "interrupted");
    }
}
