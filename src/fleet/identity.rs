//! Binding a gossip entry to the certificate that answers for it.
//!
//! Gossip is authenticated with the fleet's key, so an outsider cannot join;
//! but any key holder could still gossip under another agent's node id. An
//! entry is only trusted for tests once the QUIC endpoint it advertises has
//! proved it: over mutual TLS its verified certificate must name the entry's
//! node id, and the agent behind it must answer [`Message::Identify`] with
//! the entry's generation. Entries that fail are distrusted in
//! membership ([`Roster::distrust`]: the genuine incarnation shows again), recorded in the
//! [`IdentityBook`] (shown by `/v1/members`, counted on `/metrics`) and
//! logged once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::membership::{Member, Roster};
use super::protocol::{self, Message, Response};
use super::transport::{Transport, TransportError};

/// Budget of one verification (the Identify round trip, and the connection
/// it may need).
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);
/// How many identity requests that time out are sent before the peer is
/// left unverified.
const VERIFY_ATTEMPTS: u32 = 3;

/// What is known of one incarnation's claim to its node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its QUIC endpoint presents a certificate for its node id and runs
    /// this incarnation.
    Verified,
    /// Not checked yet, or the check could not complete: why.
    Unverified(String),
    /// Its QUIC endpoint presents another node's certificate: it claims a
    /// node id it cannot prove.
    Impostor(String),
    /// Its QUIC endpoint is the node's own but runs another incarnation: the
    /// entry is stale or forged.
    Superseded(String),
}

// === impl Verdict ===

impl Verdict {
    /// How `/v1/members` names it.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Unverified(_) => "unverified",
            Verdict::Impostor(_) => "impostor",
            Verdict::Superseded(_) => "superseded",
        }
    }

    /// Why it is not verified, if it is not.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Verified => None,
            Verdict::Unverified(why) | Verdict::Impostor(why) | Verdict::Superseded(why) => {
                Some(why)
            }
        }
    }

    /// The incarnation was proved not to be what it claims.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Verdict::Impostor(_) | Verdict::Superseded(_))
    }
}

/// An incarnation found not to be what it claims, for `/v1/members`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The node id it claims.
    pub node_id: String,
    /// Its generation.
    pub generation: u64,
    /// Where it gossips from.
    pub gossip_addr: SocketAddr,
    /// Why it is rejected.
    pub verdict: Verdict,
}

/// Verdicts by incarnation, and how many impostors were found.
#[derive(Debug, Default)]
pub struct IdentityBook {
    entries: Mutex<BTreeMap<(String, u64), (SocketAddr, Verdict)>>,
    /// Incarnations found to present another node's certificate.
    impostors: AtomicU64,
}

// === impl IdentityBook ===

impl IdentityBook {
    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, u64), (SocketAddr, Verdict)>> {
        // One map operation per critical section: a poisoned map is consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The verdict on incarnation `generation` of `node_id`, if checked.
    pub fn get(&self, node_id: &str, generation: u64) -> Option<Verdict> {
        self.entries()
            .get(&(node_id.to_owned(), generation))
            .map(|(_, verdict)| verdict.clone())
    }

    /// Records a verdict; true when it differs from the one before (so a
    /// finding is logged once, not at every check).
    pub fn record(
        &self,
        node_id: &str,
        generation: u64,
        gossip_addr: SocketAddr,
        verdict: Verdict,
    ) -> bool {
        let mut entries = self.entries();
        let key = (node_id.to_owned(), generation);
        let changed = entries.get(&key).is_none_or(|(_, before)| {
            std::mem::discriminant(before) != std::mem::discriminant(&verdict)
        });
        if changed && matches!(verdict, Verdict::Impostor(_)) {
            self.impostors.fetch_add(1, Ordering::Relaxed);
        }
        entries.insert(key, (gossip_addr, verdict));
        changed
    }

    /// Incarnations found to present another node's certificate, since start.
    pub fn impostors_found(&self) -> u64 {
        self.impostors.load(Ordering::Relaxed)
    }

    /// Rejected incarnations among `live` (others are gone and no longer
    /// worth showing), sorted.
    pub fn rejected(&self, live: &[(String, u64)]) -> Vec<Rejected> {
        self.entries()
            .iter()
            .filter(|(key, (_, verdict))| verdict.is_rejected() && live.contains(key))
            .map(|((node_id, generation), (gossip_addr, verdict))| Rejected {
                node_id: node_id.clone(),
                generation: *generation,
                gossip_addr: *gossip_addr,
                verdict: verdict.clone(),
            })
            .collect()
    }

    /// Forgets incarnations that are no longer live.
    pub fn retain_live(&self, live: &[(String, u64)]) {
        self.entries().retain(|key, _| live.contains(key));
    }
}

