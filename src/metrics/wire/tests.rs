//! Wire form tests: exact round trips, one encoding per snapshot, and a
//! named error with an offset for every kind of malformed input.

use std::time::Duration;

use super::*;
use crate::metrics::recorder::{Recorder, RecorderOptions};
use crate::metrics::sample::{ErrorKind, Sample};
use crate::metrics::tests::fixture::{self, API, CHECK_MAIN_OK, HOME, LOGIN, MAIN};
use crate::metrics::trend::histograms_equal;

/// A snapshot with every kind of value and shared tag strings.
fn recorded() -> Snapshot {
    let opts = RecorderOptions {
        extra_tags: vec![("agent".into(), "a-1".into())],
        ..RecorderOptions::default()
    };
    let mut r = Recorder::new(&fixture::plan(), opts);
    for ms in 1..50 {
        r.record(&fixture::ok(HOME, ms));
    }
    r.record_all(&[
        fixture::http(LOGIN, 0, Some(ErrorKind::ConnectRefused), 3),
        fixture::http(API, 503, None, 9),
        Sample::Check {
            check: CHECK_MAIN_OK,
            ok: true,
        },
        Sample::Iteration {
            scenario: MAIN,
            duration: Duration::from_millis(120),
            interrupted: false,
        },
        Sample::Vus { active: 3, max: 4 },
    ]);
    r.take_interval(1_790_000_000_000, Duration::from_millis(1000))
}

fn reason(bytes: &[u8]) -> DecodeReason {
    Snapshot::decode(bytes)
        .expect_err("must be rejected")
        .reason
}

#[test]
fn round_trip_is_exact_and_deterministic() {
    let s = recorded();
    let bytes = s.encode();
    let back = Snapshot::decode(&bytes).expect("own encoding decodes");
    assert_eq!(back, s);
    assert_eq!(back.encode(), bytes, "one snapshot, one encoding");
    back.validate().expect("decoded snapshots are canonical");
}

#[test]
fn empty_snapshot_and_odd_durations_round_trip() {
    let s = Snapshot::empty(0, Duration::new(3, 999_999_999));
    assert_eq!(Snapshot::decode(&s.encode()).expect("valid"), s);
}

#[test]
fn tag_strings_are_stored_once() {
    let s = recorded();
    let bytes = s.encode();
    let occurrences = bytes.windows(3).filter(|w| w == b"a-1").count();
    assert_eq!(occurrences, 1);
}

#[test]
fn every_truncation_is_an_error_with_an_offset_inside_the_input() {
    let mut r = Recorder::new(&fixture::plan(), RecorderOptions::default());
    r.record(&fixture::http(API, 503, None, 9));
    r.record(&Sample::Vus { active: 3, max: 4 });
    let bytes = r.take_interval(5, Duration::from_secs(1)).encode();
    for cut in 0..bytes.len() {
        let err = Snapshot::decode(&bytes[..cut]).expect_err("truncated");
        assert!(err.offset <= cut, "cut {cut}: offset {}", err.offset);
    }
}

#[test]
fn header_errors_name_what_is_wrong() {
    let bytes = recorded().encode();
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert!(matches!(reason(&magic), DecodeReason::Magic { .. }));
    let mut version = bytes.clone();
    version[4] = 9;
    let err = Snapshot::decode(&version).expect_err("version");
    assert_eq!(err.offset, 4);
    assert_eq!(
        err.to_string(),
        "invalid snapshot at byte 4: version 9 is not supported (this build reads versions 1 and 2)"
    );
    version[4] = 3;
    assert_eq!(reason(&version), DecodeReason::Version { found: 3 });
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(reason(&trailing), DecodeReason::Trailing { extra: 1 });
}

/// Hand-builds a snapshot body after the header, for targeted errors.
fn framed(strings: &[&str], body: &[u8]) -> Vec<u8> {
    framed_as(VERSION, strings, body)
}

