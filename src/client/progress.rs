//! Transfer progress on a terminal: one bar per file (name, percentage, bytes, rate, ETA)
//! and, for `-r`, a total, laid out to leave a usable bar at 80 columns. A long name is
//! shortened in the middle, keeping the file's own name; a resumed file's rate counts only
//! the bytes moved now. Bars are drawn only once they are placed (no stray line). Nothing
//! is drawn when stderr is not a terminal; notes and warnings still go to stderr, above the
//! bars when there are any. Names and notes can hold the server's text
//! (a file name it sent, its reason for a failure): both are [`shown`] escaped.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::shown::shown;

/// Columns a file's name takes in its bar.
const NAME_COLUMNS: usize = 28;
const FILE_TEMPLATE: &str =
    "{msg:28} {percent:>3}% {bytes:>10} {binary_bytes_per_sec:>12} {eta:>4} [{wide_bar}]";
const TOTAL_TEMPLATE: &str = "total                        {percent:>3}% {bytes:>10} {binary_bytes_per_sec:>12} {eta:>4} [{wide_bar}]";
const TOTAL_UNKNOWN_TEMPLATE: &str =
    "total                             {bytes:>10} {binary_bytes_per_sec:>12} {spinner}";

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
            Some(len) => unplaced(Some(len)).with_style(style(TOTAL_TEMPLATE)),
            None => unplaced(None).with_style(style(TOTAL_UNKNOWN_TEMPLATE)),
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
                let bar = unplaced(Some(size))
                    .with_style(style(FILE_TEMPLATE))
                    .with_message(shortened(&shown(name), NAME_COLUMNS));
                bar.set_position(start);
                // The bytes already there are not a rate.
                bar.reset_eta();
                match &self.total {
                    Some(total) => multi.insert_before(total, bar),
                    None => multi.add(bar),
                }
            }
            None => ProgressBar::hidden(),
        };
        if let Some(total) = &self.total
            && start > 0
        {
            total.inc(start);
            total.reset_eta();
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

/// A bar that draws nothing until a [`MultiProgress`] places it (a new bar draws on stderr
/// at once, which left a stray `0 B` line above the real one).
fn unplaced(len: Option<u64>) -> ProgressBar {
    ProgressBar::with_draw_target(len, ProgressDrawTarget::hidden())
}

/// `name` in at most `columns` characters: as it is if it fits, else shortened in the
/// middle with `…`, keeping its last component (or that component's end, if even it is too
/// long), so that the files of one directory still look different.
fn shortened(name: &str, columns: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= columns {
        return name.to_owned();
    }
    let last_start = chars.iter().rposition(|&c| c == '/').map_or(0, |i| i + 1);
    let last = chars.get(last_start..).unwrap_or_default();
    let room = columns.saturating_sub(1);
    if last.len() + 1 >= room {
        let tail = chars
            .get(chars.len().saturating_sub(room)..)
            .unwrap_or_default();
        return std::iter::once('…').chain(tail.iter().copied()).collect();
    }
    // A head from the start, `…/`, then the last component.
    let head = columns.saturating_sub(last.len() + 2);
    chars
        .iter()
        .take(head)
        .copied()
        .chain("…/".chars())
        .chain(last.iter().copied())
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_file_name() {
        assert_eq!(shortened("/tmp/a.bin", 28), "/tmp/a.bin");
        let long = "/tmp/tree-copy/aaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbb/file1.bin";
        let short = shortened(long, 28);
        assert_eq!(short, "/tmp/tree-copy/aa…/file1.bin");
        assert_eq!(short.chars().count(), 28);
        assert_ne!(short, shortened(&long.replace("file1", "file2"), 28));
        let huge_file = format!("/d/{}", "x".repeat(40));
        let short = shortened(&huge_file, 28);
        assert_eq!(short.chars().count(), 28);
        assert!(short.starts_with('…') && short.ends_with("xxx"), "{short}");
        assert_eq!(
            shortened("répertoire/日本語のファイル名です.txt", 12)
                .chars()
                .count(),
            12
        );
    }
}
