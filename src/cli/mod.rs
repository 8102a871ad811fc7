//! The command line: argument types, commands, output and exit codes.
//!
//! The only module that prints. stdout carries data (`--format json`); progress, logs and errors go to
//! stderr. Exit codes: 0 success, 1 the build ran and failed (or the file is invalid), 2 pipewright
//! could not do what was asked (bad arguments, unreadable config, Docker unreachable).
//!
//! This file holds the top-level `Cli`, dispatch and [`main`]; each command is a file of its own
//! (its arguments and its function), `common` the arguments several share. A command returns
//! `Result<Outcome, CliError>` (`error.rs` says what each exit code means), and [`main`] is the one
//! place an error is printed.

mod builds;
mod common;
mod diff;
mod error;
mod github;
mod output;
mod promote;
mod remote;
mod rewrite;
mod run;
mod run_pipeline;
mod serve;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;
use error::{CliError, Outcome};

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
    Run(run::RunArgs),
    /// Check a build file without running anything (no Docker needed)
    Validate(validate::ValidateArgs),
    /// Point the component specs of a checkout at the images of its HEAD commit, in place
    Rewrite(rewrite::RewriteArgs),
    /// Run a compiled pipeline spec on its own (local Docker, Kubeflow Pipelines or Vertex AI)
    RunPipeline(run_pipeline::RunPipelineArgs),
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
    Serve(serve::ServeArgs),
    /// Run a build inside a GitHub Actions job: the workflow's event decides (triggers, path filters),
    /// logs are grouped per step, failures annotated, the summary and outputs written for the runner
    GithubAction(github::GithubActionArgs),
    /// The builds in the data directory: `list`, `show BUILD`, `logs BUILD [--follow]`
    Builds(builds::BuildsArgs),
    /// Print the version
    Version,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match dispatch(cli.command) {
        Ok(outcome) => outcome.into(),
        Err(error) => error.report(),
    }
}

fn dispatch(command: Command) -> Result<Outcome, CliError> {
    match command {
        Command::Version => {
            println!("pipewright {}", env!("CARGO_PKG_VERSION"));
            Ok(Outcome::Success)
        }
        Command::Validate(args) => validate::validate(args),
        Command::Diff(args) => diff::diff(args),
        Command::Schema => {
            let schema = config::schema::schema();
            output::data(&format!("{}\n", serde_json::to_string_pretty(&schema).expect("the schema serialises")));
            Ok(Outcome::Success)
        }
        Command::RunPipeline(args) => block_on(run_pipeline::run_pipeline(args)),
        Command::Rewrite(args) => block_on(rewrite::rewrite(args)),
        Command::Promote(args) => block_on(promote::promote(args)),
        Command::Approve(args) => block_on(promote::approve(args)),
        Command::Rollback(args) => block_on(promote::rollback(args)),
        Command::Envs(args) => block_on(promote::envs(args)),
        Command::Run(args) => block_on(run::run(args)),
        // The config is read before the runtime starts: its `env:` secrets leave the environment
        // while the process still has one thread.
        Command::Serve(args) => {
            let config = serve::server_config(&args)?;
            block_on(serve::serve(args, config))
        }
        Command::GithubAction(args) => block_on(github::github_action(args)),
        Command::Builds(args) => block_on(builds::builds(args)),
    }
}

fn block_on(command: impl Future<Output = Result<Outcome, CliError>>) -> Result<Outcome, CliError> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| CliError::unable(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(command)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIPEWRIGHT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
