//! The origin's merge of one fleet test: every agent's 1-second interval
//! snapshots folded into per-agent totals, the fleet totals, the live view
//! and the per-source breakdown. Pure: snapshots in, aggregates out.
//!
//! # Exactness
//!
//! Counters, rates and trends add the same way across agents and across
//! time, so they enter the totals the moment they arrive, in any order:
//! fleet percentiles are those of one HDR histogram fed every sample of
//! every agent. Gauges differ: across agents they add (fleet `vus` is the
//! sum of the agents'), over time the later value wins. The fleet gauge of
//! an interval is therefore summed first, and only when the interval is
//! sealed is it folded into the totals, in sequence order. An interval is
//! sealed once every agent still in the test reported it (see
//! [`agent_lost`]), or once a report [`SEAL_LAG`] intervals newer arrived
//! (an agent lost or late), or at [`finish`].
//!
//! Every delivery names `(agent, seq)`: a repeat is ignored, so retried
//! deliveries never count twice; a missing seq is simply a lost interval.
//!
//! With tree merging ([`tree`]) a relay's combined interval
//! ([`combine::Combined`]) names every `(agent, seq)` it covers and is
//! applied by [`FleetResults::ingest_merged`] with the same effect as each
//! agent's interval on its own.
//!
//! [`finish`]: FleetResults::finish
//! [`agent_lost`]: FleetResults::agent_lost

pub mod combine;
mod ingest_merged;
mod interval;
mod outbox;
mod seqs;
#[cfg(test)]
mod tests;
pub mod tree;
#[cfg(test)]
mod tree_tests;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::metrics::aggregate::trend_percentile_ms;
use crate::metrics::catalog::{Metric, MetricKind};
use crate::metrics::value::MergeError;
use crate::metrics::{Aggregate, Breakdown, Snapshot, Value};

pub use interval::{IntervalPoint, LiveView};
pub use outbox::{OutputGrouping, SealedInterval};

use interval::{Interval, count};
use outbox::Outbox;
use seqs::SeqSet;

/// Default number of newer intervals after which an interval is sealed
/// even though some agent has not reported it.
pub const SEAL_LAG: u64 = 5;

/// Sealed intervals kept for the live view: its window is at most this.
pub const LIVE_HISTORY: usize = 60;

/// What [`FleetResults::ingest`] did with a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingest {
    /// A new interval, newer than any before from this agent.
    Applied,
    /// This `(agent, seq)` was applied before; nothing changed.
    Duplicate,
    /// A new interval older than one already applied from this agent (a
    /// retried delivery): applied anyway. Its gauges only count if its
    /// interval was not sealed yet.
    OutOfOrder,
    /// The agent is not part of this test; nothing changed.
    UnknownAgent,
    /// The snapshot breaks its invariants (series out of order, a value of
    /// the wrong kind); nothing changed and the seq stays unseen.
    Invalid(MergeError),
    /// A combined interval covering some `(agent, seq)` already applied
    /// (these agents); nothing changed.
    Overlap(Vec<String>),
}

/// The origin's state for one fleet test.
#[derive(Debug)]
pub struct FleetResults {
    /// By agent id, sorted so the breakdown lists agents in a stable order.
    agents: BTreeMap<String, AgentState>,
    /// Every agent summed; gauges up to the last sealed interval.
    fleet: Aggregate,
    /// Intervals not sealed yet, by seq.
    pending: BTreeMap<u64, Interval>,
    /// The latest sealed intervals (gauges emptied), oldest first, at most
    /// [`LIVE_HISTORY`].
    sealed: VecDeque<Interval>,
    /// Agents not marked lost: an interval is complete once they all
    /// reported it.
    active: usize,
    /// Every seq below this is sealed.
    next_unsealed: u64,
    /// Highest seq any agent reported.
    newest_seq: Option<u64>,
    /// See [`FleetResults::with_seal_lag`].
    seal_lag: u64,
    /// Earliest start and latest end of every snapshot (Unix ms).
    span: Option<(u64, u64)>,
    /// New intervals whose seq was already sealed.
    late: u64,
    /// Merge failures (a histogram that could not grow), for the notes.
    merge_errors: u64,
    first_merge_error: Option<MergeError>,
    /// Merged intervals for the test's outputs, when it has any.
    outbox: Option<Outbox>,
    /// Combined intervals whose agents fall into several output groups
    /// (left out of the outputs; see [`FleetResults::tree_exact`]).
    mixed_output_groups: u64,
}

