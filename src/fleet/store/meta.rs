//! A test's record in the data directory (`meta.json`), and the rules that
//! turn test and agent ids into file names without leaving `tests/<id>/`.

use serde::{Deserialize, Serialize};

use super::error::StoreError;

/// Longest test id, in bytes (ids are ASCII).
pub const MAX_ID_LEN: usize = 64;

/// Longest agent id, in bytes: its escaped form plus `intervals-` and
/// `.bin` must stay under the 255-byte file name limit of common file
/// systems even when every byte is escaped.
pub const MAX_AGENT_LEN: usize = 80;

/// Where a test is in its life, as the store records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestPhase {
    /// Accepted; waiting for agents or for the start barrier.
    Pending,
    /// The agents agreed on a start instant and are warming up.
    Starting,
    /// Load is being generated.
    Running,
    /// Ended and every threshold held.
    Passed,
    /// Ended and at least one threshold failed.
    Failed,
    /// Stopped before its end (by a person or an `abortOnFail` threshold).
    Aborted,
    /// Could not run, or lost its results.
    Error,
    /// This agent's part ended without a verdict: the agent stopped while
    /// the test ran, or no sealed result reached it by the test's deadline
    /// (see [`TestMeta::note`]). A sealed result arriving later replaces it.
    Interrupted,
}

impl TestPhase {
    /// True once the test can no longer change (it may be pruned).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TestPhase::Passed
                | TestPhase::Failed
                | TestPhase::Aborted
                | TestPhase::Error
                | TestPhase::Interrupted
        )
    }

    /// The name used in `meta.json` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TestPhase::Pending => "pending",
            TestPhase::Starting => "starting",
            TestPhase::Running => "running",
            TestPhase::Passed => "passed",
            TestPhase::Failed => "failed",
            TestPhase::Aborted => "aborted",
            TestPhase::Error => "error",
            TestPhase::Interrupted => "interrupted",
        }
    }
}

/// One test's `meta.json`: what the history lists without opening the
/// larger files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMeta {
    /// Directory name under `tests/`; see [`validate_id`].
    pub id: String,
    /// The plan's name, for people.
    pub name: String,
    /// The agent that accepted the test and merges its results.
    pub origin: String,
    /// When the origin accepted the test (Unix milliseconds): the history's
    /// sort key.
    pub submitted_unix_ms: u64,
    /// The agreed start instant, once there is one.
    #[serde(default)]
    pub started_unix_ms: Option<u64>,
    /// When the last interval ended, once the test is over.
    #[serde(default)]
    pub ended_unix_ms: Option<u64>,
    pub phase: TestPhase,
    /// Which agent runs which share, as the allocation serialises itself
    /// (the store does not interpret it).
    #[serde(default)]
    pub allocation: serde_json::Value,
    /// Whether every threshold held; `None` until the summary is judged.
    #[serde(default)]
    pub passed: Option<bool>,
    /// The agents taking part (ids as in the intervals files).
    #[serde(default)]
    pub agents: Vec<String>,
    /// By when (Unix milliseconds) the sealed result should have reached
    /// every agent (see [`results_deadline_ms`]); past it, a test still
    /// recorded as under way is marked [`TestPhase::Interrupted`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_unix_ms: Option<u64>,
    /// Why the test ended as it did, when that is not in its summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Sealed by an agent that took the test over without a majority of
    /// its agents live (a two-agent fleet that lost its origin): the origin
    /// may have been cut off rather than dead, and its own summary, when
    /// one reaches this agent, replaces this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// Time after a test's longest possible run (its hard deadline) for the
/// coordinator to seal and tell every agent.
pub const SEAL_MARGIN: std::time::Duration = std::time::Duration::from_secs(20);

/// When the sealed result of a test starting at `start_unix_ms` and
/// running at most `max_duration` should have reached every agent.
pub fn results_deadline_ms(start_unix_ms: u64, max_duration: std::time::Duration) -> u64 {
    let span = max_duration.saturating_add(SEAL_MARGIN).as_millis();
    start_unix_ms.saturating_add(u64::try_from(span).unwrap_or(u64::MAX))
}

/// Checks that a test id is a plain directory name: 1 to [`MAX_ID_LEN`]
/// characters from `[A-Za-z0-9._-]`, and neither `.` nor `..`.
pub fn validate_id(id: &str) -> Result<(), StoreError> {
    let plain = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id != "."
        && id != ".."
        && id.bytes().all(crate::escape::is_file_name_byte);
    if plain {
        Ok(())
    } else {
        Err(StoreError::InvalidId { id: id.to_owned() })
    }
}

/// The intervals file name of an agent: `intervals-<agent>.bin`, with every
/// byte outside `[A-Za-z0-9._-]` written as `%XX`, so any agent id (a host
/// name, `10.0.0.7:7000`) maps to one file inside the test's directory and
/// no two ids share a file.
pub fn intervals_file_name(agent: &str) -> Result<String, StoreError> {
    let invalid = |reason| StoreError::InvalidAgent {
        agent: agent.to_owned(),
        reason,
    };
    if agent.is_empty() {
        return Err(invalid("it is empty"));
    }
    if agent.len() > MAX_AGENT_LEN {
        return Err(invalid("it is longer than 80 bytes"));
    }
    Ok(format!("intervals-{}.bin", crate::escape::file_name(agent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_pass_and_everything_else_is_refused() {
        for ok in ["a", "test-1", "2024.06.01_run", &"x".repeat(MAX_ID_LEN)] {
            validate_id(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc",
            "a/b",
            "a\\b",
            "a b",
            "é",
            "a\0",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            let err = validate_id(bad).expect_err(bad);
            assert!(matches!(err, StoreError::InvalidId { .. }), "{bad:?}");
            assert!(err.to_string().contains("A-Z, a-z, 0-9"), "{err}");
        }
    }

    #[test]
    fn agent_file_names_escape_and_stay_distinct() {
        assert_eq!(
            intervals_file_name("agent-1").expect("plain"),
            "intervals-agent-1.bin"
        );
        assert_eq!(
            intervals_file_name("10.0.0.7:7000").expect("escaped"),
            "intervals-10.0.0.7%3A7000.bin"
        );
        assert_eq!(
            intervals_file_name("../x").expect("escaped"),
            "intervals-..%2Fx.bin"
        );
        assert_ne!(
            intervals_file_name("a:b").expect("escaped"),
            intervals_file_name("a%3Ab").expect("escaped")
        );
        let longest = intervals_file_name(&"/".repeat(MAX_AGENT_LEN)).expect("fits");
        assert!(longest.len() <= 255, "{}", longest.len());
        assert!(intervals_file_name("").is_err());
        assert!(intervals_file_name(&"a".repeat(MAX_AGENT_LEN + 1)).is_err());
    }

    #[test]
    fn phases_serialise_by_their_names() {
        for phase in [
            TestPhase::Pending,
            TestPhase::Starting,
            TestPhase::Running,
            TestPhase::Passed,
            TestPhase::Failed,
            TestPhase::Aborted,
            TestPhase::Error,
            TestPhase::Interrupted,
        ] {
            let json = serde_json::to_string(&phase).expect("serialises");
            assert_eq!(json, format!("\"{}\"", phase.as_str()));
        }
        assert!(TestPhase::Aborted.is_terminal());
        assert!(!TestPhase::Running.is_terminal());
    }
}
