//! This agent's side of a takeover: what a participant learns of its peers
//! from the roster, and how this agent adopts a test whose origin died (the
//! origin side coordinates it, and gossip announces the new origin).

use std::sync::Arc;

use crate::fleet::keys::Announcement;
use crate::fleet::membership::Roster;
use crate::fleet::origin::Origin;
use crate::fleet::participant::{Orphan, Succession};
use crate::fleet::selector::Candidate;

/// [`Succession`] backed by this agent's roster and origin.
pub(super) struct Successor {
    me: String,
    roster: Arc<dyn Roster>,
    origin: Arc<Origin>,
}

impl Successor {
    pub(super) fn new(me: String, roster: Arc<dyn Roster>, origin: Arc<Origin>) -> Successor {
        Successor { me, roster, origin }
    }
}

impl Succession for Successor {
    fn member(&self, node: &str) -> Option<Candidate> {
        let m = self.roster.member(node)?;
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
        let roster = self.roster.clone();
        tokio::spawn(async move {
            let id = announcement.id.clone();
            let published = roster
                .publish(Box::new(move |me| me.announcement = Some(announcement)))
                .await;
            if let Err(e) = published {
                tracing::warn!(test = %id, "cannot announce the adopted test in gossip: {e}");
            }
        });
    }
}
