//! Recorder tests: k6 tag expansion per sample kind, tag precedence,
//! interval draining, the cardinality bound and invalid samples.

use std::time::Duration;

use super::*;
use crate::metrics::sample::Timings;
use crate::metrics::tags::TagSet;
use crate::metrics::tests::fixture::{
    self, API, AUTH, CHECK_MAIN_OK, CHECK_TOKEN, HOME, LOGIN, MAIN, OPEN,
};
use crate::plan::{CheckId, GroupId, RequestId};

fn recorder() -> Recorder {
    Recorder::new(&fixture::plan(), RecorderOptions::default())
}

fn tags(pairs: &[(&str, &str)]) -> TagSet {
    TagSet::from_pairs(pairs.iter().copied())
}

fn key(metric: Metric, pairs: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, tags(pairs))
}

fn trend_len(s: &Snapshot, k: &SeriesKey) -> u64 {
    s.get(k)
        .and_then(Value::as_trend)
        .map(|t| t.count())
        .unwrap_or_else(|| panic!("no trend {k}"))
}

const HOME_OK: &[(&str, &str)] = &[
    ("expected_response", "true"),
    ("group", ""),
    ("kind", "page"),
    ("method", "GET"),
    ("name", "home"),
    ("scenario", "main"),
    ("status", "200"),
    ("team", "a"),
];

#[test]
fn http_sample_expands_into_every_http_metric_with_k6_tags() {
    let mut r = recorder();
    r.record(&fixture::ok(HOME, 20));
    let s = r.take_interval(1_000, Duration::from_secs(1));

    assert_eq!(
        s.get(&key(Metric::HttpReqs, HOME_OK)),
        Some(&Value::Counter(1.0))
    );
    assert_eq!(
        s.get(&key(Metric::HttpReqFailed, HOME_OK)),
        Some(&Value::Rate { trues: 0, total: 1 })
    );
    for metric in PHASES {
        assert_eq!(trend_len(&s, &key(metric, HOME_OK)), 1, "{metric:?}");
    }
    let duration = s
        .get(&key(Metric::HttpReqDuration, HOME_OK))
        .and_then(Value::as_trend)
        .expect("duration trend");
    assert_eq!(
        duration.max_ns(),
        20_000_000,
        "sending + waiting + receiving, exact"
    );
    let waiting = s
        .get(&key(Metric::HttpReqWaiting, HOME_OK))
        .and_then(Value::as_trend)
        .expect("waiting trend");
    assert_eq!(waiting.max_ns(), 19_700_000);

    let data = [("group", ""), ("scenario", "main"), ("team", "a")];
    assert_eq!(
        s.get(&key(Metric::DataSent, &data)),
        Some(&Value::Counter(100.0))
    );
    assert_eq!(
        s.get(&key(Metric::DataReceived, &data)),
        Some(&Value::Counter(1000.0))
    );
    // 11 HTTP series plus nothing else: no intended time, no VU sample.
    assert_eq!(s.series.len(), 11);
    assert_eq!(s.start_unix_ms, 1_000);
    assert_eq!(s.duration, Duration::from_secs(1));
    s.validate().expect("recorder snapshots are canonical");
}

#[test]
fn failed_request_carries_error_and_status_zero() {
    let mut r = recorder();
    r.record(&fixture::http(LOGIN, 0, Some(ErrorKind::Timeout), 5));
    r.record(&fixture::http(LOGIN, 503, None, 5));
    let s = r.take_interval(0, Duration::from_secs(1));
    let base = [
        ("group", "::auth"),
        ("method", "POST"),
        ("name", "login"),
        ("scenario", "main"),
        ("team", "a"),
        ("expected_response", "false"),
    ];
    let mut timeout = base.to_vec();
    timeout.extend([("status", "0"), ("error", "timeout")]);
    let mut unavailable = base.to_vec();
    unavailable.push(("status", "503"));
    assert_eq!(
        s.get(&key(Metric::HttpReqFailed, &timeout)),
        Some(&Value::Rate { trues: 1, total: 1 })
    );
    assert_eq!(
        s.get(&key(Metric::HttpReqs, &unavailable)),
        Some(&Value::Counter(1.0))
    );
    // Data counters do not split by status: both requests share one series.
    let data = [("group", "::auth"), ("scenario", "main"), ("team", "a")];
    assert_eq!(
        s.get(&key(Metric::DataSent, &data)),
        Some(&Value::Counter(200.0))
    );
}

