//! Real metric backends started by a test on free loopback ports with
//! temporary data directories: InfluxDB 1.x (Debian's `influxd`) and
//! Prometheus (Debian's `prometheus`, with its remote-write receiver), both
//! installed by `scripts/test`, both killed when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A free loopback port (the listener is closed again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// An `influxd` of this test's own, killed when dropped.
pub struct Influx {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Influx {
    pub fn start() -> Influx {
        Influx::start_with("")
    }

    /// With `http_extra` added to the `[http]` section.
    pub fn start_with(http_extra: &str) -> Influx {
        let influxd = ["/usr/bin/influxd", "/usr/sbin/influxd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("influxd");
        // A port taken between choosing it and binding it (by another test's server, all
        // tests of a binary run at once): influxd exits, and another pair is tried.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let (http, rpc) = (free_port(), free_port());
            let d = dir.path().display();
            let config = format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n{http_extra}\n\
                 [monitor]\n  store-enabled = false\n"
            );
            let path = dir.path().join("influxdb.conf");
            std::fs::write(&path, config).expect("config written");
            let child = Command::new(influxd)
                .arg("-config")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("influxd starts (scripts/test installs Debian's influxdb)");
            let mut influx = Influx {
                child,
                port: http,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if influx.get("/ping").is_some_and(|(s, _)| s == 204) {
                    return influx;
                }
                if let Ok(Some(_)) = influx.child.try_wait() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "influxd did not answer /ping on port {http} within 30 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            // It exited (a port was taken): the next try has fresh ports and a fresh directory.
            drop(influx);
        }
        panic!("influxd did not start on any of three pairs of free ports");
    }

    pub fn url(&self, db: &str) -> String {
        format!("http://127.0.0.1:{}/{db}", self.port)
    }

    /// One GET; the status and body, or `None` when nothing answered.
    pub fn get(&self, path_and_query: &str) -> Option<(u16, String)> {
        self.request("GET", path_and_query)
    }

    /// One POST without a body.
    pub fn post(&self, path_and_query: &str) -> Option<(u16, String)> {
        self.request("POST", path_and_query)
    }

    fn request(&self, method: &str, path_and_query: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "{method} {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        // Chunked answers: the JSON is the one line that starts with `{`.
        let body = body
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or("")
            .to_owned();
        Some((status, body))
    }

    /// An InfluxQL query's first series, as `[columns..] -> [values..]`.
    pub fn query(&self, db: &str, q: &str) -> Value {
        let encoded: String = q
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let (status, body) = self
            .get(&format!("/query?db={db}&q={encoded}"))
            .expect("influxd answers a query");
        assert_eq!(status, 200, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: {e}: {body}"));
        v["results"][0]["series"][0].clone()
    }

    /// The first row's value of column `i` (after `time`).
    pub fn scalar(&self, db: &str, q: &str, i: usize) -> f64 {
        let s = self.query(db, q);
        s["values"][0][i]
            .as_f64()
            .unwrap_or_else(|| panic!("{q}: no number in {s}"))
    }
}

impl Drop for Influx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter.
pub fn url_encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A `prometheus` of this test's own (remote-write receiver on, nothing
/// scraped), killed when dropped.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Nothing to scrape: every sample comes by remote write.
    pub fn start() -> Prometheus {
        Prometheus::start_with("global:\n  scrape_interval: 1m\n")
    }

    /// With `config` as its `prometheus.yml` (scrape jobs).
    pub fn start_with(config_yaml: &str) -> Prometheus {
        Prometheus::start_args(config_yaml, &[])
    }

    /// Native histograms accepted (`--enable-feature=native-histograms`).
    pub fn start_native() -> Prometheus {
        Prometheus::start_args(
            "global:\n  scrape_interval: 1m\n",
            &["--enable-feature=native-histograms"],
        )
    }

    /// With `config` and extra command-line flags.
    pub fn start_args(config_yaml: &str, extra: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml).expect("config written");
        let binary = ["/usr/bin/prometheus", "/usr/sbin/prometheus"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("prometheus");
        // A port taken between choosing it and binding it: another try.
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-remote-write-receiver")
                .arg("--log.level=warn")
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus starts (scripts/test installs Debian's prometheus)");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if get_http10(port, "/-/ready").is_some_and(|(s, _)| s == 200) {
                    return Prometheus {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("prometheus did not become ready on port {port} within 30 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("prometheus did not start on any of three free ports");
    }

    /// The remote-write endpoint.
    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// The `data.result` of an instant query at `time` (Unix seconds), or
    /// now.
    pub fn query(&self, promql: &str, time: Option<f64>) -> Vec<Value> {
        let mut path = format!("/api/v1/query?query={}", url_encode(promql));
        if let Some(t) = time {
            path.push_str(&format!("&time={t}"));
        }
        self.api(&path, promql)
    }

    /// The `data.result` of a range query.
    pub fn query_range(&self, promql: &str, start: f64, end: f64, step: f64) -> Vec<Value> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
            url_encode(promql)
        );
        self.api(&path, promql)
    }

    fn api(&self, path: &str, what: &str) -> Vec<Value> {
        let (status, body) = get_http10(self.port, path).expect("prometheus answers");
        assert_eq!(status, 200, "{what}: {body}");
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        assert_eq!(v["status"], "success", "{what}: {body}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The single number an instant query gives.
    pub fn scalar(&self, promql: &str) -> f64 {
        let r = self.query(promql, None);
        assert_eq!(r.len(), 1, "{promql}: one series expected: {r:?}");
        r[0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{promql}: no number in {r:?}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 GET (so the answer is never chunked); status and body.
fn get_http10(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// nginx terminating TLS in front of the plain HTTP backend on `upstream`,
/// with a fresh self-signed certificate for `localhost` and `127.0.0.1`;
/// the proxy and the certificate (PEM), which a client trusts as its CA.
pub async fn tls_proxy(upstream: u16) -> (super::servers::Server, String) {
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .and_then(|p| p.self_signed(&key))
        .expect("a self-signed certificate");
    let template = include_str!("../fixtures/nginx/tls-proxy.conf")
        .replace("@UPSTREAM@", &upstream.to_string());
    let proxy = super::servers::nginx(
        &template,
        &[
            ("server.crt", cert.pem().as_bytes()),
            ("server.key", key.serialize_pem().as_bytes()),
        ],
    )
    .await;
    (proxy, cert.pem())
}
