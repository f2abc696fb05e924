//! Progress on stderr for the steps that can take a while (compiling a
//! large model, running one op by op on the host, listening along a long
//! recording). Bars are drawn only when stderr is a terminal and `--quiet`
//! is not given, so scripts, pipes and CI logs see nothing of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static QUIET: AtomicBool = AtomicBool::new(false);
static NO_BARS: AtomicBool = AtomicBool::new(false);

/// Silences progress bars and informational messages (`--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// No bars, even on a terminal (`--json`: output for scripts); notes stay.
pub fn hide_bars() {
    NO_BARS.store(true, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A bar over `len` units of `what`, hidden when quiet, with `--json`, or
/// when stderr is not a terminal (indicatif's stderr target draws only on a terminal).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if quiet() || NO_BARS.load(Ordering::Relaxed) {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:32}] {pos}/{len} ({elapsed}, {eta} left) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_prefix(what.to_string())
}

/// A compiler progress callback drawing one bar per stage (lowering node
/// by node, then selection, planning, writing and checking).
pub fn compiler_progress() -> ember_compiler::Progress {
    let current: std::sync::Mutex<Option<(String, ProgressBar)>> = std::sync::Mutex::new(None);
    ember_compiler::Progress(Arc::new(move |stage: &str, done: u64, total: u64| {
        let Ok(mut cur) = current.lock() else { return };
        if cur.as_ref().is_none_or(|(s, _)| s != stage) {
            if let Some((_, b)) = cur.take() {
                b.finish_and_clear();
            }
            *cur = Some((stage.to_string(), bar(total, stage)));
        }
        if let Some((_, b)) = cur.as_ref() {
            b.set_position(done);
            if done >= total {
                b.finish_and_clear();
            }
        }
    }))
}
