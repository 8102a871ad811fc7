//! The job's environment: which event started the workflow, and what to build for it.
//!
//! Actions hands a workflow the same payload a webhook delivers (at `GITHUB_EVENT_PATH`), so `push` and
//! `pull_request` events go through [`crate::trigger::parse`] exactly as on the server: same fields, same
//! path-filter rules. `pull_request_target` carries a `pull_request` payload. Every other event that can
//! start a workflow (`workflow_dispatch`, `schedule`, `merge_group`, `release`, …) is a manual run of
//! `GITHUB_REF` at `GITHUB_SHA`: never path-filtered, as manual runs are not on the server either.

use std::path::PathBuf;

use crate::trigger::{self, Event, EventError, Forge, GitRef, Incoming, Kind, Repo};

/// The variables of a job that pipewright reads (docs: "Default environment variables").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionsEnv {
    pub event_name: String,
    pub event_path: PathBuf,
    /// The commit the workflow checked out: for a pull request, GitHub's merge of head into base.
    pub sha: String,
    /// `refs/heads/main`, `refs/tags/v1`, `refs/pull/7/merge`.
    pub git_ref: String,
    /// `owner/name`.
    pub repository: String,
    pub server_url: String,
    pub actor: String,
    pub run_id: String,
    pub workspace: Option<PathBuf>,
    pub step_summary: Option<PathBuf>,
    pub output: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("`{name}` is not set: `pipewright github-action` runs inside a GitHub Actions job")]
    Missing { name: &'static str },
    #[error("the `{event}` event at `{path}`: {source}")]
    Payload {
        event: String,
        path: String,
        #[source]
        source: EventError,
    },
    #[error("`GITHUB_REF` is `{value}`: {reason}")]
    Ref { value: String, reason: String },
}

impl ActionsEnv {
    /// Reads the variables through `lookup` (the process environment at the CLI edge, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ActionsEnv, ContextError> {
        let required = |name: &'static str| -> Result<String, ContextError> {
            lookup(name).filter(|v| !v.is_empty()).ok_or(ContextError::Missing { name })
        };
        let optional = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Ok(ActionsEnv {
            event_name: required("GITHUB_EVENT_NAME")?,
            event_path: PathBuf::from(required("GITHUB_EVENT_PATH")?),
            sha: required("GITHUB_SHA")?,
            git_ref: required("GITHUB_REF")?,
            repository: required("GITHUB_REPOSITORY")?,
            server_url: optional("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
            actor: optional("GITHUB_ACTOR").unwrap_or_default(),
            run_id: optional("GITHUB_RUN_ID").unwrap_or_default(),
            workspace: optional("GITHUB_WORKSPACE").map(PathBuf::from),
            step_summary: optional("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            output: optional("GITHUB_OUTPUT").map(PathBuf::from),
        })
    }

    /// The repository's page, which is also what the build records as its URL.
    pub fn repository_url(&self) -> String {
        format!("{}/{}", self.server_url.trim_end_matches('/'), self.repository)
    }
}

/// What the workflow's event asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    Event(Box<Event>),
    /// An event that builds nothing (a pull request labelled, a branch deleted), with the reason.
    Nothing(String),
}

/// The event of the job, from its name and its payload (the bytes at `GITHUB_EVENT_PATH`).
pub fn job(env: &ActionsEnv, payload: &[u8]) -> Result<Job, ContextError> {
    let as_webhook = match env.event_name.as_str() {
        "push" => Some("push"),
        "pull_request" | "pull_request_target" => Some("pull_request"),
        _ => None,
    };
    let Some(kind) = as_webhook else {
        return manual(env, payload).map(|e| Job::Event(Box::new(e)));
    };
    let mut headers = vec![("X-GitHub-Event".to_string(), kind.to_string())];
    if !env.run_id.is_empty() {
        headers.push(("X-GitHub-Delivery".to_string(), format!("actions-run-{}", env.run_id)));
    }
    let payload_error = |source| ContextError::Payload {
        event: env.event_name.clone(),
        path: env.event_path.display().to_string(),
        source,
    };
    match trigger::parse(Forge::GitHub, &headers, payload).map_err(payload_error)? {
        Incoming::Event(event) => Ok(Job::Event(event)),
        Incoming::Ignored { reason, .. } => Ok(Job::Nothing(reason)),
        Incoming::Ping => Ok(Job::Nothing("a ping builds nothing".into())),
        // approvals by comment: see server::intake
        Incoming::Comment(_) => Ok(Job::Nothing("a comment builds nothing".into())),
    }
}