#[test]
fn tag_precedence_scenario_then_request_then_system_then_extra() {
    let mut plan = fixture::plan();
    plan.scenarios[0].tags = vec![
        ("agent".into(), "from-plan".into()),
        ("kind".into(), "scenario".into()),
        ("name".into(), "scenario-name".into()),
    ];
    let opts = RecorderOptions {
        extra_tags: vec![("agent".into(), "a1".into())],
        ..RecorderOptions::default()
    };
    let mut r = Recorder::new(&plan, opts);
    r.record(&fixture::ok(HOME, 5));
    r.record(&Sample::Vus { active: 1, max: 2 });
    let s = r.take_interval(0, Duration::from_secs(1));
    let reqs = s
        .series
        .iter()
        .find(|(k, _)| k.metric == Metric::HttpReqs)
        .map(|(k, _)| &k.tags)
        .expect("http_reqs series");
    assert_eq!(reqs.get("agent"), Some("a1"), "extra tags win");
    assert_eq!(
        reqs.get("kind"),
        Some("page"),
        "request tags beat scenario tags"
    );
    assert_eq!(reqs.get("name"), Some("home"), "system tags beat plan tags");
    assert_eq!(
        s.get(&key(Metric::Vus, &[("agent", "a1")])),
        Some(&Value::gauge_of(1.0)),
        "extra tags are on every series"
    );
}

#[test]
fn checks_groups_iterations_dropped_and_waits_get_scenario_tags() {
    let mut r = recorder();
    r.record_all(&[
        Sample::Check {
            check: CHECK_MAIN_OK,
            ok: true,
        },
        Sample::Check {
            check: CHECK_MAIN_OK,
            ok: false,
        },
        Sample::Check {
            check: CHECK_TOKEN,
            ok: true,
        },
        Sample::Group {
            group: AUTH,
            duration: Duration::from_millis(30),
        },
        Sample::Iteration {
            scenario: MAIN,
            duration: Duration::from_millis(50),
            interrupted: false,
        },
        Sample::Iteration {
            scenario: MAIN,
            duration: Duration::from_millis(70),
            interrupted: true,
        },
        Sample::Dropped {
            scenario: OPEN,
            count: 3,
        },
        Sample::IntendedWait {
            scenario: OPEN,
            wait: Duration::from_millis(400),
        },
    ]);
    let s = r.take_interval(0, Duration::from_secs(1));
    assert_eq!(
        s.get(&key(
            Metric::Checks,
            &[
                ("check", "status is 200"),
                ("group", ""),
                ("scenario", "main"),
                ("team", "a")
            ]
        )),
        Some(&Value::Rate { trues: 1, total: 2 })
    );
    assert_eq!(
        s.get(&key(
            Metric::Checks,
            &[
                ("check", "has token"),
                ("group", "::auth"),
                ("scenario", "main"),
                ("team", "a")
            ]
        )),
        Some(&Value::Rate { trues: 1, total: 1 })
    );
    assert_eq!(
        trend_len(
            &s,
            &key(
                Metric::GroupDuration,
                &[("group", "::auth"), ("scenario", "main"), ("team", "a")]
            )
        ),
        1
    );
    // k6 tags iterations with the root group.
    let main = [("group", ""), ("scenario", "main"), ("team", "a")];
    assert_eq!(
        s.get(&key(Metric::Iterations, &main)),
        Some(&Value::Counter(1.0))
    );
    assert_eq!(
        trend_len(&s, &key(Metric::IterationDuration, &main)),
        1,
        "interrupted iterations record no duration either"
    );
    assert_eq!(
        s.get(&key(Metric::DroppedIterations, &[("scenario", "open")])),
        Some(&Value::Counter(3.0))
    );
    assert_eq!(
        trend_len(
            &s,
            &key(
                Metric::HttpReqDurationIntended,
                &[("dropped", "true"), ("scenario", "open")]
            )
        ),
        1
    );
}

