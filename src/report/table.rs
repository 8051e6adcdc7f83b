//! The dotted metric lines of the summary:
//! `http_reqs..........................: 45     6.56109/s`.
//!
//! Names are padded with dots to one shared column; values line up in
//! columns whose widths are computed over a block of rows (k6 computes the
//! checks counters apart from the metrics, and all metric groups together).

use super::ansi::Paint;
use super::format::display_width;

/// The colon of every dotted line sits at least this far right of the
/// indent, as in k6's own summaries (`checks_succeeded...................:`).
const MIN_NAME_COLUMN: usize = 35;
/// Dots always separate a name from its colon, even for the longest name.
const MIN_DOTS: usize = 3;
/// Metric lines sit two levels in (section titles are at one level).
pub(crate) const INDENT: &str = "    ";

/// One dotted line before layout.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// `http_reqs`, or `  { expected_response:true }` for a submetric.
    pub(crate) name: String,
    pub(crate) cells: Cells,
}

#[derive(Debug, Clone)]
pub(crate) enum Cells {
    /// `(stat label, formatted value)` in the summary's trend-stat order.
    Trend(Vec<(String, String)>),
    /// A main value and its extras (`45`, [`6.56109/s`]).
    Plain { main: String, extras: Vec<String> },
}

/// Column widths shared by a block of rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Widths {
    trend: Vec<usize>,
    main: usize,
    extras: Vec<usize>,
}

impl Widths {
    pub(crate) fn of<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Widths {
        let mut widths = Widths::default();
        for row in rows {
            match &row.cells {
                Cells::Trend(cols) => grow(&mut widths.trend, cols.iter().map(|(_, v)| v)),
                Cells::Plain { main, extras } => {
                    widths.main = widths.main.max(display_width(main));
                    grow(&mut widths.extras, extras.iter());
                }
            }
        }
        widths
    }
}

fn grow<'a>(widths: &mut Vec<usize>, values: impl Iterator<Item = &'a String>) {
    for (i, value) in values.enumerate() {
        let w = display_width(value);
        match widths.get_mut(i) {
            Some(current) => *current = (*current).max(w),
            None => widths.push(w),
        }
    }
}

/// Where the colon goes for a set of names: past the longest name plus a
/// few dots, and never left of k6's usual column.
pub(crate) fn name_column<'a>(names: impl IntoIterator<Item = &'a str>) -> usize {
    let longest = names.into_iter().map(display_width).max().unwrap_or(0);
    (longest + MIN_DOTS).max(MIN_NAME_COLUMN)
}

fn pad(width: usize, text: &str) -> String {
    " ".repeat(width.saturating_sub(display_width(text)))
}

/// One finished line, without trailing blanks.
pub(crate) fn line(row: &Row, column: usize, widths: &Widths, paint: Paint) -> String {
    let dots = ".".repeat(column.saturating_sub(display_width(&row.name)).max(1));
    let data = match &row.cells {
        Cells::Trend(cols) => cols
            .iter()
            .enumerate()
            .map(|(i, (label, value))| {
                let width = widths.trend.get(i).copied().unwrap_or(0);
                format!("{label}={}{}", paint.cyan(value), pad(width, value))
            })
            .collect::<Vec<_>>()
            .join(" "),
        Cells::Plain { main, extras } => {
            let mut out = format!("{}{}", paint.cyan(main), pad(widths.main, main));
            if let [only] = extras.as_slice() {
                out.push(' ');
                out.push_str(&paint.dim_cyan(only));
            } else {
                for (i, extra) in extras.iter().enumerate() {
                    let width = widths.extras.get(i).copied().unwrap_or(0);
                    out.push(' ');
                    out.push_str(&paint.dim_cyan(extra));
                    out.push_str(&pad(width, extra));
                }
            }
            out
        }
    };
    let text = format!(
        "{INDENT}{}{} {data}",
        row.name,
        paint.dim(&format!("{dots}:"))
    );
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(name: &str, main: &str, extras: &[&str]) -> Row {
        Row {
            name: name.into(),
            cells: Cells::Plain {
                main: main.into(),
                extras: extras.iter().map(|e| e.to_string()).collect(),
            },
        }
    }

    #[test]
    fn values_line_up_in_columns() {
        let rows = [
            plain("http_reqs", "45", &["6.56109/s"]),
            plain("http_req_failed", "0.00%", &["0 out of 45"]),
            plain("vus", "1", &["min=1", "max=1"]),
        ];
        let widths = Widths::of(&rows);
        let column = name_column(rows.iter().map(|r| r.name.as_str()));
        let lines: Vec<String> = rows
            .iter()
            .map(|r| line(r, column, &widths, Paint::new(false)))
            .collect();
        assert_eq!(
            lines,
            [
                "    http_reqs..........................: 45    6.56109/s",
                "    http_req_failed....................: 0.00% 0 out of 45",
                "    vus................................: 1     min=1       max=1",
            ]
        );
    }

    #[test]
    fn long_names_push_the_column_right() {
        let name = "a_metric_with_a_very_long_name_indeed_yes";
        assert_eq!(name_column([name]), name.len() + 3);
        assert_eq!(name_column(["short"]), 35);
    }

    #[test]
    fn trend_columns_pad_to_the_widest_value() {
        let trend = |name: &str, avg: &str, min: &str| Row {
            name: name.into(),
            cells: Cells::Trend(vec![("avg".into(), avg.into()), ("min".into(), min.into())]),
        };
        let rows = [trend("a", "1ms", "2ms"), trend("b", "100.5ms", "20ms")];
        let widths = Widths::of(&rows);
        let out = line(&rows[0], 35, &widths, Paint::new(false));
        assert!(out.ends_with(": avg=1ms     min=2ms"), "{out}");
    }
}
