//! The build file: a superset of Cloud Build's `cloudbuild.yaml` (docs/SPEC.md §2).
//!
//! `load` turns bytes into a [`BuildConfig`] or into every problem the file has, each with its line,
//! column and field path. Pure: this module reads no files and knows nothing of Docker or git; callers
//! hand it the text and a name to report it by.

mod decode;
mod diagnostic;
pub mod extensions;
mod model;
pub mod schema;
mod validate;

pub use crate::yaml::Pos;
pub use decode::{Decoder, MapReader, Spanned, Str, closest, parse_duration};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use extensions::Extensions;
pub use model::{AvailableSecrets, BuildConfig, MACHINE_TYPES, Options, Step, SubstitutionOption, Volume};
pub use validate::{MAX_TIMEOUT, Template, clean_path, report_substitution_problems, templates};

/// Larger files are refused before parsing: no real build file comes close.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// File names looked up at the source root, in order, when no `--config` is given.
pub const DEFAULT_FILES: &[&str] = &["pipewright.yaml", ".pipewright.yaml", "cloudbuild.yaml", "cloudbuild.json"];

/// Refuses a file of `size` bytes before it is read whole, if it is over [`MAX_FILE_BYTES`].
pub fn check_size(file: &str, size: u64) -> Result<(), Diagnostics> {
    if size <= MAX_FILE_BYTES as u64 {
        return Ok(());
    }
    let mut d = Decoder::new(file);
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    d.error(
        Pos { line: 1, col: 1 },
        "",
        format!("the file is {:.1} MiB; build files may be at most {} MiB", mib(size), MAX_FILE_BYTES / (1024 * 1024)),
    );
    Err(d.diagnostics)
}

/// A loaded build file and the warnings it produced.
#[derive(Debug)]
pub struct Loaded {
    pub config: BuildConfig,
    pub warnings: Diagnostics,
}

/// Parses, decodes and validates a build file. `overrides` are `--substitutions` values (they take part
/// in the substitution check, as they would in a run).
pub fn load(file: &str, bytes: &[u8], overrides: &[(String, String)]) -> Result<Loaded, Diagnostics> {
    check_size(file, bytes.len() as u64)?;
    let mut d = Decoder::new(file);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            let col = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            d.error_hint(
                Pos { line, col },
                "",
                format!("the file is not valid UTF-8 (bad byte at offset {})", e.valid_up_to()),
                "save the file as UTF-8",
            );
            return Err(d.diagnostics);
        }
    };
    let root = match crate::yaml::parse(text.strip_prefix('\u{feff}').unwrap_or(text)) {
        Ok(root) => root,
        Err(e) => {
            d.error(e.pos, "", e.message);
            return Err(d.diagnostics);
        }
    };
    let config = model::read_build(&mut d, &root);
    validate::check(&mut d, &config);
    validate::check_substitutions(&mut d, &config, overrides);
    d.diagnostics.sort();
    if d.diagnostics.has_errors() {
        return Err(d.diagnostics);
    }
    Ok(Loaded { config, warnings: d.diagnostics })
}

#[cfg(test)]
mod tests;
