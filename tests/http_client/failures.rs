//! Failures and their k6 error classes: resets, stalls, refusals,
//! non-HTTP peers, DNS and bad URLs.

use std::time::Duration;

use http::Method;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use volley::engine::http::{OutRequest, Response};
use volley::metrics::ErrorKind;

use super::servers::{RequestReader, Server};
use super::{client, get, request};

#[tokio::test]
async fn fresh_connection_closed_without_answer_is_reset() {
    let server = Server::raw(|mut stream, _| async move {
        let _ = RequestReader::default().next(&mut stream).await;
    })
    .await;
    let mut client = client();
    let out = get(&mut client, &server.url("/")).await;
    assert_eq!(out.error, Some(ErrorKind::Reset), "{:?}", out.failure);
    assert_eq!(out.status, 0);
    assert_eq!(server.accepts(), 1, "no retry on a new connection");
}

#[tokio::test]
async fn reset_or_close_mid_body_is_reset() {
    for hard_reset in [true, false] {
        let server = Server::raw(move |mut stream, _| async move {
            if RequestReader::default().next(&mut stream).await.is_some() {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a little")
                    .await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                if hard_reset {
                    let _ = stream.set_zero_linger();
                }
            }
        })
        .await;
        let mut client = client();
        let out = get(&mut client, &server.url("/")).await;
        assert_eq!(
            out.error,
            Some(ErrorKind::Reset),
            "hard_reset={hard_reset}: {:?}",
            out.failure
        );
        if !hard_reset {
            // After a reset the kernel may drop unread bytes, head included.
            assert_eq!(out.status, 200, "the head had arrived");
        }
    }
}

#[tokio::test]
async fn stalling_server_times_out() {
    let server = Server::raw(|mut stream, _| async move {
        let _ = RequestReader::default().next(&mut stream).await;
        // Never answers; keeps the connection until the client drops it.
        let _ = RequestReader::default().next(&mut stream).await;
    })
    .await;
    let mut client = client();
    let url = server.url("/");
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let mut out = Response::default();
    client
        .send(
            &OutRequest {
                timeout,
                ..request(&Method::GET, &url)
            },
            &mut out,
        )
        .await;
    let took = started.elapsed();
    assert_eq!(out.error, Some(ErrorKind::Timeout), "{:?}", out.failure);
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(1),
        "took {took:?}"
    );
    assert!(out.timings.waiting >= timeout / 2, "{:?}", out.timings);
    let t = out.timings;
    assert!(t.blocked + t.sending + t.waiting + t.receiving <= took);
    // The timed-out connection was dropped: the next request dials anew.
    let mut next = Response::default();
    client
        .send(
            &OutRequest {
                timeout,
                ..request(&Method::GET, &url)
            },
            &mut next,
        )
        .await;
    assert!(!next.reused);
    assert_eq!(server.accepts(), 2);
}

#[tokio::test]
async fn refused_port_is_connect_refused() {
    // Bound, never listening: refused for the whole test, and no other test can take the port.
    let held = tokio::net::TcpSocket::new_v4().expect("socket");
    held.bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let addr = held.local_addr().expect("addr");
    let out = get(&mut client(), &format!("http://{addr}/")).await;
    assert_eq!(
        out.error,
        Some(ErrorKind::ConnectRefused),
        "{:?}",
        out.failure
    );
    assert!(out.failure.unwrap().to_string().contains(&addr.to_string()));
}

#[tokio::test]
async fn non_http_peer_is_protocol_error() {
    let server = Server::raw(|mut stream, _| async move {
        let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        let _ = RequestReader::default().next(&mut stream).await;
    })
    .await;
    let out = get(&mut client(), &server.url("/")).await;
    assert_eq!(out.error, Some(ErrorKind::Protocol), "{:?}", out.failure);
}

#[tokio::test]
async fn extra_bytes_after_a_response_are_a_protocol_error() {
    let server = Server::keep_alive(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA").await;
    let out = get(&mut client(), &server.url("/")).await;
    assert_eq!(out.error, Some(ErrorKind::Protocol), "{:?}", out.failure);
}

#[tokio::test]
async fn unresolvable_host_is_dns_error() {
    let out = get(&mut client(), "http://nonexistent.invalid/").await;
    assert_eq!(out.error, Some(ErrorKind::Dns), "{:?}", out.failure);
}

#[tokio::test]
async fn bad_urls_are_invalid_url() {
    let mut client = client();
    for url in [
        "ftp://example.com/",
        "example.com",
        "http://exa mple/",
        "http://h:99999/",
    ] {
        let out = get(&mut client, url).await;
        assert_eq!(out.error, Some(ErrorKind::InvalidUrl), "{url}");
        assert!(
            out.failure.unwrap().to_string().contains("expected"),
            "{url}"
        );
    }
}
