//! Separate hosts on one machine: a network namespace per agent, each joined to a bridge in the
//! test's own namespace by a veth pair, so a test can cut one host's link while its process
//! (and its data directory) stays alive.
//!
//! Needs root and iproute2 (`ip netns`). Everything is created under names unique to this process
//! and removed on drop; the only traffic is between the namespaces and the bridge address.
//! This kernel has no `netem` qdisc: latency between hosts comes from `volley relay` processes
//! in gateway namespaces (see [`super::regions`]).

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Distinguishes the networks of the tests of one process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// One host: a namespace with `eth0` on the bridge.
#[derive(Debug, Clone)]
pub struct Host {
    pub ns: String,
    pub ip: IpAddr,
    /// Its veth's end on the bridge.
    pub(super) outside: String,
}

impl Host {
    /// The command prefix that runs a program on this host (absolute: agents start with an
    /// empty environment, so without `PATH`).
    pub fn wrap(&self) -> Vec<String> {
        [ip_binary(), "netns", "exec", &self.ns]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }
}

/// A bridge with an address of its own (where a target can listen) and hosts on it.
pub struct TestNet {
    bridge: String,
    /// The bridge's address, reachable from every host.
    pub gateway: IpAddr,
    pub hosts: Vec<Host>,
}

impl TestNet {
    /// Why this machine cannot build test networks, if it cannot.
    pub fn unavailable() -> Option<String> {
        match Command::new("id").arg("-u").output() {
            Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "0" => {}
            _ => return Some("network namespaces need root".into()),
        }
        match Command::new(ip_binary()).args(["netns", "list"]).output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "`ip netns list` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Some(format!(
                "iproute2's `ip` cannot run ({e}); apt-get install iproute2"
            )),
        }
    }

    /// A bridge and `n` hosts on a /24 of its own.
    pub fn create(n: usize) -> Result<TestNet, String> {
        assert!(n < 200, "a test network holds fewer than 200 hosts");
        let pid = std::process::id();
        let seq = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:x}{seq:x}", pid % 0xfffff);
        // 10.213.X.0/24, X from the process and the sequence: parallel tests never share one.
        let subnet = (pid.wrapping_mul(7).wrapping_add(seq) % 250) as u8 + 1;
        let mut net = TestNet {
            bridge: format!("vb{tag}"),
            gateway: IpAddr::V4(Ipv4Addr::new(10, 213, subnet, 1)),
            hosts: Vec::new(),
        };
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.gateway),
            "dev",
            &net.bridge,
        ])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        for i in 0..n {
            let ns = format!("vn{tag}h{i}");
            let outside = format!("vv{tag}h{i}");
            let addr = Ipv4Addr::new(10, 213, subnet, 10 + i as u8);
            ip(&["netns", "add", &ns])?;
            net.hosts.push(Host {
                ns: ns.clone(),
                ip: IpAddr::V4(addr),
                outside: outside.clone(),
            });
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &outside, "master", &net.bridge])?;
            ip(&["link", "set", &outside, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Cuts host `i` off the network: its link goes down, its processes live on.
    pub fn cut(&self, i: usize) -> Result<(), String> {
        ip(&["-n", &self.hosts[i].ns, "link", "set", "eth0", "down"])
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for host in &self.hosts {
            // Deleting one end deletes the pair, even while a dying process keeps the
            // namespace (and so its end) alive for a moment.
            let _ = ip(&["link", "del", &host.outside]);
            let _ = ip(&["netns", "del", &host.ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Where iproute2's `ip` is.
pub(super) fn ip_binary() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("ip")
}

pub(super) fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new(ip_binary())
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
