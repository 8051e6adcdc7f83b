//! A plan's `batch` step: its requests sent in parallel rounds, as a
//! script's `http.batch` is. The first round sends every request, each
//! later one the next redirect hop of those that got one, through the
//! VU's [`Lanes`](crate::engine::http::batch::Lanes) (`batch`,
//! `batchPerHost`). Each request keeps its own cookies, redirects, checks
//! and captures; every hop is recorded as a request of its own. Checks and
//! captures run once every request of the batch has its final response,
//! in the batch's order.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use super::exchange::{self, Buffers, Follow, Outcome};
use super::{Vu, Where};
use crate::engine::http::follow::Chain;
use crate::engine::http::{OutRequest, Response};
use crate::engine::program::Prepared;

/// One request of the batch while it is under way.
struct Item {
    chain: Option<Box<Chain>>,
    /// The first hop's headers with cookies, then each redirect hop's.
    hop_headers: Vec<(HeaderName, String)>,
    /// The first hop carries `hop_headers` (the jar had cookies for it).
    cookies: bool,
    response: Response,
    /// The hops' time so far: the request's timeout covers its whole
    /// redirect chain, as k6's does.
    spent: Duration,
}

impl Vu {
    pub(super) async fn batch(&mut self, ps: &[Arc<Prepared>], at: &Where<'_>) {
        let cx = at.context(self.id, &self.vars);
        let mut bufs: Vec<Option<Box<Buffers>>> = ps.iter().map(|_| None).collect();
        let sent: Vec<exchange::Rendered<'_>> = ps
            .iter()
            .zip(bufs.iter_mut())
            .map(|(p, b)| exchange::render(p, &cx, b))
            .collect();
        let mut items: Vec<Item> = sent
            .iter()
            .map(|s| {
                let mut hop_headers = Vec::new();
                let cookies =
                    exchange::with_cookies(&mut self.jar, s.headers, s.url, &mut hop_headers);
                Item {
                    chain: None,
                    hop_headers,
                    cookies,
                    response: Response::default(),
                    spent: Duration::ZERO,
                }
            })
            .collect();
        let follows: Vec<Follow<'_>> = ps
            .iter()
            .zip(&sent)
            .map(|(p, s)| Follow {
                request: &p.request,
                url: s.url,
                headers: s.headers,
                lag: at.lag,
                http: at.http,
            })
            .collect();
        let mut active: Vec<usize> = (0..ps.len()).collect();
        while !active.is_empty() {
            let reqs: Vec<OutRequest<'_>> = active
                .iter()
                .map(|&i| out_request(&ps[i], &sent[i], &items[i]))
                .collect();
            let responses = self.lanes.send_all(&mut self.client, &reqs).await;
            drop(reqs);
            let mut next = Vec::new();
            for (i, response) in active.into_iter().zip(responses) {
                let item = &mut items[i];
                item.response = response;
                item.spent = item.spent.saturating_add(item.response.timings.total());
                if exchange::follow_on(
                    &follows[i],
                    &mut item.chain,
                    &mut item.response,
                    &mut self.jar,
                    &mut self.sink,
                    &mut item.hop_headers,
                ) {
                    next.push(i);
                }
            }
            active = next;
        }
        for ((p, f), item) in ps.iter().zip(&follows).zip(&items) {
            let outcome = Outcome {
                sink: &mut self.sink,
                vars: &mut self.vars,
                jar: &mut self.jar,
                failed_check: &mut self.failed_check,
            };
            exchange::finish(p, f, &item.response, outcome);
        }
    }
}

/// The hop of `item` to send now: the first, or the chain's next.
fn out_request<'a>(
    p: &'a Prepared,
    sent: &exchange::Rendered<'a>,
    item: &'a Item,
) -> OutRequest<'a> {
    let r = &p.request;
    let (method, url, headers, body) = match &item.chain {
        None => (
            &r.method,
            sent.url,
            if item.cookies {
                item.hop_headers.as_slice()
            } else {
                sent.headers
            },
            sent.body,
        ),
        Some(c) => (
            &c.method,
            c.url.as_str(),
            item.hop_headers.as_slice(),
            if c.keep_body { sent.body } else { &[][..] },
        ),
    };
    OutRequest {
        method,
        url,
        headers,
        body,
        timeout: r.timeout.saturating_sub(item.spent),
        keep_body: p.keep_body,
        keep_headers: p.keep_headers,
    }
}
