//! `pipewright github-action`: one build inside a GitHub Actions job (docs/SPEC.md §13), what the composite
//! action at `.github/actions/pipewright` runs.
//!
//! The workflow's event decides as a webhook would on the server (same triggers, same path filters, the
//! changed files from the job's own checkout); a skipped event ends with exit code 0 and says why. Each
//! step's log is one `::group::` when the step ends (steps run in parallel and groups cannot
//! interleave), a failing step gets an `::error` annotation on its line of the build file, and the
//! Markdown summary and the outputs `build-id`, `status`, `spec-digest` go to the files the runner names.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::common::{BuildFlags, watch_signals};
use super::error::{CliError, Code, Outcome};
use crate::config::{self, Diagnostics};
use crate::engine::{BuildEvent, Engine, Rejected};
use crate::github::commands::{self, Level, Location};
use crate::github::context::{self, ActionsEnv, Job};
use crate::github::summary;
use crate::io::docker::Docker;
use crate::io::secrets::{self, SecretSource};
use crate::io::source::SourceSpec;
use crate::io::source::mirror::Mirror;
use crate::io::store::Store;
use crate::record::{Build, Status};
use crate::server::evaluation::decide_with;
use crate::server::jobs::BuildJob;
use crate::trigger::{self, Decision, Event};

#[derive(Args, Debug)]
pub struct GithubActionArgs {
    /// The checkout to build [default: $GITHUB_WORKSPACE, else `.`]; a subdirectory of the repository
    /// builds that directory
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    build: BuildFlags,
    /// Project id for `$PROJECT_ID`
    #[arg(long, default_value = "github", env = "PIPEWRIGHT_PROJECT")]
    project: String,
    /// Data directory for records and logs [default: $PIPEWRIGHT_DATA_DIR, else ~/.local/share/pipewright]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// How many component images build at once
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// The compiled spec to compare this build's with in the summary [default: the spec artifact the
    /// registry holds for the base commit, when the build uploads to an OCI registry]
    #[arg(long)]
    base_spec: Option<PathBuf>,
}

/// Where the job's results go: the step summary and the outputs file (either may be unset).
struct Results {
    summary: Option<PathBuf>,
    outputs: Option<PathBuf>,
}

impl Results {
    fn write(&self, markdown: &str, status: &str, build_id: &str, spec_digest: &str) {
        if let Some(path) = &self.summary {
            append(path, markdown);
        }
        if let Some(path) = &self.outputs {
            let text = [("build-id", build_id), ("status", status), ("spec-digest", spec_digest)]
                .iter()
                .map(|(name, value)| commands::output(name, value))
                .collect::<String>();
            append(path, &text);
        }
    }

    fn skipped(&self, commit: &str, trigger: Option<&str>, reason: &str) -> Outcome {
        println!("{}", commands::annotation(Level::Notice, "pipewright: build skipped", None, reason));
        self.write(&summary::skipped(commit, trigger, reason), Status::Skipped.as_str(), "", "");
        Outcome::Success
    }

    /// pipewright could not run the build: every message is an error annotation (the workflow's log
    /// is stdout), so the error is reported here; exit code 2.
    fn rejected(&self, annotations: Vec<(Option<Location>, String)>) -> CliError {
        let mut text = String::new();
        for (location, message) in &annotations {
            println!("{}", commands::annotation(Level::Error, "pipewright", location.as_ref(), message));
            text.push_str(message);
            text.push('\n');
        }
        self.write(&summary::rejected(&text), Status::Failure.as_str(), "", "");
        CliError::reported(Code::Unable)
    }
}

/// Appends to a file the runner reads; a failure is reported but does not change the build's result.
fn append(path: &Path, text: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(e) = written {
        eprintln!("pipewright: cannot write `{}`: {e}", path.display());
    }
}

