//! A `LoadTest`'s conditions, reasons and exit code, derived from its phase.
//! Pure: the caller passes the time, so every rule is a unit test.
//!
//! Three conditions, so that CI can wait on one and read another:
//!
//! | phase | `Complete` | `Succeeded` | `Failed` |
//! |---|---|---|---|
//! | Pending, Claimed, Starting, Running | False | Unknown | False |
//! | Passed | True | True | False |
//! | Failed, Aborted, Error | True | False | True |
//!
//! `kubectl wait --for=condition=Complete` returns once the test ended,
//! whatever the verdict; `--for=condition=Failed` once it ended without
//! passing. Every condition carries the `observedGeneration` of the run, and
//! kubectl's wait ignores a condition older than `metadata.generation`: a
//! spec edit (a new `spec.runId`) is never answered by the previous verdict.

use crate::kube::crd::{Condition, ConditionStatus, Phase};

/// The condition types a `LoadTest` carries, in the order written.
pub const TYPES: [&str; 3] = [COMPLETE, SUCCEEDED, FAILED];
/// True once the test ended, whatever the verdict.
pub const COMPLETE: &str = "Complete";
/// True when the test passed, False when it ended otherwise.
pub const SUCCEEDED: &str = "Succeeded";
/// True when the test ended without passing.
pub const FAILED: &str = "Failed";

/// Why a `LoadTest` is in its phase: the `reason` of its conditions and
/// of the Event written on the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// An agent claimed the test.
    Claimed,
    /// The fleet cannot run it yet (too few matching or idle agents).
    WaitingForAgents,
    /// The agents agreed on a start instant.
    Starting,
    /// Load is being generated.
    Running,
    /// Every threshold held.
    Passed,
    /// At least one threshold failed.
    ThresholdsFailed,
    /// The test was stopped before its end.
    Aborted,
    /// The spec cannot be run as written (no plan, two plans, bad field).
    InvalidSpec,
    /// A ConfigMap, Secret or key the spec names does not exist or may not
    /// be read.
    ReferenceNotFound,
    /// The agents' service account may not read a ConfigMap or Secret the
    /// spec names.
    ReferenceForbidden,
    /// The fleet refused the plan (invalid plan, over the agents' limits).
    SubmitRefused,
    /// The fleet stayed unable to run it for the whole pending timeout.
    AgentsUnavailable,
    /// The fleet lost the test (its coordinator left).
    TestLost,
    /// The test ended in error on the fleet.
    TestError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Claimed => "Claimed",
            Reason::WaitingForAgents => "WaitingForAgents",
            Reason::Starting => "Starting",
            Reason::Running => "Running",
            Reason::Passed => "Passed",
            Reason::ThresholdsFailed => "ThresholdsFailed",
            Reason::Aborted => "Aborted",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::ReferenceNotFound => "ReferenceNotFound",
            Reason::ReferenceForbidden => "ReferenceForbidden",
            Reason::SubmitRefused => "SubmitRefused",
            Reason::AgentsUnavailable => "AgentsUnavailable",
            Reason::TestLost => "TestLost",
            Reason::TestError => "TestError",
        }
    }

    /// The usual reason of a phase, when nothing more precise is known.
    pub fn of_phase(phase: Phase) -> Reason {
        match phase {
            Phase::Pending => Reason::WaitingForAgents,
            Phase::Claimed => Reason::Claimed,
            Phase::Starting => Reason::Starting,
            Phase::Running => Reason::Running,
            Phase::Passed => Reason::Passed,
            Phase::Failed => Reason::ThresholdsFailed,
            Phase::Aborted => Reason::Aborted,
            Phase::Error => Reason::TestError,
        }
    }

    /// k6's exit code for a test that ended with this reason in `phase`;
    /// `None` while it has not ended.
    pub fn exit_code(self, phase: Phase) -> Option<i32> {
        match phase {
            Phase::Passed => Some(0),
            Phase::Failed => Some(99),
            Phase::Aborted => Some(103),
            Phase::Error => Some(match self {
                Reason::InvalidSpec | Reason::SubmitRefused => 104,
                _ => 1,
            }),
            Phase::Pending | Phase::Claimed | Phase::Starting | Phase::Running => None,
        }
    }
}

