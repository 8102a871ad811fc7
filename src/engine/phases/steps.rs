//! The steps phase: the `waitFor` DAG run in containers, with Cloud Build's failure, timeout and
//! cancellation rules (docs/research/cloudbuild.md §6).
//!
//! One scheduler loop starts every step whose dependencies are done and waits for the next one to end,
//! the build deadline, or a cancel. Each step runs as its own task: pull if needed, create, start, stream
//! masked output, wait, remove. A step that must stop (its own timeout, the build's, a failing sibling, a
//! cancel) gets SIGTERM, then SIGKILL after a grace period.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{OnceCell, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::{BuildEvent, Outcome, PullPolicy};
use crate::executor::janitor::{self, STEP_LABEL};
use crate::executor::{BuildEnv, Executor, StepExit, StepSpec};
use crate::io::docker::{Docker, DockerError, OutputStream};
use crate::io::secrets::SecretValues;
use crate::mask::{LineSplitter, Masker, Secrets};
use crate::plan::{HOME, PlannedStep};
use crate::record::{Build, FailureType, Status, TimeSpan};

/// Why running steps are being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    BuildTimeout,
    Cancelled,
    /// Another step failed the build.
    Aborted,
}

/// What every step run of one build shares: its executor and what it set up, record, events and secrets.
#[derive(Clone)]
pub struct Shared {
    /// The executor's engine (component builds and local pipeline runs use it too).
    pub docker: Docker,
    pub executor: Arc<dyn Executor>,
    /// The build's network, workspace, home and volumes, as the executor made them.
    pub env: BuildEnv,
    pub build_id: String,
    pub record: Arc<Mutex<Build>>,
    pub events: mpsc::UnboundedSender<BuildEvent>,
    pub secrets: SecretValues,
    /// Host directory for step scripts.
    pub scripts: PathBuf,
    pub pull: PullPolicy,
    pub stop_grace: Duration,
    /// The build's disk (size, mount point), to tell a step that failed because it filled it.
    pub disk: Option<(u64, PathBuf)>,
}

/// One run of steps: the build's steps, or the compile step.
pub struct StepsContext {
    shared: Shared,
    /// The steps this run executes; `PlannedStep::index` and `wait_for` index into it.
    steps: Vec<PlannedStep>,
    kind: StepKind,
    log: Arc<Mutex<Logs>>,
    /// Pulls in flight or done, so parallel steps on one image pull it once.
    pulls: Mutex<HashMap<String, Arc<PullOnce>>>,
    /// Container removals still running in the background.
    removals: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::ops::Deref for StepsContext {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// Which steps a run executes: the build file's, or `pipeline.compile` (a step by another name, recorded
/// under `pipeline.compile` and numbered after the build's steps in logs and events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    Build,
    Compile { number: usize },
}

impl StepsContext {
    pub fn new(shared: Shared, kind: StepKind, steps: Vec<PlannedStep>, logs: Logs) -> StepsContext {
        StepsContext {
            shared,
            steps,
            kind,
            log: Arc::new(Mutex::new(logs)),
            pulls: Mutex::new(HashMap::new()),
            removals: Mutex::new(Vec::new()),
        }
    }

    fn number(&self, index: usize) -> usize {
        match self.kind {
            StepKind::Build => index,
            StepKind::Compile { number } => number,
        }
    }

    fn slot<'b>(&self, build: &'b mut Build, index: usize) -> Option<&'b mut crate::record::StepRecord> {
        match self.kind {
            StepKind::Build => build.steps.get_mut(index),
            StepKind::Compile { .. } => build.pipeline.as_mut().and_then(|p| p.compile.as_mut()),
        }
    }
}

/// One image's pull, shared by every step that needs it: the outcome or the error message.
pub type PullOnce = OnceCell<Result<(), String>>;

/// The build's log files.
pub struct Logs {
    pub combined: std::fs::File,
    pub steps: Vec<std::fs::File>,
}

struct StepResult {
    index: usize,
    status: Status,
    exit_code: Option<i64>,
    /// Why the step ended badly, for the build's failure detail.
    detail: Option<String>,
    internal: bool,
    /// False for a step the build stopped before it could start (it stays QUEUED).
    started: bool,
}

/// Where a step is, as its dependents see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    Waiting,
    Started,
    /// `ok`: dependents may run (success, or a failure the step is allowed).
    Done {
        ok: bool,
    },
}

