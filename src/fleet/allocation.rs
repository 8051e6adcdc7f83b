//! Who runs which share of a test: capacity-weighted execution segments.
//!
//! The agents taking part are sorted by node id and weighted by their
//! advertised capacity; the weights become a k6 segment sequence, and agent
//! i runs segment i. Every agent derives the same sequence from the same
//! `(agent, weight)` list, so only that list travels. A lost agent yields a
//! new revision over the survivors. Pure.

use serde::{Deserialize, Serialize};

use crate::segment::{ExecutionTuple, SegmentError, SegmentSequence};

/// Capacities are weighted to 1/100 of a CPU.
const WEIGHT_SCALE: f64 = 100.0;

/// One agent's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub agent: String,
    /// Integer weight (capacity × 100, at least 1).
    pub weight: u64,
}

/// The shares of one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Starts at 1; every change (lost agent, agent not ready) adds one.
    pub revision: u32,
    /// Sorted by agent id; never empty.
    pub shares: Vec<Share>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AllocationError {
    #[error("no agent to run the test")]
    NoAgents,
    #[error("agent {agent:?} advertises capacity {capacity}, expected a positive number")]
    BadCapacity { agent: String, capacity: f64 },
    #[error("cannot split the load: {0}")]
    Segment(#[from] SegmentError),
}

impl Allocation {
    /// Shares proportional to `capacity` for each `(agent, capacity)`.
    pub fn new(revision: u32, agents: &[(String, f64)]) -> Result<Allocation, AllocationError> {
        let mut shares = Vec::with_capacity(agents.len());
        for (agent, capacity) in agents {
            if !(capacity.is_finite() && *capacity > 0.0) {
                return Err(AllocationError::BadCapacity {
                    agent: agent.clone(),
                    capacity: *capacity,
                });
            }
            let weight = (capacity * WEIGHT_SCALE).round().max(1.0) as u64;
            shares.push(Share {
                agent: agent.clone(),
                weight,
            });
        }
        shares.sort_by(|a, b| a.agent.cmp(&b.agent));
        shares.dedup_by(|a, b| a.agent == b.agent);
        let alloc = Allocation { revision, shares };
        alloc.sequence()?;
        Ok(alloc)
    }

    /// The segment sequence all agents share.
    pub fn sequence(&self) -> Result<SegmentSequence, AllocationError> {
        if self.shares.is_empty() {
            return Err(AllocationError::NoAgents);
        }
        let weights: Vec<u64> = self.shares.iter().map(|s| s.weight).collect();
        Ok(SegmentSequence::from_weights(&weights)?)
    }

    /// Position of `agent` in the sequence.
    pub fn index_of(&self, agent: &str) -> Option<usize> {
        self.shares.iter().position(|s| s.agent == agent)
    }

    /// The execution tuple `agent` runs, if it takes part.
    pub fn tuple_for(&self, agent: &str) -> Result<Option<ExecutionTuple>, AllocationError> {
        let Some(i) = self.index_of(agent) else {
            return Ok(None);
        };
        Ok(Some(ExecutionTuple::from_index(self.sequence()?, i)?))
    }

    /// `agent`'s part as a fraction of the whole (`2/5`).
    pub fn fraction(&self, agent: &str) -> Option<String> {
        let total: u64 = self.shares.iter().map(|s| s.weight).sum();
        let mine = self.shares.iter().find(|s| s.agent == agent)?.weight;
        let g = gcd(mine, total);
        Some(format!("{}/{}", mine / g, total / g))
    }

    /// The next revision without `lost` agents.
    pub fn without(&self, lost: &[String]) -> Result<Allocation, AllocationError> {
        let shares: Vec<Share> = self
            .shares
            .iter()
            .filter(|s| !lost.contains(&s.agent))
            .cloned()
            .collect();
        let next = Allocation {
            revision: self.revision + 1,
            shares,
        };
        next.sequence()?;
        Ok(next)
    }

    pub fn agents(&self) -> impl Iterator<Item = &str> {
        self.shares.iter().map(|s| s.agent.as_str())
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(caps: &[(&str, f64)]) -> Vec<(String, f64)> {
        caps.iter().map(|(a, c)| (a.to_string(), *c)).collect()
    }

    #[test]
    fn capacities_4_2_2_1_1_split_1000_vus() {
        let a = Allocation::new(
            1,
            &agents(&[("a", 4.0), ("b", 2.0), ("c", 2.0), ("d", 1.0), ("e", 1.0)]),
        )
        .expect("valid");
        let got: Vec<u64> = a
            .agents()
            .map(|id| a.tuple_for(id).expect("ok").expect("member").scale(1000))
            .collect();
        assert_eq!(got, vec![400, 200, 200, 100, 100]);
        assert_eq!(a.fraction("a").as_deref(), Some("2/5"));
        assert_eq!(a.fraction("e").as_deref(), Some("1/10"));
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let x = Allocation::new(1, &agents(&[("b", 1.0), ("a", 3.0)])).expect("valid");
        let y = Allocation::new(1, &agents(&[("a", 3.0), ("b", 1.0)])).expect("valid");
        assert_eq!(x, y);
    }

    #[test]
    fn losing_an_agent_gives_the_rest_everything() {
        let a = Allocation::new(1, &agents(&[("a", 2.0), ("b", 1.0), ("c", 1.0)])).expect("valid");
        let b = a.without(&["b".to_string()]).expect("valid");
        assert_eq!(b.revision, 2);
        let total: u64 = b
            .agents()
            .map(|id| b.tuple_for(id).expect("ok").expect("member").scale(999))
            .sum();
        assert_eq!(total, 999);
        assert!(b.tuple_for("b").expect("ok").is_none());
        assert_eq!(a.without(&["a".into(), "b".into(), "c".into()]), Err(AllocationError::NoAgents));
    }

    #[test]
    fn bad_capacities_are_refused() {
        assert!(matches!(
            Allocation::new(1, &agents(&[("a", 0.0)])),
            Err(AllocationError::BadCapacity { .. })
        ));
        assert!(Allocation::new(1, &agents(&[("a", f64::NAN)])).is_err());
        assert_eq!(Allocation::new(1, &[]), Err(AllocationError::NoAgents));
    }
}