/// Asks the QUIC endpoint `quic` who it is and compares the answer with the
/// gossip entry (node id, generation). The certificate's node id comes from
/// the transport (verified against the fleet CA), never from the reply.
pub async fn verify(
    transport: &dyn Transport,
    node_id: &str,
    generation: u64,
    quic: SocketAddr,
) -> Verdict {
    let body = protocol::encode(&Message::Identify, &[]);
    let mut attempt = 1;
    let reply = loop {
        match transport.request(quic, body.clone(), VERIFY_TIMEOUT).await {
            Ok(reply) => break reply,
            // One lost exchange must not cost an agent its place in a test.
            Err(TransportError::Timeout { .. }) if attempt < VERIFY_ATTEMPTS => attempt += 1,
            Err(error) => {
                return Verdict::Unverified(format!(
                    "its QUIC endpoint {quic} did not prove who it is: {error}"
                ));
            }
        }
    };
    let presented = match transport.peer_id(quic, VERIFY_TIMEOUT).await {
        Ok(presented) => presented,
        Err(error) => {
            return Verdict::Unverified(format!(
                "the certificate at its QUIC endpoint {quic} could not be read: {error}"
            ));
        }
    };
    if presented != node_id {
        return Verdict::Impostor(format!(
            "gossips as {node_id} but its QUIC endpoint {quic} presents the certificate of \
             {presented}"
        ));
    }
    match protocol::decode::<Response>(&reply) {
        Ok((
            Response::Identity {
                node_id: answered,
                generation: running,
            },
            _,
        )) => {
            if answered != node_id {
                Verdict::Impostor(format!(
                    "gossips as {node_id} but the agent at its QUIC endpoint {quic} says it is \
                     {answered}"
                ))
            } else if running != generation {
                Verdict::Superseded(format!(
                    "the agent {node_id} at {quic} runs incarnation {running}, not the gossiped \
                     {generation}"
                ))
            } else {
                Verdict::Verified
            }
        }
        Ok(_) | Err(_) => Verdict::Unverified(format!(
            "the agent at {quic} does not answer identity requests (an older Volley?)"
        )),
    }
}

