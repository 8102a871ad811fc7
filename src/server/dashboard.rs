//! The dashboard (docs/SPEC.md §12): server-rendered HTML (minijinja templates compiled into the binary), no
//! JavaScript build step; the build page follows its log with a few lines of `EventSource`.
//!
//! Buttons post forms to the same operations as the JSON API (one rule engine behind both). Signing in
//! with an API token starts a server-side session (`session.rs`): the cookie holds a random session
//! id, never the token; every form carries the session's CSRF token and must come from this server's
//! pages, so another site cannot make a signed-in browser press them; `/logout` ends the session.

use std::sync::{Arc, OnceLock};

use axum::Form;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use super::api::{self, ApiError, PromoteBody};
use crate::io::http::encode_component;
use crate::record::Build;

pub fn routes() -> axum::Router<Arc<State>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(builds))
        .route("/builds/{id}", get(build))
        .route("/builds/{id}/log", get(log))
        .route("/builds/{id}/{action}", post(action))
        .route("/environments", get(environments))
        .route("/environments/{env}/rollback", post(rollback))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        // Pages are answered within the API's deadline too (a follow answers at once, then streams).
        .layer(axum::middleware::from_fn(api::deadline))
}

fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        for (name, text) in [
            ("base.html", include_str!("templates/base.html")),
            ("builds.html", include_str!("templates/builds.html")),
            ("build.html", include_str!("templates/build.html")),
            ("environments.html", include_str!("templates/environments.html")),
            ("login.html", include_str!("templates/login.html")),
        ] {
            env.add_template(name, text).expect("the dashboard's templates parse");
        }
        env
    })
}

/// Renders a page; `context` gets the signed-in user, the project and a flash message.
fn page(state: &State, headers: &HeaderMap, name: &str, mut context: Value, message: Option<String>) -> Response {
    context["user"] = json!(api::viewer(state, headers));
    // The forms of a signed-in browser carry its session's CSRF token back (`api::form_actor`).
    context["csrf"] = json!(state.sessions.of_request(headers).map(|s| s.csrf));
    context["project"] = json!(state.config.project);
    context["message"] = json!(message);
    match templates().get_template(name).and_then(|t| t.render(&context)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("the page `{name}` failed to render: {e:#}")).into_response()
        }
    }
}

fn denied(e: ApiError) -> Response {
    let code = e.code;
    let text =
        if code == StatusCode::UNAUTHORIZED { format!("{} — sign in at /login", e.message) } else { e.message };
    (code, text).into_response()
}

#[derive(Deserialize, Default)]
struct Flash {
    message: Option<String>,
}

async fn builds(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap, Query(flash): Query<Flash>) -> Response {
    if let Err(e) = api::reader(&state, &headers) {
        return denied(e);
    }
    let recent = match api::recent(&state, 100).await {
        Ok(recent) => recent,
        Err(e) => return denied(e),
    };
    let rows: Vec<Value> = recent
        .iter()
        .map(|(row, b)| {
            json!({
                "id": row.build_id,
                "status": b.status.as_str(),
                "repository": row.repository,
                "ref": row.ref_name,
                "commit": row.commit_sha,
                "trigger": b.trigger.as_ref().and_then(|t| t.name.clone()).unwrap_or_default(),
                "reason": b.trigger.as_ref().map(|t| t.reason.clone()).unwrap_or_default(),
                "created": seconds(&row.created_at),
                "duration": duration(b),
            })
        })
        .collect();
    page(&state, &headers, "builds.html", json!({"builds": rows}), flash.message)
}

