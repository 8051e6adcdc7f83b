//! The origin's side of tree merging: a relay's combined interval applied
//! at once. The merged snapshot enters the fleet totals, the interval's
//! live numbers and gauges, and the outputs as one report; each covered
//! agent's digest enters that agent's totals, and the agent counts as
//! having reported the seq (sealing, lost-interval notes), exactly as if
//! each agent's interval had been ingested by itself.

use super::combine::Combined;
use super::{FleetResults, Ingest, split_gauges, sum_of};
use crate::metrics::Metric;
use crate::metrics::value::MergeError;

impl FleetResults {
    /// Applies a combined interval, all or nothing: when some covered
    /// `(agent, seq)` was applied before (that agent's interval also came
    /// another way, say straight from the agent while its relay was
    /// late), the merged snapshot cannot be taken apart, so nothing is
    /// applied and [`Ingest::Overlap`] names those agents; the relay then
    /// sends its parts one by one.
    pub fn ingest_merged(&mut self, combined: Combined) -> Ingest {
        let seq = combined.seq;
        let mut seen = Vec::new();
        for (i, c) in combined.covers.iter().enumerate() {
            let Some(state) = self.agents.get(&c.agent) else {
                return Ingest::UnknownAgent;
            };
            let twice = combined.covers[..i].iter().any(|o| o.agent == c.agent);
            if state.seen.contains(seq) || twice {
                seen.push(c.agent.clone());
            }
        }
        if !seen.is_empty() {
            return if seen.len() == combined.covers.len() {
                Ingest::Duplicate
            } else {
                Ingest::Overlap(seen)
            };
        }
        if let Err(e) = combined.snapshot.validate() {
            return Ingest::Invalid(e);
        }
        if let Some(e) = combined
            .covers
            .iter()
            .find_map(|c| c.digest.validate().err())
        {
            return Ingest::Invalid(e);
        }

        let (rest, gauges) = split_gauges(combined.snapshot);
        let mut errors: Vec<MergeError> = Vec::new();
        let mut reporters = Vec::with_capacity(combined.covers.len());
        let mut groups = Vec::new();
        let mut all_in_order = true;
        for cover in combined.covers {
            let Some(state) = self.agents.get_mut(&cover.agent) else {
                continue;
            };
            let in_order = state.seen.max().is_none_or(|newest| seq > newest);
            all_in_order &= in_order;
            state.seen.insert(seq);
            let (drest, dgauges) = split_gauges(cover.digest);
            errors.extend(state.totals.add_interval(&drest).err());
            if in_order {
                errors.extend(state.totals.add_interval(&dgauges).err());
                if let Some(vus) = sum_of(&dgauges, Metric::Vus) {
                    state.vus = Some((seq, vus));
                }
            }
            reporters.push((state.index, !state.lost));
            if let Some(outbox) = &self.outbox {
                let tags = outbox.tags(&cover.agent, &state.labels);
                if !groups.contains(&tags) {
                    groups.push(tags);
                }
            }
        }
        errors.extend(self.fleet.add_interval(&rest).err());

        let (start, end) = (rest.start_unix_ms, rest.end_unix_ms());
        self.span = Some(
            self.span
                .map_or((start, end), |(s, e)| (s.min(start), e.max(end))),
        );
        if seq < self.next_unsealed {
            self.late += reporters.len() as u64;
        } else {
            if let Some(outbox) = &mut self.outbox {
                // The origin asks for a tree only when the outputs group
                // the whole fleet (or a relay's agents share a group):
                // then the merged snapshot is that group's share exactly.
                match <[_; 1]>::try_from(groups) {
                    Ok([tags]) => {
                        errors.extend(outbox.add_tagged(seq, tags, [&rest, &gauges]).err())
                    }
                    Err(_) => self.mixed_output_groups += 1,
                }
            }
            let interval = self
                .pending
                .entry(seq)
                .or_insert_with(|| super::Interval::new(seq, start, rest.duration));
            errors.extend(interval.add_from(&reporters, &rest, &gauges).err());
        }
        self.applied(seq, errors, all_in_order)
    }
}
