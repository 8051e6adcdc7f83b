//! The merged intervals a fleet test's outputs write: each sequence number
//! merged across agents (all of them, or per region, or kept per agent),
//! handed out once the interval is sealed, so the origin writes one stream
//! per test instead of one per node.

use std::collections::BTreeMap;

use crate::metrics::Snapshot;
use crate::metrics::value::MergeError;

/// How a fleet test's outputs break the fleet down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputGrouping {
    /// One series set for the whole fleet.
    #[default]
    Fleet,
    /// One per region (the agents' `region` label), tagged `region`.
    Region,
    /// One per agent, tagged `agent` and `region`.
    Agent,
}

impl OutputGrouping {
    /// `fleet`, `region` or `agent`.
    pub fn parse(s: &str) -> Result<OutputGrouping, String> {
        match s {
            "fleet" => Ok(OutputGrouping::Fleet),
            "region" => Ok(OutputGrouping::Region),
            "agent" => Ok(OutputGrouping::Agent),
            other => Err(format!("{other:?}: expected fleet, region or agent")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutputGrouping::Fleet => "fleet",
            OutputGrouping::Region => "region",
            OutputGrouping::Agent => "agent",
        }
    }
}

/// One sealed interval of one group, ready for the outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedInterval {
    /// The group's tags (none for the whole fleet).
    pub tags: Vec<(String, String)>,
    pub snapshot: Snapshot,
}

/// Intervals being merged for the outputs, and those sealed.
#[derive(Debug)]
pub(super) struct Outbox {
    by: OutputGrouping,
    /// By seq, then by group: the group's tags and merged snapshot.
    pending: BTreeMap<u64, BTreeMap<Vec<(String, String)>, Snapshot>>,
    ready: Vec<SealedInterval>,
}

impl Outbox {
    pub(super) fn new(by: OutputGrouping) -> Outbox {
        Outbox {
            by,
            pending: BTreeMap::new(),
            ready: Vec::new(),
        }
    }

    pub(super) fn grouping(&self) -> OutputGrouping {
        self.by
    }

    /// Adds one agent's report of interval `seq` (its parts, validated).
    pub(super) fn add(
        &mut self,
        seq: u64,
        agent: &str,
        labels: &BTreeMap<String, String>,
        parts: [&Snapshot; 2],
    ) -> Result<(), MergeError> {
        let tags = self.tags(agent, labels);
        self.add_tagged(seq, tags, parts)
    }

    /// The group an agent's intervals go to.
    pub(super) fn tags(
        &self,
        agent: &str,
        labels: &BTreeMap<String, String>,
    ) -> Vec<(String, String)> {
        let region = || labels.get("region").cloned().unwrap_or_default();
        match self.by {
            OutputGrouping::Fleet => Vec::new(),
            OutputGrouping::Region => vec![("region".to_owned(), region())],
            OutputGrouping::Agent => vec![
                ("agent".to_owned(), agent.to_owned()),
                ("region".to_owned(), region()),
            ],
        }
    }

    /// Adds a report of interval `seq` to the group `tags`.
    pub(super) fn add_tagged(
        &mut self,
        seq: u64,
        tags: Vec<(String, String)>,
        parts: [&Snapshot; 2],
    ) -> Result<(), MergeError> {
        let merged = self
            .pending
            .entry(seq)
            .or_default()
            .entry(tags)
            .or_insert_with(|| Snapshot::empty(parts[0].start_unix_ms, parts[0].duration));
        let mut first_err = None;
        for part in parts {
            if let Err(e) = merged.merge_sources(part) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Interval `seq` is sealed: its groups are ready.
    pub(super) fn seal(&mut self, seq: u64) {
        for (tags, snapshot) in self.pending.remove(&seq).unwrap_or_default() {
            self.ready.push(SealedInterval { tags, snapshot });
        }
    }

    pub(super) fn take(&mut self) -> Vec<SealedInterval> {
        std::mem::take(&mut self.ready)
    }
}