#[test]
fn intended_latency_uses_the_request_tags() {
    let mut r = recorder();
    let mut sample = fixture::ok(API, 10);
    if let Sample::Http(h) = &mut sample {
        h.intended = Some(Duration::from_millis(250));
    }
    r.record(&sample);
    r.record(&sample);
    let s = r.take_interval(0, Duration::from_secs(1));
    let tags = [
        ("expected_response", "true"),
        ("group", ""),
        ("method", "GET"),
        ("name", "api"),
        ("scenario", "open"),
        ("status", "200"),
    ];
    let h = s
        .get(&key(Metric::HttpReqDurationIntended, &tags))
        .and_then(Value::as_trend)
        .expect("intended trend");
    assert_eq!(h.count(), 2);
    assert_eq!(h.max_ms(), 250.0);
}

#[test]
fn vus_gauges_keep_last_value_and_extremes() {
    let mut r = recorder();
    for (active, max) in [(3, 10), (7, 10), (5, 12)] {
        r.record(&Sample::Vus { active, max });
    }
    let s = r.take_interval(0, Duration::from_secs(1));
    assert_eq!(
        s.get(&key(Metric::Vus, &[])),
        Some(&Value::Gauge {
            value: 5.0,
            min: 3.0,
            max: 7.0
        })
    );
    assert_eq!(
        s.get(&key(Metric::VusMax, &[])),
        Some(&Value::Gauge {
            value: 12.0,
            min: 10.0,
            max: 12.0
        })
    );
}

#[test]
fn take_interval_drains_and_the_next_interval_starts_empty() {
    let mut r = recorder();
    r.record(&fixture::ok(HOME, 10));
    r.record(&Sample::Vus { active: 2, max: 2 });
    let first = r.take_interval(0, Duration::from_secs(1));
    assert!(first.get(&key(Metric::HttpReqs, HOME_OK)).is_some());

    let empty = r.take_interval(1_000, Duration::from_secs(1));
    assert!(empty.series.is_empty(), "{:?}", empty.series);

    r.record(&fixture::ok(HOME, 30));
    r.record(&fixture::ok(HOME, 30));
    let third = r.take_interval(2_000, Duration::from_secs(1));
    assert_eq!(
        third.get(&key(Metric::HttpReqs, HOME_OK)),
        Some(&Value::Counter(2.0))
    );
    let h = third
        .get(&key(Metric::HttpReqDuration, HOME_OK))
        .and_then(Value::as_trend)
        .expect("trend");
    assert_eq!(h.count(), 2, "nothing carried over from the first interval");
    assert_eq!(h.min_ms(), 30.0);
    assert!(third.get(&key(Metric::Vus, &[])).is_none());
}

#[test]
fn idle_series_release_their_values() {
    let mut r = recorder();
    r.record(&fixture::ok(HOME, 10));
    let _ = r.take_interval(0, Duration::from_secs(1));
    let id = r.ids[&key(Metric::HttpReqDuration, HOME_OK)] as usize;
    assert!(
        r.values[id].is_some(),
        "kept, emptied, for the next interval"
    );
    let _ = r.take_interval(1_000, Duration::from_secs(1));
    assert!(r.values[id].is_none(), "idle a whole interval: released");
}

#[test]
fn cardinality_bound_folds_new_series_into_overflow_and_keeps_every_sample() {
    let opts = RecorderOptions {
        max_series: 60,
        extra_tags: vec![("agent".into(), "a1".into())],
    };
    let mut r = Recorder::new(&fixture::plan(), opts);
    assert_eq!(r.max_series(), 60);
    let mut n = 0u64;
    for status in 200..400u16 {
        r.record(&fixture::http(HOME, status, None, 5));
        n += 1;
        assert!(r.num_series() <= r.max_series());
    }
    for _ in 0..5 {
        r.record(&Sample::Check {
            check: CHECK_MAIN_OK,
            ok: true,
        });
    }
    assert!(r.overflowed() > 0);
    let s = r.take_interval(0, Duration::from_secs(1));
    let total: f64 = s
        .series
        .iter()
        .filter(|(k, _)| k.metric == Metric::HttpReqs)
        .map(|(_, v)| v.samples())
        .sum();
    assert_eq!(total, n as f64, "no request lost to the bound");
    let overflow = key(
        Metric::HttpReqs,
        &[("agent", "a1"), ("overflow", "true"), ("scenario", "main")],
    );
    let folded = s
        .get(&overflow)
        .map(Value::samples)
        .expect("overflow series");
    // Every folded HTTP sample and every folded check counts once.
    let checks = key(
        Metric::Checks,
        &[("agent", "a1"), ("overflow", "true"), ("scenario", "main")],
    );
    let folded_checks = s.get(&checks).map(Value::samples).unwrap_or(0.0);
    assert_eq!(r.overflowed() as f64, folded + folded_checks);
    assert!(r.num_series() <= 60);
    // Related series fold together: every http_reqs series has a duration
    // series with the same tags and the same count.
    for (k, v) in s
        .series
        .iter()
        .filter(|(k, _)| k.metric == Metric::HttpReqs)
    {
        let d = SeriesKey::new(Metric::HttpReqDuration, k.tags.clone());
        assert_eq!(s.get(&d).map(Value::samples), Some(v.samples()), "{k}");
    }
}

