//! Following a fleet test from the command line (`volley run --agent`,
//! `volley demo`): live progress, then the merged summary and k6's exit code.
//!
//! The agent the test was submitted to may die mid-test (a successor then
//! coordinates it). So the follower learns the other agents' API addresses
//! while the first one answers, and when it stops answering, follows the
//! test through the next one; any agent can show any test. It gives up only
//! when no agent has answered for [`GIVE_UP_AFTER`].

use std::io::IsTerminal;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::exit;
use crate::api::{ApiClient, ClientError, SummaryView, TestView};
use crate::report::progress;

/// How long the agent being asked may stay silent before the next is tried.
const SWITCH_AFTER: Duration = Duration::from_secs(3);
/// How long the whole fleet may stay silent before the follower gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);
/// How often progress is polled.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// How to show a fleet test while following it.
pub struct FollowOptions {
    pub quiet: bool,
    pub no_color: bool,
    pub summary_export: Option<std::path::PathBuf>,
    /// `--junit FILE`: the fleet's thresholds and checks as JUnit XML.
    pub junit: Option<std::path::PathBuf>,
    /// `--report FILE`: the HTML report, its time series sampled from the
    /// fleet's live view as it is polled.
    pub report: Option<(std::path::PathBuf, String)>,
    /// False for `--no-summary` / `--summary-mode disabled`.
    pub summary: super::run::SummaryMode,
}

/// The agents a follower may ask, the first one first.
struct Agents {
    clients: Vec<ApiClient>,
    current: usize,
    /// When the current agent last answered (or was switched to).
    last_answer: Instant,
    /// When any agent last answered.
    last_any: Instant,
}

impl Agents {
    /// `first`, then every other agent it lists as a member.
    async fn learn(first: &ApiClient) -> Agents {
        let mut clients = vec![first.clone()];
        if let Ok(members) = first.members().await {
            let mine = first.base_url();
            for m in members {
                let Some(addr) = m.api_addr else { continue };
                let url = format!("http://{addr}");
                if url != mine
                    && let Ok(client) = first.for_agent(&url)
                {
                    clients.push(client);
                }
            }
        }
        let now = Instant::now();
        Agents {
            clients,
            current: 0,
            last_answer: now,
            last_any: now,
        }
    }

    fn api(&self) -> &ApiClient {
        &self.clients[self.current]
    }

    fn answered(&mut self) {
        let now = Instant::now();
        self.last_answer = now;
        self.last_any = now;
    }

    /// After a failed call: moves on to the next agent once the current
    /// one has been silent for [`SWITCH_AFTER`]; `Err` when the whole fleet
    /// has been silent for [`GIVE_UP_AFTER`].
    fn failed(&mut self, id: &str, error: &ClientError) -> Result<(), String> {
        if self.last_any.elapsed() > GIVE_UP_AFTER {
            return Err(format!(
                "no agent has answered about test {id} for {} s (last error: {error})",
                GIVE_UP_AFTER.as_secs()
            ));
        }
        if self.clients.len() > 1 && self.last_answer.elapsed() > SWITCH_AFTER {
            let from = self.api().base_url();
            self.current = (self.current + 1) % self.clients.len();
            self.last_answer = Instant::now();
            eprintln!(
                "\n{from} does not answer ({error}): following test {id} through {}",
                self.api().base_url()
            );
        }
        Ok(())
    }