/// One agent's part.
#[derive(Debug)]
struct AgentState {
    /// Position in the order agents joined: names the agent in
    /// [`Interval::reporters`].
    index: usize,
    labels: BTreeMap<String, String>,
    /// Marked lost by [`FleetResults::agent_lost`]: no longer awaited.
    lost: bool,
    /// Applied seqs, to ignore repeats.
    seen: SeqSet,
    /// This agent's running totals.
    totals: Aggregate,
    /// Seq and value of the latest `vus` (all series summed).
    vus: Option<(u64, f64)>,
    /// How many intervals the agent said it sent, once it finished.
    sent: Option<u64>,
}

impl AgentState {
    fn new(index: usize, labels: BTreeMap<String, String>) -> AgentState {
        AgentState {
            index,
            labels,
            lost: false,
            seen: SeqSet::new(),
            totals: Aggregate::new(),
            vus: None,
            sent: None,
        }
    }
}

impl FleetResults {
    /// A test run by `agents` (id and labels such as `region`).
    pub fn new(agents: &[(String, BTreeMap<String, String>)]) -> FleetResults {
        let mut results = FleetResults {
            agents: BTreeMap::new(),
            fleet: Aggregate::new(),
            pending: BTreeMap::new(),
            sealed: VecDeque::new(),
            active: 0,
            next_unsealed: 0,
            newest_seq: None,
            seal_lag: SEAL_LAG,
            span: None,
            late: 0,
            merge_errors: 0,
            first_merge_error: None,
            outbox: None,
            mixed_output_groups: 0,
        };
        for (agent, labels) in agents {
            results.add_agent(agent, labels.clone());
        }
        results
    }

    /// How many newer intervals seal an interval that some agent has not
    /// reported (at least 1; default [`SEAL_LAG`]). Longer waits longer
    /// for stragglers; shorter keeps the live view fresher when an agent
    /// is lost.
    pub fn with_seal_lag(mut self, intervals: u64) -> FleetResults {
        self.seal_lag = intervals.max(1);
        self
    }

    /// Also merges each interval for the test's outputs, grouped `by`;
    /// [`FleetResults::take_sealed`] hands them out once sealed.
    pub fn with_outputs(mut self, by: OutputGrouping) -> FleetResults {
        self.outbox = Some(Outbox::new(by));
        self
    }

    /// Whether combined intervals from relays keep every result exact:
    /// not when the outputs break the fleet down by agent or region, as a
    /// relay's merged snapshot mixes its agents.
    pub fn tree_exact(&self) -> bool {
        self.outbox
            .as_ref()
            .is_none_or(|o| o.grouping() == OutputGrouping::Fleet)
    }

    /// The intervals sealed since the last call, merged for the outputs
    /// (empty without [`FleetResults::with_outputs`]).
    pub fn take_sealed(&mut self) -> Vec<SealedInterval> {
        self.outbox.as_mut().map(Outbox::take).unwrap_or_default()
    }

    /// Adds an agent joining the test (a reallocation). An agent already in
    /// the test keeps its results and takes the new labels (and, if it was
    /// lost, is awaited again). Returns whether the agent is new.
    pub fn add_agent(&mut self, agent: &str, labels: BTreeMap<String, String>) -> bool {
        match self.agents.get_mut(agent) {
            Some(state) => {
                state.labels = labels;
                if state.lost {
                    state.lost = false;
                    self.active += 1;
                    let index = state.index;
                    for interval in self.pending.values_mut() {
                        if interval.reporters.contains(&index) {
                            interval.active_reports += 1;
                        }
                    }
                }
                false
            }
            None => {
                let state = AgentState::new(self.agents.len(), labels);
                self.agents.insert(agent.to_owned(), state);
                self.active += 1;
                true
            }
        }
    }

