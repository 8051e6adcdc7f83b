//! The membership view: from chitchat's per-incarnation node states to one
//! [`Member`] per node id. Pure (no locks, no runtime), so the dedupe rules
//! are tested directly.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use chitchat::{ChitchatId, NodeState};

use crate::fleet::keys::{self, KeyError, MemberInfo};

/// One live node as the rest of the agent sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Stable node name.
    pub node_id: String,
    /// Incarnation shown (the newest live one).
    pub generation: u64,
    /// Where the node gossips.
    pub gossip_addr: SocketAddr,
    /// True for this agent itself.
    pub is_self: bool,
    /// The node speaks our protocol version ([`keys::PROTO`] equal to ours).
    /// Decided from that key alone, so a newer agent whose other keys we
    /// cannot read is still reported as incompatible rather than broken.
    pub compatible: bool,
    /// Its decoded keys, or why they do not decode (kept so operators see
    /// the reason, e.g. on `/v1/members`). A node only just learned can show
    /// `Missing` for a round or two while its keys are still in flight.
    pub info: Result<MemberInfo, KeyError>,
}

impl Member {
    /// The info of a member that can take part in tests: compatible and
    /// fully decoded.
    pub fn usable(&self) -> Option<&MemberInfo> {
        match &self.info {
            Ok(info) if self.compatible => Some(info),
            _ => None,
        }
    }
}

/// What the view needs from one incarnation's chitchat state, copied out so
/// the chitchat lock is held only for the copy.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSnapshot {
    /// chitchat's identity of the incarnation.
    pub id: ChitchatId,
    /// Its `volley.*` key-values (other keys are not ours and are dropped).
    pub kv: BTreeMap<String, String>,
}

impl NodeSnapshot {
    /// Copies the Volley keys of `state`.
    pub fn new(id: &ChitchatId, state: &NodeState) -> Self {
        NodeSnapshot {
            id: id.clone(),
            kv: state
                .key_values()
                .filter(|(key, _)| key.starts_with(keys::PREFIX))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        }
    }
}

/// Incarnations (node id, generation) found not to be what they claim (their
/// QUIC endpoint answers with another certificate or incarnation): left out
/// of the view so the genuine incarnation shows, even if it is older.
pub type Distrusted = BTreeSet<(String, u64)>;

/// One member per node id, sorted by node id. For each node id the newest
/// live generation wins (a restarted agent replaces its old incarnation
/// before the old one is declared dead), except incarnations in `distrusted`;
/// for our own node id our own incarnation always wins, since another live
/// agent claiming our name is a misconfiguration or an impostor and must not
/// make us vanish from our own view.
pub fn build_members(
    self_id: &ChitchatId,
    proto: u32,
    live: Vec<NodeSnapshot>,
    distrusted: &Distrusted,
) -> Vec<Member> {
    let mut newest: BTreeMap<String, NodeSnapshot> = BTreeMap::new();
    for snapshot in live {
        let node_id = snapshot.id.node_id.to_string();
        if snapshot.id != *self_id
            && distrusted.contains(&(node_id.clone(), snapshot.id.generation_id))
        {
            continue;
        }
        let replace = match newest.get(&node_id) {
            None => true,
            Some(_) if snapshot.id == *self_id => true,
            Some(current) if current.id == *self_id => false,
            Some(current) => snapshot.id.generation_id > current.id.generation_id,
        };
        if replace {
            newest.insert(node_id, snapshot);
        }
    }
    newest
        .into_iter()
        .map(|(node_id, snapshot)| {
            let compatible = snapshot
                .kv
                .get(keys::PROTO)
                .and_then(|text| keys::parse_proto(text).ok())
                == Some(proto);
            let info = MemberInfo::from_kv(
                &node_id,
                snapshot.id.generation_id,
                snapshot.id.gossip_advertise_addr,
                &snapshot.kv,
            );
            Member {
                node_id,
                generation: snapshot.id.generation_id,
                gossip_addr: snapshot.id.gossip_advertise_addr,
                is_self: snapshot.id == *self_id,
                compatible,
                info,
            }
        })
        .collect()
}

