//! `pipewright validate [FILE]`: checks a build file without running anything (no Docker needed).
//!
//! Exit codes: 0 the file is valid, 1 it has problems (printed as diagnostics, or as JSON on stdout),
//! 2 there is no file to check or it cannot be read.

use std::path::PathBuf;

use clap::Args;

use super::common::{Format, SubstitutionArgs};
use super::error::{CliError, Outcome};
use super::output::{self, Printer};
use crate::config;

#[derive(Args, Debug)]
pub(super) struct ValidateArgs {
    /// Build file to check (default: the first of pipewright.yaml, .pipewright.yaml, cloudbuild.yaml,
    /// cloudbuild.json in the current directory)
    file: Option<PathBuf>,
    #[command(flatten)]
    substitutions: SubstitutionArgs,
    /// `json` prints every problem as JSON to stdout
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub(super) fn validate(args: ValidateArgs) -> Result<Outcome, CliError> {
    let overrides = args.substitutions.parse()?;
    let path = match &args.file {
        Some(path) => path.clone(),
        None => config::DEFAULT_FILES.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| {
            CliError::unable("no build file in the current directory").with_hint(format!(
                "looked for {}; or name one: `pipewright validate FILE`",
                config::DEFAULT_FILES.join(", ")
            ))
        })?,
    };
    let label = path.display().to_string();
    let meta = path.metadata().map_err(|e| CliError::unable(format!("cannot read `{label}`: {e}")))?;
    let result = config::check_size(&label, meta.len()).and_then(|()| match std::fs::read(&path) {
        Ok(bytes) => config::load(&label, &bytes, &overrides),
        Err(e) => Err(read_error(&label, &e)),
    });
    match args.format {
        Format::Json => {
            let diagnostics = match &result {
                Ok(loaded) => &loaded.warnings,
                Err(d) => d,
            };
            println!("{}", output::diagnostics_json(&label, result.is_ok(), diagnostics, result.as_ref().ok()));
            Ok(Outcome::of(result.is_ok()))
        }
        Format::Human => match result {
            Ok(loaded) => {
                let printer = Printer::stderr();
                for warning in loaded.warnings.warnings() {
                    printer.warning(&warning.render(&label));
                }
                let steps = loaded.config.steps.len();
                printer.success(&format!("{label}: valid ({steps} step{})", if steps == 1 { "" } else { "s" }));
                Ok(Outcome::Success)
            }
            Err(diagnostics) => {
                let errors = diagnostics.errors().count();
                Err(CliError::failed(format!("{label}: {errors} problem{}", if errors == 1 { "" } else { "s" }))
                    .with_detail(diagnostics.to_string()))
            }
        },
    }
}

fn read_error(label: &str, e: &std::io::Error) -> config::Diagnostics {
    let mut d = config::Diagnostics::new(label);
    d.push(config::Diagnostic::error(config::Pos { line: 1, col: 1 }, "", format!("cannot read the file: {e}")));
    d
}
