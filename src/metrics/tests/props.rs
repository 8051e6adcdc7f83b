//! Property tests of the metrics core: the wire form round-trips, merging
//! is order-free, merged histograms are exact, intervals add up to the
//! whole, and no input makes the decoder or the recorder panic.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::fixture;
use crate::metrics::aggregate::Aggregate;
use crate::metrics::aggregate::trend_stat_ms;
use crate::metrics::catalog::{Metric, MetricKind};
use crate::metrics::recorder::{Recorder, RecorderOptions};
use crate::metrics::sample::{ErrorKind, HttpSample, Sample, Timings};
use crate::metrics::snapshot::{SeriesKey, Snapshot};
use crate::metrics::tags::TagSet;
use crate::metrics::trend::{TREND_MAX_NS, Trend, histograms_equal};
use crate::metrics::value::Value;
use crate::metrics::wire::hdr;
use crate::plan::{CheckId, GroupId, RequestId, TrendStat};

fn arb_tags() -> impl Strategy<Value = TagSet> {
    let keys = prop::sample::select(vec!["agent", "name", "scenario", "status", "ünï"]);
    let values = prop::sample::select(vec!["", "a", "b", "200", "503", "main", "ünï"]);
    prop::collection::vec((keys, values), 0..4).prop_map(TagSet::from_pairs)
}

/// Nanosecond values: mostly realistic latencies, some anywhere in range.
fn arb_ns() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..2_000_000, 3 => 0u64..5_000_000_000, 1 => 0..=TREND_MAX_NS]
}

fn trend_of(ns: &[u64]) -> Value {
    let mut t = Trend::new();
    for &v in ns {
        t.record_ns(v);
    }
    Value::Trend(Box::new(t))
}

/// A value of `kind`. With `integral`, counters and gauges hold integers,
/// whose float sums are exact in any order (as byte and VU counts are).
fn arb_value(kind: MetricKind, integral: bool) -> BoxedStrategy<Value> {
    let number = move || -> BoxedStrategy<f64> {
        if integral {
            (0u32..1_000_000).prop_map(f64::from).boxed()
        } else {
            (-1e12f64..1e12).boxed()
        }
    };
    match kind {
        MetricKind::Counter => number().prop_map(Value::Counter).boxed(),
        MetricKind::Gauge => (number(), number(), number())
            .prop_map(|(value, min, max)| Value::Gauge { value, min, max })
            .boxed(),
        MetricKind::Rate => (0u64..10_000, 0u64..10_000)
            .prop_map(|(a, b)| Value::Rate {
                trues: a.min(b),
                total: a.max(b),
            })
            .boxed(),
        MetricKind::Trend => prop::collection::vec(arb_ns(), 0..40)
            .prop_map(|v| trend_of(&v))
            .boxed(),
    }
}

fn arb_snapshot(integral: bool, max_series: usize) -> impl Strategy<Value = Snapshot> {
    let keys = prop::collection::vec(
        (prop::sample::select(Metric::ALL.to_vec()), arb_tags()),
        0..max_series,
    );
    (0u64..4_000_000_000_000, 1u64..10_000, keys)
        .prop_flat_map(move |(start, ms, keys)| {
            let values: Vec<BoxedStrategy<Value>> = keys
                .iter()
                .map(|(m, _)| arb_value(m.kind(), integral))
                .collect();
            (Just(start), Just(ms), Just(keys), values)
        })
        .prop_map(|(start, ms, keys, values)| {
            let series: BTreeMap<SeriesKey, Value> = keys
                .into_iter()
                .zip(values)
                .map(|((m, t), v)| (SeriesKey::new(m, t), v))
                .collect();
            Snapshot {
                start_unix_ms: start,
                duration: Duration::from_millis(ms),
                series: series.into_iter().collect(),
            }
        })
}

fn merged(a: &Snapshot, b: &Snapshot) -> Snapshot {
    let mut m = a.clone();
    m.merge_sources(b).expect("generated snapshots are valid");
    m
}

/// Through the wire and back, as the fleet would see it.
fn wire(s: &Snapshot) -> Snapshot {
    Snapshot::decode(&s.encode()).expect("own encoding decodes")
}

fn arb_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![8 => 0u64..5_000, 1 => 0u64..2_000_000].prop_map(Duration::from_micros)
}

