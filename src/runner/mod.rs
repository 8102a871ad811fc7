//! Run backends (docs/SPEC.md §9): one [`PipelineRunner`] trait, three implementations. `local` runs a compiled
//! pipeline with Docker on this machine; `kfp` and `vertex` launch it on Kubeflow Pipelines or Vertex AI
//! and poll it. `ir` and `cel` are the pure parts the local runner stands on.
//!
//! A runner starts a run, then waits for it until a deadline or a cancel; either ends the run (the
//! remote one is terminated through its API; the local one's containers are stopped).

pub mod kfp;
pub mod local;
mod standalone;
pub mod vertex;

pub use pipewright_core::kfp::{cel, ir};

pub use standalone::{RunSpecError, RunSpecRequest, kfp_backend, run_spec, spec_json, state_text, vertex_backend};

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::record::{RunRecord, RunTaskRecord, TimeSpan};
/// A run's state, across backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Skipped,
}

impl RunState {
    pub fn is_terminal(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Failed | RunState::Cancelled | RunState::Skipped)
    }
}

/// What a backend needs to start a run.
#[derive(Clone, Debug, Default)]
pub struct Submission {
    pub display_name: String,
    pub description: String,
    /// The pipeline spec (first document) as JSON, for inline submission.
    pub spec: serde_json::Value,
    /// The spec as text, for the local runner.
    pub spec_text: String,
    pub parameters: serde_json::Map<String, serde_json::Value>,
    pub pipeline_root: Option<String>,
    /// `(pipeline_id, pipeline_version_id)` of this build's upload to Kubeflow Pipelines.
    pub kfp_version: Option<(String, String)>,
    /// The Artifact Registry template this build uploaded (`…/<package>/sha256:…`).
    pub template_uri: Option<String>,
    pub service_account: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A started run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    pub id: String,
    pub url: Option<String>,
}

/// One poll of a remote run.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteStatus {
    pub state: RunState,
    /// The backend's own word for it (`RUNNING`, `PIPELINE_STATE_RUNNING`).
    pub raw_state: String,
    pub error: Option<String>,
    pub metrics: std::collections::BTreeMap<String, f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The service could not be reached or answered an error (src/io/http.rs).
    #[error(transparent)]
    Http(#[from] crate::io::http::HttpError),
    #[error("{message}")]
    Config { message: String },
}

/// How a run ended (or where it was when the build stopped waiting).
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub state: RunState,
    pub error: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    pub tasks: Vec<RunTaskRecord>,
    /// The wait hit its deadline and the run was stopped.
    pub timed_out: bool,
}

/// The record of a run `backend` just started (its state `PENDING` until it is waited for).
pub fn started_record(backend: &str, started: &Started, submission: &Submission) -> RunRecord {
    RunRecord {
        backend: backend.to_string(),
        id: started.id.clone(),
        state: "PENDING".into(),
        url: started.url.clone(),
        parameters: submission.parameters.clone(),
        ..RunRecord::default()
    }
}

/// How the run ended, into its record: state, error, tasks and timing (which metrics it keeps is the
/// caller's rule).
pub fn record_finished(record: &mut RunRecord, finished: &Finished, mut timing: TimeSpan) {
    timing.end_time = Some(crate::record::Timestamp::now());
    record.state = standalone::state_text(finished.state).into();
    record.error = finished.error.clone();
    record.tasks = finished.tasks.clone();
    record.timing = Some(timing);
}

/// A place pipelines run.
pub trait PipelineRunner: Send + Sync {
    /// `local`, `kfp`, `vertex`.
    fn backend(&self) -> &'static str;
    fn start(&self, submission: &Submission) -> impl Future<Output = Result<Started, BackendError>> + Send;
    /// Waits for the run to end; at `until` or on `cancel` the run is stopped first.
    fn wait(
        &self,
        started: &Started,
        until: Instant,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<Finished, BackendError>> + Send;
}

/// A run on a remote service, seen through polls (`kfp.rs`, `vertex.rs` implement it).
trait Remote: Send + Sync {
    fn name(&self) -> &'static str;
    fn create(&self, submission: &Submission) -> impl Future<Output = Result<Started, BackendError>> + Send;
    fn status(&self, started: &Started) -> impl Future<Output = Result<RemoteStatus, BackendError>> + Send;
    fn stop(&self, started: &Started) -> impl Future<Output = Result<(), BackendError>> + Send;
    fn poll_interval(&self) -> PollInterval;
}

/// Every remote service is a runner the same way: create, then poll with backoff until done.
impl<R: Remote> PipelineRunner for R {
    fn backend(&self) -> &'static str {
        self.name()
    }
    async fn start(&self, submission: &Submission) -> Result<Started, BackendError> {
        self.create(submission).await
    }
    async fn wait(
        &self,
        started: &Started,
        until: Instant,
        cancel: &CancellationToken,
    ) -> Result<Finished, BackendError> {
        poll(self, started, until, cancel, self.poll_interval()).await
    }
}

