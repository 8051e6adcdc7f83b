//! The merge tree of a fleet test: which agent relays whose intervals.
//! Pure and deterministic: every agent computes the same tree from the
//! test's agent list and the fan-out, with no message about it.
//!
//! The agents, sorted by id, are numbered `0..n`; the origin is the root
//! above them. Agents `0..F` send to the origin; agent `i >= F` sends to
//! agent `i / F - 1`. So every relay has at most `F` children (agents
//! `F (r + 1) .. F (r + 2)`), the origin receives from at most `F`, a
//! parent's number is always below its child's (no cycles), and the depth
//! is about `log_F n`. A fleet of at most `F` agents is flat: every agent
//! sends to the origin, as without a tree.
//!
//! A relay that does not answer is skipped: its children send to the
//! nearest ancestor that does, the origin in the end
//! ([`Layout::parent_avoiding`]).

/// Children per relay (and direct senders to the origin) unless the test
/// says otherwise: 1000 agents make a tree of depth 2 whose origin hears
/// from 32 relays.
pub const DEFAULT_FANOUT: usize = 32;

/// The fan-outs a test may ask for.
pub const FANOUT_RANGE: std::ops::RangeInclusive<usize> = 2..=4096;

/// The environment variable the origin reads the fan-out from.
pub const FANOUT_ENV: &str = "VOLLEY_MERGE_FANOUT";

/// Reads a fan-out as a test or the environment gives it.
pub fn parse_fanout(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(f) if FANOUT_RANGE.contains(&f) => Ok(f),
        _ => Err(format!(
            "{FANOUT_ENV}={s:?}: expected a whole number of children per relay in {}..={}",
            FANOUT_RANGE.start(),
            FANOUT_RANGE.end()
        )),
    }
}

/// One test's merge tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Sorted, without duplicates: an agent's number is its position.
    agents: Vec<String>,
    fanout: usize,
}

