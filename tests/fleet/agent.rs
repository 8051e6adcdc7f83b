//! One `volley agent` process of the harness: what it is started with
//! ([`AgentSpec`]), its spawn with a deadline on its ready line, signals
//! (stop, continue, kill) and its log for failure messages. Killed when
//! dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::{HarnessError, READY_TIMEOUT, net};

/// The `{"event":"ready",...}` line `volley agent` prints once it listens.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct ReadyLine {
    event: String,
    node: String,
    api: SocketAddr,
    gossip: SocketAddr,
    quic: SocketAddr,
}

/// One running `volley agent` process.
pub struct Agent {
    /// Node id (`agent-0`, `agent-1`, ...): ids sort in start order, as allocations do.
    pub id: String,
    pub api: SocketAddr,
    pub gossip: SocketAddr,
    pub quic: SocketAddr,
    /// Its `VOLLEY_DATA_DIR`, where it keeps every interval it produced.
    pub data_dir: PathBuf,
    /// Its stderr, kept to explain a failure.
    log: PathBuf,
    /// `None` once the process was killed and reaped.
    child: Option<Child>,
    pid: u32,
    /// Held open: the agent must never write into a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
    /// What it was started with, to start it again.
    pub(super) spec: AgentSpec,
}

/// What one agent is started with.
#[derive(Debug, Clone)]
pub(super) struct AgentSpec {
    pub(super) index: usize,
    pub(super) capacity: f64,
    pub(super) region: Option<String>,
    pub(super) orphan_timeout: Option<Duration>,
    /// Directory with `ca.crt` and `ca.key`.
    pub(super) ca: PathBuf,
    pub(super) token_file: PathBuf,
    pub(super) seed: Option<SocketAddr>,
    /// Where it runs; loopback when `None`.
    pub(super) host: Option<net::Host>,
    /// Its node id; `agent-{index}` when `None`.
    pub(super) node_id: Option<String>,
    /// `VOLLEY_GOSSIP_SECRET_FILE`; the key is derived from the CA key when `None`.
    pub(super) gossip_secret: Option<PathBuf>,
    /// Directory with `tls.crt`, `tls.key` and `ca.crt` issued for this
    /// agent: used instead of the CA key when set.
    pub(super) given: Option<PathBuf>,
    /// `VOLLEY_QUIC_ADVERTISE`; the bound address when `None`.
    pub(super) quic_advertise: Option<SocketAddr>,
    /// Extra variables.
    pub(super) env: Vec<(String, String)>,
}

// === impl Agent ===

