//! k6's striping test vectors (`TestGetStripedOffsets`), the worked examples
//! of the k6 reference (§3.3), re-segmenting, and tuple construction.

use super::{r, seq, tuple, tuples};
use crate::segment::{ExecutionTuple, Segment, SegmentError, SegmentSequence};

/// k6 `lib/execution_segment_test.go` `TestGetStripedOffsets`, with the
/// sequence written out in full.
#[test]
fn k6_striped_offsets_vectors() {
    let a = "0,0.3,0.5,0.6,0.7,0.8,0.9,1";
    let b = "0,0.2,0.5,0.6,0.7,0.8,0.9,1";
    let cases: [(&str, &str, u64, &[u64]); 9] = [
        (a, "0:0.3", 0, &[4, 3, 3]),
        (a, "0.3:0.5", 1, &[4, 6]),
        (a, "0.5:0.6", 2, &[10]),
        (a, "0.6:0.7", 3, &[10]),
        (a, "0.8:0.9", 8, &[10]),
        (a, "0.9:1", 9, &[10]),
        (b, "0.9:1", 9, &[10]),
        (b, "0:0.2", 1, &[4, 6]),
        (b, "0.6:0.7", 3, &[10]),
    ];
    for (sequence, segment, start, offsets) in cases {
        let t = tuple(sequence, segment);
        assert_eq!(t.lcd(), 10, "{sequence} {segment}");
        assert_eq!(t.start(), start, "{sequence} {segment}");
        assert_eq!(t.offsets(), offsets, "{sequence} {segment}");
    }
}

/// The owner of each global index in `0..n`.
fn owners(all: &[ExecutionTuple], n: u64) -> Vec<usize> {
    (0..n)
        .map(|g| {
            let owning: Vec<usize> = all
                .iter()
                .filter(|t| t.owns(g))
                .map(|t| t.index())
                .collect();
            assert_eq!(owning.len(), 1, "global {g} owned by {owning:?}");
            owning[0]
        })
        .collect()
}

fn shares(all: &[ExecutionTuple], value: u64) -> Vec<u64> {
    all.iter().map(|t| t.scale(value)).collect()
}

#[test]
fn thirds_share_like_the_k6_operator() {
    let all = tuples("0,1/3,2/3,1");
    assert_eq!(all[0].lcd(), 3);
    assert_eq!(owners(&all, 6), [0, 1, 2, 0, 1, 2]);
    let table: [(u64, [u64; 3]); 7] = [
        (1, [1, 0, 0]),
        (2, [1, 1, 0]),
        (5, [2, 2, 1]),
        (7, [3, 2, 2]),
        (10, [4, 3, 3]),
        (1000, [334, 333, 333]),
        (1001, [334, 334, 333]),
    ];
    for (value, want) in table {
        assert_eq!(shares(&all, value), want, "value {value}");
    }
}

#[test]
fn uneven_fifty_thirty_twenty() {
    let all = tuples("0,1/2,4/5,1");
    assert_eq!(all[0].lcd(), 10);
    assert_eq!(owners(&all, 10), [0, 1, 0, 2, 0, 1, 0, 1, 0, 2]);
    let patterns: [(u64, &[u64]); 3] = [(0, &[2, 2, 2, 2, 2]), (1, &[4, 2, 4]), (3, &[6, 4])];
    for (t, (start, offsets)) in all.iter().zip(patterns) {
        assert_eq!((t.start(), t.offsets().as_slice()), (start, offsets));
    }
    let table: [(u64, [u64; 3]); 7] = [
        (1, [1, 0, 0]),
        (2, [1, 1, 0]),
        (5, [3, 1, 1]),
        (7, [4, 2, 1]),
        (10, [5, 3, 2]),
        (1000, [500, 300, 200]),
        (1001, [501, 300, 200]),
    ];
    for (value, want) in table {
        assert_eq!(shares(&all, value), want, "value {value}");
    }
}

#[test]
fn capacity_weights_split_vus_exactly() {
    let sequence = SegmentSequence::from_weights(&[4, 2, 2, 1, 1]);
    let all = ExecutionTuple::all(sequence.expect("invariant: weights are positive"));
    assert_eq!(shares(&all, 1000), [400, 200, 200, 100, 100]);
    assert_eq!(shares(&all, 10), [4, 2, 2, 1, 1]);
    assert_eq!(shares(&all, 3).iter().sum::<u64>(), 3);
}

#[test]
fn global_indices_walk_the_stripes() {
    let middle = tuple("0,1/2,4/5,1", "1/2:4/5");
    let first: Vec<u64> = middle.global_indices().take(6).collect();
    assert_eq!(first, [1, 5, 7, 11, 15, 17]);
    for (local, &global) in first.iter().enumerate() {
        assert_eq!(middle.local_to_global(local as u64), global);
        assert!(middle.owns(global));
    }
    assert!(!middle.owns(0) && !middle.owns(2) && !middle.owns(10));
}

