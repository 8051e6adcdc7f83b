//! The fleet harness: real `volley agent` processes on loopback, as an operator would run them.
//!
//! [`Fleet::start`] writes a fleet CA and an API token to a temporary directory, starts the real
//! binary (`CARGO_BIN_EXE_volley agent`) once per agent with `VOLLEY_*` variables only (every
//! listener on `127.0.0.1:0`, one data directory each, gossip every 100 ms, Kubernetes off),
//! reads each agent's `{"event":"ready",...}` line with a deadline, joins the others through the
//! first agent's gossip address and waits until every agent sees every other one idle.
//!
//! Processes never outlive their test: each [`Agent`] is SIGKILLed when dropped (a stopped one
//! too), and where `setpriv` exists the agent also gets SIGKILL from the kernel when the test
//! process dies. Fleets in one test binary run one at a time (see [`Fleet::start`]): the tests
//! measure rates and start spreads, which two fleets sharing two cores would distort.
//!
//! [`results`] reads what agents keep in their data directories; [`plans`] writes the plans;
//! [`net`] puts agents on separate hosts (network namespaces) instead of loopback; [`regions`]
//! groups such hosts into regions joined by delayed links.

// Each `tests/fleet_*.rs` binary uses a different part of the harness.
#![allow(dead_code)]

mod agent;
pub mod given_certs;
pub mod net;
pub mod outputs;
pub mod plans;
pub mod regions;
pub mod results;

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tempfile::TempDir;
use tokio::time::Instant;
use volley::api::{ApiClient, MemberView, SecretToken, SummaryView};
use volley::fleet::ca::FleetCa;

pub use agent::Agent;
use agent::AgentSpec;

/// How long an agent may take from spawn to its ready line (a busy two-core machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a fresh fleet may take until every agent sees every other one idle.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(15);
/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(50);
/// The API token every fleet's agents accept.
pub const TOKEN: &str = "volley-fleet-test-token";

/// One fleet at a time per test binary.
static SERIAL: Mutex<()> = Mutex::new(());

/// The built-in target on a free loopback port, the load the fleets send.
pub async fn target() -> volley::target::TargetHandle {
    let addr = "127.0.0.1:0".parse().expect("invariant: a valid address");
    volley::target::spawn(addr, volley::target::TargetConfig::default())
        .await
        .expect("the built-in target starts on loopback")
}

/// A fleet of `agents` sharing `iterations` requests to the target's `/delay/100` on `vus` VUs,
/// submitted through agent 0, with agent `victim` SIGKILLed `kill_after_ms` after the start.
pub async fn shared_iterations_then_kill(
    agents: usize,
    vus: u64,
    iterations: u64,
    kill_after_ms: u64,
    victim: usize,
) -> (
    Fleet,
    volley::target::TargetHandle,
    volley::api::SubmitResponse,
) {
    let target = target().await;
    let mut fleet = Fleet::start(agents, FleetOptions::default())
        .await
        .expect("fleet forms");
    let plan = plans::shared_iterations(target.addr, vus, iterations, "/delay/100");
    let accepted = fleet
        .client(0)
        .submit(&plans::submit(plan))
        .await
        .expect("submit accepted");
    tokio::time::sleep_until(instant_at(accepted.start_unix_ms + kill_after_ms)).await;
    fleet.kill(victim).await;
    (fleet, target, accepted)
}

/// Wall-clock milliseconds since the Unix epoch, as agents announce start instants.
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The monotonic instant of a wall-clock time (Unix ms); now if it has passed.
pub fn instant_at(unix_ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(unix_ms.saturating_sub(unix_ms_now()))
}