/// Samples over the fixture plan, including ids the plan does not have.
fn arb_sample() -> impl Strategy<Value = Sample> {
    let http = (
        0u32..4,
        prop::sample::select(vec![0u16, 200, 201, 302, 404, 503]),
        prop::option::of(prop::sample::select(ErrorKind::ALL.to_vec())),
        [
            arb_duration(),
            arb_duration(),
            arb_duration(),
            arb_duration(),
            arb_duration(),
            arb_duration(),
        ],
        prop::option::of(arb_duration()),
        0u64..10_000,
    )
        .prop_map(|(req, status, error, t, intended, bytes)| {
            Sample::Http(HttpSample {
                request: RequestId(req),
                status,
                error,
                expected: Some(error.is_none() && (200..=399).contains(&status)),
                timings: Timings {
                    blocked: t[0],
                    connecting: t[1],
                    tls_handshaking: t[2],
                    sending: t[3],
                    waiting: t[4],
                    receiving: t[5],
                },
                intended,
                bytes_sent: bytes / 3,
                bytes_received: bytes,
                proto: 11,
                tls: 0,
            })
        });
    prop_oneof![
        4 => http,
        1 => (0u32..4, any::<bool>()).prop_map(|(c, ok)| Sample::Check { check: CheckId(c), ok }),
        1 => (0u16..3, arb_duration(), any::<bool>()).prop_map(|(scenario, duration, interrupted)| {
            Sample::Iteration { scenario, duration, interrupted }
        }),
        1 => (0u32..2, arb_duration()).prop_map(|(g, duration)| Sample::Group { group: GroupId(g), duration }),
        1 => (0u16..3, 0u32..10).prop_map(|(scenario, count)| Sample::Dropped { scenario, count }),
        1 => (0u16..3, arb_duration()).prop_map(|(scenario, wait)| Sample::IntendedWait { scenario, wait }),
        1 => (0u64..100, 0u64..100).prop_map(|(active, max)| Sample::Vus { active, max }),
    ]
}

