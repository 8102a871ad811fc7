//! A pipeline spec run on its own, outside a build (`pipewright run-pipeline`, an environment's `run`
//! at promotion): the backend chosen by a [`RunPlan`], with the token the credential allow-list holds
//! for its origin, waited for with a deadline, and described as a build record would describe it.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{LocalBackend, PipelineRunner, RunState, Submission, local};
use crate::io::credentials::Credentials;
use crate::plan::{RunBackend, RunPlan};
use crate::record::{RunRecord, TimeSpan};

/// A Kubeflow Pipelines backend with the token the allow-list holds for `host`'s origin, if any (the
/// build file names the host, never the token).
pub fn kfp_backend(host: &str, credentials: &Credentials) -> Result<super::kfp::KfpBackend, String> {
    let token = credentials.for_url(host).map_err(|e| e.to_string())?;
    Ok(super::kfp::KfpBackend::new(host, token.map(|t| t.expose().to_string())))
}

/// A Vertex AI backend with the token the allow-list holds for the endpoint it will call.
pub fn vertex_backend(
    endpoint: Option<&str>,
    project: &str,
    location: &str,
    credentials: &Credentials,
) -> Result<super::vertex::VertexBackend, String> {
    let base = super::vertex::endpoint(endpoint, location);
    let token = credentials.for_url(&base).map_err(|e| e.to_string())?;
    Ok(super::vertex::VertexBackend::new(endpoint, project, location, token.map(|t| t.expose().to_string())))
}

pub fn state_text(state: RunState) -> &'static str {
    match state {
        RunState::Pending => "PENDING",
        RunState::Running => "RUNNING",
        RunState::Succeeded => "SUCCEEDED",
        RunState::Failed => "FAILED",
        RunState::Cancelled => "CANCELLED",
        RunState::Skipped => "SKIPPED",
    }
}

/// The pipeline spec (first document; a legacy `{pipelineSpec, runtimeConfig}` wrapper unwrapped) as
/// JSON, for backends that take it inline.
pub fn spec_json(text: &str) -> Result<serde_json::Value, String> {
    let documents = crate::yaml::parse_stream(text).map_err(|e| format!("the spec does not parse: {e}"))?;
    let first = documents.first().ok_or("the spec is empty")?;
    let value = crate::config::extensions::to_json(first);
    Ok(match value.get("pipelineSpec") {
        Some(inner) => inner.clone(),
        None => value,
    })
}

/// `pipewright run-pipeline`: one spec file run on its own, outside a build.
pub struct RunSpecRequest {
    pub spec_path: std::path::PathBuf,
    pub run: RunPlan,
    pub data_dir: std::path::PathBuf,
    /// The tokens the run may carry, each for one origin.
    pub credentials: Credentials,
    /// Where a local run's importers may take files from (`LocalRunner::with_import_roots`).
    pub import_roots: Vec<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunSpecError {
    #[error("cannot read `{path}`: {message}")]
    Read { path: String, message: String },
    #[error("`{path}`: {message}")]
    Spec { path: String, message: String },
    #[error(transparent)]
    Docker(#[from] crate::io::docker::DockerError),
    #[error(transparent)]
    Backend(#[from] super::BackendError),
    #[error("{0}")]
    Credentials(String),
    #[error("an import root: {0}")]
    ImportRoot(#[from] crate::io::host_path::HostPathError),
}

/// Runs a spec file on `request.run.backend`, waiting if asked, and returns what a build would record.
pub async fn run_spec(
    request: &RunSpecRequest,
    cancel: &CancellationToken,
    on_output: Arc<dyn Fn(String, String) + Send + Sync>,
) -> Result<RunRecord, RunSpecError> {
    let label = request.spec_path.display().to_string();
    let text = tokio::fs::read_to_string(&request.spec_path)
        .await
        .map_err(|e| RunSpecError::Read { path: label.clone(), message: e.to_string() })?;
    let spec = spec_json(&text).map_err(|message| RunSpecError::Spec { path: label.clone(), message })?;
    let name = spec["pipelineInfo"]["name"].as_str().unwrap_or("pipeline").to_string();
    let run = &request.run;
    let submission = Submission {
        display_name: name.clone(),
        description: format!("{name}, run by pipewright run-pipeline"),
        pipeline_root: run.pipeline_root.clone().or_else(|| spec["defaultPipelineRoot"].as_str().map(str::to_string)),
        spec,
        spec_text: text,
        parameters: run.parameters.clone(),
        service_account: run.service_account.clone(),
        ..Submission::default()
    };
    let until = tokio::time::Instant::now() + run.timeout.unwrap_or(std::time::Duration::from_secs(24 * 3600));
    match &run.backend {
        RunBackend::Local => {
            let docker = crate::io::docker::Docker::connect().await?;
            let owner = format!("run-{}", uuid::Uuid::new_v4());
            let runner = local::LocalRunner::new(docker.clone(), request.data_dir.join("runs"), owner.clone())
                .with_import_roots(&request.import_roots)?;
            let on_event: Arc<dyn Fn(local::RunEvent) + Send + Sync> = Arc::new(move |event| match event {
                local::RunEvent::Output { task, line } => on_output(task, line),
                local::RunEvent::TaskStarted { task } => on_output(task, "started".into()),
                local::RunEvent::TaskFinished { task, state, .. } => on_output(task, format!("{state:?}")),
            });
            let record = launch_alone(&LocalBackend::new(runner, on_event), run, &submission, until, cancel).await;
            // Whatever the run left (it was cancelled mid-task, say) goes with it.
            let _ = crate::executor::janitor::remove_build(&docker, &owner).await;
            record
        }
        RunBackend::Kfp { host } => {
            let backend = kfp_backend(host, &request.credentials).map_err(RunSpecError::Credentials)?;
            launch_alone(&backend, run, &submission, until, cancel).await
        }
        RunBackend::Vertex { project, location, endpoint } => {
            let backend = vertex_backend(endpoint.as_deref(), project, location, &request.credentials)
                .map_err(RunSpecError::Credentials)?;
            launch_alone(&backend, run, &submission, until, cancel).await
        }
    }
}

async fn launch_alone(
    runner: &impl PipelineRunner,
    run: &RunPlan,
    submission: &Submission,
    until: tokio::time::Instant,
    cancel: &CancellationToken,
) -> Result<RunRecord, RunSpecError> {
    let timing = TimeSpan::started();
    let started = runner.start(submission).await?;
    let mut record = super::started_record(runner.backend(), &started, submission);
    if !run.wait {
        return Ok(record);
    }
    let finished = runner.wait(&started, until, cancel).await?;
    super::record_finished(&mut record, &finished, timing);
    record.metrics = finished.metrics;
    Ok(record)
}
