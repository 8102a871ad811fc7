//! The JSON API (docs/SPEC.md §12), modelled on Cloud Build's REST methods:
//!
//! | method | path |
//! | --- | --- |
//! | list | `GET /v1/projects/{project}/builds?status=&repository=&ref=&trigger=&commit=&pageSize=&pageToken=` |
//! | create (manual run) | `POST /v1/projects/{project}/builds` `{repository, branch \| tag \| commitSha, substitutions, trigger}` |
//! | get | `GET /v1/projects/{project}/builds/{id}` |
//! | cancel, retry | `POST /v1/projects/{project}/builds/{id}:cancel`, `…:retry` |
//! | approve, promote | `POST /v1/projects/{project}/builds/{id}:approve`, `…:promote` `{environment, comment}` |
//! | logs | `GET /v1/projects/{project}/builds/{id}/logs` (`?follow=true`: Server-Sent Events) |
//! | environments | `GET /v1/environments`, `GET /v1/environments/{env}/history`, `POST /v1/environments/{env}:rollback` |
//! | document | `GET /openapi.json` (`src/server/openapi.json`, OpenAPI 3.1) |
//!
//! Anything that changes state needs `Authorization: Bearer <token>`; the token's name is who acts (in
//! approvals and the audit log). Reads need it too unless `publicReads`. Errors are Google-style:
//! `{"error": {"code": 409, "status": "FAILED_PRECONDITION", "message": "…", "details": […]}}`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use super::jobs::BuildJob;
use super::scheduler::{self, Admitted, Cause};
use crate::io::source::mirror::{self, Mirror, MirrorError};
use crate::io::store::queue::{BuildFilter, Cancelled, QueuedBuild};
use crate::promote::{Action, Actor, PromoteError, Promoter};
use crate::record::{Build, Status};
use crate::trigger::{self, Decision, Event, GitRef, Kind, Repo};

pub fn routes() -> axum::Router<Arc<State>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/projects/{project}/builds", get(list).post(create))
        .route("/v1/projects/{project}/builds/{name}", get(get_build).post(build_action))
        .route("/v1/projects/{project}/builds/{id}/logs", get(logs))
        .route("/v1/environments", get(environments))
        .route("/v1/environments/{name}", post(environment_action))
        .route("/v1/environments/{env}/history", get(history))
        .layer(axum::middleware::map_response(in_api_error_shape))
        .layer(axum::middleware::from_fn(deadline))
}

/// How long a request may take to be answered (a manual run fetches the repository first). Streams
/// (`?follow=true`) are answered at once and bounded on their own.
const REQUEST_DEADLINE: Duration = Duration::from_secs(120);

pub(super) async fn deadline(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("no answer within {} s; the request was abandoned", REQUEST_DEADLINE.as_secs()),
        )
        .into_response(),
    }
}

/// Refusals that come before a handler runs (a body that is not JSON or too large, a query that does
/// not parse, a method the path does not have) are plain text from axum; the API answers every error
/// in one shape, so a client parses one thing (`src/server/openapi.json`, `Error`).
async fn in_api_error_shape(response: Response) -> Response {
    use axum::http::header::{ALLOW, CONTENT_TYPE};
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let message = match text {
        Ok(text) if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("refused").to_string(),
    };
    let mut answer = ApiError::new(status, message).into_response();
    if let Some(allow) = parts.headers.get(ALLOW) {
        answer.headers_mut().insert(ALLOW, allow.clone());
    }
    answer
}

/// An API error: HTTP code, Google's status name, a message, and the refusals or problems behind it.
#[derive(Debug)]
pub struct ApiError {
    pub code: StatusCode,
    pub message: String,
    pub details: Vec<Value>,
}

impl ApiError {
    pub fn new(code: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), details: Vec::new() }
    }

    fn status_name(&self) -> &'static str {
        match self.code {
            StatusCode::BAD_REQUEST
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY => "INVALID_ARGUMENT",
            StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
            StatusCode::FORBIDDEN => "PERMISSION_DENIED",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::CONFLICT => "FAILED_PRECONDITION",
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => "RESOURCE_EXHAUSTED",
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => "UNAVAILABLE",
            StatusCode::GATEWAY_TIMEOUT => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code.as_u16(),
            "status": self.status_name(),
            "message": self.message,
            "details": self.details,
        }});
        (self.code, Json(body)).into_response()
    }
}

