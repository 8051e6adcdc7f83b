//! SIGINT handling: the first one stops the run gracefully (the summary is
//! still printed), the second one exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use super::exit;

/// Set once a signal asked the run to stop.
#[derive(Clone, Default)]
pub struct Interrupted(Arc<AtomicBool>);

impl Interrupted {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Cancels `stop` on the first SIGINT (or SIGTERM); exits with 105 on the second.
pub fn spawn_sigint_handler(stop: CancellationToken) -> Interrupted {
    let flag = Interrupted::default();
    let set = flag.clone();
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            if !wait_for_signal().await {
                return;
            }
            count += 1;
            set.0.store(true, Ordering::Relaxed);
            if count == 1 {
                eprintln!(
                    "\nstopping: finishing up and printing the summary (press Ctrl+C again to abort at once)"
                );
                stop.cancel();
            } else {
                eprintln!("\naborted");
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    });
    flag
}

/// Waits for SIGINT or SIGTERM; false if signals cannot be watched.
pub(super) async fn wait_for_signal() -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return false;
    };
    tokio::select! {
        r = int.recv() => r.is_some(),
        r = term.recv() => r.is_some(),
    }
}
