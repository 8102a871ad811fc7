//! The embedded local backend: runs a compiled pipeline with Docker on this machine, as the KFP backend
//! would run it (`docs/research/kfp.md` §3.3, §3.5; docs/SPEC.md §9), not as kfp.local does where the two differ.
//!
//! What a task sees: the ExecutorInput JSON for `{{$}}` and every string placeholder, the IR `command`
//! as its entrypoint, the pipeline root bind-mounted at the same absolute path so an artifact's URI
//! is its path, output parameter files and `executor_output.json` under its own directory
//! (`<root>/<run id>/<task path>/`). After it exits, the ExecutorOutput file wins for the parameters
//! it names, every other declared output parameter must exist as a file, and every declared output
//! artifact is registered (metadata merged from ExecutorOutput).
//!
//! Layout: a task's path is its DAG tasks joined by `/`, with the iterations of enclosing loops after
//! its name (`for-loop-2/print-op[1]`); its directory `<root>/<run id>/<path>/` holds
//! `parameters/<name>`, `artifacts/<name>` and `executor_output.json` (the backend writes parameters
//! to `/tmp/kfp/outputs`; here a run keeps everything in one place). `{{$.pipeline_root}}` is the
//! run's directory.
//!
//! What a task may touch (docs/THREATS.md property 6): its own directory, mounted read-write, and its input
//! artifacts, each mounted read-only at its path; nothing else of the run, of other runs or of the
//! host. Every path is a [`crate::io::host_path`] path: task and output names are single segments (the IR
//! reader refuses others), an ExecutorOutput URI must lie in the task's own directory, and a link a
//! task leaves behind is never followed when the runner reads its outputs or mounts them downstream.
//!
//! Decisions where the backend was unclear or has no local equivalent:
//! - A failing task fails the run. Running siblings are stopped (SIGTERM, SIGKILL after the grace
//!   period) and reported `CANCELLED`; tasks not started are `NOT_TRIGGERED`, except those with
//!   `ALL_UPSTREAM_TASKS_COMPLETED` (exit handlers, `ignore_upstream_failure`), which still run. The
//!   backend (Argo) lets running siblings finish; stopping them ends a failed run sooner, and nothing
//!   downstream could use their results.
//! - A cancelled run starts nothing more, exit handlers included (Argo's "terminate").
//! - `taskFinalStatus.state` is the backend's execution state: `COMPLETE`, `FAILED` or `CANCELED`; its
//!   `error.message` carries the failure (the backend leaves it empty).
//! - Images are never pulled: a missing image is the task's error.
//! - Caching is off; `defaultPipelineRoot`, resources, `TaskConfig` inputs and platform specs have no
//!   local effect. Retries follow `retryPolicy` (count and backoff).
//! - Numbers: cel-go's typing (an int compared with a double is an error), protobuf's JSON printing
//!   (`2`, not `2.0`, in `{{$}}` and parameter placeholders).
//! - Metrics: numbers in the metadata of `system.Metrics` / `system.ClassificationMetrics` output
//!   artifacts; when that metadata holds none, the artifact file if it is a JSON object (its numbers).
//!   A metric is named by its key, or `<task path>/<key>` when several artifacts report that key.

mod container;
mod dag;
mod inputs;
mod outputs;
mod placeholders;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::RunState;
use super::ir::{IrError, Pipeline};
use crate::io::docker::Docker;
use crate::io::host_path::{HostPathError, Rooted, Segment};
use crate::record::Timestamp;

/// The label naming the local run a container belongs to (besides the owning build's labels).
pub const RUN_LABEL: &str = "pipewright.run";
/// The label naming the task path a container runs.
pub const TASK_LABEL: &str = "pipewright.task";

/// Runs compiled pipelines with the local Docker engine.
pub struct LocalRunner {
    docker: Docker,
    /// Host directory under which each run gets `<run id>/`.
    root: PathBuf,
    /// The build whose labels every container carries, so the build's cleanup finds them.
    build_id: String,
    stop_grace: Duration,
    /// Most containers running at once; `None`: the pipeline's task count.
    parallelism: Option<usize>,
    /// Where an importer may take a local file from (besides the run's own directory): a build's
    /// workspace, the directory `run-pipeline` was started in. None: no local file is imported.
    import_roots: Vec<Rooted>,
}

