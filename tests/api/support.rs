//! Helpers for the API tests: start a server with the fake agent on
//! `127.0.0.1:0`, send exact requests (hyper `conn` or raw bytes), and a
//! strict parser of the Prometheus text format.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use volley::api::{ApiConfig, ApiServerError, SecretToken};

use crate::fake::FakeAgent;

/// The token the test servers are configured with.
pub(crate) const TOKEN: &str = "test-token-5f2a9c0e77";

/// Upper bound on anything a test waits for; generous for a loaded box.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// An API server with a fake agent, running in a task.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) agent: Arc<FakeAgent>,
    shutdown_tx: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ApiServerError>>,
}

/// A fully read response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A configuration requiring [`TOKEN`].
pub(crate) fn config() -> ApiConfig {
    ApiConfig {
        token: Some(SecretToken::new(TOKEN).expect("valid token")),
        ..ApiConfig::default()
    }
}

pub(crate) async fn start() -> Server {
    start_with(config()).await
}

pub(crate) async fn start_with(config: ApiConfig) -> Server {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let agent = FakeAgent::new();
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(volley::api::serve(
        listener,
        Arc::clone(&agent) as Arc<dyn volley::api::Agent>,
        config,
        async {
            let _ = shutdown_rx.await;
        },
    ));
    Server {
        addr,
        agent,
        shutdown_tx,
        task,
    }
}

impl Server {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and returns what `serve` returned.
    pub(crate) async fn stop(self) -> Result<(), ApiServerError> {
        let _ = self.shutdown_tx.send(());
        timeout(PATIENCE, self.task)
            .await
            .expect("server stops in time")
            .expect("server task did not panic")
    }
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("UTF-8 body")
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
            .unwrap_or("")
    }

    /// `error.code` and `error.message` of an error answer, checking the
    /// shape on the way.
    pub(crate) fn error(&self) -> (String, String) {
        assert_eq!(self.header("content-type"), "application/json", "{self:?}");
        let json = self.json();
        let code = json["error"]["code"].as_str().expect("error.code");
        let message = json["error"]["message"].as_str().expect("error.message");
        (code.to_owned(), message.to_owned())
    }
}

/// Sends one request on a fresh HTTP/1.1 connection.
pub(crate) async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let exchange = async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).expect("valid request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    };
    timeout(PATIENCE, exchange).await.expect("answer in time")
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, Method::GET, path, &[], Bytes::new()).await
}

/// `Authorization` header value with the right token.
pub(crate) fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// Writes `request` as is and reads the answer until the server closes the
/// connection. Returns the answer text.
pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(request).await.expect("write request");
        let mut answer = Vec::new();
        // The server may close while unread request bytes remain, which
        // surfaces as a reset after the answer: keep what arrived.
        let _ = tcp.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    timeout(PATIENCE, exchange).await.expect("answer in time")
}

/// One sample line of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PromSample {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

