//! Several requests of one VU in parallel, as k6's `http.batch` sends
//! them: at most `batch` at once (k6: 20) and `batchPerHost` to one host
//! (k6: 6; 0 lifts that limit). Both a script's `http.batch` and a plan's
//! `batch` step send their rounds here.
//!
//! The requests are split into lanes ([`plan_lanes`]) that run side by
//! side, each one request after another on a client of its own (k6 opens
//! several connections per host for a batch). The extra clients are kept
//! between batches ([`Lanes`]) so that their connections are reused.

use super::{OutRequest, Response, VuClient};

/// The extra clients a VU's batches run on, besides the VU's own.
#[derive(Default)]
pub struct Lanes {
    extra: Vec<VuClient>,
}

impl Lanes {
    /// Sends `reqs` in parallel within the client's `batch` and
    /// `batchPerHost` options; the responses in `reqs`' order.
    pub async fn send_all(
        &mut self,
        client: &mut VuClient,
        reqs: &[OutRequest<'_>],
    ) -> Vec<Response> {
        let opts = client.config().options();
        let (max, per_host) = (limit(opts.batch), limit(opts.batch_per_host));
        let lanes = plan_lanes(reqs.iter().map(|r| host_of(r.url)), max, per_host);
        while self.extra.len() + 1 < lanes.len() {
            self.extra.push(client.sibling());
        }
        let clients = std::iter::once(client).chain(self.extra.iter_mut());
        let runs = clients.zip(lanes).map(|(c, lane)| async move {
            let mut done = Vec::with_capacity(lane.len());
            for i in lane {
                let mut r = Response::default();
                c.send(&reqs[i], &mut r).await;
                done.push((i, r));
            }
            done
        });
        let mut out: Vec<Response> = reqs.iter().map(|_| Response::default()).collect();
        for (i, r) in futures::future::join_all(runs).await.into_iter().flatten() {
            out[i] = r;
        }
        out
    }

    /// Frees the extra clients' read buffers (their connections stay).
    pub fn release_buffers(&mut self) {
        for c in &mut self.extra {
            c.release_buffers();
        }
    }

    /// Drops the extra clients' connections.
    pub fn close_all(&mut self) {
        for c in &mut self.extra {
            c.close_all();
        }
    }
}

/// An option's limit; 0 is none.
fn limit(n: u32) -> usize {
    match n {
        0 => usize::MAX,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

/// `scheme://host:port` of a URL, the unit `batchPerHost` counts.
pub fn host_of(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    &url[..end]
}

/// Splits requests (by their host keys, in order) into lanes that run
/// in parallel, each one after another: up to `per_host` lanes per host,
/// `max` lanes in all.
pub fn plan_lanes<'a>(
    hosts: impl Iterator<Item = &'a str>,
    max: usize,
    per_host: usize,
) -> Vec<Vec<usize>> {
    let mut by_host: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, h) in hosts.enumerate() {
        match by_host.iter_mut().find(|(k, _)| *k == h) {
            Some((_, v)) => v.push(i),
            None => by_host.push((h, vec![i])),
        }
    }
    let mut lanes: Vec<Vec<usize>> = Vec::new();
    for (_, reqs) in by_host {
        let n = reqs.len().min(per_host.max(1));
        let first = lanes.len();
        lanes.extend((0..n).map(|_| Vec::new()));
        for (j, r) in reqs.into_iter().enumerate() {
            lanes[first + j % n].push(r);
        }
    }
    let max = max.max(1);
    while lanes.len() > max {
        let last = lanes.pop().unwrap_or_default();
        let k = lanes.len() % max;
        lanes[k].extend(last);
    }
    for lane in &mut lanes {
        lane.sort_unstable();
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_spread_over_hosts_within_the_limits() {
        let urls = [
            "http://a.test/1",
            "http://a.test/2",
            "http://b.test:81/x",
            "http://a.test/3",
        ];
        let lanes = plan_lanes(urls.iter().map(|u| host_of(u)), 20, 2);
        assert_eq!(lanes, vec![vec![0, 3], vec![1], vec![2]]);
        let many: Vec<String> = (0..30).map(|i| format!("http://h{i}.test/")).collect();
        let lanes = plan_lanes(many.iter().map(|u| host_of(u)), 20, 6);
        assert_eq!(lanes.len(), 20);
        let mut all: Vec<usize> = lanes.concat();
        all.sort_unstable();
        assert_eq!(all, (0..30).collect::<Vec<_>>());
        let same: Vec<&str> = vec!["http://a.test/"; 10];
        assert_eq!(
            plan_lanes(same.iter().copied().map(host_of), 20, 6).len(),
            6
        );
        assert_eq!(host_of("https://x.test:8443/p?q"), "https://x.test:8443");
    }

    #[test]
    fn zero_per_host_is_no_limit_and_one_at_once_is_sequential() {
        let same: Vec<&str> = vec!["http://a.test/"; 10];
        let lanes = plan_lanes(same.iter().copied().map(host_of), limit(20), limit(0));
        assert_eq!(lanes.len(), 10, "every request in a lane of its own");
        let lanes = plan_lanes(same.iter().copied().map(host_of), limit(1), limit(6));
        assert_eq!(lanes, vec![(0..10).collect::<Vec<_>>()]);
    }
}
