//! Benchmarks of the steps phase against their baselines, run side by side (docs/SPEC.md §16):
//!
//! 1. per-step overhead: each step of a 20-step sequential build (`true` in busybox), from the end of
//!    the previous step to its own end, against `docker run --rm` of the same image and command;
//!    median of 20 each; budget ≤ 1.15×.
//! 2. DAG makespan: a build of parallel `sleep` steps against its critical path; budget ≤ 1.1×.
//! 3. per-step overhead of the sandbox executor (an untrusted build: gVisor on the sandbox's engine),
//!    measured the same way, against `docker run --rm` on the host (budget ≤ 1.5×), with the docker
//!    executor's figure and `docker run --rm --runtime runsc` on the sandbox's engine beside it.
//!
//! Needs the Docker engine and `local/busybox:1` (`.ci/setup`), and for 3 the sandbox's engine
//! (`steps/sandbox/start.sh`; the row is left out, with a note, without it). Run:
//! `cargo bench --bench steps`.

use std::process::Command;
use std::time::{Duration, Instant};

use pipewright::engine::{BuildEvent, BuildRequest, Engine, PullPolicy, Sandbox};
use pipewright::executor::{SandboxConfig, SandboxExecutor};
use pipewright::io::docker::Docker;
use pipewright::io::source::SourceSpec;
use pipewright::io::store::Store;
use pipewright::record::Build;
use pipewright::trust::{Trust, TrustRecord};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "local/busybox:1";
const RUNS: usize = 20;

