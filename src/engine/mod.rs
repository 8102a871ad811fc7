//! Runs a build: source → config → plan → steps → record.
//!
//! The engine reports progress as [`BuildEvent`]s on a channel and never prints. A build that cannot start
//! (bad source, bad config, missing secret, no Docker) is [`Rejected`] with nothing left behind; a build
//! that started always ends with a record in a terminal state and its containers, volumes, network and
//! workspace removed, whatever happened (failure, timeout, Ctrl-C).

mod event;
mod phases;
mod request;
pub mod rewrite;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::executor::disk::{Disk, DiskError};
use crate::executor::{DockerExecutor, Executor, ExecutorError, SandboxExecutor};
use crate::io::credentials::Credentials;
use crate::io::docker::Docker;
use crate::io::registry::Registry;
use crate::io::secrets::SecretValues;
use crate::io::source::{self, Source, Workspace};
use crate::io::store::{Store, StoreError};
use crate::limits::Limits;
use crate::plan::{self, BuildContext, BuildPlan};
use crate::record::{
    Build, FailureInfo, FailureType, GitSource, SourceProvenance, SourceRecord, Status, StepRecord, TimeSpan,
    Timestamp, VolumeRecord, Warning, duration_text,
};
use crate::trust::Trust;

pub use crate::executor::PullPolicy;
pub use event::{BuildEvent, Outcome};
pub use phases::components::hash_tag;
pub use phases::steps::StepKind;
pub use request::{BuildRequest, Origin, Rejected};

pub struct Engine {
    pub docker: Docker,
    pub store: Store,
    pub registry: Registry,
    /// Where untrusted builds run, or why they cannot.
    pub sandbox: Sandbox,
    /// The most any build gets (the server's `limits:`); a build asks through its machine type.
    pub limits: Limits,
    /// The tokens uploads and runs of trusted builds may carry, each for one origin.
    pub credentials: Credentials,
}

/// The sandbox executor, when this host has one.
#[derive(Clone)]
pub enum Sandbox {
    Ready { executor: Arc<SandboxExecutor>, limits: Limits },
    Unavailable { reason: String, hint: &'static str },
}

impl Sandbox {
    /// No sandbox configured: untrusted builds are refused with the reason.
    pub fn none() -> Sandbox {
        Sandbox::Unavailable {
            reason: "no sandbox runtime: this pipewright has no sandbox engine configured".into(),
            hint: "install runsc and start the sandbox engine with `steps/sandbox/start.sh` (README: Running untrusted builds)",
        }
    }
}

impl Engine {
    /// An engine with no sandbox and no limits beyond what builds ask for.
    pub fn new(docker: Docker, store: Store, registry: Registry) -> Engine {
        Engine {
            docker,
            store,
            registry,
            sandbox: Sandbox::none(),
            limits: Limits::default(),
            credentials: Credentials::none(),
        }
    }

    /// The executor a build of `trust` runs on, and the most it may use.
    fn executor(&self, trust: Trust) -> Result<(Arc<dyn Executor>, Limits), Rejected> {
        match (trust, &self.sandbox) {
            (Trust::Trusted, _) => Ok((Arc::new(DockerExecutor::new(self.docker.clone())), self.limits)),
            (Trust::Untrusted, Sandbox::Ready { executor, limits }) => {
                let (both, _) = limits.capped(&self.limits);
                Ok((executor.clone(), both))
            }
            (Trust::Untrusted, Sandbox::Unavailable { reason, hint }) => {
                Err(Rejected::NoSandbox { reason: reason.clone(), hint })
            }
        }
    }

    /// Runs one build to its end. `cancel` stops it (Ctrl-C, a cancel request): the record then says
    /// CANCELLED.
    pub async fn build(
        &self,
        request: &BuildRequest,
        events: mpsc::UnboundedSender<BuildEvent>,
        cancel: CancellationToken,
    ) -> Result<Build, Rejected> {
        let build_id = request.build_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (executor, caps) = self.executor(request.trust.level)?;
        self.store.create(&build_id)?;
        let work = self.store.work_dir(&build_id);
        // A kept workspace stays a plain directory: a disk would stay mounted after the build.
        let wants_disk = !(request.keep_workspace && request.trust.level.is_trusted());
        let disk = match if wants_disk { self.disk(&work, &caps, request.trust.level).await } else { Ok(None) } {
            Ok(disk) => disk,
            Err(e) => {
                let _ = std::fs::remove_dir_all(self.store.build_dir(&build_id));
                remove_work_dir(&work, None).await;
                return Err(e);
            }
        };
        let result = self.run_in(&build_id, &work, request, executor, caps, disk.as_ref(), events, cancel).await;
        let keep = request.keep_workspace && result.is_ok() && disk.is_none();
        if !keep {
            remove_work_dir(&work, disk).await;
        }
        if result.is_err() {
            // A rejected build leaves nothing: no record, no logs.
            let _ = std::fs::remove_dir_all(self.store.build_dir(&build_id));
        }
        result
    }

