//! Trust: whose code a build runs, decided once from its event before anything runs
//! (docs/THREATS.md properties 1 and 2; ARCHITECTURE.md "Trust boundaries").
//!
//! A build is **trusted** when the code it runs was put in the repository by someone with push rights:
//! pushes and tags, a manual run by an API token holder, `pipewright run` on one's own machine. A pull
//! request whose head lives in another repository (a fork) is **untrusted** by default; a repository may
//! also treat every pull request as untrusted (`untrusted: [pull_requests]`). Everything that differs
//! for an untrusted build (the sandbox executor, no secrets, no push, no remote upload or run, no
//! promotion, the wait for approval) asks [`Trust`] and nothing else.
//!
//! Pure: an event and the repository's policy in, a decision out.

use serde::{Deserialize, Serialize};

use crate::trigger::{Event, Kind};

/// Whose code a build runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// Code of the repository's own writers: the `docker` executor with Cloud Build's semantics.
    #[default]
    Trusted,
    /// Code of someone the server does not trust: the `sandbox` executor, no secrets, nothing
    /// published, never promoted.
    Untrusted,
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Trusted => "trusted",
            Trust::Untrusted => "untrusted",
        }
    }

    pub fn is_trusted(self) -> bool {
        self == Trust::Trusted
    }
}

/// A build's trust and why, as the record, the API and the dashboard show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustRecord {
    pub level: Trust,
    /// One line: `pull request #7 from fork octocat/ml`, `push to main`.
    pub reason: String,
}

impl TrustRecord {
    pub fn trusted(reason: impl Into<String>) -> TrustRecord {
        TrustRecord { level: Trust::Trusted, reason: reason.into() }
    }
}

/// Which builds of a repository run untrusted (`untrusted:` in the server config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Untrusted {
    /// Pull requests whose head repository is not the base repository (the default).
    #[default]
    Forks,
    /// Every pull request, forks or not: for repositories where many people may push branches.
    PullRequests,
}

/// Which builds wait for an approval before they run (`approval:` in the server config), as Cloud
/// Build's comment control and GitHub's approval for outside contributors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApprovalPolicy {
    /// Untrusted builds wait (the default).
    #[default]
    Forks,
    /// Every build of the repository waits, as a Cloud Build trigger with `approvalRequired`.
    Always,
    /// No build waits; untrusted builds still run sandboxed.
    Never,
}

/// What the repository's policy makes of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub trust: TrustRecord,
    /// The build waits in `PENDING` until someone allowed to approves it.
    pub needs_approval: bool,
}

/// The one place that decides a build's trust and whether it waits for approval.
pub fn decide(event: &Event, untrusted: Untrusted, approval: ApprovalPolicy) -> Decision {
    let trust = match &event.kind {
        Kind::PullRequest(pr) if pr.fork => TrustRecord {
            level: Trust::Untrusted,
            reason: match &pr.head_repo_url {
                Some(url) => format!("pull request #{} from the fork {url}", pr.number),
                None => format!("pull request #{} from a fork that no longer exists", pr.number),
            },
        },
        Kind::PullRequest(pr) if untrusted == Untrusted::PullRequests => TrustRecord {
            level: Trust::Untrusted,
            reason: format!("pull request #{} (this repository treats every pull request as untrusted)", pr.number),
        },
        Kind::PullRequest(pr) => {
            TrustRecord::trusted(format!("pull request #{} from a branch of the repository", pr.number))
        }
        Kind::Push => TrustRecord::trusted(format!("push to {}", event.git_ref.name())),
        Kind::Tag => TrustRecord::trusted(format!("tag {}", event.git_ref.name())),
        Kind::Manual => TrustRecord::trusted(format!("manual run by {}", event.sender)),
    };
    let needs_approval = match approval {
        ApprovalPolicy::Never => false,
        ApprovalPolicy::Always => true,
        ApprovalPolicy::Forks => trust.level == Trust::Untrusted,
    };
    Decision { trust, needs_approval }
}

