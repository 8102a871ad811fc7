//! The trigger decision (docs/SPEC.md §10): given the build file's `triggers:`, an event and its changed files,
//! build or skip, and say why in a few words.
//!
//! In order:
//! 1. a deleted ref or a closed pull request builds nothing;
//! 2. the first trigger whose `event` and `branch`/`tag` regex match is used; none → skip;
//! 3. a skip marker in the head commit message skips a push (never a tag, a pull request or a manual run:
//!    those say in their reason that the marker was ignored);
//! 4. pushes and pull requests go through the trigger's path filter ([`PathFilter`], Cloud Build's rule);
//!    tags and manual runs never do. When the caller could not compute the changed files, the build runs
//!    and the reason says why: a wrongly skipped build is worse than a spare one.
//!
//! Regexes are RE2 (the `regex` crate), searched unanchored as Cloud Build does: `main` also matches
//! `not-main`; write `^main$` for one branch. `invertRegex` fires for refs that do *not* match; without a
//! regex there is nothing to invert and every ref matches. A `pull_request` trigger's `branch` is matched
//! against the pull request's **base** branch.
//!
//! A manual run (`manual`, or an event of kind [`Kind::Manual`]) is a person asking to build a ref: it may
//! use a `manual` trigger or a `push` (branch) or `tag` trigger whose regex matches the ref, first match
//! wins as always; `event: manual` triggers are used by nothing else. To run one named trigger, pass just
//! that trigger.
//!
//! Reasons are recorded, shown in the dashboard and sent as the commit status text (through
//! [`Decision`]'s `Display`: "skipped: only docs/** changed"), so they are short and plain: no backticks,
//! at most three globs named.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::event::{Event, Kind, PrAction};
use super::git_ref::GitRef;
use super::path_filter::{PathFilter, Verdict};
use super::skip_marker;
use crate::config::extensions::Trigger;

/// The files an event changed, as the caller computed them from the repository mirror ([`super::diff_base`]
/// says between which commits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangedFiles {
    /// Repository-relative paths as git prints them (`components/train/model.py`).
    Files(Vec<String>),
    /// They could not be computed (base commit missing from the mirror, diff too large or too slow): the
    /// build runs, and `reason` goes into the decision's reason.
    Unknown { reason: String },
}

/// A trigger's `concurrency:` with its values as written (substitutions are applied by the plan).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrency {
    pub group: String,
    pub cancel_in_progress: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    Build {
        /// The trigger used.
        trigger: String,
        /// The trigger's `substitutions` (user keys only; the pull request's built-ins come from the job).
        substitutions: BTreeMap<String, String>,
        concurrency: Option<Concurrency>,
        reason: String,
    },
    Skip {
        /// The trigger that matched, if one did before the build was skipped.
        trigger: Option<String>,
        reason: String,
    },
}

impl Decision {
    pub fn reason(&self) -> &str {
        match self {
            Decision::Build { reason, .. } | Decision::Skip { reason, .. } => reason,
        }
    }

    pub fn is_build(&self) -> bool {
        matches!(self, Decision::Build { .. })
    }
}

/// The one-line status: `building: push to main; no path filters`, `skipped: only docs/** changed`.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Build { reason, .. } => write!(f, "building: {reason}"),
            Decision::Skip { reason, .. } => write!(f, "skipped: {reason}"),
        }
    }
}

pub fn decide(triggers: &[Trigger], event: &Event, changed: ChangedFiles, manual: bool) -> Decision {
    let manual = manual || event.kind == Kind::Manual;
    if event.deleted {
        let what = if event.git_ref.is_tag() { "tag" } else { "branch" };
        return skip(None, format!("{what} {} deleted", event.git_ref.name()));
    }
    if let Kind::PullRequest(pr) = &event.kind
        && !pr.action.is_open()
    {
        let what = if pr.action == PrAction::Merged { "merged" } else { "closed" };
        return skip(None, format!("pull request #{} {what}", pr.number));
    }

    let mut problems = Vec::new();
    let Some((index, trigger)) =
        triggers.iter().enumerate().find(|(index, trigger)| matches(*index, trigger, event, manual, &mut problems))
    else {
        let reason = if problems.is_empty() {
            "no trigger matches".to_string()
        } else {
            format!("no trigger matches ({})", problems.join("; "))
        };
        return skip(None, reason);
    };
    let name = trigger_name(index, trigger);

    let mut clauses = vec![describe(event, manual)];
    if let Some(marker) = event.head_message.as_deref().and_then(skip_marker::find) {
        if !manual && event.kind == Kind::Push {
            return skip(Some(name), format!("{marker} in the head commit message"));
        }
        clauses.push(format!("{marker} ignored: skip markers apply to pushes only"));
    }
    match path_filter(trigger, event, changed, manual) {
        Ok(clause) => clauses.push(clause),
        Err(reason) => return skip(Some(name), reason),
    }

    // The pull request's `_HEAD_BRANCH`, … are built-ins the plan takes from the job's pull request;
    // they are not user substitutions (which may not set a built-in).
    let substitutions: BTreeMap<String, String> =
        trigger.substitutions.iter().map(|(k, v)| (k.value.clone(), v.value.clone())).collect();
    Decision::Build {
        trigger: name,
        substitutions,
        concurrency: trigger
            .concurrency
            .as_ref()
            .map(|c| Concurrency { group: c.group.value.clone(), cancel_in_progress: c.cancel_in_progress }),
        reason: clauses.join("; "),
    }
}