    /// Marks an agent lost (declared dead, its share reallocated):
    /// intervals stop waiting for it, so the live view stays fresh. Its
    /// results stay, and reports it still delivers are applied. Returns
    /// whether the agent was in the test and not already lost.
    pub fn agent_lost(&mut self, agent: &str) -> bool {
        let Some(state) = self.agents.get_mut(agent).filter(|s| !s.lost) else {
            return false;
        };
        state.lost = true;
        self.active -= 1;
        let index = state.index;
        for interval in self.pending.values_mut() {
            if interval.reporters.contains(&index) {
                interval.active_reports -= 1;
            }
        }
        self.seal_ready();
        true
    }

    /// Records that `agent` finished after sending `intervals` intervals
    /// (seqs `0..intervals`), so the notes judge what is missing by that.
    pub fn agent_finished(&mut self, agent: &str, intervals: u64) {
        if let Some(state) = self.agents.get_mut(agent) {
            state.sent = Some(intervals);
        }
    }

    /// Applies interval `seq` of `agent`, once per `(agent, seq)`.
    pub fn ingest(&mut self, agent: &str, seq: u64, snapshot: Snapshot) -> Ingest {
        let Some(state) = self.agents.get_mut(agent) else {
            return Ingest::UnknownAgent;
        };
        if state.seen.contains(seq) {
            return Ingest::Duplicate;
        }
        if let Err(e) = snapshot.validate() {
            return Ingest::Invalid(e);
        }
        let in_order = state.seen.max().is_none_or(|newest| seq > newest);
        state.seen.insert(seq);
        let (index, active) = (state.index, !state.lost);

        let (rest, gauges) = split_gauges(snapshot);
        let mut errors = Vec::new();
        errors.extend(state.totals.add_interval(&rest).err());
        if in_order {
            errors.extend(state.totals.add_interval(&gauges).err());
            if let Some(vus) = sum_of(&gauges, Metric::Vus) {
                state.vus = Some((seq, vus));
            }
        }
        errors.extend(self.fleet.add_interval(&rest).err());

        let (start, end) = (rest.start_unix_ms, rest.end_unix_ms());
        self.span = Some(
            self.span
                .map_or((start, end), |(s, e)| (s.min(start), e.max(end))),
        );
        if seq < self.next_unsealed {
            self.late += 1;
        } else {
            if let Some(outbox) = &mut self.outbox
                && let Some(state) = self.agents.get(agent)
            {
                errors.extend(
                    outbox
                        .add(seq, agent, &state.labels, [&rest, &gauges])
                        .err(),
                );
            }
            let interval = self
                .pending
                .entry(seq)
                .or_insert_with(|| Interval::new(seq, start, rest.duration));
            errors.extend(interval.add(index, active, &rest, &gauges).err());
        }
        self.applied(seq, errors, in_order)
    }

    /// What follows every applied delivery of `seq`: the newest seq moves
    /// on, merge errors are noted, ready intervals are sealed.
    fn applied(&mut self, seq: u64, errors: Vec<MergeError>, in_order: bool) -> Ingest {
        self.newest_seq = Some(self.newest_seq.map_or(seq, |n| n.max(seq)));
        for e in errors {
            self.note_error(e);
        }
        self.seal_ready();
        if in_order {
            Ingest::Applied
        } else {
            Ingest::OutOfOrder
        }
    }

    /// Seals every pending interval: the test is over, nothing more is
    /// awaited. Call before building the final summary from [`fleet`].
    /// Reports arriving later still add to counters, rates and trends.
    ///
    /// [`fleet`]: FleetResults::fleet
    pub fn finish(&mut self) {
        while let Some((_, interval)) = self.pending.pop_first() {
            self.seal(interval);
        }
    }

