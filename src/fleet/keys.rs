//! Every gossip key Volley publishes, in one place, and the typed
//! [`MemberInfo`] they encode.
//!
//! Gossip (chitchat) replicates a small `String → String` map per node. Volley
//! puts only control state there: the protocol and crate versions, labels,
//! capacity, where the HTTP API and the QUIC endpoint listen, the agent state,
//! the current test and phase, and a compact test [`Announcement`] published
//! by the node that originates a test. Plans, commands and results never
//! travel by gossip: they go over QUIC.
//!
//! | key | value |
//! |---|---|
//! | [`PROTO`] | protocol version, `u32`; agents only work with equal numbers |
//! | [`VERSION`] | crate version, informative |
//! | [`LABELS`] | `k=v,k=v`; keys `[a-z0-9._/-]+`, values without `,` or `=` (optional) |
//! | [`CAPACITY`] | `f64 > 0`: the weight of this node when shares are cut |
//! | [`API`] | `SocketAddr` of the HTTP API |
//! | [`QUIC`] | `SocketAddr` of the QUIC endpoint |
//! | [`STATE`] | `idle`, `preparing`, `running` or `draining` |
//! | [`TEST`] | current test id (absent when none) |
//! | [`PHASE`] | free text of at most 64 characters (optional) |
//! | [`ANNOUNCE`] | compact JSON [`Announcement`], at most 1 kB (optional) |
//!
//! Decoding never panics and never trusts a peer: [`MemberInfo::from_kv`]
//! returns a [`KeyError`] naming the key, an excerpt of the value and the
//! expected form. Membership keeps such a peer in its view with
//! `info: Err(..)`, so the reason stays visible (e.g. on `/v1/members`)
//! instead of the peer silently disappearing. Unknown `volley.*` keys are
//! ignored. Encoding goes through the same parsers ([`MemberInfo::validate`]),
//! so what a node publishes is exactly what its peers accept.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod labels;

pub use labels::Labels;

/// Prefix shared by every Volley gossip key.
pub const PREFIX: &str = "volley.";
/// Protocol version ([`PROTOCOL_VERSION`] on this build).
pub const PROTO: &str = "volley.proto";
/// Crate version of the agent (`CARGO_PKG_VERSION`).
pub const VERSION: &str = "volley.version";
/// Operator labels, `k=v,k=v`.
pub const LABELS: &str = "volley.labels";
/// Capacity weight used to cut shares.
pub const CAPACITY: &str = "volley.capacity";
/// Address of the HTTP API.
pub const API: &str = "volley.api";
/// Address of the QUIC endpoint.
pub const QUIC: &str = "volley.quic";
/// Agent state ([`AgentState`]).
pub const STATE: &str = "volley.state";
/// Current test id; absent when the agent has none.
pub const TEST: &str = "volley.test";
/// Free-text phase of the current test.
pub const PHASE: &str = "volley.phase";
/// Test announcement published by the origin ([`Announcement`]).
pub const ANNOUNCE: &str = "volley.announce";
/// Every key above, in publication order.
pub const ALL: [&str; 10] = [
    PROTO, VERSION, LABELS, CAPACITY, API, QUIC, STATE, TEST, PHASE, ANNOUNCE,
];

/// Protocol version of this build. It is a major number: any change to the
/// gossip keys or to the QUIC messages that an older agent would misread
/// bumps it, and agents with different numbers never work together.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest [`PHASE`] value, in characters.
pub const MAX_PHASE_CHARS: usize = 64;
/// Longest [`TEST`] id, in characters.
pub const MAX_TEST_ID_CHARS: usize = 128;
/// Longest [`VERSION`] value, in characters.
pub const MAX_VERSION_CHARS: usize = 64;
/// Largest encoded [`LABELS`] value, in bytes: labels describe a node, they
/// are not a data channel, and every byte is gossiped to every node.
pub const MAX_LABELS_BYTES: usize = 1024;
/// Largest encoded [`ANNOUNCE`] value, in bytes.
pub const MAX_ANNOUNCEMENT_BYTES: usize = 1024;
/// Largest accepted capacity weight; far above any real machine, it only
/// keeps share arithmetic away from overflow and precision loss.
pub const MAX_CAPACITY: f64 = 1.0e9;

/// How much of a bad value an error repeats: enough to recognise it, not a
/// whole garbage payload from a peer.
const EXCERPT_CHARS: usize = 64;

