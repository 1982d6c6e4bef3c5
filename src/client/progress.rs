//! Transfer progress on a terminal: one bar per file (bytes, rate, ETA) and, for `-r`, a
//! total. Nothing is drawn when stderr is not a terminal; notes and warnings still go to
//! stderr, above the bars when there are any. Names and notes can hold the server's text
//! (a file name it sent, its reason for a failure): both are [`shown`] escaped.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::shown::shown;

const FILE_TEMPLATE: &str =
    "{msg:30!} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta:>4} [{wide_bar}]";
const TOTAL_TEMPLATE: &str =
    "total {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta:>4} [{wide_bar}]";
const TOTAL_UNKNOWN_TEMPLATE: &str = "total {bytes:>10} {binary_bytes_per_sec:>12} {spinner}";

/// The bars of one transfer command.
pub struct Progress {
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
}

impl Progress {
    /// Bars on stderr if it is a terminal; otherwise silent.
    pub fn on_stderr() -> Self {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self { multi, total: None }
    }

    /// Starts a total bar over `bytes` (unknown: a running count).
    pub fn start_total(&mut self, bytes: Option<u64>) {
        let Some(multi) = &self.multi else { return };
        let bar = match bytes {
            Some(len) => ProgressBar::new(len).with_style(style(TOTAL_TEMPLATE)),
            None => ProgressBar::new_spinner().with_style(style(TOTAL_UNKNOWN_TEMPLATE)),
        };
        self.total = Some(multi.add(bar));
    }

    /// Ends the total bar.
    pub fn finish_total(&mut self) {
        if let Some(total) = self.total.take() {
            total.finish();
        }
    }

    /// A bar for one file of `size` bytes whose first `start` bytes are already there.
    pub fn file(&self, name: &str, size: u64, start: u64) -> FileBar {
        let bar = match &self.multi {
            Some(multi) => {
                let bar = ProgressBar::new(size)
                    .with_style(style(FILE_TEMPLATE))
                    .with_message(shown(name));
                bar.set_position(start);
                match &self.total {
                    Some(total) => multi.insert_before(total, bar),
                    None => multi.add(bar),
                }
            }
            None => ProgressBar::hidden(),
        };
        if let Some(total) = &self.total {
            total.inc(start);
        }
        FileBar {
            bar,
            total: self.total.clone(),
        }
    }

    /// Prints a line on stderr without breaking the bars, its control characters escaped.
    pub fn note(&self, line: &str) {
        let line = shown(line);
        match &self.multi {
            Some(multi) if multi.println(&line).is_ok() => {}
            _ => eprintln!("{line}"),
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The bar of one file (and the total it adds to).
pub struct FileBar {
    bar: ProgressBar,
    total: Option<ProgressBar>,
}

impl FileBar {
    /// `bytes` more arrived or left.
    pub fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
        if let Some(total) = &self.total {
            total.inc(bytes);
        }
    }

    /// The file is complete: its bar stays, full.
    pub fn done(&self) {
        self.bar.finish();
    }
}

impl Drop for FileBar {
    /// A bar dropped before [`FileBar::done`] stays where it stopped.
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.abandon();
        }
    }
}