    /// Every agent summed: counters, rates and trends of every applied
    /// interval; gauges as the fleet-wide sum per interval, followed over
    /// the sealed intervals.
    pub fn fleet(&self) -> &Aggregate {
        &self.fleet
    }

    /// One agent's totals.
    pub fn agent(&self, agent: &str) -> Option<&Aggregate> {
        self.agents.get(agent).map(|s| &s.totals)
    }

    /// Agent ids, sorted.
    pub fn agent_ids(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }

    /// The latest `window` sealed intervals merged across agents (`window`
    /// is clamped to `1..=LIVE_HISTORY`).
    pub fn live(&self, window: usize) -> LiveView {
        let window = window.clamp(1, LIVE_HISTORY);
        let skip = self.sealed.len().saturating_sub(window);
        let vus = self
            .agents
            .values()
            .filter_map(|s| s.vus)
            .map(|(_, v)| v)
            .sum();
        LiveView::over(self.sealed.iter().skip(skip), vus)
    }

    /// The latest sealed intervals (at most [`LIVE_HISTORY`]), oldest
    /// first, each as a chart point.
    pub fn recent(&self) -> Vec<IntervalPoint> {
        self.sealed.iter().map(Interval::point).collect()
    }

    /// One row per agent (dimension `agent`), then for each label in
    /// `by_label` one row per value among the agents (agents without the
    /// label are left out of that label's rows). Percentiles come from
    /// merged histograms; `rps` is over the test's [`elapsed`] time.
    ///
    /// [`elapsed`]: FleetResults::elapsed
    pub fn breakdown(&self, by_label: &[&str]) -> Vec<Breakdown> {
        let secs = self.elapsed().as_secs_f64();
        let mut rows: Vec<Breakdown> = self
            .agents
            .iter()
            .map(|(id, s)| row("agent", id, [&s.totals], secs))
            .collect();
        for label in by_label {
            let mut groups: BTreeMap<&str, Vec<&Aggregate>> = BTreeMap::new();
            for s in self.agents.values() {
                if let Some(value) = s.labels.get(*label) {
                    groups.entry(value).or_default().push(&s.totals);
                }
            }
            for (value, aggs) in groups {
                rows.push(row(label, value, aggs, secs));
            }
        }
        rows
    }

    /// Wall time from the earliest snapshot's start to the latest one's
    /// end; zero before the first.
    pub fn elapsed(&self) -> Duration {
        self.span.map_or(Duration::ZERO, |(s, e)| {
            Duration::from_millis(e.saturating_sub(s))
        })
    }

    /// Reports that arrived after their interval was sealed: their gauges
    /// are missing from the fleet's gauge history (everything else counts).
    pub fn late_intervals(&self) -> u64 {
        self.late
    }

