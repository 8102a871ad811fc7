//! Which commits to diff for an event's changed files (docs/SPEC.md §10, peers.md §2.6).
//!
//! This module never touches git: it tells the caller, who owns the repository mirror, what to compute.
//! The caller then hands the file list (or the reason it has none) to [`super::decide`].
//!
//! | event | diff |
//! | --- | --- |
//! | push to an existing branch | `before..after` ([`DiffBase::Range`]) |
//! | push the forge flags as forced (GitHub) | `merge-base(before, after)..after` |
//! | first push of a branch (`before` = zeros) | `merge-base(default branch, after)..after` |
//! | first push of the default branch itself | every file of `after` ([`DiffBase::EveryFile`]) |
//! | pull request opened, reopened or updated | `merge-base(base, head)..head`, as GitHub's three-dot diff |
//! | tag, manual run, deleted ref, closed pull request | nothing ([`DiffBase::None`]) |
//!
//! The pull request base is the base commit the event names when it names one (GitHub, Gitea), so the
//! decision does not depend on when the mirror last fetched; GitLab sends none, so its base is the branch.

use serde::{Deserialize, Serialize};

use super::event::{Event, Kind};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum DiffBase {
    /// `git diff from..to`. If `from` is not an ancestor of `to`, history was rewritten by a force push the
    /// forge did not flag (GitLab and Gitea never flag them): diff `merge-base(from, to)..to` instead, which
    /// is the same thing as `MergeBase { base: Rev::Commit(from), head: to }`.
    Range { from: String, to: String },
    /// `git diff $(git merge-base base head)..head`.
    MergeBase { base: Rev, head: String },
    /// Every file of `commit` counts as changed: the first push of the default branch has nothing before it.
    EveryFile { commit: String },
    /// Nothing to diff: tags and manual runs are never path-filtered, and deleted refs and closed pull
    /// requests build nothing.
    None,
}

/// One side of a merge base.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "name")]
pub enum Rev {
    Commit(String),
    Branch(String),
    /// The repository's default branch, which the payload did not name: the mirror's `HEAD`.
    DefaultBranch,
}

