//! The command line: argument types, commands, output and exit codes.
//!
//! The only module that prints. stdout carries data (`--format json`); progress, logs and errors go to
//! stderr. Exit codes: 0 success, 1 the build ran and failed (or the file is invalid), 2 pipewright
//! could not do what was asked (bad arguments, unreadable config, Docker unreachable).

mod builds;
mod diff;
mod github;
mod output;
mod promote;
mod remote;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::engine::{BuildRequest, Engine, PullPolicy, Rejected};
use crate::io::credentials::{Credential, Credentials};
use crate::io::docker::Docker;
use crate::io::secrets::{self, SecretSource};
use crate::io::source::SourceSpec;
use crate::io::store::Store;
use crate::record::Status;
use crate::subst::{self, Origin};
use output::Printer;

#[derive(Parser, Debug)]
#[command(
    name = "pipewright",
    version,
    about = "Runs Cloud Build files on any machine with Docker, built for ML pipelines"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a build: clone REPO at a commit and run its build file's steps in containers
    Run(RunArgs),
    /// Check a build file without running anything (no Docker needed)
    Validate(ValidateArgs),
    /// Point the component specs of a checkout at the images of its HEAD commit, in place
    Rewrite(RewriteArgs),
    /// Run a compiled pipeline spec on its own (local Docker, Kubeflow Pipelines or Vertex AI)
    RunPipeline(RunPipelineArgs),
    /// Promote a build to an environment, if the environment's rules admit it
    Promote(promote::PromoteArgs),
    /// Approve a build for an environment that asks for approvals
    Approve(promote::ApproveArgs),
    /// Put an environment back to the release before its current one
    Rollback(promote::RollbackArgs),
    /// What is in each environment (and, with `--history`, who put it there, when and why)
    Envs(promote::EnvsArgs),
    /// Compare two compiled pipeline specs: components, images, commands, inputs and defaults, tasks,
    /// DAG edges, caching and conditions that changed from BASE to HEAD
    ///
    /// Prints `no changes` (human), an empty `changes` list (json) or a sentence (markdown) when they
    /// are the same. Exit code 0 whether or not they differ (1 with `--exit-code` when they do), 2 when
    /// a file cannot be read or is not a compiled pipeline spec.
    Diff(diff::DiffArgs),
    /// Print the JSON Schema (draft 2020-12) of the build file, for editors and other tools
    ///
    /// It covers Cloud Build's fields and pipewright's own (`components`, `pipeline`, `run`,
    /// `environments`, `triggers`), each under its camelCase and snake_case names, and refuses unknown
    /// keys. Rules a schema cannot state (substitutions, `waitFor` order, secrets used) are checked by
    /// `pipewright validate`.
    Schema,
    /// Run the build server: webhooks, queue, API and dashboard
    Serve(ServeArgs),
    /// Run a build inside a GitHub Actions job: the workflow's event decides (triggers, path filters),
    /// logs are grouped per step, failures annotated, the summary and outputs written for the runner
    GithubAction(github::GithubActionArgs),
    /// The builds in the data directory: `list`, `show BUILD`, `logs BUILD [--follow]`
    Builds(builds::BuildsArgs),
    /// Print the version
    Version,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Format {
    #[default]
    Human,
    Json,
}

#[derive(Args, Debug)]
struct SubstitutionArgs {
    /// Substitution values, `_KEY=VALUE[,…]` (user keys only: built-ins such as `COMMIT_SHA` cannot be set);
    /// they win over the file's `substitutions`
    #[arg(long = "substitutions", value_name = "K=V,…")]
    substitutions: Vec<String>,
}

impl SubstitutionArgs {
    fn parse(&self) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        for item in self.substitutions.iter().flat_map(|s| s.split(',')) {
            if item.is_empty() {
                continue;
            }
            let Some((k, v)) = item.split_once('=') else {
                return Err(format!("`--substitutions {item}` is not of the form `KEY=VALUE`"));
            };
            out.retain(|(existing, _)| existing != k);
            out.push((k.to_string(), v.to_string()));
        }
        let problems = subst::validate_map(out.iter().map(|(k, v)| (k.as_str(), v.as_str())), Origin::Flag);
        if let Some(first) = problems.first() {
            return Err(format!("--substitutions: {first}"));
        }
        Ok(out)
    }
}

#[derive(Args, Debug)]
struct CredentialArgs {
    /// The token for one origin, `ORIGIN=env:VAR` or `ORIGIN=file:PATH` (repeatable): uploads and
    /// pipeline runs send a token only to a URL of exactly that scheme, host and port
    #[arg(long = "credential", value_name = "ORIGIN=SOURCE")]
    credentials: Vec<String>,
}