fn internal(e: impl std::error::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, crate::error_chain(&e))
}

impl From<PromoteError> for ApiError {
    fn from(e: PromoteError) -> ApiError {
        let code = match &e {
            PromoteError::Refused { .. } | PromoteError::NothingToRollBack { .. } => StatusCode::CONFLICT,
            PromoteError::UnknownEnvironment { .. } => StatusCode::BAD_REQUEST,
            PromoteError::Store(crate::io::store::StoreError::UnknownBuild(_)) => StatusCode::NOT_FOUND,
            PromoteError::Store(crate::io::store::StoreError::AmbiguousBuild { .. }) => StatusCode::BAD_REQUEST,
            PromoteError::Failed { .. } => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let details = e.refusals().iter().map(|r| json!({"rule": r.rule, "detail": r.detail})).collect();
        ApiError { code, message: crate::error_chain(&e), details }
    }
}

/// The bearer token of a request (`Authorization: Bearer …`). A cookie never carries a token: the
/// dashboard's cookie is a session id (`session.rs`).
fn token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization").and_then(|v| v.to_str().ok())?;
    value.strip_prefix("Bearer ").map(|token| token.trim().to_string())
}

/// Who is asking to change something through the API: a bearer token only. A dashboard session is
/// not enough for a write here (a browser sends its cookie with any request; the dashboard's own
/// forms go through [`form_actor`], which also checks their CSRF token).
pub fn actor(state: &State, headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(token) = token(headers) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "this needs `Authorization: Bearer <token>`"));
    };
    state.identify(&token).ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "the token is not valid"))
}

/// Who is looking: a bearer token's name, or a signed-in browser's.
pub fn viewer(state: &State, headers: &HeaderMap) -> Option<String> {
    match token(headers) {
        Some(token) => state.identify(&token),
        None => state.sessions.of_request(headers).map(|s| s.actor),
    }
}

/// Who pressed a dashboard button: a bearer token (no browser sends one by itself), or a live
/// session whose CSRF token the form carries back, posted from this server's own pages (`Origin`).
pub fn form_actor(state: &State, headers: &HeaderMap, csrf: &str) -> Result<String, ApiError> {
    if token(headers).is_some() {
        return actor(state, headers);
    }
    let Some(session) = state.sessions.of_request(headers) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "not signed in (or the session ended)"));
    };
    if !super::session::same_origin(headers, state.config.public_url.as_deref()) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "the form was posted from another site"));
    }
    if !session.csrf_matches(csrf) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is not this session's: reload the page and try again",
        ));
    }
    Ok(session.actor)
}

/// Checks that reading is allowed: public reads, a bearer token, or a signed-in browser.
pub fn reader(state: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.public_reads || viewer(state, headers).is_some() {
        return Ok(());
    }
    match token(headers) {
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "the token is not valid")),
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "this needs `Authorization: Bearer <token>`")),
    }
}

fn check_project(state: &State, project: &str) -> Result<(), ApiError> {
    if project == state.config.project {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no project `{project}` here (this server's is `{}`)", state.config.project),
    ))
}

/// A build as the API shows it: its record, or (before the record exists) one made from its queue row,
/// with `queue` telling where it is in the server's queue.
pub fn build_view(state: &State, row: &QueuedBuild) -> Value {
    let record = state.store.load(&row.build_id).unwrap_or_else(|_| {
        let job: BuildJob = serde_json::from_str(&row.request).unwrap_or_default();
        let status = serde_json::from_value(Value::String(row.status.clone())).unwrap_or(Status::Queued);
        let mut build = job.decided_record(&row.build_id, &state.config.project, status, "");
        build.finish_time = None;
        build
    });
    let mut value = serde_json::to_value(&record).unwrap_or_default();
    // The queue knows an end first when the build never ran to write it (cancelled while queued).
    if !record.status.is_terminal() && row.state == "done" {
        value["status"] = json!(row.status);
    }
    value["queue"] = json!({"state": row.state, "seq": row.seq, "group": row.concurrency_group});
    value
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    status: Option<String>,
    repository: Option<String>,
    #[serde(rename = "ref")]
    ref_name: Option<String>,
    trigger: Option<String>,
    commit: Option<String>,
    page_size: Option<i64>,
    page_token: Option<String>,
}