/// Why a gossip value was refused (a peer's, or our own before publishing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A required key is absent.
    #[error("gossip key `{key}` is missing (expected {expected})")]
    Missing {
        /// The key.
        key: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A key is present but its value is not acceptable.
    #[error("gossip key `{key}` has value {value:?}: expected {expected}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// The value, shortened to its first characters when long.
        value: String,
        /// What was wrong and what a valid value looks like.
        expected: String,
    },
}

impl KeyError {
    fn invalid(key: &'static str, value: &str, expected: impl Into<String>) -> Self {
        KeyError::Invalid {
            key,
            value: excerpt(value),
            expected: expected.into(),
        }
    }

    /// The key this error is about.
    pub fn key(&self) -> &'static str {
        match self {
            KeyError::Missing { key, .. } | KeyError::Invalid { key, .. } => key,
        }
    }
}

/// The first [`EXCERPT_CHARS`] characters of `value`, marked when cut.
fn excerpt(value: &str) -> String {
    match value.char_indices().nth(EXCERPT_CHARS) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
    }
}

// === AgentState ===

/// What an agent is doing, as gossiped under [`STATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentState {
    /// Ready to take a share of a test.
    Idle,
    /// Received a plan, preparing to start (warming connections, waiting for the barrier).
    Preparing,
    /// Generating load.
    Running,
    /// Finishing in-flight work; takes no new test.
    Draining,
}

impl AgentState {
    /// Every state, in lifecycle order.
    pub const ALL: [AgentState; 4] = [
        AgentState::Idle,
        AgentState::Preparing,
        AgentState::Running,
        AgentState::Draining,
    ];

    /// The gossiped spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Idle => "idle",
            AgentState::Preparing => "preparing",
            AgentState::Running => "running",
            AgentState::Draining => "draining",
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentState {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        AgentState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| {
                KeyError::invalid(STATE, text, "one of idle, preparing, running, draining")
            })
    }
}

// === Announcement ===

/// A test announcement, published by the origin node under [`ANNOUNCE`] as
/// compact JSON. It lets every agent learn that a test exists and which plan
/// (by digest) it runs before fetching the plan over QUIC from `origin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    /// Test id (same rules as [`TEST`]).
    pub id: String,
    /// Digest of the plan, so agents can tell a changed plan from a repeat.
    pub digest: String,
    /// Node id of the origin, where the plan is fetched from.
    pub origin: String,
    /// Planned start, milliseconds since the Unix epoch (wall clock: it is
    /// compared across machines).
    pub start_ms: u64,
    /// Revision, bumped by the origin when it re-announces the same test
    /// (new start time, abort), so later values win unambiguously.
    pub rev: u64,
}

impl Announcement {
    /// The compact JSON published under [`ANNOUNCE`]; refuses an
    /// announcement its peers would refuse.
    pub fn encode(&self) -> Result<String, KeyError> {
        let json = serde_json::to_string(self)
            .expect("invariant: a struct of strings and integers always serialises");
        Self::decode(&json)?;
        Ok(json)
    }

    /// Parses and checks a gossiped announcement.
    pub fn decode(text: &str) -> Result<Self, KeyError> {
        const FORM: &str =
            r#"compact JSON {"id":..,"digest":..,"origin":..,"start_ms":..,"rev":..}"#;
        if text.len() > MAX_ANNOUNCEMENT_BYTES {
            return Err(KeyError::invalid(
                ANNOUNCE,
                text,
                format!("{FORM} of at most {MAX_ANNOUNCEMENT_BYTES} bytes"),
            ));
        }
        let announcement: Announcement = serde_json::from_str(text)
            .map_err(|error| KeyError::invalid(ANNOUNCE, text, format!("{FORM} ({error})")))?;
        parse_test_id(ANNOUNCE, &announcement.id)?;
        let digest_ok = !announcement.digest.is_empty()
            && announcement.digest.len() <= 128
            && announcement
                .digest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_'));
        if !digest_ok {
            return Err(KeyError::invalid(
                ANNOUNCE,
                &announcement.digest,
                "a digest of 1 to 128 characters [A-Za-z0-9:_-] (e.g. `sha256:9f86d0…`)",
            ));
        }
        let origin_ok = !announcement.origin.is_empty()
            && announcement.origin.len() <= 253
            && !announcement
                .origin
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        if !origin_ok {
            return Err(KeyError::invalid(
                ANNOUNCE,
                &announcement.origin,
                "an origin node id of 1 to 253 characters without spaces",
            ));
        }
        Ok(announcement)
    }
}

