//! The pictures of a run: `--report FILE.html` (k6's
//! `K6_WEB_DASHBOARD_EXPORT`) writes the one-file HTML report at the end;
//! `--dashboard` (k6's `K6_WEB_DASHBOARD=true`) serves the same page live
//! while a local run goes, on `K6_WEB_DASHBOARD_HOST`:`K6_WEB_DASHBOARD_PORT`
//! (127.0.0.1:5665, as k6), its data refreshed every
//! `K6_WEB_DASHBOARD_PERIOD` (1 s here; k6's is 10 s).
//!
//! [`Pictures`] wraps the run's console observer: it folds every interval
//! into the report's time series (`report::html::timeline`) and, for the
//! dashboard, publishes the page's data (the summary so far included) once
//! per period. A fleet run (`volley run --agent`) samples the fleet's live
//! view instead (`fleet`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use tokio::sync::watch;

use crate::api::dashboard::{self, Dashboard};
use crate::engine::{IntervalReport, Observer, PointBatch};
use crate::metrics::{Summary, ThresholdOutcome};
use crate::plan::Plan;
use crate::report::html::{Meta, PageConfig, ReportData, SummaryData, Timeline, report_page};

mod fleet;

pub use fleet::FleetPictures;

/// k6's default dashboard address.
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 5665;
/// How often the dashboard's data is refreshed unless
/// `K6_WEB_DASHBOARD_PERIOD` says otherwise.
const DEFAULT_PERIOD: Duration = Duration::from_secs(1);

/// What the flags and `K6_WEB_DASHBOARD*` ask for.
#[derive(Debug, Default)]
pub struct PictureSettings {
    /// `--report FILE` or `K6_WEB_DASHBOARD_EXPORT`.
    pub report: Option<PathBuf>,
    /// `--dashboard` or `K6_WEB_DASHBOARD=true`: where and how often.
    pub dashboard: Option<(SocketAddr, Duration)>,
}

impl PictureSettings {
    /// From `--report` and `--dashboard` (clap already read
    /// `K6_WEB_DASHBOARD_EXPORT` and `K6_WEB_DASHBOARD` into them) and the
    /// other `K6_WEB_DASHBOARD_*` variables.
    pub fn resolve(
        report: Option<PathBuf>,
        dashboard: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<PictureSettings> {
        if let Some(path) = &report
            && path.as_os_str().is_empty()
        {
            anyhow::bail!("--report: expected a file name such as report.html");
        }
        let dashboard = if dashboard {
            let host = env("K6_WEB_DASHBOARD_HOST").unwrap_or_else(|| DEFAULT_HOST.to_owned());
            let port = match env("K6_WEB_DASHBOARD_PORT") {
                None => DEFAULT_PORT,
                Some(p) => p.trim().parse::<u16>().map_err(|_| {
                    anyhow::anyhow!(
                        "K6_WEB_DASHBOARD_PORT={p:?}: expected a port number (0 to 65535; 0 picks a free one)"
                    )
                })?,
            };
            let ip: std::net::IpAddr = host.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "K6_WEB_DASHBOARD_HOST={host:?}: expected an IP address such as 127.0.0.1 (or 0.0.0.0 to serve every interface)"
                )
            })?;
            let period = match env("K6_WEB_DASHBOARD_PERIOD") {
                None => DEFAULT_PERIOD,
                Some(p) => crate::plan::parse_duration(&p)
                    .map_err(|e| anyhow::anyhow!("K6_WEB_DASHBOARD_PERIOD={p:?}: {e}"))?,
            };
            if period < Duration::from_millis(100) {
                anyhow::bail!(
                    "K6_WEB_DASHBOARD_PERIOD: {period:?} is too short; expected 100ms or more (default 1s)"
                );
            }
            Some((SocketAddr::new(ip, port), period))
        } else {
            None
        };
        Ok(PictureSettings { report, dashboard })
    }

    pub fn any(&self) -> bool {
        self.report.is_some() || self.dashboard.is_some()
    }

    /// Creates the report file now, so a path that cannot be written
    /// stops the run before it starts rather than after it; the report
    /// replaces the empty file at the end.
    pub fn create_report_file(&self) -> anyhow::Result<()> {
        if let Some(path) = &self.report {
            std::fs::File::create(path).with_context(|| {
                format!(
                    "--report (K6_WEB_DASHBOARD_EXPORT): cannot write {}",
                    path.display()
                )
            })?;
        }
        Ok(())
    }
}

