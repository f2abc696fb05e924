//! A spinner with the elapsed time for the waits in which xtask shows
//! nothing else: a firmware build (cargo's output captured) and a run in
//! QEMU (the device's output captured until it exits). Drawn only when
//! stderr is a terminal; CI logs and pipes get the `==>` step lines alone.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner saying `what`, ticking by itself until finished or dropped.
pub fn spinner(what: &str) -> Spinner {
    let style = ProgressStyle::with_template("    {spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    Spinner(bar)
}

/// Clears its line when dropped, whether the wait ended well or not.
pub struct Spinner(ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
