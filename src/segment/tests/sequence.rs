//! Segments and sequences: parsing in every accepted form, errors that
//! name the element, k6's fill for a lone segment, and capacity weights.

use super::r;
use crate::segment::{
    MAX_LCD, Rational, Segment, SegmentError, SegmentSequence, WEIGHT_RESOLUTION,
};

#[test]
fn segments_parse_in_all_forms() {
    let third = Segment::new(r(1, 3), r(2, 3)).ok();
    assert_eq!(Segment::parse("1/3:2/3").ok(), third);
    assert_eq!(
        Segment::parse("50%:75%").ok(),
        Segment::new(r(1, 2), r(3, 4)).ok()
    );
    assert_eq!(
        Segment::parse("0.5:0.75").ok(),
        Segment::new(r(1, 2), r(3, 4)).ok()
    );
    assert_eq!(
        Segment::parse("1/2").ok(),
        Segment::new(Rational::ZERO, r(1, 2)).ok()
    );
    assert_eq!(Segment::parse("0:1").ok(), Some(Segment::full()));
    assert_eq!(Segment::full().to_string(), "0:1");
    assert_eq!(third.map(|s| s.length()), Some(r(1, 3)));
}

#[test]
fn bad_segments_say_what_and_where() {
    let err = Segment::parse("2/3:1/3").err();
    assert!(
        matches!(&err, Some(SegmentError::EmptySegment { text, .. }) if text == "2/3:1/3"),
        "{err:?}"
    );
    let err = Segment::parse("0:3/2").err();
    assert!(
        matches!(&err, Some(SegmentError::OutOfRange { text, value }) if text == "0:3/2" && *value == r(3, 2)),
        "{err:?}"
    );
    assert!(matches!(
        Segment::parse("0:1:2"),
        Err(SegmentError::SegmentSyntax { .. })
    ));
    assert!(matches!(
        Segment::parse("0:x"),
        Err(SegmentError::InvalidNumber { .. })
    ));
    assert!(matches!(
        Segment::parse("0"),
        Err(SegmentError::EmptySegment { .. })
    ));
}

#[test]
fn sequences_are_filled_to_zero_and_one() {
    let seq = SegmentSequence::parse("1/3,2/3").ok();
    assert_eq!(
        seq.as_ref().map(|s| s.to_string()).as_deref(),
        Some("0,1/3,2/3,1")
    );
    assert_eq!(seq.as_ref().map(|s| s.segment_count()), Some(3));
    assert_eq!(seq.as_ref().map(|s| s.lcd()), Some(3));
    let full = SegmentSequence::parse("1").ok();
    assert_eq!(full, Some(SegmentSequence::full()));
    let decimals = SegmentSequence::parse("0, 0.3, 50%, 1").ok();
    assert_eq!(decimals.map(|s| s.lcd()), Some(10));
}

#[test]
fn bad_sequences_name_the_element() {
    match SegmentSequence::parse("0,1/2,1/3,1") {
        Err(SegmentError::NotIncreasing {
            index,
            element,
            previous,
            ..
        }) => {
            assert_eq!((index, element, previous), (2, r(1, 3), r(1, 2)));
        }
        other => panic!("expected NotIncreasing, got {other:?}"),
    }
    // Without a written leading 0 the index still counts written elements.
    assert!(matches!(
        SegmentSequence::parse("1/2,1/2"),
        Err(SegmentError::NotIncreasing { index: 1, .. })
    ));
    match SegmentSequence::parse("0,abc,1") {
        Err(err @ SegmentError::SequenceElement { index: 1, .. }) => {
            assert!(err.to_string().contains("\"abc\""), "{err}");
        }
        other => panic!("expected SequenceElement, got {other:?}"),
    }
    assert!(matches!(
        SegmentSequence::parse("0,3/2"),
        Err(SegmentError::SequenceElement { index: 1, .. })
    ));
    assert!(matches!(
        SegmentSequence::parse(" "),
        Err(SegmentError::EmptySequence { .. })
    ));
    assert!(matches!(
        SegmentSequence::parse("0,,1"),
        Err(SegmentError::SequenceElement { index: 1, .. })
    ));
}

