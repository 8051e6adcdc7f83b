//! A bound on what a YAML document expands to through its aliases, checked before the document
//! is parsed into values. An alias (`*a`) repeats the whole node its anchor names, so anchors that
//! nest aliases ("billion laughs") make a few kilobytes expand to millions of values: a 28 KiB
//! plan held the parser for minutes and took gigabytes. The check walks the document once with a
//! visitor that keeps nothing and only counts the values it is shown (aliases expanded, exactly
//! as the parser expands them), and stops as soon as the count passes [`budget`]: its cost is
//! bounded by the budget, whatever the aliases would expand to.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

/// Values a document may expand to on top of one per byte of its text: room for merge keys
/// (`<<: *base`) and small anchors reused, far beyond what a plan needs, and small enough that
/// walking to the budget costs milliseconds.
pub const SLACK: usize = 10_000;

/// Most values a document of `len` bytes may expand to. Without aliases a document holds fewer
/// values than bytes, so only expansion is ever refused.
pub fn budget(len: usize) -> usize {
    len.saturating_add(SLACK)
}

/// Whether `text`'s aliases expand it past [`budget`]. Malformed YAML is not judged here (the
/// parser reports it).
pub fn expands_too_far(text: &str) -> bool {
    // An alias needs a `*`; most plans have none and skip the walk.
    if !text.contains('*') {
        return false;
    }
    let counter = Counter {
        left: &Cell::new(budget(text.len())),
        exceeded: &Cell::new(false),
    };
    let exceeded = counter.exceeded;
    let walked = counter.deserialize(serde_yaml_ng::Deserializer::from_str(text));
    // The parser stops expanding on its own past 100 alias jumps per event
    // of the document, wherever the count is: a document that needs more
    // (a few anchors padded with comments, say) expands too far as well,
    // and the full parse would build everything up to that point first.
    exceeded.get() || walked.is_err_and(|e| is_repetition_limit(&e))
}

/// The parser's own bound on alias jumps, which it reports without a position.
fn is_repetition_limit(e: &serde_yaml_ng::Error) -> bool {
    e.location().is_none() && e.to_string().contains("repetition limit exceeded")
}

/// 1-based line and column of the first alias in `text`, where the expansion starts.
pub fn first_alias(text: &str) -> (usize, usize) {
    for (n, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            let opens = i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'[' | b'{' | b',' | b':');
            let named = bytes
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'));
            if *b == b'*' && opens && named {
                return (n + 1, i + 1);
            }
        }
    }
    (1, 1)
}

/// Counts values down from `left`; sets `exceeded` and fails once none are left.
#[derive(Clone, Copy)]
struct Counter<'a> {
    left: &'a Cell<usize>,
    exceeded: &'a Cell<bool>,
}

impl Counter<'_> {
    fn spend<E: de::Error>(self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("the document expands past its value budget"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.spend()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.spend()
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.spend()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.spend()
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.spend()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.spend()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.spend()
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.spend()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.spend()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.spend()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.spend()?;
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.spend()?;
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.spend()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// A tagged value (`!tag value`).
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess as _;
        self.spend()?;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Anchors nesting aliases: `a` has `width` values, each level repeats the previous nine times.
    fn laughs(width: usize, levels: usize) -> String {
        let mut text = format!("l0: &l0 [{}x]\n", "x, ".repeat(width - 1));
        for level in 1..=levels {
            let prev = format!("*l{}, ", level - 1).repeat(9);
            text.push_str(&format!(
                "l{level}: &l{level} [{}]\n",
                prev.trim_end_matches(", ")
            ));
        }
        text
    }

    /// Far below the minutes an unchecked expansion takes.
    const QUICKLY: std::time::Duration = std::time::Duration::from_secs(10);

    #[test]
    fn billion_laughs_are_refused_quickly() {
        // Found by the fuzz suite: 28 KiB that expand to 6.9 million values.
        let text = laughs(9515, 3);
        assert!(text.len() < 30_000);
        // Unchecked, this document held the parser for minutes; the walk
        // stops at the budget (milliseconds). The bound is loose so that a
        // machine busy with other tests never fails it.
        let start = std::time::Instant::now();
        assert!(expands_too_far(&text));
        assert!(start.elapsed() < QUICKLY, "{:?}", start.elapsed());
        assert!(expands_too_far(&laughs(10, 9)), "a billion values");
        // Few events padded to 4 MiB with a comment: the parser's jump limit
        // (100 per event) comes before the budget (one value per byte).
        let mut padded = laughs(9, 39);
        padded.push_str(&format!("# {}\n", "p".repeat(4 << 20)));
        let start = std::time::Instant::now();
        assert!(expands_too_far(&padded));
        assert!(start.elapsed() < QUICKLY, "{:?}", start.elapsed());
        assert_eq!(first_alias(&laughs(10, 1)), (2, 10));
    }

    #[test]
    fn plans_with_merge_keys_and_reused_anchors_pass() {
        let text = "base: &b {vus: 1, duration: 1s, tags: {a: '*not', b: \"*alias\"}}\n\
                    scenarios:\n  a: {<<: *b, executor: constant-vus}\n  b:\n    <<: *b\n    \
                    executor: constant-vus\nflow: [*b, *b, *b]\n";
        assert!(!expands_too_far(text));
        assert!(!expands_too_far(&laughs(50, 2)), "4050 values is fine");
        assert!(!expands_too_far("no aliases at all: [1, 2, 3]\n"));
        assert!(!expands_too_far("broken: [*\n"), "left to the parser");
        assert!(
            !expands_too_far(&format!("s: '*x'\nl: [{}1]\n", "1, ".repeat(200_000))),
            "a long document without aliases is not refused"
        );
    }
}
