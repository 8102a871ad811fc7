//! From an event to its trigger decision against the repository mirror (docs/SPEC.md §10): the build file at the
//! event's commit, the `triggers:` that decide (every push, tag and pull request without them), the
//! changed files between the commits [`trigger::diff_base`] names, and [`trigger::decide`].
//!
//! A pull request cannot write its own gate (docs/THREATS.md property 4): whether it builds, how it
//! is reported (a path filter's skip is a success status) and which concurrency group it joins (and
//! cancels) are decided by the `triggers:` of the build file on its BASE branch, as Cloud Build keeps
//! triggers outside the repository. The head's build file must still load (it is what builds), but its
//! `triggers:` are not read. [`Rules`] says which file decided, for the record and the log.
//!
//! The one path every delivery takes: the intake worker runs it, and so do the path-filter tests against
//! real repositories, so what they check is what the server does. The rules live in `trigger` (pure) and
//! the git in `source::mirror`; this only joins them. Blocking (it runs git): call it on a blocking thread.

use crate::config::extensions::Trigger;
use crate::io::source::mirror::Mirror;
use crate::trigger::{self, ChangedFiles, Decision, Event, Kind};

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
    /// Where the triggers that decided came from.
    pub rules: Rules,
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
            rules: Rules::Defaults { why: "the ref was deleted".into() },
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
    let (rules, triggers) = match &event.kind {
        Kind::PullRequest(pr) => base_rules(mirror, event, &pr.base_branch, configured)?,
        _ => {
            let rules = Rules::File { path: path.clone(), commit: event.after.clone(), base_branch: None };
            (rules, loaded.config.extensions.triggers)
        }
    };
    let (changed, decision) = decide_with(mirror, event, &triggers);
    Ok(Evaluation::Decided(Decided { config_path: Some(path), rules, changed, decision }))
}

/// Which build file's `triggers:` decided an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rules {
    /// The file at `path` in `commit`: the built commit, or for a pull request the tip of its base
    /// branch `base_branch`.
    File { path: String, commit: String, base_branch: Option<String> },
    /// No file's: a pull request whose base branch has no (valid) build file gets the rules of a file
    /// without `triggers:` (it builds, unfiltered, in no group), never its own head's.
    Defaults { why: String },
}

impl std::fmt::Display for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rules::File { path, commit, base_branch: None } => write!(f, "`{path}` at {}", short(commit)),
            Rules::File { path, commit, base_branch: Some(branch) } => {
                write!(f, "`{path}` of the base branch `{branch}` at {}", short(commit))
            }
            Rules::Defaults { why } => write!(f, "the defaults ({why})"),
        }
    }
}

/// The triggers of a pull request: those of the build file at the tip of its base branch in the mirror
/// (the branch as fetched from the repository, where only those who may push to it change it), or at the
/// base commit the event names when the branch is gone.
fn base_rules(
    mirror: &Mirror,
    event: &Event,
    base_branch: &str,
    configured: Option<&str>,
) -> Result<(Rules, Vec<Trigger>), String> {
    let tip = mirror.resolve(&format!("refs/heads/{base_branch}")).map_err(|e| crate::error_chain(&e))?;
    let commit = match (tip, &event.base) {
        (Some(tip), _) => tip,
        (None, Some(base)) if mirror.resolve(base).map_err(|e| crate::error_chain(&e))?.is_some() => base.clone(),
        _ => {
            let why = format!("the base branch `{base_branch}` is not in the mirror");
            return Ok((Rules::Defaults { why }, Vec::new()));
        }
    };
    let Some((path, bytes)) = read_build_file(mirror, &commit, configured)? else {
        let why = format!("the base branch `{base_branch}` has no build file at {}", short(&commit));
        return Ok((Rules::Defaults { why }, Vec::new()));
    };
    match crate::config::load(&path, &bytes, &[]) {
        Ok(loaded) => {
            let rules = Rules::File { path, commit, base_branch: Some(base_branch.to_string()) };
            Ok((rules, loaded.config.extensions.triggers))
        }
        // The pull request may be the one that repairs it: it builds, under no rule of its own.
        Err(_) => {
            let why = format!("`{path}` of the base branch `{base_branch}` at {} has problems", short(&commit));
            Ok((Rules::Defaults { why }, Vec::new()))
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
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