pub fn diff_base(event: &Event) -> DiffBase {
    if event.deleted {
        return DiffBase::None;
    }
    let head = event.after.clone();
    match &event.kind {
        Kind::Tag | Kind::Manual => DiffBase::None,
        Kind::PullRequest(pr) if !pr.action.is_open() => DiffBase::None,
        Kind::PullRequest(pr) => {
            let base = match &event.base {
                Some(sha) => Rev::Commit(sha.clone()),
                None => Rev::Branch(pr.base_branch.clone()),
            };
            DiffBase::MergeBase { base, head }
        }
        Kind::Push => match &event.before {
            Some(before) if !event.created => {
                if event.forced {
                    DiffBase::MergeBase { base: Rev::Commit(before.clone()), head }
                } else {
                    DiffBase::Range { from: before.clone(), to: head }
                }
            }
            // A new branch (or a push whose `before` the forge left out, which only a creation does).
            _ => match &event.repo.default_branch {
                Some(default) if default == event.git_ref.name() => DiffBase::EveryFile { commit: head },
                Some(default) => DiffBase::MergeBase { base: Rev::Branch(default.clone()), head },
                None => DiffBase::MergeBase { base: Rev::DefaultBranch, head },
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::{Forge, Incoming, parse};

    /// The event of a corpus payload.
    fn fixture(file: &str, forge: Forge, kind: &str) -> Event {
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("tests/fixtures/webhooks")
            .join(file);
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let header = match forge {
            Forge::GitHub => "X-GitHub-Event",
            Forge::GitLab => "X-Gitlab-Event",
            Forge::Gitea => "X-Gitea-Event",
        };
        match parse(forge, &[(header.to_string(), kind.to_string())], &body) {
            Ok(Incoming::Event(event)) => *event,
            other => panic!("{file}: {other:?}"),
        }
    }

    fn commit(sha: &str) -> Rev {
        Rev::Commit(sha.to_string())
    }

    fn branch(name: &str) -> Rev {
        Rev::Branch(name.to_string())
    }

    fn range(from: &str, to: &str) -> DiffBase {
        DiffBase::Range { from: from.to_string(), to: to.to_string() }
    }

    fn merge_base(base: Rev, head: &str) -> DiffBase {
        DiffBase::MergeBase { base, head: head.to_string() }
    }

    #[test]
    fn per_event() {
        use Forge::*;
        let forced = {
            let mut event = fixture("github/push__branch.json", GitHub, "push");
            event.forced = true;
            event
        };
        let without_default = {
            let mut event = fixture("gitlab/push__branch_create.json", GitLab, "Push Hook");
            event.repo.default_branch = None;
            event
        };
        let manual = Event { kind: Kind::Manual, ..fixture("github/push__branch.json", GitHub, "push") };
        let cases = [
            // Push to an existing branch.
            (
                fixture("github/push__branch.json", GitHub, "push"),
                range("a10867b14bb761a232cd80139fbd4c0d33264240", "199eddf46df50de8d02e99bf1c5fdb4101338224"),
            ),
            (
                fixture("gitlab/push.json", GitLab, "Push Hook"),
                range("95790bf891e76fee5e1747ab589903a6a1f80f22", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),
            ),
            (
                fixture("gitea/push.json", Gitea, "push"),
                range("9836a96a253cce25d17988fcf41b8c4205cf779f", "4522cbcefc20728a5b72b3a86af35e608622c514"),
            ),
            // Force push flagged by GitHub.
            (
                forced,
                merge_base(
                    commit("a10867b14bb761a232cd80139fbd4c0d33264240"),
                    "199eddf46df50de8d02e99bf1c5fdb4101338224",
                ),
            ),
            // New branches: against the default branch; the default branch's first push: every file.
            (
                fixture("github/push__branch_create_with_base_ref.json", GitHub, "push"),
                merge_base(branch("master"), "d2b75aa7797ec26b088fa2dd527e9d2c052fcedd"),
            ),
            (
                fixture("gitlab/push__branch_create.json", GitLab, "Push Hook"),
                merge_base(branch("master"), "c4c79227ed610f1151f05bbc5be33b4f340d39c8"),
            ),
            (without_default, merge_base(Rev::DefaultBranch, "c4c79227ed610f1151f05bbc5be33b4f340d39c8")),
            (
                fixture("github/push__branch_create.json", GitHub, "push"),
                DiffBase::EveryFile { commit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".to_string() },
            ),
            // Pull requests: the base commit when the forge sends it, else the base branch.
            (
                fixture("github/pull_request__synchronize.json", GitHub, "pull_request"),
                merge_base(
                    commit("f95f852bd8fca8fcc58a9a2d6c842781e32a215e"),
                    "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
                ),
            ),
            (
                fixture("gitea/pull_request__opened.json", Gitea, "pull_request"),
                merge_base(
                    commit("39af58f1eff02aa308e16913e887c8d50362b474"),
                    "2eba238e33607c1fa49253182e9fff42baafa1eb",
                ),
            ),
            (
                fixture("gitlab/merge_request__update.json", GitLab, "Merge Request Hook"),
                merge_base(branch("master"), "0ab96a10266b95b4b533dcfd98738015fbe70889"),
            ),
            // Nothing to diff.
            (fixture("github/pull_request__closed.json", GitHub, "pull_request"), DiffBase::None),
            (fixture("gitlab/merge_request__merge.json", GitLab, "Merge Request Hook"), DiffBase::None),
            (fixture("github/push__tag_create.json", GitHub, "push"), DiffBase::None),
            (fixture("gitlab/tag_push.json", GitLab, "Tag Push Hook"), DiffBase::None),
            (fixture("github/push__branch_delete.json", GitHub, "push"), DiffBase::None),
            (fixture("gitlab/tag_push__delete.json", GitLab, "Tag Push Hook"), DiffBase::None),
            (fixture("gitea/delete__branch.json", Gitea, "delete"), DiffBase::None),
            (manual, DiffBase::None),
        ];
        for (event, expected) in cases {
            assert_eq!(diff_base(&event), expected, "{} {:?}", event.git_ref.name(), event.kind);
        }
    }
}
