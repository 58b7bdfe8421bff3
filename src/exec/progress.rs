//! Progress: bars (indicatif), one per running stage, on a terminal; plain
//! timestamped lines when piped, so a batch job's log shows a long run as it
//! goes; and a log file per stage either way.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a run shows its progress on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

pub struct Bars {
    multi: MultiProgress,
    show: bool,
    lines: bool,
    width: usize,
}

impl Bars {
    pub fn new(mode: Mode, _stages: usize) -> Self {
        let show = mode == Mode::Bars;
        let target = if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            show,
            lines: mode == Mode::Lines,
            width: 12,
        }
    }

    pub fn stage(&self, id: &str, log: &Path) -> StageReporter {
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12.bold} [{bar:28.cyan/blue}] {pos}/{len} {msg} {elapsed}<{eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(truncate(id, self.width));
        bar.enable_steady_tick(Duration::from_millis(250));
        StageReporter {
            id: id.to_string(),
            bar,
            log_path: log.to_path_buf(),
            log: Mutex::new(None),
            multi: self.multi.clone(),
            show: self.show,
            lines: self.lines,
        }
    }

    pub fn finish(&self) {
        let _ = self.multi.clear();
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

/// One stage's bar and log.
pub struct StageReporter {
    id: String,
    bar: ProgressBar,
    /// Created on the first line: a cache hit writes none, so a no-op run
    /// creates no files for its stages.
    log_path: std::path::PathBuf,
    log: Mutex<Option<std::fs::File>>,
    multi: MultiProgress,
    show: bool,
    /// Echo every log line to stderr (piped output).
    lines: bool,
}

impl StageReporter {
    /// Leave a one-line result where the bar was.
    pub fn done(&self, status: &str, seconds: f64) {
        self.bar.finish_and_clear();
        if self.lines {
            eprintln!(
                "{} {} {status} in {}",
                now(),
                self.id,
                human_seconds(seconds)
            );
        }
        if self.show {
            let _ = self.multi.println(format!(
                "{:>12} {status} in {}",
                self.bar.prefix(),
                human_seconds(seconds)
            ));
        }
    }

    /// A cache hit: shown when piped, not written to a log file.
    pub fn cache_hit(&self, key: &str) {
        if self.lines {
            eprintln!("{} {}: cache hit {key}", now(), self.id);
        }
    }

    /// A line for the log file only (a cluster job's output, already
    /// shown where it ran).
    pub fn log_quietly(&self, line: &str) {
        let mut log = self.log.lock().expect("log lock");
        if log.is_none() {
            if let Some(dir) = self.log_path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            *log = std::fs::File::create(&self.log_path).ok();
        }
        if let Some(f) = log.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Warnings go to the terminal even without bars, and to the log.
    pub fn warn(&self, msg: &str) {
        use crate::progress::Progress;
        self.log(msg);
        if self.show {
            let _ = self.multi.println(msg);
        } else if !self.lines {
            // (with `lines`, `log` above has echoed it)
            eprintln!("{msg}");
        }
    }
}

impl crate::progress::Progress for StageReporter {
    fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }
    fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }
    fn set_message(&self, msg: String) {
        self.bar.set_message(msg);
    }
    fn log(&self, line: &str) {
        let mut log = self.log.lock().expect("log lock");
        if log.is_none() {
            if let Some(dir) = self.log_path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            *log = std::fs::File::create(&self.log_path).ok();
        }
        if let Some(f) = log.as_mut() {
            let _ = writeln!(f, "{} {line}", now());
        }
        if self.lines {
            eprintln!("{} {}: {line}", now(), self.id);
        }
    }
}

fn now() -> impl std::fmt::Display {
    jiff::Timestamp::now().strftime("%H:%M:%S")
}

pub fn human_seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}