#[test]
fn tiny_bound_is_raised_to_the_overflow_reserve() {
    let opts = RecorderOptions {
        max_series: 1,
        extra_tags: Vec::new(),
    };
    let mut r = Recorder::new(&fixture::plan(), opts);
    assert_eq!(r.max_series(), 2 + 2 * SCENARIO_METRICS);
    for status in 100..600u16 {
        r.record(&fixture::http(API, status, None, 1));
        r.record(&fixture::http(HOME, status, Some(ErrorKind::Reset), 1));
    }
    assert!(r.num_series() <= r.max_series());
    assert_eq!(r.overflowed(), 1000);
}

#[test]
fn absurd_bounds_are_clamped() {
    let opts = RecorderOptions {
        max_series: usize::MAX,
        extra_tags: Vec::new(),
    };
    let mut r = Recorder::new(&fixture::plan(), opts);
    assert_eq!(r.max_series(), MAX_SERIES_CEILING);
    r.record(&fixture::ok(HOME, 1));
    assert_eq!(r.num_series(), 13);
}

#[test]
fn samples_naming_unknown_plan_entries_are_counted_not_recorded() {
    let mut r = recorder();
    r.record_all(&[
        Sample::Http(crate::metrics::sample::HttpSample {
            request: RequestId(99),
            status: 200,
            error: None,
            expected: Some(true),
            timings: Timings::default(),
            intended: None,
            bytes_sent: 0,
            bytes_received: 0,
            proto: 11,
            tls: 0,
        }),
        Sample::Check {
            check: CheckId(42),
            ok: true,
        },
        Sample::Group {
            group: GroupId(7),
            duration: Duration::ZERO,
        },
        Sample::Iteration {
            scenario: 9,
            duration: Duration::ZERO,
            interrupted: false,
        },
        Sample::Dropped {
            scenario: 9,
            count: 1,
        },
        Sample::IntendedWait {
            scenario: 9,
            wait: Duration::ZERO,
        },
    ]);
    assert_eq!(r.invalid_samples(), 6);
    assert!(r.take_interval(0, Duration::from_secs(1)).series.is_empty());
}

#[test]
fn series_are_created_once_per_combination() {
    let mut r = recorder();
    for _ in 0..100 {
        r.record(&fixture::ok(HOME, 10));
    }
    let after_one_kind = r.num_series();
    assert_eq!(after_one_kind, 2 + 11);
    r.record(&fixture::http(HOME, 404, None, 10));
    // A new status: 9 new per-status series; data counters are shared.
    assert_eq!(r.num_series(), after_one_kind + 9);
}

#[test]
fn absurd_timings_are_clamped_not_panicked_on() {
    let mut r = recorder();
    let mut s = fixture::ok(HOME, 1);
    if let Sample::Http(h) = &mut s {
        h.timings.sending = Duration::MAX;
        h.timings.waiting = Duration::MAX;
        h.intended = Some(Duration::MAX);
    }
    r.record(&s);
    let snap = r.take_interval(0, Duration::from_secs(1));
    let h = snap
        .get(&key(Metric::HttpReqDuration, HOME_OK))
        .and_then(Value::as_trend)
        .expect("trend");
    assert_eq!(h.max_ns(), crate::metrics::trend::TREND_MAX_NS);
}

