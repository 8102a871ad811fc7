//! Benchmark of the images phase against its baseline, run side by side (SPEC §16):
//! a rebuild of 20 unchanged components against `docker build` of each with a warm layer cache
//! (budget: at least 10× faster), and a rebuild where 1 of the 20 changed.
//!
//! Needs the Docker engine, `local/busybox:1` and the registry on 127.0.0.1:5000 (`.ci/setup`).
//! Run: `cargo bench --bench components`.

use std::process::Command;
use std::time::Instant;

use pipewright::docker::Docker;
use pipewright::engine::{BuildRequest, Engine, PullPolicy};
use pipewright::record::Build;
use pipewright::registry::Registry;
use pipewright::source::SourceSpec;
use pipewright::store::Store;
use tokio_util::sync::CancellationToken;

const COMPONENTS: usize = 20;
const BASE: &str = "local/busybox:1";

fn main() {
    let ready = Command::new("docker").args(["image", "inspect", BASE]).output().is_ok_and(|o| o.status.success())
        && Command::new("curl").args(["-sf", "http://127.0.0.1:5000/v2/"]).output().is_ok_and(|o| o.status.success());
    if !ready {
        eprintln!("the benchmark needs Docker, `{BASE}` and the registry on 127.0.0.1:5000: run `.ci/setup` first");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let prefix = format!("localhost:5000/pw-bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    write_repo(repo.path(), &prefix);
    git(repo.path(), &["init", "-q", "-b", "main"]);
    commit(repo.path(), "components");
    let engine = runtime.block_on(async {
        Engine {
            docker: Docker::connect().await.expect("docker"),
            store: Store::new(data.path()),
            registry: Registry::new().await,
        }
    });

    // First build: every image is built and pushed (this also warms Docker's layer cache).
    let first = build(&runtime, &engine, repo.path());
    let mut builds = vec![first.id.clone()];

    // Baseline: `docker build` of each context, warm cache.
    let start = Instant::now();
    for i in 0..COMPONENTS {
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &format!("pw-bench-baseline-{i}"), &format!("c{i}")])
            .current_dir(repo.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("docker build");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let baseline = start.elapsed().as_secs_f64();

    // No component changed: every image is reused.
    std::fs::write(repo.path().join("README.md"), "docs only\n").expect("write");
    commit(repo.path(), "docs");
    let unchanged = build(&runtime, &engine, repo.path());
    builds.push(unchanged.id.clone());
    assert!(unchanged.components.iter().all(|c| c.reused), "nothing changed, nothing is built");

    // One component changed.
    std::fs::write(repo.path().join("c7/data.txt"), "changed\n").expect("write");
    commit(repo.path(), "change c7");
    let one = build(&runtime, &engine, repo.path());
    builds.push(one.id.clone());
    assert_eq!(one.components.iter().filter(|c| !c.reused).count(), 1);

    let phase = |b: &Build| b.timing["COMPONENTS"].seconds().expect("COMPONENTS timing");
    println!();
    println!("| benchmark | pipewright | baseline | speed-up | budget |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| rebuild of {COMPONENTS} unchanged components | {:.2} s | {baseline:.2} s (`docker build` of each, warm cache) | {:.1}x | >= 10x |",
        phase(&unchanged),
        baseline / phase(&unchanged)
    );
    println!(
        "| rebuild with 1 of {COMPONENTS} changed | {:.2} s | {baseline:.2} s | {:.1}x | - |",
        phase(&one),
        baseline / phase(&one)
    );
    println!("| first build of {COMPONENTS} components (build + push) | {:.2} s | - | - | - |", phase(&first));

    cleanup(&prefix, &builds);
}

fn write_repo(dir: &std::path::Path, prefix: &str) {
    let mut items = String::new();
    for i in 0..COMPONENTS {
        let c = dir.join(format!("c{i}"));
        std::fs::create_dir_all(&c).expect("mkdir");
        std::fs::write(c.join("Dockerfile"), format!("FROM {BASE}\nCOPY data.txt /data.txt\n")).expect("write");
        std::fs::write(c.join("data.txt"), format!("component {i}\n")).expect("write");
        items.push_str(&format!("  - {{name: c{i}, context: c{i}}}\n"));
    }
    let config =
        format!("steps:\n- {{name: '{BASE}', args: ['true']}}\ncomponents:\n  registry: {prefix}\n  items:\n{items}");
    std::fs::write(dir.join("cloudbuild.yaml"), config).expect("write");
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git").args(args).current_dir(dir).status().expect("git");
    assert!(ok.success());
}

fn commit(dir: &std::path::Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", message]);
}

fn build(runtime: &tokio::runtime::Runtime, engine: &Engine, repo: &std::path::Path) -> Build {
    let mut request = BuildRequest::new(SourceSpec { repo: repo.display().to_string(), rev: "HEAD".into() });
    request.pull = PullPolicy::Never;
    let build = runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let build = engine.run(&request, tx, CancellationToken::new()).await.expect("build starts");
        let _ = drain.await;
        build
    });
    assert_eq!(build.status.as_str(), "SUCCESS", "{:?}", build.failure_info);
    build
}

/// Removes the registry manifests and local images the benchmark made.
fn cleanup(prefix: &str, builds: &[String]) {
    for build in builds {
        let ids = Command::new("docker")
            .args(["images", "-q", "--filter", &format!("label=pipewright.build={build}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = Command::new("docker").args(["rmi", "-f", id]).output();
        }
    }
    for i in 0..COMPONENTS {
        let _ = Command::new("docker").args(["rmi", "-f", &format!("pw-bench-baseline-{i}")]).output();
        let repo = format!("{}/c{i}", prefix.trim_start_matches("localhost:5000/"));
        let tags = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:5000/v2/{repo}/tags/list")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let tags: serde_json::Value = serde_json::from_str(&tags).unwrap_or_default();
        for tag in tags["tags"].as_array().cloned().unwrap_or_default() {
            let head = Command::new("curl")
                .args([
                    "-sfI",
                    "-H",
                    "Accept: application/vnd.docker.distribution.manifest.v2+json",
                    &format!("http://127.0.0.1:5000/v2/{repo}/manifests/{}", tag.as_str().unwrap_or_default()),
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if let Some(digest) = head.lines().find_map(|l| l.strip_prefix("Docker-Content-Digest: ")) {
                let _ = Command::new("curl")
                    .args([
                        "-sf",
                        "-X",
                        "DELETE",
                        &format!("http://127.0.0.1:5000/v2/{repo}/manifests/{}", digest.trim()),
                    ])
                    .output();
            }
        }
    }
}
