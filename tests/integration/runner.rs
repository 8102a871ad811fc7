//! The local pipeline runner's conformance suite: compiled pipelines run with the real Docker engine,
//! and what they produced checked (states, output parameters, artifact files, timings, metrics).
//!
//! Fixtures: `tests/fixtures/runner/*.yaml`, compiled from `pipelines.py` (busybox container
//! components, Python components in `local/python-ml:3.11`), and corpus pipelines whose images are
//! switched to local ones with `kfp::rewrite_pipeline`. Every test checks that no container of its
//! run is left behind; pipeline roots are temporary directories.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pipewright::io::docker::Docker;
use pipewright::kfp::{ImageTarget, rewrite_pipeline};
use pipewright::runner::RunState;
use pipewright::runner::local::{LocalRun, LocalRunner, RunError, RunEvent, TaskResult, TaskState};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{BUSYBOX, GitRepo, docker_ready, fixture, labelled, pipewright, run_build};

const PYTHON_ML: &str = "local/python-ml:3.11";

/// A run and everything it left: the result, the events, its temporary pipeline root.
struct Ran {
    run: LocalRun,
    events: Vec<RunEvent>,
    _root: tempfile::TempDir,
}

impl Ran {
    fn task(&self, name: &str) -> &TaskResult {
        self.run.task(name).unwrap_or_else(|| panic!("no task `{name}` in {:#?}", self.run.tasks))
    }

    fn state(&self, name: &str) -> TaskState {
        self.task(name).state
    }

