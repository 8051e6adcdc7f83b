//! Admission: whether the machines that would run a plan can hold what it
//! asks for, decided from the compiled [`Plan`](super::Plan) before anything
//! is allocated for it.
//!
//! [`Demand`] reads the peak of every quantity off the plan: VUs, arrival
//! rates, the test's length, requests per iteration, data and upload
//! bytes. [`Limits`] says what one machine holds, from the memory and CPUs
//! it may use ([`MachineLimits`]; an operator can set each), and who runs
//! the plan: one machine (`volley run`, or an agent checking its own share
//! at prepare) or a fleet's selected agents (this agent's limits scaled by
//! their capacity weights). [`check`] refuses the first quantity over its
//! limit with a [`Refusal`] that names the field, the value, the limit and
//! where the limit comes from.
//!
//! Pure: the caller reads capacity and settings; nothing here does I/O.
//! It lives in `plan/` because every path that runs a plan (local runs,
//! the fleet's submit, each agent's prepare) starts from a `Plan`, and a
//! k6 script's options become one too.

mod demand;
mod limits;
#[cfg(test)]
mod tests;

use std::fmt;

pub use demand::{Demand, ScenarioDemand};
pub use limits::{
    ASSUMED_MEMORY_BYTES, DEFAULT_MAX_DURATION, Derived, Knobs, Limits, MAX_REQUESTS_PER_ITERATION,
    MEMORY_BUDGET_PERCENT, MachineLimits, PLAN_VU_BYTES, RATE_PER_CPU, SCRIPT_VU_BYTES, Scope,
    bytes, number,
};

use super::duration::format_duration;

/// Which quantity a plan asked too much of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Vus,
    Rate,
    Duration,
    RequestsPerIteration,
    /// Data and upload files, held in memory on every machine.
    Files,
}

/// A plan asking for more than the machines that would run it can hold.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path} asks for {asked}; {limit} ({source_text})")]
pub struct Refusal {
    pub quantity: Quantity,
    /// Where the value is written (`scenarios.main.rate`, `vus`).
    pub path: String,
    /// The value asked for, with its unit.
    pub asked: String,
    /// Who holds how much (`the limit for this machine is about 294912 VUs`).
    pub limit: String,
    /// Where the limit comes from and how to raise it.
    pub source_text: String,
}

/// Checks `demand` against `limits`; the first quantity over its limit is
/// refused.
pub fn check(demand: &Demand, limits: &Limits) -> Result<(), Refusal> {
    check_vus(demand, limits)?;
    check_rate(demand, limits)?;
    check_duration(demand, limits)?;
    check_requests(demand)?;
    check_files(demand, limits)
}

fn check_vus(demand: &Demand, limits: &Limits) -> Result<(), Refusal> {
    let asked = demand.vus();
    let limit = limits.scaled(limits.machine.vus(demand), scale_count, |v| format!("{v}"));
    if asked <= limit.value {
        return Ok(());
    }
    let Some(largest) = demand.largest_vus() else {
        return Ok(());
    };
    let others = demand.scenarios.iter().filter(|s| s.vus > 0).count() - 1;
    let asked_text = if others == 0 {
        format!("{asked} VUs")
    } else {
        format!(
            "{} VUs, {asked} with the other {} scenario{}",
            largest.vus,
            others,
            plural(others)
        )
    };
    Err(Refusal {
        quantity: Quantity::Vus,
        path: demand.path(largest, &largest.vus_field),
        asked: asked_text,
        limit: format!(
            "the limit for {} is about {} VUs",
            limits.holder(),
            limit.value
        ),
        source_text: source(&limit, limits.machine.knobs.vus),
    })
}