async fn list(
    AxumState(state): AxumState<Arc<State>>,
    Path(project): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    reader(&state, &headers)?;
    check_project(&state, &project)?;
    let limit = q.page_size.unwrap_or(50).clamp(1, 500);
    let before_seq = match q.page_token.as_deref() {
        Some(t) => Some(t.parse::<i64>().map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad pageToken"))?),
        None => None,
    };
    let filter = BuildFilter {
        status: q.status,
        repository: q.repository,
        ref_name: q.ref_name,
        trigger_name: q.trigger,
        commit_sha: q.commit,
        limit,
        before_seq,
    };
    let rows = state.db.list_builds(&filter).await.map_err(internal)?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.seq.to_string())).flatten();
    let builds: Vec<Value> = rows.iter().map(|r| build_view(&state, r)).collect();
    Ok(Json(json!({"builds": builds, "nextPageToken": next})))
}

async fn get_build(
    AxumState(state): AxumState<Arc<State>>,
    Path((project, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    reader(&state, &headers)?;
    check_project(&state, &project)?;
    Ok(Json(build_view(&state, &row(&state, &name).await?)))
}

/// The queued build a URL names: its id checked as one path segment first (a `..%2F` in the URL is a
/// 400 before anything is looked up), then looked up (404 if unknown). Every route that takes a build
/// id from its URL, the API's and the dashboard's, goes through here, and reads files only by the id
/// the database holds.
pub async fn row(state: &State, build_id: &str) -> Result<QueuedBuild, ApiError> {
    let id = crate::io::host_path::Segment::new(build_id).map_err(|e| {
        let message = e.to_string();
        let reason = message.lines().next().unwrap_or_default();
        ApiError::new(StatusCode::BAD_REQUEST, format!("not a build id: {reason}"))
    })?;
    state
        .db
        .queued_build(id.as_str())
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no build `{build_id}`")))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PromoteBody {
    /// The environment to approve for or promote to; absent on `:approve`, the build itself is
    /// approved to run (it waits for approval: an untrusted build).
    #[serde(default)]
    pub environment: String,
    #[serde(default)]
    pub comment: String,
    /// Cloud Build's `builds.approve` body: `{"approvalResult": {"decision": "APPROVED" | "REJECTED"}}`.
    #[serde(default)]
    pub approval_result: Option<ApprovalResult>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalResult {
    pub decision: String,
    #[serde(default)]
    pub comment: String,
}

async fn build_action(
    AxumState(state): AxumState<Arc<State>>,
    Path((project, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<PromoteBody>>,
) -> Result<Json<Value>, ApiError> {
    check_project(&state, &project)?;
    let who = actor(&state, &headers)?;
    let Some((id, action)) = name.rsplit_once(':') else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no method `{name}`; use `{name}:cancel`, …")));
    };
    let body = body.map(|Json(b)| b).unwrap_or_default();
    match action {
        "cancel" => cancel(&state, id, &who).await.map(Json),
        "retry" => retry(&state, id, &who).await.map(Json),
        "approve" => approve(&state, id, &body, &who).await.map(Json),
        "promote" => promote(&state, id, &body, &who).await.map(Json),
        other => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no method `{other}`; builds have cancel, retry, approve and promote"),
        )),
    }
}

pub async fn cancel(state: &Arc<State>, build_id: &str, who: &str) -> Result<Value, ApiError> {
    let row = row(state, build_id).await?;
    match scheduler::cancel(state, &row.build_id, &format!("cancelled by {who}")).await {
        Some(Cancelled::Done) => {
            Err(ApiError::new(StatusCode::CONFLICT, format!("build {build_id} has already ended ({})", row.status)))
        }
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no build `{build_id}`"))),
        Some(_) => Ok(build_view(state, &row_after(state, &row).await)),
    }
}

async fn row_after(state: &State, row: &QueuedBuild) -> QueuedBuild {
    state.db.queued_build(&row.build_id).await.ok().flatten().unwrap_or_else(|| row.clone())
}

pub async fn retry(state: &Arc<State>, build_id: &str, who: &str) -> Result<Value, ApiError> {
    let old = row(state, build_id).await?;
    let mut job: BuildJob = serde_json::from_str(&old.request).map_err(internal)?;
    job.trigger.reason = format!("retry of build {build_id} by {who}");
    job.trigger.decision = "build".into();
    // A token holder asking for the retry is its approval: it keeps its trust and runs.
    let group = old.concurrency_group.clone().map(|g| (g, false));
    enqueue(state, Admitted { job, status: Status::Queued, detail: String::new(), group }).await
}

/// Queues an admitted build ([`scheduler::queue`], the one way in) and answers with its view.
async fn enqueue(state: &Arc<State>, admitted: Admitted) -> Result<Value, ApiError> {
    let build_id = scheduler::queue(state, admitted, Cause::Api).await.map_err(internal)?;
    Ok(build_view(state, &row(state, &build_id).await?))
}

fn promoter(state: &State) -> Promoter {
    Promoter::new(state.store.clone(), state.db.clone(), state.registry.clone())
        .with_credentials(state.config.credentials.clone())
}

pub async fn approve(state: &Arc<State>, build_id: &str, body: &PromoteBody, who: &str) -> Result<Value, ApiError> {
    let row = row(state, build_id).await?;
    if body.environment.is_empty() {
        let (decision, comment) = match &body.approval_result {
            Some(r) => (r.decision.as_str(), if r.comment.is_empty() { &body.comment } else { &r.comment }),
            None => ("APPROVED", &body.comment),
        };
        let approved = match decision {
            "APPROVED" => true,
            "REJECTED" => false,
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("`{other}` is not a decision; write `APPROVED` or `REJECTED`"),
                ));
            }
        };
        let how =
            if comment.is_empty() { "through the API".to_string() } else { format!("through the API: {comment}") };
        return match scheduler::decide_approval(state, &row, who, approved, &how).await {
            Ok(()) => Ok(build_view(state, &row_after(state, &row).await)),
            Err(message) => Err(ApiError::new(StatusCode::CONFLICT, message)),
        };
    }
    let actor = Actor { name: who.to_string(), comment: body.comment.clone() };
    let approved = promoter(state).approve(build_id, &body.environment, &actor).await?;
    Ok(json!({"approvals": approved.approvals, "required": approved.required}))
}

