//! Network settings: listen addresses, the addresses peers are told (given, the listen address,
//! or the pod IP), the UDP ports gossip and QUIC share, and the seeds to join through.

use std::net::{IpAddr, SocketAddr};

use super::error::ConfigError;
use super::load::{Loader, Lookup};
use super::names::{Name, Setting};
use super::parse::{self, Seed};

/// A listen address and the address peers are told.
pub(super) struct Endpoint {
    /// `None` when the given value was rejected.
    pub(super) listen: Option<(SocketAddr, Name)>,
    /// `None` when rejected or when no advertise address can be derived.
    pub(super) advertise: Option<SocketAddr>,
}

// === impl Loader: network ===

impl Loader<'_> {
    /// A listen address (with its default) and the advertise address: given, else the listen
    /// address when it is a specific one, else the pod IP with the listen port.
    pub(super) fn endpoint(
        &mut self,
        (listen_setting, listen_flag): (Setting, Option<&String>),
        default: SocketAddr,
        (advertise_setting, advertise_flag): (Setting, Option<&String>),
        pod_ip: Option<IpAddr>,
    ) -> Endpoint {
        let listen = self.with_default(
            listen_setting,
            listen_flag,
            default,
            default.to_string(),
            parse::socket_addr,
        );
        let advertise = match self.lookup(advertise_setting, advertise_flag, parse::socket_addr) {
            Lookup::Invalid => None,
            Lookup::Value(addr, name) => {
                let problem = if addr.ip().is_unspecified() {
                    Some("an address peers can dial (not 0.0.0.0 or ::), like 10.0.0.7:7946")
                } else if addr.port() == 0 {
                    Some("an address with a port from 1 to 65535, like 10.0.0.7:7946")
                } else {
                    None
                };
                match problem {
                    Some(expected) => {
                        let value = addr.to_string();
                        self.errors
                            .push(ConfigError::invalid(name, &value, expected));
                        None
                    }
                    None => Some(addr),
                }
            }
            Lookup::Unset => match &listen {
                None => None,
                Some((addr, _)) if !addr.ip().is_unspecified() => Some(*addr),
                Some((addr, _)) if pod_ip.is_some_and(|ip| addr.is_ipv6() || ip.is_ipv4()) => {
                    pod_ip.map(|ip| SocketAddr::new(ip, addr.port()))
                }
                Some((addr, listen_name)) => {
                    let hint = format!(
                        "{listen_name} listens on {addr}, which is not an address peers can dial; \
                         set this to the address others reach this agent at, like \
                         $(POD_IP):{port} from the pod IP, or listen on a specific address",
                        port = addr.port()
                    );
                    self.errors.push(ConfigError::Missing {
                        name: Name::unset(advertise_setting),
                        hint: hint.into(),
                    });
                    None
                }
            },
        };
        Endpoint { listen, advertise }
    }

    /// Gossip and QUIC both use UDP: the same port on overlapping addresses cannot both bind.
    pub(super) fn check_udp_ports(
        &mut self,
        gossip: Option<&(SocketAddr, Name)>,
        quic: Option<&(SocketAddr, Name)>,
    ) {
        let (Some((g, g_name)), Some((q, q_name))) = (gossip, quic) else {
            return;
        };
        let overlap = g.ip() == q.ip() || g.ip().is_unspecified() || q.ip().is_unspecified();
        if g.port() != 0 && g.port() == q.port() && overlap {
            self.errors.push(ConfigError::Inconsistent {
                first: g_name.clone(),
                second: q_name.clone(),
                detail: format!(
                    "gossip ({g}) and QUIC ({q}) both use UDP port {}; give them different ports",
                    g.port()
                ),
            });
        }
    }

    /// `--seed` (all of them) or else `VOLLEY_SEEDS`; duplicates are dropped.
    pub(super) fn seeds(&mut self) -> Option<Vec<Seed>> {
        let (texts, name) = if !self.args.seeds.is_empty() {
            (self.args.seeds.clone(), Name::flag(Setting::SEEDS))
        } else if let Some(var) = Setting::SEEDS.env
            && let Some(text) = self.env_var(var)
        {
            (vec![text], Name::env(Setting::SEEDS, var))
        } else {
            return Some(Vec::new());
        };
        let mut seeds: Vec<Seed> = Vec::new();
        let mut ok = true;
        for text in &texts {
            if text.trim().is_empty() {
                let expected = "host:port, like volley-gossip.volley.svc.cluster.local:7946";
                self.errors
                    .push(ConfigError::invalid(name.clone(), text, expected));
                ok = false;
            }
            for item in parse::list(text) {
                match parse::seed(item) {
                    Ok(seed) if seeds.contains(&seed) => {}
                    Ok(seed) => seeds.push(seed),
                    Err(expected) => {
                        self.errors
                            .push(ConfigError::invalid(name.clone(), item, expected));
                        ok = false;
                    }
                }
            }
        }
        ok.then_some(seeds)
    }
}