/// Node ids with a dead incarnation and no live one (a restarted node is
/// alive, not dead), never our own; sorted. A node id is thus either in the
/// members or here, not both.
pub fn dead_node_ids<'a>(
    self_id: &ChitchatId,
    live: impl IntoIterator<Item = &'a ChitchatId>,
    dead: impl IntoIterator<Item = &'a ChitchatId>,
) -> Vec<String> {
    let alive: BTreeSet<&str> = live.into_iter().map(|id| &*id.node_id).collect();
    let dead: BTreeSet<&str> = dead
        .into_iter()
        .map(|id| &*id.node_id)
        .filter(|node_id| !alive.contains(node_id) && *node_id != &*self_id.node_id)
        .collect();
    dead.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::keys::PROTOCOL_VERSION;

    fn id(node: &str, generation: u64, port: u16) -> ChitchatId {
        ChitchatId::new(node, generation, SocketAddr::from(([10, 0, 0, 1], port)))
    }

    fn valid_kv(node: &str, generation: u64, port: u16) -> BTreeMap<String, String> {
        let addr = SocketAddr::from(([10, 0, 0, 1], port));
        MemberInfo::new(node, generation, addr, addr, addr, 1.0)
            .to_kv()
            .into_iter()
            .collect()
    }

    fn snapshot(node: &str, generation: u64, port: u16) -> NodeSnapshot {
        NodeSnapshot {
            id: id(node, generation, port),
            kv: valid_kv(node, generation, port),
        }
    }

    #[test]
    fn newest_generation_wins_and_order_is_by_node_id() {
        let me = id("b", 5, 2);
        let members = build_members(
            &me,
            PROTOCOL_VERSION,
            vec![
                snapshot("c", 7, 3),
                snapshot("b", 5, 2),
                snapshot("a", 2, 11),
                snapshot("a", 9, 12),
                snapshot("a", 4, 13),
            ],
            &Distrusted::new(),
        );
        let seen: Vec<(&str, u64, bool)> = members
            .iter()
            .map(|m| (m.node_id.as_str(), m.generation, m.is_self))
            .collect();
        assert_eq!(seen, [("a", 9, false), ("b", 5, true), ("c", 7, false)]);
        assert_eq!(members[0].gossip_addr.port(), 12);
        assert!(members.iter().all(|m| m.compatible && m.usable().is_some()));
    }

    #[test]
    fn self_wins_over_an_impostor_with_our_name() {
        let me = id("a", 5, 1);
        for order in [
            vec![snapshot("a", 9, 2), snapshot("a", 5, 1)],
            vec![snapshot("a", 5, 1), snapshot("a", 9, 2)],
        ] {
            let members = build_members(&me, PROTOCOL_VERSION, order, &Distrusted::new());
            assert_eq!(members.len(), 1);
            assert!(members[0].is_self);
            assert_eq!(members[0].generation, 5);
        }
    }

    #[test]
    fn a_distrusted_incarnation_gives_way_to_the_genuine_one() {
        let me = id("b", 1, 1);
        let live = || {
            vec![
                snapshot("b", 1, 1),
                snapshot("a", 3, 2),
                snapshot("a", 9, 66),
            ]
        };
        let shown = |distrusted: &Distrusted| {
            build_members(&me, PROTOCOL_VERSION, live(), distrusted)
                .into_iter()
                .map(|m| (m.node_id, m.generation, m.gossip_addr.port()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shown(&Distrusted::new()),
            [("a".into(), 9, 66), ("b".into(), 1, 1)],
            "the newer claimant wins while nothing is known"
        );
        let impostor: Distrusted = [("a".to_owned(), 9)].into();
        assert_eq!(
            shown(&impostor),
            [("a".into(), 3, 2), ("b".into(), 1, 1)],
            "the genuine, older incarnation shows again"
        );
        let both: Distrusted = [
            ("a".to_owned(), 9),
            ("a".to_owned(), 3),
            ("b".to_owned(), 1),
        ]
        .into();
        assert_eq!(
            shown(&both),
            [("b".into(), 1, 1)],
            "never distrust ourselves"
        );
    }

    #[test]
    fn protocol_mismatch_is_incompatible_even_when_keys_are_garbage() {
        let me = id("a", 1, 1);
        let mut newer = snapshot("b", 1, 2);
        newer
            .kv
            .insert(keys::PROTO.to_owned(), (PROTOCOL_VERSION + 1).to_string());
        newer
            .kv
            .insert(keys::STATE.to_owned(), "hibernating".to_owned());
        let mut broken = snapshot("c", 1, 3);
        broken.kv.insert(keys::CAPACITY.to_owned(), "-3".to_owned());
        let mut empty = snapshot("d", 1, 4);
        empty.kv.clear();

        let members = build_members(
            &me,
            PROTOCOL_VERSION,
            vec![snapshot("a", 1, 1), newer, broken, empty],
            &Distrusted::new(),
        );
        let b = &members[1];
        assert!(!b.compatible);
        assert!(matches!(&b.info, Err(KeyError::Invalid { key, .. }) if *key == keys::STATE));
        assert!(b.usable().is_none());

        let c = &members[2];
        assert!(c.compatible, "right protocol, bad capacity");
        assert!(matches!(&c.info, Err(KeyError::Invalid { key, .. }) if *key == keys::CAPACITY));
        assert!(c.usable().is_none());

        let d = &members[3];
        assert!(!d.compatible);
        assert!(matches!(&d.info, Err(KeyError::Missing { key, .. }) if *key == keys::PROTO));
    }

    #[test]
    fn dead_ids_skip_restarted_nodes_and_self() {
        let me = id("a", 1, 1);
        let live = [id("a", 1, 1), id("b", 2, 2)];
        let dead = [
            id("b", 1, 2),
            id("c", 1, 3),
            id("c", 2, 3),
            id("a", 0, 1),
            id("d", 4, 4),
        ];
        assert_eq!(dead_node_ids(&me, &live, &dead), ["c", "d"]);
        assert!(dead_node_ids(&me, &live, &[]).is_empty());
    }
}