/// Runs the steps of `ctx.plan` until the build succeeds, fails, times out (`deadline`) or `cancel` fires.
///
/// Every step gets a task at once. A task creates its container as soon as all its dependencies have
/// started (so creation overlaps the step before it) and starts it when they have all succeeded.
pub async fn run(ctx: Arc<StepsContext>, deadline: Instant, cancel: CancellationToken) -> Outcome {
    let steps = &ctx.steps;
    let progress = Arc::new(watch::Sender::new(vec![Progress::Waiting; steps.len()]));
    let stop = CancellationToken::new();
    let reason: Arc<Mutex<Option<StopReason>>> = Arc::new(Mutex::new(None));
    let mut tasks: JoinSet<StepResult> = JoinSet::new();
    for step in steps {
        let (ctx, progress, stop, reason) = (ctx.clone(), progress.clone(), stop.child_token(), reason.clone());
        let index = step.index;
        tasks.spawn(async move { step_task(ctx, index, progress, stop, reason).await });
    }
    let mut outcome: Option<Outcome> = None;
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { break };
                let result = match joined {
                    Ok(result) => result,
                    Err(e) => {
                        outcome.get_or_insert(Outcome::InternalError { detail: format!("a step task failed: {e}") });
                        halt(&stop, &reason, StopReason::Aborted);
                        continue;
                    }
                };
                // A step that never started stays QUEUED, as on Cloud Build.
                if !result.started {
                    continue;
                }
                let step = &steps[result.index];
                let ok = match result.status {
                    Status::Success => true,
                    Status::Failure => result.exit_code.is_some_and(|c| step.failure_allowed(c)),
                    _ => false,
                };
                progress.send_modify(|p| p[result.index] = Progress::Done { ok });
                if !ok && outcome.is_none() {
                    let detail = result.detail.unwrap_or_else(|| format!("{} failed", step.label()));
                    outcome = Some(if result.internal {
                        Outcome::InternalError { detail }
                    } else {
                        Outcome::Failure { kind: FailureType::UserBuildStep, detail }
                    });
                    halt(&stop, &reason, StopReason::Aborted);
                }
            }
            _ = tokio::time::sleep_until(deadline), if outcome.is_none() => {
                outcome = Some(Outcome::Timeout);
                halt(&stop, &reason, StopReason::BuildTimeout);
            }
            _ = cancel.cancelled(), if outcome.is_none() => {
                outcome = Some(Outcome::Cancelled);
                halt(&stop, &reason, StopReason::Cancelled);
            }
        }
    }
    let removals: Vec<_> = std::mem::take(&mut *ctx.removals.lock().expect("removals lock"));
    for removal in removals {
        let _ = removal.await;
    }
    outcome.unwrap_or(Outcome::Success)
}

fn halt(stop: &CancellationToken, reason: &Mutex<Option<StopReason>>, why: StopReason) {
    reason.lock().expect("reason lock").get_or_insert(why);
    stop.cancel();
}

fn set_step(ctx: &StepsContext, index: usize, f: impl FnOnce(&mut crate::record::StepRecord)) {
    let mut record = ctx.record.lock().expect("record lock");
    if let Some(step) = ctx.slot(&mut record, index) {
        f(step);
    }
}

/// Waits until every step in `deps` satisfies `ready`; false if the build stopped first.
async fn wait_for(
    progress: &mut watch::Receiver<Vec<Progress>>,
    deps: &[usize],
    ready: impl Fn(Progress) -> bool,
    stop: &CancellationToken,
) -> bool {
    loop {
        if stop.is_cancelled() {
            return false;
        }
        if deps.iter().all(|d| ready(progress.borrow()[*d])) {
            return true;
        }
        tokio::select! {
            changed = progress.changed() => if changed.is_err() { return false },
            _ = stop.cancelled() => return false,
        }
    }
}

async fn step_task(
    ctx: Arc<StepsContext>,
    index: usize,
    progress: Arc<watch::Sender<Vec<Progress>>>,
    stop: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
) -> StepResult {
    let step = &ctx.steps[index];
    let mut rx = progress.subscribe();
    let not_started =
        StepResult { index, status: Status::Queued, exit_code: None, detail: None, internal: false, started: false };
    if !wait_for(&mut rx, &step.wait_for, |p| p != Progress::Waiting, &stop).await {
        return not_started;
    }
    let prepared = prepare(&ctx, step).await;
    if !wait_for(&mut rx, &step.wait_for, |p| p == Progress::Done { ok: true }, &stop).await {
        if let Some(prepared) = prepared {
            let _ = ctx.executor.remove_step(&prepared.id).await;
        }
        return not_started;
    }
    progress.send_modify(|p| p[index] = Progress::Started);
    let _ = ctx.events.send(BuildEvent::StepStarted { index: ctx.number(index) });
    set_step(&ctx, index, |s| s.status = Status::Working);
    let result = execute(&ctx, step, prepared, &stop, &reason).await;
    let status = result.status;
    set_step(&ctx, index, |s| {
        s.status = status;
        s.exit_code = result.exit_code;
        if let Some(timing) = s.timing.as_mut() {
            timing.end_time = Some(crate::record::Timestamp::now());
        }
    });
    let seconds = {
        let mut record = ctx.record.lock().expect("record lock");
        ctx.slot(&mut record, index).and_then(|s| s.timing.as_ref().and_then(TimeSpan::seconds))
    };
    let _ = ctx.events.send(BuildEvent::StepFinished {
        index: ctx.number(index),
        status,
        exit_code: result.exit_code,
        seconds,
    });
    result
}