async fn build(
    AxumState(state): AxumState<Arc<State>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Response {
    if let Err(e) = api::reader(&state, &headers) {
        return denied(e);
    }
    let row = match api::row(&state, &id).await {
        Ok(row) => row,
        Err(e) => return (e.code, e.message).into_response(),
    };
    let value = api::build_view(&state, &row);
    let record: Build = serde_json::from_value(value.clone()).unwrap_or_else(|_| Build::new(id.clone(), String::new()));
    let steps: Vec<Value> = record
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let label =
                if s.id.is_empty() { format!("step {i}: {}", s.name) } else { format!("{} ({})", s.id, s.name) };
            json!({
                "label": label,
                "status": s.status.as_str(),
                "exit": s.exit_code.filter(|c| *c != 0),
                "duration": s.timing.as_ref().and_then(|t| t.seconds()).map(|x| format!("{x:.1} s")),
            })
        })
        .collect();
    let mut spans: Vec<_> = record.timing.iter().collect();
    spans.sort_by_key(|(_, span)| span.start_time.map(|t| t.0));
    let phases: Vec<Value> = spans
        .into_iter()
        .map(|(name, span)| {
            json!({
                "name": name,
                "status": if span.end_time.is_some() { "SUCCESS" } else { "WORKING" },
                "duration": span.seconds().map(|x| format!("{x:.1} s")),
            })
        })
        .collect();
    let environments = environment_rows(&state, &record).await;
    let spec_diffs = spec_diffs(&state, &record).await;
    let log = std::fs::read_to_string(state.store.log_path(&row.build_id)).unwrap_or_default();
    let context = json!({
        "build": value,
        "repository": row.repository,
        "ref": row.ref_name,
        "commit": row.commit_sha,
        "duration": duration(&record),
        "steps": steps,
        "phases": phases,
        "environments": environments,
        "spec_diffs": spec_diffs,
        "running": row.state != "done",
        "log": log,
        "limits": record.limits.as_ref().map(crate::limits::Limits::describe),
    });
    page(&state, &headers, "build.html", context, flash.message)
}

/// Each environment of the build, with what is in it now and its rules in a few words.
async fn environment_rows(state: &State, record: &Build) -> Vec<Value> {
    let mut rows = Vec::new();
    for env in &record.environments {
        let current = state.db.current(&env.name).await.ok().flatten().map(|r| r.build_id);
        let mut rules = Vec::new();
        if !env.branches.is_empty() {
            rules.push(format!("branches {}", env.branches.join(", ")));
        }
        if let Some(after) = &env.after {
            rules.push(format!("after {after}"));
        }
        rules.extend(env.gates.iter().map(|g| format!("gate {g}")));
        if let Some(a) = &env.approval {
            rules.push(format!("{} approval{}", a.required, if a.required == 1 { "" } else { "s" }));
        }
        if env.auto {
            rules.push("auto".into());
        }
        rows.push(json!({
            "name": env.name,
            "current": current,
            "rules": rules.join(" · "),
            "approval": env.approval.is_some(),
        }));
    }
    rows
}

/// This build's compiled spec against the spec of each environment's current release (docs/SPEC.md §12), so
/// a reviewer sees what promoting it would change. Environments holding this build, or a release whose
/// spec this server does not have, are left out.
async fn spec_diffs(state: &State, record: &Build) -> Vec<Value> {
    let Some(pipeline) = record.pipeline.as_ref().filter(|p| !p.spec_digest.is_empty()) else {
        return Vec::new();
    };
    let Ok(head_path) = state.store.recorded_spec(&pipeline.name, &pipeline.spec_digest) else {
        return Vec::new();
    };
    let Ok(head) = tokio::fs::read_to_string(head_path).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for env in &record.environments {
        let Ok(Some(release)) = state.db.current(&env.name).await else { continue };
        if release.build_id == record.id || release.digests.spec.is_empty() {
            continue;
        }
        let Ok(blob) = state.store.recorded_spec(&pipeline.name, &release.digests.spec) else { continue };
        let Ok(base) = tokio::fs::read_to_string(blob).await else { continue };
        let label = format!("the {} release", env.name);
        let text = match crate::kfp::diff_specs(&base, &label, &head, &pipeline.spec) {
            Ok(diff) => diff.to_text(),
            Err(e) => format!("cannot compare: {e}"),
        };
        out.push(json!({"environment": env.name, "build": release.build_id, "text": text}));
    }
    out
}

#[derive(Deserialize, Default)]
struct LogQuery {
    #[serde(default)]
    follow: bool,
}

async fn log(
    AxumState(state): AxumState<Arc<State>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LogQuery>,
) -> Response {
    if let Err(e) = api::reader(&state, &headers) {
        return denied(e);
    }
    let row = match api::row(&state, &id).await {
        Ok(row) => row,
        Err(e) => return (e.code, e.message).into_response(),
    };
    if q.follow {
        return match api::follow(state, row.build_id) {
            Ok(stream) => stream.into_response(),
            Err(e) => e.into_response(),
        };
    }
    let text = tokio::fs::read(state.store.log_path(&row.build_id)).await.unwrap_or_default();
    ([("content-type", "text/plain; charset=utf-8")], text).into_response()
}

#[derive(Deserialize, Default)]
struct ActionForm {
    #[serde(default)]
    environment: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    csrf: String,
}

