//! [`MachineLimits`]: what one machine can hold, derived from the memory and
//! CPUs it may use or set by its operator; [`Limits`]: those limits for the
//! machines a plan runs on (one machine, or a fleet's selected agents).

use std::time::Duration;

use super::demand::Demand;

/// Memory budgeted per VU of a plan document: measured at about 10 KiB
/// (BENCHMARKS.md), budgeted generously for request bodies and buffers.
pub const PLAN_VU_BYTES: u64 = 64 << 10;
/// Memory budgeted per VU of a k6 script: measured at about 42 KiB idle
/// (its module instances in a shared realm, its coroutine stack and
/// client; BENCHMARKS.md), budgeted for what an iteration allocates.
pub const SCRIPT_VU_BYTES: u64 = 192 << 10;
/// Share of the memory limit VUs, data and uploads may take; the rest is
/// left to the runtime, the metrics and the connections' buffers.
pub const MEMORY_BUDGET_PERCENT: u64 = 75;
/// Iterations per second admitted per CPU: far more than one CPU can start
/// (a request costs microseconds), far less than a mistyped rate asks for.
pub const RATE_PER_CPU: f64 = 500_000.0;
/// Longest test admitted unless an operator allows more.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Request steps one iteration may send: far beyond any hand-written flow.
pub const MAX_REQUESTS_PER_ITERATION: u64 = 10_000;
/// Memory assumed when neither the cgroup nor the machine says (a small VM).
pub const ASSUMED_MEMORY_BYTES: u64 = 1 << 30;

/// How a person raises each limit where the check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    pub vus: &'static str,
    pub rate: &'static str,
    pub duration: &'static str,
}

impl Knobs {
    /// An agent's settings (flag and variable).
    pub const AGENT: Knobs = Knobs {
        vus: "--max-vus / VOLLEY_MAX_VUS",
        rate: "--max-rate / VOLLEY_MAX_RATE",
        duration: "--max-duration / VOLLEY_MAX_DURATION",
    };
    /// `volley run` on this machine (the agent's variables).
    pub const LOCAL: Knobs = Knobs {
        vus: "VOLLEY_MAX_VUS",
        rate: "VOLLEY_MAX_RATE",
        duration: "VOLLEY_MAX_DURATION",
    };
}

/// What one machine can hold.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineLimits {
    /// CPUs the process may use (cgroup quotas, affinity).
    pub cpus: f64,
    /// Bytes of memory the process may use (cgroup limit capped by the
    /// machine's memory); `None` when unknown ([`ASSUMED_MEMORY_BYTES`]).
    pub memory_bytes: Option<u64>,
    /// Most VUs, set by the operator (else from memory).
    pub max_vus: Option<u64>,
    /// Most iterations per second, set by the operator (else from CPUs).
    pub max_rate: Option<f64>,
    /// Longest test, set by the operator (else [`DEFAULT_MAX_DURATION`]).
    pub max_duration: Option<Duration>,
    /// How to raise them here.
    pub knobs: Knobs,
}

/// One limit as it applies, and why it is what it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived<T> {
    pub value: T,
    /// Where it comes from, for a person (`500000 per CPU × 2 CPUs`).
    pub why: String,
    /// Set by an operator (then `why` names the setting).
    pub set: bool,
}

// === impl MachineLimits ===

impl MachineLimits {
    /// Limits from capacity alone, raised with `knobs`.
    pub fn from_capacity(cpus: f64, memory_bytes: Option<u64>, knobs: Knobs) -> MachineLimits {
        MachineLimits {
            cpus,
            memory_bytes,
            max_vus: None,
            max_rate: None,
            max_duration: None,
            knobs,
        }
    }

    /// Bytes VUs, data and uploads may take.
    pub fn memory_budget(&self) -> u64 {
        let memory = self.memory_bytes.unwrap_or(ASSUMED_MEMORY_BYTES);
        memory / 100 * MEMORY_BUDGET_PERCENT
    }

    /// Memory budgeted per VU of `demand` (its kind, plus the largest body
    /// it renders per request).
    pub fn vu_bytes(demand: &Demand) -> u64 {
        let base = if demand.script {
            SCRIPT_VU_BYTES
        } else {
            PLAN_VU_BYTES
        };
        base.saturating_add(demand.body_bytes_per_vu)
    }

    /// Most VUs of `demand`'s kind this machine holds.
    pub fn vus(&self, demand: &Demand) -> Derived<u64> {
        if let Some(vus) = self.max_vus {
            return Derived {
                value: vus,
                why: format!("set with {}", self.knobs.vus),
                set: true,
            };
        }
        let per_vu = Self::vu_bytes(demand);
        let shared = demand.shared_bytes();
        let value = self.memory_budget().saturating_sub(shared) / per_vu.max(1);
        let memory = match self.memory_bytes {
            Some(m) => format!("{} memory limit", bytes(m)),
            None => format!(
                "{} of memory (assumed: the limit is unknown)",
                bytes(ASSUMED_MEMORY_BYTES)
            ),
        };
        let kind = if demand.script { "script VU" } else { "VU" };
        let less = if shared > 0 {
            format!(", less {} of data and upload files", bytes(shared))
        } else {
            String::new()
        };
        Derived {
            value,
            why: format!(
                "{MEMORY_BUDGET_PERCENT} % of a {memory} at {} per {kind}{less}",
                bytes(per_vu)
            ),
            set: false,
        }
    }