/// A container created ahead of its step's start, and the image it was created from.
struct Prepared {
    id: String,
    digest: String,
}

/// Creates the step's container early when its image is already here. Anything unusual (no image yet:
/// an earlier step may build it; `--pull always`) is left to the step's start, where it is handled and
/// reported properly.
async fn prepare(ctx: &StepsContext, step: &PlannedStep) -> Option<Prepared> {
    if ctx.pull == PullPolicy::Always {
        return None;
    }
    ctx.executor.prepare_image(&step.image).await.ok()?;
    let digest = ctx.docker.image_digest(&step.image).await.ok()??;
    let spec = container_spec(ctx, step).ok()?;
    let id = ctx.executor.create_step(&spec).await.ok()?;
    Some(Prepared { id, digest })
}

async fn execute(
    ctx: &StepsContext,
    step: &PlannedStep,
    prepared: Option<Prepared>,
    stop: &CancellationToken,
    reason: &Mutex<Option<StopReason>>,
) -> StepResult {
    let index = step.index;
    let fail = |status, detail: String, internal| StepResult {
        index,
        status,
        exit_code: None,
        detail: Some(detail),
        internal,
        started: true,
    };
    let stopped_status = || match *reason.lock().expect("reason lock") {
        Some(StopReason::BuildTimeout) => Status::Timeout,
        _ => Status::Cancelled,
    };

    let pull_start = TimeSpan::started();
    let image = tokio::select! {
        r = ensure_image(ctx, &step.image) => r,
        _ = stop.cancelled() => {
            if let Some(p) = &prepared {
                let _ = ctx.executor.remove_step(&p.id).await;
            }
            return StepResult { index, status: stopped_status(), exit_code: None, detail: None, internal: false, started: true };
        }
    };
    let image = match image {
        Ok(image) => image,
        Err(message) => {
            emit(ctx, index, &format!("error: {message}"));
            return fail(Status::Failure, format!("{}: {message}", step.label()), false);
        }
    };
    {
        let mut record = ctx.record.lock().expect("record lock");
        if image.pulled
            && let Some(s) = ctx.slot(&mut record, index)
        {
            let mut timing = pull_start;
            timing.end_time = Some(crate::record::Timestamp::now());
            s.pull_timing = Some(timing);
        }
        if ctx.kind == StepKind::Build
            && let (Some(slot), Some(digest)) = (record.results.build_step_images.get_mut(index), image.digest.clone())
        {
            *slot = digest;
        }
    }

    // A container made early is used only if its image is still the one the step would run now (an
    // earlier step may have rebuilt that tag).
    let reusable = prepared.filter(|p| Some(&p.digest) == image.digest.as_ref() && !image.pulled);
    let id = match reusable {
        Some(p) => p.id,
        None => {
            let spec = match container_spec(ctx, step) {
                Ok(spec) => spec,
                Err(e) => return fail(Status::Failure, format!("{}: {e}", step.label()), true),
            };
            let _ = ctx.executor.remove_step(&spec.name).await;
            match ctx.executor.create_step(&spec).await {
                Ok(id) => id,
                Err(e) => {
                    let message = crate::error_chain(&e);
                    emit(ctx, index, &format!("error: {message}"));
                    return fail(Status::Failure, format!("{}: {message}", step.label()), false);
                }
            }
        }
    };
    set_step(ctx, index, |s| s.timing = Some(TimeSpan::started()));
    if let Err(e) = ctx.executor.start_step(&id).await {
        let _ = ctx.executor.remove_step(&id).await;
        let message = crate::error_chain(&e);
        emit(ctx, index, &format!("error: {message}"));
        return fail(Status::Failure, format!("{}: {message}", step.label()), false);
    }
    let target = LineTarget { file: index, number: ctx.number(index), id: step.id.clone() };
    let pump = tokio::spawn(pump_output(
        ctx.executor.step_output(&id),
        target,
        ctx.secrets.masks(),
        ctx.log.clone(),
        ctx.events.clone(),
    ));

    let timeout = step.timeout.unwrap_or(Duration::MAX);
    let sleep = tokio::time::sleep(timeout.min(Duration::from_secs(100 * 365 * 24 * 3600)));
    tokio::pin!(sleep);
    let waited = tokio::select! {
        exit = ctx.executor.wait_step(&id) => Waited::Exited(exit),
        _ = &mut sleep => Waited::TimedOut,
        _ = stop.cancelled() => Waited::Stopped,
    };
    if !matches!(waited, Waited::Exited(_)) {
        let _ = ctx.executor.stop_step(&id, ctx.stop_grace).await;
    }
    // The output stream ends with the container; the bound guards against an engine that never closes it.
    let _ = tokio::time::timeout(Duration::from_secs(10), pump).await;
    // Removal is off the critical path: the next step need not wait for it. `run` awaits it.
    let executor = ctx.executor.clone();
    let removal = tokio::spawn(async move {
        let _ = executor.remove_step(&id).await;
    });
    ctx.removals.lock().expect("removals lock").push(removal);

    match waited {
        Waited::Exited(Ok(StepExit { code: 0, .. })) => StepResult {
            index,
            status: Status::Success,
            exit_code: Some(0),
            detail: None,
            internal: false,
            started: true,
        },
        Waited::Exited(Ok(exit)) => {
            let code = exit.code;
            let why = match (exit.oom_killed, ctx.env.limits.memory) {
                (true, Some(limit)) => format!("out of memory (limit {})", crate::limits::size(limit)),
                (true, None) => "out of memory".to_string(),
                _ => format!("step exited with non-zero status: {code}"),
            };
            let full = match &ctx.disk {
                Some((size, mount)) if crate::executor::disk::is_full(mount, *size) => {
                    format!("; the workspace is full (limit {})", crate::limits::size(*size))
                }
                _ => String::new(),
            };
            if exit.oom_killed || !full.is_empty() {
                emit(ctx, index, &format!("error: {why}{full}"));
            }
            StepResult {
                index,
                status: Status::Failure,
                exit_code: Some(code),
                detail: Some(format!("build step {index} \"{}\" failed: {why}{full}", step.image)),
                internal: false,
                started: true,
            }
        }
        Waited::Exited(Err(e)) => fail(Status::Failure, format!("{}: {}", step.label(), crate::error_chain(&e)), true),
        Waited::TimedOut => StepResult {
            index,
            status: Status::Timeout,
            exit_code: None,
            detail: Some(format!("{} timed out after {}", step.label(), crate::record::duration_text(timeout))),
            internal: false,
            started: true,
        },
        Waited::Stopped => StepResult {
            index,
            status: stopped_status(),
            exit_code: None,
            detail: None,
            internal: false,
            started: true,
        },
    }
}

