//! Trend tests: exact min, max and average beside the histogram, kept
//! exact through both merges; percentiles inside [min, max]; statistics
//! from outside refused unless consistent.

use super::*;

fn ns(values: &[u64]) -> Trend {
    let mut t = Trend::new();
    for &v in values {
        t.record_ns(v);
    }
    t
}

#[test]
fn a_one_second_sleep_never_reads_below_one_second() {
    // The bucket of 1 s starts at 999.936 ms: every statistic used to read
    // a bucket edge.
    let mut t = Trend::new();
    for extra_us in [0, 37, 120, 1_512, 4_003] {
        t.record(Duration::from_secs(1) + Duration::from_micros(extra_us));
    }
    assert_eq!(t.min_ms(), 1000.0);
    assert_eq!(t.max_ms(), 1004.003);
    for p in [0.0, 50.0, 90.0, 95.0, 99.0, 100.0] {
        let v = t.percentile_ms(p);
        assert!(v >= 1000.0, "p({p}) = {v}");
        assert!(v <= 1004.003, "p({p}) = {v}");
    }
    assert_eq!(t.percentile_ms(0.0), t.min_ms());
    assert_eq!(t.percentile_ms(100.0), t.max_ms());
    assert!((t.avg_ms() - 1001.1344).abs() < 1e-9, "{}", t.avg_ms());
}

#[test]
fn microsecond_samples_give_exact_statistics() {
    // 7 µs, 3 µs, 2.2 µs, 18.8 µs and 0.3 µs: the histogram holds 7, 3, 3,
    // 19 and 1 µs, the statistics the samples themselves.
    let t = ns(&[7_000, 3_000, 2_200, 18_800, 300]);
    assert_eq!(t.count(), 5);
    assert_eq!(t.min_ms(), 0.0003);
    assert_eq!(t.max_ms(), 0.0188);
    assert_eq!(t.sum_ns(), 31_300);
    assert!((t.avg_ms() - 0.00626).abs() < 1e-15, "{}", t.avg_ms());
    // The median (3 µs) is in the 3 µs bucket with 2.2 µs.
    assert_eq!(t.percentile_ms(50.0), 0.003);
    assert_eq!(t.percentile_ms(90.0), 0.0188);
    assert_eq!(t.percentile_ms(0.0), 0.0003);
}

#[test]
fn sub_microsecond_percentiles_are_clamped_into_the_samples_range() {
    // Both are in the 1 µs bucket; no percentile may read 1 µs.
    let t = ns(&[300, 400]);
    assert_eq!(t.percentile_ms(0.0), 0.0003);
    assert_eq!(t.percentile_ms(50.0), 0.0004);
    assert_eq!(t.percentile_ms(100.0), 0.0004);
}

#[test]
fn percentiles_are_the_buckets_highest_value_within_a_thousandth() {
    let t = ns(&(1..=1000).map(|i| i * 1_000_003).collect::<Vec<_>>());
    for p in [1.0, 25.0, 50.0, 90.0, 95.0, 99.0] {
        // The sample at rank ceil(p/100 · n).
        let rank = (p / 100.0 * 1000.0_f64).ceil() as u64;
        let sample_ms = (rank * 1_000_003) as f64 / 1e6;
        let got = t.percentile_ms(p);
        assert!(got >= sample_ms, "p({p}) = {got} < {sample_ms}");
        assert!(
            got <= sample_ms * 1.001 + 0.001,
            "p({p}) = {got} more than 0.1 % + 1 µs above {sample_ms}"
        );
    }
}

#[test]
fn merging_keeps_exact_statistics_across_agents_and_intervals() {
    let (a, b, c) = (
        ns(&[1_000_000_500, 7_000]),
        ns(&[3_000, 999_999_999]),
        ns(&[42]),
    );
    let mut all = ns(&[1_000_000_500, 7_000, 3_000, 999_999_999, 42]);
    let mut merged = a.clone();
    merged.add(&b).expect("adds");
    merged.add(&c).expect("adds");
    assert_eq!(merged, all);
    assert_eq!(merged.min_ns(), 42);
    assert_eq!(merged.max_ns(), 1_000_000_500);
    assert_eq!(merged.sum_ns(), 2_000_010_541);
    // Order does not matter; empty trends change nothing either side.
    let mut other = c.clone();
    other.add(&Trend::new()).expect("adds");
    other.add(&b).expect("adds");
    other.add(&a).expect("adds");
    assert_eq!(other, merged);
    let mut empty = Trend::new();
    empty.add(&merged).expect("adds");
    assert_eq!(empty, merged);
    all.add(&Trend::new()).expect("adds");
    assert_eq!(all, merged);
}