impl Agent {
    pub(super) async fn spawn(dir: &Path, spec: AgentSpec) -> Result<Agent, HarnessError> {
        let id = spec
            .node_id
            .clone()
            .unwrap_or_else(|| format!("agent-{}", spec.index));
        let data_dir = dir.join(format!("data-{}", spec.index));
        let log = dir.join(format!("{id}.log"));
        let stderr = std::fs::File::create(&log).map_err(|source| HarnessError::Files {
            what: "the agent log",
            path: log.clone(),
            source,
        })?;
        let binary = env!("CARGO_BIN_EXE_volley");
        // With setpriv the kernel kills the agent if the test process dies before dropping it.
        let setpriv = Path::new("/usr/bin/setpriv");
        // `ip netns exec` and setpriv both exec the next program: the pid stays the agent's.
        let mut program: Vec<String> = spec.host.iter().flat_map(net::Host::wrap).collect();
        program.push(binary.to_owned());
        if setpriv.exists() {
            program.splice(
                0..0,
                ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"].map(String::from),
            );
        }
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..]);
        let listen = match &spec.host {
            Some(host) => format!("{}:0", host.ip),
            None => "127.0.0.1:0".to_owned(),
        };
        cmd.arg("agent")
            .env_clear()
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .env("VOLLEY_NODE_ID", &id)
            .env("VOLLEY_GOSSIP_LISTEN", &listen)
            .env("VOLLEY_QUIC_LISTEN", &listen)
            .env("VOLLEY_API_LISTEN", &listen)
            .env("VOLLEY_TOKEN_FILE", &spec.token_file)
            .env("VOLLEY_CAPACITY", spec.capacity.to_string())
            .env("VOLLEY_DATA_DIR", &data_dir)
            .env("VOLLEY_GOSSIP_INTERVAL", "100ms")
            .env("VOLLEY_KUBE", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        match &spec.given {
            Some(tls) => cmd
                .env("VOLLEY_CERT", tls.join("tls.crt"))
                .env("VOLLEY_KEY", tls.join("tls.key"))
                .env("VOLLEY_CA_CERT", tls.join("ca.crt")),
            None => cmd
                .env("VOLLEY_CA_CERT", spec.ca.join("ca.crt"))
                .env("VOLLEY_CA_KEY", spec.ca.join("ca.key")),
        };
        if let Some(seed) = spec.seed {
            cmd.env("VOLLEY_SEEDS", seed.to_string());
        }
        if let Some(quic) = spec.quic_advertise {
            cmd.env("VOLLEY_QUIC_ADVERTISE", quic.to_string());
        }
        if let Some(secret) = &spec.gossip_secret {
            cmd.env("VOLLEY_GOSSIP_SECRET_FILE", secret);
        }
        if let Some(region) = &spec.region {
            cmd.env("VOLLEY_LABELS", format!("region={region}"));
        }
        if let Some(t) = spec.orphan_timeout {
            cmd.env("VOLLEY_ORPHAN_TIMEOUT", format!("{}ms", t.as_millis()));
        }
        for (key, value) in &spec.env {
            cmd.env(key, value);
        }
        let mut child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            agent: id.clone(),
            binary: binary.to_owned(),
            source,
        })?;
        // Never 0: `kill` would then signal the whole process group.
        let Some(pid) = child.id().filter(|pid| *pid > 0) else {
            let _ = child.start_kill();
            return Err(HarnessError::NotReady {
                agent: id.clone(),
                after: Duration::ZERO,
                log: format!("the process exited at once\n{}", tail(&log)),
            });
        };
        let stdout = child
            .stdout
            .take()
            .expect("invariant: stdout was configured as a pipe");
        let mut lines = BufReader::new(stdout).lines();
        let not_ready = |log: &Path| HarnessError::NotReady {
            agent: id.clone(),
            after: READY_TIMEOUT,
            log: tail(log),
        };
        let line = match tokio::time::timeout(READY_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            _ => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(not_ready(&log));
            }
        };
        let ready: ReadyLine = match serde_json::from_str::<ReadyLine>(&line) {
            Ok(r) if r.event == "ready" && r.node == id => r,
            other => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(HarnessError::BadReadyLine {
                    agent: id.clone(),
                    reason: match other {
                        Ok(r) => format!("event {:?} of node {:?}", r.event, r.node),
                        Err(e) => e.to_string(),
                    },
                    line,
                    log: tail(&log),
                });
            }
        };
        Ok(Agent {
            id,
            api: ready.api,
            gossip: ready.gossip,
            quic: ready.quic,
            data_dir,
            log,
            child: Some(child),
            pid,
            _stdout: lines,
            spec,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its resident memory (`VmRSS` of `/proc/PID/status`), in bytes.
    pub fn resident_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line["VmRSS:".len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    /// Whether the process still runs (a stopped process runs).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub(super) async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    pub(super) fn signal(&self, signal: &'static str) -> Result<(), HarnessError> {
        let err = |reason: String| HarnessError::Signal {
            agent: self.id.clone(),
            pid: self.pid,
            signal,
            reason,
        };
        if self.child.is_none() {
            return Err(err("the agent was already killed".into()));
        }
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &self.pid.to_string()])
            .status()
            .map_err(|e| err(e.to_string()))?;
        if status.success() {
            Ok(())
        } else {
            Err(err(format!("kill exited with {status}")))
        }
    }

    /// The end of its stderr.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Its whole stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // SIGKILL also ends a SIGSTOPped process; the runtime reaps it.
            let _ = child.start_kill();
        }
    }
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    const LINES: usize = 40;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