    /// A file under the run's directory.
    fn file(&self, relative: &str) -> String {
        let path = self.run.dir.join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn output_lines(&self, task: &str) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RunEvent::Output { task: t, line } if t == task => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    /// (start, end) of a task in seconds, on one clock.
    fn span(&self, name: &str) -> (f64, f64) {
        let task = self.task(name);
        let seconds = |t: &Option<pipewright::record::Timestamp>| {
            t.as_ref()
                .map(|t| t.0.unix_timestamp_nanos() as f64 / 1e9)
                .unwrap_or_else(|| panic!("`{name}` has no timing"))
        };
        (seconds(&task.started), seconds(&task.finished))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Runs `spec` with `parameters`; `cancel_after` cancels the run once that many tasks have started.
fn run_with(spec: &str, label: &str, parameters: Value, cancel_after: Option<usize>) -> Result<Ran, RunError> {
    run_importing(spec, label, parameters, cancel_after, &[])
}

/// [`run_with`], where importers may take local files from `imports`.
fn run_importing(
    spec: &str,
    label: &str,
    parameters: Value,
    cancel_after: Option<usize>,
    imports: &[std::path::PathBuf],
) -> Result<Ran, RunError> {
    let root = tempfile::tempdir().expect("tempdir");
    let build_id = format!("runner-test-{}", uuid::Uuid::new_v4());
    let events = Mutex::new(Vec::new());
    let cancel = CancellationToken::new();
    let parameters = parameters.as_object().cloned().unwrap_or_default();
    let result = runtime().block_on(async {
        let docker = Docker::connect().await.expect("docker");
        let runner = LocalRunner::new(docker.clone(), root.path().to_path_buf(), build_id.clone())
            .with_stop_grace(Duration::from_secs(2))
            .with_import_roots(imports)
            .expect("import roots");
        let on_event = |event: RunEvent| {
            let mut events = events.lock().expect("events lock");
            if let RunEvent::Output { task, line } = &event {
                eprintln!("[{task}] {line}");
            }
            events.push(event);
            let started = events.iter().filter(|e| matches!(e, RunEvent::TaskStarted { .. })).count();
            if cancel_after.is_some_and(|n| started >= n) {
                cancel.cancel();
            }
        };
        let result = runner.run(spec, label, &parameters, cancel.clone(), on_event).await;
        let left = docker.list_labelled(&format!("pipewright.build={build_id}")).await.expect("list");
        assert!(left.containers.is_empty(), "containers left behind: {:?}", left.containers);
        result
    });
    let run = result?;
    Ok(Ran { run, events: events.into_inner().expect("events"), _root: root })
}

fn run_fixture(name: &str, parameters: Value) -> Ran {
    let path = fixture(&format!("runner/{name}.yaml"));
    let spec = std::fs::read_to_string(&path).expect("fixture");
    run_with(&spec, name, parameters, None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A corpus pipeline with its images switched to `image` (and, for Python components, its SDK pin to
/// the image's kfp, which pip can install offline).
fn corpus(file: &str, repositories: &[&str], image: &str) -> String {
    let path = fixture(&format!("kfp/pipelines/kubeflow__pipelines__test_data__sdk_compiled_pipelines__valid__{file}"));
    let text = std::fs::read_to_string(&path).expect("corpus file");
    let targets: Vec<ImageTarget> = repositories
        .iter()
        .map(|r| ImageTarget { component: r.to_string(), repository: r.to_string(), reference: image.to_string() })
        .collect();
    let rewritten = rewrite_pipeline(&text, file, &targets).expect("rewrite").text;
    let pin = regex::Regex::new(r"'kfp==[0-9][0-9a-z.\-]*'").expect("regex");
    pin.replace_all(&rewritten, "'kfp==2.17.3'").into_owned()
}

fn assert_succeeded(ran: &Ran) {
    assert_eq!(ran.run.state, RunState::Succeeded, "{:?}\n{:#?}", ran.run.error, ran.run.tasks);
}

#[test]
fn parameters_artifacts_and_placeholders() {
    if !docker_ready() {
        return;
    }
    let ran =
        run_fixture("parameters_and_artifacts", json!({"text": "hi there", "times": 5, "ratio": 2.0, "flag": true}));
    assert_succeeded(&ran);
    let output = ran.run.outputs["Output"].as_str().expect("a string output");
    // Numbers in their shortest form, booleans lower case, lists and structs as JSON, IfPresent, Concat.
    assert!(output.starts_with(r#"got hi there|5|2|true|[1,"a"]|{"k":[true]}|/"#), "{output}");
    assert!(output.contains("/produce/artifacts/data|--suffix|x|job=parameters-and-artifacts-2"), "{output}");
    // The artifact was registered though no ExecutorOutput named it, and flowed to `consume`.
    assert_eq!(ran.file("consume/artifacts/copy"), "rows\nhi there\n");
    assert_eq!(ran.output_lines("consume"), ["rows", "hi there"]);
    assert!(ran.file("produce/parameters/msg").starts_with("hi there|5|"));
    assert_eq!(ran.task("produce").exit_code, Some(0));
    assert!(ran.events.contains(&RunEvent::TaskStarted { task: "produce".into() }));
    assert!(ran.events.contains(&RunEvent::TaskFinished {
        task: "consume".into(),
        state: TaskState::Succeeded,
        exit_code: Some(0)
    }));
}

#[test]
fn parameters_are_checked_before_anything_runs() {
    if !docker_ready() {
        return;
    }
    let spec = std::fs::read_to_string(fixture("runner/parameters_and_artifacts.yaml")).expect("fixture");
    let error = |parameters: Value| run_with(&spec, "p.yaml", parameters, None).err().map(|e| e.to_string());
    assert_eq!(
        error(json!({"txt": "x"})).as_deref(),
        Some(
            "p.yaml: unknown pipeline parameter `txt`\n\nhint: the pipeline's parameters are `flag`, `ratio`, `tag`, `text`, `times`"
        )
    );
    assert_eq!(
        error(json!({"times": 2.5})).as_deref(),
        Some("p.yaml: pipeline parameter `times` must be an integer, got a number (2.5)")
    );
    assert_eq!(
        error(json!({"flag": "yes"})).as_deref(),
        Some("p.yaml: pipeline parameter `flag` must be a boolean, got a string (\"yes\")")
    );
}

#[test]
fn independent_tasks_run_in_parallel() {
    if !docker_ready() {
        return;
    }
    let ran = run_fixture("parallel", json!({"seconds": 2}));
    assert_succeeded(&ran);
    let naps: Vec<(f64, f64)> = ["nap", "nap-2", "nap-3"].iter().map(|n| ran.span(n)).collect();
    let last_start = naps.iter().map(|s| s.0).fold(f64::MIN, f64::max);
    let first_end = naps.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    assert!(last_start < first_end, "the three naps did not overlap: {naps:?}");
    let join = ran.span("nap-4");
    assert!(naps.iter().all(|s| s.1 <= join.0), "the join started before the naps ended: {naps:?} {join:?}");
    assert_eq!(ran.file("nap/parameters/done"), "slept\n");
}

#[test]
fn nested_dags_pass_outputs_up_and_down() {
    if !docker_ready() {
        return;
    }
    let ran = run_fixture("nested", json!({}));
    assert_succeeded(&ran);
    assert_eq!(ran.run.outputs["Output"], json!("HEY!!!"));
    for task in ["inner", "inner/shout", "inner/shout-2", "shout"] {
        assert_eq!(ran.state(task), TaskState::Succeeded, "{task}");
    }
    assert_eq!(ran.file("inner/shout-2/artifacts/note"), "note for HEY!\n");
    let (inner_start, inner_end) = ran.span("inner");
    let (child_start, child_end) = ran.span("inner/shout-2");
    assert!(inner_start <= child_start && child_end <= inner_end);
}

#[test]
fn conditions_true_and_false_and_oneof() {
    if !docker_ready() {
        return;
    }
    let ran = run_fixture("conditions", json!({"side": "heads", "value": 7}));
    assert_succeeded(&ran);
    assert_eq!(ran.run.outputs["Output"], json!("it was heads"));
    let states = [
        ("condition-branches-1/condition-2", TaskState::Succeeded),
        ("condition-branches-1/condition-2/echo-2", TaskState::Succeeded),
        ("condition-branches-1/condition-3", TaskState::Skipped),
        ("condition-branches-1/condition-4", TaskState::Skipped),
        ("condition-5", TaskState::Succeeded),
        ("condition-5/echo-5", TaskState::Succeeded),
        ("condition-6", TaskState::Skipped),
    ];
    for (task, state) in states {
        assert_eq!(ran.state(task), state, "{task}");
    }
    assert!(ran.run.task("condition-branches-1/condition-3/echo-3").is_none(), "a skipped branch's tasks never appear");

    let ran = run_fixture("conditions", json!({"side": "edge", "value": 3}));
    assert_succeeded(&ran);
    assert_eq!(ran.run.outputs["Output"], json!("on its edge"));
    assert_eq!(ran.state("condition-branches-1/condition-2"), TaskState::Skipped);
    assert_eq!(ran.state("condition-branches-1/condition-4/echo-4"), TaskState::Succeeded);
    assert_eq!(ran.state("condition-5"), TaskState::Skipped);
    assert_eq!(ran.file("condition-6/echo-6/parameters/out"), "small");
}

#[test]
fn parallel_for_over_lists_and_artifacts() {
    if !docker_ready() {
        return;
    }
    let ran = run_fixture("loops", json!({}));
    assert_succeeded(&ran);
    // Collected outputs, in item order.
    assert_eq!(ran.run.outputs["Output"], json!("[10,20,30]"));
    assert_eq!(ran.file("for-loop-2/times-ten[1]/parameters/out"), "20\n");
    // parallelism=2: the third iteration starts after one of the first two ended.
    let spans: Vec<(f64, f64)> = (0..3).map(|i| ran.span(&format!("for-loop-2/times-ten[{i}]"))).collect();
    let mut starts: Vec<f64> = spans.iter().map(|s| s.0).collect();
    starts.sort_by(f64::total_cmp);
    let first_end = spans.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    assert!(starts[2] >= first_end, "more than 2 iterations at once: {spans:?}");
    // Items that are structs, read through `parseJson(string_value)["a"]`.
    assert_eq!(ran.file("for-loop-3/pair[0]/parameters/out"), "x-1");
    assert_eq!(ran.file("for-loop-3/pair[1]/parameters/out"), "y-2");
    // A loop over the artifacts a nested loop collected.
    assert_eq!(ran.state("make-datasets/for-loop-1/times-ten[1]"), TaskState::Succeeded);
    assert_eq!(ran.file("for-loop-4/read[0]/parameters/out"), "item 4\n");
    assert_eq!(ran.file("for-loop-4/read[1]/parameters/out"), "item 5\n");
}

#[test]
fn exit_handler_runs_after_a_failure() {
    if !docker_ready() {
        return;
    }
    let started = Instant::now();
    let ran = run_fixture("exit_handler", json!({"message": "finally"}));
    assert!(started.elapsed() < Duration::from_secs(45), "the 60 s nap was not stopped");
    assert_eq!(ran.run.state, RunState::Failed);
    assert_eq!(ran.run.error.as_deref(), Some("task `exit-handler-1/fail` failed: exited with code 3"));
    let states = [
        ("exit-handler-1", TaskState::Failed),
        ("exit-handler-1/fail", TaskState::Failed),
        ("exit-handler-1/nap", TaskState::Succeeded),
        ("exit-handler-1/nap-2", TaskState::Cancelled),
        ("exit-handler-1/nap-3", TaskState::NotTriggered),
        ("report", TaskState::Succeeded),
    ];
    for (task, state) in states {
        assert_eq!(ran.state(task), state, "{task}");
    }
    assert_eq!(ran.task("exit-handler-1/fail").exit_code, Some(3));
    assert_eq!(ran.output_lines("exit-handler-1/fail"), ["failing with 3"]);
    // `taskFinalStatus` reached the exit task, which returned it through its ExecutorOutput.
    let executor_output: Value = serde_json::from_str(&ran.file("report/executor_output.json")).expect("JSON");
    assert_eq!(executor_output["parameterValues"]["Output"], json!("finally: FAILED from exit-handler-1"));
    let (report_start, _) = ran.span("report");
    let (_, handler_end) = ran.span("exit-handler-1");
    assert!(handler_end <= report_start);
}

#[test]
fn a_failing_task_fails_the_run_and_stops_its_siblings() {
    if !docker_ready() {
        return;
    }
    let started = Instant::now();
    let ran = run_fixture("failing", json!({}));
    assert!(started.elapsed() < Duration::from_secs(45), "the 60 s nap was not stopped");
    assert_eq!(ran.run.state, RunState::Failed);
    assert_eq!(ran.run.error.as_deref(), Some("task `fail` failed: exited with code 2"));
    assert_eq!(ran.task("fail").exit_code, Some(2));
    assert_eq!(ran.state("echo"), TaskState::Succeeded);
    assert_eq!(ran.state("nap"), TaskState::Cancelled);
    assert_eq!(ran.state("echo-2"), TaskState::NotTriggered);
    // `ignore_upstream_failure()`: runs after its upstream failed.
    assert_eq!(ran.state("echo-3"), TaskState::Succeeded);
    assert_eq!(ran.file("echo-3/parameters/out"), "cleanup");
}

#[test]
fn importer_and_metrics() {
    if !docker_ready() {
        return;
    }
    let outside = tempfile::tempdir().expect("tempdir");
    let data = outside.path().join("data.csv");
    std::fs::write(&data, "imported data\n").expect("write");
    let spec = std::fs::read_to_string(fixture("runner/importer_and_metrics.yaml")).expect("fixture");
    let parameters = json!({"uri": data.display().to_string()});
    // Not from a directory the run may import from: the reading task fails, naming why.
    let refused = run_with(&spec, "importer_and_metrics", parameters.clone(), None).expect("runs");
    assert_eq!(refused.state("read"), TaskState::Failed);
    let error = refused.run.error.clone().unwrap_or_default();
    assert!(error.contains("is a host path outside the run"), "{error}");
    let imports = [outside.path().to_path_buf()];
    let ran = run_importing(&spec, "importer_and_metrics", parameters, None, &imports).expect("runs");
    assert_succeeded(&ran);
    assert_eq!(ran.state("importer"), TaskState::Succeeded);
    assert_eq!(ran.file("read/parameters/out"), "imported data\n");
    // Metrics from the artifact file (the metadata was empty); the string entry is not a metric.
    assert_eq!(ran.run.metrics, [("accuracy".to_string(), 0.75), ("loss".to_string(), 0.5)].into());
}

#[test]
fn cancelling_stops_everything_quickly() {
    if !docker_ready() {
        return;
    }
    let spec = std::fs::read_to_string(fixture("runner/sleeper.yaml")).expect("fixture");
    let started = Instant::now();
    let ran = run_with(&spec, "sleeper.yaml", json!({}), Some(2)).expect("runs");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert_eq!(ran.run.state, RunState::Cancelled);
    assert_eq!(ran.run.error.as_deref(), Some("the run was cancelled"));
    assert_eq!(ran.state("sleeper"), TaskState::Cancelled);
    assert_eq!(ran.state("sleeper-2"), TaskState::Cancelled);
}

#[test]
fn a_missing_image_is_a_clear_task_error() {
    if !docker_ready() {
        return;
    }
    let spec =
        std::fs::read_to_string(fixture("runner/sleeper.yaml")).expect("fixture").replace(BUSYBOX, "local/absent:404");
    let ran = run_with(&spec, "absent.yaml", json!({}), None).expect("runs");
    assert_eq!(ran.run.state, RunState::Failed);
    let error = ran.run.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("task `sleeper")
            && error.contains("failed: image `local/absent:404` is not present locally and could not be pulled"),
        "{error}"
    );
}

#[test]
fn corpus_container_pipelines() {
    if !docker_ready() {
        return;
    }
    let two_step = corpus("critical__two_step_pipeline_containerized.yaml", &["alpine"], BUSYBOX);
    let ran = run_with(&two_step, "two_step", json!({}), None).expect("runs");
    assert_succeeded(&ran);
    assert_eq!(ran.output_lines("component2"), ["Hello KFP Containerized!"]);

    let producer_consumer = corpus(
        "critical__producer_consumer_param_pipeline.yaml",
        &["registry.access.redhat.com/ubi9/python-311"],
        BUSYBOX,
    );
    let ran = run_with(&producer_consumer, "producer_consumer", json!({"text": "Hi"}), None).expect("runs");
    assert_succeeded(&ran);
    assert!(ran.output_lines("consumer").contains(&"Hi, this is an output parameter".to_string()));

    let after = corpus("essential__pipeline_with_after.yaml", &["alpine"], BUSYBOX);
    let ran = run_with(&after, "after", json!({}), None).expect("runs");
    assert_succeeded(&ran);
    assert!(ran.span("print-text").1 <= ran.span("print-text-2").0);
    assert!(ran.span("print-text-2").1 <= ran.span("print-text-3").0);
    assert!(ran.output_lines("print-text-3").contains(&"3rd task".to_string()));
}

#[test]
fn corpus_lightweight_python_pipelines() {
    if !docker_ready() {
        return;
    }
    let image = std::process::Command::new("docker").args(["image", "inspect", PYTHON_ML]).output();
    assert!(image.is_ok_and(|o| o.status.success()), "`{PYTHON_ML}` is missing (run `.ci/setup`)");
    let functions = corpus("essential__lightweight_python_functions_pipeline.yaml", &["python"], PYTHON_ML);
    let ran = run_with(&functions, "functions", json!({"message": "hello"}), None).expect("runs");
    assert_succeeded(&ran);
    assert_eq!(ran.file("preprocess/parameters/output_parameter_path"), "hello");
    assert_eq!(ran.file("preprocess/parameters/output_bool_parameter_path"), "True");
    assert_eq!(ran.file("preprocess/artifacts/output_dataset_one"), "hello");
    assert_eq!(ran.state("train"), TaskState::Succeeded);
    assert!(Path::new(&ran.run.dir.join("train/artifacts/model")).exists());

    let metrics = corpus("essential__pipeline_with_metrics_outputs.yaml", &["python"], PYTHON_ML);
    let ran = run_with(&metrics, "metrics", json!({}), None).expect("runs");
    assert_succeeded(&ran);
    let names: Vec<&str> = ran.run.metrics.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "for-loop-2/output-metrics-2[0]/accuracy",
            "for-loop-2/output-metrics-2[1]/accuracy",
            "output-metrics/accuracy"
        ]
    );
    assert!(ran.run.metrics.values().all(|v| (0.0..=100.0).contains(v)));

    let exit = corpus("failing__pipeline_with_exit_handler.yaml", &["python"], PYTHON_ML);
    let ran = run_with(&exit, "exit", json!({}), None).expect("runs");
    assert_eq!(ran.run.state, RunState::Failed);
    assert_eq!(ran.run.error.as_deref(), Some("task `exit-handler-1/fail-op` failed: exited with code 1"));
    assert_eq!(ran.state("print-op"), TaskState::Succeeded);
    assert!(ran.output_lines("print-op").contains(&"Exit handler has worked!".to_string()));
}

#[test]
fn run_pipeline_runs_a_spec_alone_and_its_timeout_stops_it() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let spec = fixture("runner/parallel.yaml");
    let out = pipewright()
        .args(["run-pipeline", "--format", "json", "--data-dir"])
        .arg(data.path())
        .arg(&spec)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(record["state"], "SUCCEEDED");
    assert_eq!(record["backend"], "local");

    let started = std::time::Instant::now();
    let out = pipewright()
        .args(["run-pipeline", "--timeout", "2s", "--format", "json", "--data-dir"])
        .arg(data.path())
        .arg(fixture("runner/sleeper.yaml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(record["state"], "CANCELLED");
    assert!(started.elapsed().as_secs() < 20, "the timeout stopped the run");
    let left = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=pipewright.run"])
        .output()
        .expect("docker ps");
    let ids = String::from_utf8_lossy(&left.stdout).to_string();
    // Other tests may be running local pipelines at the same moment; only ours must be gone.
    let ours = record["id"].as_str().unwrap_or_default();
    assert!(ids.split_whitespace().all(|id| !inspect_run_label(id).contains(ours)), "containers left: {ids}");
}

fn inspect_run_label(id: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{index .Config.Labels \"pipewright.run\"}}", id])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_build_whose_run_times_out_ends_timeout_with_nothing_left() {
    if !docker_ready() {
        return;
    }
    let spec = std::fs::read_to_string(fixture("runner/sleeper.yaml")).expect("fixture");
    let mut repo = GitRepo::new();
    repo.write(
        "cloudbuild.yaml",
        &format!("steps: [{{name: '{BUSYBOX}', args: ['true']}}]\npipeline:\n  name: sleeper\n  spec: sleeper.yaml\nrun:\n  backend: local\n  timeout: 3s\n"),
    )
    .write("sleeper.yaml", &spec);
    repo.commit("a run that outlives its timeout");
    let started = std::time::Instant::now();
    let r = run_build(repo.path(), &[]);
    assert_eq!(r.status(), "TIMEOUT", "{}", r.stderr());
    assert_eq!(r.record["run"]["state"], "CANCELLED");
    assert!(started.elapsed().as_secs() < 30, "stopped within the timeout and the stop grace");
    let id = r.record["id"].as_str().expect("id");
    assert_eq!(labelled(id), (0, 0, 0), "no container of the run is left");
}