/// Poll timing: exponential backoff from `first` to `max`.
#[derive(Clone, Copy, Debug)]
pub struct PollInterval {
    pub first: Duration,
    pub max: Duration,
}

impl PollInterval {
    /// 2 s growing to 30 s; `PIPEWRIGHT_POLL_MS` sets the first interval (tests use a few ms).
    pub fn from_env() -> PollInterval {
        let first = std::env::var("PIPEWRIGHT_POLL_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(2), Duration::from_millis);
        PollInterval { first, max: Duration::from_secs(30).max(first) }
    }
}

/// Polls until the run is terminal, or stops it at `until` / on `cancel` and then follows it (briefly)
/// to its final state.
async fn poll<R: Remote>(
    remote: &R,
    started: &Started,
    until: Instant,
    cancel: &CancellationToken,
    interval: PollInterval,
) -> Result<Finished, BackendError> {
    let mut wait = interval.first;
    loop {
        let status = remote.status(started).await?;
        if status.state.is_terminal() {
            return Ok(finished(status, false));
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::time::sleep_until(until) => return stop_and_follow(remote, started, interval, true).await,
            _ = cancel.cancelled() => return stop_and_follow(remote, started, interval, false).await,
        }
        wait = (wait.mul_f64(1.5)).min(interval.max);
    }
}

async fn stop_and_follow<R: Remote>(
    remote: &R,
    started: &Started,
    interval: PollInterval,
    timed_out: bool,
) -> Result<Finished, BackendError> {
    remote.stop(started).await?;
    // Cancellation is asynchronous on both services; follow it for a little while.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = remote.status(started).await?;
    while !last.state.is_terminal() && Instant::now() < deadline {
        tokio::time::sleep(interval.first.min(Duration::from_secs(2))).await;
        last = remote.status(started).await?;
    }
    let mut done = finished(last, timed_out);
    if !done.state.is_terminal() {
        done.state = RunState::Cancelled;
    }
    Ok(done)
}

fn finished(status: RemoteStatus, timed_out: bool) -> Finished {
    Finished { state: status.state, error: status.error, metrics: status.metrics, tasks: Vec::new(), timed_out }
}

/// The local runner behind the [`PipelineRunner`] trait: `start` spawns the run, `wait` awaits it.
pub struct LocalBackend {
    runner: Arc<local::LocalRunner>,
    on_event: Arc<dyn Fn(local::RunEvent) + Send + Sync>,
    runs: Mutex<BTreeMap<String, LocalHandle>>,
}

struct LocalHandle {
    task: tokio::task::JoinHandle<Result<local::LocalRun, local::RunError>>,
    cancel: CancellationToken,
}

impl LocalBackend {
    pub fn new(runner: local::LocalRunner, on_event: Arc<dyn Fn(local::RunEvent) + Send + Sync>) -> LocalBackend {
        LocalBackend { runner: Arc::new(runner), on_event, runs: Mutex::new(BTreeMap::new()) }
    }
}

impl PipelineRunner for LocalBackend {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn start(&self, submission: &Submission) -> Result<Started, BackendError> {
        let id = uuid::Uuid::new_v4().to_string();
        let cancel = CancellationToken::new();
        let (runner, on_event, token) = (self.runner.clone(), self.on_event.clone(), cancel.clone());
        let (spec, label, parameters) =
            (submission.spec_text.clone(), submission.display_name.clone(), submission.parameters.clone());
        let task =
            tokio::spawn(async move { runner.run(&spec, &label, &parameters, token, move |e| on_event(e)).await });
        self.runs.lock().expect("runs lock").insert(id.clone(), LocalHandle { task, cancel });
        Ok(Started { id, url: None })
    }

    async fn wait(
        &self,
        started: &Started,
        until: Instant,
        cancel: &CancellationToken,
    ) -> Result<Finished, BackendError> {
        let Some(mut handle) = self.runs.lock().expect("runs lock").remove(&started.id) else {
            return Err(BackendError::Config { message: format!("no local run `{}`", started.id) });
        };
        let (joined, timed_out) = tokio::select! {
            joined = &mut handle.task => (joined, false),
            _ = tokio::time::sleep_until(until) => {
                handle.cancel.cancel();
                ((&mut handle.task).await, true)
            }
            _ = cancel.cancelled() => {
                handle.cancel.cancel();
                ((&mut handle.task).await, false)
            }
        };
        let run = joined
            .map_err(|e| BackendError::Config { message: format!("the local run stopped: {e}") })?
            .map_err(|e| BackendError::Config { message: crate::error_chain(&e) })?;
        let state = run.state;
        let tasks = run
            .tasks
            .iter()
            .map(|t| RunTaskRecord {
                name: t.name.clone(),
                state: serde_json::to_value(t.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                timing: t.started.map(|start| TimeSpan { start_time: Some(start), end_time: t.finished }),
                exit_code: t.exit_code,
                error: t.error.clone(),
            })
            .collect();
        Ok(Finished { state, error: run.error, metrics: run.metrics, tasks, timed_out })
    }
}
