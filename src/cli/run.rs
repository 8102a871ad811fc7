//! `pipewright run [REPO]`: clones a repository at a commit and runs its build file's steps in
//! containers, with the build's progress on stderr.
//!
//! Exit codes: 0 the build succeeded, 1 it ran and did not (its summary says how), 2 it could not
//! start: bad arguments, Docker unreachable, a build file with problems or secrets without values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::common::{BuildFlags, Format, watch_signals};
use super::error::{CliError, Outcome};
use super::output::{self, Printer};
use crate::engine::{BuildRequest, Engine};
use crate::io::docker::Docker;
use crate::io::secrets::{self, SecretSource};
use crate::io::source::SourceSpec;
use crate::io::store::Store;
use crate::record::Status;

#[derive(Args, Debug)]
pub(super) struct RunArgs {
    /// Repository to build: a path (default `.`; a subdirectory of a repository builds that directory)
    /// or a clone URL
    #[arg(default_value = ".")]
    repo: String,
    /// Revision to build: a commit, branch, tag or `HEAD`
    #[arg(long, default_value = "HEAD")]
    commit: String,
    #[command(flatten)]
    build: BuildFlags,
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

pub(super) async fn run(args: RunArgs) -> Result<Outcome, CliError> {
    let overrides = args.build.substitutions.parse()?;
    let mut secret_sources: BTreeMap<String, SecretSource> = BTreeMap::new();
    for spec in args.build.secrets() {
        let (name, source) = secrets::parse_spec(spec)?;
        secret_sources.insert(name, source);
    }
    let credentials = args.build.credentials.parse()?;
    let docker = Docker::connect().await.map_err(|e| {
        CliError::unable(crate::error_chain(&e))
            .with_hint("start the Docker engine, or point `DOCKER_HOST` at one; `pipewright validate` works without it")
    })?;
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
    request.config_path = args.build.config.clone();
    request.overrides = overrides;
    request.secrets = secret_sources;
    request.pull = args.build.pull;
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
    let build = result?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&build).expect("a record serialises"));
    }
    printer.summary(&build, &engine.store.record_path(&build.id));
    if request.keep_workspace {
        printer.note(&format!("workspace kept at {}", engine.store.work_dir(&build.id).display()));
    }
    Ok(Outcome::of(build.status == Status::Success))
}
