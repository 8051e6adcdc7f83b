//! Every agent's `/metrics` after a fleet test, with real `volley agent`
//! processes on loopback: each agent exports its own share, labelled by
//! test and scenario, as `_total` counters and a latency histogram whose
//! buckets add up across agents to the merged summary's totals; no
//! quantile gauge; the generator's CPU time and scheduling lag; and the
//! whole exposition passes `promtool check metrics` (Debian's
//! `prometheus`, installed by `scripts/test`).

mod fleet;

use std::io::Write as _;
use std::time::Duration;

use fleet::{Fleet, FleetOptions, plans, results, target};

/// The value of every sample of `name` carrying all of `labels`.
fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

fn promtool_check(text: &str) {
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("promtool");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/test installs Debian's prometheus)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("written");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_exports_its_share_and_the_shares_add_up() {
    let target = target().await;
    let fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("fleet forms");
    let plan = plans::arrival_rate(target.addr, 100, Duration::from_secs(2), "/");
    let view = fleet.run_to_seal(0, &plans::submit(plan)).await;
    let id = view.id.clone();
    let by_agent = results::requests_by_agent(&view.summary);
    assert_eq!(by_agent.len(), 2, "{}", view.text);
    let mut all = 0.0;
    for (i, agent) in fleet.agents.iter().enumerate() {
        let text = fleet.client(i).metrics().await.expect("/metrics answers");
        promtool_check(&text);
        let share = [("test", id.as_str()), ("scenario", "open")];
        let requests = samples(&text, "volley_test_http_requests_total", &share);
        let want = by_agent
            .iter()
            .find(|(a, _)| *a == agent.id)
            .map(|(_, r)| *r as f64)
            .expect("the agent in the breakdown");
        assert_eq!(requests, [want], "agent {}:\n{text}", agent.id);
        all += want;
        // The histogram: +Inf and _count are the request count, buckets
        // never decrease, and the bounds are the defaults.
        let bucket = "volley_test_http_req_duration_seconds_bucket";
        let inf = samples(&text, bucket, &[share[0], share[1], ("le", "+Inf")]);
        assert_eq!(inf, [want]);
        assert_eq!(
            samples(&text, "volley_test_http_req_duration_seconds_count", &share),
            [want]
        );
        let buckets = samples(&text, bucket, &share);
        assert_eq!(buckets.len(), 16, "15 bounds and +Inf:\n{text}");
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
        assert!(buckets[buckets.len() - 2] > 0.0, "{buckets:?}");
        let sum = samples(&text, "volley_test_http_req_duration_seconds_sum", &share);
        assert!(sum[0] > 0.0 && sum[0] < want, "{sum:?}");
        // The share ended; no quantile gauge anywhere.
        assert_eq!(samples(&text, "volley_test_running", &[share[0]]), [0.0]);
        assert!(!text.contains("p95"), "{text}");
        // The generator's own load.
        let cpu = samples(&text, "volley_process_cpu_seconds_total", &[]);
        assert!(cpu.len() == 1 && cpu[0] > 0.0, "{cpu:?}");
        assert!(samples(&text, "volley_cpus_available", &[])[0] >= 1.0);
        let lag = samples(&text, "volley_scheduler_lag_seconds_count", &[]);
        assert!(lag.len() == 1 && lag[0] > 10.0, "the probe ran: {lag:?}");
    }
    assert!(all >= 150.0, "{all}");
    target.shutdown().await;
}
