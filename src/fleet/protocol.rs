//! The messages agents exchange over the transport about a test.
//!
//! Wire form of one message: a `u32` big-endian length, a JSON header
//! (a [`Message`] or a [`Response`]), then an optional binary payload (an
//! encoded interval snapshot), so histograms travel without base64.
//! Gossip only hints that a test exists; everything an agent acts on comes
//! through here, over mutual TLS.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::allocation::Allocation;

/// How a drained agent's share ends (`Done.end`).
pub const DRAINED: &str = "drained";

/// The merge tree of a test, as the origin commits it: every participant
/// lays out the same tree ([`crate::fleet::merge::tree::Layout`]) over the
/// allocation's agents other than the origin, and finds its relay here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeTree {
    pub fanout: usize,
    /// The QUIC address of every agent that has children in the tree.
    pub relays: BTreeMap<String, std::net::SocketAddr>,
}

/// Bumped on any incompatible change; agents refuse to mix versions.
/// 2: interval snapshots in wire version 2 (trends with exact min, max and
/// sum), which a version 1 origin cannot read. 3: tree merging
/// ([`Message::Merged`], [`MergeTree`] in [`Message::Commit`]).
pub const PROTOCOL_VERSION: u32 = 3;

/// How an abort reason that comes from a script's `exec.test.abort()`
/// starts (the submitter then exits 108, as k6 does).
pub const SCRIPT_ABORT: &str = "exec.test.abort()";

/// How the reason of a share stopped by its agent's memory watchdog starts;
/// such a test is failed, whatever its thresholds say.
pub const MEMORY_CEILING: &str = "memory ceiling";

/// Whether a summary note or incident says an agent's memory watchdog
/// stopped the test.
pub fn stopped_by_memory_ceiling(note: &str) -> bool {
    note.contains(MEMORY_CEILING) && note.contains(": agent ")
}

/// Largest JSON header accepted (plans travel in it).
const MAX_HEADER: usize = 8 << 20;

/// A plan as submitted, with what it needs to load the same way on every
/// agent: `-e` values and the data files it names. Agents never read their
/// own environment for a fleet test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanBundle {
    pub plan: String,
    /// `yaml`, `json`, or `js` (then `script` holds it and `plan` is empty).
    pub format: String,
    pub env: BTreeMap<String, String>,
    pub files: BTreeMap<String, String>,
    /// Upload files (`multipart:` file parts), base64, by the path written
    /// in the plan.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uploads: BTreeMap<String, String>,
    /// A k6 script with its modules, files and `setup()` data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<crate::script::bundle::ScriptBundle>,
    /// A plan with `setup:` or `teardown:`: what setup captured, by name,
    /// filled in by the agent that ran it (which also runs teardown); the
    /// other agents run neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_values: Option<crate::engine::lifecycle::SetupValues>,
}

impl PlanBundle {
    /// A YAML plan alone: no environment, files, script or setup values.
    pub fn yaml(plan: impl Into<String>) -> PlanBundle {
        PlanBundle {
            plan: plan.into(),
            format: "yaml".into(),
            env: BTreeMap::new(),
            files: BTreeMap::new(),
            uploads: BTreeMap::new(),
            script: None,
            setup_values: None,
        }
    }

    /// SHA-256 of the bundle's canonical JSON, hex; every agent checks it.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let d = ring::digest::digest(&ring::digest::SHA256, &json);
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A request from one agent to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Origin → participant: load this plan and get ready for `start_unix_ms`.
    Prepare {
        test_id: String,
        name: String,
        origin: String,
        digest: String,
        bundle: PlanBundle,
        allocation: Allocation,
        start_unix_ms: u64,
        protocol: u32,
        /// Where to send results (the origin's QUIC address).
        origin_addr: std::net::SocketAddr,
    },
    /// Origin → participant: the final allocation; start at `start_unix_ms`.
    Commit {
        test_id: String,
        allocation: Allocation,
        start_unix_ms: u64,
        /// Where intervals go on their way to the origin; `None`: straight
        /// to it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        merge: Option<MergeTree>,
    },
    /// Origin → participant: from `effective_unix_ms` on, run this allocation.
    Reallocate {
        test_id: String,
        allocation: Allocation,
        effective_unix_ms: u64,
        /// Iterations of lost agents taken over, per agent and scenario
        /// name: the totals so far (iteration-based executors).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        extra_iterations: BTreeMap<String, BTreeMap<String, u64>>,
    },
    /// Any agent → origin, origin → participants: stop now.
    Abort { test_id: String, reason: String },
    /// Participant → origin: one interval of results; the payload is the
    /// encoded snapshot.
    Interval {
        test_id: String,
        agent: String,
        seq: u64,
        /// Sent to the agent's relay in the merge tree, not to the origin.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        to_relay: bool,
    },
    /// Relay → its parent (another relay or the origin): interval `seq` of
    /// `agents` merged into one. The payload is the agents' digests (of
    /// `digests` bytes each, in order), then the merged snapshot
    /// ([`crate::fleet::merge::combine`]). Answered once the origin took
    /// it (or with [`Response::Overlap`]).
    Merged {
        test_id: String,
        relay: String,
        seq: u64,
        agents: Vec<String>,
        digests: Vec<u32>,
        /// Sent to the relay's own parent relay, not to the origin.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        to_relay: bool,
    },
    /// Origin → participants: the test is sealed; record its verdict and
    /// keep a copy of its summary (history and summary on every agent).
    Sealed {
        meta: super::store::TestMeta,
        /// The summary model, as the origin stored it.
        summary: serde_json::Value,
        /// The summary as text.
        text: String,
    },
    /// Origin → its designated successor (the agent that would take the
    /// test over if the origin died): keep interval `seq` of the origin's
    /// own share in the data directory, so that a successor can rebuild it.
    /// The payload is the encoded snapshot. Answered `Ok` once on disk.
    Keep {
        test_id: String,
        agent: String,
        seq: u64,
    },
    /// Any agent → any agent: which gossip incarnation runs behind this QUIC
    /// endpoint? Answered with [`Response::Identity`] over mutual TLS, so the
    /// asker can bind a gossip entry to the certificate that answers for it.
    Identify,
    /// Participant → origin: this agent's part is over.
    Done {
        test_id: String,
        agent: String,
        /// When the agent's load actually started (wall clock, µs).
        started_unix_us: u64,
        /// How it ended: `completed`, `aborted`, `threshold`, `deadline`, `orphaned`, `failed: …`.
        end: String,
        intervals: u64,
        /// Set when the agent's own load generator was saturated (the
        /// warning, [`crate::engine::saturation::Saturation`]'s text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        saturated: Option<String>,
    },
}