/// The conditions for `phase`, keeping the `lastTransitionTime` of each
/// condition of `previous` whose status does not change. `now` is RFC 3339.
pub fn conditions(
    previous: &[Condition],
    phase: Phase,
    reason: Reason,
    message: &str,
    generation: i64,
    now: &str,
) -> Vec<Condition> {
    use ConditionStatus::{False, True, Unknown};
    let (complete, succeeded, failed) = match phase {
        Phase::Passed => (True, True, False),
        Phase::Failed | Phase::Aborted | Phase::Error => (True, False, True),
        Phase::Pending | Phase::Claimed | Phase::Starting | Phase::Running => {
            (False, Unknown, False)
        }
    };
    [
        (COMPLETE, complete),
        (SUCCEEDED, succeeded),
        (FAILED, failed),
    ]
    .into_iter()
    .map(|(type_, status)| {
        let since = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or_else(|| now.to_string(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.as_str().to_string(),
            message: message.to_string(),
            observed_generation: Some(generation),
            last_transition_time: since,
        }
    })
    .collect()
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the Event of a change to `phase` is a warning.
pub fn is_warning(phase: Phase) -> bool {
    matches!(phase, Phase::Failed | Phase::Aborted | Phase::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:01:00Z";

    fn status_of(cs: &[Condition], t: &str) -> ConditionStatus {
        find(cs, t).map(|c| c.status).expect("condition present")
    }

    #[test]
    fn every_phase_sets_all_three_conditions() {
        use ConditionStatus::{False, True, Unknown};
        let cases = [
            (Phase::Pending, [False, Unknown, False]),
            (Phase::Claimed, [False, Unknown, False]),
            (Phase::Starting, [False, Unknown, False]),
            (Phase::Running, [False, Unknown, False]),
            (Phase::Passed, [True, True, False]),
            (Phase::Failed, [True, False, True]),
            (Phase::Aborted, [True, False, True]),
            (Phase::Error, [True, False, True]),
        ];
        for (phase, want) in cases {
            let cs = conditions(&[], phase, Reason::of_phase(phase), "m", 3, T0);
            let got: Vec<ConditionStatus> = TYPES.iter().map(|t| status_of(&cs, t)).collect();
            assert_eq!(got, want, "{phase:?}");
            assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
            assert!(cs.iter().all(|c| c.last_transition_time == T0));
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let running = conditions(&[], Phase::Running, Reason::Running, "r", 1, T0);
        let still = conditions(&running, Phase::Starting, Reason::Starting, "s", 1, T1);
        assert!(still.iter().all(|c| c.last_transition_time == T0));
        assert_eq!(
            find(&still, COMPLETE).map(|c| c.reason.as_str()),
            Some("Starting")
        );

        let failed = conditions(&still, Phase::Failed, Reason::ThresholdsFailed, "f", 1, T1);
        for t in TYPES {
            assert_eq!(
                find(&failed, t).map(|c| c.last_transition_time.as_str()),
                Some(T1),
                "{t} changed"
            );
        }
        // A rerun's claim: Complete and Failed go back to False at once.
        let claimed = conditions(&failed, Phase::Claimed, Reason::Claimed, "c", 2, T1);
        assert_eq!(status_of(&claimed, COMPLETE), ConditionStatus::False);
        assert_eq!(status_of(&claimed, FAILED), ConditionStatus::False);
    }

    #[test]
    fn exit_codes_follow_k6() {
        assert_eq!(Reason::Passed.exit_code(Phase::Passed), Some(0));
        assert_eq!(Reason::ThresholdsFailed.exit_code(Phase::Failed), Some(99));
        assert_eq!(Reason::Aborted.exit_code(Phase::Aborted), Some(103));
        assert_eq!(Reason::InvalidSpec.exit_code(Phase::Error), Some(104));
        assert_eq!(Reason::SubmitRefused.exit_code(Phase::Error), Some(104));
        assert_eq!(Reason::TestLost.exit_code(Phase::Error), Some(1));
        assert_eq!(Reason::Running.exit_code(Phase::Running), None);
    }
}