/// [`framed`] with the given format version.
fn framed_as(version: u8, strings: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = b"VLYS".to_vec();
    out.push(version);
    put_varint(&mut out, 0);
    put_varint(&mut out, 1);
    put_varint(&mut out, 0);
    put_varint(&mut out, strings.len() as u64);
    for s in strings {
        put_varint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(body);
    out
}

fn counter(tags: &[(u8, u8)], value: f64) -> Vec<u8> {
    let mut b = vec![metric_id(Metric::HttpReqs), tags.len() as u8];
    for (k, v) in tags {
        b.extend([*k, *v]);
    }
    b.extend(value.to_le_bytes());
    b
}

#[test]
fn hand_built_valid_input_decodes() {
    let mut body = vec![1];
    body.extend(counter(&[(0, 1)], 5.0));
    let s = Snapshot::decode(&framed(&["status", "200"], &body)).expect("valid");
    assert_eq!(s.series.len(), 1);
    assert_eq!(s.series[0].0.tags.get("status"), Some("200"));
    assert_eq!(s.series[0].1, Value::Counter(5.0));
}

#[test]
fn structural_errors_are_caught() {
    let strings = ["a", "b", "c"];
    let one = |series: Vec<u8>| {
        let mut body = vec![1];
        body.extend(series);
        framed(&strings, &body)
    };

    let mut unknown = vec![1, 200, 0];
    unknown.extend(0f64.to_le_bytes());
    assert_eq!(
        reason(&framed(&strings, &unknown)),
        DecodeReason::Metric { id: 200 }
    );
    assert_eq!(
        reason(&one(counter(&[(0, 7)], 1.0))),
        DecodeReason::StringIndex { index: 7, count: 3 }
    );
    assert!(matches!(
        reason(&one(counter(&[(1, 0), (0, 0)], 1.0))),
        DecodeReason::TagOrder { .. }
    ));
    for bad in [f64::NAN, f64::INFINITY, 1e300, -1e17] {
        assert!(
            matches!(reason(&one(counter(&[], bad))), DecodeReason::Number { .. }),
            "{bad}"
        );
    }

    let mut twice = vec![2];
    twice.extend(counter(&[], 1.0));
    twice.extend(counter(&[], 1.0));
    assert!(matches!(
        reason(&framed(&strings, &twice)),
        DecodeReason::SeriesOrder { .. }
    ));

    let rate = vec![1, metric_id(Metric::HttpReqFailed), 0, 5, 4];
    assert!(matches!(
        reason(&framed(&strings, &rate)),
        DecodeReason::Rate {
            trues: 5,
            total: 4,
            ..
        }
    ));

    let bad_utf8 = framed(&[], &[]);
    let mut bad_utf8 = bad_utf8[..bad_utf8.len() - 1].to_vec();
    bad_utf8.extend([1, 2, 0xff, 0xfe, 0]);
    assert_eq!(reason(&bad_utf8), DecodeReason::Utf8 { index: 0 });
}

#[test]
fn absurd_lengths_are_refused_before_allocating() {
    // A series count of 2^62 in a 20-byte input.
    let mut huge = framed(&[], &[]);
    huge.pop();
    put_varint(&mut huge, 0);
    put_varint(&mut huge, 1 << 62);
    let err = Snapshot::decode(&huge).expect_err("absurd count");
    assert!(
        matches!(err.reason, DecodeReason::Length { value, .. } if value == 1 << 62),
        "{err}"
    );

    let mut overlong = b"VLYS\x01".to_vec();
    overlong.extend([0xff; 11]);
    assert!(matches!(reason(&overlong), DecodeReason::Varint { .. }));

    let mut nanos = b"VLYS\x01".to_vec();
    put_varint(&mut nanos, 0);
    put_varint(&mut nanos, 0);
    put_varint(&mut nanos, 1_000_000_000);
    assert!(matches!(reason(&nanos), DecodeReason::Nanos { .. }));
}

#[test]
fn histogram_errors_name_the_series_and_the_budget_holds() {
    let s = recorded();
    let bytes = s.encode();
    let err = Snapshot::decode_with_budget(&bytes, 1024).expect_err("over budget");
    assert_eq!(err.reason, DecodeReason::HistogramBudget { budget: 1024 });

    // Corrupt the cookie of the first histogram: find its frame by cookie.
    let cookie = 0x1c84_9314u32.to_be_bytes();
    let at = bytes
        .windows(4)
        .position(|w| w == cookie)
        .expect("a trend is encoded");
    let mut bad = bytes.clone();
    bad[at] ^= 0xff;
    let err = Snapshot::decode(&bad).expect_err("bad histogram");
    assert_eq!(err.offset, at);
    assert!(
        matches!(&err.reason, DecodeReason::Histogram { series, .. } if series.starts_with("http_req")),
        "{err}"
    );
}

#[test]
fn metric_ids_are_unique_and_stable() {
    let mut ids: Vec<u8> = Metric::ALL.iter().map(|m| metric_id(*m)).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=19).collect::<Vec<u8>>());
    for m in Metric::ALL {
        assert_eq!(metric_from_id(metric_id(m)), Some(m));
    }
    assert_eq!(metric_from_id(0), None);
}