/// A run of `GITHUB_REF` at `GITHUB_SHA`, for events that are not pushes or pull requests.
fn manual(env: &ActionsEnv, payload: &[u8]) -> Result<Event, ContextError> {
    let ref_error = |reason: String| ContextError::Ref { value: env.git_ref.clone(), reason };
    let git_ref = GitRef::from_full(&env.git_ref)
        .map_err(ref_error)?
        .ok_or_else(|| ref_error("neither a branch nor a tag; run the workflow on a branch or tag".into()))?;
    // The payload is optional context here: the default branch and who started the run.
    let body: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    let text = |value: &serde_json::Value| value.as_str().map(str::to_string);
    Ok(Event {
        repo: Repo {
            full_name: env.repository.clone(),
            clone_url: format!("{}.git", env.repository_url()),
            default_branch: text(&body["repository"]["default_branch"]),
        },
        kind: Kind::Manual,
        git_ref,
        before: None,
        after: env.sha.clone(),
        base: None,
        head_message: None,
        messages: Vec::new(),
        sender: text(&body["sender"]["login"]).unwrap_or_else(|| env.actor.clone()),
        delivery: (!env.run_id.is_empty()).then(|| format!("actions-run-{}", env.run_id)),
        created: false,
        deleted: false,
        forced: false,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(event: &str, git_ref: &str) -> ActionsEnv {
        let vars: HashMap<&str, String> = [
            ("GITHUB_EVENT_NAME", event.to_string()),
            ("GITHUB_EVENT_PATH", "/tmp/event.json".to_string()),
            ("GITHUB_SHA", "a".repeat(40)),
            ("GITHUB_REF", git_ref.to_string()),
            ("GITHUB_REPOSITORY", "acme/ml".to_string()),
            ("GITHUB_ACTOR", "ada".to_string()),
            ("GITHUB_RUN_ID", "42".to_string()),
        ]
        .into_iter()
        .collect();
        ActionsEnv::from_lookup(|name| vars.get(name).cloned()).expect("env")
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = ActionsEnv::from_lookup(|_| None).expect_err("nothing set");
        assert!(err.to_string().contains("`GITHUB_EVENT_NAME` is not set"), "{err}");
    }

    #[test]
    fn workflow_dispatch_is_a_manual_run_of_the_ref() {
        let payload = br#"{"ref":"refs/heads/main","repository":{"default_branch":"main"},"sender":{"login":"bob"}}"#;
        let Job::Event(event) = job(&env("workflow_dispatch", "refs/heads/main"), payload).expect("job") else {
            panic!("a dispatch builds");
        };
        assert_eq!(event.kind, Kind::Manual);
        assert_eq!(event.git_ref.name(), "main");
        assert_eq!(event.after, "a".repeat(40));
        assert_eq!(event.sender, "bob");
        assert_eq!(event.repo.default_branch.as_deref(), Some("main"));
        assert_eq!(event.repo.clone_url, "https://github.com/acme/ml.git");
    }

    #[test]
    fn a_schedule_on_a_pull_ref_is_refused_with_the_ref() {
        let err = job(&env("schedule", "refs/pull/3/merge"), b"{}").expect_err("not a branch");
        assert!(err.to_string().contains("refs/pull/3/merge"), "{err}");
    }

    #[test]
    fn a_labelled_pull_request_builds_nothing() {
        let payload = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/webhooks/github/pull_request__opened.json"
        ))
        .expect("fixture");
        let mut value: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        value["action"] = "labeled".into();
        let job = job(&env("pull_request", "refs/pull/1/merge"), value.to_string().as_bytes()).expect("job");
        assert!(matches!(job, Job::Nothing(reason) if reason.contains("labeled")));
    }

    #[test]
    fn a_broken_payload_names_the_file_and_field() {
        let err = job(&env("push", "refs/heads/main"), br#"{"ref": 3}"#).expect_err("broken");
        let text = crate::error_chain(&err);
        assert!(text.contains("/tmp/event.json") && text.contains("`repository` is missing"), "{text}");
    }
}