#[test]
fn an_emptied_trend_starts_over() {
    let t = ns(&[5_000, 60_000_000_000]);
    let mut fresh = t.emptied();
    assert!(fresh.is_empty());
    assert_eq!(fresh, Trend::new());
    fresh.record_ns(9);
    assert_eq!(fresh, ns(&[9]));
}

#[test]
fn zero_is_a_real_sample_and_large_values_are_clamped() {
    let t = ns(&[0]);
    assert_eq!((t.count(), t.min_ms(), t.max_ms()), (1, 0.0, 0.0));
    let t = Trend::of(Duration::MAX);
    assert_eq!(t.max_ns(), TREND_MAX_NS);
    assert!(t.histogram().equivalent(t.histogram().max(), TREND_MAX_US));
    assert_eq!(duration_to_ns(Duration::from_nanos(1234)), 1234);
}

#[test]
fn merging_into_a_fixed_range_histogram_still_grows_it() {
    let mut fixed = Histogram::<u64>::new_with_bounds(1, 1000, 3).expect("valid bounds");
    fixed.record(10).expect("in range");
    let mut t = Trend::from_parts(fixed, 10_000, 10_000, 10_000).expect("consistent");
    t.add(&ns(&[5_000_000_000])).expect("grows");
    assert_eq!(t.count(), 2);
    assert_eq!(t.max_ns(), 5_000_000_000);
}

#[test]
fn equality_ignores_growth_history() {
    // `a` grew to a large range before; `b` never did. Same samples.
    let mut a = ns(&[5_000, 7_000]);
    a.add(&ns(&[1 << 40])).expect("grows");
    let b = ns(&[5_000, 7_000, 1 << 40]);
    assert_eq!(a, b);
}

#[test]
fn statistics_from_outside_must_fit_their_histogram() {
    let t = ns(&[2_000, 9_000_000]);
    let h = || t.histogram().clone();
    assert_eq!(
        Trend::from_parts(h(), 2_000, 9_000_000, 9_002_000),
        Ok(t.clone())
    );
    // min above max, min outside the first bucket, max outside the last.
    for (min, max, sum) in [
        (9_000_000, 2_000, 9_002_000),
        (5_000, 9_000_000, 9_005_000),
        (2_000, 7_000_000, 7_002_000),
        (2_000, TREND_MAX_NS + 1, 9_002_000),
    ] {
        assert!(
            Trend::from_parts(h(), min, max, sum).is_err(),
            "{min} {max} {sum}"
        );
    }
    // A sum no two samples between min and max could have.
    assert!(Trend::from_parts(h(), 2_000, 9_000_000, 3_999).is_err());
    assert!(Trend::from_parts(h(), 2_000, 9_000_000, 18_000_001).is_err());
    // An empty histogram has no statistics.
    assert!(Trend::from_parts(new_histogram(), 0, 0, 0).is_ok());
    let err = Trend::from_parts(new_histogram(), 0, 5, 0).expect_err("not empty");
    assert!(err.0.contains("empty histogram"), "{}", err.0);
}

#[test]
fn histograms_alone_estimate_the_statistics_from_their_buckets() {
    let mut h = new_histogram();
    for us in [999_999, 1_000_000, 1_000_400] {
        h.record(us).expect("grows");
    }
    let t = Trend::from_histogram(h.clone());
    assert_eq!(t.count(), 3);
    assert_eq!(t.min_ns(), h.lowest_equivalent(999_999) * 1000);
    assert_eq!(t.max_ns(), h.highest_equivalent(1_000_400) * 1000);
    assert!(t.min_ns() <= t.max_ns());
    let sum = t.sum_ns();
    assert!(sum >= u128::from(t.min_ns()) * 3 && sum <= u128::from(t.max_ns()) * 3);
    assert_eq!(Trend::from_histogram(new_histogram()), Trend::new());
}
