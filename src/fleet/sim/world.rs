//! The simulated membership: one truth of who runs and what each agent
//! publishes, and each agent's view of it ([`SimRoster`]), which learns of
//! a change only as gossip would: a published change after a gossip delay,
//! a death or a partition after the failure detector's delay.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::fleet::keys::MemberInfo;
use crate::fleet::membership::{Member, Roster, Update};
use crate::sync::lock;

/// How fast the simulated gossip carries news.
#[derive(Debug, Clone, Copy)]
pub struct Gossip {
    /// A published change reaches the other agents after this long.
    pub delay: Duration,
    /// A dead or cut-off agent is declared dead after this long.
    pub detect: Duration,
}

/// One agent as the truth knows it.
struct Entry {
    info: MemberInfo,
    /// What it published before its latest change, still what peers see
    /// until the change has gossiped.
    before: Option<MemberInfo>,
    changed: Instant,
    /// When it died (its process stopped), if it did.
    died: Option<Instant>,
}

/// Who runs and what each publishes; shared by every agent's roster.
pub struct World {
    gossip: Gossip,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Cut pairs (smaller id first) and since when.
    cuts: Mutex<BTreeMap<(String, String), Instant>>,
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

impl World {
    pub fn new(gossip: Gossip) -> Arc<World> {
        Arc::new(World {
            gossip,
            entries: Mutex::new(BTreeMap::new()),
            cuts: Mutex::new(BTreeMap::new()),
        })
    }

    /// An agent joins (or restarts with a new incarnation).
    pub fn join(&self, info: MemberInfo) {
        lock(&self.entries).insert(
            info.node_id.clone(),
            Entry {
                info,
                before: None,
                changed: Instant::now(),
                died: None,
            },
        );
    }

    /// An agent's process stops: peers declare it dead after `detect`.
    pub fn die(&self, node: &str) {
        if let Some(e) = lock(&self.entries).get_mut(node) {
            e.died.get_or_insert_with(Instant::now);
        }
    }

    /// Gossip between `a` and `b` stops (both ways).
    pub fn cut(&self, a: &str, b: &str) {
        lock(&self.cuts)
            .entry(pair(a, b))
            .or_insert_with(Instant::now);
    }

    pub fn heal(&self, a: &str, b: &str) {
        lock(&self.cuts).remove(&pair(a, b));
    }

    /// Whether `observer` sees `node` live now.
    fn sees(&self, observer: &str, node: &str, entry: &Entry, now: Instant) -> bool {
        if observer == node {
            return entry.died.is_none();
        }
        let detect = self.gossip.detect;
        if entry.died.is_some_and(|t| now >= t + detect) {
            return false;
        }
        lock(&self.cuts)
            .get(&pair(observer, node))
            .is_none_or(|t| now < *t + detect)
    }

    fn member(&self, observer: &str, entry: &Entry, now: Instant) -> Member {
        let info = match &entry.before {
            Some(before)
                if now < entry.changed + self.gossip.delay && observer != entry.info.node_id =>
            {
                before.clone()
            }
            _ => entry.info.clone(),
        };
        Member {
            node_id: info.node_id.clone(),
            generation: info.generation,
            gossip_addr: info.gossip_addr,
            is_self: observer == info.node_id,
            compatible: true,
            info: Ok(info),
        }
    }

    /// What `observer` sees: live members, sorted by node id.
    pub fn view(&self, observer: &str) -> Vec<Member> {
        let now = Instant::now();
        lock(&self.entries)
            .iter()
            .filter(|(id, e)| self.sees(observer, id, e, now))
            .map(|(_, e)| self.member(observer, e, now))
            .collect()
    }

    fn one(&self, observer: &str, node: &str) -> Option<Member> {
        let now = Instant::now();
        let entries = lock(&self.entries);
        let e = entries.get(node)?;
        self.sees(observer, node, e, now)
            .then(|| self.member(observer, e, now))
    }

    fn publish(&self, node: &str, update: Update) -> Result<(), String> {
        let mut entries = lock(&self.entries);
        let e = entries
            .get_mut(node)
            .ok_or_else(|| format!("{node} never joined"))?;
        if e.died.is_some() {
            return Err(format!("{node} is dead"));
        }
        let now = Instant::now();
        // A change on top of one still gossiping: peers jump to the newest.
        if now >= e.changed + self.gossip.delay {
            e.before = Some(e.info.clone());
        }
        update(&mut e.info);
        e.changed = now;
        Ok(())
    }

    fn info(&self, node: &str) -> Option<MemberInfo> {
        lock(&self.entries).get(node).map(|e| e.info.clone())
    }
}

/// One agent's [`Roster`] over the [`World`].
pub struct SimRoster {
    pub me: String,
    pub world: Arc<World>,
}

impl Roster for SimRoster {
    fn members(&self) -> BoxFuture<'_, Vec<Member>> {
        Box::pin(async move { self.world.view(&self.me) })
    }

    fn member(&self, node: &str) -> Option<Member> {
        self.world.one(&self.me, node)
    }

    fn publish(&self, update: Update) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.world.publish(&self.me, update) })
    }

    fn info(&self) -> BoxFuture<'_, MemberInfo> {
        Box::pin(async move {
            self.world.info(&self.me).unwrap_or_else(|| {
                let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
                MemberInfo::new(&self.me, 0, nowhere, nowhere, nowhere, 1.0)
            })
        })
    }

    fn live_incarnations(&self) -> BoxFuture<'_, Vec<(String, u64)>> {
        Box::pin(async move {
            self.world
                .view(&self.me)
                .into_iter()
                .map(|m| (m.node_id, m.generation))
                .collect()
        })
    }

    fn distrust<'a>(&'a self, _node_id: &'a str, _generation: u64) -> BoxFuture<'a, bool> {
        // Every simulated agent is who it says: nothing to leave out.
        Box::pin(async { false })
    }
}
