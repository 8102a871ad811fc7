//! Runs queued builds: at most `maxBuilds` at once, one at a time per concurrency group, in arrival
//! order; a build with `cancelInProgress` cancels the older unfinished builds of its group.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::State;
use super::jobs::BuildJob;
use super::status::CommitState;
use crate::engine::Engine;
use crate::io::store::db::DbError;
use crate::io::store::queue::{Cancelled, NewBuild, QueuedBuild};
use crate::record::{Build, FailureInfo, FailureType, Status, Timestamp};

/// Ends what a killed predecessor left: its containers, and its running builds (as `INTERNAL_ERROR`,
/// unless their record had already ended).
pub async fn recover(state: &Arc<State>) -> Result<(), super::ServeError> {
    for row in state.db.builds_in("working").await? {
        let mut status = Status::InternalError;
        let closed = match state.store.load(&row.build_id) {
            Ok(record) if record.status.is_terminal() => {
                status = record.status;
                Ok(record)
            }
            Ok(_) => {
                let (id, row) = (row.build_id.clone(), row.clone());
                // Under the record's lock the build may turn out to have ended after all: then it stays so.
                state.store.update(&id, move |record| interrupted(record, &row)).await
            }
            Err(_) => {
                let job: BuildJob = serde_json::from_str(&row.request).unwrap_or_default();
                let mut record = job.decided_record(&row.build_id, &state.config.project, status, "");
                interrupted(&mut record, &row);
                state.store.put(record).await
            }
        };
        match closed {
            Ok(record) => status = record.status,
            Err(e) => {
                tracing::error!(build = %row.build_id, error = %crate::error_chain(&e), "cannot close the record of an interrupted build")
            }
        }
        state.db.finish_build(&row.build_id, status.as_str()).await?;
        // Its work directory (and disk) go too: nothing will run it again.
        let work = state.store.work_dir(&row.build_id);
        crate::executor::disk::cleanup(&work).await;
        let _ = std::fs::remove_dir_all(&work);
        tracing::warn!(build = %row.build_id, "a build was running when the server stopped: ended as {}", status.as_str());
        report(state, &row.build_id, &serde_json::from_str(&row.request).unwrap_or_default(), status, "").await;
    }
    // After the records say why: the sweep removes the containers, volumes and networks of every build
    // whose process is gone, and closes any other record it left open.
    let swept = crate::executor::janitor::sweep(&state.docker, &state.store).await;
    if !swept.builds.is_empty() {
        tracing::info!(builds = swept.builds.len(), "removed what crashed earlier runs left behind");
    }
    if let Some(e) = swept.docker_error {
        tracing::warn!(error = %crate::error_chain(&e), "could not sweep what earlier runs left");
    }
    if let crate::engine::Sandbox::Ready { executor, .. } = &state.sandbox {
        use crate::executor::Executor;
        match crate::executor::janitor::sweep_engine(executor.docker()).await {
            Ok(builds) if !builds.is_empty() => {
                tracing::info!(builds = builds.len(), "removed what crashed untrusted builds left in the sandbox")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %crate::error_chain(&e), "could not sweep the sandbox's engine"),
        }
    }
    Ok(())
}

fn interrupted(record: &mut Build, row: &QueuedBuild) {
    if record.status.is_terminal() {
        return;
    }
    let owner = row.owner.clone().unwrap_or_default();
    let detail = format!(
        "the server ({owner}) stopped while the build was running; it was not re-run (it may have pushed or \
         uploaded part way): retry it to run it again"
    );
    record.status = Status::InternalError;
    record.status_detail = detail.clone();
    record.failure_info = Some(FailureInfo { kind: FailureType::FailureTypeUnspecified, detail });
    record.finish_time.get_or_insert_with(Timestamp::now);
}