impl Layout {
    /// The tree over `agents` (any order, duplicates ignored) with `fanout`
    /// children per relay (clamped into [`FANOUT_RANGE`]).
    pub fn new<I, S>(agents: I, fanout: usize) -> Layout
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut agents: Vec<String> = agents.into_iter().map(Into::into).collect();
        agents.sort();
        agents.dedup();
        Layout {
            agents,
            fanout: fanout.clamp(*FANOUT_RANGE.start(), *FANOUT_RANGE.end()),
        }
    }

    pub fn fanout(&self) -> usize {
        self.fanout
    }

    /// Every agent sends to the origin.
    pub fn is_flat(&self) -> bool {
        self.agents.len() <= self.fanout
    }

    fn index(&self, agent: &str) -> Option<usize> {
        self.agents.binary_search_by(|a| a.as_str().cmp(agent)).ok()
    }

    fn parent_index(&self, i: usize) -> Option<usize> {
        (i >= self.fanout).then(|| i / self.fanout - 1)
    }

    /// Where `agent` sends its intervals: a relay, or `None` for the
    /// origin (also for an agent not in the tree).
    pub fn parent(&self, agent: &str) -> Option<&str> {
        let i = self.index(agent)?;
        self.parent_index(i).map(|p| self.agents[p].as_str())
    }

    /// The relays between `agent` and the origin, nearest first.
    pub fn ancestors(&self, agent: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut at = self.index(agent);
        while let Some(p) = at.and_then(|i| self.parent_index(i)) {
            out.push(self.agents[p].as_str());
            at = Some(p);
        }
        out
    }

    /// The nearest ancestor of `agent` that is not `skipped` (a relay that
    /// did not answer), or `None` for the origin.
    pub fn parent_avoiding(&self, agent: &str, skipped: impl Fn(&str) -> bool) -> Option<&str> {
        self.ancestors(agent).into_iter().find(|a| !skipped(a))
    }

    /// The agents that send to `agent` (empty for a leaf, or an agent not
    /// in the tree).
    pub fn children(&self, agent: &str) -> &[String] {
        let Some(r) = self.index(agent) else {
            return &[];
        };
        let n = self.agents.len();
        let first = r.saturating_add(1).saturating_mul(self.fanout).min(n);
        let end = first.saturating_add(self.fanout).min(n);
        &self.agents[first..end]
    }

    /// The agents that send straight to the origin.
    pub fn roots(&self) -> &[String] {
        &self.agents[..self.agents.len().min(self.fanout)]
    }

    /// Relays between `agent` and the origin (0 for a root).
    pub fn depth(&self, agent: &str) -> usize {
        self.ancestors(agent).len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("agent-{i:04}")).collect()
    }

    #[test]
    fn small_fleets_are_flat() {
        let layout = Layout::new(ids(32), 32);
        assert!(layout.is_flat());
        for a in ids(32) {
            assert_eq!(layout.parent(&a), None);
            assert!(layout.children(&a).is_empty());
        }
        assert_eq!(layout.roots().len(), 32);
    }

    #[test]
    fn a_thousand_agents_at_fanout_32_are_two_levels() {
        let agents = ids(1000);
        let layout = Layout::new(agents.iter().rev().cloned(), DEFAULT_FANOUT);
        assert!(!layout.is_flat());
        assert_eq!(layout.roots().len(), 32);
        let max_depth = agents.iter().map(|a| layout.depth(a)).max();
        assert_eq!(max_depth, Some(1));
        // Every agent is a root or a child of exactly one relay.
        let mut counted = layout.roots().len();
        for a in &agents {
            let children = layout.children(a);
            assert!(children.len() <= 32);
            for c in children {
                assert_eq!(layout.parent(c), Some(a.as_str()));
            }
            counted += children.len();
        }
        assert_eq!(counted, 1000);
    }

    #[test]
    fn a_lost_relays_children_go_one_level_up() {
        // Fan-out 2: 0,1 roots; 2,3 under 0; 4,5 under 1; 6,7 under 2.
        let agents = ids(8);
        let layout = Layout::new(agents.clone(), 2);
        assert_eq!(layout.parent(&agents[6]), Some(agents[2].as_str()));
        assert_eq!(
            layout.ancestors(&agents[6]),
            vec![agents[2].as_str(), agents[0].as_str()]
        );
        let lost = |a: &str| a == agents[2];
        assert_eq!(
            layout.parent_avoiding(&agents[6], lost),
            Some(agents[0].as_str())
        );
        let both = |a: &str| a == agents[2] || a == agents[0];
        assert_eq!(layout.parent_avoiding(&agents[6], both), None);
        assert_eq!(
            layout.parent_avoiding(&agents[5], lost),
            Some(agents[1].as_str())
        );
    }

    #[test]
    fn fanout_is_parsed_with_a_clear_error() {
        assert_eq!(parse_fanout("2"), Ok(2));
        assert_eq!(parse_fanout(" 64 "), Ok(64));
        for bad in ["1", "0", "x", "-3", "5000"] {
            let e = parse_fanout(bad).expect_err(bad);
            assert!(e.contains(FANOUT_ENV) && e.contains("2..=4096"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn every_agent_reaches_the_origin_without_cycles(
            n in 0usize..600,
            fanout in 2usize..40,
            shuffle_seed in any::<u64>(),
        ) {
            let agents = ids(n);
            let mut shuffled = agents.clone();
            fastrand::Rng::with_seed(shuffle_seed).shuffle(&mut shuffled);
            let layout = Layout::new(shuffled, fanout);
            // Deterministic: the order agents are listed in does not matter.
            prop_assert_eq!(&layout, &Layout::new(agents.clone(), fanout));
            prop_assert_eq!(layout.is_flat(), n <= fanout);
            // log_F(n) levels at most, rounded up.
            let mut bound = 0usize;
            let mut reach = fanout;
            while reach < n {
                reach = reach.saturating_mul(fanout).saturating_add(fanout);
                bound += 1;
            }
            let mut children_total = 0;
            for a in &agents {
                let path = layout.ancestors(a);
                let unique: BTreeSet<&str> = path.iter().copied().collect();
                prop_assert_eq!(unique.len(), path.len(), "no cycle");
                prop_assert!(!unique.contains(a.as_str()));
                prop_assert!(path.len() <= bound, "depth {} over {}", path.len(), bound);
                prop_assert_eq!(path.first().copied(), layout.parent(a));
                prop_assert!(layout.children(a).len() <= fanout);
                children_total += layout.children(a).len();
                // The last relay on the path sends to the origin.
                if let Some(top) = path.last() {
                    prop_assert_eq!(layout.parent(top), None);
                }
            }
            prop_assert_eq!(children_total + layout.roots().len(), n);
        }
    }
}