impl CredentialArgs {
    fn parse(&self) -> Result<Credentials, String> {
        let entries = self.credentials.iter().map(|spec| Credential::parse_flag(spec)).collect::<Result<_, _>>();
        entries.and_then(Credentials::new).map_err(|e| e.to_string())
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Repository to build: a path (default `.`; a subdirectory of a repository builds that directory)
    /// or a clone URL
    #[arg(default_value = ".")]
    repo: String,
    /// Revision to build: a commit, branch, tag or `HEAD`
    #[arg(long, default_value = "HEAD")]
    commit: String,
    /// Build file, relative to the build's root (default: the first of pipewright.yaml,
    /// .pipewright.yaml, cloudbuild.yaml, cloudbuild.json)
    #[arg(long)]
    config: Option<String>,
    #[command(flatten)]
    substitutions: SubstitutionArgs,
    /// Where a secret's value comes from: `NAME=env:VAR` or `NAME=file:PATH` (repeatable)
    #[arg(long = "secret", value_name = "NAME=SOURCE")]
    secrets: Vec<String>,
    #[command(flatten)]
    credentials: CredentialArgs,
    /// When to pull step images
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pull: PullPolicy,
    /// Project id for `$PROJECT_ID`
    #[arg(long, default_value = "local", env = "PIPEWRIGHT_PROJECT")]
    project: String,
    /// Data directory for records and logs [default: $PIPEWRIGHT_DATA_DIR, else ~/.local/share/pipewright]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the build's checkout after the build (its path is printed)
    #[arg(long)]
    keep_workspace: bool,
    /// How many component images build at once
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// `json` prints the build record to stdout when the build ends
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Args, Debug)]
struct RewriteArgs {
    /// The checkout to edit in place (a subdirectory of a repository works as for `run`)
    #[arg(default_value = ".")]
    dir: String,
    /// Build file, relative to the build's root
    #[arg(long)]
    config: Option<String>,
    #[command(flatten)]
    substitutions: SubstitutionArgs,
    /// The image of one component, `NAME=REF` (repeatable); others become `<registry>/<name>:<HEAD>`,
    /// pinned to the registry digest when that tag exists
    #[arg(long = "image", value_name = "NAME=REF")]
    images: Vec<String>,
    /// Print the changes without writing them
    #[arg(long)]
    dry_run: bool,
    /// `json` prints the changes as JSON
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Local,
    Kfp,
    Vertex,
}

