//! What keeps a plan from taking its agent down: the admission check of
//! this agent's exact share at prepare and commit (against its own limits,
//! which the origin only estimated), and the memory watchdog of a running
//! share, which stops the test with a reason before the kernel's OOM killer
//! would stop the agent.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::fleet::allocation::Allocation;
use crate::plan::Plan;
use crate::plan::admission::{self, Demand, Limits, MachineLimits, bytes};
use crate::plan::egress::EgressPolicy;

/// How often the watchdog reads the resident memory.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What this agent allows a share to ask for and use.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    pub limits: MachineLimits,
    /// Resident memory at which a running share is stopped; `None`: never.
    pub ceiling: Option<u64>,
    /// Where this agent's requests may go: agents may have other policies
    /// than the one that accepted the test.
    pub egress: Arc<EgressPolicy>,
}

// === impl Guard ===

impl Guard {
    /// Checks this agent's share of `plan` in `allocation`; the refusal
    /// names the field, the share asked for and this agent's limit.
    pub fn admit(&self, me: &str, plan: &Plan, allocation: &Allocation) -> Result<(), String> {
        let tuple = match allocation.tuple_for(me) {
            Ok(Some(tuple)) => tuple,
            // Not in it: nothing to run here.
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("bad allocation: {e}")),
        };
        let segment = tuple.segment();
        let fraction = segment.to().to_f64() - segment.from().to_f64();
        let share = Demand::of(plan).share(fraction, |v| tuple.scale(v));
        let limits = Limits::machine(self.limits.clone(), format!("agent {me}"));
        admission::check(&share, &limits)
            .map_err(|r| format!("agent {me} cannot hold its share of the test: {r}"))?;
        self.egress
            .check_plan(plan)
            .map_err(|r| format!("agent {me} refuses the test: {r}"))
    }
}

/// Resident memory of this process, from `VmRSS` in `/proc/self/status`
/// (bytes); `None` where that cannot be read.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS:    123456 kB` → bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

/// Why a share was stopped by its memory ceiling, for the summary.
pub fn ceiling_reason(me: &str, resident: u64, ceiling: u64) -> String {
    format!(
        "{}: agent {me} held {} of resident memory, over its ceiling of {} \
         (--memory-ceiling / VOLLEY_MEMORY_CEILING, default 90 % of its memory limit); the test \
         was stopped before the agent ran out of memory: give it fewer VUs or more memory",
        crate::fleet::protocol::MEMORY_CEILING,
        bytes(resident),
        bytes(ceiling)
    )
}

/// Reads the resident memory every [`WATCH_EVERY`] until `done`; past
/// `ceiling`, cancels `stop` and returns the reading (`None` when `done`
/// came first). `read` is [`resident_bytes`] outside tests.
pub async fn watch_memory(
    ceiling: u64,
    read: Arc<dyn Fn() -> Option<u64> + Send + Sync>,
    stop: CancellationToken,
    done: CancellationToken,
) -> Option<u64> {
    loop {
        if let Some(resident) = read()
            && resident > ceiling
        {
            stop.cancel();
            return Some(resident);
        }
        tokio::select! {
            _ = done.cancelled() => return None,
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tvolley\nVmPeak:\t  99 kB\nVmRSS:\t   2048 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(2 << 20));
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(
            resident_bytes().is_some_and(|b| b > 0),
            "this process has a resident size"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_stops_the_share_once_past_the_ceiling() {
        let resident = Arc::new(AtomicU64::new(100));
        let read = {
            let resident = resident.clone();
            Arc::new(move || Some(resident.load(Ordering::Relaxed)))
        };
        let stop = CancellationToken::new();
        let done = CancellationToken::new();
        let watch = tokio::spawn(watch_memory(500, read, stop.clone(), done.clone()));
        tokio::time::sleep(WATCH_EVERY * 3).await;
        assert!(!stop.is_cancelled(), "below the ceiling nothing happens");
        resident.store(501, Ordering::Relaxed);
        let seen = watch.await.expect("the watchdog ends");
        assert_eq!(seen, Some(501));
        assert!(stop.is_cancelled());

        // A share that ends first ends its watchdog too.
        let done = CancellationToken::new();
        let watch = tokio::spawn(watch_memory(
            u64::MAX,
            Arc::new(|| Some(1)),
            CancellationToken::new(),
            done.clone(),
        ));
        done.cancel();
        assert_eq!(watch.await.expect("the watchdog ends"), None);
    }

    #[test]
    fn a_share_is_judged_by_this_agents_own_limits() {
        let plan = crate::plan::parse(
            "vus: 90\nduration: 10s\nflow:\n  - get: http://127.0.0.1:1/\n",
            crate::plan::Format::Yaml,
            &crate::plan::LoadOptions::default(),
            &crate::plan::FsFiles,
        )
        .expect("the plan loads");
        let agents: Vec<(String, f64)> = ["a", "b", "c"]
            .iter()
            .map(|a| (a.to_string(), 1.0))
            .collect();
        let allocation = Allocation::new(1, &agents).expect("a valid allocation");
        let guard = |max_vus| Guard {
            limits: MachineLimits {
                max_vus: Some(max_vus),
                ..MachineLimits::from_capacity(2.0, Some(1 << 30), admission::Knobs::AGENT)
            },
            ceiling: None,
            egress: Arc::default(),
        };
        // A third of 90 VUs is 30.
        assert_eq!(guard(30).admit("b", &plan, &allocation), Ok(()));
        let refused = guard(29)
            .admit("b", &plan, &allocation)
            .expect_err("30 VUs are over 29");
        assert!(
            refused.starts_with("agent b cannot hold its share of the test: vus asks for 30 VUs"),
            "{refused}"
        );
        assert!(
            refused.contains("the limit for agent b is about 29 VUs"),
            "{refused}"
        );
        // An agent outside the allocation runs nothing.
        assert_eq!(guard(1).admit("z", &plan, &allocation), Ok(()));
    }

    #[test]
    fn the_reason_says_what_happened_and_what_to_do() {
        let text = ceiling_reason("agent-1", 3 << 30, 2 << 30);
        assert!(
            text.starts_with("memory ceiling: agent agent-1 held 3 GiB"),
            "{text}"
        );
        assert!(text.contains("ceiling of 2 GiB"), "{text}");
        assert!(text.contains("VOLLEY_MEMORY_CEILING"), "{text}");
    }
}
