//! The terminal's width, for fitting the progress lines: asked of the
//! terminal itself (`TIOCGWINSZ` through rustix, the one owner of that
//! crate) each time, so a resized window is seen at the next redraw; else
//! `COLUMNS`; else 80.

/// Used when neither the terminal nor `COLUMNS` says.
pub const DEFAULT_WIDTH: usize = 80;

/// Columns of the terminal on stderr (where progress is drawn).
pub fn width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .ok()
        .map(|size| usize::from(size.ws_col))
        .filter(|w| *w > 0)
        .or_else(|| columns(std::env::var("COLUMNS").ok().as_deref()))
        .unwrap_or(DEFAULT_WIDTH)
}

/// A usable `COLUMNS` value.
fn columns(value: Option<&str>) -> Option<usize> {
    value?.trim().parse::<usize>().ok().filter(|w| *w > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_must_be_a_positive_number() {
        assert_eq!(columns(Some("132")), Some(132));
        assert_eq!(columns(Some(" 90 ")), Some(90));
        assert_eq!(columns(Some("0")), None);
        assert_eq!(columns(Some("wide")), None);
        assert_eq!(columns(None), None);
    }
}
