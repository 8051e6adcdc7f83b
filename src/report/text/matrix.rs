//! The REGION MATRIX section: agent region x target region of a plan with
//! `targets`, with each percentile's difference to the in-region cell of
//! the same agent region.

use super::super::ansi::Paint;
use super::super::format;
use super::INDENT;
use crate::metrics::MatrixCell;

/// One line per cell under a header: names left, numbers right-aligned.
pub(super) fn lines(cells: &[MatrixCell], paint: Paint) -> Vec<String> {
    let header: Vec<String> = [
        "region", "target", "requests", "failed", "p50", "p95", "p99", "Δp50", "Δp95", "Δp99",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let body: Vec<(Vec<String>, bool)> = cells
        .iter()
        .map(|c| {
            let row = vec![
                c.region.clone(),
                c.target_region.clone(),
                format::thousands(c.requests),
                format::thousands(c.failed),
                format::duration_ms(c.p50_ms),
                format::duration_ms(c.p95_ms),
                format::duration_ms(c.p99_ms),
                delta(c.p50_delta_ms, c),
                delta(c.p95_delta_ms, c),
                delta(c.p99_delta_ms, c),
            ];
            (row, c.failed > 0)
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            body.iter()
                .map(|(row, _)| format::display_width(&row[i]))
                .chain([format::display_width(&header[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let layout = |row: &[String]| -> Vec<String> {
        row.iter()
            .enumerate()
            .map(|(i, c)| {
                let fill = " ".repeat(widths[i].saturating_sub(format::display_width(c)));
                if i < 2 {
                    format!("{c}{fill}")
                } else {
                    format!("{fill}{c}")
                }
            })
            .collect()
    };
    let mut out = vec![format!(
        "{INDENT}{}",
        paint.bold(layout(&header).join("  ").trim_end())
    )];
    for (row, failed) in &body {
        let mut laid = layout(row);
        if *failed {
            laid[3] = paint.red(&laid[3]);
        }
        out.push(format!("{INDENT}{}", laid.join("  ")).trim_end().to_owned());
    }
    out.push(format!(
        "{INDENT}Δ: the percentile minus the in-region cell's of the same region"
    ));
    out
}

/// `+40.12ms`, `-1.5ms`; `-` for the in-region cell itself, `?` when the
/// region has no in-region cell.
fn delta(d: Option<f64>, c: &MatrixCell) -> String {
    match d {
        _ if c.region == c.target_region => "-".to_string(),
        None => "?".to_string(),
        Some(ms) if ms < 0.0 => format!("-{}", format::duration_ms(-ms)),
        Some(ms) => format!("+{}", format::duration_ms(ms)),
    }
}
