//! Closed-model schedules: how many VUs a `ramping-vus` scenario wants at
//! each instant, on this share of the load. Pure: offsets in, steps out.
//!
//! The global VU count follows the stages linearly; the k-th VU added (or
//! removed) during a stage from `a` to `b` over `d` changes hands at
//! `start + d·k/|b−a|`, so a ramp never overshoots and ends exactly on its
//! target. This share runs `scale(global)` of them (k6's `ScaleInt64`), so
//! the shares of every agent add up to the single-node count at every step.

use std::time::Duration;

use crate::plan::Stage;

/// One change of the VU target: from `at` (offset from the scenario start)
/// on, run `vus` VUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VuStep {
    pub at: Duration,
    pub vus: u64,
}

/// The global (single-node) VU target over time: an initial step at 0 with
/// `start_vus`, then one step per VU added or removed.
pub fn ramping_vus_steps(start_vus: u64, stages: &[Stage]) -> Vec<VuStep> {
    let mut steps = vec![VuStep {
        at: Duration::ZERO,
        vus: start_vus,
    }];
    let mut from = start_vus;
    let mut stage_start = Duration::ZERO;
    for stage in stages {
        let to = stage.target;
        let diff = from.abs_diff(to);
        if stage.duration.is_zero() || diff == 0 {
            if diff != 0 {
                steps.push(VuStep {
                    at: stage_start,
                    vus: to,
                });
            }
        } else {
            let d = stage.duration.as_nanos();
            for k in 1..=diff {
                let offset = d * u128::from(k) / u128::from(diff);
                let at = stage_start + nanos(offset);
                let vus = if to > from { from + k } else { from - k };
                steps.push(VuStep { at, vus });
            }
        }
        from = to;
        stage_start += stage.duration;
    }
    coalesce(steps)
}

/// The same schedule for one share: each step's count scaled by `scale`,
/// steps that change nothing on this share dropped.
pub fn scaled_steps(global: &[VuStep], scale: impl Fn(u64) -> u64) -> Vec<VuStep> {
    coalesce(
        global
            .iter()
            .map(|s| VuStep {
                at: s.at,
                vus: scale(s.vus),
            })
            .collect(),
    )
}

/// Keeps the last step of each instant and drops steps that repeat the
/// previous count.
fn coalesce(steps: Vec<VuStep>) -> Vec<VuStep> {
    let mut out: Vec<VuStep> = Vec::with_capacity(steps.len());
    for step in steps {
        if let Some(last) = out.last_mut() {
            if last.at == step.at {
                last.vus = step.vus;
                continue;
            }
            if last.vus == step.vus {
                continue;
            }
        }
        out.push(step);
    }
    // A same-instant overwrite can leave two equal neighbours behind.
    out.dedup_by(|b, a| a.vus == b.vus);
    out
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

/// The number of VUs wanted at `offset` according to `steps`.
pub fn vus_at(steps: &[VuStep], offset: Duration) -> u64 {
    steps
        .iter()
        .take_while(|s| s.at <= offset)
        .last()
        .map_or(0, |s| s.vus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(secs: u64, target: u64) -> Stage {
        Stage {
            duration: Duration::from_secs(secs),
            target,
        }
    }

    #[test]
    fn ramps_up_evenly_and_ends_on_target() {
        let steps = ramping_vus_steps(0, &[stage(10, 10)]);
        assert_eq!(steps.len(), 11);
        assert_eq!(steps[0], VuStep { at: Duration::ZERO, vus: 0 });
        assert_eq!(steps[1], VuStep { at: Duration::from_secs(1), vus: 1 });
        assert_eq!(steps[10], VuStep { at: Duration::from_secs(10), vus: 10 });
        assert_eq!(vus_at(&steps, Duration::from_millis(4_500)), 4);
    }

    #[test]
    fn ramps_down_and_holds() {
        let steps = ramping_vus_steps(4, &[stage(5, 4), stage(2, 0)]);
        assert_eq!(vus_at(&steps, Duration::from_secs(4)), 4);
        assert_eq!(vus_at(&steps, Duration::from_millis(5_500)), 4);
        assert_eq!(vus_at(&steps, Duration::from_secs(6)), 2);
        assert_eq!(vus_at(&steps, Duration::from_secs(7)), 0);
    }

    #[test]
    fn zero_length_stage_jumps() {
        let steps = ramping_vus_steps(1, &[stage(0, 50), stage(3, 50)]);
        assert_eq!(steps, vec![VuStep { at: Duration::ZERO, vus: 50 }]);
    }

    #[test]
    fn shares_add_up_at_every_step() {
        let global = ramping_vus_steps(0, &[stage(3, 7), stage(2, 3)]);
        // Two halves with a rounding rule that always sums to the whole.
        let a = scaled_steps(&global, |v| v.div_ceil(2));
        let b = scaled_steps(&global, |v| v / 2);
        for s in &global {
            assert_eq!(vus_at(&a, s.at) + vus_at(&b, s.at), s.vus, "at {:?}", s.at);
        }
    }
}
