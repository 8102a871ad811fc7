//! Test helpers: the real binary, git repositories made by the test, the Docker check.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The busybox image `.ci/setup` builds (steps/busybox/build.sh); tests never pull.
pub const BUSYBOX: &str = "local/busybox:1";

pub fn pipewright() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipewright"));
    cmd.env("NO_COLOR", "1").env_remove("PIPEWRIGHT_DATA_DIR");
    cmd
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A git repository in a temporary directory, with pinned identities and dates so SHAs are stable.
pub struct GitRepo {
    pub dir: tempfile::TempDir,
    commits: u32,
}

impl GitRepo {
    pub fn new() -> GitRepo {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = GitRepo { dir, commits: 0 };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let date = format!("2026-01-01T00:00:{:02}Z", self.commits % 60);
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_AUTHOR_NAME", "Ada Author")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada Author")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn write(&self, path: &str, content: &str) -> &GitRepo {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
        self
    }

    pub fn commit(&mut self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.commits += 1;
        self.git(&["rev-parse", "HEAD"])
    }

    /// A repository whose only file is `cloudbuild.yaml` with `config`, committed.
    pub fn with_config(config: &str) -> GitRepo {
        let mut repo = GitRepo::new();
        repo.write("cloudbuild.yaml", config);
        repo.commit("build file");
        repo
    }
}

/// The result of `pipewright run --format json`.
pub struct RunResult {
    pub output: Output,
    pub record: Value,
    pub data: tempfile::TempDir,
}

impl RunResult {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn status(&self) -> &str {
        self.record["status"].as_str().unwrap_or("")
    }

    pub fn step(&self, i: usize) -> &Value {
        &self.record["steps"][i]
    }

    pub fn step_status(&self, i: usize) -> &str {
        self.step(i)["status"].as_str().unwrap_or("")
    }

    /// (start, end) of a step in seconds since the build started.
    pub fn step_span(&self, i: usize) -> (f64, f64) {
        let start = timestamp(&self.record["startTime"]);
        let timing = &self.step(i)["timing"];
        (timestamp(&timing["startTime"]) - start, timestamp(&timing["endTime"]) - start)
    }

    pub fn step_log(&self, i: usize) -> String {
        let id = self.record["id"].as_str().expect("id");
        std::fs::read_to_string(self.data.path().join("builds").join(id).join("logs").join(format!("step-{i}.log")))
            .expect("step log")
    }
}

pub fn timestamp(value: &Value) -> f64 {
    let text = value.as_str().unwrap_or_else(|| panic!("not a timestamp: {value}"));
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("rfc3339");
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// Runs `pipewright run REPO --format json` with a fresh data dir and the given extra arguments.
pub fn run_build(repo: &Path, args: &[&str]) -> RunResult {
    let data = tempfile::tempdir().expect("tempdir");
    let (output, record) = run_build_in(repo, data.path(), args);
    RunResult { output, record, data }
}

/// Runs `pipewright run REPO --format json` with the data directory `data` (shared between builds).
pub fn run_build_in(repo: &Path, data: &Path, args: &[&str]) -> (Output, Value) {
    let output = pipewright()
        .arg("run")
        .arg(repo)
        .args(["--format", "json", "--pull", "never", "--data-dir"])
        .arg(data)
        .args(args)
        .output()
        .expect("pipewright runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let record = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no record on stdout ({e}); exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, record)
}

/// True when Docker tests can run. Without an engine they are skipped loudly, unless
/// `PIPEWRIGHT_REQUIRE_DOCKER=1` (CI), where a missing engine or base image is a failure.
pub fn docker_ready() -> bool {
    let required = std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    let engine = Command::new("docker").args(["image", "inspect", BUSYBOX]).output();
    match engine {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if required {
                panic!("Docker tests need `{BUSYBOX}` (run `.ci/setup`): {why}");
            }
            eprintln!("SKIPPED: Docker test needs `{BUSYBOX}` (run `.ci/setup`): {why}");
            false
        }
        Err(e) => {
            if required {
                panic!("Docker tests need the docker CLI and engine: {e}");
            }
            eprintln!("SKIPPED: no Docker engine reachable ({e}); set up with `.ci/setup`");
            false
        }
    }
}

/// Docker resources labelled with `pipewright.build=<id>`, as (containers, volumes, networks), read
/// through the Docker API.
pub fn labelled(build_id: &str) -> (usize, usize, usize) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let docker = pipewright::io::docker::Docker::connect().await.expect("docker");
        let found = docker.list_labelled(&format!("pipewright.build={build_id}")).await.expect("list");
        (found.containers.len(), found.volumes.len(), found.networks.len())
    })
}