fn check_rate(demand: &Demand, limits: &Limits) -> Result<(), Refusal> {
    let asked = demand.rate();
    let limit = limits.scaled(
        limits.machine.rate(),
        |r, f| r * f,
        |r| format!("{}/s", number(r)),
    );
    // A share's rate is its fraction of the whole: allow for rounding.
    if asked <= limit.value * (1.0 + 1e-9) {
        return Ok(());
    }
    let Some(largest) = demand.largest_rate() else {
        return Ok(());
    };
    let unit = if largest.time_unit == std::time::Duration::from_secs(1) {
        String::new()
    } else {
        format!(
            " ({} per {})",
            largest.rate_per_unit,
            format_duration(largest.time_unit)
        )
    };
    let others = demand.scenarios.iter().filter(|s| s.rate > 0.0).count() - 1;
    let asked_text = if others == 0 {
        format!("{} iterations/s{unit}", number(asked))
    } else {
        format!(
            "{} iterations/s{unit}, {}/s with the other {} scenario{}",
            number(largest.rate),
            number(asked),
            others,
            plural(others)
        )
    };
    Err(Refusal {
        quantity: Quantity::Rate,
        path: demand.path(largest, &largest.rate_field),
        asked: asked_text,
        limit: format!(
            "the limit for {} is {} iterations/s",
            limits.holder(),
            number(limit.value)
        ),
        source_text: source(&limit, limits.machine.knobs.rate),
    })
}

fn check_duration(demand: &Demand, limits: &Limits) -> Result<(), Refusal> {
    let asked = demand.duration();
    let limit = limits.machine.duration();
    if asked <= limit.value {
        return Ok(());
    }
    let Some(longest) = demand.longest() else {
        return Ok(());
    };
    Err(Refusal {
        quantity: Quantity::Duration,
        path: demand.path(longest, longest.end_field),
        asked: format!(
            "a test of up to {} (startTime, duration and graceful stops)",
            format_duration(asked)
        ),
        limit: format!(
            "the limit for {} is {}",
            limits.holder(),
            format_duration(limit.value)
        ),
        source_text: source(&limit, limits.machine.knobs.duration),
    })
}

fn check_requests(demand: &Demand) -> Result<(), Refusal> {
    let asked = demand.requests_per_iteration();
    if asked <= MAX_REQUESTS_PER_ITERATION {
        return Ok(());
    }
    let Some(most) = demand.most_requests() else {
        return Ok(());
    };
    Err(Refusal {
        quantity: Quantity::RequestsPerIteration,
        path: demand.path(most, "flow"),
        asked: format!("{asked} requests per iteration"),
        limit: format!("Volley sends at most {MAX_REQUESTS_PER_ITERATION} per iteration"),
        source_text: "a fixed bound; split the flow into scenarios or loop over a data file".into(),
    })
}

fn check_files(demand: &Demand, limits: &Limits) -> Result<(), Refusal> {
    let asked = demand.shared_bytes();
    let limit = limits.machine.memory_budget() / 2;
    if asked <= limit {
        return Ok(());
    }
    let path = if demand.data_bytes >= demand.upload_bytes {
        "data"
    } else {
        "multipart files"
    };
    Err(Refusal {
        quantity: Quantity::Files,
        path: path.into(),
        asked: format!(
            "{} held in memory ({} of data in {} rows, {} of upload files)",
            bytes(asked),
            bytes(demand.data_bytes),
            demand.data_rows,
            bytes(demand.upload_bytes)
        ),
        limit: format!(
            "every machine keeps them, and the limit for {} is {}",
            limits.holder(),
            bytes(limit)
        ),
        source_text: format!(
            "half of {MEMORY_BUDGET_PERCENT} % of the memory limit; use smaller files"
        ),
    })
}

/// Where a limit comes from, and how to raise it unless an operator set it.
fn source<T>(limit: &Derived<T>, knob: &str) -> String {
    if limit.set {
        limit.why.clone()
    } else {
        format!("{}; raise with {knob}", limit.why)
    }
}

fn scale_count(value: u64, factor: f64) -> u64 {
    let scaled = value as f64 * factor;
    if scaled >= u64::MAX as f64 {
        u64::MAX
    } else {
        scaled.floor() as u64
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quantity::Vus => "VUs",
            Quantity::Rate => "arrival rate",
            Quantity::Duration => "duration",
            Quantity::RequestsPerIteration => "requests per iteration",
            Quantity::Files => "data and upload files",
        })
    }
}