/// The answer to a [`Message`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Ok,
    /// Prepare succeeded: the agent loaded the plan and waits for Commit.
    Prepared {
        agent: String,
    },
    /// Answer to [`Message::Identify`]: the node id and gossip generation of
    /// the agent answering.
    Identity {
        node_id: String,
        generation: u64,
    },
    /// The request was refused; `message` says why, for a person.
    Error {
        message: String,
    },
    /// Results for a test this agent does not coordinate (yet: a successor
    /// answers this until it has taken the test over), so the sender retries.
    UnknownTest {
        test_id: String,
        message: String,
    },
    /// A combined interval covering agents whose interval of that seq the
    /// origin already has (it came another way): nothing was applied; the
    /// relay sends its parts one by one.
    Overlap {
        agents: Vec<String>,
    },
    /// Abort of a test that is already over: it was aborted before (`aborted`) or ended on its
    /// own, at `at_unix_ms` (the time of this answer while the test still winds down).
    AlreadyOver {
        test_id: String,
        aborted: bool,
        at_unix_ms: u64,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("message too short: {len} bytes, expected at least 4")]
    Short { len: usize },
    #[error("message header of {len} bytes exceeds the limit of {MAX_HEADER}")]
    HeaderTooLarge { len: usize },
    #[error("message header announces {announced} bytes but only {available} follow")]
    Truncated { announced: usize, available: usize },
    #[error("message header is not valid JSON: {0}")]
    Json(String),
}

/// Encodes a header and an optional payload.
pub fn encode<T: Serialize>(header: &T, payload: &[u8]) -> Bytes {
    let json = serde_json::to_vec(header).unwrap_or_default();
    let mut buf = BytesMut::with_capacity(4 + json.len() + payload.len());
    buf.put_u32(u32::try_from(json.len()).unwrap_or(u32::MAX));
    buf.put_slice(&json);
    buf.put_slice(payload);
    buf.freeze()
}

/// Splits a message into its header and payload.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<(T, Bytes), ProtocolError> {
    if bytes.len() < 4 {
        return Err(ProtocolError::Short { len: bytes.len() });
    }
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if len > MAX_HEADER {
        return Err(ProtocolError::HeaderTooLarge { len });
    }
    let available = bytes.len() - 4;
    if len > available {
        return Err(ProtocolError::Truncated {
            announced: len,
            available,
        });
    }
    let header = serde_json::from_slice(&bytes[4..4 + len])
        .map_err(|e| ProtocolError::Json(e.to_string()))?;
    Ok((header, bytes.slice(4 + len..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> PlanBundle {
        PlanBundle {
            script: None,
            setup_values: None,
            plan: "vus: 1\n".into(),
            format: "yaml".into(),
            env: BTreeMap::from([("A".into(), "1".into())]),
            files: BTreeMap::new(),
            uploads: Default::default(),
        }
    }

    #[test]
    fn round_trip_with_payload() {
        let msg = Message::Interval {
            test_id: "t1".into(),
            agent: "a".into(),
            seq: 3,
            to_relay: false,
        };
        let bytes = encode(&msg, b"\x00\x01snapshot");
        let (back, payload): (Message, Bytes) = decode(&bytes).expect("valid");
        assert_eq!(back, msg);
        assert_eq!(&payload[..], b"\x00\x01snapshot");
    }

    #[test]
    fn digest_changes_with_content() {
        let a = bundle();
        let mut b = bundle();
        b.env.insert("B".into(), "2".into());
        assert_eq!(a.digest(), bundle().digest());
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 64);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            decode::<Message>(&Bytes::from_static(b"ab")),
            Err(ProtocolError::Short { .. })
        ));
        let big = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, b'{']);
        assert!(matches!(
            decode::<Message>(&big),
            Err(ProtocolError::HeaderTooLarge { .. })
        ));
        let short = Bytes::from_static(&[0, 0, 0, 9, b'{']);
        assert!(matches!(
            decode::<Message>(&short),
            Err(ProtocolError::Truncated { .. })
        ));
        let bad = encode(&serde_json::json!({"type": "nope"}), b"");
        assert!(matches!(
            decode::<Message>(&bad),
            Err(ProtocolError::Json(_))
        ));
    }
}