pub async fn github_action(args: GithubActionArgs) -> Result<Outcome, CliError> {
    // Outside a job there is no workflow log to annotate: the error goes to stderr.
    let env = ActionsEnv::from_lookup(|name| std::env::var(name).ok()).map_err(|e| CliError::unable(e.to_string()))?;
    let results = Results { summary: env.step_summary.clone(), outputs: env.output.clone() };
    let fail = |message: String| results.rejected(vec![(None, message)]);
    let payload = match tokio::fs::read(&env.event_path).await {
        Ok(bytes) => bytes,
        Err(e) => return Err(fail(format!("cannot read the event payload `{}`: {e}", env.event_path.display()))),
    };
    let event = match context::job(&env, &payload) {
        Ok(Job::Event(event)) => *event,
        Ok(Job::Nothing(reason)) => return Ok(results.skipped(&env.sha, None, &reason)),
        Err(e) => return Err(fail(crate::error_chain(&e))),
    };
    let overrides = args.build.substitutions.parse().map_err(|e| fail(e.to_string()))?;
    let mut secret_sources: BTreeMap<String, SecretSource> = BTreeMap::new();
    for spec in args.build.secrets() {
        match secrets::parse_spec(spec) {
            Ok((name, source)) => {
                secret_sources.insert(name, source);
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    let credentials = args.build.credentials.parse().map_err(|e| fail(e.to_string()))?;
    let root = args.dir.clone().or_else(|| env.workspace.clone()).unwrap_or_else(|| PathBuf::from("."));

    let mut job = BuildJob::for_event(&env.repository, &env.repository_url(), args.build.config.clone(), &event);
    // No decision when the build file cannot be read or has problems: the engine reports those.
    if let Some(decision) = decide(&root, args.build.config.as_deref(), &event).await {
        job.trigger.reason = decision.reason().to_string();
        match decision {
            Decision::Build { trigger, substitutions, .. } => {
                job.trigger.decision = "build".into();
                job.trigger.name = Some(trigger);
                job.substitutions.extend(substitutions);
            }
            Decision::Skip { trigger, reason } => return Ok(results.skipped(&env.sha, trigger.as_deref(), &reason)),
        }
        println!("pipewright: {}", job.trigger.reason);
    }

    let docker = Docker::connect()
        .await
        .map_err(|e| fail(format!("{} (the job needs a Docker engine)", crate::error_chain(&e))))?;
    let store = Store::new(args.data_dir.clone().unwrap_or_else(Store::default_root));
    if let Some(e) = crate::executor::janitor::sweep(&docker, &store).await.docker_error {
        let message = format!("could not remove what earlier runs left behind: {}", crate::error_chain(&e));
        println!("{}", commands::annotation(Level::Warning, "pipewright", None, &message));
    }
    let source = SourceSpec { repo: root.display().to_string(), rev: env.sha.clone() };
    let mut request = job.request_from(source, &secret_sources, &args.project);
    request.overrides.retain(|(key, _)| !overrides.iter().any(|(k, _)| k == key));
    request.overrides.extend(overrides);
    request.pull = args.build.pull;
    request.jobs = args.jobs;

    let mut engine = Engine::new(docker, store, crate::io::registry::Registry::new().await);
    engine.credentials = credentials;
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(cancel.clone()));
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let progress = tokio::spawn(progress(events_rx));
    let result = engine.build(&request, events_tx, cancel).await;
    let _ = progress.await;
    signals.abort();
    let build = match result {
        Ok(build) => build,
        Err(rejected) => return Err(results.rejected(rejected_annotations(&root, &rejected).await)),
    };

    for (location, message) in failure_annotations(&root, &build).await {
        println!("{}", commands::annotation(Level::Error, "pipewright", location.as_ref(), &message));
    }
    let diff = spec_changes(&engine, &build, &event, args.base_spec.as_deref()).await;
    let spec_digest = build.pipeline.as_ref().map(|p| p.spec_digest.clone()).unwrap_or_default();
    results.write(&summary::build(&build, diff.as_deref()), build.status.as_str(), &build.id, &spec_digest);
    println!(
        "pipewright: build {} {} (record {})",
        build.id,
        build.status.as_str(),
        engine.store.record_path(&build.id).display()
    );
    Ok(Outcome::of(build.status == Status::Success))
}

/// The build file's trigger decision for the event, with the changed files from the checkout. `None`
/// when there is no readable, valid build file to decide with.
async fn decide(root: &Path, configured: Option<&str>, event: &Event) -> Option<Decision> {
    let candidates: Vec<&str> = match configured {
        Some(path) => vec![path],
        None => config::DEFAULT_FILES.to_vec(),
    };
    let mut found = None;
    for name in candidates {
        if let Ok(bytes) = tokio::fs::read(root.join(name)).await {
            found = Some((name.to_string(), bytes));
            break;
        }
    }
    let (name, bytes) = found?;
    let loaded = config::load(&name, &bytes, &[]).ok()?;
    let (root, event) = (root.to_path_buf(), event.clone());
    let triggers = loaded.config.extensions.triggers.clone();
    // Not a repository: no decision, and the engine's clone says what is wrong.
    let (changed, decision) = tokio::task::spawn_blocking(move || {
        Mirror::existing(&root).ok().map(|checkout| decide_with(&checkout, &event, &triggers))
    })
    .await
    .ok()??;
    if let trigger::ChangedFiles::Unknown { reason } = &changed {
        let hint = "path filters need the history: use actions/checkout with `fetch-depth: 0`";
        println!(
            "{}",
            commands::annotation(
                Level::Warning,
                "pipewright: changed files unknown",
                None,
                &format!("{reason}; building without path filters ({hint})")
            )
        );
    }
    Some(decision)
}

/// The build file's path as the repository names it (annotations point into the repository).
async fn repository_path(root: &Path, file: &str) -> String {
    format!("{}{file}", crate::io::source::prefix_in_repository(root).await)
}

async fn rejected_annotations(root: &Path, rejected: &Rejected) -> Vec<(Option<Location>, String)> {
    match rejected {
        Rejected::Config(diagnostics) => config_annotations(root, diagnostics).await,
        Rejected::Secrets(errors) => errors.iter().map(|e| (None, e.to_string())).collect(),
        Rejected::NoConfig { root: at, tried } => {
            vec![(None, format!("no build file at `{at}`: looked for {}", tried.join(", ")))]
        }
        other => vec![(None, crate::error_chain(other))],
    }
}

async fn config_annotations(root: &Path, diagnostics: &Diagnostics) -> Vec<(Option<Location>, String)> {
    let file = repository_path(root, &diagnostics.file).await;
    diagnostics
        .errors()
        .map(|d| {
            let location = Location { file: file.clone(), line: Some(d.pos.line), col: Some(d.pos.col) };
            let field = if d.path.is_empty() { String::new() } else { format!("{}: ", d.path) };
            let hint = d.hint.as_deref().map(|h| format!(" (hint: {h})")).unwrap_or_default();
            (Some(location), format!("{field}{}{hint}", d.message))
        })
        .collect()
}

/// One annotation per step that failed the build, on the step's line of the build file, and one for
/// the build's failure when no step explains it (a component, the compile check, an upload, the run).
async fn failure_annotations(root: &Path, build: &Build) -> Vec<(Option<Location>, String)> {
    if build.status == Status::Success {
        return Vec::new();
    }
    let file = repository_path(root, &build.config_path).await;
    let lines: Vec<usize> = match tokio::fs::read(root.join(&build.config_path)).await {
        Ok(bytes) => config::load(&build.config_path, &bytes, &[])
            .map(|loaded| loaded.config.steps.iter().map(|s| s.pos.line).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let mut out = Vec::new();
    for (i, step) in build.steps.iter().enumerate() {
        if step.allow_failure || !matches!(step.status, Status::Failure | Status::Timeout) {
            continue;
        }
        let label = if step.id.is_empty() { format!("Step #{i}") } else { format!("Step #{i} \"{}\"", step.id) };
        let why = match (step.status, step.exit_code) {
            (Status::Timeout, _) => format!("timed out after {}", step.timeout.as_deref().unwrap_or("its timeout")),
            (_, Some(code)) => format!("exited with code {code}"),
            _ => "failed".to_string(),
        };
        let location = Location { file: file.clone(), line: lines.get(i).copied(), col: None };
        out.push((Some(location), format!("{label} ({}) {why}", step.name)));
    }
    if out.is_empty() {
        let detail = build.failure_info.as_ref().map_or(build.status_detail.as_str(), |f| f.detail.as_str());
        out.push((None, format!("build {}: {detail}", build.status.as_str())));
    }
    out
}

/// The semantic diff of this build's compiled spec against the base commit's, as Markdown, or a
/// sentence saying why there is nothing to compare.
async fn spec_changes(engine: &Engine, build: &Build, event: &Event, base_spec: Option<&Path>) -> Option<String> {
    let pipeline = build.pipeline.as_ref().filter(|p| !p.spec_digest.is_empty())?;
    let head = tokio::fs::read(engine.store.recorded_spec(&pipeline.name, &pipeline.spec_digest).ok()?).await.ok()?;
    let (label, base) = match base_spec {
        Some(path) => match tokio::fs::read(path).await {
            Ok(bytes) => (format!("`{}`", path.display()), bytes),
            Err(e) => return Some(format!("Cannot read the base spec `{}`: {e}.", path.display())),
        },
        None => {
            let oci = pipeline.uploads.iter().find(|u| u.destination == "oci")?;
            let repository = oci.uri.split('@').next().unwrap_or(&oci.uri);
            let zeros = |sha: &String| sha.bytes().all(|b| b == b'0');
            let base_commit = match &event.kind {
                trigger::Kind::PullRequest(_) => event.base.clone(),
                _ => event.before.clone().filter(|sha| !zeros(sha)),
            }?;
            let reference = format!("{repository}:{base_commit}");
            match engine.registry.pull_artifact(&reference, crate::publish::SPEC_MEDIA_TYPE).await {
                Ok((bytes, _)) => (format!("base commit `{}`", &base_commit[..base_commit.len().min(12)]), bytes),
                Err(e) => return Some(format!("No spec to compare with: {}.", crate::error_chain(&e))),
            }
        }
    };
    let (base, head) = (String::from_utf8_lossy(&base), String::from_utf8_lossy(&head));
    Some(match crate::kfp::diff_specs(&base, "base spec", &head, &pipeline.spec) {
        Ok(diff) => format!("Against {label}: {}", crate::kfp::diff::to_markdown(&diff)),
        Err(e) => format!("Cannot compare with {label}: {e}."),
    })
}

/// Step logs, one group per step when it ends; phases as groups of their own.
async fn progress(mut events: mpsc::UnboundedReceiver<BuildEvent>) {
    let mut labels: Vec<String> = Vec::new();
    let mut lines: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut in_phase = false;
    while let Some(event) = events.recv().await {
        match event {
            BuildEvent::Started { build_id, steps } => {
                println!("pipewright: build {build_id}: {} step(s)", steps.len());
                labels = steps;
            }
            BuildEvent::Warning(text) => {
                println!("{}", commands::annotation(Level::Warning, "pipewright", None, &text));
            }
            BuildEvent::StepStarted { index } => println!("▶ {}", super::output::label(&labels, index)),
            BuildEvent::StepOutput { index, line } => lines.entry(index).or_default().push(line),
            BuildEvent::StepFinished { index, status, exit_code, seconds } => {
                let code = exit_code.filter(|c| *c != 0).map(|c| format!(" (exit code {c})")).unwrap_or_default();
                let time = seconds.map(|s| format!(" in {s:.1}s")).unwrap_or_default();
                let title = format!("{} {}{code}{time}", super::output::label(&labels, index), status.as_str());
                // Groups do not nest: inside a phase's group, a step's lines are printed as they are.
                if !in_phase {
                    println!("{}", commands::group(&title));
                }
                for line in lines.remove(&index).unwrap_or_default() {
                    println!("{line}");
                }
                if in_phase {
                    println!("■ {title}");
                } else {
                    println!("{}", commands::end_group());
                }
            }
            BuildEvent::Phase { name } => {
                println!("{}", commands::group(&format!("phase {name}")));
                in_phase = true;
            }
            BuildEvent::Output { source, line } => println!("[{source}] {line}"),
            BuildEvent::PhaseDone { name, ok, detail } => {
                println!("■ {name} {}: {detail}", if ok { "done" } else { "failed" });
                println!("{}", commands::end_group());
                in_phase = false;
            }
            BuildEvent::Finished { .. } => {}
        }
    }
}