enum Waited {
    Exited(Result<StepExit, DockerError>),
    TimedOut,
    Stopped,
}

/// A step's image once it is present locally.
struct LocalImage {
    /// `sha256:…` (registry digest if known, else the image id).
    digest: Option<String>,
    pulled: bool,
}

/// Makes sure the image is present, pulling it if the policy says so; the error is the step's failure.
async fn ensure_image(ctx: &StepsContext, image: &str) -> Result<LocalImage, String> {
    ctx.executor.prepare_image(image).await.map_err(|e| crate::error_chain(&e))?;
    let digest = ctx.docker.image_digest(image).await.map_err(|e| crate::error_chain(&e))?;
    let pull = match ctx.executor.pull_policy(ctx.pull) {
        PullPolicy::Always => true,
        PullPolicy::Missing => digest.is_none(),
        PullPolicy::Never if digest.is_none() => return Err(DockerError::ImageMissing(image.to_string()).to_string()),
        PullPolicy::Never => false,
    };
    if !pull {
        return Ok(LocalImage { digest, pulled: false });
    }
    let cell = {
        let mut pulls = ctx.pulls.lock().expect("pulls lock");
        pulls.entry(image.to_string()).or_default().clone()
    };
    cell.get_or_init(|| async { ctx.docker.pull(image).await.map_err(|e| e.to_string()) }).await.clone()?;
    let digest = ctx.docker.image_digest(image).await.map_err(|e| crate::error_chain(&e))?;
    Ok(LocalImage { digest, pulled: true })
}

