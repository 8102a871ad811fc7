//! `pipewright diff BASE HEAD`: the semantic diff of two compiled pipeline specs (docs/SPEC.md §14).
//!
//! Exit codes, like `git diff`: 0 whether or not the specs differ (with `--exit-code`, 1 when they
//! do), 2 when a file cannot be read or is not a compiled pipeline spec.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::error::{CliError, Outcome};
use super::output;
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

pub(super) fn diff(args: DiffArgs) -> Result<Outcome, CliError> {
    let summary = |path: &Path| -> Result<kfp::PipelineSummary, CliError> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| CliError::unable(format!("cannot read `{label}`: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            CliError::unable(format!("`{label}` is not UTF-8 (bad byte at offset {})", e.utf8_error().valid_up_to()))
        })?;
        kfp::summarize(&text, &label).map_err(|e| CliError::unable(e.to_string()))
    };
    // Both are read before either's error is reported, as before: the base's error comes first.
    let (base, head) = (summary(&args.base), summary(&args.head));
    let (base, head) = (base?, head?);
    let diff: SpecDiff = kfp::diff::diff(&base, &head);
    output::data(&match args.format {
        DiffFormat::Human => diff.to_text(),
        DiffFormat::Json => format!("{}\n", serde_json::to_string_pretty(&diff.to_json()).expect("a diff serialises")),
        DiffFormat::Markdown => kfp::diff::to_markdown(&diff),
    });
    Ok(Outcome::of(!args.exit_code || diff.is_empty()))
}