/// Whether a pull request comment approves the pull request's waiting builds: it is the command
/// (alone on its first line, as `/gcbrun` is on Cloud Build), and its author may approve, either
/// because the forge says so (`association`) or because the server config lists them (`approvers`,
/// for forges whose payloads do not say).
pub fn comment_approves(
    body: &str,
    command: &str,
    author: &str,
    forge_says_allowed: bool,
    approvers: &[String],
) -> Result<(), String> {
    let first = body.trim_start().lines().next().unwrap_or_default().trim();
    if first != command {
        return Err(format!("the comment is not the approval command `{command}`"));
    }
    if forge_says_allowed || approvers.iter().any(|a| a.eq_ignore_ascii_case(author)) {
        return Ok(());
    }
    Err(format!("{author} may not approve builds (not a collaborator of the repository, not a listed approver)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::{GitRef, PrAction, PullRequest, Repo};

    fn event(kind: Kind) -> Event {
        Event {
            repo: Repo { full_name: "acme/ml".into(), clone_url: "https://x/acme/ml.git".into(), default_branch: None },
            kind,
            git_ref: GitRef::Branch("main".into()),
            before: None,
            after: "a".repeat(40),
            base: None,
            head_message: None,
            messages: Vec::new(),
            sender: "ada".into(),
            delivery: None,
            created: false,
            deleted: false,
            forced: false,
        }
    }

    fn pr(fork: bool) -> Kind {
        Kind::PullRequest(PullRequest {
            action: PrAction::Opened,
            number: 7,
            base_branch: "main".into(),
            head_branch: "patch".into(),
            head_repo_url: Some(if fork { "https://x/eve/ml.git" } else { "https://x/acme/ml.git" }.into()),
            fork,
        })
    }

    #[test]
    fn trust_and_approval_by_event_and_policy() {
        use ApprovalPolicy::{Always, Never};
        use Trust::{Trusted as T, Untrusted as U};
        let (forks, prs, a_forks) = (Untrusted::Forks, Untrusted::PullRequests, ApprovalPolicy::Forks);
        let cases = [
            (Kind::Push, forks, a_forks, T, false),
            (Kind::Tag, forks, a_forks, T, false),
            (Kind::Manual, forks, a_forks, T, false),
            (pr(false), forks, a_forks, T, false),
            (pr(true), forks, a_forks, U, true),
            (pr(false), prs, a_forks, U, true),
            (pr(true), prs, Never, U, false),
            (Kind::Push, forks, Always, T, true),
            (pr(true), forks, Always, U, true),
        ];
        for (kind, untrusted, approval, level, waits) in cases {
            let d = decide(&event(kind.clone()), untrusted, approval);
            assert_eq!((d.trust.level, d.needs_approval), (level, waits), "{kind:?} {untrusted:?} {approval:?}");
            assert!(!d.trust.reason.is_empty());
        }
        let fork = decide(&event(pr(true)), Untrusted::Forks, ApprovalPolicy::Forks);
        assert_eq!(fork.trust.reason, "pull request #7 from the fork https://x/eve/ml.git");
    }

    #[test]
    fn comment_commands() {
        let ok = |body: &str, author: &str, allowed: bool| {
            comment_approves(body, "/gcbrun", author, allowed, &["Lin".to_string()])
        };
        assert_eq!(ok("/gcbrun", "bob", true), Ok(()));
        assert_eq!(ok("  /gcbrun  \nthanks!", "bob", true), Ok(()));
        assert_eq!(ok("/gcbrun", "lin", false), Ok(()), "listed approvers, case-insensitive");
        assert!(ok("/gcbrun", "eve", false).unwrap_err().contains("eve may not approve"));
        assert!(ok("please /gcbrun", "bob", true).is_err(), "the command must start the comment");
        assert!(ok("/gcbrunx", "bob", true).is_err());
        assert!(ok("", "bob", true).is_err());
    }
}
