//! `pipewright run-pipeline SPEC`: runs a compiled pipeline spec on its own (local Docker, Kubeflow
//! Pipelines or Vertex AI).
//!
//! Exit codes: 0 the run succeeded, was skipped, or is still going (`--no-wait`), 1 it ended otherwise
//! (failed, cancelled, timed out), 2 the arguments or the spec are not usable or the backend could not
//! be asked.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use super::common::{CredentialArgs, Format, watch_signals};
use super::error::{CliError, Outcome};
use super::output::Printer;
use crate::config;
use crate::io::store::Store;
use crate::plan::{RunBackend, RunPlan};
use crate::runner::{RunSpecRequest, run_spec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Local,
    Kfp,
    Vertex,
}

#[derive(Args, Debug)]
pub(super) struct RunPipelineArgs {
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

pub(super) async fn run_pipeline(args: RunPipelineArgs) -> Result<Outcome, CliError> {
    let backend = match args.backend {
        BackendArg::Local => RunBackend::Local,
        BackendArg::Kfp => match &args.host {
            Some(host) => RunBackend::Kfp { host: host.clone() },
            None => return Err(CliError::unable("`--backend kfp` needs `--host URL`")),
        },
        BackendArg::Vertex => match (&args.project, &args.location) {
            (Some(project), Some(location)) => {
                RunBackend::Vertex { project: project.clone(), location: location.clone(), endpoint: args.host.clone() }
            }
            _ => return Err(CliError::unable("`--backend vertex` needs `--project` and `--location`")),
        },
    };
    let mut parameters = serde_json::Map::new();
    for item in &args.params {
        let Some((name, value)) = item.split_once('=') else {
            return Err(CliError::unable(format!("`--param {item}` is not of the form `NAME=VALUE`")));
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        parameters.insert(name.to_string(), value);
    }
    let timeout = match args.timeout.as_deref().map(|t| (t, config::parse_duration(t))) {
        None => None,
        Some((_, Some(d))) => Some(d),
        Some((t, None)) => {
            return Err(CliError::unable(format!("`--timeout {t}` is not a duration"))
                .with_hint("write seconds with `s`, e.g. `600s`"));
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
    let credentials = args.credentials.parse()?;
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
    let on_output: Arc<dyn Fn(String, String) + Send + Sync> =
        Arc::new(move |task, line| output_printer.plain(&format!("[{task}] {line}")));
    let result = run_spec(&request, &cancel, on_output).await;
    signals.abort();
    let record = result.map_err(|e| CliError::unable(crate::error_chain(&e)))?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&record).expect("a run record serialises"));
    }
    let metrics: Vec<String> = record.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let line = format!("run {} {} {}", record.id, record.state, metrics.join(" "));
    match record.state.as_str() {
        "SUCCEEDED" | "SKIPPED" => printer.success(line.trim_end()),
        "PENDING" | "RUNNING" => printer.note(line.trim_end()),
        _ => return Err(CliError::failed(line.trim_end()).with_optional_hint(record.error)),
    }
    Ok(Outcome::Success)
}