    /// Most iterations per second this machine starts.
    pub fn rate(&self) -> Derived<f64> {
        match self.max_rate {
            Some(rate) => Derived {
                value: rate,
                why: format!("set with {}", self.knobs.rate),
                set: true,
            },
            None => Derived {
                value: RATE_PER_CPU * self.cpus,
                why: format!(
                    "{} per CPU × {} CPUs",
                    number(RATE_PER_CPU),
                    number(self.cpus)
                ),
                set: false,
            },
        }
    }

    /// Longest test this machine runs.
    pub fn duration(&self) -> Derived<Duration> {
        match self.max_duration {
            Some(d) => Derived {
                value: d,
                why: format!("set with {}", self.knobs.duration),
                set: true,
            },
            None => Derived {
                value: DEFAULT_MAX_DURATION,
                why: "Volley's default".into(),
                set: false,
            },
        }
    }
}

/// Who runs a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// One machine runs it (`volley run`), or its share (an agent at
    /// prepare): `name` is "this machine" or "agent agent-1".
    Machine { name: String },
    /// A fleet's selected agents. Only this agent's own limits are known
    /// here, so they are scaled by the agents' capacity weights (CPUs):
    /// each agent takes a share proportional to its weight.
    Fleet {
        /// How many agents were selected.
        agents: usize,
        /// Their weights added up.
        weight: f64,
        /// This agent's id and weight, whose limits are scaled.
        this: String,
        this_weight: f64,
    },
}

/// A machine's limits applied to who runs a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub machine: MachineLimits,
    pub scope: Scope,
}

// === impl Limits ===

impl Limits {
    /// One machine running the plan (or its share).
    pub fn machine(machine: MachineLimits, name: impl Into<String>) -> Limits {
        Limits {
            machine,
            scope: Scope::Machine { name: name.into() },
        }
    }

    /// The agents of `weights` running the plan together, judged by this
    /// agent's limits (`this`, of weight `this_weight`).
    pub fn fleet(
        machine: MachineLimits,
        this: impl Into<String>,
        this_weight: f64,
        weights: &[f64],
    ) -> Limits {
        Limits {
            machine,
            scope: Scope::Fleet {
                agents: weights.len(),
                weight: weights.iter().sum(),
                this: this.into(),
                this_weight,
            },
        }
    }

    /// How many of this machine the scope amounts to.
    fn factor(&self) -> f64 {
        match &self.scope {
            Scope::Machine { .. } => 1.0,
            Scope::Fleet {
                weight,
                this_weight,
                ..
            } if *this_weight > 0.0 && weight.is_finite() => weight / this_weight,
            Scope::Fleet { agents, .. } => *agents as f64,
        }
    }

    /// Who holds the limit, for a person ("this machine", "the 3 selected
    /// agents").
    pub(super) fn holder(&self) -> String {
        match &self.scope {
            Scope::Machine { name } => name.clone(),
            Scope::Fleet { agents: 1, .. } => "the selected agent".into(),
            Scope::Fleet { agents, .. } => format!("the {agents} selected agents"),
        }
    }

    /// A per-machine limit scaled to the scope, and how: `value` is
    /// this machine's, `per` formats one value.
    pub(super) fn scaled<T: Copy>(
        &self,
        derived: Derived<T>,
        scale: impl Fn(T, f64) -> T,
        per: impl Fn(T) -> String,
    ) -> Derived<T> {
        match &self.scope {
            Scope::Machine { .. } => derived,
            Scope::Fleet {
                agents,
                weight,
                this,
                this_weight,
            } => {
                let factor = self.factor();
                let value = scale(derived.value, factor);
                let equal = (factor - *agents as f64).abs() < 1e-9;
                let why = if equal && *agents == 1 {
                    format!("{} on {this}", derived.why)
                } else if equal {
                    format!(
                        "{agents} agents × {} each: {} on {this}",
                        per(derived.value),
                        derived.why
                    )
                } else {
                    format!(
                        "{} on {this} ({}) for its capacity {}, scaled to the agents' {}",
                        per(derived.value),
                        derived.why,
                        number(*this_weight),
                        number(*weight)
                    )
                };
                Derived {
                    value,
                    why,
                    set: derived.set,
                }
            }
        }
    }
}

/// Bytes for a person: `64 KiB`, `23.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A count or rate for a person: whole numbers without decimals, small
/// fractions with up to three.
pub fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e18 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{:.0}", x.floor())
    } else {
        let text = format!("{x:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}