fn main() {
    let image = Command::new("docker").args(["image", "inspect", IMAGE]).output();
    if !image.is_ok_and(|o| o.status.success()) {
        eprintln!("the benchmark needs Docker and `{IMAGE}`: run `.ci/setup` first");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let data = tempfile::tempdir().expect("tempdir");
    let mut engine = runtime.block_on(async {
        Engine::new(
            Docker::connect().await.expect("docker"),
            Store::new(data.path()),
            pipewright::io::registry::Registry::new().await,
        )
    });
    let config = SandboxConfig::default();
    let sandbox = runtime.block_on(SandboxExecutor::connect(&config, engine.docker.clone()));

    // Warm up both paths once so neither pays for a cold page cache.
    docker_run();
    let (warm, _) = run_build(&runtime, &engine, &sequential(2));
    assert_eq!(warm.status.as_str(), "SUCCESS");

    let docker: Vec<f64> = (0..RUNS).map(|_| docker_run()).collect();
    let (build, finished) = run_build(&runtime, &engine, &sequential(RUNS + 1));
    assert_eq!(build.status.as_str(), "SUCCESS", "{:?}", build.failure_info);
    let mut ours: Vec<f64> = Vec::new();
    for pair in finished.windows(2) {
        ours.push((pair[1] - pair[0]).as_secs_f64());
    }
    let step_overhead = median(&ours);
    let docker_median = median(&docker);

    let (dag, _) = run_build(&runtime, &engine, DAG);
    assert_eq!(dag.status.as_str(), "SUCCESS", "{:?}", dag.failure_info);
    let makespan = dag.timing["BUILD"].seconds().expect("BUILD timing");
    let nominal = DAG_CRITICAL_PATH.as_secs_f64();
    let durations: Vec<f64> =
        dag.steps.iter().map(|s| s.timing.as_ref().and_then(|t| t.seconds()).expect("step timing")).collect();
    let measured = critical_path(&durations, DAG_DEPS);

    // The sandbox executor: the same sequential build, untrusted.
    let sandboxed = match sandbox {
        Ok(executor) => {
            engine.sandbox = Sandbox::Ready { executor: std::sync::Arc::new(executor), limits: Default::default() };
            let untrusted = TrustRecord { level: Trust::Untrusted, reason: "benchmark".into() };
            let (warm, _) = run_build_as(&runtime, &engine, &sequential(2), untrusted.clone());
            assert_eq!(warm.status.as_str(), "SUCCESS", "{:?}", warm.failure_info);
            let (build, finished) = run_build_as(&runtime, &engine, &sequential(RUNS + 1), untrusted);
            assert_eq!(build.status.as_str(), "SUCCESS", "{:?}", build.failure_info);
            assert_eq!(build.executor, "sandbox");
            let steps: Vec<f64> = finished.windows(2).map(|p| (p[1] - p[0]).as_secs_f64()).collect();
            let host = config.docker.clone();
            let runsc: Vec<f64> = (0..RUNS).map(|_| docker_run_at(&host, &["--runtime", "runsc"])).collect();
            Ok((median(&steps), median(&runsc)))
        }
        Err(e) => Err(e.to_string()),
    };

    println!();
    println!("| benchmark | pipewright | baseline | ratio | budget |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| per-step overhead, median of {RUNS} (`true` in busybox) | {:.0} ms | {:.0} ms (`docker run --rm`) | {:.2}x | <= 1.15x |",
        step_overhead * 1000.0,
        docker_median * 1000.0,
        step_overhead / docker_median
    );
    println!(
        "| DAG of parallel sleeps (7 steps, 3 chains) | {makespan:.2} s makespan | {nominal:.2} s critical path of the sleeps | {:.3}x | <= 1.10x |",
        makespan / nominal
    );
    println!(
        "| same DAG, scheduling only | {makespan:.2} s makespan | {measured:.2} s critical path of the steps' own durations | {:.3}x | - |",
        makespan / measured
    );
    match sandboxed {
        Ok((sandbox_step, runsc)) => {
            println!(
                "| sandbox executor per-step overhead, median of {RUNS} | {:.0} ms | {:.0} ms (`docker run --rm`, host) | {:.2}x | <= 1.5x |",
                sandbox_step * 1000.0,
                docker_median * 1000.0,
                sandbox_step / docker_median
            );
            println!(
                "| sandbox executor against the docker executor | {:.0} ms | {:.0} ms (docker executor) | {:.2}x | - |",
                sandbox_step * 1000.0,
                step_overhead * 1000.0,
                sandbox_step / step_overhead
            );
            println!(
                "| sandbox executor against the sandbox's own engine | {:.0} ms | {:.0} ms (`docker run --rm --runtime runsc`) | {:.2}x | - |",
                sandbox_step * 1000.0,
                runsc * 1000.0,
                sandbox_step / runsc
            );
        }
        Err(why) => println!("| sandbox executor | not measured: {why} | | | |"),
    }
}

/// `docker run --rm` of the benchmark's command on the engine at `host`.
fn docker_run_at(host: &str, extra: &[&str]) -> f64 {
    let start = Instant::now();
    let out = Command::new("docker")
        .args(["-H", host, "run", "--rm", "--network", "none"])
        .args(extra)
        .args([IMAGE, "true"])
        .output()
        .expect("docker runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    start.elapsed().as_secs_f64()
}

fn docker_run() -> f64 {
    let start = Instant::now();
    let out = Command::new("docker").args(["run", "--rm", IMAGE, "true"]).output().expect("docker runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    start.elapsed().as_secs_f64()
}

fn sequential(n: usize) -> String {
    let mut text = String::from("steps:\n");
    for _ in 0..n {
        text.push_str(&format!("- {{name: '{IMAGE}', args: ['true']}}\n"));
    }
    text
}

/// Three chains and a join; the longest chain is b (8 s) → e (6 s) → g (4 s) = 18 s. Steps last
/// seconds, as test and lint steps do, so the fixed cost of starting a container (measured above)
/// does not hide how well independent steps overlap.
const DAG: &str = "steps:
- {id: a, name: 'local/busybox:1', args: [sleep, '6'], waitFor: ['-']}
- {id: b, name: 'local/busybox:1', args: [sleep, '8'], waitFor: ['-']}
- {id: c, name: 'local/busybox:1', args: [sleep, '3'], waitFor: ['-']}
- {id: d, name: 'local/busybox:1', args: [sleep, '5'], waitFor: [a, c]}
- {id: e, name: 'local/busybox:1', args: [sleep, '6'], waitFor: [b]}
- {id: f, name: 'local/busybox:1', args: [sleep, '2'], waitFor: [c]}
- {id: g, name: 'local/busybox:1', args: [sleep, '4'], waitFor: [d, e, f]}
";
const DAG_CRITICAL_PATH: Duration = Duration::from_secs(18);
/// The DAG's edges, to compute the critical path of the measured step durations too.
const DAG_DEPS: &[&[usize]] = &[&[], &[], &[], &[0, 2], &[1], &[2], &[3, 4, 5]];

/// Longest chain through `deps`, each step weighing `durations[i]`.
fn critical_path(durations: &[f64], deps: &[&[usize]]) -> f64 {
    let mut finish = vec![0.0f64; durations.len()];
    for i in 0..durations.len() {
        let ready = deps[i].iter().map(|d| finish[*d]).fold(0.0, f64::max);
        finish[i] = ready + durations[i];
    }
    finish.iter().copied().fold(0.0, f64::max)
}

/// Runs one build of `config` and returns its record and when each step finished.
fn run_build(runtime: &tokio::runtime::Runtime, engine: &Engine, config: &str) -> (Build, Vec<Instant>) {
    run_build_as(
        runtime,
        engine,
        config,
        BuildRequest::new(SourceSpec { repo: String::new(), rev: String::new() }).trust,
    )
}

/// [`run_build`] of a build with trust `trust`.
fn run_build_as(
    runtime: &tokio::runtime::Runtime,
    engine: &Engine,
    config: &str,
    trust: TrustRecord,
) -> (Build, Vec<Instant>) {
    let repo = tempfile::tempdir().expect("tempdir");
    std::fs::write(repo.path().join("cloudbuild.yaml"), config).expect("write");
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"],
    ] {
        let ok = Command::new("git").args(args).current_dir(repo.path()).status().expect("git");
        assert!(ok.success());
    }
    let mut request = BuildRequest::new(SourceSpec { repo: repo.path().display().to_string(), rev: "HEAD".into() });
    request.pull = PullPolicy::Never;
    request.trust = trust;
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let collector = tokio::spawn(async move {
            let mut finished = Vec::new();
            while let Some(event) = rx.recv().await {
                if let BuildEvent::StepFinished { .. } = event {
                    finished.push(Instant::now());
                }
            }
            finished
        });
        let build = engine.build(&request, tx, CancellationToken::new()).await.expect("build starts");
        (build, collector.await.expect("collector"))
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
