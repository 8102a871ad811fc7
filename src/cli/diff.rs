//! `pipewright diff BASE HEAD`: the semantic diff of two compiled pipeline specs (SPEC §14).
//!
//! Exit codes, like `git diff`: 0 whether or not the specs differ (with `--exit-code`, 1 when they
//! do), 2 when a file cannot be read or is not a compiled pipeline spec.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{fatal, output};
use crate::kfp::{self, diff::SpecDiff};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(super) enum DiffFormat {
    /// One line per change
    #[default]
    Human,
    /// `{"changes": [{"kind": …}, …], "summary": {"total": N, "byKind": {…}}}`
    Json,
    /// A Markdown table (as in the GitHub Actions step summary)
    Markdown,
}

#[derive(Args, Debug)]
pub(super) struct DiffArgs {
    /// The compiled pipeline spec to compare from (KFP IR: YAML, multi-document YAML with platform
    /// specs, or JSON)
    base: PathBuf,
    /// The compiled pipeline spec to compare to
    head: PathBuf,
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    format: DiffFormat,
    /// Exit with 1 when the specs differ (0 when they do not)
    #[arg(long)]
    exit_code: bool,
}

pub(super) fn diff(args: DiffArgs) -> ExitCode {
    let summary = |path: &Path| -> Result<kfp::PipelineSummary, String> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{label}`: {e}"))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| format!("`{label}` is not UTF-8 (bad byte at offset {})", e.utf8_error().valid_up_to()))?;
        kfp::summarize(&text, &label).map_err(|e| e.to_string())
    };
    let (base, head) = match (summary(&args.base), summary(&args.head)) {
        (Ok(base), Ok(head)) => (base, head),
        (Err(e), _) | (_, Err(e)) => return fatal(&e, None),
    };
    let diff: SpecDiff = kfp::diff::diff(&base, &head);
    output::data(&match args.format {
        DiffFormat::Human => diff.to_text(),
        DiffFormat::Json => format!("{}\n", serde_json::to_string_pretty(&diff.to_json()).expect("a diff serialises")),
        DiffFormat::Markdown => kfp::diff::to_markdown(&diff),
    });
    if args.exit_code && !diff.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
