//! What the queue holds for a build (as JSON in its `request` column), and the records of builds decided
//! without running (skipped by a path filter, a build file with problems).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::{BuildRequest, Origin};
use crate::io::source::{Source, SourceSpec};
use crate::record::{Build, CommitRecord, FailureInfo, FailureType, GitSource, SourceRecord, Status, Timestamp};
use crate::trigger::{Event, Kind};
use crate::trust::{Trust, TrustRecord};

/// A build to run: which commit of which configured repository, and how it was triggered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildJob {
    /// The repository's name in the server config.
    pub repository: String,
    pub commit_sha: String,
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_path: Option<String>,
    /// The trigger's substitutions (user keys; the pull request's built-ins come from `pull_request`).
    #[serde(default)]
    pub substitutions: BTreeMap<String, String>,
    pub trigger: crate::record::TriggerRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestJob>,
    /// Whose code this is, decided once when the event was (crates/core/src/trust.rs). Absent in jobs queued by an
    /// older server: [`BuildJob::trust`] then goes by the fork flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustRecord>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestJob {
    pub number: u64,
    pub head_branch: String,
    pub base_branch: String,
    pub head_repo_url: String,
}

impl PullRequestJob {
    fn plan(&self) -> crate::plan::PullRequest {
        crate::plan::PullRequest {
            head_branch: self.head_branch.clone(),
            base_branch: self.base_branch.clone(),
            head_repo_url: self.head_repo_url.clone(),
            number: self.number.to_string(),
        }
    }
}

impl BuildJob {
    /// The job for `event` of the repository `repository` (cloned from `url`), before a trigger decision
    /// fills in its trigger.
    pub fn for_event(repository: &str, url: &str, config_path: Option<String>, event: &Event) -> BuildJob {
        let (branch, tag) = match &event.kind {
            Kind::Tag => (None, Some(event.git_ref.name().to_string())),
            _ => (Some(event.git_ref.name().to_string()), None),
        };
        let (pull_request, fork, kind) = match &event.kind {
            Kind::PullRequest(pr) => (
                Some(PullRequestJob {
                    number: pr.number,
                    head_branch: pr.head_branch.clone(),
                    base_branch: pr.base_branch.clone(),
                    head_repo_url: pr.head_repo_url.clone().unwrap_or_default(),
                }),
                pr.fork,
                "pull_request",
            ),
            Kind::Tag => (None, false, "tag"),
            Kind::Manual => (None, false, "manual"),
            Kind::Push => (None, false, "push"),
        };
        BuildJob {
            repository: repository.to_string(),
            commit_sha: event.after.clone(),
            origin: Origin { url: url.to_string(), repo_full_name: repository.to_string(), branch, tag },
            config_path,
            substitutions: BTreeMap::new(),
            trigger: crate::record::TriggerRecord {
                event: kind.into(),
                name: None,
                decision: String::new(),
                reason: String::new(),
                fork,
                sender: event.sender.clone(),
                rules: String::new(),
            },
            pull_request,
            trust: None,
        }
    }

    /// The build's trust: as decided, or for a job without one, untrusted when it came from a fork.
    pub fn trust(&self) -> TrustRecord {
        match &self.trust {
            Some(trust) => trust.clone(),
            None if self.trigger.fork => {
                TrustRecord { level: Trust::Untrusted, reason: "pull request from a fork".into() }
            }
            None => TrustRecord::trusted(format!("{} event", self.trigger.event)),
        }
    }

    /// The engine's request: the commit is cloned from the server's mirror of the repository.
    pub fn request(&self, build_id: &str, mirror: &std::path::Path, state: &super::State) -> BuildRequest {
        let source = SourceSpec { repo: mirror.display().to_string(), rev: self.commit_sha.clone() };
        let mut request = self.request_from(source, &state.config.secrets, &state.config.project);
        request.build_id = Some(build_id.to_string());
        request
    }

    /// The engine's request for this job, building `source`. Untrusted builds get no secrets (their
    /// code is not trusted with them; the engine withholds them too).
    pub fn request_from(
        &self,
        source: SourceSpec,
        secrets: &BTreeMap<String, crate::io::secrets::SecretSource>,
        project_id: &str,
    ) -> BuildRequest {
        let mut request = BuildRequest::new(source);
        request.config_path = self.config_path.clone();
        request.overrides = self.substitutions.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        request.trust = self.trust();
        if request.trust.level.is_trusted() {
            request.secrets = secrets.clone();
        }
        request.project_id = project_id.to_string();
        request.origin = Some(self.origin.clone());
        request.trigger = Some(self.trigger.clone());
        request.pull_request = self.pull_request.as_ref().map(PullRequestJob::plan);
        request
    }

    /// The built-in substitutions of this job's build as far as they are known before it runs (no
    /// build id, no checkout): the plan's one list (`plan::builtins`), from the job's facts. The
    /// concurrency group and the record of a build decided without running are written from these.
    pub fn builtins(&self, project_id: &str) -> BTreeMap<String, String> {
        let mut source = Source { commit_sha: self.commit_sha.clone(), ..Source::default() };
        self.origin.apply(&mut source);
        let context = crate::plan::BuildContext {
            build_id: String::new(),
            project_id: project_id.to_string(),
            location: crate::plan::LOCATION.into(),
            source,
            config_path: self.config_path.clone().unwrap_or_default(),
            overrides: Vec::new(),
            trigger_name: self.trigger.name.clone(),
            pull_request: self.pull_request.as_ref().map(PullRequestJob::plan),
        };
        crate::plan::builtins(&context)
    }

    /// The branch or tag, for listing.
    pub fn ref_name(&self) -> String {
        self.origin.branch.clone().or_else(|| self.origin.tag.clone()).unwrap_or_default()
    }

    /// A record for a build that ends without running: `SKIPPED` with the decision's reason, or
    /// `FAILURE` with what stopped it (the build file's problems, a fetch that failed).
    pub fn decided_record(&self, build_id: &str, project: &str, status: Status, detail: &str) -> Build {
        let mut build = Build::new(build_id.to_string(), project.to_string());
        build.status = status;
        build.status_detail = detail.to_string();
        if status == Status::Failure {
            build.failure_info =
                Some(FailureInfo { kind: FailureType::FailureTypeUnspecified, detail: detail.to_string() });
        }
        let git = GitSource { url: self.origin.url.clone(), revision: self.ref_name(), dir: String::new() };
        build.source = Some(SourceRecord { git_source: git });
        build.commit = Some(CommitRecord {
            sha: self.commit_sha.clone(),
            branch: self.origin.branch.clone(),
            tag: self.origin.tag.clone(),
            ..CommitRecord::default()
        });
        // A built-in given by a trigger or a request is refused when the build loads its file; the
        // record does not show it as if it had been used.
        build.substitutions = self
            .substitutions
            .iter()
            .filter(|(k, _)| !crate::subst::BUILTINS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The pull request's built-ins (the only ones named `_…`) show what the build is of.
        if self.pull_request.is_some() {
            build.substitutions.extend(self.builtins(project).into_iter().filter(|(k, _)| k.starts_with('_')));
        }
        build.trigger = Some(self.trigger.clone());
        build.trust = Some(self.trust());
        if status.is_terminal() {
            build.finish_time = Some(Timestamp::now());
        }
        build
    }
}