pub async fn promote(state: &Arc<State>, build_id: &str, body: &PromoteBody, who: &str) -> Result<Value, ApiError> {
    row(state, build_id).await?;
    let actor = Actor { name: who.to_string(), comment: body.comment.clone() };
    let promotion = promoter(state).promote(build_id, &body.environment, &actor, Action::Promote).await?;
    Ok(json!({
        "release": promotion.release,
        "unchanged": promotion.unchanged,
        "tagged": promotion.tagged.iter().map(|t| json!({"what": t.what, "reference": t.reference, "digest": t.digest})).collect::<Vec<_>>(),
        "uploads": promotion.uploads,
        "run": promotion.run,
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    pub repository: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub commit_sha: Option<String>,
    #[serde(default)]
    pub substitutions: BTreeMap<String, String>,
    /// Run this trigger only (its substitutions and concurrency apply).
    pub trigger: Option<String>,
}

async fn create(
    AxumState(state): AxumState<Arc<State>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    check_project(&state, &project)?;
    let who = actor(&state, &headers)?;
    manual_run(&state, &body, &who).await.map(Json)
}

/// A manual run: a branch's tip or a commit on it (or a tag's commit) of a configured repository,
/// through the build file's triggers as a `manual` event (docs/SPEC.md §10); a file without triggers just builds.
///
/// A manual run is trusted (it gets secrets and may be promoted), so what it builds must be the
/// repository's own code: `commitSha` is a full commit id (never a ref such as `refs/pull/7/head`), and
/// that commit must be the named branch's tip or one of its ancestors in the mirror, whose branches are
/// fetched from the repository itself. A fork's commit, which only a pull request ref holds, is refused.
pub async fn manual_run(state: &Arc<State>, body: &CreateBody, who: &str) -> Result<Value, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let repo = state
        .config
        .repository(&body.repository)
        .cloned()
        .ok_or_else(|| bad(format!("`{}` is not a repository of this server", body.repository)))?;
    let (git_ref, full) = match (&body.branch, &body.tag) {
        (Some(b), None) => (GitRef::Branch(b.clone()), format!("refs/heads/{b}")),
        (None, Some(t)) => (GitRef::Tag(t.clone()), format!("refs/tags/{t}")),
        _ => return Err(bad("give `branch` or `tag` (and optionally `commitSha`)".into())),
    };
    trigger::GitRef::from_full(&full).map_err(bad)?;
    if let Some(sha) = &body.commit_sha {
        check_commit_id(sha).map_err(bad)?;
    }
    let mirror = state.mirror(&repo.url, None).await.map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))?;
    // Git runs on a blocking thread, never on the runtime: where the commit is.
    let (mirror, placed) = {
        let (name, wanted, git_ref, full) = (repo.name.clone(), body.commit_sha.clone(), git_ref.clone(), full.clone());
        tokio::task::spawn_blocking(move || {
            let placed = place(&mirror, &name, &git_ref, &full, wanted.as_deref());
            (mirror, placed)
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    };
    let sha = placed
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("cannot fetch `{}`: {}", mirror::redact(&repo.url), crate::error_chain(&e)),
            )
        })?
        .map_err(bad)?;
    let mirror = Arc::new(mirror);
    let (path, bytes) = super::intake::read_build_file(&mirror, &sha, repo.config.as_deref())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .ok_or_else(|| bad(format!("commit {sha} has no build file")))?;
    let loaded = crate::config::load(&path, &bytes, &[]).map_err(|d| {
        let mut e = bad(format!("`{path}` at {sha} has problems"));
        e.details = d.errors().map(|x| json!(x.render(&path))).collect();
        e
    })?;
    let event = Event {
        repo: Repo { full_name: repo.name.clone(), clone_url: repo.url.clone(), default_branch: None },
        kind: Kind::Manual,
        git_ref,
        before: None,
        after: sha.clone(),
        base: None,
        head_message: None,
        messages: Vec::new(),
        sender: who.to_string(),
        delivery: None,
        created: false,
        deleted: false,
        forced: false,
    };
    let (mut job, needs_approval) = super::intake::job_for(&repo, &event);
    let rules = super::evaluation::Rules::File { path: path.clone(), commit: sha.clone(), base_branch: None };
    job.trigger.rules = rules.to_string();
    job.config_path = Some(path);
    let triggers: Vec<_> = loaded
        .config
        .extensions
        .triggers
        .iter()
        .filter(|t| body.trigger.as_ref().is_none_or(|name| t.name.as_ref().is_some_and(|n| &n.value == name)))
        .cloned()
        .collect();
    if triggers.is_empty() && body.trigger.is_some() {
        return Err(bad(format!("the build file has no trigger `{}`", body.trigger.clone().unwrap_or_default())));
    }
    let mut group = None;
    if triggers.is_empty() {
        job.trigger.decision = "build".into();
        job.trigger.reason = format!("manual run by {who}");
        job.substitutions.extend(body.substitutions.clone());
    } else {
        match trigger::decide(&triggers, &event, trigger::ChangedFiles::Files(Vec::new()), true) {
            Decision::Build { trigger, substitutions, concurrency, reason } => {
                job.trigger.reason = format!("{reason} (manual run by {who})");
                let project = &state.config.project;
                group = super::intake::building(
                    &mut job,
                    project,
                    trigger,
                    substitutions,
                    &body.substitutions,
                    concurrency,
                );
            }
            Decision::Skip { reason, .. } => {
                return Err(ApiError::new(StatusCode::CONFLICT, format!("no trigger runs this: {reason}")));
            }
        }
    }
    let (status, detail) = super::intake::admission(&repo, &job, needs_approval);
    enqueue(state, Admitted { job, status, detail, group }).await
}