/// Parses Prometheus text exposition 0.0.4 strictly: every line is `# HELP
/// name text`, `# TYPE name kind`, or `name{label="value",...} value`; each
/// family's HELP and TYPE come once, before its samples, and its samples
/// are contiguous; a histogram's samples are `_bucket` (with `le`), `_sum`
/// and `_count`.
pub(crate) fn parse_prometheus(text: &str) -> Result<Vec<PromSample>, String> {
    let mut helped = Vec::<String>::new();
    let mut typed = Vec::<String>::new();
    let mut histograms = Vec::<String>::new();
    let mut samples = Vec::new();
    let mut current: Option<String> = None;
    if !text.ends_with('\n') {
        return Err("the text does not end with a line feed".into());
    }
    for (number, line) in text.lines().enumerate() {
        let at = |what: &str| format!("line {}: {what}: {line:?}", number + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest
                .split_once(' ')
                .ok_or_else(|| at("HELP without text"))?;
            check_name(name).map_err(|e| at(&e))?;
            if helped.iter().any(|n| n == name) {
                return Err(at("second HELP"));
            }
            helped.push(name.to_owned());
            current = Some(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| at("TYPE without kind"))?;
            check_name(name).map_err(|e| at(&e))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at("unknown TYPE"));
            }
            if typed.iter().any(|n| n == name) {
                return Err(at("second TYPE"));
            }
            if current.as_deref() != Some(name) {
                return Err(at("TYPE not right after its HELP"));
            }
            typed.push(name.to_owned());
            if kind == "histogram" {
                histograms.push(name.to_owned());
            }
        } else if line.starts_with('#') || line.is_empty() {
            return Err(at("unexpected comment or blank line"));
        } else {
            let sample = parse_sample(line).map_err(|e| at(&e))?;
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| sample.name.strip_suffix(s))
                .find(|f| histograms.iter().any(|h| h == f))
                .map_or(sample.name.as_str(), |f| f);
            if family != sample.name
                && sample.name.ends_with("_bucket")
                && !sample.labels.iter().any(|(k, _)| k == "le")
            {
                return Err(at("histogram bucket without le"));
            }
            if !helped.iter().any(|n| n == family) || !typed.iter().any(|n| n == family) {
                return Err(at("sample before its HELP and TYPE"));
            }
            if current.as_deref() != Some(family) {
                return Err(at("sample outside its family's block"));
            }
            samples.push(sample);
        }
    }
    Ok(samples)
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn parse_sample(line: &str) -> Result<PromSample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or("no value after the metric name")?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut s = inner;
        loop {
            let eq = s.find('=').ok_or("label without =")?;
            let label = &s[..eq];
            if !label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(format!("bad label name {label:?}"));
            }
            s = s[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value does not start with a quote")?;
            let mut value = String::new();
            let mut chars = s.char_indices();
            let close = loop {
                match chars.next().ok_or("unterminated label value")? {
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        other => return Err(format!("bad escape \\{other}")),
                    },
                    (i, '"') => break i,
                    (_, '\n') => return Err("raw line feed in a label value".into()),
                    (_, c) => value.push(c),
                }
            };
            labels.push((label.to_owned(), value));
            s = &s[close + 1..];
            if let Some(next) = s.strip_prefix(',') {
                s = next;
            } else if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            } else {
                return Err("unexpected text after a label value".into());
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or("no single space before the value")?;
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number
            if !number.is_empty()
                && number
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+')) =>
        {
            number
                .parse::<f64>()
                .map_err(|e| format!("bad value {number:?}: {e}"))?
        }
        other => return Err(format!("bad value {other:?}")),
    };
    Ok(PromSample {
        name: name.to_owned(),
        labels,
        value,
    })
}

#[test]
fn the_prometheus_parser_rejects_what_it_should() {
    let good = "# HELP a_b x\n# TYPE a_b gauge\na_b{l=\"q\\\"\\\\\\n\",m=\"\"} 1.5\na_b NaN\n";
    let samples = parse_prometheus(good).expect("valid text");
    assert_eq!(samples[0].labels[0].1, "q\"\\\n");
    assert_eq!(samples.len(), 2);
    for bad in [
        "a 1\n",
        "# HELP a x\n# TYPE a gauge\na 1",
        "# HELP a x\n# TYPE a gauge\na{l=\"x} 1\n",
        "# HELP a x\n# TYPE a gauge\na{l=x} 1\n",
        "# HELP a x\n# TYPE a gauge\na  1\n",
        "# HELP a x\n# TYPE a gauge\na inf\n",
        "# HELP a x\n# TYPE a gauge\na{l=\"\\t\"} 1\n",
        "# HELP a x\n# TYPE a thing\na 1\n",
        "# HELP a x\n# TYPE a gauge\n# HELP b y\n# TYPE b gauge\na 1\n",
        "# HELP 1a x\n# TYPE 1a gauge\n",
    ] {
        assert!(parse_prometheus(bad).is_err(), "accepted {bad:?}");
    }
}