/// A finished (or stopped) run.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalRun {
    pub run_id: String,
    /// `SUCCEEDED`, `FAILED` or `CANCELLED`: a local run is returned when it has ended.
    pub state: RunState,
    pub tasks: Vec<TaskResult>,
    pub metrics: BTreeMap<String, f64>,
    /// The root DAG's output parameters.
    pub outputs: BTreeMap<String, Value>,
    /// Why the run did not succeed, naming the failing task.
    pub error: Option<String>,
    /// The run's directory on the host: `<root>/<run id>`.
    pub dir: PathBuf,
}

impl LocalRun {
    pub fn task(&self, name: &str) -> Option<&TaskResult> {
        self.tasks.iter().find(|t| t.name == name)
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// The task's path: DAG tasks joined by `/`, loop iterations as `[i]` after the name
    /// (`for-loop-2/print-op[1]`).
    pub name: String,
    pub state: TaskState,
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    Succeeded,
    Failed,
    /// Its `triggerPolicy.condition` was false.
    Skipped,
    /// Stopped while running, or not started because the run was cancelled.
    Cancelled,
    /// Not started: an upstream task failed or did not run.
    NotTriggered,
}

/// Progress of a run, for the CLI and logs.
#[derive(Clone, Debug, PartialEq)]
pub enum RunEvent {
    TaskStarted {
        task: String,
    },
    TaskFinished {
        task: String,
        state: TaskState,
        exit_code: Option<i64>,
    },
    /// One line of a task's output (stdout and stderr alike).
    Output {
        task: String,
        line: String,
    },
}

/// Why a run could not start. Failures of tasks are not errors: they are in [`LocalRun`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Ir(#[from] IrError),
    #[error("{label}: unknown pipeline parameter `{name}`\n\nhint: {}", known_names(known))]
    UnknownParameter { label: String, name: String, known: Vec<String> },
    #[error("{label}: pipeline parameter `{name}` must be {expected}, got {found}")]
    ParameterType { label: String, name: String, expected: &'static str, found: String },
    #[error("{label}: pipeline parameter `{name}` has no default and no value was given")]
    MissingParameter { label: String, name: String },
    #[error("cannot create the run directory under `{}`", path.display())]
    Root {
        path: PathBuf,
        #[source]
        source: HostPathError,
    },
}

fn known_names(known: &[String]) -> String {
    match known {
        [] => "the pipeline takes no parameters".to_string(),
        names => format!(
            "the pipeline's parameters are {}",
            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ),
    }
}

impl LocalRunner {
    pub fn new(docker: Docker, root: PathBuf, build_id: String) -> LocalRunner {
        LocalRunner {
            docker,
            root,
            build_id,
            stop_grace: Duration::from_secs(5),
            parallelism: None,
            import_roots: Vec::new(),
        }
    }

