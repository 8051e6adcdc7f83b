//! What a relay forwards: the intervals of one sequence number from
//! several agents merged into one snapshot, and beside it, per agent, the
//! small digest the origin keeps per agent (see [`digest`]), so the origin
//! decodes one snapshot per relay and a few series per agent instead of
//! every agent's whole interval.
//!
//! Exact like the flat merge: counters, rates and trends add; gauges add
//! across agents ([`Snapshot::merge_sources`]), as the origin sums them
//! per interval anyway. Which `(agent, seq)` pairs a combined interval
//! covers travels with it, so the origin still applies each once.
//!
//! Wire form (the payload of [`crate::fleet::protocol::Message::Merged`]):
//! each agent's encoded digest, in the order of the header's `agents`,
//! with their lengths in the header's `digests`, then the encoded merged
//! snapshot.

use crate::metrics::catalog::Metric;
use crate::metrics::value::MergeError;
use crate::metrics::wire::DecodeError;
use crate::metrics::{SeriesKey, Snapshot, TagSet, Value};

/// Most agents one combined interval may cover: a relay with more sends
/// several (keeps a message far below the transport's 8 MiB: a digest is
/// a few kB).
pub const MAX_COVERS: usize = 512;

/// What the origin keeps of one agent's interval: what its per-agent
/// numbers read (the breakdown, the live progress, iterations taken over
/// from a lost agent, the live `vus`). `http_reqs` and `http_req_failed`
/// over every series, `http_req_duration` of every series in one
/// histogram (percentiles of the agent's row), `iterations` per scenario,
/// `vus` summed. Each is exactly what the full snapshot gives for the
/// same question (`Aggregate::metric_value` merges series the same way).
pub fn digest(s: &Snapshot) -> Snapshot {
    let mut out: Vec<(SeriesKey, Value)> = Vec::new();
    let mut put = |key: SeriesKey, value: &Value| {
        match out.iter_mut().find(|(k, _)| *k == key) {
            // Same kind by construction; only a histogram that cannot
            // grow fails, and it keeps what it holds.
            Some((_, v)) => {
                let _ = v.merge_sources(value);
            }
            None => out.push((key, value.clone())),
        }
    };
    for (key, value) in &s.series {
        match key.metric {
            Metric::HttpReqs | Metric::HttpReqFailed | Metric::HttpReqDuration | Metric::Vus => {
                put(SeriesKey::new(key.metric, TagSet::new()), value);
            }
            Metric::Iterations => {
                let tags = key
                    .tags
                    .get("scenario")
                    .map_or_else(TagSet::new, |scenario| {
                        TagSet::from_pairs([("scenario", scenario)])
                    });
                put(SeriesKey::new(key.metric, tags), value);
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Snapshot {
        start_unix_ms: s.start_unix_ms,
        duration: s.duration,
        series: out,
    }
}

/// One agent's share of a combined interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Cover {
    pub agent: String,
    pub digest: Snapshot,
}

/// Intervals of one seq from several agents, merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Combined {
    pub seq: u64,
    /// The agents whose interval `seq` is in `snapshot`, each once.
    pub covers: Vec<Cover>,
    pub snapshot: Snapshot,
}

impl Combined {
    /// One agent's interval (validated) as a combined interval of one.
    pub fn of(agent: &str, seq: u64, snapshot: Snapshot) -> Result<Combined, MergeError> {
        snapshot.validate()?;
        Ok(Combined {
            seq,
            covers: vec![Cover {
                agent: agent.to_owned(),
                digest: digest(&snapshot),
            }],
            snapshot,
        })
    }

    /// Adds `other`, an interval of the same seq covering other agents.
    /// Refuses (and leaves `self` unchanged) when the seqs differ or an
    /// agent would be covered twice.
    pub fn absorb(&mut self, other: Combined) -> Result<(), String> {
        if other.seq != self.seq {
            return Err(format!(
                "interval {} cannot join interval {}",
                other.seq, self.seq
            ));
        }
        if let Some(c) = other
            .covers
            .iter()
            .find(|c| self.covers.iter().any(|m| m.agent == c.agent))
        {
            return Err(format!(
                "agent {} is covered twice in interval {}",
                c.agent, self.seq
            ));
        }
        self.snapshot
            .merge_sources(&other.snapshot)
            .map_err(|e| e.to_string())?;
        self.covers.extend(other.covers);
        Ok(())
    }

    /// The agents covered, in order.
    pub fn agents(&self) -> Vec<String> {
        self.covers.iter().map(|c| c.agent.clone()).collect()
    }

    /// The payload and the digests' lengths.
    pub fn encode(&self) -> (Vec<u8>, Vec<u32>) {
        let mut payload = Vec::new();
        let mut lengths = Vec::with_capacity(self.covers.len());
        for c in &self.covers {
            let bytes = c.digest.encode();
            lengths.push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
            payload.extend_from_slice(&bytes);
        }
        payload.extend_from_slice(&self.snapshot.encode());
        (payload, lengths)
    }

    /// Reads what [`Combined::encode`] wrote, for `agents` with digests of
    /// `lengths` bytes.
    pub fn decode(
        seq: u64,
        agents: &[String],
        lengths: &[u32],
        payload: &[u8],
    ) -> Result<Combined, String> {
        if agents.is_empty() || agents.len() != lengths.len() || agents.len() > MAX_COVERS {
            return Err(format!(
                "a combined interval names {} agents and {} digests: expected 1..={MAX_COVERS} of each, as many digests as agents",
                agents.len(),
                lengths.len()
            ));
        }
        let mut at = 0usize;
        let mut covers = Vec::with_capacity(agents.len());
        for (agent, &len) in agents.iter().zip(lengths) {
            let end = at
                .checked_add(len as usize)
                .filter(|&e| e <= payload.len())
                .ok_or_else(|| {
                    format!("the digest of {agent} ({len} bytes) runs past the payload")
                })?;
            let digest =
                decode(&payload[at..end]).map_err(|e| format!("digest of {agent}: {e}"))?;
            covers.push(Cover {
                agent: agent.clone(),
                digest,
            });
            at = end;
        }
        let snapshot = decode(&payload[at..]).map_err(|e| format!("merged snapshot: {e}"))?;
        Ok(Combined {
            seq,
            covers,
            snapshot,
        })
    }
}

fn decode(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
    Snapshot::decode(bytes)
}

/// Interval `seq` of the agents in `intervals` merged on its way up
/// `layout` as the relays do it: what reaches the origin, one combined
/// interval per root that has anything (a root's own interval and those
/// of its subtree). For the bench and the tests; agents run the same
/// merge one delivery at a time.
pub fn through_tree(
    layout: &super::tree::Layout,
    seq: u64,
    intervals: Vec<(String, Snapshot)>,
) -> Result<Vec<Combined>, String> {
    let mut at: std::collections::BTreeMap<String, Combined> = std::collections::BTreeMap::new();
    for (agent, snapshot) in intervals {
        let mine = Combined::of(&agent, seq, snapshot).map_err(|e| e.to_string())?;
        match at.get_mut(&agent) {
            Some(c) => c.absorb(mine)?,
            None => {
                at.insert(agent, mine);
            }
        }
    }
    // Children sort after their parents: from the last agent up, each
    // hands what it holds to its parent.
    let order: Vec<String> = at.keys().rev().cloned().collect();
    let mut pending: Vec<String> = order;
    let mut out = Vec::new();
    while let Some(agent) = pending.first().cloned() {
        pending.remove(0);
        let Some(held) = at.remove(&agent) else {
            continue;
        };
        match layout.parent(&agent) {
            None => out.push(held),
            Some(parent) => match at.get_mut(parent) {
                Some(c) => c.absorb(held)?,
                None => {
                    at.insert(parent.to_owned(), held);
                    // A relay without an interval of its own still
                    // forwards: it goes after everything below it.
                    let pos = pending
                        .iter()
                        .position(|a| a.as_str() < parent)
                        .unwrap_or(pending.len());
                    pending.insert(pos, parent.to_owned());
                }
            },
        }
    }
    Ok(out)
}