async fn action(
    AxumState(state): AxumState<Arc<State>>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let who = match api::form_actor(&state, &headers, &form.csrf) {
        Ok(who) => who,
        Err(e) => return denied(e),
    };
    let body = PromoteBody { environment: form.environment.clone(), comment: form.comment, approval_result: None };
    let (result, target) = match action.as_str() {
        "approve" if body.environment.is_empty() => {
            (api::approve(&state, &id, &body, &who).await.map(|_| "approved to run".to_string()), id.clone())
        }
        "approve" => (
            api::approve(&state, &id, &body, &who).await.map(|_| format!("approved for {}", body.environment)),
            id.clone(),
        ),
        "promote" => (
            api::promote(&state, &id, &body, &who).await.map(|_| format!("promoted to {}", body.environment)),
            id.clone(),
        ),
        "cancel" => (api::cancel(&state, &id, &who).await.map(|_| "cancel requested".to_string()), id.clone()),
        "retry" => match api::retry(&state, &id, &who).await {
            Ok(v) => {
                let new = v["id"].as_str().unwrap_or(&id).to_string();
                (Ok(format!("retry of {}", &id[..id.len().min(8)])), new)
            }
            Err(e) => (Err(e), id.clone()),
        },
        _ => return (StatusCode::NOT_FOUND, format!("no action `{action}`")).into_response(),
    };
    let message = match result {
        Ok(text) => text,
        Err(e) => {
            let mut text = e.message;
            for d in &e.details {
                text.push_str(&format!(
                    "\n  {}: {}",
                    d["rule"].as_str().unwrap_or(""),
                    d["detail"].as_str().unwrap_or("")
                ));
            }
            text
        }
    };
    Redirect::to(&format!("/builds/{target}?message={}", encode_component(&message))).into_response()
}

async fn environments(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Response {
    if let Err(e) = api::reader(&state, &headers) {
        return denied(e);
    }
    let releases = state.db.environments().await.unwrap_or_default();
    let mut audit = state.db.audit_log(None).await.unwrap_or_default();
    audit.reverse();
    page(&state, &headers, "environments.html", json!({"releases": releases, "audit": audit}), flash.message)
}

#[derive(Deserialize, Default)]
struct CommentForm {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    csrf: String,
}

async fn rollback(
    AxumState(state): AxumState<Arc<State>>,
    Path(env): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CommentForm>,
) -> Response {
    let who = match api::form_actor(&state, &headers, &form.csrf) {
        Ok(who) => who,
        Err(e) => return denied(e),
    };
    let promoter = crate::promote::Promoter::new(state.store.clone(), state.db.clone(), state.registry.clone())
        .with_credentials(state.config.credentials.clone());
    let actor = crate::promote::Actor { name: who, comment: form.comment };
    let message = match promoter.rollback(&env, &actor).await {
        Ok(p) => format!("rolled back {env} to build {}", &p.release.build_id[..p.release.build_id.len().min(8)]),
        Err(e) => ApiError::from(e).message,
    };
    Redirect::to(&format!("/environments?message={}", encode_component(&message))).into_response()
}

async fn login_form(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap) -> Response {
    page(&state, &headers, "login.html", json!({}), None)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    // A sign-in posted from another site would sign this browser in as someone else's token.
    if !super::session::same_origin(&headers, state.config.public_url.as_deref()) {
        return (StatusCode::FORBIDDEN, "the sign-in form was posted from another site").into_response();
    }
    let Some(actor) = state.identify(form.token.trim()) else {
        return (StatusCode::UNAUTHORIZED, "that is not one of this server's tokens").into_response();
    };
    let (id, _) = state.sessions.start(&actor);
    let cookie = super::session::set_cookie(&id, state.sessions.timeout(), state.secure_cookies());
    ([("set-cookie", cookie)], Redirect::to("/")).into_response()
}

#[derive(Deserialize, Default)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (the CSRF token is checked: another site cannot sign a browser out either).
async fn logout(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap, Form(form): Form<LogoutForm>) -> Response {
    if let Err(e) = api::form_actor(&state, &headers, &form.csrf) {
        return denied(e);
    }
    state.sessions.end(&headers);
    let cookie = super::session::clear_cookie(state.secure_cookies());
    ([("set-cookie", cookie)], Redirect::to("/login")).into_response()
}

/// `2026-11-25T10:00:00.123Z` → `2026-11-25 10:00:00`.
fn seconds(at: &str) -> String {
    at.split('.').next().unwrap_or(at).trim_end_matches('Z').replace('T', " ")
}

fn duration(b: &Build) -> String {
    match (b.start_time, b.finish_time) {
        (Some(start), Some(end)) => format!("{:.1} s", end.seconds_since(&start)),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_templates_parse() {
        super::templates();
    }
}
