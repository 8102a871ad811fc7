//! What the CLI writes: progress and logs on stderr (coloured on a TTY unless `NO_COLOR`), data on stdout.

use std::io::{IsTerminal, Write};
use std::path::Path;

use tokio::sync::mpsc;

use crate::config::{Diagnostics, Loaded, Severity};
use crate::engine::BuildEvent;
use crate::record::{Build, Status};

/// Writes data to stdout. A reader that went away early (`pipewright schema | head`) is not an error,
/// and must not be a panic.
pub fn data(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

#[derive(Clone, Debug)]
pub struct Printer {
    color: bool,
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

impl Printer {
    pub fn stderr() -> Printer {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer { color }
    }

    fn paint(&self, color: &str, text: &str) -> String {
        if self.color { format!("{color}{text}{RESET}") } else { text.to_string() }
    }

    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    pub fn plain(&self, text: &str) {
        self.line(text);
    }

    pub fn error(&self, message: &str, hint: Option<&str>) {
        self.line(&format!("{} {message}", self.paint(RED, "error:")));
        if let Some(hint) = hint {
            self.line(&format!("\n  {} {hint}", self.paint(BOLD, "hint:")));
        }
    }

    pub fn warning(&self, message: &str) {
        self.line(&format!("{} {message}", self.paint(YELLOW, "warning:")));
    }

    pub fn note(&self, message: &str) {
        self.line(&self.paint(DIM, message));
    }

    pub fn success(&self, message: &str) {
        self.line(&self.paint(GREEN, message));
    }

    fn status(&self, status: Status) -> String {
        let color = match status {
            Status::Success => GREEN,
            Status::Working | Status::Queued | Status::Pending => DIM,
            Status::Skipped => YELLOW,
            _ => RED,
        };
        self.paint(color, status.as_str())
    }

    /// The last lines of a run: status, duration, the failure and where the record is.
    pub fn summary(&self, build: &Build, record: &Path) {
        let seconds = match (build.start_time, build.finish_time) {
            (Some(start), Some(end)) => format!(" in {:.1}s", end.seconds_since(&start)),
            _ => String::new(),
        };
        self.line(&format!("build {} {}{seconds}", short(&build.id), self.status(build.status)));
        if let Some(failure) = &build.failure_info {
            self.line(&format!("  {}", failure.detail));
        }
        self.note(&format!("record: {}", record.display()));
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// Prints build events until the channel closes.
pub async fn progress(mut events: mpsc::UnboundedReceiver<BuildEvent>, printer: Printer) {
    let mut labels: Vec<String> = Vec::new();
    while let Some(event) = events.recv().await {
        match event {
            BuildEvent::Started { build_id, steps } => {
                printer.note(&format!(
                    "build {build_id}: {} step{}",
                    steps.len(),
                    if steps.len() == 1 { "" } else { "s" }
                ));
                labels = steps;
            }
            BuildEvent::Warning(text) => printer.warning(&text),
            BuildEvent::StepStarted { index } => {
                printer.line(&printer.paint(DIM, &format!("▶ {}", label(&labels, index))));
            }
            BuildEvent::StepOutput { index, line } => {
                printer.line(&format!("{} {line}", printer.paint(DIM, &format!("[{}]", tag(&labels, index)))));
            }
            BuildEvent::StepFinished { index, status, exit_code, seconds } => {
                let code = match exit_code {
                    Some(c) if c != 0 => format!(" (exit code {c})"),
                    _ => String::new(),
                };
                let time = seconds.map(|s| format!(" in {s:.1}s")).unwrap_or_default();
                printer.line(&format!("■ {} {}{code}{time}", label(&labels, index), printer.status(status)));
            }
            BuildEvent::Phase { name } => printer.line(&printer.paint(DIM, &format!("▶ {name}"))),
            BuildEvent::Output { source, line } => {
                printer.line(&format!("{} {line}", printer.paint(DIM, &format!("[{source}]"))));
            }
            BuildEvent::PhaseDone { name, ok, detail } => {
                let status = if ok { printer.paint(GREEN, "done") } else { printer.paint(RED, "failed") };
                printer.line(&format!("■ {name} {status}: {detail}"));
            }
            BuildEvent::Finished { .. } => {}
        }
    }
}

pub(super) fn label(labels: &[String], index: usize) -> String {
    labels.get(index).cloned().unwrap_or_else(|| format!("step {index}"))
}

/// `0` or the step's id, for prefixing its output lines.
fn tag(labels: &[String], index: usize) -> String {
    let full = label(labels, index);
    match full.split_once(" (") {
        Some((_, id)) => id.trim_end_matches(')').to_string(),
        None => index.to_string(),
    }
}

/// `validate --format json`.
pub fn diagnostics_json(file: &str, valid: bool, diagnostics: &Diagnostics, loaded: Option<&Loaded>) -> String {
    let items: Vec<serde_json::Value> = diagnostics
        .items
        .iter()
        .map(|d| {
            serde_json::json!({
                "severity": if d.severity == Severity::Error { "error" } else { "warning" },
                "line": d.pos.line,
                "column": d.pos.col,
                "field": d.path,
                "message": d.message,
                "hint": d.hint,
            })
        })
        .collect();
    let value = serde_json::json!({
        "file": file,
        "valid": valid,
        "steps": loaded.map(|l| l.config.steps.len()),
        "diagnostics": items,
    });
    serde_json::to_string_pretty(&value).expect("json values serialise")
}