/// Whether `trigger` fires for `event`. A regex that does not compile (the config validator reports it;
/// this is a second line) makes the trigger not match, and is noted in `problems` for the reason.
fn matches(index: usize, trigger: &Trigger, event: &Event, manual: bool, problems: &mut Vec<String>) -> bool {
    let Some(kind) = trigger.event.as_ref().map(|e| e.value.as_str()) else { return false };
    let (field, regex, subject) = if manual {
        match (kind, &event.git_ref) {
            ("manual" | "push", GitRef::Branch(branch)) => ("branch", &trigger.branch, branch.as_str()),
            ("manual" | "tag", GitRef::Tag(tag)) => ("tag", &trigger.tag, tag.as_str()),
            _ => return false,
        }
    } else {
        match (kind, &event.kind) {
            ("push", Kind::Push) => ("branch", &trigger.branch, event.git_ref.name()),
            ("tag", Kind::Tag) => ("tag", &trigger.tag, event.git_ref.name()),
            ("pull_request", Kind::PullRequest(pr)) => ("branch", &trigger.branch, pr.base_branch.as_str()),
            _ => return false,
        }
    };
    let Some(regex) = regex else { return true };
    match Regex::new(&regex.value) {
        Ok(compiled) => compiled.is_match(subject) != trigger.invert_regex,
        Err(_) => {
            problems.push(format!(
                "trigger {}: {field} {} is not a valid regex",
                trigger_name(index, trigger),
                regex.value
            ));
            false
        }
    }
}

/// The path filter's clause for a build, or the reason to skip.
fn path_filter(trigger: &Trigger, event: &Event, changed: ChangedFiles, manual: bool) -> Result<String, String> {
    let ignored: Vec<&str> = trigger.ignored_files.iter().map(|g| g.value.as_str()).collect();
    let included: Vec<&str> = trigger.included_files.iter().map(|g| g.value.as_str()).collect();
    if ignored.is_empty() && included.is_empty() {
        return Ok("no path filters".to_string());
    }
    if manual {
        return Ok("manual runs are not path-filtered".to_string());
    }
    if event.kind == Kind::Tag {
        return Ok("tags are not path-filtered".to_string());
    }
    let filter = match PathFilter::new(&ignored, &included) {
        Ok(filter) => filter,
        // Fail open, as when the files are unknown; the validator reports bad globs before this runs.
        Err(e) => return Ok(format!("path filters not applied: {}", e.to_string().lines().next().unwrap_or_default())),
    };
    match changed {
        ChangedFiles::Unknown { reason } => Ok(format!("changed files unknown ({reason})")),
        ChangedFiles::Files(files) => match filter.apply(&files) {
            Verdict::Build(clause) => Ok(clause),
            Verdict::Skip(reason) => Err(reason),
        },
    }
}

/// `push to main`, `tag v1.2.0`, `pull request #7 into main`, `manual run on main`.
fn describe(event: &Event, manual: bool) -> String {
    let name = event.git_ref.name();
    if manual {
        return format!("manual run on {}{name}", if event.git_ref.is_tag() { "tag " } else { "" });
    }
    match &event.kind {
        Kind::Push => format!("push to {name}"),
        Kind::Tag => format!("tag {name}"),
        Kind::PullRequest(pr) => format!("pull request #{} into {}", pr.number, pr.base_branch),
        // `decide` treats every Manual event as a manual run; this arm only keeps the match whole.
        Kind::Manual => format!("manual run on {name}"),
    }
}

/// A trigger's name; `triggers[2]` for one without (the validator requires names, this never panics).
fn trigger_name(index: usize, trigger: &Trigger) -> String {
    trigger.name.as_ref().map_or_else(|| format!("triggers[{index}]"), |n| n.value.clone())
}

fn skip(trigger: Option<String>, reason: String) -> Decision {
    Decision::Skip { trigger, reason }
}

#[cfg(test)]
mod tests;
