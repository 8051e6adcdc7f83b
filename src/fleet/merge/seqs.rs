//! Which interval sequence numbers of one agent were applied, as disjoint
//! ranges: an agent reports in order almost always, so a whole test is one
//! range, and each lost interval adds one more.

use std::collections::BTreeMap;

/// A set of `u64` kept as disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    /// `start → end` (inclusive); ranges neither overlap nor touch.
    ranges: BTreeMap<u64, u64>,
}

impl SeqSet {
    pub fn new() -> SeqSet {
        SeqSet::default()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.ranges
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, &end)| seq <= end)
    }

    /// Adds `seq`; false when it was already in the set.
    pub fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        // The range ending right before `seq`, and the one starting right
        // after it, join `seq` into one.
        let before = self
            .ranges
            .range(..seq)
            .next_back()
            .filter(|(_, end)| end.checked_add(1) == Some(seq))
            .map(|(&start, _)| start);
        let after = seq
            .checked_add(1)
            .and_then(|next| self.ranges.remove_entry(&next));
        let start = before.unwrap_or(seq);
        let end = after.map_or(seq, |(_, end)| end);
        self.ranges.insert(start, end);
        true
    }

    /// The lowest member.
    pub fn min(&self) -> Option<u64> {
        self.ranges.keys().next().copied()
    }

    /// The highest member.
    pub fn max(&self) -> Option<u64> {
        self.ranges.values().next_back().copied()
    }

    /// Number of members.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(start, end)| end - start + 1).sum()
    }

    /// Number of ranges: 1 + the gaps of an agent that started at 0.
    #[cfg(test)]
    pub fn num_ranges(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn in_order_inserts_stay_one_range() {
        let mut s = SeqSet::new();
        assert_eq!(s.min(), None);
        for seq in 0..1000 {
            assert!(s.insert(seq));
        }
        assert!(!s.insert(500));
        assert_eq!(s.num_ranges(), 1);
        assert_eq!(s.len(), 1000);
        assert_eq!(s.max(), Some(999));
        assert!(!s.contains(1000));
    }

    #[test]
    fn gaps_split_and_late_arrivals_join() {
        let mut s = SeqSet::new();
        for seq in [0, 1, 3, 4, u64::MAX, u64::MAX - 1] {
            assert!(s.insert(seq));
        }
        assert_eq!(s.num_ranges(), 3);
        assert!(!s.contains(2));
        assert!(s.insert(2));
        assert_eq!(s.num_ranges(), 2);
        assert_eq!(s.len(), 7);
        assert_eq!(s.max(), Some(u64::MAX));
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(seqs in proptest::collection::vec(0u64..64, 0..200)) {
            let mut s = SeqSet::new();
            let mut model = BTreeSet::new();
            for seq in seqs {
                prop_assert_eq!(s.insert(seq), model.insert(seq));
            }
            for seq in 0..66 {
                prop_assert_eq!(s.contains(seq), model.contains(&seq));
            }
            prop_assert_eq!(s.len(), model.len() as u64);
            prop_assert_eq!(s.max(), model.last().copied());
            prop_assert_eq!(s.min(), model.first().copied());
            let runs = model.iter().zip(model.iter().skip(1)).filter(|(a, b)| **b != **a + 1).count();
            prop_assert_eq!(s.num_ranges(), if model.is_empty() { 0 } else { runs + 1 });
        }
    }
}
