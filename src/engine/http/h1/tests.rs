//! Request-head building and response-head framing decisions.

use std::time::Duration;

use http::HeaderName;

use super::head::{Framing, Head, MAX_HEADERS, parse_content_length};
use super::*;

fn opts() -> HttpOptions {
    HttpOptions {
        discard_response_bodies: false,
        insecure_skip_tls_verify: false,
        user_agent: "volley/test".into(),
        no_connection_reuse: false,
        http2_prior_knowledge: false,
        timeout: Duration::from_secs(5),
        max_redirects: 10,
        no_cookies_reset: false,
        expected_statuses: vec![(200, 399)],
        http_debug: None,
        hosts: Vec::new(),
        batch: crate::plan::DEFAULT_BATCH,
        batch_per_host: crate::plan::DEFAULT_BATCH_PER_HOST,
    }
}

fn target(url: &str) -> Target {
    let mut t = Target::default();
    t.parse_into(url).unwrap();
    t
}

fn request<'a>(
    method: &'a Method,
    headers: &'a [(HeaderName, String)],
    body: &'a [u8],
) -> OutRequest<'a> {
    OutRequest {
        method,
        url: "unused",
        headers,
        body,
        timeout: Duration::from_secs(1),
        keep_body: true,
        keep_headers: true,
    }
}

fn head_text(req: &OutRequest<'_>, url: &str, opts: &HttpOptions) -> (String, RequestShape) {
    let mut head = Vec::new();
    let shape = build_head(&mut head, req, &target(url), opts).unwrap();
    (String::from_utf8(head).unwrap(), shape)
}

#[test]
fn minimal_get() {
    let (text, shape) = head_text(
        &request(&Method::GET, &[], b""),
        "http://h.test:8080/p?q=1",
        &opts(),
    );
    assert_eq!(
        text,
        "GET /p?q=1 HTTP/1.1\r\nHost: h.test:8080\r\nUser-Agent: volley/test\r\n\r\n"
    );
    assert!(!shape.close);
    assert!(shape.body_inline);
}

#[test]
fn user_headers_win_and_are_canonical() {
    let headers = vec![
        (header::HOST, "other.test".to_string()),
        (header::USER_AGENT, "mine".to_string()),
        (HeaderName::from_static("x-request-id"), "7".to_string()),
        (header::CONTENT_LENGTH, "999".to_string()),
        (header::TRANSFER_ENCODING, "chunked".to_string()),
    ];
    let (text, _) = head_text(
        &request(&Method::POST, &headers, b"abc"),
        "http://h.test/",
        &opts(),
    );
    assert_eq!(
        text,
        "POST / HTTP/1.1\r\nHost: other.test\r\nUser-Agent: mine\r\nX-Request-Id: 7\r\nContent-Length: 3\r\n\r\nabc"
    );
}

#[test]
fn empty_post_gets_zero_length_and_get_none() {
    let (post, _) = head_text(&request(&Method::POST, &[], b""), "http://h/", &opts());
    assert!(post.contains("Content-Length: 0\r\n"), "{post}");
    let (delete, _) = head_text(&request(&Method::DELETE, &[], b""), "http://h/", &opts());
    assert!(!delete.contains("Content-Length"), "{delete}");
}

#[test]
fn no_reuse_and_user_close_mark_the_request() {
    let mut no_reuse = opts();
    no_reuse.no_connection_reuse = true;
    let (text, shape) = head_text(&request(&Method::GET, &[], b""), "http://h/", &no_reuse);
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(shape.close);
    let headers = vec![(header::CONNECTION, "Keep-Alive, Close".to_string())];
    let (text, shape) = head_text(&request(&Method::GET, &headers, b""), "http://h/", &opts());
    assert!(shape.close);
    assert_eq!(text.matches("Connection").count(), 1, "{text}");
}

#[test]
fn credentials_and_empty_agent() {
    let mut no_agent = opts();
    no_agent.user_agent.clear();
    let (text, _) = head_text(&request(&Method::GET, &[], b""), "http://u:p@h/", &no_agent);
    assert_eq!(
        text,
        "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dTpw\r\n\r\n"
    );
}

#[test]
fn large_bodies_are_written_separately() {
    let body = vec![b'x'; INLINE_BODY + 1];
    let mut head = Vec::new();
    let shape = build_head(
        &mut head,
        &request(&Method::PUT, &[], &body),
        &target("http://h/"),
        &opts(),
    )
    .unwrap();
    assert!(!shape.body_inline);
    assert!(head.ends_with(b"\r\n\r\n"));
}