#[test]
fn custom_metrics_travel_by_name_kind_and_unit() {
    use crate::metrics::catalog::{Unit, custom};
    let login = custom("wire_test_login_time", MetricKind::Trend, Unit::Time).expect("valid");
    let calls = custom("wire_test_calls", MetricKind::Counter, Unit::Default).expect("valid");
    let mut snap = recorded();
    snap.series.push((
        SeriesKey::new(calls, TagSet::from_pairs([("scenario", "main")])),
        Value::Counter(3.0),
    ));
    snap.series.push((
        SeriesKey::new(login, TagSet::from_pairs([("scenario", "main")])),
        Value::trend_of(Duration::from_millis(12)),
    ));
    snap.series.sort_by(|a, b| a.0.cmp(&b.0));
    let back = Snapshot::decode(&snap.encode()).expect("round trip");
    assert_eq!(back, snap);
    // A peer naming a custom metric with an impossible kind is refused.
    let bytes = snap.encode();
    let at = bytes
        .iter()
        .position(|b| *b == 0xFF)
        .expect("a custom metric byte");
    let mut bad = bytes.clone();
    bad[at + 1] = 9;
    assert!(Snapshot::decode(&bad).is_err());
}

/// One `http_req_duration` series (no tags) holding `t`, as version 2
/// writes it; with `v1`, as version 1 did (the histogram alone).
fn trend_series(t: &Trend, v1: bool) -> Vec<u8> {
    let mut b = vec![metric_id(Metric::HttpReqDuration), 0];
    if !v1 {
        put_varint(&mut b, t.min_ns());
        put_varint(&mut b, t.max_ns());
        put_varint128(&mut b, t.sum_ns());
    }
    let mut hist = Vec::new();
    hdr::encode(t.histogram(), &mut hist);
    put_varint(&mut b, hist.len() as u64);
    b.extend(hist);
    b
}

fn sample_trend() -> Trend {
    let mut t = Trend::new();
    for ns in [7_000, 3_000, 1_000_000_123, 999_999_999] {
        t.record_ns(ns);
    }
    t
}

#[test]
fn trends_travel_with_their_exact_statistics() {
    let t = sample_trend();
    let mut body = vec![1];
    body.extend(trend_series(&t, false));
    let s = Snapshot::decode(&framed(&[], &body)).expect("valid");
    let back = s.series[0].1.as_trend().expect("a trend");
    assert_eq!(back, &t);
    assert_eq!((back.min_ns(), back.max_ns()), (3_000, 1_000_000_123));
    assert_eq!(back.sum_ns(), 2_000_010_122);
    // The encoder writes exactly this.
    let snap = Snapshot {
        start_unix_ms: 0,
        duration: Duration::from_secs(1),
        series: vec![(
            SeriesKey::new(Metric::HttpReqDuration, TagSet::new()),
            Value::Trend(Box::new(t)),
        )],
    };
    assert_eq!(snap.encode(), framed(&[], &body));
}