#[test]
fn the_full_tuple_is_the_identity() {
    let full = ExecutionTuple::full();
    assert_eq!(full.segment(), Segment::full());
    assert_eq!((full.lcd(), full.start(), full.offsets()), (1, 0, vec![1]));
    for value in [0, 1, 7, u64::MAX] {
        assert_eq!(full.scale(value), value);
        assert!(full.owns(value));
        assert_eq!(full.local_to_global(value), value);
    }
    let indices: Vec<u64> = full.global_indices().take(4).collect();
    assert_eq!(indices, [0, 1, 2, 3]);
}

#[test]
fn global_numbers_beyond_u64_saturate() {
    let last = tuple("0,1/3,2/3,1", "2/3:1");
    assert_eq!(last.local_to_global(u64::MAX / 3 - 1), u64::MAX - 1);
    assert_eq!(last.local_to_global(u64::MAX / 3), u64::MAX);
    assert_eq!(last.local_to_global(u64::MAX), u64::MAX);
}

#[test]
fn resegmenting_recuts_by_the_value() {
    let all = tuples("0,1/3,2/3,1");
    // 100 maxVUs split 34/33/33: the new cut points are 34/100 and 67/100.
    let recut: Vec<ExecutionTuple> = all
        .iter()
        .map(|t| {
            t.resegment(100)
                .ok()
                .flatten()
                .expect("every share is non-zero")
        })
        .collect();
    for (i, t) in recut.iter().enumerate() {
        assert_eq!(t.sequence(), &seq("0,17/50,67/100,1"));
        assert_eq!(t.index(), i);
        assert_eq!(t.scale(100), all[i].scale(100));
    }
    // 5 maxVUs split 2/2/1.
    let five = all[2].resegment(5).ok().flatten();
    assert_eq!(
        five.as_ref().map(|t| t.sequence().to_string()).as_deref(),
        Some("0,2/5,4/5,1")
    );
    assert_eq!(five.map(|t| t.segment()), Segment::parse("4/5:1").ok());
    // A value divisible by L keeps the sequence.
    assert_eq!(all[1].resegment(300).ok().flatten().as_ref(), Some(&all[1]));
}

#[test]
fn resegmenting_drops_empty_shares() {
    let all = tuples("0,1/3,2/3,1");
    assert_eq!(all[0].resegment(0).ok(), Some(None));
    // One VU: only the first share has it, and it becomes the whole test.
    let one = all[0].resegment(1).ok().flatten();
    assert_eq!(
        one.as_ref().map(|t| t.sequence()),
        Some(&SegmentSequence::full())
    );
    assert_eq!(all[1].resegment(1).ok(), Some(None));
    assert_eq!(all[2].resegment(1).ok(), Some(None));
    // Two VUs: shares 1/1/0; the second keeps index 1 of `0,1/2,1`.
    let two = all[1].resegment(2).ok().flatten();
    assert_eq!(
        two.as_ref().map(|t| (t.sequence().to_string(), t.index())),
        Some(("0,1/2,1".to_owned(), 1))
    );
    assert_eq!(all[2].resegment(2).ok(), Some(None));
}

#[test]
fn tuples_are_built_only_from_segments_of_the_sequence() {
    let segment = Segment::new(r(0, 1), r(1, 2)).expect("invariant: valid segment");
    let err = ExecutionTuple::new(seq("0,1/3,2/3,1"), &segment).err();
    match err {
        Some(e @ SegmentError::NotInSequence { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("0:1/2") && message.contains("0,1/3,2/3,1"),
                "{message}"
            );
        }
        other => panic!("expected NotInSequence, got {other:?}"),
    }
    assert!(matches!(
        ExecutionTuple::from_index(seq("0,1/2,1"), 2),
        Err(SegmentError::IndexOutOfRange {
            index: 2,
            segments: 2,
            ..
        })
    ));
    let ok = ExecutionTuple::from_index(seq("0,1/2,1"), 1).ok();
    assert_eq!(ok.map(|t| t.segment()), Segment::parse("1/2:1").ok());
    // A lone segment is placed in k6's filled sequence.
    let lone = Segment::parse("1/3:2/3").expect("invariant: valid segment");
    let filled = SegmentSequence::around(&lone).and_then(|s| ExecutionTuple::new(s, &lone));
    assert_eq!(filled.ok().map(|t| t.index()), Some(1));
}

#[test]
fn very_fine_resegmenting_reports_too_fine() {
    let all = tuples("0,1/3,2/3,1");
    // 3·(2^22) + 1 units: shares have no common factor with the value.
    let value = 3 * (1 << 22) + 1;
    assert!(matches!(
        all[0].resegment(value),
        Err(SegmentError::TooFine { .. })
    ));
}