// === MemberInfo ===

/// What one agent says about itself through gossip, plus its gossip
/// identity (which chitchat carries itself, not as keys).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberInfo {
    /// Stable node name (the Kubernetes node name in a DaemonSet).
    pub node_id: String,
    /// Incarnation: process start time in ns, new on every start, so a
    /// restarted agent replaces its old self instead of colliding with it.
    pub generation: u64,
    /// Address peers gossip with.
    pub gossip_addr: SocketAddr,
    /// [`PROTO`]: protocol version.
    pub proto: u32,
    /// [`VERSION`]: crate version, shown to operators.
    pub version: String,
    /// [`LABELS`]: operator labels, used to select nodes.
    pub labels: Labels,
    /// [`CAPACITY`]: weight of this node when a test is cut into shares.
    pub capacity: f64,
    /// [`API`]: where the HTTP API listens.
    pub api: SocketAddr,
    /// [`QUIC`]: where the QUIC endpoint listens.
    pub quic: SocketAddr,
    /// [`STATE`]: what the agent is doing.
    pub state: AgentState,
    /// [`TEST`]: the test the agent works on, if any.
    pub test: Option<String>,
    /// [`PHASE`]: free text describing where the test is.
    pub phase: Option<String>,
    /// [`ANNOUNCE`]: set only on the origin of a test.
    pub announcement: Option<Announcement>,
}

impl MemberInfo {
    /// An idle agent of this build, without labels, test or announcement.
    pub fn new(
        node_id: impl Into<String>,
        generation: u64,
        gossip_addr: SocketAddr,
        api: SocketAddr,
        quic: SocketAddr,
        capacity: f64,
    ) -> Self {
        MemberInfo {
            node_id: node_id.into(),
            generation,
            gossip_addr,
            proto: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            labels: Labels::new(),
            capacity,
            api,
            quic,
            state: AgentState::Idle,
            test: None,
            phase: None,
            announcement: None,
        }
    }

    /// Decodes a member from its gossiped key-values. Never panics: a
    /// missing or malformed key yields the first [`KeyError`] in [`ALL`]
    /// order. Keys outside [`ALL`] are ignored.
    pub fn from_kv(
        node_id: &str,
        generation: u64,
        gossip_addr: SocketAddr,
        kv: &BTreeMap<String, String>,
    ) -> Result<MemberInfo, KeyError> {
        let get = |key: &'static str| kv.get(key).map(String::as_str);
        let require = |key: &'static str, expected: &'static str| {
            get(key).ok_or(KeyError::Missing { key, expected })
        };
        let proto = parse_proto(require(PROTO, "a protocol version such as `1`")?)?;
        let version = parse_version(require(VERSION, "a crate version such as `0.1.0`")?)?;
        let labels = match get(LABELS) {
            Some(text) => Labels::parse(text)?,
            None => Labels::new(),
        };
        let capacity =
            parse_capacity(require(CAPACITY, "a capacity weight such as `2` or `1.5`")?)?;
        let api = parse_addr(API, require(API, "an address such as `10.0.0.5:7281`")?)?;
        let quic = parse_addr(QUIC, require(QUIC, "an address such as `10.0.0.5:7282`")?)?;
        let state = require(STATE, "one of idle, preparing, running, draining")?.parse()?;
        let test = get(TEST)
            .map(|text| parse_test_id(TEST, text))
            .transpose()?;
        let phase = get(PHASE).map(parse_phase).transpose()?;
        let announcement = get(ANNOUNCE).map(Announcement::decode).transpose()?;
        Ok(MemberInfo {
            node_id: node_id.to_owned(),
            generation,
            gossip_addr,
            proto,
            version,
            labels,
            capacity,
            api,
            quic,
            state,
            test,
            phase,
            announcement,
        })
    }

