//! Renders the core's progress events (target `salescast::progress`, see
//! `salescast_core::progress`) on stderr, never on stdout: on an interactive
//! terminal as indicatif bars (a spinner when the length is unknown), with
//! the log lines printed above them; elsewhere (CI logs, pipes) as quiet
//! lines: one when a phase starts, one when it ends with its duration, and
//! in between at most one every [`LINE_EVERY`] per phase.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use salescast_core::progress::TARGET;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};

/// The least time between two step lines of one phase in a CI log.
pub const LINE_EVERY: Duration = Duration::from_secs(10);

/// Whether an event is a progress event (which the log lines leave out).
pub fn is_progress(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target() == TARGET
}

/// One progress event's fields.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Progress {
    pub phase: String,
    pub event: String,
    pub total: u64,
    pub done: u64,
    pub item: String,
    pub ok: bool,
    pub seconds: f64,
}

impl Visit for Progress {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "phase" => self.phase = value.to_string(),
            "event" => self.event = value.to_string(),
            "item" => self.item = value.to_string(),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "total" => self.total = value,
            "done" => self.done = value,
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "ok" {
            self.ok = value;
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "seconds" {
            self.seconds = value;
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// The quiet lines of a CI log: what to print for each event, given the time.
#[derive(Debug, Default)]
pub struct Lines {
    last: HashMap<String, Instant>,
}

impl Lines {
    pub fn line(&mut self, p: &Progress, now: Instant) -> Option<String> {
        let count = |done: u64| {
            if p.total > 0 {
                format!(" ({done}/{})", p.total)
            } else {
                String::new()
            }
        };
        match p.event.as_str() {
            "start" => {
                self.last.insert(p.phase.clone(), now);
                Some(format!("progress: {}: started{}", p.phase, count(0)))
            }
            "step" => {
                let last = self.last.get_mut(&p.phase)?;
                if now.duration_since(*last) < LINE_EVERY {
                    return None;
                }
                *last = now;
                let item = if p.item.is_empty() {
                    String::new()
                } else {
                    format!(", {}", p.item)
                };
                Some(format!("progress: {}:{}{item}", p.phase, count(p.done)))
            }
            "end" => {
                self.last.remove(&p.phase);
                let verb = if p.ok { "done in" } else { "stopped after" };
                Some(format!(
                    "progress: {}: {verb} {:.2} s{}",
                    p.phase,
                    p.seconds,
                    count(p.done)
                ))
            }
            _ => None,
        }
    }
}

/// How progress is drawn.
enum Draw {
    Bars {
        multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
    Lines(Lines),
}

/// The tracing layer that draws progress events.
pub struct ProgressLayer {
    draw: Mutex<Draw>,
}

impl ProgressLayer {
    /// Bars on a terminal, lines elsewhere.
    pub fn new(terminal: bool) -> Self {
        let draw = if terminal {
            Draw::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: HashMap::new(),
            }
        } else {
            Draw::Lines(Lines::default())
        };
        Self {
            draw: Mutex::new(draw),
        }
    }

    /// Where the log lines go: above the bars, or straight to stderr.
    pub fn writer(&self) -> StderrWriter {
        let draw = self.draw.lock().unwrap_or_else(|e| e.into_inner());
        StderrWriter {
            multi: match &*draw {
                Draw::Bars { multi, .. } => Some(multi.clone()),
                Draw::Lines(_) => None,
            },
        }
    }
}

impl<S: Subscriber> Layer<S> for ProgressLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if !is_progress(event.metadata()) {
            return;
        }
        let mut p = Progress::default();
        event.record(&mut p);
        let mut draw = self.draw.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *draw {
            Draw::Lines(lines) => {
                if let Some(line) = lines.line(&p, Instant::now()) {
                    // A closed stderr loses the progress, never the run.
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            }
            Draw::Bars { multi, bars } => bar_event(multi, bars, &p),
        }
    }
}

fn bar_event(multi: &MultiProgress, bars: &mut HashMap<String, ProgressBar>, p: &Progress) {
    match p.event.as_str() {
        "start" => {
            let bar = if p.total > 0 {
                ProgressBar::new(p.total).with_style(
                    ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                )
            } else {
                ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                )
            };
            let bar = multi.add(bar.with_message(p.phase.clone()));
            bar.enable_steady_tick(Duration::from_millis(120));
            bars.insert(p.phase.clone(), bar);
        }
        "step" => {
            if let Some(bar) = bars.get(&p.phase) {
                bar.set_position(p.done);
                if !p.item.is_empty() {
                    bar.set_message(format!("{}: {}", p.phase, p.item));
                }
            }
        }
        "end" => {
            if let Some(bar) = bars.remove(&p.phase) {
                bar.finish_and_clear();
                multi.remove(&bar);
                let verb = if p.ok { "done in" } else { "stopped after" };
                let _ = multi.println(format!("{} {verb} {:.2} s", p.phase, p.seconds));
            }
        }
        _ => {}
    }
}

/// The log lines' writer: each line written whole, above the bars when
/// there are any.
#[derive(Clone)]
pub struct StderrWriter {
    multi: Option<MultiProgress>,
}

impl<'a> MakeWriter<'a> for StderrWriter {
    type Writer = LineBuffer;
    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer {
            multi: self.multi.clone(),
            buffer: Vec::new(),
        }
    }
}

/// One log line, written to stderr when dropped.
pub struct LineBuffer {
    multi: Option<MultiProgress>,
    buffer: Vec<u8>,
}

impl std::io::Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.buffer);
        };
        match &self.multi {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, done: u64, seconds: f64) -> Progress {
        Progress {
            phase: "fitting candidates".into(),
            event: event.into(),
            total: 4,
            done,
            item: "gbdt".into(),
            ok: true,
            seconds,
        }
    }

    #[test]
    fn ci_lines_start_end_and_a_step_at_most_every_ten_seconds() {
        let mut lines = Lines::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(
            lines.line(&event("start", 0, 0.0), at(0)).as_deref(),
            Some("progress: fitting candidates: started (0/4)")
        );
        assert_eq!(lines.line(&event("step", 1, 0.0), at(3)), None, "3 s: too soon");
        assert_eq!(
            lines.line(&event("step", 2, 0.0), at(11)).as_deref(),
            Some("progress: fitting candidates: (2/4), gbdt")
        );
        assert_eq!(
            lines.line(&event("step", 3, 0.0), at(15)),
            None,
            "4 s after the last line"
        );
        assert_eq!(
            lines.line(&event("end", 4, 16.5), at(16)).as_deref(),
            Some("progress: fitting candidates: done in 16.50 s (4/4)")
        );
        let failed = Progress {
            ok: false,
            ..event("end", 1, 2.0)
        };
        assert!(
            lines
                .line(&failed, at(20))
                .unwrap()
                .contains("stopped after 2.00 s")
        );
        assert_eq!(
            lines.line(&event("step", 1, 0.0), at(60)),
            None,
            "a step of an ended phase"
        );
    }
}