#[test]
fn sums_beyond_64_bits_round_trip() {
    // 2^53 samples of 1.1e15 ns would need 103 bits; a sum past 2^64 must
    // travel whole.
    let mut body = vec![1];
    let mut series = trend_series(&sample_trend(), false);
    // Rewrite the sum: find it after the two 64-bit varints.
    let t = sample_trend();
    let mut head = vec![metric_id(Metric::HttpReqDuration), 0];
    put_varint(&mut head, t.min_ns());
    put_varint(&mut head, t.max_ns());
    let mut old_sum = Vec::new();
    put_varint128(&mut old_sum, t.sum_ns());
    let mut new_sum = Vec::new();
    put_varint128(&mut new_sum, 1u128 << 70);
    series.splice(head.len()..head.len() + old_sum.len(), new_sum);
    body.extend(series);
    // Decodes as a number, then is refused as inconsistent (4 samples
    // cannot sum to 2^70 ns): the varint itself was read whole.
    assert!(matches!(
        reason(&framed(&[], &body)),
        DecodeReason::TrendStats { .. }
    ));
    let mut r = Reader {
        buf: &{
            let mut b = Vec::new();
            put_varint128(&mut b, u128::MAX);
            b
        },
        pos: 0,
    };
    assert_eq!(r.varint128("a sum"), Ok(u128::MAX));
    let overlong = [0xff; 19];
    let mut r = Reader {
        buf: &overlong,
        pos: 0,
    };
    assert!(matches!(
        r.varint128("a sum"),
        Err(DecodeError {
            reason: DecodeReason::Varint { bits: 128, .. },
            ..
        })
    ));
}

#[test]
fn exact_statistics_that_do_not_fit_the_histogram_are_refused() {
    let t = sample_trend();
    let good = trend_series(&t, false);
    // The minimum is the third byte after the tag count: raise it past the
    // histogram's first bucket.
    let mut bad = vec![metric_id(Metric::HttpReqDuration), 0];
    put_varint(&mut bad, 500_000);
    bad.extend(&good[2 + 2..]);
    let mut body = vec![1];
    body.extend(bad);
    let err = Snapshot::decode(&framed(&[], &body)).expect_err("inconsistent");
    assert_eq!(err.offset, framed(&[], &[1]).len() + 2);
    assert!(
        err.to_string().contains("series http_req_duration:")
            && err.to_string().contains("exact statistics"),
        "{err}"
    );
}

#[test]
fn version_1_snapshots_still_decode_with_estimated_statistics() {
    let t = sample_trend();
    let mut body = vec![2];
    body.extend(counter(&[], 4.0));
    body.extend(trend_series(&t, true));
    let s = Snapshot::decode(&framed_as(1, &[], &body)).expect("version 1 is read");
    assert_eq!(s.series[0].1, Value::Counter(4.0));
    let back = s.series[1].1.as_trend().expect("a trend");
    assert_eq!(back.count(), 4);
    assert!(histograms_equal(back.histogram(), t.histogram()));
    // What version 1 knew: the first bucket's lowest and the last bucket's
    // highest value.
    let h = t.histogram();
    assert_eq!(back.min_ns(), h.lowest_equivalent(3) * 1000);
    assert_eq!(back.max_ns(), h.highest_equivalent(1_000_000) * 1000);
    // Version 2 bytes of the same body (no exact statistics) are refused:
    // the histogram length is read as a minimum.
    assert!(Snapshot::decode(&framed_as(2, &[], &body)).is_err());
}