    /// The build's disk (its workspace limit), made before the checkout so everything lands on it.
    /// Without root, a trusted build goes on without one (the record says so); an untrusted one does not.
    async fn disk(&self, work: &std::path::Path, caps: &Limits, trust: Trust) -> Result<Option<Disk>, Rejected> {
        let size = caps.workspace.map_or(DEFAULT_DISK_BYTES, |cap| cap.min(DEFAULT_DISK_BYTES));
        match Disk::create(work, size).await {
            Ok(disk) => Ok(Some(disk)),
            // A trusted build is not stopped by a host that cannot make disks (no root, no mkfs.ext4,
            // no loop devices): it runs without the limit, and the record says so.
            Err(e) if trust.is_trusted() => {
                match e {
                    DiskError::NotRoot { .. } => tracing::debug!(error = %e, "building without a workspace limit"),
                    _ => tracing::warn!(error = %e, "building without a workspace limit"),
                }
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_in(
        &self,
        build_id: &str,
        work: &std::path::Path,
        request: &BuildRequest,
        executor: Arc<dyn Executor>,
        caps: Limits,
        disk: Option<&Disk>,
        events: mpsc::UnboundedSender<BuildEvent>,
        cancel: CancellationToken,
    ) -> Result<Build, Rejected> {
        let mut record = Build::new(build_id.to_string(), request.project_id.clone());
        record.owner = Some(crate::executor::janitor::owner());
        record.trust = Some(request.trust.clone());
        record.executor = executor.kind().as_str().to_string();
        let fetch = TimeSpan::started();
        let checkout = work.join("checkout");
        let spec = request.source.clone();
        let dest = checkout.clone();
        let mut source = tokio::task::spawn_blocking(move || source::checkout(&spec, &dest)).await.map_err(|e| {
            Rejected::Io { path: checkout.display().to_string(), source: std::io::Error::other(e.to_string()) }
        })??;
        if let Some(origin) = &request.origin {
            origin.apply(&mut source);
        }
        let mut fetch = fetch;
        fetch.end_time = Some(Timestamp::now());
        record.timing.insert("FETCHSOURCE".into(), fetch);

        let root = source::source_root(&checkout, &source);
        let workspace =
            Workspace::new(&root).map_err(|e| Rejected::Io { path: root.display().to_string(), source: e })?;
        let (config_path, bytes) = read_config(&workspace, request.config_path.as_deref())?;
        let label = config_label(&source, &config_path);
        let loaded = config::load(&label, &bytes, &request.overrides).map_err(Rejected::Config)?;
        let context = BuildContext {
            build_id: build_id.to_string(),
            project_id: request.project_id.clone(),
            location: plan::LOCATION.into(),
            source: source.clone(),
            config_path: config_path.clone(),
            overrides: request.overrides.clone(),
            trigger_name: request.trigger.as_ref().and_then(|t| t.name.clone()),
            pull_request: request.pull_request.clone(),
        };
        let plan = plan::plan(&label, &loaded.config, &context).map_err(Rejected::Config)?;
        // Untrusted code gets no secret, whatever the request holds: their variables are simply not set.
        let secrets = match request.trust.level {
            Trust::Trusted => {
                SecretValues::resolve(plan.secret_names.iter(), &request.secrets).map_err(Rejected::Secrets)?
            }
            Trust::Untrusted => SecretValues::default(),
        };

        fill_record(&mut record, &plan, &source, &config_path);
        record.trigger = request.trigger.clone();
        if !request.trust.level.is_trusted() && !plan.secret_names.is_empty() {
            let names: Vec<&str> = plan.secret_names.iter().map(String::as_str).collect();
            record.warnings.push(Warning {
                text: format!("untrusted builds get no secrets: {} not set", names.join(", ")),
                priority: "WARNING".into(),
            });
        }
        let (mut limits, capped) = plan.limits.capped(&caps);
        for note in capped {
            record.warnings.push(Warning { text: format!("limits: {note}"), priority: "WARNING".into() });
        }
        match disk {
            Some(disk) => {
                let wanted = limits.workspace.unwrap_or(disk.size());
                if wanted > disk.size() {
                    record.warnings.push(Warning {
                        text: format!(
                            "limits: the build asks for a {} workspace; this server gives at most {}",
                            crate::limits::size(wanted),
                            crate::limits::size(disk.size())
                        ),
                        priority: "WARNING".into(),
                    });
                }
                limits.workspace = Some(disk.size());
            }
            None => {
                limits.workspace = None;
                record.warnings.push(Warning {
                    text: "limits: the workspace size is not enforced (a disk of its own needs root and mkfs.ext4, and a kept workspace has none)".into(),
                    priority: "INFO".into(),
                });
            }
        }
        record.limits = Some(limits);
        for warning in loaded.warnings.warnings() {
            let text = warning.render(&loaded.warnings.file);
            record.warnings.push(Warning { text: text.clone(), priority: "INFO".into() });
            let _ = events.send(BuildEvent::Warning(text));
        }
        let plan = Arc::new(plan);
        let scripts = work.join("scripts");
        std::fs::create_dir_all(&scripts)
            .map_err(|source| Rejected::Io { path: scripts.display().to_string(), source })?;
        let run = BuildRun {
            engine: self,
            plan: plan.clone(),
            record: Arc::new(Mutex::new(record)),
            workspace,
            scripts,
            secrets,
            request,
            source,
            executor,
            limits,
            work: work.to_path_buf(),
            disk_full: disk.map(|d| (d.size(), work.to_path_buf())),
        };
        Ok(run.execute(events, cancel).await)
    }
}

/// One started build: from here on it always ends with a record.
struct BuildRun<'a> {
    engine: &'a Engine,
    plan: Arc<BuildPlan>,
    record: Arc<Mutex<Build>>,
    workspace: Workspace,
    scripts: PathBuf,
    secrets: SecretValues,
    request: &'a BuildRequest,
    source: Source,
    /// Where the steps run (src/executor/).
    executor: Arc<dyn Executor>,
    /// What each step may use.
    limits: Limits,
    work: PathBuf,
    /// The disk's size and mount, to tell a step that failed because it filled it.
    disk_full: Option<(u64, PathBuf)>,
}

impl BuildRun<'_> {
    async fn execute(self, events: mpsc::UnboundedSender<BuildEvent>, cancel: CancellationToken) -> Build {
        let store = &self.engine.store;
        let build_id = self.plan.build_id.clone();
        let working = {
            let mut record = self.record.lock().expect("record lock");
            record.status = Status::Working;
            record.start_time = Some(Timestamp::now());
            record.clone()
        };
        // A build whose record cannot be written does not run: nobody could see or promote it.
        let first_save = store.put(working).await;
        // The compile step is numbered after the build's steps; name it in the list too.
        let mut labels: Vec<String> = self.plan.steps.iter().map(|s| s.label()).collect();
        if self.plan.pipeline.as_ref().is_some_and(|p| p.compile.is_some()) {
            labels.push(format!("step {} (pipeline.compile)", labels.len()));
        }
        let _ = events.send(BuildEvent::Started { build_id: build_id.clone(), steps: labels });
        let deadline = tokio::time::Instant::now() + self.plan.timeout;
        // The saves stop the phases through this token when the record cannot be written.
        let stop = cancel.child_token();
        let outcome = match first_save {
            Ok(_) => self.with_saves(self.phases(&events, deadline, &stop), &stop).await,
            Err(e) => Outcome::InternalError { detail: not_saved(&e) },
        };
        // Cleanup must happen even if the user presses Ctrl-C again, so it does not watch `cancel`.
        let cleanup = self.executor.teardown(&build_id).await;
        let mut record = self.record.lock().expect("record lock").clone();
        finish(&mut record, outcome, &self.secrets);
        if let Err(e) = cleanup {
            record.warnings.push(Warning {
                text: format!("cleanup was incomplete: {}", crate::error_chain(&e)),
                priority: "WARNING".into(),
            });
        }
        // What is written comes back with the promotions and approvals noted while the build ran.
        record = match store.put(record.clone()).await {
            Ok(saved) => saved,
            Err(e) => {
                tracing::error!(build = %build_id, error = %crate::error_chain(&e), "the build's record was not saved");
                let detail = not_saved(&e);
                finish(&mut record, Outcome::InternalError { detail: detail.clone() }, &self.secrets);
                // One more try, for a failure that has passed (the INTERNAL_ERROR is smaller than what
                // failed); if it fails too the record on disk is the last one saved, still whole, and
                // the caller gets this one.
                match store.put(record.clone()).await {
                    Ok(saved) => saved,
                    Err(_) => record,
                }
            }
        };
        if record.status == Status::Success
            && record.environments.iter().any(|e| e.auto)
            && self.request.trust.level.is_trusted()
        {
            self.auto_promote(&mut record, &events).await;
        }
        let _ = events.send(BuildEvent::Finished { status: record.status });
        record
    }

    /// `auto: true` environments (docs/SPEC.md §11). The build has succeeded whatever happens here: a refusal
    /// or a failed promotion is recorded on the build and in the audit log, not a build failure.
    async fn auto_promote(&self, record: &mut Build, events: &mpsc::UnboundedSender<BuildEvent>) {
        let _ = events.send(BuildEvent::Phase { name: "promote" });
        let store = &self.engine.store;
        let db = match crate::io::store::db::Database::open(store.root()).await {
            Ok(db) => db,
            Err(e) => {
                let detail = format!("cannot open the release database: {}", crate::error_chain(&e));
                let warning = Warning { text: detail.clone(), priority: "WARNING".into() };
                record.warnings.push(warning.clone());
                match store.update(&record.id, move |r| r.warnings.push(warning)).await {
                    Ok(saved) => *record = saved,
                    Err(e) => {
                        let line = format!("{}: {}", not_saved(&e), detail);
                        let _ = events.send(BuildEvent::Output { source: "promote".into(), line });
                    }
                }
                let _ = events.send(BuildEvent::PhaseDone { name: "promote", ok: false, detail });
                return;
            }
        };
        let sender = events.clone();
        let progress: Arc<dyn Fn(String) + Send + Sync> =
            Arc::new(move |line| drop(sender.send(BuildEvent::Output { source: "promote".into(), line })));
        // Only trusted builds get here (see `run`), so the server's credentials go with them.
        let promoter = crate::promote::Promoter::new(store.clone(), db, self.engine.registry.clone())
            .with_credentials(self.engine.credentials.clone())
            .with_progress(progress);
        let mut summary = Vec::new();
        let mut ok = true;
        for (environment, result) in promoter.auto(record).await {
            let line = match result {
                Ok(_) => format!("promoted to {environment}"),
                Err(e) => {
                    ok = false;
                    let mut line = format!("not promoted to {environment}: {e}");
                    for refusal in e.refusals() {
                        line.push_str(&format!("\n  {refusal}"));
                    }
                    line
                }
            };
            let _ = events.send(BuildEvent::Output { source: "promote".into(), line: line.clone() });
            summary.push(line.lines().next().unwrap_or_default().to_string());
        }
        // The promoter appended to the record on disk; keep the returned record the same.
        match store.load(&record.id) {
            Ok(saved) => *record = saved,
            Err(e) => {
                let line = format!("cannot read the record back: {}", crate::error_chain(&e));
                let _ = events.send(BuildEvent::Output { source: "promote".into(), line });
            }
        }
        let _ = events.send(BuildEvent::PhaseDone { name: "promote", ok, detail: summary.join("; ") });
    }

    /// Keeps the record on disk current while the steps run, so a crash loses at most a second. The
    /// engine's view goes through [`Store::put`], which keeps what promotions noted in between. A save
    /// that fails stops the build (through `stop`) and becomes its outcome: a build nobody can see is not
    /// left running, and a full disk is named as the reason.
    async fn with_saves(&self, steps: impl std::future::Future<Output = Outcome>, stop: &CancellationToken) -> Outcome {
        tokio::pin!(steps);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut failed: Option<String> = None;
        loop {
            tokio::select! {
                outcome = &mut steps => {
                    return match failed {
                        Some(detail) => Outcome::InternalError { detail },
                        None => outcome,
                    };
                }
                _ = tick.tick(), if failed.is_none() => {
                    let view = self.record.lock().expect("record lock").clone();
                    if let Err(e) = self.engine.store.put(view).await {
                        failed = Some(not_saved(&e));
                        stop.cancel();
                    }
                }
            }
        }
    }

    /// Every phase in order (docs/SPEC.md §1); the first that does not succeed ends the build.
    async fn phases(
        &self,
        events: &mpsc::UnboundedSender<BuildEvent>,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
    ) -> Outcome {
        let store = &self.engine.store;
        let build_id = &self.plan.build_id;
        let mut steps_seen: Vec<(String, String, Option<String>)> =
            self.plan.steps.iter().map(|s| (s.label(), s.image.clone(), s.entrypoint.clone())).collect();
        if let Some(compile) = self.plan.pipeline.as_ref().and_then(|p| p.compile.as_ref()) {
            steps_seen.push(("pipeline.compile".into(), compile.image.clone(), compile.entrypoint.clone()));
        }
        let setup = crate::executor::BuildSetup {
            build_id,
            work: &self.work,
            workspace: self.workspace.root(),
            volumes: &self.plan.volumes,
            steps: steps_seen,
            aliases: self.plan.steps.iter().flat_map(phases::steps::aliases).collect(),
            limits: self.limits,
        };
        let env = match self.executor.setup(&setup).await {
            Ok(env) => env,
            Err(e @ ExecutorError::NeedsDocker { .. }) => {
                return Outcome::Failure { kind: FailureType::UserBuildStep, detail: e.to_string() };
            }
            Err(e) => {
                return Outcome::InternalError {
                    detail: format!("cannot prepare the build's Docker resources: {}", crate::error_chain(&e)),
                };
            }
        };
        let logs = match open_logs(store, build_id, self.plan.steps.len()) {
            Ok(logs) => logs,
            Err(e) => return Outcome::InternalError { detail: format!("cannot open the build's logs: {e}") },
        };
        let shared = phases::steps::Shared {
            docker: self.executor.docker().clone(),
            executor: self.executor.clone(),
            env,
            build_id: build_id.clone(),
            record: self.record.clone(),
            events: events.clone(),
            secrets: self.secrets.clone(),
            scripts: self.scripts.clone(),
            pull: self.request.pull,
            stop_grace: self.request.stop_grace,
            disk: self.disk_full.clone(),
        };
        let ctx =
            Arc::new(phases::steps::StepsContext::new(shared.clone(), StepKind::Build, self.plan.steps.clone(), logs));
        let outcome = self.timed("BUILD", phases::steps::run(ctx, deadline, cancel.clone())).await;
        if outcome != Outcome::Success {
            return outcome;
        }
        let phases = phases::Phases { run: self, events: events.clone(), shared };
        // The phases after the steps obey the same deadline and cancel as the steps.
        tokio::select! {
            outcome = phases.artifacts(deadline, cancel) => outcome,
            _ = tokio::time::sleep_until(deadline) => Outcome::Timeout,
            _ = cancel.cancelled() => Outcome::Cancelled,
        }
    }

    /// Runs `phase` and records its span in the record's `timing` under `key`.
    async fn timed<T>(&self, key: &str, phase: impl std::future::Future<Output = T>) -> T {
        let mut span = TimeSpan::started();
        let value = phase.await;
        span.end_time = Some(Timestamp::now());
        self.record.lock().expect("record lock").timing.insert(key.into(), span);
        value
    }
}

fn open_logs(store: &Store, id: &str, steps: usize) -> std::io::Result<phases::steps::Logs> {
    let combined = std::fs::File::create(store.log_path(id))?;
    let steps =
        (0..steps).map(|i| std::fs::File::create(store.step_log_path(id, i))).collect::<std::io::Result<Vec<_>>>()?;
    Ok(phases::steps::Logs { combined, steps })
}

/// Why a build ended when its record could not be written.
fn not_saved(e: &StoreError) -> String {
    format!("record not saved: {}", crate::error_chain(e))
}

fn finish(record: &mut Build, outcome: Outcome, secrets: &SecretValues) {
    let masks = secrets.masks();
    let (status, failure) = match outcome {
        Outcome::Success => (Status::Success, None),
        Outcome::Failure { kind, detail } => (Status::Failure, Some((kind, detail))),
        Outcome::Timeout => (
            Status::Timeout,
            Some((
                FailureType::FailureTypeUnspecified,
                format!("the build ran longer than its timeout of {}", record.timeout),
            )),
        ),
        Outcome::Cancelled => (Status::Cancelled, None),
        Outcome::InternalError { detail } => {
            (Status::InternalError, Some((FailureType::FailureTypeUnspecified, detail)))
        }
    };
    record.status = status;
    if let Some((kind, detail)) = failure {
        let detail = masks.mask_str(&detail);
        record.status_detail = detail.clone();
        record.failure_info = Some(FailureInfo { kind, detail });
    } else if status == Status::Cancelled {
        record.status_detail = "the build was cancelled".into();
    }
    record.finish_time = Some(Timestamp::now());
}

fn fill_record(record: &mut Build, plan: &BuildPlan, source: &Source, config_path: &str) {
    let git = GitSource {
        url: source.url.clone(),
        revision: source.revision.clone(),
        dir: source.dir.clone().unwrap_or_default(),
    };
    record.source = Some(SourceRecord { git_source: git.clone() });
    record.source_provenance =
        Some(SourceProvenance { resolved_git_source: GitSource { revision: source.commit_sha.clone(), ..git } });
    record.timeout = duration_text(plan.timeout);
    record.commit = Some(crate::record::CommitRecord {
        sha: source.commit_sha.clone(),
        branch: source.branch.clone(),
        tag: source.tag.clone(),
        author_name: source.author_name.clone(),
        author_email: source.author_email.clone(),
        message: source.message.clone(),
    });
    record.environments = plan.environments.clone();
    record.images = plan.images.clone();
    record.tags = plan.tags.clone();
    record.substitutions = plan.substitutions.clone();
    record.config_path = config_path.to_string();
    record.results.build_step_images = vec![String::new(); plan.steps.len()];
    record.steps = plan
        .steps
        .iter()
        .map(|s| StepRecord {
            name: s.image.clone(),
            args: s.args.clone(),
            env: s.env.clone(),
            dir: s.dir.clone(),
            id: s.id.clone().unwrap_or_default(),
            wait_for: s.wait_for_ids.clone(),
            entrypoint: s.entrypoint.clone().unwrap_or_default(),
            secret_env: s.secret_env.clone(),
            volumes: s.volumes.iter().map(|v| VolumeRecord { name: v.name.clone(), path: v.path.clone() }).collect(),
            timeout: s.timeout.map(duration_text),
            script: s.script.clone(),
            allow_failure: s.allow_failure,
            allow_exit_codes: s.allow_exit_codes.clone(),
            status: Status::Queued,
            timing: None,
            pull_timing: None,
            exit_code: None,
        })
        .collect();
}

/// Finds and reads the build file: `--config` if given, else the first default name present. The path
/// must stay inside the checkout.
pub(crate) fn read_config(workspace: &Workspace, explicit: Option<&str>) -> Result<(String, Vec<u8>), Rejected> {
    let candidates: Vec<String> = match explicit {
        Some(path) => vec![path.to_string()],
        None => config::DEFAULT_FILES.iter().map(|s| s.to_string()).collect(),
    };
    for candidate in &candidates {
        let path = workspace
            .resolve(candidate)
            .map_err(|e| Rejected::ConfigPath { path: candidate.clone(), reason: e.to_string() })?;
        if !path.is_file() {
            continue;
        }
        let size = path.metadata().map(|m| m.len()).unwrap_or(0);
        config::check_size(candidate, size).map_err(Rejected::Config)?;
        let bytes = std::fs::read(&path)
            .map_err(|e| Rejected::ConfigPath { path: candidate.clone(), reason: e.to_string() })?;
        return Ok((candidate.clone(), bytes));
    }
    match explicit {
        Some(path) => {
            Err(Rejected::ConfigPath { path: path.to_string(), reason: "it does not exist in the commit".into() })
        }
        None => Err(Rejected::NoConfig { root: workspace.root().display().to_string(), tried: candidates }),
    }
}

/// How the build file is named in messages: its path in the repository.
fn config_label(source: &Source, config_path: &str) -> String {
    match &source.dir {
        Some(dir) => format!("{dir}/{config_path}"),
        None => config_path.to_string(),
    }
}

/// Removes a build's work directory, and its disk first (everything the build wrote is on it). Steps
/// run as root may leave files the user cannot delete; those are reported by the janitor on a later run
/// rather than failing this build.
async fn remove_work_dir(work: &std::path::Path, disk: Option<Disk>) {
    if let Some(disk) = disk {
        disk.remove().await;
    }
    let work = work.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(work)).await;
}

/// A build's disk until it asks for more: Cloud Build's default disk.
const DEFAULT_DISK_BYTES: u64 = crate::limits::DEFAULT_DISK_GB << 30;