    /// The directories an importer may take a local file from (a spec is input: an `artifactUri`
    /// of `/var/run/docker.sock` or `/etc` must not be mounted into a task, docs/THREATS.md property 6).
    pub fn with_import_roots(mut self, roots: &[PathBuf]) -> Result<LocalRunner, HostPathError> {
        self.import_roots = roots.iter().map(Rooted::root).collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// How long a stopped task gets between SIGTERM and SIGKILL (default 5 s).
    pub fn with_stop_grace(mut self, grace: Duration) -> LocalRunner {
        self.stop_grace = grace;
        self
    }

    /// Most containers running at once (default: the pipeline's number of tasks).
    pub fn with_parallelism(mut self, limit: usize) -> LocalRunner {
        self.parallelism = Some(limit.max(1));
        self
    }

    /// Runs the pipeline to its end (or until `cancel`). `parameters` override root input defaults
    /// (type-checked; unknown names are an error). `on_event` receives task started/finished and
    /// output lines.
    pub async fn run(
        &self,
        spec: &str,
        label: &str,
        parameters: &Map<String, Value>,
        cancel: CancellationToken,
        on_event: impl Fn(RunEvent) + Send + Sync,
    ) -> Result<LocalRun, RunError> {
        let pipeline = Pipeline::parse(spec, label)?;
        let root_inputs = inputs::root_parameters(&pipeline, label, parameters)?;
        let root_error = |source| RunError::Root { path: self.root.clone(), source };
        let root = Rooted::root(&self.root).map_err(root_error)?;
        let run_id = uuid::Uuid::new_v4().to_string();
        let dir = root.join(&Segment::new(&run_id).expect("a UUID is a segment"));
        create_dir(&dir).map_err(root_error)?;
        let created = Timestamp::now();
        let run = dag::ActiveRun {
            runner: self,
            pipeline: &pipeline,
            ids: RunIds {
                job_name: format!("{}-{}", pipeline.name, compact_time(&created)),
                run_id: run_id.clone(),
                created_utc: rfc3339(&created),
            },
            dir: dir.clone(),
            slots: tokio::sync::Semaphore::new(self.parallelism.unwrap_or(pipeline.task_count().max(1))),
            results: Mutex::new(Vec::new()),
            metrics: Mutex::new(Vec::new()),
            events: &on_event,
            sequence: AtomicUsize::new(0),
        };
        let finished = run.root(root_inputs, &cancel).await;
        let state = match finished.state {
            TaskState::Succeeded | TaskState::Skipped => RunState::Succeeded,
            TaskState::Cancelled if cancel.is_cancelled() => RunState::Cancelled,
            _ => RunState::Failed,
        };
        let tasks = run.results.into_inner().unwrap_or_else(|e| e.into_inner());
        let metrics = outputs::name_metrics(run.metrics.into_inner().unwrap_or_else(|e| e.into_inner()));
        let error = match state {
            RunState::Succeeded => None,
            RunState::Cancelled => Some("the run was cancelled".to_string()),
            _ => Some(finished.error.unwrap_or_else(|| "the run failed".to_string())),
        };
        Ok(LocalRun {
            run_id,
            state,
            tasks,
            metrics,
            outputs: finished.outputs.parameters.into_iter().collect(),
            error,
            dir: dir.path().to_path_buf(),
        })
    }
}

/// The run's names, for placeholders and `taskFinalStatus`.
#[derive(Clone, Debug)]
struct RunIds {
    /// `{{$.pipeline_job_name}}` and `…resource_name`: `<pipeline>-<yyyymmddhhmmss>`.
    job_name: String,
    /// `{{$.pipeline_job_uuid}}`, also the run's directory name.
    run_id: String,
    created_utc: String,
}

/// An artifact as an executor sees it (`RuntimeArtifact`).
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Artifact {
    name: String,
    #[serde(rename = "type")]
    artifact_type: Value,
    uri: String,
    metadata: Map<String, Value>,
}

impl Artifact {
    fn schema_title(&self) -> Option<&str> {
        self.artifact_type.get("schemaTitle").and_then(Value::as_str)
    }
}

/// Parameter values and artifacts: a task's inputs or outputs.
#[derive(Clone, Debug, Default, PartialEq)]
struct Values {
    parameters: BTreeMap<String, Value>,
    artifacts: BTreeMap<String, Vec<Artifact>>,
}

/// A directory every container user can write: images often run as a non-root user. `path` is
/// checked for links before and after it is made, so the mode never lands on a directory outside.
fn create_dir(path: &Rooted) -> Result<(), HostPathError> {
    use std::os::unix::fs::PermissionsExt;
    path.create_dir_all()?;
    std::fs::set_permissions(path.path(), std::fs::Permissions::from_mode(0o777))
        .map_err(|source| HostPathError::Io { path: path.path().to_path_buf(), source })
}

fn rfc3339(t: &Timestamp) -> String {
    t.0.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn compact_time(t: &Timestamp) -> String {
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
    t.0.format(&format).unwrap_or_default()
}