/// The dashboard's server, bound before the run starts.
pub struct DashboardServer {
    tx: watch::Sender<Bytes>,
    period: Duration,
    stop: tokio_util::sync::CancellationToken,
    pub addr: SocketAddr,
}

impl DashboardServer {
    /// Binds (so a taken port stops the run before it starts); serving
    /// starts with [`DashboardServer::start`].
    pub fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(addr).with_context(|| {
            format!("--dashboard: cannot listen on {addr} (K6_WEB_DASHBOARD_HOST/PORT)")
        })?;
        listener
            .set_nonblocking(true)
            .context("--dashboard: cannot make the listener non-blocking")?;
        Ok(listener)
    }

    /// Serves the page on `listener` until [`DashboardServer::stop`]; must
    /// be called within the runtime.
    pub fn start(
        listener: std::net::TcpListener,
        first: &ReportData,
        period: Duration,
    ) -> anyhow::Result<DashboardServer> {
        let listener = tokio::net::TcpListener::from_std(listener)
            .context("--dashboard: cannot serve the listener")?;
        let addr = listener
            .local_addr()
            .context("--dashboard: no local address")?;
        let page = report_page(
            first,
            &PageConfig {
                live_url: Some("data".to_owned()),
                period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            },
        );
        let (tx, rx) = watch::channel(data_json(first));
        let stop = tokio_util::sync::CancellationToken::new();
        let served = Dashboard {
            page: Bytes::from(page),
            data: rx,
            hosts: Dashboard::hosts_for(addr),
        };
        let stopped = stop.clone();
        tokio::spawn(dashboard::serve_dashboard(listener, served, async move {
            stopped.cancelled().await
        }));
        Ok(DashboardServer {
            tx,
            period,
            stop,
            addr,
        })
    }

    fn publish(&self, data: &ReportData) {
        self.tx.send_replace(data_json(data));
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

fn data_json(data: &ReportData) -> Bytes {
    Bytes::from(serde_json::to_vec(data).unwrap_or_else(|_| b"{}".to_vec()))
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The console observer of a local run with the report's time series (and
/// the dashboard's data) beside it.
pub struct Pictures<O> {
    pub inner: O,
    plan: Arc<Plan>,
    source: String,
    timeline: Timeline,
    start_unix_ms: Option<u64>,
    vus_max: u64,
    dashboard: Option<DashboardServer>,
    /// The thresholds as last judged, for the live summary.
    outcomes: Vec<ThresholdOutcome>,
    next_publish: Duration,
    /// False when neither a report nor a dashboard was asked for: then
    /// intervals only pass through.
    active: bool,
}

impl<O: Observer> Pictures<O> {
    pub fn new(inner: O, plan: Arc<Plan>, source: String, active: bool) -> Pictures<O> {
        let scenarios = plan.scenarios.iter().map(|s| s.name.clone()).collect();
        Pictures {
            inner,
            timeline: Timeline::new(plan.nominal_duration(), scenarios),
            plan,
            source,
            start_unix_ms: None,
            vus_max: 0,
            dashboard: None,
            outcomes: Vec::new(),
            next_publish: Duration::ZERO,
            active,
        }
    }

    /// The data before the first interval (the dashboard's first page).
    pub fn empty_data(&self) -> ReportData {
        self.data(None, Duration::ZERO, "running")
    }

    pub fn attach(&mut self, dashboard: DashboardServer) {
        self.dashboard = Some(dashboard);
    }

    fn data(&self, summary: Option<&Summary>, elapsed: Duration, status: &str) -> ReportData {
        ReportData {
            meta: Meta {
                source: self.source.clone(),
                execution: "local".to_owned(),
                test_id: None,
                start_unix_ms: self.start_unix_ms.unwrap_or_else(now_unix_ms),
                duration_ms: elapsed.as_secs_f64() * 1000.0,
                vus_max: self.vus_max,
                status: status.to_owned(),
                generated_unix_ms: now_unix_ms(),
            },
            timeline: self.timeline.points(),
            scenarios: self.timeline.scenarios().to_vec(),
            summary: summary.map(SummaryData::from_summary),
            fleet: None,
        }
    }

    /// The run ended: the dashboard shows the final results, and the
    /// report's data is returned for writing.
    pub fn finish(&mut self, summary: &Summary, elapsed: Duration, status: &str) -> ReportData {
        let data = self.data(Some(summary), elapsed, status);
        if let Some(d) = &self.dashboard {
            d.publish(&data);
        }
        data
    }
}

impl<O> Drop for Pictures<O> {
    fn drop(&mut self) {
        if let Some(d) = &self.dashboard {
            d.stop();
        }
    }
}

impl<O: Observer> Observer for Pictures<O> {
    fn on_interval(&mut self, report: &IntervalReport<'_>) {
        self.inner.on_interval(report);
        if !self.active {
            return;
        }
        if self.start_unix_ms.is_none() {
            self.start_unix_ms = Some(report.snapshot.start_unix_ms);
        }
        self.vus_max = self.vus_max.max(report.vus_max);
        self.timeline
            .push(report.snapshot, report.elapsed, report.vus, report.vus_max);
        if let Some(outcomes) = report.thresholds {
            self.outcomes = outcomes.to_vec();
        }
        if let Some(d) = &self.dashboard
            && report.elapsed >= self.next_publish
        {
            let summary = Summary::build(
                report.total,
                &self.plan,
                report.elapsed,
                self.outcomes.clone(),
            );
            d.publish(&self.data(Some(&summary), report.elapsed, "running"));
            while self.next_publish <= report.elapsed {
                self.next_publish += d.period;
            }
        }
    }

    fn wants_points(&self) -> bool {
        self.inner.wants_points()
    }

    fn on_points(&mut self, batch: &PointBatch<'_>) {
        self.inner.on_points(batch);
    }
}

/// Writes the report file.
pub fn write_report(path: &std::path::Path, data: &ReportData) -> anyhow::Result<()> {
    let page = report_page(
        data,
        &PageConfig {
            live_url: None,
            period_ms: 0,
        },
    );
    std::fs::write(path, page).with_context(|| format!("--report: cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_dashboard_defaults_to_k6s_loopback_address() {
        let s = PictureSettings::resolve(None, true, &env(&[])).expect("defaults");
        assert_eq!(
            s.dashboard,
            Some((
                "127.0.0.1:5665".parse().expect("addr"),
                Duration::from_secs(1)
            ))
        );
        let s = PictureSettings::resolve(None, false, &env(&[])).expect("off");
        assert!(!s.any());
    }

    #[test]
    fn the_dashboard_variables_are_read_and_checked() {
        let s = PictureSettings::resolve(
            Some("r.html".into()),
            true,
            &env(&[
                ("K6_WEB_DASHBOARD_HOST", "::1"),
                ("K6_WEB_DASHBOARD_PORT", "0"),
                ("K6_WEB_DASHBOARD_PERIOD", "10s"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            s.dashboard,
            Some(("[::1]:0".parse().expect("addr"), Duration::from_secs(10)))
        );
        for (k, v, says) in [
            (
                "K6_WEB_DASHBOARD_PORT",
                "70000",
                "K6_WEB_DASHBOARD_PORT=\"70000\"",
            ),
            (
                "K6_WEB_DASHBOARD_HOST",
                "localhost",
                "expected an IP address",
            ),
            ("K6_WEB_DASHBOARD_PERIOD", "soon", "K6_WEB_DASHBOARD_PERIOD"),
            ("K6_WEB_DASHBOARD_PERIOD", "10ms", "too short"),
        ] {
            let e = PictureSettings::resolve(None, true, &env(&[(k, v)]))
                .expect_err(v)
                .to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
