//! ANSI styling for the summary and the progress line, with k6's palette:
//! green ✓, red ✗, cyan values, dim dots, bold titles. Every method returns
//! the text untouched when colour is off, so layout code never branches on it.

/// Applies (or, when off, skips) ANSI styles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint {
    /// False for pipes, files and `--no-color`: plain text only.
    on: bool,
}

impl Paint {
    pub(crate) fn new(on: bool) -> Paint {
        Paint { on }
    }

    fn wrap(self, codes: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{codes}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }

    pub(crate) fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }

    pub(crate) fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }

    pub(crate) fn cyan(self, text: &str) -> String {
        self.wrap("36", text)
    }

    /// Threshold sources and aggregation names.
    pub(crate) fn white(self, text: &str) -> String {
        self.wrap("37", text)
    }

    /// The dotted leaders between a metric name and its values.
    pub(crate) fn dim(self, text: &str) -> String {
        self.wrap("2;37", text)
    }

    /// Secondary values (`6.56109/s`, `min=1`).
    pub(crate) fn dim_cyan(self, text: &str) -> String {
        self.wrap("2;36", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_is_plain_and_on_wraps_with_reset() {
        assert_eq!(Paint::new(false).green("✓"), "✓");
        assert_eq!(Paint::new(true).green("✓"), "\x1b[32m✓\x1b[0m");
        assert_eq!(Paint::new(true).dim("..:"), "\x1b[2;37m..:\x1b[0m");
        assert_eq!(Paint::new(true).dim_cyan("min=1"), "\x1b[2;36mmin=1\x1b[0m");
    }
}
