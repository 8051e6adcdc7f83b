//! Two regions of hosts on one machine, joined only through delayed links: each region is a
//! bridge with its hosts (network namespaces), and the link between the regions is a gateway
//! namespace per region running `volley relay` processes. The kernel here has no `netem`
//! qdisc, so the delay is added in user space.
//!
//! The topology is drawn in `tests/fleet_regions.rs`.
//!
//! Every host has one address on its region's bridge (`10.R.1.x` in region a, `10.R.2.x` in
//! region b, all in one `/16`), which is what its agent listens on and advertises. A host
//! reaches the hosts of its own region directly; for the other region's addresses the only
//! answer on its bridge comes from its region's gateway, which holds those addresses (the
//! same ones: nothing is translated in what agents gossip) and relays each port (gossip UDP,
//! QUIC UDP, API TCP; the target's TCP) with the link's delay to the real host's address on
//! the backbone. The backbone addresses are never advertised: the hosts' second interface is
//! only the far end of a relay, and replies to a relay's connection go back through it. So
//! every packet between the regions crosses one relay, delayed once each way.
//!
//! Needs root and iproute2; everything is named after this process and removed on drop (the
//! relay and target processes are killed first).
//!
//! Each region has a target host (`volley target`), so a plan with `targets` per region sends
//! each agent's requests to its own region's target directly and to the other's across the
//! link.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::net::{Host, ip, ip_binary};

/// The ports every agent listens on (each host is a namespace of its own: no clashes).
pub const GOSSIP_PORT: u16 = 7946;
pub const QUIC_PORT: u16 = 7947;
pub const API_PORT: u16 = 7070;
/// Where each region's target listens, on the target host of the region.
pub const TARGET_PORT: u16 = 8080;
/// The region names, as agents' `region` labels.
pub const REGIONS: [&str; 2] = ["a", "b"];

/// Distinguishes the networks of the tests of one process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// One namespace of the network.
#[derive(Debug, Clone)]
struct Node {
    ns: String,
    /// Its address on its region's bridge (a gateway's are the other region's hosts).
    region_ip: Ipv4Addr,
    /// Its address on the backbone.
    backbone_ip: Ipv4Addr,
}

/// Two regions of `per_region` agent hosts each, a target host and a gateway per region; the
/// relays start with [`RegionNet::start_relays`], the targets with
/// [`RegionNet::start_targets`].
pub struct RegionNet {
    bridges: Vec<String>,
    namespaces: Vec<String>,
    /// Outer veth ends, deleted first.
    links: Vec<String>,
    /// Agent hosts, region a's first.
    hosts: Vec<Node>,
    /// `targets[r]`: the target host of region `r`.
    targets: Vec<Node>,
    /// `gateways[r]` sits in region `r` and relays to the other region.
    gateways: Vec<Node>,
    per_region: usize,
    /// Relays and the target, killed on drop.
    processes: Vec<Child>,
}

