//! What Volley asks of the operating system, through rustix (the one owner
//! of that crate):
//! - the terminal's width, for fitting the progress lines: asked of the
//!   terminal itself (`TIOCGWINSZ`) each time, so a resized window is seen
//!   at the next redraw; else `COLUMNS`; else 80;
//! - the open-file limit, raised at start from the soft limit the process was
//!   given (often 1024) to its hard limit, as k6 does: every connection is a
//!   file, and 1024 caps a test at about a thousand VUs;
//! - the process's CPU time, for telling whether the generator was
//!   saturated ([`crate::engine::saturation`]);
//! - which error a non-blocking connect returns while it is under way
//!   (`EINPROGRESS`), for the HTTP client's dial.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// CPU time the whole process used so far (user and system, every
/// thread): `CLOCK_PROCESS_CPUTIME_ID`, read through the vDSO.
pub fn process_cpu_time() -> Option<std::time::Duration> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u32::try_from(t.tv_nsec).ok()?;
    Some(std::time::Duration::new(secs, nanos))
}

/// True when `e` is a non-blocking connect's "under way" (`EINPROGRESS`),
/// not a failure.
pub fn connect_in_progress(e: &std::io::Error) -> bool {
    rustix::io::Errno::from_io_error(e) == Some(rustix::io::Errno::INPROGRESS)
}

/// Used when neither the terminal nor `COLUMNS` says.
pub const DEFAULT_WIDTH: usize = 80;

/// Columns of the terminal on stderr (where progress is drawn).
pub fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .ok()
        .map(|size| usize::from(size.ws_col))
        .filter(|w| *w > 0)
        .or_else(|| columns(std::env::var("COLUMNS").ok().as_deref()))
        .unwrap_or(DEFAULT_WIDTH)
}

/// Raises the soft open-file limit to the hard one; returns the limit now
/// in force (`None` when it cannot be read). A refusal leaves the limit as
/// it was: the process still runs, with fewer connections.
pub fn raise_open_files() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let wanted = raised(&limit);
    if wanted.current != limit.current
        && let Err(e) = setrlimit(Resource::Nofile, wanted)
    {
        tracing::debug!(error = %e, "the open-file limit stays as it was");
    }
    getrlimit(Resource::Nofile).current
}

/// The limit to ask for: the soft one raised to the hard one (an unlimited
/// hard limit leaves the soft one, as Linux refuses an unlimited `NOFILE`).
fn raised(limit: &Rlimit) -> Rlimit {
    let current = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) => Some(soft.max(hard)),
        (soft, None) => soft,
        (None, Some(_)) => None,
    };
    Rlimit {
        current,
        maximum: limit.maximum,
    }
}

/// A usable `COLUMNS` value.
fn columns(value: Option<&str>) -> Option<usize> {
    value?.trim().parse::<usize>().ok().filter(|w| *w > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_file_limit_goes_up_to_the_hard_one() {
        let limit = |current, maximum| Rlimit { current, maximum };
        assert_eq!(
            raised(&limit(Some(1024), Some(524_288))).current,
            Some(524_288)
        );
        assert_eq!(raised(&limit(Some(4096), Some(4096))).current, Some(4096));
        assert_eq!(raised(&limit(Some(1024), None)).current, Some(1024));
        assert_eq!(raised(&limit(None, None)).current, None);
        assert_eq!(raised(&limit(Some(1024), Some(2048))).maximum, Some(2048));
    }

    #[test]
    fn columns_must_be_a_positive_number() {
        assert_eq!(columns(Some("132")), Some(132));
        assert_eq!(columns(Some(" 90 ")), Some(90));
        assert_eq!(columns(Some("0")), None);
        assert_eq!(columns(Some("wide")), None);
        assert_eq!(columns(None), None);
    }
}
