//! [`Roster`]: what test coordination reads of and writes to membership,
//! and nothing more. [`Membership`] (chitchat) is the real one; the fleet
//! simulator gives each simulated agent a view of its own.

use futures::future::BoxFuture;

use super::{Member, Membership};
use crate::fleet::keys::MemberInfo;

/// A change to what this agent publishes (its state, test, announcement).
pub type Update = Box<dyn FnOnce(&mut MemberInfo) + Send>;

/// The membership view test coordination works with.
pub trait Roster: Send + Sync + 'static {
    /// Live members, self included, one per node id (the newest
    /// incarnation), sorted by node id: read fresh.
    fn members(&self) -> BoxFuture<'_, Vec<Member>>;

    /// The live member `node` as the view last showed it, without waiting
    /// (what liveness checks and succession read every tick).
    fn member(&self, node: &str) -> Option<Member>;

    /// Applies `update` to what this agent publishes; an update peers would
    /// refuse is refused and nothing is published.
    fn publish(&self, update: Update) -> BoxFuture<'_, Result<(), String>>;

    /// What this agent publishes now.
    fn info(&self) -> BoxFuture<'_, MemberInfo>;

    /// Every live incarnation (node id, generation), distrusted ones too.
    fn live_incarnations(&self) -> BoxFuture<'_, Vec<(String, u64)>>;

    /// Leaves an incarnation out of the view from now on (it proved to be
    /// someone else over QUIC); whether it was new.
    fn distrust<'a>(&'a self, node_id: &'a str, generation: u64) -> BoxFuture<'a, bool>;
}

impl Roster for Membership {
    fn members(&self) -> BoxFuture<'_, Vec<Member>> {
        Box::pin(Membership::members(self))
    }

    fn member(&self, node: &str) -> Option<Member> {
        self.watch()
            .borrow()
            .iter()
            .find(|m| m.node_id == node)
            .cloned()
    }

    fn publish(&self, update: Update) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            Membership::publish(self, update)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn info(&self) -> BoxFuture<'_, MemberInfo> {
        Box::pin(Membership::info(self))
    }

    fn live_incarnations(&self) -> BoxFuture<'_, Vec<(String, u64)>> {
        Box::pin(Membership::live_incarnations(self))
    }

    fn distrust<'a>(&'a self, node_id: &'a str, generation: u64) -> BoxFuture<'a, bool> {
        Box::pin(Membership::distrust(self, node_id, generation))
    }
}