#[test]
fn header_injection_is_refused() {
    let headers = vec![(HeaderName::from_static("x-a"), "1\r\nX-Evil: 2".to_string())];
    let mut head = Vec::new();
    let err = build_head(
        &mut head,
        &request(&Method::GET, &headers, b""),
        &target("http://h/"),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), crate::metrics::ErrorKind::InvalidUrl);
    assert!(err.to_string().contains("x-a"), "{err}");
}

fn parse(bytes: &[u8], is_head: bool) -> Result<Option<Head>, ProtocolViolation> {
    let mut out = Response::default();
    parse_head(bytes, is_head, true, &mut out)
}

fn complete(bytes: &[u8]) -> Head {
    parse(bytes, false).unwrap().unwrap()
}

#[test]
fn framing_by_length_chunked_and_close() {
    let h = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
    assert!(matches!(h.framing, Framing::Length(12)));
    assert!(h.keep_alive);
    let h = complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert!(matches!(h.framing, Framing::Chunked(_)));
    assert!(h.keep_alive);
    let h = complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    assert!(matches!(h.framing, Framing::UntilClose));
    assert!(!h.keep_alive);
    let h = complete(b"HTTP/1.1 200 OK\r\n\r\n");
    assert!(matches!(h.framing, Framing::UntilClose));
    assert!(!h.keep_alive);
    let h = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(h.framing, Framing::Empty));
    let both =
        complete(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(matches!(both.framing, Framing::Chunked(_)));
    assert!(
        !both.keep_alive,
        "a message with both is not trusted for reuse"
    );
}

#[test]
fn no_body_statuses_and_head() {
    for status in ["204 No Content", "304 Not Modified", "100 Continue"] {
        let text = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
        let h = complete(text.as_bytes());
        assert!(matches!(h.framing, Framing::Empty), "{status}");
    }
    let h = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true)
        .unwrap()
        .unwrap();
    assert!(matches!(h.framing, Framing::Empty));
    assert!(h.keep_alive);
}

#[test]
fn connection_persistence() {
    assert!(
        !complete(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
    );
    assert!(!complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
    let h10 = complete(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
    assert!(h10.keep_alive);
    assert_eq!(h10.version, http::Version::HTTP_10);
}

#[test]
fn headers_are_copied_only_when_final_and_asked() {
    let mut out = Response::default();
    let bytes = b"HTTP/1.1 200 OK\r\nX-One: 1\r\nContent-Length: 0\r\n\r\n";
    parse_head(bytes, false, false, &mut out).unwrap().unwrap();
    assert!(out.headers.is_empty());
    parse_head(
        b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n",
        false,
        true,
        &mut out,
    )
    .unwrap()
    .unwrap();
    assert!(out.headers.is_empty());
    let head = parse_head(bytes, false, true, &mut out).unwrap().unwrap();
    assert_eq!(head.len, bytes.len());
    assert_eq!(out.header("x-one"), Some("1"));
    assert_eq!(out.header("content-length"), Some("0"));
}

#[test]
fn partial_and_broken_heads() {
    assert!(
        parse(b"HTTP/1.1 200 OK\r\nContent-Len", false)
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        parse(b"SSH-2.0-OpenSSH_9.6\r\n", false),
        Err(ProtocolViolation::Head(_))
    ));
    assert!(matches!(
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false),
        Err(ProtocolViolation::ContentLength { .. })
    ));
    assert!(matches!(
        parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        ),
        Err(ProtocolViolation::ConflictingContentLength {
            first: 1,
            second: 2
        })
    ));
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend(format!("X-{i}: v\r\n").bytes());
    }
    many.extend(b"\r\n");
    assert!(matches!(
        parse(&many, false),
        Err(ProtocolViolation::Head(httparse::Error::TooManyHeaders))
    ));
}

#[test]
fn content_length_values() {
    assert_eq!(parse_content_length(b"0").unwrap(), 0);
    assert_eq!(parse_content_length(b" 42 ").unwrap(), 42);
    assert_eq!(parse_content_length(b"7, 7").unwrap(), 7);
    assert!(parse_content_length(b"18446744073709551615").is_err());
    assert_eq!(
        parse_content_length(b"9999999999999999999").unwrap(),
        9_999_999_999_999_999_999
    );
    for bad in [&b""[..], b"-1", b"+1", b"1.0", b"7, 8", b"0x10"] {
        assert!(
            parse_content_length(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn tokens_in_lists() {
    assert!(has_token(b"keep-alive, close", b"close"));
    assert!(has_token(b"CLOSE", b"close"));
    assert!(!has_token(b"closed", b"close"));
}