/// Starts builds while there is room, until the server stops.
pub async fn run(state: Arc<State>) {
    loop {
        while state.running.lock().expect("running lock").len() < state.config.max_builds {
            match state.db.claim_next(&state.instance).await {
                Ok(Some(row)) => start(&state, row),
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %crate::error_chain(&e), "cannot claim a build");
                    break;
                }
            }
        }
        tokio::select! {
            _ = state.schedule.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

fn start(state: &Arc<State>, row: QueuedBuild) {
    let token = CancellationToken::new();
    state.running.lock().expect("running lock").insert(row.build_id.clone(), token.clone());
    let state = state.clone();
    tokio::spawn(async move {
        let build_id = row.build_id.clone();
        let status = run_build(&state, &row, token).await;
        if let Err(e) = state.db.finish_build(&build_id, status.as_str()).await {
            tracing::error!(build = %build_id, error = %crate::error_chain(&e), "cannot record the end of a build");
        }
        state.metrics.count_build(status);
        state.running.lock().expect("running lock").remove(&build_id);
        state.schedule.notify_one();
    });
}

async fn run_build(state: &Arc<State>, row: &QueuedBuild, cancel: CancellationToken) -> Status {
    let job: BuildJob = match serde_json::from_str(&row.request) {
        Ok(job) => job,
        Err(e) => {
            return end_without_running(state, row, &BuildJob::default(), &format!("unreadable queue entry: {e}"))
                .await;
        }
    };
    if row.cancel_requested {
        cancel.cancel();
    }
    report(state, &row.build_id, &job, Status::Working, "").await;
    let Some(repo) = state.config.repository(&job.repository).cloned() else {
        let detail = format!("repository `{}` is no longer configured", job.repository);
        return end_without_running(state, row, &job, &detail).await;
    };
    // The commit was fetched when the event was decided; a retry or a manual run may be of a commit the
    // mirror has not seen yet.
    let mirror = match state.mirror(&repo.url, Some(&job.commit_sha)).await {
        Ok(mirror) => mirror,
        Err(detail) => return end_without_running(state, row, &job, &detail).await,
    };
    let request = job.request(&row.build_id, mirror.path(), state);
    let engine = Engine {
        docker: state.docker.clone(),
        store: state.store.clone(),
        registry: state.registry.clone(),
        sandbox: state.sandbox.clone(),
        limits: state.config.limits,
        credentials: state.config.credentials.clone(),
    };
    let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    // The engine writes every line to the build's log files, which the API and the dashboard follow;
    // the events themselves are not needed here.
    let drain = tokio::spawn(async move { while receiver.recv().await.is_some() {} });
    let result = engine.build(&request, events, cancel).await;
    let _ = drain.await;
    match result {
        Ok(build) => {
            report(state, &row.build_id, &job, build.status, &build.status_detail).await;
            build.status
        }
        Err(rejected) => {
            let detail = match &rejected {
                crate::engine::Rejected::Config(diagnostics) => diagnostics.to_string(),
                other => crate::error_chain(other),
            };
            end_without_running(state, row, &job, &detail).await
        }
    }
}

/// A build that could not start: a `FAILURE` record saying why.
async fn end_without_running(state: &Arc<State>, row: &QueuedBuild, job: &BuildJob, detail: &str) -> Status {
    let record = job.decided_record(&row.build_id, &state.config.project, Status::Failure, detail);
    if let Err(e) = state.store.put(record).await {
        tracing::error!(build = %row.build_id, error = %crate::error_chain(&e), "cannot write a record");
    }
    let _ = std::fs::remove_dir_all(state.store.work_dir(&row.build_id));
    let (state, build_id, job, detail) = (state.clone(), row.build_id.clone(), job.clone(), detail.to_string());
    tokio::spawn(async move { report(&state, &build_id, &job, Status::Failure, &detail).await });
    Status::Failure
}
/// A build the server decided to make, before it is queued: its job, how it starts (queued, waiting
/// for approval, or ended at once: skipped, failed before it could start) and the concurrency group it
/// joins, with whether it cancels the group's older builds.
#[derive(Debug)]
pub struct Admitted {
    pub job: BuildJob,
    pub status: Status,
    pub detail: String,
    pub group: Option<(String, bool)>,
}

/// Why a build could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot keep the build's job")]
    Job(#[source] serde_json::Error),
    #[error("cannot queue the build")]
    Store(#[source] DbError),
}

/// Where an admitted build came from: a webhook delivery (queued in the same transaction that ends
/// the delivery, so a replayed delivery can never build twice) or the API (a manual run, a retry).
pub enum Cause<'a> {
    Delivery(&'a str),
    Api,
}

/// The one way a build enters the queue, for webhooks, manual runs and retries: the queue row, then
/// [`accepted`] (the record of a build that does not run, the group's older builds cancelled, the
/// commit status). Returns the new build's id.
pub async fn queue(state: &Arc<State>, admitted: Admitted, cause: Cause<'_>) -> Result<String, QueueError> {
    let Admitted { job, status, detail, group } = admitted;
    let build_id = uuid::Uuid::new_v4().to_string();
    let new = NewBuild {
        build_id: build_id.clone(),
        repository: job.repository.clone(),
        request: serde_json::to_string(&job).map_err(QueueError::Job)?,
        concurrency_group: group.as_ref().map(|(g, _)| g.clone()),
        trigger_name: job.trigger.name.clone().unwrap_or_default(),
        ref_name: job.ref_name(),
        commit_sha: job.commit_sha.clone(),
        delivery_id: match cause {
            Cause::Delivery(id) => Some(id.to_string()),
            Cause::Api => None,
        },
        status: status.as_str().to_string(),
    };
    let stored = match cause {
        Cause::Delivery(id) => {
            let text = format!("build {build_id}: {}", job.trigger.reason);
            state.db.finish_delivery(id, &text, Some(&new)).await
        }
        Cause::Api => state.db.enqueue(&new).await,
    };
    stored.map_err(QueueError::Store)?;
    accepted(state, &build_id, &job, status, &detail, group).await;
    Ok(build_id)
}

/// After a decided delivery (or a manual run, a retry) was enqueued: the record of a build that ended
/// at once, the commit status, the older builds its group cancels, and a nudge to the scheduler.
pub async fn accepted(
    state: &Arc<State>,
    build_id: &str,
    job: &BuildJob,
    status: Status,
    detail: &str,
    group: Option<(String, bool)>,
) {
    if status != Status::Queued {
        let record = job.decided_record(build_id, &state.config.project, status, detail);
        if let Err(e) = state.store.put(record).await {
            tracing::error!(build = %build_id, error = %crate::error_chain(&e), "cannot write a record");
        }
        let _ = std::fs::remove_dir_all(state.store.work_dir(build_id));
        if status.is_terminal() {
            state.metrics.count_build(status);
        }
    }
    if let Some((group, true)) = &group {
        let seq = seq_of(state, build_id).await;
        match state.db.unfinished_in_group(group, build_id).await {
            Ok(older) => {
                for b in older.iter().filter(|b| b.seq < seq) {
                    cancel(state, &b.build_id, &format!("superseded by build {build_id}")).await;
                }
            }
            Err(e) => tracing::error!(error = %crate::error_chain(&e), "cannot read a concurrency group"),
        }
    }
    let text = if status == Status::Skipped { format!("skipped: {detail}") } else { detail.to_string() };
    report(state, build_id, job, status, &text).await;
    state.schedule.notify_one();
}

/// Approves (or rejects) a build that waits for approval. `how` says how it was given (the API, the
/// dashboard, a pull request comment). The approval is audited; the build joins the queue in its
/// original place. A rejection cancels it.
pub async fn decide_approval(
    state: &Arc<State>,
    row: &QueuedBuild,
    who: &str,
    approved: bool,
    how: &str,
) -> Result<(), String> {
    if row.state != "pending" {
        return Err(format!("build {} is not waiting for approval (it is {})", row.build_id, row.status));
    }
    let job: BuildJob = serde_json::from_str(&row.request).unwrap_or_default();
    if !approved {
        cancel(state, &row.build_id, &format!("rejected by {who} {how}")).await;
        return Ok(());
    }
    let audit = crate::io::store::db::AuditEntry {
        seq: 0,
        at: crate::io::store::db::now(),
        actor: who.to_string(),
        action: "approve build".into(),
        environment: String::new(),
        build_id: row.build_id.clone(),
        commit_sha: row.commit_sha.clone(),
        result: "ok".into(),
        detail: format!("{how}; {}", job.trust().reason),
    };
    match state.db.approve_build(&row.build_id, &audit).await {
        Ok(Some(crate::io::store::queue::Approved::Queued)) => {}
        Ok(Some(crate::io::store::queue::Approved::NotPending(now))) => {
            return Err(format!("build {} is not waiting for approval (it is {now})", row.build_id));
        }
        Ok(None) => return Err(format!("no build `{}`", row.build_id)),
        Err(e) => return Err(crate::error_chain(&e)),
    }
    let detail = format!("approved by {who} {how}");
    let queued = state
        .store
        .update(&row.build_id, move |record| {
            // The scheduler may have claimed and started it already: a running build is not sent back.
            if record.status == Status::Pending {
                record.status = Status::Queued;
                record.status_detail = detail;
            }
        })
        .await;
    if let Err(e) = queued {
        tracing::error!(build = %row.build_id, error = %crate::error_chain(&e), "cannot record an approval on the build");
    }
    tracing::info!(build = %row.build_id, by = %who, "approved to run");
    report(state, &row.build_id, &job, Status::Queued, "").await;
    state.schedule.notify_one();
    Ok(())
}

async fn seq_of(state: &Arc<State>, build_id: &str) -> i64 {
    state.db.queued_build(build_id).await.ok().flatten().map_or(i64::MAX, |b| b.seq)
}

/// Cancels a build: a queued one ends `CANCELLED` now; a running one is stopped by its task.
pub async fn cancel(state: &Arc<State>, build_id: &str, why: &str) -> Option<Cancelled> {
    let outcome = match state.db.cancel(build_id).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(build = %build_id, error = %crate::error_chain(&e), "cannot cancel");
            return None;
        }
    };
    match outcome {
        Some(Cancelled::Queued) => {
            let job: BuildJob = state
                .db
                .queued_build(build_id)
                .await
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_str(&b.request).ok())
                .unwrap_or_default();
            let record = job.decided_record(build_id, &state.config.project, Status::Cancelled, why);
            if let Err(e) = state.store.put(record).await {
                tracing::error!(build = %build_id, error = %crate::error_chain(&e), "cannot write a record");
            }
            let _ = std::fs::remove_dir_all(state.store.work_dir(build_id));
            state.metrics.count_build(Status::Cancelled);
            report(state, build_id, &job, Status::Cancelled, why).await;
        }
        Some(Cancelled::Working) => {
            if let Some(token) = state.running.lock().expect("running lock").get(build_id) {
                token.cancel();
            }
        }
        _ => {}
    }
    outcome
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Posts the commit status of a build, when its repository reports statuses. Never fails the caller:
/// the reporter retries and logs.
async fn report(state: &Arc<State>, build_id: &str, job: &BuildJob, status: Status, detail: &str) {
    let Some(repo) = state.config.repository(&job.repository) else { return };
    let (Some(config), Some(token)) = (&repo.statuses, state.keys.statuses.get(&repo.name)) else { return };
    if job.commit_sha.is_empty() {
        return;
    }
    let commit_state = match status {
        Status::Queued | Status::Pending | Status::Working => CommitState::Pending,
        Status::Success | Status::Skipped => CommitState::Success,
        Status::Failure => CommitState::Failure,
        _ => CommitState::Error,
    };
    let untrusted = !job.trust().level.is_trusted();
    let mut description = match status {
        Status::Pending if !detail.is_empty() => detail.to_string(),
        Status::Queued | Status::Pending => "queued".to_string(),
        Status::Working if untrusted => "building in the sandbox".to_string(),
        Status::Working => "building".to_string(),
        Status::Skipped => detail.to_string(),
        _ if detail.is_empty() => status.as_str().to_lowercase(),
        _ => format!("{}: {}", status.as_str().to_lowercase(), detail.lines().next().unwrap_or_default()),
    };
    // The reader of a pull request sees whose code it was: GitHub keeps 140 characters of this.
    if untrusted {
        description = format!("{} (untrusted)", truncate(&description, 126));
    }
    let context = match &job.trigger.name {
        Some(name) => format!("pipewright/{name}"),
        None => "pipewright".to_string(),
    };
    state
        .statuses
        .post(super::status::Post {
            api: config.api.clone(),
            token: token.clone(),
            repository: repo.name.clone(),
            sha: job.commit_sha.clone(),
            state: commit_state,
            description,
            target_url: state.build_url(build_id),
            context,
        })
        .await;
}