impl RegionNet {
    /// Builds the namespaces, bridges and links (no process runs yet).
    pub fn create(per_region: usize) -> Result<RegionNet, String> {
        assert!(per_region > 0 && per_region < 9, "1 to 8 hosts a region");
        let pid = std::process::id();
        let seq = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:x}{seq:x}", pid % 0xfffff);
        // 10.R.0.0/16, R in 220..250 from the process and the sequence (tests/fleet/net.rs
        // uses 10.213.X.0/24).
        let octet = (pid.wrapping_mul(7).wrapping_add(seq) % 30) as u8 + 220;
        let mut net = RegionNet {
            bridges: Vec::new(),
            namespaces: Vec::new(),
            links: Vec::new(),
            hosts: Vec::new(),
            targets: (0..2u8)
                .map(|r| Node {
                    ns: format!("vr{tag}t{r}"),
                    region_ip: Ipv4Addr::new(10, octet, r + 1, 20),
                    backbone_ip: Ipv4Addr::new(10, octet, 200, 30 + 10 * r),
                })
                .collect(),
            gateways: Vec::new(),
            per_region,
            processes: Vec::new(),
        };
        let bridge = |name: &str| format!("vr{tag}b{name}");
        for name in ["a", "b", "w"] {
            let br = bridge(name);
            ip(&["link", "add", &br, "type", "bridge"])?;
            net.bridges.push(br.clone());
            ip(&["link", "set", &br, "up"])?;
        }
        // The test itself reaches every host's region address (APIs, the target) from here.
        for (r, name) in ["a", "b"].iter().enumerate() {
            let addr = format!("10.{octet}.{}.1/24", r + 1);
            ip(&["addr", "add", &addr, "dev", &bridge(name)])?;
        }
        for r in 0..2u8 {
            for i in 0..per_region as u8 {
                net.hosts.push(Node {
                    ns: format!("vr{tag}h{r}{i}"),
                    region_ip: Ipv4Addr::new(10, octet, r + 1, 11 + i),
                    backbone_ip: Ipv4Addr::new(10, octet, 200, 10 * (r + 1) + 1 + i),
                });
            }
            net.gateways.push(Node {
                ns: format!("vr{tag}g{r}"),
                region_ip: Ipv4Addr::UNSPECIFIED,
                backbone_ip: Ipv4Addr::new(10, octet, 200, 1 + r),
            });
        }
        let nodes: Vec<(Node, usize)> = net
            .hosts
            .iter()
            .enumerate()
            .map(|(k, n)| (n.clone(), k / per_region))
            .chain(net.targets.iter().cloned().zip(0..))
            .collect();
        for (k, (node, r)) in nodes.iter().enumerate() {
            net.add_namespace(&node.ns)?;
            let region_addr = [format!("{}/16", node.region_ip)];
            net.attach(
                &node.ns,
                &bridge(REGIONS[*r]),
                &format!("vr{tag}r{k}"),
                "eth0",
                &region_addr,
            )?;
            let backbone_addr = [format!("{}/24", node.backbone_ip)];
            net.attach(
                &node.ns,
                &bridge("w"),
                &format!("vr{tag}w{k}"),
                "eth1",
                &backbone_addr,
            )?;
        }
        for (r, region) in REGIONS.iter().enumerate() {
            let gw = net.gateways[r].clone();
            net.add_namespace(&gw.ns)?;
            // The other region's addresses, on this region's bridge.
            let mirrored: Vec<String> = net
                .remote_nodes(r)
                .iter()
                .map(|n| format!("{}/16", n.region_ip))
                .collect();
            net.attach(
                &gw.ns,
                &bridge(region),
                &format!("vr{tag}gr{r}"),
                "eth0",
                &mirrored,
            )?;
            let backbone_addr = [format!("{}/24", gw.backbone_ip)];
            net.attach(
                &gw.ns,
                &bridge("w"),
                &format!("vr{tag}gw{r}"),
                "eth1",
                &backbone_addr,
            )?;
        }
        Ok(net)
    }

    fn add_namespace(&mut self, ns: &str) -> Result<(), String> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])
    }

    /// A veth pair from `bridge` into `ns` as `inside`, with `addrs` on it.
    fn attach(
        &mut self,
        ns: &str,
        bridge: &str,
        outside: &str,
        inside: &str,
        addrs: &[String],
    ) -> Result<(), String> {
        ip(&[
            "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", ns,
        ])?;
        self.links.push(outside.to_owned());
        ip(&["link", "set", outside, "master", bridge])?;
        ip(&["link", "set", outside, "up"])?;
        for addr in addrs {
            ip(&["-n", ns, "addr", "add", addr, "dev", inside])?;
        }
        ip(&["-n", ns, "link", "set", inside, "up"])
    }

    /// The agent hosts and the target host of the region other than `r` (what gateway `r`
    /// stands in for), the target last.
    fn remote_nodes(&self, r: usize) -> Vec<Node> {
        let mut nodes: Vec<Node> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(k, _)| k / self.per_region != r)
            .map(|(_, n)| n.clone())
            .collect();
        nodes.push(self.targets[1 - r].clone());
        nodes
    }

    /// The agent hosts, region a's first, as the fleet harness starts agents on them.
    pub fn hosts(&self) -> Vec<Host> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(k, n)| Host {
                ns: n.ns.clone(),
                ip: IpAddr::V4(n.region_ip),
                outside: format!("{}-unused-{k}", n.ns),
            })
            .collect()
    }

    /// The region of each agent host, in [`hosts`](Self::hosts) order.
    pub fn regions(&self) -> Vec<String> {
        (0..self.hosts.len())
            .map(|k| REGIONS[k / self.per_region].to_owned())
            .collect()
    }

    /// Each agent listens on every address at the fixed ports (its relay reaches it on the
    /// backbone) and advertises its region address.
    pub fn agent_env(&self) -> Vec<(usize, String, String)> {
        let mut env = Vec::new();
        for (k, n) in self.hosts.iter().enumerate() {
            for (what, port) in [
                ("GOSSIP", GOSSIP_PORT),
                ("QUIC", QUIC_PORT),
                ("API", API_PORT),
            ] {
                env.push((
                    k,
                    format!("VOLLEY_{what}_LISTEN"),
                    format!("0.0.0.0:{port}"),
                ));
                env.push((
                    k,
                    format!("VOLLEY_{what}_ADVERTISE"),
                    format!("{}:{port}", n.region_ip),
                ));
            }
        }
        env
    }

    /// Where the target of region `r` (0 is a) listens, on its region address.
    pub fn target(&self, r: usize) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.targets[r].region_ip), TARGET_PORT)
    }

    /// Starts `volley target` on each region's target host and waits until each answers from
    /// here.
    pub async fn start_targets(&mut self) -> Result<(), String> {
        let listen = format!("0.0.0.0:{TARGET_PORT}");
        for r in 0..self.targets.len() {
            let ns = self.targets[r].ns.clone();
            let child = spawn_in(&ns, &["target", "--listen", &listen], Stdio::null())?;
            self.processes.push(child);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for r in 0..self.targets.len() {
            let addr = self.target(r);
            loop {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("volley target on {addr} never answered"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Starts the relays of both gateways and waits until each listens: per remote agent host
    /// its gossip and QUIC ports (UDP) and API port (TCP), and the remote target's port (TCP). Everything from region a to region b is delayed `a_to_b ± jitter`, everything
    /// back `b_to_a ± jitter`.
    pub async fn start_relays(
        &mut self,
        a_to_b: Duration,
        b_to_a: Duration,
        jitter: Duration,
    ) -> Result<(), String> {
        let micros = |d: Duration| format!("{}us", d.as_micros());
        let jitter = micros(jitter);
        let mut seed = 0u64;
        for r in 0..2 {
            let gw = self.gateways[r].ns.clone();
            // Gateway a's clients are in region a: its relays carry a → b there, b → a back.
            let (there, back) = if r == 0 {
                (micros(a_to_b), micros(b_to_a))
            } else {
                (micros(b_to_a), micros(a_to_b))
            };
            for node in self.remote_nodes(r) {
                let is_target = self.targets.iter().any(|t| t.region_ip == node.region_ip);
                let ports: &[(u16, &str)] = if is_target {
                    &[(TARGET_PORT, "--tcp")]
                } else {
                    &[
                        (GOSSIP_PORT, "--udp"),
                        (QUIC_PORT, "--udp"),
                        (API_PORT, "--tcp"),
                    ]
                };
                for (port, protocol) in ports {
                    seed += 1;
                    let listen = format!("{}:{port}", node.region_ip);
                    let to = format!("{}:{port}", node.backbone_ip);
                    let seed = seed.to_string();
                    let args = [
                        "relay",
                        "--listen",
                        &listen,
                        "--to",
                        &to,
                        "--delay",
                        &there,
                        "--back-delay",
                        &back,
                        "--jitter",
                        &jitter,
                        protocol,
                        "--seed",
                        &seed,
                    ];
                    let mut child = spawn_in(&gw, &args, Stdio::piped())?;
                    let ready = wait_ready(&mut child).await;
                    self.processes.push(child);
                    ready.map_err(|e| format!("relay {listen} → {to} in {gw}: {e}"))?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for RegionNet {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.start_kill();
        }
        for link in &self.links {
            let _ = ip(&["link", "del", link]);
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        for bridge in &self.bridges {
            let _ = ip(&["link", "del", bridge]);
        }
    }
}

/// `volley ARGS` in namespace `ns`, killed with the test process (setpriv) or on drop.
fn spawn_in(ns: &str, args: &[&str], stdout: Stdio) -> Result<Child, String> {
    let binary = env!("CARGO_BIN_EXE_volley");
    let mut program: Vec<String> = [ip_binary(), "netns", "exec", ns, binary]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if std::path::Path::new("/usr/bin/setpriv").exists() {
        program.splice(
            0..0,
            ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"].map(String::from),
        );
    }
    Command::new(&program[0])
        .args(&program[1..])
        .args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {binary} {}: {e}", args.join(" ")))
}

/// Reads a relay's `{"event":"ready",...}` line within 15 s.
async fn wait_ready(child: &mut Child) -> Result<(), String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
        .await
        .map_err(|_| "no ready line within 15 s".to_owned())?
        .map_err(|e| e.to_string())?
        .ok_or("exited before it was ready")?;
    if !line.contains(r#""event":"ready""#) {
        return Err(format!("unexpected first line {line:?}"));
    }
    // The rest of its output is never read: keep the pipe open by leaking the reader into a
    // task that drains it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(())
}
