//! From an event to its trigger decision against the repository mirror (SPEC §10): the build file at the
//! event's commit, its `triggers:` (every push, tag and pull request without them), the changed files
//! between the commits [`trigger::diff_base`] names, and [`trigger::decide`].
//!
//! The one path every delivery takes: the intake worker runs it, and so do the path-filter tests against
//! real repositories, so what they check is what the server does. The rules live in `trigger` (pure) and
//! the git in `source::mirror`; this only joins them. Blocking (it runs git): call it on a blocking thread.

use crate::config::extensions::Trigger;
use crate::source::mirror::Mirror;
use crate::trigger::{self, ChangedFiles, Decision, Event};

/// What the build file at an event's commit makes of the event.
#[derive(Debug)]
pub enum Evaluation {
    /// The commit has no build file: nothing to build.
    NoBuildFile,
    /// The build file at `path` has problems (`diagnostics`, rendered): the build fails before it starts.
    Invalid {
        path: String,
        diagnostics: String,
    },
    Decided(Decided),
}

#[derive(Debug)]
pub struct Decided {
    /// The build file read; `None` when the event needed none (a deleted ref).
    pub config_path: Option<String>,
    /// The changed files the decision was made with.
    pub changed: ChangedFiles,
    pub decision: Decision,
}

/// Evaluates `event` against the mirror, which must already hold its commits (fetch first). `configured`
/// is the repository's build file path, if the server config names one. An error is a failure to read the
/// mirror, rendered as one line.
pub fn evaluate(mirror: &Mirror, event: &Event, configured: Option<&str>) -> Result<Evaluation, String> {
    if event.deleted {
        // The ref's new commit is the zero SHA: there is no build file to read, and nothing to build.
        let decision = trigger::decide(&[], event, ChangedFiles::Files(Vec::new()), false);
        return Ok(Evaluation::Decided(Decided {
            config_path: None,
            changed: ChangedFiles::Files(Vec::new()),
            decision,
        }));
    }
    let Some((path, bytes)) = read_build_file(mirror, &event.after, configured)? else {
        return Ok(Evaluation::NoBuildFile);
    };
    let loaded = match crate::config::load(&path, &bytes, &[]) {
        Ok(loaded) => loaded,
        Err(diagnostics) => return Ok(Evaluation::Invalid { path, diagnostics: diagnostics.to_string() }),
    };
    let (changed, decision) = decide_with(mirror, event, &loaded.config.extensions.triggers);
    Ok(Evaluation::Decided(Decided { config_path: Some(path), changed, decision }))
}

/// The decision for `event` under the build file's `triggers` (every push, tag and pull request when it
/// has none), with the changed files from `mirror`, which may also be a CI job's checkout.
pub fn decide_with(mirror: &Mirror, event: &Event, triggers: &[Trigger]) -> (ChangedFiles, Decision) {
    let every = if triggers.is_empty() { Trigger::every_event() } else { Vec::new() };
    let triggers = if triggers.is_empty() { every.as_slice() } else { triggers };
    let changed = mirror.changed_files(&trigger::diff_base(event));
    let decision = trigger::decide(triggers, event, changed.clone(), false);
    (changed, decision)
}

/// The build file at `commit`: the configured path, else the first of the default names present.
pub fn read_build_file(
    mirror: &Mirror,
    commit: &str,
    configured: Option<&str>,
) -> Result<Option<(String, Vec<u8>)>, String> {
    let candidates: Vec<&str> = match configured {
        Some(path) => vec![path],
        None => crate::config::DEFAULT_FILES.to_vec(),
    };
    for path in candidates {
        match mirror.read_file(commit, path) {
            Ok(Some(bytes)) => return Ok(Some((path.to_string(), bytes))),
            Ok(None) => continue,
            Err(e) => return Err(crate::error_chain(&e)),
        }
    }
    Ok(None)
}
