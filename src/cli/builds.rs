//! `builds list | show | logs` (docs/SPEC.md §14): the records and logs `run` left in the data directory.
//!
//! Builds on a server are listed, cancelled and retried through its API and dashboard; these commands
//! read the local data directory, which is also the server's when pointed at it (`--data-dir`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::common::Format;
use super::error::{CliError, Outcome};
use super::output::Printer;
use crate::io::store::Store;
use crate::record::{Build, Status};

#[derive(Args, Debug)]
pub(super) struct BuildsArgs {
    #[command(subcommand)]
    command: BuildsCommand,
    /// Data directory [default: $PIPEWRIGHT_DATA_DIR, else ~/.local/share/pipewright]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum BuildsCommand {
    /// The builds in the data directory, newest first
    List {
        /// Only builds with this status (`SUCCESS`, `FAILURE`, …)
        #[arg(long)]
        status: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// `json` prints the records
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// One build: status, trigger, steps, phases, components, pipeline, run and promotions
    Show {
        /// The build (its id, or the first characters of it)
        build: String,
        /// `json` prints the record
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// A build's log (every step, Cloud Build style), or one step's
    Logs {
        /// The build (its id, or the first characters of it)
        build: String,
        /// Only this step's output (its index)
        #[arg(long)]
        step: Option<usize>,
        /// Keep printing until the build ends
        #[arg(long, short)]
        follow: bool,
    },
}

pub(super) async fn builds(args: BuildsArgs) -> Result<Outcome, CliError> {
    let store = Store::new(args.data_dir.clone().unwrap_or_else(Store::default_root));
    match args.command {
        BuildsCommand::List { status, limit, format } => list(&store, status.as_deref(), limit, format),
        BuildsCommand::Show { build, format } => show(&store, &build, format),
        BuildsCommand::Logs { build, step, follow } => logs(&store, &build, step, follow).await,
    }
}

fn list(store: &Store, status: Option<&str>, limit: usize, format: Format) -> Result<Outcome, CliError> {
    if let Some(wanted) = status
        && !ALL_STATUSES.iter().any(|s| s.as_str().eq_ignore_ascii_case(wanted))
    {
        let names: Vec<&str> = ALL_STATUSES.iter().map(|s| s.as_str()).collect();
        return Err(CliError::unable(format!("`--status {wanted}` is not a build status"))
            .with_hint(format!("one of {}", names.join(", "))));
    }
    let printer = Printer::stderr();
    let mut shown = Vec::new();
    for entry in store.list() {
        match entry {
            Ok(build) if status.is_none_or(|s| build.status.as_str().eq_ignore_ascii_case(s)) => shown.push(build),
            Ok(_) => {}
            Err(e) => printer.warning(&crate::error_chain(&e)),
        }
        if shown.len() == limit {
            break;
        }
    }
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&shown).expect("records serialise"));
        return Ok(Outcome::Success);
    }
    if shown.is_empty() {
        printer.note(&format!("no builds in {}", store.root().display()));
        return Ok(Outcome::Success);
    }
    let _ = writeln!(out, "{:<8}  {:<14}  {:<20}  {:<7}  {:>8}  CREATED", "BUILD", "STATUS", "REF", "COMMIT", "TIME");
    for build in &shown {
        let commit = build.commit.as_ref();
        let git_ref = commit.and_then(|c| c.branch.clone().or_else(|| c.tag.clone())).unwrap_or_default();
        let sha = commit.map(|c| c.sha.chars().take(7).collect::<String>()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<8}  {:<14}  {:<20}  {:<7}  {:>8}  {}",
            &build.id[..build.id.len().min(8)],
            build.status.as_str(),
            git_ref,
            sha,
            seconds(build),
            created(build)
        );
    }
    Ok(Outcome::Success)
}

const ALL_STATUSES: [Status; 11] = [
    Status::StatusUnknown,
    Status::Pending,
    Status::Queued,
    Status::Working,
    Status::Success,
    Status::Failure,
    Status::InternalError,
    Status::Timeout,
    Status::Cancelled,
    Status::Expired,
    Status::Skipped,
];

/// `2026-11-25 10:04:05` (UTC): the listing's width, without the record's nanoseconds.
fn created(build: &Build) -> String {
    let t = build.create_time.0;
    format!("{} {:02}:{:02}:{:02}", t.date(), t.hour(), t.minute(), t.second())
}

fn seconds(build: &Build) -> String {
    match (build.start_time, build.finish_time) {
        (Some(start), Some(end)) => format!("{:.1}s", end.seconds_since(&start)),
        _ => String::new(),
    }
}

fn load(store: &Store, prefix: &str) -> Result<Build, CliError> {
    let id = store
        .resolve(prefix)
        .map_err(|e| CliError::unable(crate::error_chain(&e)).with_hint("`pipewright builds list` lists them"))?;
    store.load(&id).map_err(|e| CliError::unable(crate::error_chain(&e)))
}

fn show(store: &Store, prefix: &str, format: Format) -> Result<Outcome, CliError> {
    let build = load(store, prefix)?;
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&build).expect("a record serialises"),
        // The GitHub step summary's Markdown reads well in a terminal too, and keeps one rendering.
        Format::Human => crate::github::summary::build(&build, None),
    };
    let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
    Ok(Outcome::Success)
}

async fn logs(store: &Store, prefix: &str, step: Option<usize>, follow: bool) -> Result<Outcome, CliError> {
    let build = load(store, prefix)?;
    let path = match step {
        Some(i) if i >= build.steps.len() => {
            let steps = build.steps.len();
            return Err(CliError::unable(format!("build {} has {steps} steps; there is no step {i}", build.id)));
        }
        Some(i) => store.step_log_path(&build.id, i),
        None => store.log_path(&build.id),
    };
    let mut printed = 0;
    loop {
        // Logs are appended line by line, so what was printed is a prefix of what is there now.
        let bytes = tokio::fs::read(&path).await.unwrap_or_default();
        if bytes.len() > printed {
            let _ = std::io::stdout().lock().write_all(&bytes[printed..]);
            printed = bytes.len();
        }
        let done = store.load(&build.id).map(|b| b.status.is_terminal()).unwrap_or(true);
        if !follow || done {
            let rest = tokio::fs::read(&path).await.unwrap_or_default();
            if rest.len() > printed {
                let _ = std::io::stdout().lock().write_all(&rest[printed..]);
            }
            return Ok(Outcome::Success);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
