//! A linear pre-scan of a YAML document's nesting, run before the YAML
//! parser. The parser's scanner does work per open flow collection for
//! every token, so a 4 MiB document of `[[[[…` took it most of a minute
//! to reject; this scan rejects it in one pass over the bytes.
//!
//! It counts flow brackets (`[`, `{`) outside quotes and comments, and
//! block nesting (indentation levels and `- ` entries). It only rejects
//! what is certainly too deep for a plan; everything else is left to the
//! parser, which has its own recursion limit.

/// Deepest nesting a plan may have: the YAML parser's own recursion
/// limit, so nothing it would load is refused. Real plans stay under 10.
pub const MAX_DEPTH: usize = 128;

/// Where the document first nests deeper than [`MAX_DEPTH`]: 1-based line
/// and column.
pub fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |col: usize| (n + 1, col + 1);
        let bytes = line.as_bytes();
        // Block structure: only outside flow collections.
        if flow == 0 {
            let indent = bytes.iter().take_while(|b| **b == b' ').count();
            let rest = &line[indent..];
            if !rest.is_empty() && !rest.starts_with('#') {
                while indents.last().is_some_and(|top| *top >= indent) {
                    indents.pop();
                }
                indents.push(indent);
                // `- - - x`: each dash opens a sequence on the same line.
                let dashes = rest
                    .as_bytes()
                    .chunks(2)
                    .take_while(|c| c == b"- " || *c == b"-")
                    .count();
                if indents.len() + dashes > MAX_DEPTH {
                    return Some(at(indent));
                }
            }
        }
        let mut quote: Option<u8> = None;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(b'"') if b == b'\\' => i += 1,
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None => match b {
                    b'"' | b'\'' => quote = Some(b),
                    b'#' if i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t' => break,
                    b'[' | b'{' => {
                        flow += 1;
                        if flow + indents.len() > MAX_DEPTH {
                            return Some(at(i));
                        }
                    }
                    b']' | b'}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_plans_pass() {
        let plan = "scenarios:\n  main:\n    executor: constant-vus\nflow:\n  - get:\n      url: \"http://x/[a]{b}\"\n      check: [{status: 200}, {json: {pointer: /a, equals: [1, {b: 2}]}}]\n  # a [comment [[[[\n  - sleep: 1s\n";
        assert_eq!(too_deep(plan), None);
        let quoted = format!(
            "name: '{}'\nre: \"{}\\\"\"\n",
            "[".repeat(500),
            "{".repeat(500)
        );
        assert_eq!(too_deep(&quoted), None, "brackets in quotes do not nest");
    }

    #[test]
    fn flow_bombs_are_caught_at_the_first_level_too_deep() {
        let deep = format!("flow: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        // The `flow:` key is one level, so the 128th bracket is one too many.
        assert_eq!(too_deep(&deep), Some((1, 6 + MAX_DEPTH)));
        let mixed = format!("a:\n  b: {}\n", "{x: ".repeat(200));
        assert!(too_deep(&mixed).is_some());
    }

    #[test]
    fn block_bombs_are_caught_too() {
        let stairs: String = (0..500)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert_eq!(too_deep(&stairs).map(|(line, _)| line), Some(MAX_DEPTH + 1));
        let dashes = format!("flow:\n  {}x\n", "- ".repeat(300));
        assert!(too_deep(&dashes).is_some());
    }
}
