//! Benchmark of the local pipeline runner against its baseline, run side by side (docs/SPEC.md §16):
//! per-task overhead, each task of a 10-task chain (`true` in busybox, `tests/fixtures/runner/chain.yaml`)
//! from the end of the task before it to its own end, against `docker run --rm` of the same image and
//! command; median of each; budget ≤ 1.2×.
//!
//! Needs the Docker engine and `local/busybox:1` (`.ci/setup`). Run: `cargo bench --bench runner`.

use std::process::Command;
use std::time::{Duration, Instant};

use pipewright::io::docker::Docker;
use pipewright::runner::RunState;
use pipewright::runner::local::{LocalRun, LocalRunner};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "local/busybox:1";
const TASKS: usize = 10;
const BUDGET: f64 = 1.2;

fn main() {
    let image = Command::new("docker").args(["image", "inspect", IMAGE]).output();
    if !image.is_ok_and(|o| o.status.success()) {
        eprintln!("the benchmark needs Docker and `{IMAGE}`: run `.ci/setup` first");
        std::process::exit(2);
    }
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/runner/chain.yaml"))
        .expect("the chain fixture");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let root = tempfile::tempdir().expect("tempdir");
    let docker = runtime.block_on(Docker::connect()).expect("docker");
    let runner = LocalRunner::new(docker, root.path().to_path_buf(), "bench-runner".into());
    let run = || -> LocalRun {
        let run = runtime
            .block_on(runner.run(&spec, "chain.yaml", &serde_json::Map::new(), CancellationToken::new(), |_| {}))
            .expect("the chain runs");
        assert_eq!(run.state, RunState::Succeeded, "{:?}", run.error);
        run
    };

    // Warm up both paths once so neither pays for a cold page cache.
    docker_run();
    run();

    let baseline: Vec<f64> = (0..TASKS).map(|_| docker_run().as_secs_f64()).collect();
    let chain = run();
    let mut finished: Vec<f64> = chain
        .tasks
        .iter()
        .map(|t| t.finished.as_ref().expect("finished").0.unix_timestamp_nanos() as f64 / 1e9)
        .collect();
    finished.sort_by(f64::total_cmp);
    // The first task also pays for the run's setup; it is measured from the first container's start.
    let first_start = chain
        .tasks
        .iter()
        .filter_map(|t| t.started.as_ref())
        .map(|t| t.0.unix_timestamp_nanos() as f64 / 1e9)
        .fold(f64::MAX, f64::min);
    let mut ours = vec![finished[0] - first_start];
    ours.extend(finished.windows(2).map(|pair| pair[1] - pair[0]));

    let (ours, theirs) = (median(&ours), median(&baseline));
    let ratio = ours / theirs;
    println!();
    println!("| benchmark | pipewright | baseline | ratio | budget |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| local pipeline run, per task, median of {TASKS} (`true` in busybox) | {:.0} ms | {:.0} ms (`docker run --rm`) | {ratio:.2}x | <= {BUDGET:.2}x |",
        ours * 1000.0,
        theirs * 1000.0,
    );
    if ratio > BUDGET {
        eprintln!("over budget: {ratio:.2}x > {BUDGET:.2}x");
    }
}

fn docker_run() -> Duration {
    let start = Instant::now();
    let status = Command::new("docker").args(["run", "--rm", IMAGE, "true"]).status().expect("docker runs");
    assert!(status.success());
    start.elapsed()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
