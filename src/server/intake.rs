//! Webhooks in (docs/SPEC.md §12): verify the signature over the raw body, parse, keep the delivery, answer
//! 202; then, off the request path, decide what it asks for (docs/SPEC.md §10) and enqueue it.
//!
//! Answers: 401 for a missing or wrong signature, 413 for a body over the limit, 400 for a body that
//! does not parse, 200 for a ping and for a delivery already kept (a redelivery with the same id, or
//! a replay of the same body under a fresh id: the id is not signed), 202 for a kept one and for one
//! understood and deliberately ignored. Only a kept delivery ever leads to a build. Only the headers
//! [`trigger::stored_headers`] allows are kept with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::State;
use super::evaluation::{Evaluation, evaluate};
use super::jobs::BuildJob;
use super::scheduler::{self, Admitted, Cause};
use crate::io::source::mirror::Mirror;
use crate::io::store::queue::{Delivery, Duplicate, Kept};
use crate::record::Status;
use crate::trigger::{self, Decision, Event, Forge, Incoming};

pub fn routes(state: &Arc<State>) -> axum::Router<Arc<State>> {
    use axum::routing::post;
    let limit = DefaultBodyLimit::max(state.config.body_limit);
    axum::Router::new()
        .route("/hooks/github", post(|s, h, b| hook(s, Forge::GitHub, h, b)).layer(limit))
        .route("/hooks/gitlab", post(|s, h, b| hook(s, Forge::GitLab, h, b)).layer(limit))
        .route("/hooks/gitea", post(|s, h, b| hook(s, Forge::Gitea, h, b)).layer(limit))
}

fn forge_name(forge: Forge) -> &'static str {
    match forge {
        Forge::GitHub => "github",
        Forge::GitLab => "gitlab",
        Forge::Gitea => "gitea",
    }
}

fn answer(code: StatusCode, body: serde_json::Value) -> Response {
    (code, Json(body)).into_response()
}