/// The verdict on `member`: cached when verified, else checked now. A
/// rejected incarnation is distrusted in `membership` and logged when first
/// found.
pub async fn check_member(
    book: &IdentityBook,
    membership: &dyn Roster,
    transport: &dyn Transport,
    member: &Member,
) -> Verdict {
    if member.is_self {
        return Verdict::Verified;
    }
    if let Some(Verdict::Verified) = book.get(&member.node_id, member.generation) {
        return Verdict::Verified;
    }
    let verdict = match member.usable() {
        Some(info) => verify(transport, &member.node_id, member.generation, info.quic).await,
        None => Verdict::Unverified(
            "its gossip entry is not usable (another protocol version, or keys still arriving)"
                .to_owned(),
        ),
    };
    let changed = book.record(
        &member.node_id,
        member.generation,
        member.gossip_addr,
        verdict.clone(),
    );
    if verdict.is_rejected() {
        membership
            .distrust(&member.node_id, member.generation)
            .await;
    }
    if changed {
        match &verdict {
            Verdict::Impostor(why) => tracing::warn!(
                node = %member.node_id,
                generation = member.generation,
                gossip = %member.gossip_addr,
                "gossip entry rejected, impostor: {why}"
            ),
            Verdict::Superseded(why) => tracing::info!(
                node = %member.node_id,
                generation = member.generation,
                "gossip entry rejected: {why}"
            ),
            Verdict::Verified => tracing::debug!(node = %member.node_id, "identity verified"),
            Verdict::Unverified(why) => {
                tracing::debug!(node = %member.node_id, "identity not verified: {why}");
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::fleet::transport::{Limits, MemoryNetwork, MemoryTransport, handler_fn};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    /// Binds a node that answers Identify as `(node_id, generation)` and
    /// presents the certificate of `cert_id`; it stays bound while kept.
    fn node(
        net: &MemoryNetwork,
        port: u16,
        cert_id: &str,
        node_id: &str,
        generation: u64,
    ) -> MemoryTransport {
        let node_id = node_id.to_owned();
        let handler = handler_fn(move |_from, _body: Bytes| {
            let node_id = node_id.clone();
            async move {
                protocol::encode(
                    &Response::Identity {
                        node_id,
                        generation,
                    },
                    &[],
                )
            }
        });
        net.bind(addr(port), cert_id, handler, Limits::default())
            .expect("bind")
    }

    fn asker(net: &MemoryNetwork) -> Arc<dyn Transport> {
        let handler = handler_fn(|_from, _body: Bytes| async { Bytes::new() });
        Arc::new(
            net.bind(addr(1), "asker", handler, Limits::default())
                .expect("bind"),
        )
    }

    #[tokio::test]
    async fn the_certificate_and_the_incarnation_must_both_match() {
        let net = MemoryNetwork::new();
        let _nodes = [
            node(&net, 10, "a", "a", 7),
            node(&net, 11, "b", "b", 3),
            node(&net, 12, "b", "a", 7),
        ];
        let me = asker(&net);
        assert_eq!(
            verify(me.as_ref(), "a", 7, addr(10)).await,
            Verdict::Verified
        );

        let impostor = verify(me.as_ref(), "a", 7, addr(11)).await;
        assert_eq!(impostor.label(), "impostor");
        assert!(
            impostor
                .reason()
                .is_some_and(|r| r.contains("certificate of b")),
            "{impostor:?}"
        );

        let lying = verify(me.as_ref(), "a", 7, addr(12)).await;
        assert_eq!(
            lying.label(),
            "impostor",
            "the certificate decides, not the reply"
        );

        let old = verify(me.as_ref(), "a", 5, addr(10)).await;
        assert_eq!(old.label(), "superseded");
        assert!(
            old.reason()
                .is_some_and(|r| r.contains("runs incarnation 7")),
            "{old:?}"
        );

        let nobody = verify(me.as_ref(), "a", 7, addr(99)).await;
        assert_eq!(nobody.label(), "unverified");
    }

    #[test]
    fn the_book_logs_changes_once_and_forgets_gone_incarnations() {
        let book = IdentityBook::default();
        let imp = Verdict::Impostor("certificate of b".into());
        assert!(book.record("a", 9, addr(5), imp.clone()));
        assert!(
            !book.record("a", 9, addr(5), imp.clone()),
            "same finding again"
        );
        assert!(book.record("a", 3, addr(6), Verdict::Verified));
        assert_eq!(book.impostors_found(), 1);

        let live = vec![("a".to_owned(), 9), ("a".to_owned(), 3)];
        let rejected = book.rejected(&live);
        assert_eq!(rejected.len(), 1);
        assert_eq!(
            (rejected[0].generation, rejected[0].gossip_addr),
            (9, addr(5))
        );

        book.retain_live(&[("a".to_owned(), 3)]);
        assert_eq!(book.get("a", 9), None);
        assert_eq!(book.get("a", 3), Some(Verdict::Verified));
        assert!(book.rejected(&live).is_empty());
    }
}