#[test]
fn recorder_and_its_outputs_can_move_between_tasks() {
    fn send<T: Send + 'static>() {}
    send::<Recorder>();
    send::<Snapshot>();
    send::<crate::metrics::Aggregate>();
}

#[test]
fn script_declared_entries_are_learned_in_any_order() {
    use crate::plan::dynamic::RequestDesc;
    let plan = fixture::plan();
    let mut rec = Recorder::new(&plan, RecorderOptions::default());
    let desc = |name: &str| RequestDesc {
        scenario: 0,
        name: name.into(),
        method: "GET".into(),
        group: "::g".into(),
        tags: vec![("kind".into(), "api".into())],
    };
    let first = plan.dynamic.request_id(&desc("first"));
    let second = plan.dynamic.request_id(&desc("second"));
    let tagged = [("kind".to_string(), "api".to_string())];
    let check = plan.dynamic.check_id("ok", 0, "::g", &tagged);
    let http = |request| {
        Sample::Http(HttpSample {
            request,
            status: 200,
            error: None,
            expected: Some(true),
            timings: Timings::default(),
            intended: None,
            bytes_sent: 1,
            bytes_received: 1,
            proto: 11,
            tls: 0,
        })
    };
    // The later id first: the earlier one must still be learned after.
    rec.record(&http(second));
    rec.record(&http(first));
    rec.record(&Sample::Check { check, ok: true });
    let s = rec.take_interval(0, Duration::from_secs(1));
    for name in ["first", "second"] {
        let k = key(
            Metric::HttpReqs,
            &[
                ("expected_response", "true"),
                ("group", "::g"),
                ("kind", "api"),
                ("method", "GET"),
                ("name", name),
                ("scenario", "main"),
                ("status", "200"),
                ("team", "a"),
            ],
        );
        assert!(s.get(&k).is_some(), "no series {k}");
    }
    let c = key(
        Metric::Checks,
        &[
            ("check", "ok"),
            ("group", "::g"),
            ("kind", "api"),
            ("scenario", "main"),
            ("team", "a"),
        ],
    );
    assert!(
        s.get(&c).is_some(),
        "the check keeps the script's tags: {c}"
    );
    assert_eq!(rec.invalid_samples(), 0);
}

#[test]
fn points_are_kept_only_when_asked_and_match_the_interval() {
    let mut r = recorder();
    r.record(&fixture::ok(HOME, 10));
    assert!(r.take_points().is_empty(), "no capture asked");

    let mut r = recorder();
    r.capture_points();
    r.record(&fixture::ok(HOME, 10));
    r.record(&fixture::ok(HOME, 30));
    r.record(&Sample::Check {
        check: CHECK_MAIN_OK,
        ok: false,
    });
    r.record(&Sample::Vus { active: 3, max: 5 });
    let points = r.take_points();
    assert!(r.take_points().is_empty(), "taken once");
    let keys = r.keys_from(0).to_vec();
    let of = |k: &SeriesKey| -> Vec<f64> {
        points
            .iter()
            .filter(|p| &keys[p.series as usize] == k)
            .map(|p| p.value)
            .collect()
    };
    assert_eq!(of(&key(Metric::HttpReqs, HOME_OK)), [1.0, 1.0]);
    assert_eq!(of(&key(Metric::HttpReqDuration, HOME_OK)), [10.0, 30.0]);
    assert_eq!(of(&key(Metric::HttpReqFailed, HOME_OK)), [0.0, 0.0]);
    assert_eq!(of(&key(Metric::Vus, &[])), [3.0]);
    assert_eq!(of(&key(Metric::VusMax, &[])), [5.0]);
    let checks: Vec<f64> = points
        .iter()
        .filter(|p| keys[p.series as usize].metric == Metric::Checks)
        .map(|p| p.value)
        .collect();
    assert_eq!(checks, [0.0]);
    // Every point's series saw data in the interval.
    let s = r.take_interval(0, Duration::from_secs(1));
    for p in &points {
        assert!(s.get(&keys[p.series as usize]).is_some());
    }
    assert_eq!(r.keys_from(keys.len()), &[] as &[SeriesKey]);
    assert_eq!(r.keys_from(usize::MAX), &[] as &[SeriesKey]);
}