/// `commitSha` of a manual run: a full commit id, so that it names a commit and never a ref (a
/// pull request's `refs/pull/7/head`, a branch, `HEAD~1`) that git would resolve to something else.
fn check_commit_id(sha: &str) -> Result<(), String> {
    let hex = !sha.is_empty() && sha.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && matches!(sha.len(), 40 | 64) {
        return Ok(());
    }
    Err(format!(
        "`commitSha` must be a full commit id (40 hex digits), not `{}`\n\nhint: to build a branch's tip, give \
         `branch` alone; a pull request builds through its webhook",
        sha.chars().take(80).collect::<String>()
    ))
}

/// The commit a manual run builds, or why it may not: the branch's (or tag's) tip, or `wanted` when
/// it is on that branch (or is the tag's commit). Blocking (git).
fn place(
    mirror: &Mirror,
    repository: &str,
    git_ref: &GitRef,
    full: &str,
    wanted: Option<&str>,
) -> Result<Result<String, String>, MirrorError> {
    let (what, name) = match git_ref {
        GitRef::Branch(b) => ("branch", b.as_str()),
        GitRef::Tag(t) => ("tag", t.as_str()),
    };
    let Some(tip) = mirror.resolve(full)? else {
        return Ok(Err(format!("`{repository}` has no {what} `{name}`")));
    };
    let Some(wanted) = wanted else { return Ok(Ok(tip)) };
    let Some(sha) = mirror.resolve(wanted)? else {
        return Ok(Err(format!("`{wanted}` is not a commit of `{repository}`")));
    };
    let short = &sha[..sha.len().min(12)];
    match git_ref {
        GitRef::Tag(_) if sha == tip => Ok(Ok(sha)),
        GitRef::Tag(_) => Ok(Err(format!("tag `{name}` is commit {}, not {short}", &tip[..tip.len().min(12)]))),
        GitRef::Branch(_) if mirror.on_branch(&sha, name)? => Ok(Ok(sha)),
        GitRef::Branch(_) => {
            let on = mirror.branches_containing(&sha)?;
            Ok(Err(if on.is_empty() {
                format!(
                    "commit {short} is on no branch of `{repository}` (only a pull request or a fork holds it), so \
                     it cannot run as a trusted manual run of `{name}`\n\nhint: a pull request builds through \
                     its webhook, untrusted"
                )
            } else {
                let on: Vec<String> = on.iter().take(5).map(|b| format!("`{b}`")).collect();
                format!(
                    "commit {short} is not on branch `{name}` of `{repository}` (it is on {})\n\nhint: name a \
                     branch whose history holds it",
                    on.join(", ")
                )
            }))
        }
    }
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    follow: bool,
}