fn container_spec(ctx: &StepsContext, step: &PlannedStep) -> std::io::Result<crate::io::docker::ContainerSpec> {
    let mut env = step.env.clone();
    env.push(format!("HOME={HOME}"));
    env.push("BUILDER_OUTPUT=/builder/outputs".to_string());
    for name in &step.secret_env {
        if let Some(value) = ctx.secrets.get(name) {
            env.push(format!("{name}={value}"));
        }
    }
    let mut files = Vec::new();
    let (entrypoint, cmd) = match &step.script {
        Some(script) => {
            let target = format!("/builder/scripts/step-{}", step.index);
            let host = ctx.scripts.join(format!("step-{}", step.index));
            std::fs::write(&host, script)?;
            set_executable(&host)?;
            files.push((host, target.clone()));
            // Without a shebang Cloud Build runs the script with /bin/sh; running it through sh keeps
            // the user's line numbers in error messages.
            if script.starts_with("#!") {
                (Some(vec![target]), Some(vec![]))
            } else {
                (Some(vec!["/bin/sh".to_string(), target]), Some(vec![]))
            }
        }
        None => (
            step.entrypoint.as_ref().map(|e| vec![e.clone()]),
            (!step.args.is_empty() || step.entrypoint.is_some()).then(|| step.args.clone()),
        ),
    };
    let mut labels = janitor::labels(&ctx.build_id);
    labels.insert(STEP_LABEL.to_string(), step.index.to_string());
    let spec = StepSpec {
        name: format!("pipewright-{}-step-{}", ctx.build_id, ctx.number(step.index)),
        image: step.image.clone(),
        entrypoint,
        cmd,
        env,
        working_dir: step.working_dir.clone(),
        volumes: step.volumes.iter().map(|v| (v.name.clone(), v.path.clone())).collect(),
        files,
        network_aliases: aliases(step),
        labels,
    };
    Ok(ctx.executor.container(&ctx.env, &spec))
}

/// The names other steps reach a step by: `step_<index>`, and its id when that is a DNS label.
pub fn aliases(step: &PlannedStep) -> Vec<String> {
    let mut aliases = vec![format!("step_{}", step.index)];
    aliases.extend(step.id.iter().filter(|id| is_dns_label(id)).cloned());
    aliases
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !s.starts_with('-')
}

fn set_executable(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// A line of pipewright's own about a step (an error before it could run), logged like its output.
fn emit(ctx: &StepsContext, index: usize, line: &str) {
    let target = LineTarget { file: index, number: ctx.number(index), id: ctx.steps[index].id.clone() };
    write_line(&ctx.log, &target, line);
    let _ = ctx.events.send(BuildEvent::StepOutput { index: target.number, line: line.to_string() });
}

/// Where a step's lines go: its own log file (`file`) and, numbered `number`, the combined log.
#[derive(Clone, Debug)]
struct LineTarget {
    file: usize,
    number: usize,
    id: Option<String>,
}

fn write_line(log: &Mutex<Logs>, target: &LineTarget, line: &str) {
    let mut logs = log.lock().expect("log lock");
    let number = target.number;
    let prefix = match &target.id {
        Some(id) => format!("Step #{number} - \"{id}\": "),
        None => format!("Step #{number}: "),
    };
    // Log files are best effort: a full disk must not kill a running build.
    let _ = writeln!(logs.combined, "{prefix}{line}");
    if let Some(file) = logs.steps.get_mut(target.file) {
        let _ = writeln!(file, "{line}");
    }
}

/// Streams a container's output, masked, line by line, to the log files and the event channel.
async fn pump_output(
    output: futures_util::stream::BoxStream<'static, Result<(OutputStream, bytes::Bytes), DockerError>>,
    target: LineTarget,
    secrets: Secrets,
    log: Arc<Mutex<Logs>>,
    events: mpsc::UnboundedSender<BuildEvent>,
) {
    // stdout and stderr are masked separately: a secret split across the two streams is not one write.
    let mut maskers = [Masker::new(secrets.clone()), Masker::new(secrets)];
    let mut splitters = [LineSplitter::default(), LineSplitter::default()];
    let mut stream = output;
    let deliver = |lines: Vec<String>| {
        for line in lines {
            write_line(&log, &target, &line);
            let _ = events.send(BuildEvent::StepOutput { index: target.number, line });
        }
    };
    while let Some(item) = stream.next().await {
        let Ok((which, bytes)) = item else { break };
        let i = usize::from(which == OutputStream::Stderr);
        let released = maskers[i].push(&bytes);
        deliver(splitters[i].push(&released));
    }
    for i in 0..2 {
        let rest = maskers[i].finish();
        let mut lines = splitters[i].push(&rest);
        lines.extend(splitters[i].finish());
        deliver(lines);
    }
}