async fn hook(AxumState(state): AxumState<Arc<State>>, forge: Forge, headers: HeaderMap, body: Bytes) -> Response {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let m = &state.metrics;
    // Verify against every repository of this forge that has a secret: the one whose secret matches
    // is the sender. Nothing is parsed before that.
    let candidates: Vec<_> = state.config.repositories.iter().filter(|r| r.forge == forge).collect();
    let mut first_error = None;
    let mut verified = None;
    for repo in &candidates {
        let secret = state.keys.webhooks.get(&repo.name).map(Vec::as_slice).unwrap_or_default();
        match trigger::verify(forge, secret, &headers, &body) {
            Ok(()) => {
                verified = Some(*repo);
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some(repo) = verified else {
        m.count_delivery("unauthorized");
        let message = first_error.map_or_else(
            || format!("no repository of this server takes {} webhooks", forge_name(forge)),
            |e| e.to_string(),
        );
        return answer(StatusCode::UNAUTHORIZED, json!({"error": message}));
    };
    let delivery_id = match trigger::parse(forge, &headers, &body) {
        Ok(Incoming::Ping) => {
            m.count_delivery("ping");
            return answer(StatusCode::OK, json!({"pong": true}));
        }
        Ok(Incoming::Ignored { kind, reason }) => {
            m.count_delivery("ignored");
            return answer(StatusCode::ACCEPTED, json!({"ignored": kind, "reason": reason}));
        }
        // Kept like an event: a comment that approves a build must not be lost to a crash either.
        Ok(Incoming::Event(event)) => event.delivery,
        Ok(Incoming::Comment(comment)) => comment.delivery,
        Err(e) => {
            m.count_delivery("malformed");
            return answer(StatusCode::BAD_REQUEST, json!({"error": e.to_string()}));
        }
    };
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(&body));
    // A delivery without an id is identified by its body, so a replay of the same bytes is still one.
    let id = match &delivery_id {
        Some(id) => format!("{}:{id}", forge_name(forge)),
        None => format!("{}:sha256-{digest}", forge_name(forge)),
    };
    let event_name = headers
        .iter()
        .find(|(k, _)| matches!(k.as_str(), "x-github-event" | "x-gitlab-event" | "x-gitea-event"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let delivery = Delivery {
        seq: 0,
        id: id.clone(),
        forge: forge_name(forge).to_string(),
        repository: repo.name.clone(),
        event: event_name,
        // Never a header that carries a secret or a signature (`X-Gitlab-Token` is the secret itself).
        headers: trigger::stored_headers(&headers),
        body: body.to_vec(),
        body_sha256: digest,
        received_at: crate::io::store::db::now(),
        state: String::new(),
        outcome: String::new(),
    };
    match state.db.add_delivery(&delivery).await {
        Ok(Kept::New) => {
            m.count_delivery("accepted");
            state.intake.notify_one();
            answer(StatusCode::ACCEPTED, json!({"delivery": id}))
        }
        Ok(Kept::Duplicate { of, by }) => {
            // A replay is answered like a redelivery, so the forge stops retrying; nothing is built.
            m.count_delivery("duplicate");
            if by == Duplicate::Body {
                tracing::warn!(delivery = %id, of = %of, "a delivery repeats the body of an earlier one: not built again");
            }
            answer(
                StatusCode::OK,
                json!({"delivery": id, "duplicate": true, "duplicateOf": of, "matchedBy": by.as_str()}),
            )
        }
        Err(e) => {
            // Not kept, so not acknowledged: the forge (or a person) can deliver it again.
            m.count_delivery("error");
            tracing::error!(error = %crate::error_chain(&e), "cannot keep a delivery");
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "the delivery could not be stored; try again"}))
        }
    }
}

/// Decides every kept delivery, in arrival order, until the server stops; and every hour deletes the
/// deliveries older than `deliveryRetentionDays`.
pub async fn worker(state: Arc<State>) {
    let mut pruned_at: Option<std::time::Instant> = None;
    loop {
        if pruned_at.is_none_or(|at| at.elapsed() > std::time::Duration::from_secs(3600)) {
            pruned_at = Some(std::time::Instant::now());
            match state.db.prune_deliveries(state.config.delivery_retention_days).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(deliveries = n, days = state.config.delivery_retention_days, "pruned old deliveries")
                }
                Err(e) => tracing::error!(error = %crate::error_chain(&e), "cannot prune old deliveries"),
            }
        }
        match state.db.pending_deliveries(16).await {
            Ok(pending) if !pending.is_empty() => {
                for delivery in pending {
                    if let Err(e) = process(&state, &delivery).await {
                        // Left `received`: tried again on the next round (the database was unavailable).
                        tracing::error!(delivery = %delivery.id, error = %e, "cannot finish a delivery");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %crate::error_chain(&e), "cannot read pending deliveries"),
        }
        tokio::select! {
            _ = state.intake.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// What a delivery turned into.
enum Outcome {
    /// Nothing to do, and why.
    Ignored(String),
    /// A comment, and what it did (approved builds, or why not).
    Comment(String),
    /// A build decided: queued, or ended at once (skipped, failed before it could start).
    Build(Box<Admitted>),
}

async fn process(state: &Arc<State>, delivery: &Delivery) -> Result<(), String> {
    let outcome = decide(state, delivery).await;
    match outcome {
        Outcome::Ignored(reason) => state
            .db
            .finish_delivery(&delivery.id, &format!("ignored: {reason}"), None)
            .await
            .map_err(|e| crate::error_chain(&e)),
        Outcome::Comment(what) => state
            .db
            .finish_delivery(&delivery.id, &format!("comment: {what}"), None)
            .await
            .map_err(|e| crate::error_chain(&e)),
        Outcome::Build(admitted) => scheduler::queue(state, *admitted, Cause::Delivery(&delivery.id))
            .await
            .map(drop)
            .map_err(|e| crate::error_chain(&e)),
    }
}

async fn decide(state: &Arc<State>, delivery: &Delivery) -> Outcome {
    let Some(repo) = state.config.repository(&delivery.repository).cloned() else {
        return Outcome::Ignored(format!("repository `{}` is no longer configured", delivery.repository));
    };
    let forge = match delivery.forge.as_str() {
        "gitlab" => Forge::GitLab,
        "gitea" => Forge::Gitea,
        _ => Forge::GitHub,
    };
    let event = match trigger::parse(forge, &delivery.headers, &delivery.body) {
        Ok(Incoming::Event(event)) => event,
        Ok(Incoming::Comment(comment)) => return Outcome::Comment(approve_by_comment(state, &repo, &comment).await),
        Ok(_) => return Outcome::Ignored("not an event that builds".into()),
        Err(e) => return Outcome::Ignored(e.to_string()),
    };
    if !event.repo.full_name.eq_ignore_ascii_case(&repo.name) {
        return Outcome::Ignored(format!(
            "the delivery is about `{}`, but its secret is `{}`'s",
            event.repo.full_name, repo.name
        ));
    }
    if event.deleted {
        let what = if event.git_ref.is_tag() { "tag" } else { "branch" };
        return Outcome::Ignored(format!("{what} {} deleted", event.git_ref.name()));
    }
    let (mut job, needs_approval) = job_for(&repo, &event);
    let mirror = match state.mirror(&repo.url, None).await {
        Ok(mirror) => mirror,
        Err(detail) => return failed(job, detail),
    };
    let evaluated = {
        let configured = repo.config.clone();
        let event = event.clone();
        tokio::task::spawn_blocking(move || evaluate(&mirror, &event, configured.as_deref()))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
    };
    let decided = match evaluated {
        Ok(Evaluation::Decided(decided)) => decided,
        Ok(Evaluation::NoBuildFile) => {
            return Outcome::Ignored(format!("no build file in commit {}", short(&event.after)));
        }
        Ok(Evaluation::Invalid { path, diagnostics }) => {
            job.config_path = Some(path);
            job.trigger.decision = "build".into();
            job.trigger.reason = "the build file has problems".into();
            return failed(job, diagnostics);
        }
        Err(e) => return failed(job, e),
    };
    job.config_path = decided.config_path;
    job.trigger.rules = decided.rules.to_string();
    tracing::info!(delivery = %delivery.id, rules = %job.trigger.rules, decision = %decided.decision, "decided");
    let decision = decided.decision;
    job.trigger.reason = decision.reason().to_string();
    match decision {
        Decision::Build { trigger, substitutions, concurrency, .. } => {
            let project = &state.config.project;
            let group = building(&mut job, project, trigger, substitutions, &BTreeMap::new(), concurrency);
            let (status, detail) = admission(&repo, &job, needs_approval);
            Outcome::Build(Box::new(Admitted { job, status, detail, group }))
        }
        Decision::Skip { trigger, reason } => {
            job.trigger.decision = "skip".into();
            job.trigger.name = trigger;
            Outcome::Build(Box::new(Admitted { job, status: Status::Skipped, detail: reason, group: None }))
        }
    }
}

fn failed(mut job: BuildJob, detail: String) -> Outcome {
    if job.trigger.decision.is_empty() {
        job.trigger.decision = "build".into();
        job.trigger.reason = "the build could not start".into();
    }
    Outcome::Build(Box::new(Admitted { job, status: Status::Failure, detail, group: None }))
}

/// A pull request comment: when it is the repository's approval command from someone who may approve
/// (the forge says they are an owner, member or collaborator, or the server config lists them), every
/// build of that pull request waiting for approval runs. What came of it is the delivery's outcome.
async fn approve_by_comment(
    state: &Arc<State>,
    repo: &super::config::RepositoryConfig,
    comment: &trigger::Comment,
) -> String {
    if !comment.repo.full_name.eq_ignore_ascii_case(&repo.name) {
        return format!("the comment is on `{}`, but its secret is `{}`'s", comment.repo.full_name, repo.name);
    }
    let allowed = comment.association.may_approve();
    if let Err(why) =
        crate::trust::comment_approves(&comment.body, &repo.comment_command, &comment.author, allowed, &repo.approvers)
    {
        return why;
    }
    let waiting = match state.db.pending_builds(&repo.name).await {
        Ok(rows) => rows,
        Err(e) => return format!("cannot read the builds waiting for approval: {}", crate::error_chain(&e)),
    };
    let of_this_request: Vec<_> = waiting
        .into_iter()
        .filter(|row| {
            serde_json::from_str::<BuildJob>(&row.request)
                .is_ok_and(|job| job.pull_request.is_some_and(|pr| pr.number == comment.number))
        })
        .collect();
    if of_this_request.is_empty() {
        return format!("no build of pull request #{} waits for approval", comment.number);
    }
    let how = format!("by a `{}` comment on pull request #{}", repo.comment_command, comment.number);
    let mut approved = Vec::new();
    for row in &of_this_request {
        match scheduler::decide_approval(state, row, &comment.author, true, &how).await {
            Ok(()) => approved.push(row.build_id.clone()),
            Err(e) => tracing::warn!(build = %row.build_id, error = %e, "a comment could not approve a build"),
        }
    }
    format!("approved by {} ({how}): {}", comment.author, approved.join(", "))
}

/// The job for `event`, before the decision fills in the trigger, with its trust decided by the
/// repository's policy (the one place: [`crate::trust::decide`]), and whether it waits for approval.
pub fn job_for(repo: &super::config::RepositoryConfig, event: &Event) -> (BuildJob, bool) {
    let mut job = BuildJob::for_event(&repo.name, &repo.url, repo.config.clone(), event);
    let decided = crate::trust::decide(event, repo.untrusted, repo.approval);
    job.trust = Some(decided.trust);
    (job, decided.needs_approval)
}

/// How a build the triggers want starts: queued, waiting for approval, or (an untrusted build of a
/// repository that runs none) ended at once.
pub fn admission(repo: &super::config::RepositoryConfig, job: &BuildJob, needs_approval: bool) -> (Status, String) {
    let trust = job.trust();
    if !trust.level.is_trusted() && repo.untrusted_builds == super::config::UntrustedBuilds::Never {
        let detail = format!(
            "not run: untrusted builds do not run for `{}` (`untrustedBuilds: never`); {}",
            repo.name, trust.reason
        );
        return (Status::Failure, detail);
    }
    if needs_approval {
        return (Status::Pending, WAITING_FOR_APPROVAL.to_string());
    }
    (Status::Queued, String::new())
}

/// The status detail of a build that waits for approval (commit status, record, dashboard).
pub const WAITING_FOR_APPROVAL: &str = "waiting for approval";

/// The build file at `commit` ([`super::evaluation::read_build_file`]), read on a blocking thread.
pub async fn read_build_file(
    mirror: &Arc<Mirror>,
    commit: &str,
    configured: Option<&str>,
) -> Result<Option<(String, Vec<u8>)>, String> {
    let (mirror, commit, configured) = (mirror.clone(), commit.to_string(), configured.map(str::to_string));
    tokio::task::spawn_blocking(move || super::evaluation::read_build_file(&mirror, &commit, configured.as_deref()))
        .await
        .map_err(|e| e.to_string())?
}

/// What a decision to build puts in its job, the one way for a webhook and a manual run: the trigger,
/// its substitutions with `requested` (a manual run's) over them, and the concurrency group to join,
/// `$VAR`s expanded from those, with whether it cancels the group's older builds.
pub fn building(
    job: &mut BuildJob,
    project_id: &str,
    trigger: String,
    substitutions: BTreeMap<String, String>,
    requested: &BTreeMap<String, String>,
    concurrency: Option<trigger::Concurrency>,
) -> Option<(String, bool)> {
    job.trigger.decision = "build".into();
    job.trigger.name = Some(trigger);
    job.substitutions.extend(substitutions);
    job.substitutions.extend(requested.iter().map(|(k, v)| (k.clone(), v.clone())));
    concurrency.map(|c| (expand_group(&c.group, job, project_id), c.cancel_in_progress))
}

/// A concurrency group with `$BRANCH_NAME`, `$_PR_NUMBER`, … filled in from the job: its trigger's
/// substitutions, then the built-ins the build will have ([`BuildJob::builtins`]).
fn expand_group(group: &str, job: &BuildJob, project_id: &str) -> String {
    let mut values = job.substitutions.clone();
    values.extend(job.builtins(project_id));
    let expanded = crate::subst::expand(group, |name| values.get(name).cloned());
    format!("{}/{expanded}", job.repository)
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Origin;
    use crate::server::jobs::PullRequestJob;

    fn job() -> BuildJob {
        BuildJob {
            repository: "acme/demo".into(),
            commit_sha: "0123456789abcdef0123456789abcdef01234567".into(),
            origin: Origin {
                url: "https://forge.example/acme/demo.git".into(),
                repo_full_name: "acme/demo".into(),
                branch: Some("main".into()),
                tag: None,
            },
            pull_request: Some(PullRequestJob {
                number: 7,
                head_branch: "feature".into(),
                base_branch: "main".into(),
                head_repo_url: String::new(),
            }),
            ..BuildJob::default()
        }
    }

    #[test]
    fn a_concurrency_group_sees_every_built_in_the_build_will_have() {
        let mut job = job();
        let concurrency = trigger::Concurrency {
            group: "$PROJECT_ID-$SHORT_SHA-$REPO_NAME-$TRIGGER_NAME-$_PR_NUMBER-${BRANCH_NAME}-$LOCATION".into(),
            cancel_in_progress: true,
        };
        let group = building(&mut job, "proj", "deploy".into(), BTreeMap::new(), &BTreeMap::new(), Some(concurrency));
        assert_eq!(group, Some(("acme/demo/proj-0123456-demo-deploy-7-main-local".to_string(), true)));
        // One list: the job knows every built-in Cloud Build defines, as the plan does.
        let known: Vec<String> = job.builtins("proj").into_keys().collect();
        let mut all: Vec<String> = crate::subst::BUILTINS.iter().map(|b| b.to_string()).collect();
        all.sort();
        assert_eq!(known, all);
    }

    #[test]
    fn a_built_in_given_as_a_substitution_does_not_bend_the_group() {
        let mut job = job();
        let requested = BTreeMap::from([("BRANCH_NAME".to_string(), "prod".to_string())]);
        let concurrency = trigger::Concurrency { group: "deploy-$BRANCH_NAME".into(), cancel_in_progress: false };
        let group = building(&mut job, "proj", "deploy".into(), BTreeMap::new(), &requested, Some(concurrency));
        assert_eq!(group, Some(("acme/demo/deploy-main".to_string(), false)));
    }
}