#[test]
fn too_fine_sequences_are_refused_with_the_limit() {
    // Coprime denominators multiply: 1021 · 1019 · 1013 · 1009 > MAX_LCD.
    let err = SegmentSequence::parse("0,1/1021,1/1019,1/1013,1/1009,1").err();
    match err {
        Some(e @ SegmentError::TooFine { lcd: Some(lcd), .. }) => {
            assert!(lcd > MAX_LCD, "{lcd}");
            assert!(e.to_string().contains(&MAX_LCD.to_string()), "{e}");
        }
        other => panic!("expected TooFine, got {other:?}"),
    }
    let huge = format!("0,1/{},1/{},1", u64::MAX, u64::MAX - 2);
    assert!(matches!(
        SegmentSequence::parse(&huge),
        Err(SegmentError::TooFine { .. })
    ));
    let beyond = SegmentError::TooFine {
        sequence: "x".to_owned(),
        lcd: None,
        max: MAX_LCD,
    };
    assert!(beyond.to_string().contains("beyond 2^64"), "{beyond}");
}

#[test]
fn segments_are_found_in_their_sequence() {
    let seq = SegmentSequence::parse("0,1/3,2/3,1").ok();
    let seq = seq.as_ref();
    let middle = Segment::parse("1/3:2/3").ok();
    assert_eq!(
        seq.zip(middle.as_ref()).and_then(|(s, m)| s.index_of(m)),
        Some(1)
    );
    let across = Segment::parse("0:2/3").ok();
    assert_eq!(
        seq.zip(across.as_ref()).and_then(|(s, m)| s.index_of(m)),
        None
    );
    assert_eq!(seq.and_then(|s| s.segment(2)), Segment::parse("2/3:1").ok());
    assert_eq!(seq.and_then(|s| s.segment(3)), None);
}

#[test]
fn a_lone_segment_is_filled_like_k6() {
    let seg = Segment::parse("1/3:2/3").ok();
    let around = seg.as_ref().and_then(|s| SegmentSequence::around(s).ok());
    assert_eq!(
        around.map(|s| s.to_string()).as_deref(),
        Some("0,1/3,2/3,1")
    );
    let around = SegmentSequence::around(&Segment::full()).ok();
    assert_eq!(around, Some(SegmentSequence::full()));
    let head = Segment::parse("1/2").ok();
    let around = head.as_ref().and_then(|s| SegmentSequence::around(s).ok());
    assert_eq!(around.map(|s| s.to_string()).as_deref(), Some("0,1/2,1"));
}

#[test]
fn weights_become_exact_cut_points_when_small() {
    let seq = SegmentSequence::from_weights(&[4, 2, 2, 1, 1]).ok();
    assert_eq!(
        seq.as_ref().map(|s| s.to_string()).as_deref(),
        Some("0,2/5,3/5,4/5,9/10,1")
    );
    assert_eq!(seq.map(|s| s.lcd()), Some(10));
    let seq = SegmentSequence::from_weights(&[3000, 3000, 3000]).ok();
    assert_eq!(seq.map(|s| s.to_string()).as_deref(), Some("0,1/3,2/3,1"));
    assert_eq!(
        SegmentSequence::from_weights(&[7]).ok(),
        Some(SegmentSequence::full())
    );
}

#[test]
fn large_weights_are_quantized_with_a_bounded_denominator() {
    let weights = [1_000_003, 999_983, 7, u64::from(u32::MAX)];
    let seq = SegmentSequence::from_weights(&weights);
    let seq = seq.as_ref().ok();
    let lcd = seq.map(|s| s.lcd()).unwrap_or(u64::MAX);
    assert!(lcd <= WEIGHT_RESOLUTION + weights.len() as u64, "lcd {lcd}");
    // Every share keeps a segment, even the tiny one.
    assert_eq!(seq.map(|s| s.segment_count()), Some(4));
    // Shares stay close to the weights: within one part of the resolution.
    let total: f64 = weights.iter().map(|&w| w as f64).sum();
    for (segment, weight) in seq.into_iter().flat_map(|s| s.segments()).zip(weights) {
        let error = (segment.length().to_f64() - weight as f64 / total).abs();
        assert!(error <= 1.0 / WEIGHT_RESOLUTION as f64, "error {error}");
    }
    let many = vec![u64::MAX; 3];
    assert_eq!(
        SegmentSequence::from_weights(&many)
            .map(|s| s.to_string())
            .ok()
            .as_deref(),
        Some("0,1/3,2/3,1")
    );
}

#[test]
fn bad_weights_are_refused() {
    assert_eq!(
        SegmentSequence::from_weights(&[]),
        Err(SegmentError::NoWeights)
    );
    assert_eq!(
        SegmentSequence::from_weights(&[1, 0, 2]),
        Err(SegmentError::ZeroWeight { index: 1 })
    );
}
