//! The agent's side of a takeover: what a participant learns from gossip
//! about its peers, and how this agent adopts a test whose origin died
//! (the origin side coordinates it, and gossip announces the new origin).

use std::sync::Arc;

use crate::fleet::keys::Announcement;
use crate::fleet::membership::Membership;
use crate::fleet::origin::Origin;
use crate::fleet::participant::{Orphan, Succession};
use crate::fleet::selector::Candidate;

/// [`Succession`] backed by this agent's membership and origin.
pub struct Successor {
    me: String,
    membership: Arc<Membership>,
    origin: Arc<Origin>,
}

impl Successor {
    pub fn new(me: String, membership: Arc<Membership>, origin: Arc<Origin>) -> Successor {
        Successor {
            me,
            membership,
            origin,
        }
    }
}

impl Succession for Successor {
    fn member(&self, node: &str) -> Option<Candidate> {
        let members = self.membership.watch();
        let members = members.borrow();
        let m = members.iter().find(|m| m.node_id == node)?;
        let info = m.usable()?;
        Some(Candidate {
            node_id: m.node_id.clone(),
            quic: info.quic,
            capacity: info.capacity,
            labels: info.labels.as_map().clone(),
        })
    }

    fn adopt(&self, orphan: Orphan) {
        let announcement = Announcement {
            id: orphan.test_id.clone(),
            digest: orphan.bundle.digest(),
            origin: self.me.clone(),
            start_ms: orphan.start_unix_ms,
            rev: u64::from(orphan.allocation.revision),
        };
        if !self.origin.adopt(orphan) {
            return;
        }
        let membership = self.membership.clone();
        tokio::spawn(async move {
            if let Err(e) = membership.announce(Some(&announcement)).await {
                tracing::warn!(test = %announcement.id, "cannot announce the adopted test in gossip: {e}");
            }
        });
    }
}
