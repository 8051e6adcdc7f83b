//! Request phases against ground truth: a server that waits known times
//! before the response head, between head and body, between the chunks of
//! a body, and before reading an upload (`tests/common/phased.rs`), over
//! TCP and TLS, HTTP/1.1 and HTTP/2, and Volley's client measuring it.
//!
//! What k6 means by each phase (`lib/netext/httpext/tracer.go`): `blocked`
//! until the connection is there (DNS, connect and TLS of a new one
//! included), `connecting` and `tls_handshaking` only on a new connection,
//! `sending` until the last request byte is written, `waiting` until the
//! first response byte, `receiving` until the last.
//!
//! Every request must satisfy the lower bounds exactly (the server's waits
//! are never early, so a `waiting` shorter than the wait before the head
//! means time was given to the wrong phase) and the phases must add up to
//! the request's time with nothing lost between them. Upper bounds are
//! checked on the best of a few requests, with room for a loaded two-core
//! machine ([`SLACK`], smaller than every injected wait after the head, so
//! that a wait charged to the wrong phase cannot pass).

#[path = "common/phased.rs"]
mod phased;

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tokio::time::Instant;
use volley::engine::http::{HttpClientConfig, OutRequest, Response, VuClient};
use volley::metrics::Timings;
use volley::plan::HttpOptions;

use phased::{CHUNK, Delays, PhasedServer, Proto};

/// How far above an injected wait a phase may be (on the best request).
const SLACK: Duration = Duration::from_millis(15);
/// More room for each further wait in the same phase (the chunks of a
/// body): every wake-up of a busy server may come late.
const SLACK_PER_WAIT: Duration = Duration::from_millis(10);
/// Requests per case: the first on a new connection, the rest reused.
const ROUNDS: usize = 5;
/// An upload larger than the socket buffers and HTTP/2 windows together,
/// so it cannot be written before the server reads it.
const UPLOAD: usize = 16 * 1024 * 1024;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn client(proto: Proto) -> VuClient {
    let opts = HttpOptions {
        insecure_skip_tls_verify: true,
        http2_prior_knowledge: proto == Proto::H2c,
        timeout: Duration::from_secs(20),
        ..HttpOptions::default()
    };
    let config = HttpClientConfig::new(&opts).expect("test HTTP options are valid");
    VuClient::new(Arc::new(config))
}

fn request<'a>(method: &'a Method, url: &'a str, body: &'a [u8]) -> OutRequest<'a> {
    OutRequest {
        method,
        url,
        headers: &[],
        body,
        timeout: Duration::from_secs(20),
        keep_body: true,
        keep_headers: false,
    }
}

/// One request; checks what every request must satisfy and returns its
/// timings.
async fn measured(
    client: &mut VuClient,
    proto: Proto,
    req: &OutRequest<'_>,
    delays: &Delays,
    first: bool,
) -> Timings {
    let mut out = Response::default();
    let before = Instant::now();
    client.send(req, &mut out).await;
    let outer = before.elapsed();
    let case = format!("{proto:?} {delays:?} (first: {first})");
    assert_eq!(out.error, None, "{case}: {:?}", out.failure);
    assert_eq!(out.status, 200, "{case}");
    let expected_version = if proto.h2() {
        http::Version::HTTP_2
    } else {
        http::Version::HTTP_11
    };
    assert_eq!(out.http_version, expected_version, "{case}");
    assert_eq!(
        out.body,
        CHUNK.repeat(delays.chunks.max(1) as usize),
        "{case}: body"
    );
    let t = out.timings;
    // Nothing is lost between phases, and nothing is counted twice.
    assert_eq!(t.blocked + t.duration(), out.elapsed, "{case}: {t:?}");
    assert!(
        out.elapsed <= outer,
        "{case}: {:?} > {outer:?}",
        out.elapsed
    );
    assert_eq!(t.duration(), t.sending + t.waiting + t.receiving);
    // The server's waits are never early, so from the start of sending
    // to the first byte covers the wait before the head. The end of
    // sending can be seen late (on a busy machine the request is on the
    // wire before the client's task notes it), which moves time from
    // `waiting` to `sending`, never the other way; likewise a first byte
    // seen late moves time from `receiving` to `waiting`.
    assert!(
        t.sending + t.waiting >= delays.head,
        "{case}: waiting {t:?}"
    );
    assert!(
        t.sending + t.waiting + t.receiving >= delays.head + delays.receiving(),
        "{case}: receiving {t:?}"
    );
    assert_eq!(out.reused, !first, "{case}");
    if first {
        assert!(t.connecting > Duration::ZERO, "{case}: {t:?}");
        assert_eq!(
            t.tls_handshaking > Duration::ZERO,
            proto.tls(),
            "{case}: {t:?}"
        );
        assert!(
            t.blocked >= t.connecting + t.tls_handshaking,
            "{case}: blocked includes the dial: {t:?}"
        );
    } else {
        assert_eq!(t.connecting, Duration::ZERO, "{case}: {t:?}");
        assert_eq!(t.tls_handshaking, Duration::ZERO, "{case}: {t:?}");
    }
    t
}