proptest! {
    // Case counts keep the suite quick in debug builds, where every
    // histogram operation walks its counts array unoptimised.
    #![proptest_config(Config::with_cases(64))]

    #[test]
    fn encode_decode_round_trips(s in arb_snapshot(false, 16)) {
        let bytes = s.encode();
        let back = Snapshot::decode(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn merge_sources_is_commutative(a in arb_snapshot(true, 10), b in arb_snapshot(true, 10)) {
        prop_assert_eq!(wire(&merged(&a, &b)), wire(&merged(&b, &a)));
    }

    #[test]
    fn merge_sources_is_associative(
        a in arb_snapshot(true, 8),
        b in arb_snapshot(true, 8),
        c in arb_snapshot(true, 8),
    ) {
        let left = merged(&merged(&a, &b), &c);
        let right = merged(&a, &merged(&b, &c));
        prop_assert_eq!(wire(&left), wire(&right));
    }

    #[test]
    fn merged_histograms_equal_one_histogram_of_every_sample(
        samples in prop::collection::vec((arb_ns(), 0usize..5), 1..300),
    ) {
        let all: Vec<u64> = samples.iter().map(|(v, _)| *v).collect();
        let whole = trend_of(&all);
        // Each part goes through the wire, as from an agent.
        let key = SeriesKey::new(Metric::HttpReqDuration, TagSet::new());
        let mut total = Snapshot::empty(0, Duration::from_secs(1));
        for part in 0..5 {
            let values: Vec<u64> = samples.iter().filter(|(_, p)| *p == part).map(|(v, _)| *v).collect();
            let s = Snapshot {
                start_unix_ms: 0,
                duration: Duration::from_secs(1),
                series: vec![(key.clone(), trend_of(&values))],
            };
            total.merge_sources(&wire(&s)).expect("same kinds");
        }
        let merged = total.get(&key).and_then(Value::as_trend).expect("merged trend");
        let single = whole.as_trend().expect("trend");
        prop_assert_eq!(merged, single);
        for p in [0.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
            prop_assert_eq!(merged.percentile_ms(p), single.percentile_ms(p), "p({})", p);
        }
        prop_assert_eq!(merged.count(), all.len() as u64);
        // The exact statistics are the samples' own.
        let min = all.iter().copied().min().expect("at least one sample");
        let max = all.iter().copied().max().expect("at least one sample");
        prop_assert_eq!(merged.min_ns(), min);
        prop_assert_eq!(merged.max_ns(), max);
        prop_assert_eq!(merged.sum_ns(), all.iter().map(|v| u128::from(*v)).sum::<u128>());
        prop_assert_eq!(merged.percentile_ms(0.0), merged.min_ms());
        prop_assert_eq!(merged.percentile_ms(100.0), merged.max_ms());
    }

    #[test]
    fn intervals_accumulate_to_recording_everything_at_once(
        samples in prop::collection::vec(arb_sample(), 0..100),
        cuts in prop::collection::vec(0usize..100, 0..5),
        max_series in prop::sample::select(vec![30usize, 5000]),
    ) {
        let plan = fixture::plan();
        let opts = RecorderOptions { max_series, extra_tags: vec![("agent".into(), "x".into())] };

        let mut once = Recorder::new(&plan, opts.clone());
        once.record_all(&samples);
        let mut whole = Aggregate::new();
        whole.add_interval(&once.take_interval(0, Duration::from_secs(1))).expect("valid");

        let mut stepwise = Recorder::new(&plan, opts);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(samples.len())).collect();
        cuts.sort_unstable();
        cuts.push(samples.len());
        let mut total = Aggregate::new();
        let mut from = 0;
        for (i, to) in cuts.into_iter().enumerate() {
            stepwise.record_all(&samples[from..to]);
            let s = stepwise.take_interval(i as u64 * 1000, Duration::from_secs(1));
            total.add_interval(&wire(&s)).expect("valid");
            from = to;
        }
        prop_assert_eq!(&total, &whole);
        prop_assert_eq!(stepwise.overflowed(), once.overflowed());
        prop_assert_eq!(stepwise.invalid_samples(), once.invalid_samples());
        prop_assert!(stepwise.num_series() <= stepwise.max_series());
    }
}

/// Runs `cases` inputs of `strategy` through `check`, failing on the first
/// error; returns how many ran so the test can report it.
fn run_counted<S: Strategy>(
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> usize {
    let count = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config::with_cases(cases));
    runner
        .run(&strategy, |input| {
            count.fetch_add(1, Ordering::Relaxed);
            check(input)
        })
        .expect("no case may fail");
    count.into_inner()
}

/// A decoded snapshot must be usable: canonical, re-encodable, mergeable
/// with itself and foldable into an aggregate whose statistics compute.
fn check_decoded(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(s) = Snapshot::decode(bytes) {
        prop_assert!(s.validate().is_ok());
        prop_assert_eq!(Snapshot::decode(&s.encode()).ok(), Some(s.clone()));
        let mut twice = s.clone();
        prop_assert!(twice.merge_sources(&s).is_ok());
        let mut agg = Aggregate::new();
        prop_assert!(agg.add_interval(&s).is_ok());
        prop_assert!(agg.add_interval(&twice).is_ok());
        for (k, v) in agg.series() {
            if let Some(h) = v.as_trend() {
                for stat in TrendStat::k6_defaults() {
                    prop_assert!(trend_stat_ms(h, &stat).is_finite(), "{}", k);
                }
            }
        }
    }
    Ok(())
}

/// A V2 histogram as a peer could write it: any header within or near the
/// accepted limits, counts that are well-formed runs or raw bytes.
fn arb_v2_histogram() -> impl Strategy<Value = Vec<u8>> {
    let counts = prop::collection::vec(prop_oneof![1i64..1000, -3000i64..-1, any::<i64>()], 0..60);
    (
        0u32..=4,
        prop_oneof![Just(1u64), 1u64..100_000],
        0u32..=44,
        counts,
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(digits, low, shift, counts, raw)| {
            let high = (1u64 << shift).max(low.saturating_mul(2));
            let mut payload = Vec::new();
            match raw {
                Some(bytes) => payload = bytes,
                None => {
                    for n in counts {
                        let mut v = ((n << 1) ^ (n >> 63)) as u64;
                        for _ in 0..8 {
                            if v < 0x80 {
                                break;
                            }
                            payload.push((v as u8 & 0x7f) | 0x80);
                            v >>= 7;
                        }
                        payload.push(v as u8);
                    }
                }
            }
            let mut v2 = 0x1c84_9313u32.to_be_bytes().to_vec();
            v2.extend((payload.len() as u32).to_be_bytes());
            v2.extend(0u32.to_be_bytes());
            v2.extend(digits.to_be_bytes());
            v2.extend(low.to_be_bytes());
            v2.extend(high.to_be_bytes());
            v2.extend(1.0f64.to_bits().to_be_bytes());
            v2.extend(payload);
            let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
            z.write_all(&v2).expect("in memory");
            let body = z.finish().expect("in memory");
            let mut framed = 0x1c84_9314u32.to_be_bytes().to_vec();
            framed.extend((body.len() as u32).to_be_bytes());
            framed.extend(body);
            framed
        })
}

#[test]
fn hostile_histograms_never_panic_and_merge_like_any_other() {
    let accepted = AtomicUsize::new(0);
    let n = run_counted(1000, arb_v2_histogram(), |bytes| {
        let Ok(h) = hdr::decode(&bytes) else {
            return Ok(());
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        let peer = Value::Trend(Box::new(Trend::from_histogram(h)));
        let mut mine = trend_of(&[0, 1_000, 1_500_000, 2_000_000_000]);
        prop_assert!(mine.merge_sources(&peer).is_ok());
        let mut theirs = peer.clone();
        prop_assert!(theirs.accumulate(&mine).is_ok());
        for v in [&mine, &theirs] {
            let t = v.as_trend().expect("trend");
            for stat in TrendStat::k6_defaults() {
                prop_assert!(trend_stat_ms(t, &stat).is_finite());
            }
            prop_assert!(
                t.min_ms() <= t.percentile_ms(50.0) && t.percentile_ms(50.0) <= t.max_ms()
            );
            let h = t.histogram();
            let mut again = Vec::new();
            hdr::encode(h, &mut again);
            if h.len() > hdr::MAX_SAMPLES {
                // Two accepted histograms can add up past the bound; such a
                // merge is refused again on the wire, not silently cut.
                prop_assert!(hdr::decode(&again).is_err());
                continue;
            }
            let back = hdr::decode(&again).map_err(TestCaseError::fail)?;
            prop_assert!(histograms_equal(h, &back));
        }
        Ok(())
    });
    let accepted = accepted.into_inner();
    eprintln!("ran {n} hostile V2 histograms without a panic; {accepted} were accepted");
    assert_eq!(n, 1000);
    assert!(accepted > 0, "the generator must reach the accepting path");
}

#[test]
fn decoding_random_bytes_never_panics() {
    let raw = run_counted(2000, prop::collection::vec(any::<u8>(), 0..512), |b| {
        check_decoded(&b)
    });
    // Past the magic and version, so the body parser is exercised too.
    // Either version a peer may send.
    let headed = (1u8..=2, prop::collection::vec(any::<u8>(), 0..512)).prop_map(|(v, tail)| {
        let mut b = b"VLYS".to_vec();
        b.push(v);
        b.extend(tail);
        b
    });
    let headed = run_counted(2000, headed, |b| check_decoded(&b));
    eprintln!("decoded {raw} random inputs and {headed} random bodies without a panic");
    assert_eq!(raw + headed, 4000);
}

#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Flip(Vec<(usize, u8)>),
    Insert(usize, u8),
    Remove(usize),
}

fn arb_damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        prop::collection::vec((any::<usize>(), 1u8..=255), 1..4).prop_map(Damage::Flip),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        any::<usize>().prop_map(Damage::Remove),
    ]
}

fn damage(mut b: Vec<u8>, d: &Damage) -> Vec<u8> {
    let len = b.len().max(1);
    match d {
        Damage::Truncate(at) => b.truncate(at % len),
        Damage::Flip(flips) => {
            for (at, mask) in flips {
                if let Some(byte) = b.get_mut(at % len) {
                    *byte ^= mask;
                }
            }
        }
        Damage::Insert(at, byte) => b.insert(at % (b.len() + 1), *byte),
        Damage::Remove(at) => {
            if !b.is_empty() {
                b.remove(at % len);
            }
        }
    }
    b
}

#[test]
fn decoding_damaged_encodings_never_panics() {
    let strategy = (arb_snapshot(false, 8), arb_damage());
    let n = run_counted(1000, strategy, |(s, d)| {
        let bytes = damage(s.encode(), &d);
        check_decoded(&bytes)
    });
    eprintln!("decoded {n} truncated or corrupted encodings without a panic");
    assert_eq!(n, 1000);
}