async fn logs(
    AxumState(state): AxumState<Arc<State>>,
    Path((project, id)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    reader(&state, &headers)?;
    check_project(&state, &project)?;
    let row = row(&state, &id).await?;
    if q.follow {
        return Ok(follow(state, row.build_id)?.into_response());
    }
    let text = tokio::fs::read(state.store.log_path(&row.build_id)).await.unwrap_or_default();
    Ok(([("content-type", "text/plain; charset=utf-8")], text).into_response())
}

/// The longest a log follow stays open (longer than any build's timeout, which is 24 hours at most).
pub const FOLLOW_LIMIT: Duration = Duration::from_secs(25 * 3600);

/// A line longer than this is sent in pieces (a build that never writes a newline cannot grow a
/// follow's memory).
const FOLLOW_LINE_LIMIT: usize = 64 * 1024;

/// The build's log as Server-Sent Events: every line so far, then each new one as the build writes it
/// (event `line`), then event `end` with the final status once the build has ended. Callers have
/// looked the build up ([`row`]): an unknown id never gets a stream. Bounded (docs/THREATS.md property
/// 7): at most `maxStreams` follows are open at once (one more is answered 429), each for at most
/// [`FOLLOW_LIMIT`], reading only the bytes added since its last look.
pub fn follow(
    state: Arc<State>,
    build_id: String,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    struct Tail {
        state: Arc<State>,
        build_id: String,
        offset: u64,
        pending: std::collections::VecDeque<SseEvent>,
        partial: Vec<u8>,
        ended: bool,
        _permit: tokio::sync::OwnedSemaphorePermit,
    }
    let permit = state.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} log streams are open, the most this server allows (`maxStreams`); close one or try again later",
                state.config.max_streams
            ),
        )
    })?;
    let until = tokio::time::Instant::now() + FOLLOW_LIMIT;
    let tail = Tail {
        state,
        build_id,
        offset: 0,
        pending: Default::default(),
        partial: Vec::new(),
        ended: false,
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(tail, move |mut t| async move {
        loop {
            if let Some(event) = t.pending.pop_front() {
                return Some((Ok(event), t));
            }
            if t.ended {
                return None;
            }
            // Past the limit a follow ends with `end: LIMIT`; a browser's EventSource reconnects and
            // starts again from the first line.
            if tokio::time::Instant::now() >= until {
                t.pending.push_back(SseEvent::default().event("end").data("LIMIT"));
                t.ended = true;
                continue;
            }
            // Read the end state before the file: a line written just before the end is then still read.
            let done = t.state.db.queued_build(&t.build_id).await.ok().flatten().filter(|r| r.state == "done");
            let added = read_from(&t.state.store.log_path(&t.build_id), t.offset).await;
            t.offset += added.len() as u64;
            t.partial.extend_from_slice(&added);
            while let Some(end) = t.partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = t.partial.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                t.pending.push_back(SseEvent::default().event("line").data(text));
            }
            while t.partial.len() > FOLLOW_LINE_LIMIT {
                let piece: Vec<u8> = t.partial.drain(..FOLLOW_LINE_LIMIT).collect();
                t.pending.push_back(SseEvent::default().event("line").data(&*String::from_utf8_lossy(&piece)));
            }
            if let Some(row) = done {
                if !t.partial.is_empty() {
                    let text = String::from_utf8_lossy(&std::mem::take(&mut t.partial)).into_owned();
                    t.pending.push_back(SseEvent::default().event("line").data(text));
                }
                t.pending.push_back(SseEvent::default().event("end").data(row.status));
                t.ended = true;
                continue;
            }
            if t.pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// What `path` holds past `offset`, at most 1 MiB at a time (nothing when it cannot be read yet).
async fn read_from(path: &std::path::Path, offset: u64) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    if file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    match file.take(1024 * 1024).read_to_end(&mut bytes).await {
        Ok(_) => bytes,
        Err(_) => Vec::new(),
    }
}

async fn environments(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    reader(&state, &headers)?;
    let releases = state.db.environments().await.map_err(internal)?;
    Ok(Json(json!({"environments": releases})))
}

async fn history(
    AxumState(state): AxumState<Arc<State>>,
    Path(env): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    reader(&state, &headers)?;
    let log = state.db.audit_log(Some(&env)).await.map_err(internal)?;
    let releases = state.db.releases(&env).await.map_err(internal)?;
    Ok(Json(json!({"releases": releases, "audit": log})))
}

#[derive(Deserialize, Default)]
pub struct CommentBody {
    #[serde(default)]
    comment: String,
}

async fn environment_action(
    AxumState(state): AxumState<Arc<State>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<CommentBody>>,
) -> Result<Json<Value>, ApiError> {
    let who = actor(&state, &headers)?;
    let Some((env, "rollback")) = name.rsplit_once(':') else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no method `{name}`; use `{name}:rollback`")));
    };
    let comment = body.map(|Json(b)| b.comment).unwrap_or_default();
    let promotion = promoter(&state).rollback(env, &Actor { name: who, comment }).await?;
    Ok(Json(json!({"release": promotion.release})))
}

/// The builds of the dashboard's list: newest first.
pub async fn recent(state: &State, limit: i64) -> Result<Vec<(QueuedBuild, Build)>, ApiError> {
    let rows = state.db.list_builds(&BuildFilter { limit, ..BuildFilter::default() }).await.map_err(internal)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let value = build_view(state, &row);
            let build =
                serde_json::from_value(value).unwrap_or_else(|_| Build::new(row.build_id.clone(), String::new()));
            (row, build)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_manual_runs_commit_is_a_commit_id_and_never_a_ref() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        let sha256 = "0123456789abcdef".repeat(4);
        for ok in [sha1, sha256.as_str(), &sha1.to_uppercase()] {
            assert_eq!(super::check_commit_id(ok), Ok(()), "{ok}");
        }
        for refused in ["refs/pull/7/head", "main", "HEAD", "HEAD~1", "0123456", "", "-x", &format!("{sha1}^")] {
            let message = super::check_commit_id(refused).expect_err(refused);
            assert!(message.starts_with("`commitSha` must be a full commit id"), "{message}");
        }
    }
}