/// [`ROUNDS`] GETs asking for `delays` on one connection.
async fn phases_match(proto: Proto, delays: Delays) {
    let server = PhasedServer::start(proto);
    let mut client = client(proto);
    let url = server.url(&delays);
    let mut seen = Vec::new();
    for round in 0..ROUNDS {
        let req = request(&Method::GET, &url, b"");
        seen.push(measured(&mut client, proto, &req, &delays, round == 0).await);
    }
    let best = |phase: fn(&Timings) -> Duration| {
        seen.iter().map(phase).min().expect("invariant: ROUNDS > 0")
    };
    let case = format!("{proto:?} {delays:?}: {seen:#?}");
    assert!(best(|t| t.waiting) <= delays.head + SLACK, "{case}");
    let body_waits = delays.chunks.max(1);
    assert!(
        best(|t| t.receiving) <= delays.receiving() + SLACK + SLACK_PER_WAIT * (body_waits - 1),
        "{case}"
    );
    assert!(best(|t| t.sending) <= SLACK, "{case}");
    assert!(best(|t| t.blocked) <= SLACK, "{case}");
    assert_eq!(server.accepts(), 1, "one connection, reused");
}

/// Waits before the head and before a `Content-Length` body.
fn plain_body() -> Delays {
    Delays {
        head: ms(30),
        body: ms(20),
        ..Delays::default()
    }
}

/// Waits before the head, before the first chunk and between chunks.
fn chunked_body() -> Delays {
    Delays {
        head: ms(25),
        body: ms(10),
        chunks: 3,
        gap: ms(10),
        ..Delays::default()
    }
}

#[tokio::test]
async fn h1_phases_over_tcp() {
    phases_match(Proto::H1, plain_body()).await;
    phases_match(Proto::H1, chunked_body()).await;
}

#[tokio::test]
async fn h1_phases_over_tls() {
    phases_match(Proto::H1Tls, plain_body()).await;
    phases_match(Proto::H1Tls, chunked_body()).await;
}

#[tokio::test]
async fn h2_phases_over_tls() {
    phases_match(Proto::H2Tls, plain_body()).await;
    phases_match(Proto::H2Tls, chunked_body()).await;
}

#[tokio::test]
async fn h2c_phases() {
    phases_match(Proto::H2c, plain_body()).await;
    phases_match(Proto::H2c, chunked_body()).await;
}

/// The response head in the same read as the whole body: `receiving` is
/// then the time of that read only, and `waiting` still covers the wait.
#[tokio::test]
async fn a_response_in_one_read() {
    for proto in [Proto::H1, Proto::H2c] {
        phases_match(
            proto,
            Delays {
                head: ms(20),
                ..Delays::default()
            },
        )
        .await;
    }
}

/// An upload the server reads only after `drain`: the client's writes
/// block until then, and that time is `sending`, not `waiting`.
async fn upload_is_sending(proto: Proto) {
    let delays = Delays {
        head: ms(5),
        drain: ms(60),
        ..Delays::default()
    };
    let server = PhasedServer::start(proto);
    let mut client = client(proto);
    let url = server.url(&delays);
    let body = vec![b'x'; UPLOAD];
    for round in 0..2 {
        let req = request(&Method::POST, &url, &body);
        let t = measured(&mut client, proto, &req, &delays, round == 0).await;
        assert!(
            t.sending >= delays.drain,
            "{proto:?}: the blocked upload is sending: {t:?}"
        );
    }
}

#[tokio::test]
async fn h1_upload_is_sending() {
    upload_is_sending(Proto::H1).await;
    upload_is_sending(Proto::H1Tls).await;
}

#[tokio::test]
async fn h2_upload_is_sending() {
    upload_is_sending(Proto::H2c).await;
    upload_is_sending(Proto::H2Tls).await;
}