    /// What a person should know about the merge, for the summary's notes:
    /// agents with missing intervals, late reports, merge failures.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for (id, s) in &self.agents {
            let first = s.seen.min();
            match (first, self.newest_seq) {
                (Some(first), Some(newest)) => {
                    // Agents may end one interval apart (a last, partial one):
                    // what an agent said it sent is what counts.
                    let expected = s.sent.unwrap_or_else(|| (newest - first).saturating_add(1));
                    let missing = expected.saturating_sub(s.seen.len());
                    if missing > 0 {
                        notes.push(format!(
                            "agent {id}: {missing} of {expected} intervals missing; its results lack them"
                        ));
                    }
                }
                _ => notes.push(format!("agent {id} sent no results")),
            }
        }
        if self.late > 0 {
            let outputs = if self.outbox.is_some() {
                " and the outputs"
            } else {
                ""
            };
            notes.push(format!(
                "{} interval(s) arrived after their interval was sealed; the fleet's gauges (vus){outputs} leave them out",
                self.late
            ));
        }
        if self.mixed_output_groups > 0 {
            notes.push(format!(
                "{} combined interval(s) mixed agents of several output groups; the outputs leave them out",
                self.mixed_output_groups
            ));
        }
        if let Some(e) = &self.first_merge_error {
            notes.push(format!(
                "{} merge failure(s), the first: {e}",
                self.merge_errors
            ));
        }
        notes
    }

    fn note_error(&mut self, e: MergeError) {
        self.merge_errors += 1;
        self.first_merge_error.get_or_insert(e);
    }

    /// Seals pending intervals in seq order while the oldest is complete or
    /// old enough (see the module docs).
    fn seal_ready(&mut self) {
        let newest = self.newest_seq.unwrap_or(0);
        while let Some(entry) = self.pending.first_entry() {
            let complete = entry.get().active_reports >= self.active;
            let overdue = newest.saturating_sub(*entry.key()) >= self.seal_lag;
            if !(complete || overdue) {
                break;
            }
            let interval = entry.remove();
            self.seal(interval);
        }
    }

    fn seal(&mut self, mut interval: Interval) {
        if let Err(e) = self.fleet.add_interval(&interval.gauges) {
            self.note_error(e);
        }
        interval.vus = sum_of(&interval.gauges, Metric::Vus);
        interval.gauges.series = Vec::new();
        if let Some(outbox) = &mut self.outbox {
            outbox.seal(interval.seq);
        }
        self.next_unsealed = interval.seq.saturating_add(1);
        self.sealed.push_back(interval);
        while self.sealed.len() > LIVE_HISTORY {
            self.sealed.pop_front();
        }
    }
}

/// Splits a snapshot into its non-gauge and gauge series (both stay
/// sorted, nothing is copied).
fn split_gauges(s: Snapshot) -> (Snapshot, Snapshot) {
    let (gauges, rest): (Vec<_>, Vec<_>) = s
        .series
        .into_iter()
        .partition(|(k, _)| k.metric.kind() == MetricKind::Gauge);
    let part = |series| Snapshot {
        start_unix_ms: s.start_unix_ms,
        duration: s.duration,
        series,
    };
    (part(rest), part(gauges))
}

/// The sum of a gauge metric's values over its series, if it has any.
fn sum_of(gauges: &Snapshot, metric: Metric) -> Option<f64> {
    gauges
        .series
        .iter()
        .filter(|(k, _)| k.metric == metric)
        .filter_map(|(_, v)| match v {
            Value::Gauge { value, .. } => Some(*value),
            _ => None,
        })
        .reduce(|a, b| a + b)
}

/// A breakdown row over some agents' totals.
fn row<'a>(
    dimension: &str,
    value: &str,
    aggs: impl IntoIterator<Item = &'a Aggregate>,
    secs: f64,
) -> Breakdown {
    let mut requests = 0.0;
    let mut failed = 0u64;
    let mut durations: Option<Value> = None;
    for agg in aggs {
        if let Some(Value::Counter(n)) = agg.metric_value(Metric::HttpReqs, &[]) {
            requests += n;
        }
        if let Some(Value::Rate { trues, .. }) = agg.metric_value(Metric::HttpReqFailed, &[]) {
            failed = failed.saturating_add(trues);
        }
        if let Some(d) = agg.metric_value(Metric::HttpReqDuration, &[]) {
            match durations.as_mut() {
                None => durations = Some(d),
                // Only a histogram that cannot grow fails; it keeps what
                // it holds.
                Some(all) => {
                    let _ = all.merge_sources(&d);
                }
            }
        }
    }
    let p = |q| {
        durations
            .as_ref()
            .and_then(Value::as_trend)
            .map_or(0.0, |h| trend_percentile_ms(h, q))
    };
    Breakdown {
        dimension: dimension.to_owned(),
        value: value.to_owned(),
        requests: count(requests),
        failed,
        rps: if secs > 0.0 { requests / secs } else { 0.0 },
        p50_ms: p(50.0),
        p95_ms: p(95.0),
        p99_ms: p(99.0),
    }
}