#[derive(Args, Debug)]
struct RunPipelineArgs {
    /// The compiled pipeline spec (KFP IR, YAML or JSON)
    spec: PathBuf,
    #[arg(long, value_enum, default_value_t = BackendArg::Local)]
    backend: BackendArg,
    /// A pipeline parameter, `NAME=VALUE` (VALUE is read as JSON when it parses, else as text; repeatable)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Kubeflow Pipelines API (`kfp`), or a Vertex AI endpoint override (`vertex`)
    #[arg(long)]
    host: Option<String>,
    /// Google Cloud project (`vertex`)
    #[arg(long)]
    project: Option<String>,
    /// Google Cloud region (`vertex`)
    #[arg(long)]
    location: Option<String>,
    /// Pipeline root (`gs://…` for Vertex AI); default: the spec's `defaultPipelineRoot`
    #[arg(long)]
    pipeline_root: Option<String>,
    /// Stop the run after this long, e.g. `600s`
    #[arg(long)]
    timeout: Option<String>,
    /// A directory importers may take local files from (repeatable) [default: the current directory]
    #[arg(long = "import-root", value_name = "DIR")]
    import_roots: Vec<PathBuf>,
    /// Start the run and return without waiting
    #[arg(long)]
    no_wait: bool,
    /// Data directory (local runs keep their files under `<data>/runs`)
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    credentials: CredentialArgs,
    /// `json` prints the run record to stdout
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The server's config file (listen address, repositories, tokens, secrets)
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Data directory [default: the config's `dataDir`, else $PIPEWRIGHT_DATA_DIR, else
    /// ~/.local/share/pipewright]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen here instead of the config's `listen`
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// Build file to check (default: the first of pipewright.yaml, .pipewright.yaml, cloudbuild.yaml,
    /// cloudbuild.json in the current directory)
    file: Option<PathBuf>,
    #[command(flatten)]
    substitutions: SubstitutionArgs,
    /// `json` prints every problem as JSON to stdout
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Version => {
            println!("pipewright {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Validate(args) => validate(args),
        Command::Diff(args) => diff::diff(args),
        Command::Schema => {
            let schema = config::schema::schema();
            output::data(&format!("{}\n", serde_json::to_string_pretty(&schema).expect("the schema serialises")));
            ExitCode::SUCCESS
        }
        Command::RunPipeline(args) => block_on(run_pipeline(args)),
        Command::Rewrite(args) => block_on(rewrite(args)),
        Command::Promote(args) => block_on(promote::promote(args)),
        Command::Approve(args) => block_on(promote::approve(args)),
        Command::Rollback(args) => block_on(promote::rollback(args)),
        Command::Envs(args) => block_on(promote::envs(args)),
        Command::Run(args) => block_on(run(args)),
        // The config is read before the runtime starts: its `env:` secrets leave the environment
        // while the process still has one thread.
        Command::Serve(args) => match server_config(&args) {
            Ok(config) => block_on(serve(args, config)),
            Err(code) => code,
        },
        Command::GithubAction(args) => block_on(github::github_action(args)),
        Command::Builds(args) => block_on(builds::builds(args)),
    }
}

fn block_on(command: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(command),
        Err(e) => fatal(&format!("cannot start the async runtime: {e}"), None),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIPEWRIGHT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn fatal(message: &str, hint: Option<&str>) -> ExitCode {
    let printer = Printer::stderr();
    printer.error(message, hint);
    ExitCode::from(2)
}

fn validate(args: ValidateArgs) -> ExitCode {
    let overrides = match args.substitutions.parse() {
        Ok(o) => o,
        Err(e) => return fatal(&e, None),
    };
    let path = match &args.file {
        Some(path) => path.clone(),
        None => match config::DEFAULT_FILES.iter().map(PathBuf::from).find(|p| p.is_file()) {
            Some(path) => path,
            None => {
                return fatal(
                    "no build file in the current directory",
                    Some(&format!(
                        "looked for {}; or name one: `pipewright validate FILE`",
                        config::DEFAULT_FILES.join(", ")
                    )),
                );
            }
        },
    };
    let label = path.display().to_string();
    let result = match path.metadata() {
        Err(e) => return fatal(&format!("cannot read `{label}`: {e}"), None),
        Ok(meta) => config::check_size(&label, meta.len()).and_then(|()| match std::fs::read(&path) {
            Ok(bytes) => config::load(&label, &bytes, &overrides),
            Err(e) => Err(read_error(&label, &e)),
        }),
    };
    let printer = Printer::stderr();
    match args.format {
        Format::Json => {
            let diagnostics = match &result {
                Ok(loaded) => &loaded.warnings,
                Err(d) => d,
            };
            println!("{}", output::diagnostics_json(&label, result.is_ok(), diagnostics, result.as_ref().ok()));
        }
        Format::Human => match &result {
            Ok(loaded) => {
                for warning in loaded.warnings.warnings() {
                    printer.warning(&warning.render(&label));
                }
                let steps = loaded.config.steps.len();
                printer.success(&format!("{label}: valid ({steps} step{})", if steps == 1 { "" } else { "s" }));
            }
            Err(diagnostics) => {
                printer.plain(&diagnostics.to_string());
                let errors = diagnostics.errors().count();
                printer.error(&format!("{label}: {errors} problem{}", if errors == 1 { "" } else { "s" }), None);
            }
        },
    }
    if result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn read_error(label: &str, e: &std::io::Error) -> config::Diagnostics {
    let mut d = config::Diagnostics::new(label);
    d.push(config::Diagnostic::error(config::Pos { line: 1, col: 1 }, "", format!("cannot read the file: {e}")));
    d
}

async fn rewrite(args: RewriteArgs) -> ExitCode {
    use crate::engine::rewrite::{RewriteError, RewriteRequest};
    let overrides = match args.substitutions.parse() {
        Ok(o) => o,
        Err(e) => return fatal(&e, None),
    };
    let mut images = BTreeMap::new();
    for item in &args.images {
        match item.split_once('=') {
            Some((name, reference)) if !name.is_empty() && !reference.is_empty() => {
                images.insert(name.to_string(), reference.to_string());
            }
            _ => return fatal(&format!("`--image {item}` is not of the form `NAME=REF`"), None),
        }
    }
    let request = RewriteRequest { dir: args.dir, config_path: args.config, overrides, images, dry_run: args.dry_run };
    let registry = crate::io::registry::Registry::new().await;
    let printer = Printer::stderr();
    match crate::engine::rewrite::rewrite(&request, &registry).await {
        Ok(changes) => {
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&changes).expect("changes serialise")),
                Format::Human => {
                    for c in &changes {
                        println!("{}:{}: {} -> {}", c.file, c.line, c.old_image, c.new_image);
                    }
                }
            }
            let verb = if request.dry_run { "would change" } else { "changed" };
            printer.success(&format!("{verb} {} image{}", changes.len(), if changes.len() == 1 { "" } else { "s" }));
            ExitCode::SUCCESS
        }
        Err(RewriteError::Rejected(rejected)) => {
            report_rejected(&printer, &rejected);
            ExitCode::from(2)
        }
        Err(e) => {
            printer.error(&e.to_string(), None);
            ExitCode::from(1)
        }
    }
}

async fn run_pipeline(args: RunPipelineArgs) -> ExitCode {
    use crate::plan::{RunBackend, RunPlan};
    use crate::runner::{RunSpecRequest, run_spec};
    let backend = match args.backend {
        BackendArg::Local => RunBackend::Local,
        BackendArg::Kfp => match &args.host {
            Some(host) => RunBackend::Kfp { host: host.clone() },
            None => return fatal("`--backend kfp` needs `--host URL`", None),
        },
        BackendArg::Vertex => match (&args.project, &args.location) {
            (Some(project), Some(location)) => {
                RunBackend::Vertex { project: project.clone(), location: location.clone(), endpoint: args.host.clone() }
            }
            _ => return fatal("`--backend vertex` needs `--project` and `--location`", None),
        },
    };
    let mut parameters = serde_json::Map::new();
    for item in &args.params {
        let Some((name, value)) = item.split_once('=') else {
            return fatal(&format!("`--param {item}` is not of the form `NAME=VALUE`"), None);
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        parameters.insert(name.to_string(), value);
    }
    let timeout = match args.timeout.as_deref().map(|t| (t, config::parse_duration(t))) {
        None => None,
        Some((_, Some(d))) => Some(d),
        Some((t, None)) => {
            return fatal(&format!("`--timeout {t}` is not a duration"), Some("write seconds with `s`, e.g. `600s`"));
        }
    };
    let run = RunPlan {
        backend,
        parameters,
        wait: !args.no_wait,
        timeout,
        metrics: Vec::new(),
        pipeline_root: args.pipeline_root.clone(),
        service_account: None,
    };
    let credentials = match args.credentials.parse() {
        Ok(c) => c,
        Err(e) => return fatal(&e, None),
    };
    let request = RunSpecRequest {
        spec_path: args.spec.clone(),
        run,
        data_dir: args.data_dir.clone().unwrap_or_else(Store::default_root),
        credentials,
        import_roots: if args.import_roots.is_empty() {
            std::env::current_dir().into_iter().collect()
        } else {
            args.import_roots.clone()
        },
    };
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(cancel.clone()));
    let printer = Printer::stderr();
    let output_printer = printer.clone();
    let on_output: std::sync::Arc<dyn Fn(String, String) + Send + Sync> =
        std::sync::Arc::new(move |task, line| output_printer.plain(&format!("[{task}] {line}")));
    let result = run_spec(&request, &cancel, on_output).await;
    signals.abort();
    match result {
        Ok(record) => {
            if args.format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&record).expect("a run record serialises"));
            }
            let metrics: Vec<String> = record.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let line = format!("run {} {} {}", record.id, record.state, metrics.join(" "));
            match record.state.as_str() {
                "SUCCEEDED" | "SKIPPED" => {
                    printer.success(line.trim_end());
                    ExitCode::SUCCESS
                }
                "PENDING" | "RUNNING" => {
                    printer.note(line.trim_end());
                    ExitCode::SUCCESS
                }
                _ => {
                    printer.error(line.trim_end(), record.error.as_deref());
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => fatal(&crate::error_chain(&e), None),
    }
}

/// Loads the server's config and moves its `env:` secrets from the environment into it. Runs on the
/// main thread before the async runtime exists: no other thread can be reading the environment.
fn server_config(args: &ServeArgs) -> Result<crate::server::config::ServerConfig, ExitCode> {
    let label = args.config.display().to_string();
    let bytes = std::fs::read(&args.config).map_err(|e| fatal(&format!("cannot read `{label}`: {e}"), None))?;
    let mut config = crate::server::config::load(&label, &bytes).map_err(|diagnostics| {
        Printer::stderr().plain(&diagnostics.to_string());
        fatal(&format!("{label}: the server config has problems"), None)
    })?;
    let vars = config.capture_environment();
    // SAFETY: `main` has not started the runtime or any other thread yet.
    unsafe { crate::io::secrets::scrub_environment(&vars) };
    Ok(config)
}

async fn serve(args: ServeArgs, mut config: crate::server::config::ServerConfig) -> ExitCode {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let data_dir = args.data_dir.or_else(|| config.data_dir.clone()).unwrap_or_else(Store::default_root);
    let on_lifecycle = |event| match event {
        crate::server::Lifecycle::Listening(addr) => eprintln!("pipewright serve: listening on http://{addr}"),
        crate::server::Lifecycle::Stopping => {
            eprintln!("pipewright serve: stopping (running builds are cancelled and cleaned up)")
        }
    };
    match crate::server::serve(config, data_dir, on_lifecycle).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fatal(&crate::error_chain(&e), None),
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let overrides = match args.substitutions.parse() {
        Ok(o) => o,
        Err(e) => return fatal(&e, None),
    };
    let mut secret_sources: BTreeMap<String, SecretSource> = BTreeMap::new();
    for spec in &args.secrets {
        match secrets::parse_spec(spec) {
            Ok((name, source)) => {
                secret_sources.insert(name, source);
            }
            Err(e) => return fatal(&e.to_string(), None),
        }
    }
    let credentials = match args.credentials.parse() {
        Ok(c) => c,
        Err(e) => return fatal(&e, None),
    };
    let docker = match Docker::connect().await {
        Ok(d) => d,
        Err(e) => {
            return fatal(
                &crate::error_chain(&e),
                Some("start the Docker engine, or point `DOCKER_HOST` at one; `pipewright validate` works without it"),
            );
        }
    };
    let store = Store::new(args.data_dir.clone().unwrap_or_else(Store::default_root));
    let printer = Printer::stderr();
    let swept = crate::executor::janitor::sweep(&docker, &store).await;
    if !swept.builds.is_empty() {
        let n = swept.builds.len();
        printer.note(&format!("removed what {n} crashed earlier run{} left behind", if n == 1 { "" } else { "s" }));
    }
    if let Some(e) = swept.docker_error {
        printer.warning(&format!("could not remove all that earlier runs left behind: {}", crate::error_chain(&e)));
    }
    let mut request = BuildRequest::new(SourceSpec { repo: args.repo.clone(), rev: args.commit.clone() });
    request.config_path = args.config.clone();
    request.overrides = overrides;
    request.secrets = secret_sources;
    request.pull = args.pull;
    request.project_id = args.project.clone();
    request.keep_workspace = args.keep_workspace;
    request.jobs = args.jobs;

    let mut engine = Engine::new(docker, store, crate::io::registry::Registry::new().await);
    engine.credentials = credentials;
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(cancel.clone()));
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = tokio::spawn(output::progress(events_rx, printer.clone()));
    let result = engine.build(&request, events_tx, cancel).await;
    let _ = progress.await;
    signals.abort();
    match result {
        Ok(build) => {
            if args.format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&build).expect("a record serialises"));
            }
            printer.summary(&build, &engine.store.record_path(&build.id));
            if request.keep_workspace {
                printer.note(&format!("workspace kept at {}", engine.store.work_dir(&build.id).display()));
            }
            match build.status {
                Status::Success => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            }
        }
        Err(rejected) => {
            report_rejected(&printer, &rejected);
            ExitCode::from(2)
        }
    }
}

fn report_rejected(printer: &Printer, rejected: &Rejected) {
    match rejected {
        Rejected::Config(diagnostics) => {
            printer.plain(&diagnostics.to_string());
            let errors = diagnostics.errors().count();
            printer.error(
                &format!(
                    "{}: {errors} problem{}; nothing was run",
                    diagnostics.file,
                    if errors == 1 { "" } else { "s" }
                ),
                None,
            );
        }
        Rejected::Secrets(errors) => {
            for e in errors {
                printer.error(&e.to_string(), e.hint().as_deref());
            }
        }
        Rejected::NoConfig { root, tried } => printer.error(
            &format!("no build file at the root of the build (`{root}`)"),
            Some(&format!("looked for {}; name another with `--config FILE`", tried.join(", "))),
        ),
        other => printer.error(&crate::error_chain(other), None),
    }
}

/// Ctrl-C or SIGTERM cancels the build; the engine then stops its containers and cleans up.
async fn watch_signals(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("pipewright: stopping the build (cleaning up containers, volumes and network)");
    cancel.cancel();
}