/// Holds off every fleet of this test binary while a test runs agents of its own (`volley demo`).
pub struct Exclusive(MutexGuard<'static, ()>);

impl Exclusive {
    /// Waits until no fleet of this test binary runs.
    pub fn take() -> Exclusive {
        Exclusive(
            SERIAL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Why the harness could not do what a test asked.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot prepare {what} in {path}: {source}")]
    Files {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the fleet CA: {0}")]
    Ca(String),
    #[error("cannot spawn {binary} for agent {agent}: {source}")]
    Spawn {
        agent: String,
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("agent {agent} printed no ready line within {after:?}; its log:\n{log}")]
    NotReady {
        agent: String,
        after: Duration,
        log: String,
    },
    #[error(
        "agent {agent} printed {line:?}, expected a JSON ready line ({reason}); its log:\n{log}"
    )]
    BadReadyLine {
        agent: String,
        line: String,
        reason: String,
        log: String,
    },
    #[error("cannot build an API client for {url}: {reason}")]
    Client { url: String, reason: String },
    #[error("cannot send SIG{signal} to agent {agent} (pid {pid}): {reason}")]
    Signal {
        agent: String,
        pid: u32,
        signal: &'static str,
        reason: String,
    },
    #[error("timed out after {after:?} waiting until {what}; last seen: {last}\n{logs}")]
    Timeout {
        what: String,
        after: Duration,
        last: String,
        logs: String,
    },
}

/// How to start a fleet; `Default` gives equal agents.
#[derive(Debug, Clone, Default)]
pub struct FleetOptions {
    /// Capacity of each agent in start order; agents past its end get 1.
    pub capacities: Vec<f64>,
    /// `region` label of each agent in start order; agents past its end get none.
    pub regions: Vec<String>,
    /// `VOLLEY_ORPHAN_TIMEOUT` of every agent (the agent's default when `None`).
    pub orphan_timeout: Option<Duration>,
    /// Agents (by index) given a CA of their own instead of the fleet's.
    pub foreign_ca: Vec<usize>,
    /// The host of each agent in start order (a network namespace); agents past its end run on
    /// loopback.
    pub hosts: Vec<net::Host>,
    /// Extra `VOLLEY_*` variables for one agent: (index, name, value).
    pub agent_env: Vec<(usize, String, String)>,
    /// Every agent is given a certificate, its key and the CA certificate
    /// (`VOLLEY_CERT`, `VOLLEY_KEY`, `VOLLEY_CA_CERT`, as cert-manager's CSI
    /// driver mounts them) and the gossip secret, and no CA key: see
    /// [`given_certs`].
    pub given_certs: bool,
}

/// A started fleet; dropping it kills every agent.
pub struct Fleet {
    pub agents: Vec<Agent>,
    /// CA, token, data directories and logs.
    dir: TempDir,
    /// One fleet at a time (released last, after the agents are gone).
    _serial: MutexGuard<'static, ()>,
}

// === impl Fleet ===

impl Fleet {
    /// Starts `n` agents and waits until each sees all `n` members idle. Blocks while another
    /// fleet of this test binary is alive.
    pub async fn start(n: usize, opts: FleetOptions) -> Result<Fleet, HarnessError> {
        assert!(n > 0, "a fleet needs at least one agent");
        let serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::Builder::new()
            .prefix("volley-fleet-")
            .tempdir()
            .map_err(|source| HarnessError::Files {
                what: "a temporary directory",
                path: std::env::temp_dir(),
                source,
            })?;
        let fleet_ca = write_ca(&dir.path().join("ca"), "volley fleet test CA")?;
        let foreign_ca = write_ca(&dir.path().join("foreign-ca"), "another fleet's CA")?;
        // Agents derive the gossip key from the fleet CA key; an agent of another CA meant to
        // join gossip (and be refused over QUIC) needs the fleet's gossip secret, so with
        // such agents every agent is given one.
        let gossip_secret = if opts.foreign_ca.is_empty() && !opts.given_certs {
            None
        } else {
            let path = dir.path().join("gossip-secret");
            std::fs::write(&path, "the fleet test gossip secret\n").map_err(|source| {
                HarnessError::Files {
                    what: "the gossip secret file",
                    path: path.clone(),
                    source,
                }
            })?;
            Some(path)
        };
        let given = if opts.given_certs {
            given_certs::write(dir.path(), n)?
        } else {
            Vec::new()
        };
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).map_err(|source| {
            HarnessError::Files {
                what: "the token file",
                path: token_file.clone(),
                source,
            }
        })?;
        let mut fleet = Fleet {
            agents: Vec::with_capacity(n),
            dir,
            _serial: serial,
        };
        let spec = |i: usize, seed: Option<SocketAddr>| AgentSpec {
            index: i,
            capacity: opts.capacities.get(i).copied().unwrap_or(1.0),
            region: opts.regions.get(i).cloned(),
            orphan_timeout: opts.orphan_timeout,
            ca: if opts.foreign_ca.contains(&i) {
                foreign_ca.clone()
            } else {
                fleet_ca.clone()
            },
            token_file: token_file.clone(),
            seed,
            host: opts.hosts.get(i).cloned(),
            node_id: None,
            gossip_secret: gossip_secret.clone(),
            given: given.get(i).cloned(),
            quic_advertise: None,
            env: opts
                .agent_env
                .iter()
                .filter(|(agent, _, _)| *agent == i)
                .map(|(_, k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let first = Agent::spawn(fleet.dir.path(), spec(0, None)).await?;
        let seed = first.gossip;
        fleet.agents.push(first);
        let rest = futures::future::join_all(
            (1..n).map(|i| Agent::spawn(fleet.dir.path(), spec(i, Some(seed)))),
        )
        .await;
        for agent in rest {
            fleet.agents.push(agent?);
        }
        fleet.wait_formed(n).await?;
        Ok(fleet)
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// A client of agent `i` that sends the fleet's token.
    pub fn client(&self, i: usize) -> ApiClient {
        let token = SecretToken::new(TOKEN).expect("invariant: the test token is visible ASCII");
        self.client_with(i, Some(token))
    }

    /// A client of agent `i` that sends `token` (or none).
    pub fn client_with(&self, i: usize, token: Option<SecretToken>) -> ApiClient {
        let url = format!("http://{}", self.agents[i].api);
        ApiClient::new(&url, token)
            .expect("invariant: an agent's API address forms a valid URL")
            .with_timeout(Duration::from_secs(10))
    }

    /// Waits until every agent lists `n` members, all idle and compatible.
    pub async fn wait_formed(&self, n: usize) -> Result<(), HarnessError> {
        for i in 0..self.len() {
            let client = self.client(i);
            let id = self.agents[i].id.clone();
            self.wait_for(
                &format!("agent {id} sees {n} idle members"),
                FORM_TIMEOUT,
                || async {
                    let members = client.members().await.map_err(|e| e.to_string())?;
                    let ready = members.len() == n
                        && members
                            .iter()
                            .all(|m| m.state == "idle" && m.compatible && m.api_addr.is_some());
                    if ready {
                        Ok(Some(()))
                    } else {
                        Err(describe_members(&members))
                    }
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Waits until the target answered `route` exactly once (a lifecycle function that runs once
    /// after the seal); more than once is a failure at once.
    pub async fn wait_route_once(
        &self,
        what: &str,
        stats: &std::sync::Arc<volley::target::TargetStats>,
        route: volley::target::Route,
    ) -> Result<(), HarnessError> {
        self.wait_for(what, Duration::from_secs(15), || {
            let n = stats.route(route);
            async move {
                match n {
                    0 => Ok(None),
                    1 => Ok(Some(())),
                    n => Err(format!("{what}: {n} times")),
                }
            }
        })
        .await
    }

    /// Polls `probe` every [`POLL`] until it gives `Ok(Some(_))`, or fails after `within` with
    /// the last thing it saw (`Err(text)` or `Ok(None)`) and every agent's log.
    pub async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        within: Duration,
        mut probe: F,
    ) -> Result<T, HarnessError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, String>>,
    {
        let deadline = Instant::now() + within;
        let mut last = String::from("nothing yet");
        loop {
            match probe().await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(seen) => last = seen,
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    what: what.to_owned(),
                    after: within,
                    last,
                    logs: self.logs(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts `volley run --agent` against agent 0 with the fleet's token
    /// and `args` after it (flags and the plan or script); output piped.
    pub fn run_cli<I, S>(&self, args: I) -> tokio::process::Child
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"))
            .arg("run")
            .arg("--agent")
            .arg(format!("http://{}", self.agents[0].api))
            .args(args)
            .env("VOLLEY_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("volley run --agent starts")
    }

    /// Submits `request` to agent `i` and waits (up to a minute) for its sealed summary there;
    /// panics when the fleet refuses it or it does not seal.
    pub async fn run_to_seal(&self, i: usize, request: &volley::api::SubmitRequest) -> SummaryView {
        let accepted = self
            .client(i)
            .submit(request)
            .await
            .expect("the fleet accepts the test");
        self.wait_summary(i, &accepted.id, Duration::from_secs(60))
            .await
            .expect("the test seals")
    }

    /// Waits for test `id`'s sealed summary, asking agent `i`.
    pub async fn wait_summary(
        &self,
        i: usize,
        id: &str,
        within: Duration,
    ) -> Result<SummaryView, HarnessError> {
        let client = self.client(i);
        self.wait_for(&format!("test {id} is sealed"), within, || async {
            match client.get_summary(id).await {
                Ok(view) => Ok(Some(view)),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    /// SIGKILLs agent `i` and reaps it: `kill -9`, no chance to say goodbye.
    pub async fn kill(&mut self, i: usize) {
        self.agents[i].kill().await;
    }

    /// SIGSTOPs agent `i`: it keeps its sockets but answers nothing.
    pub fn pause(&self, i: usize) -> Result<(), HarnessError> {
        self.agents[i].signal("STOP")
    }

    /// SIGCONTs agent `i`.
    pub fn resume(&self, i: usize) -> Result<(), HarnessError> {
        self.agents[i].signal("CONT")
    }

    /// Starts one more `volley agent` outside the fleet's list, claiming node id `node_id`
    /// with a CA (and so a gossip key) of its own, seeded with agent 0's gossip address: an
    /// impostor that can send UDP to the fleet but holds none of its secrets.
    pub async fn spawn_impostor(
        &self,
        node_id: &str,
        capacity: f64,
    ) -> Result<Agent, HarnessError> {
        let ca = write_ca(&self.dir.path().join("impostor-ca"), "an impostor's CA")?;
        self.spawn_extra(node_id, capacity, ca, None).await
    }

    /// Starts one more `volley agent` with the fleet's CA (so it gossips with the fleet's key),
    /// claiming node id `node_id` and telling peers `quic_advertise` as its QUIC address: an
    /// insider pointing its gossip entry at another agent's endpoint.
    pub async fn spawn_insider(
        &self,
        node_id: &str,
        capacity: f64,
        quic_advertise: SocketAddr,
    ) -> Result<Agent, HarnessError> {
        let ca = self.dir.path().join("ca");
        self.spawn_extra(node_id, capacity, ca, Some(quic_advertise))
            .await
    }

    async fn spawn_extra(
        &self,
        node_id: &str,
        capacity: f64,
        ca: PathBuf,
        quic_advertise: Option<SocketAddr>,
    ) -> Result<Agent, HarnessError> {
        let spec = AgentSpec {
            index: 100 + self.agents.len(),
            capacity,
            region: None,
            orphan_timeout: None,
            ca,
            token_file: self.dir.path().join("token"),
            seed: Some(self.agents[0].gossip),
            host: None,
            node_id: Some(node_id.to_owned()),
            gossip_secret: None,
            given: None,
            quic_advertise,
            env: Vec::new(),
        };
        Agent::spawn(self.dir.path(), spec).await
    }

    /// SIGKILLs agent `i` and starts it again with the same id, settings and data directory
    /// (a new generation), seeded with another agent's gossip address.
    pub async fn restart(&mut self, i: usize) -> Result<(), HarnessError> {
        self.agents[i].kill().await;
        let mut spec = self.agents[i].spec.clone();
        spec.seed = self
            .agents
            .iter()
            .enumerate()
            .find(|(j, _)| *j != i)
            .map(|(_, a)| a.gossip);
        self.agents[i] = Agent::spawn(self.dir.path(), spec).await?;
        Ok(())
    }

    /// Every agent's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for a in &self.agents {
            let _ = writeln!(out, "--- {} (api {}) ---\n{}", a.id, a.api, a.log_tail());
        }
        out
    }

    /// Where the fleet keeps its files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("agent logs of the failed test:\n{}", self.logs());
        }
        // Agents drop (and are killed) here, before the serial lock is released.
        self.agents.clear();
    }
}

/// The fleet CA written as `ca.crt`/`ca.key` into `dir`.
fn write_ca(dir: &Path, name: &str) -> Result<PathBuf, HarnessError> {
    let ca = FleetCa::generate(name).map_err(|e| HarnessError::Ca(e.to_string()))?;
    ca.write_to_dir(dir, true)
        .map_err(|e| HarnessError::Ca(format!("{}: {e}", dir.display())))?;
    Ok(dir.to_path_buf())
}

/// `agent-0 idle, agent-1 preparing (test t-...)` for timeout messages.
pub fn describe_members(members: &[MemberView]) -> String {
    let list: Vec<String> = members
        .iter()
        .map(|m| match &m.test {
            Some(t) => format!("{} {} (test {t})", m.node_id, m.state),
            None => format!("{} {}", m.node_id, m.state),
        })
        .collect();
    format!("{} members: {}", members.len(), list.join(", "))
}