    /// The sealed summary, from whichever agent answers.
    async fn summary(&mut self, id: &str) -> Result<SummaryView, String> {
        loop {
            match self.api().get_summary(id).await {
                Ok(s) => return Ok(s),
                Err(e) if e.status().is_some() => return Err(e.to_string()),
                Err(e) => self.failed(id, &e)?,
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// Polls a fleet test until it ends, then prints its summary; returns the
/// exit code (0, 99 thresholds failed, 103 aborted through the API, 105
/// interrupted here, 108 `exec.test.abort()`, 1 could not run).
pub async fn follow(api: &ApiClient, id: &str, args: &FollowOptions) -> u8 {
    let stop = CancellationToken::new();
    let interrupted = super::signals::spawn_sigint_handler(stop.clone());
    let show = !args.quiet && std::io::stderr().is_terminal();
    let color = !args.no_color && std::io::stdout().is_terminal();
    let mut agents = Agents::learn(api).await;
    let mut aborted = false;
    let mut drew = false;
    let mut script_aborted = false;
    let mut phase = String::new();
    let mut pictures = args
        .report
        .as_ref()
        .map(|(_, source)| super::report_out::FleetPictures::new(source.clone()));
    loop {
        if stop.is_cancelled() && !aborted {
            aborted = true;
            match agents.api().abort(id).await {
                Ok(_) => eprintln!("\nasked the fleet to abort test {id}"),
                Err(e) => eprintln!("\ncannot abort test {id}: {e}"),
            }
        }
        match agents.api().get_test(id).await {
            Ok(view) => {
                agents.answered();
                if let Some(p) = pictures.as_mut() {
                    p.observe(&view);
                }
                if show {
                    drew |= draw(&view, color);
                }
                if is_over(&view) {
                    phase.clone_from(&view.brief.phase);
                    if drew {
                        eprintln!();
                    }
                    if let Some(reason) = view
                        .incidents
                        .iter()
                        .find(|i| i.contains(crate::fleet::protocol::SCRIPT_ABORT))
                    {
                        eprintln!("{reason}");
                        script_aborted = true;
                    }
                    if view.brief.phase == "error" {
                        for i in &view.incidents {
                            eprintln!("  {i}");
                        }
                        eprintln!("error: test {id} could not run");
                        return exit::FAILURE;
                    }
                    break;
                }
            }
            Err(e) => {
                tracing::debug!("progress not available: {e}");
                if let Err(message) = agents.failed(id, &e) {
                    eprintln!("\nerror: {message}");
                    return exit::FAILURE;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = stop.cancelled(), if !aborted => {}
        }
    }
    let summary = match agents.summary(id).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot fetch the summary of {id}: {e}");
            return exit::FAILURE;
        }
    };
    let text = crate::report::text::render(
        &summary.summary,
        &crate::report::text::TextOptions {
            color,
            title: Some(format!("fleet test {id}")),
            full: args.summary.full(),
        },
    );
    if args.summary.shown() {
        println!("{text}");
    }
    if let Some(file) = &args.summary_export {
        let body = serde_json::to_vec_pretty(&summary.k6_export).unwrap_or_default();
        if let Err(e) = std::fs::write(file, body) {
            eprintln!(
                "error: --summary-export: cannot write {}: {e}",
                file.display()
            );
            return exit::FAILURE;
        }
    }
    if let Some(file) = &args.junit {
        let xml = crate::report::junit::junit_xml(&summary.summary);
        if let Err(e) = std::fs::write(file, xml) {
            eprintln!("error: --junit: cannot write {}: {e}", file.display());
            return exit::FAILURE;
        }
    }
    if let (Some((file, _)), Some(p)) = (&args.report, &pictures) {
        let data = p.finish(id, &summary);
        if let Err(e) = super::report_out::write_report(file, &data) {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    }
    exit_code(interrupted.is_set(), script_aborted, &phase, summary.passed)
}

/// k6's exit code for a fleet test that ended in `phase`: a Ctrl+C here
/// wins (105), then a script's `exec.test.abort()` (108), then an abort
/// someone else asked for through the API (103, as k6 stopped through its
/// REST API), then the thresholds.
fn exit_code(interrupted: bool, script_aborted: bool, phase: &str, passed: bool) -> u8 {
    if interrupted {
        exit::INTERRUPTED
    } else if script_aborted {
        exit::SCRIPT_ABORTED
    } else if phase == "aborted" {
        exit::ABORTED_THROUGH_API
    } else if passed {
        exit::OK
    } else {
        exit::THRESHOLDS_FAILED
    }
}

fn is_over(view: &TestView) -> bool {
    matches!(
        view.brief.phase.as_str(),
        "passed" | "failed" | "aborted" | "error"
    )
}

/// Redraws the live progress line; true if it drew one.
fn draw(view: &TestView, color: bool) -> bool {
    let Some(live) = &view.live else {
        return false;
    };
    let line = progress::line(
        &progress::Progress {
            elapsed: Duration::from_millis(live.elapsed_ms),
            total: Duration::ZERO,
            vus: live.vus,
            vus_max: live.vus,
            iterations: live.iterations,
            rps: live.rps,
            p95_ms: Some(live.p95_ms),
            errors: live.failed,
            requests: live.requests,
            phase: Some(format!(
                "{} on {} agents",
                view.brief.phase,
                view.agent_states.len()
            )),
            scenarios: Vec::new(),
        },
        crate::os::terminal_width(),
        color,
    );
    eprint!("\r{line}\x1b[K");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abort_through_the_api_is_not_a_pass() {
        assert_eq!(exit_code(false, false, "aborted", true), 103);
        assert_eq!(exit_code(true, false, "aborted", true), 105);
        assert_eq!(exit_code(false, true, "aborted", true), 108);
        assert_eq!(exit_code(false, false, "passed", true), 0);
        assert_eq!(exit_code(false, false, "failed", false), 99);
    }
}