    /// The key-values to publish, in [`ALL`] order; optional keys that are
    /// `None` are left out (and deleted when publishing). Only meaningful for
    /// a [`validate`](Self::validate)d value.
    pub fn to_kv(&self) -> Vec<(String, String)> {
        let mut kv = vec![
            (PROTO.to_owned(), self.proto.to_string()),
            (VERSION.to_owned(), self.version.clone()),
        ];
        if !self.labels.is_empty() {
            kv.push((LABELS.to_owned(), self.labels.to_string()));
        }
        kv.push((CAPACITY.to_owned(), self.capacity.to_string()));
        kv.push((API.to_owned(), self.api.to_string()));
        kv.push((QUIC.to_owned(), self.quic.to_string()));
        kv.push((STATE.to_owned(), self.state.as_str().to_owned()));
        if let Some(test) = &self.test {
            kv.push((TEST.to_owned(), test.clone()));
        }
        if let Some(phase) = &self.phase {
            kv.push((PHASE.to_owned(), phase.clone()));
        }
        if let Some(announcement) = &self.announcement {
            // An unserialisable announcement cannot happen (plain fields);
            // an oversized one is caught by `validate`, so encode leniently.
            let json = serde_json::to_string(announcement)
                .expect("invariant: a struct of strings and integers always serialises");
            kv.push((ANNOUNCE.to_owned(), json));
        }
        kv
    }

    /// Checks that peers will accept this info: encodes it and decodes it
    /// back with the parsers peers use, and requires the same value back.
    pub fn validate(&self) -> Result<(), KeyError> {
        let kv: BTreeMap<String, String> = self.to_kv().into_iter().collect();
        let decoded = MemberInfo::from_kv(&self.node_id, self.generation, self.gossip_addr, &kv)?;
        // Text forms that parse but lose information (an IPv6 flow label, a
        // capacity that is not exactly representable in its printed form)
        // would make peers see something else than we meant: refuse them.
        let differing = [
            (
                decoded.capacity != self.capacity,
                CAPACITY,
                self.capacity.to_string(),
            ),
            (decoded.api != self.api, API, format!("{:?}", self.api)),
            (decoded.quic != self.quic, QUIC, format!("{:?}", self.quic)),
        ];
        if let Some((_, key, value)) = differing.into_iter().find(|(differs, ..)| *differs) {
            return Err(KeyError::invalid(
                key,
                &value,
                "a value that survives encoding unchanged",
            ));
        }
        if decoded != *self {
            return Err(KeyError::invalid(
                PREFIX,
                &self.node_id,
                "member info that survives encoding unchanged",
            ));
        }
        Ok(())
    }
}

/// Decodes [`PROTO`] alone, so an incompatible peer is recognised as such
/// even when the rest of its keys do not decode with our rules.
pub fn parse_proto(text: &str) -> Result<u32, KeyError> {
    text.parse::<u32>()
        .map_err(|_| KeyError::invalid(PROTO, text, "a protocol version, an integer such as `1`"))
}

fn parse_version(text: &str) -> Result<String, KeyError> {
    let ok = !text.is_empty()
        && text.chars().count() <= MAX_VERSION_CHARS
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(text.to_owned())
    } else {
        Err(KeyError::invalid(
            VERSION,
            text,
            format!(
                "a version of 1 to {MAX_VERSION_CHARS} characters without spaces, such as `0.1.0`"
            ),
        ))
    }
}

fn parse_capacity(text: &str) -> Result<f64, KeyError> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value <= MAX_CAPACITY => Ok(value),
        _ => Err(KeyError::invalid(
            CAPACITY,
            text,
            format!("a finite number above 0 and at most {MAX_CAPACITY}, such as `2` or `1.5`"),
        )),
    }
}

fn parse_addr(key: &'static str, text: &str) -> Result<SocketAddr, KeyError> {
    match text.parse::<SocketAddr>() {
        Ok(addr) if addr.port() != 0 && !addr.ip().is_unspecified() => Ok(addr),
        _ => Err(KeyError::invalid(
            key,
            text,
            "a reachable `ip:port` such as `10.0.0.5:7281` or `[fd00::5]:7281` (no port 0, no 0.0.0.0)",
        )),
    }
}

fn parse_test_id(key: &'static str, text: &str) -> Result<String, KeyError> {
    let ok = !text.is_empty()
        && text.chars().count() <= MAX_TEST_ID_CHARS
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(text.to_owned())
    } else {
        Err(KeyError::invalid(
            key,
            text,
            format!("a test id of 1 to {MAX_TEST_ID_CHARS} characters without spaces"),
        ))
    }
}

fn parse_phase(text: &str) -> Result<String, KeyError> {
    if text.chars().count() <= MAX_PHASE_CHARS && !text.chars().any(char::is_control) {
        Ok(text.to_owned())
    } else {
        Err(KeyError::invalid(
            PHASE,
            text,
            format!("free text of at most {MAX_PHASE_CHARS} characters without control characters"),
        ))
    }
}

#[cfg(test)]
mod tests;
