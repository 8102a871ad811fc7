//! docs/THREATS.md property 8: records are never torn or lost. An approval and a refused promotion given
//! while a real build runs (through a real server, and through the CLI in another process) are still
//! in the record after the engine's last save, and the status is final; a disk that fills up during a
//! build fails it with "record not saved", leaving the last record whole. Every check reads the record
//! file from outside.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::{Server, TOKEN_ALICE, TOKEN_BOB, config, github_push};
use crate::support::*;

/// A step long enough for approvals to land while it runs, and an environment that needs one.
const SLOW: &str = "steps:
- id: slow
  name: local/busybox:1
  args: [sleep, '6']
triggers:
- {name: main, event: push, branch: '^main$'}
environments:
- name: prod
  approval: {required: 1}
";

/// The record as it is on disk.
fn record_on_disk(data: &Path, id: &str) -> Value {
    let path = data.join("builds").join(id).join("build.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is torn ({e})", path.display()))
}

/// (environment, result, by) of every promotion note of a record.
fn notes(record: &Value) -> Vec<(String, String, String)> {
    let text = |p: &Value, k: &str| p[k].as_str().unwrap_or("").to_string();
    record["promotions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| (text(p, "environment"), text(p, "result"), text(p, "by")))
        .collect()
}

fn note(environment: &str, result: &str, by: &str) -> (String, String, String) {
    (environment.to_string(), result.to_string(), by.to_string())
}

/// Files a writer left beside the record (temporary files of a save that did not finish).
fn leftovers(data: &Path, id: &str) -> Vec<String> {
    std::fs::read_dir(data.join("builds").join(id))
        .expect("build dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// Waits for the one build under `data/builds` to have a record saying WORKING, and returns its id.
fn wait_until_working(data: &Path, seconds: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let working =
            std::fs::read_dir(data.join("builds")).into_iter().flatten().filter_map(Result::ok).find_map(|e| {
                let id = e.file_name().to_string_lossy().into_owned();
                let bytes = std::fs::read(e.path().join("build.json")).ok()?;
                let record: Value = serde_json::from_slice(&bytes).ok()?;
                (record["status"] == "WORKING").then_some(id)
            });
        if let Some(id) = working {
            return id;
        }
        assert!(Instant::now() < deadline, "no build was WORKING within {seconds} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_approval_and_a_refusal_given_while_a_build_runs_stay_in_its_record() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config(SLOW);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let server = Server::start(data.path(), &config(repo.path(), None, ""));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "build file");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    // The queue says WORKING a moment before the engine's first save; wait for the record itself.
    let id = wait_until_working(data.path(), 60);

    // While the step sleeps: alice approves for prod, bob tries to promote (refused: not finished).
    let approve = format!("/v1/projects/local/builds/{id}:approve");
    let promote = format!("/v1/projects/local/builds/{id}:promote");
    let (code, answer) =
        server.request("POST", &approve, Some(TOKEN_ALICE), Some(json!({"environment": "prod", "comment": "ok"})));
    assert_eq!(code, 200, "{answer}");
    let (code, answer) = server.request("POST", &promote, Some(TOKEN_BOB), Some(json!({"environment": "prod"})));
    assert_eq!(code, 409, "a running build cannot be promoted: {answer}");
    // Several engine saves (every 500 ms) pass while the build still runs.
    std::thread::sleep(Duration::from_millis(1500));
    let during = record_on_disk(data.path(), &id);
    assert_eq!(during["status"], "WORKING", "the notes must land during the build: {during:#}");
    assert_eq!(notes(&during), [note("prod", "approved", "alice"), note("prod", "refused", "bob")], "{during:#}");

    server.wait_for("the build to end", 60, |b| b[0]["status"] != "WORKING" && b[0]["queue"]["state"] == "done");
    let after = record_on_disk(data.path(), &id);
    assert_eq!(after["status"], "SUCCESS", "{after:#}");
    assert_eq!(
        notes(&after),
        [note("prod", "approved", "alice"), note("prod", "refused", "bob")],
        "the engine's last save dropped a note: {after:#}"
    );
    assert_eq!(leftovers(data.path(), &id), Vec::<String>::new());

    // The approval given during the build counts: bob can now promote, and that is noted too.
    let (code, answer) = server.request("POST", &promote, Some(TOKEN_BOB), Some(json!({"environment": "prod"})));
    assert_eq!(code, 200, "{answer}");
    let last = record_on_disk(data.path(), &id);
    assert_eq!(last["status"], "SUCCESS", "{last:#}");
    assert_eq!(notes(&last).last(), Some(&note("prod", "promoted", "bob")), "{last:#}");
    assert_eq!(notes(&last).len(), 3, "{last:#}");
}

/// `pipewright ARGS --data-dir DATA` as `user` (the CLI's local identity).
fn pw(data: &Path, user: &str, args: &[&str]) -> Output {
    pipewright().args(args).arg("--data-dir").arg(data).env("PIPEWRIGHT_USER", user).output().expect("pipewright runs")
}

#[test]
fn an_approval_from_another_process_while_a_build_runs_stays_in_its_record() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config(SLOW);
    let run = pipewright()
        .arg("run")
        .arg(repo.path())
        .args(["--format", "json", "--pull", "never", "--data-dir"])
        .arg(data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pipewright run starts");
    let id = wait_until_working(data.path(), 60);
    let approved = pw(data.path(), "carol", &["approve", &id, "--env", "prod", "--comment", "from the other shell"]);
    assert_eq!(approved.status.code(), Some(0), "{}", String::from_utf8_lossy(&approved.stderr));
    let output = run.wait_with_output().expect("pipewright run ends");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));

    // What `run` printed (the engine's last record) and what is on disk both have the approval.
    let printed: Value = serde_json::from_slice(&output.stdout).expect("record on stdout");
    let on_disk = record_on_disk(data.path(), &id);
    for record in [&printed, &on_disk] {
        assert_eq!(record["status"], "SUCCESS", "{record:#}");
        assert_eq!(notes(record), [note("prod", "approved", "carol (unverified)")], "{record:#}");
    }
    assert_eq!(leftovers(data.path(), &id), Vec::<String>::new());
}

/// A tmpfs of `bytes` mounted at `path`, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: &Path, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output()
            .ok()?;
        out.status.success().then(|| SmallDisk(path.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_disk_that_fills_during_a_build_fails_it_with_record_not_saved() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    // The records (and logs) live on a disk of 1 MiB; the workspace stays on the host's disk.
    let Some(disk) = SmallDisk::mount(&data.path().join("builds"), 1 << 20) else {
        let required = std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
        assert!(!required, "this test mounts a tmpfs and needs root");
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root) to fill a disk under a build");
        return;
    };
    let repo = GitRepo::with_config("steps:\n- id: slow\n  name: local/busybox:1\n  args: [sleep, '30']\n");
    let run = pipewright()
        .arg("run")
        .arg(repo.path())
        .args(["--format", "json", "--pull", "never", "--data-dir"])
        .arg(data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pipewright run starts");
    let id = wait_until_working(data.path(), 60);
    // Once the step runs (its log exists), something else fills the disk.
    let step_log = data.path().join("builds").join(&id).join("logs").join("step-0.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !step_log.exists() {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let filler = data.path().join("builds").join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler");
    let chunk = vec![0u8; 64 << 10];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    drop(file);
    let started = Instant::now();
    let output = run.wait_with_output().expect("pipewright run ends");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "the build must fail:\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the build was not stopped when its record could not be saved"
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("record on stdout");
    assert_eq!(printed["status"], "INTERNAL_ERROR", "{printed:#}");
    let detail = printed["statusDetail"].as_str().expect("detail");
    assert!(detail.starts_with("record not saved: "), "{detail}");
    assert!(detail.contains("No space left on device"), "{detail}");
    assert!(stderr.contains("record not saved"), "the user is told:\n{stderr}");

    // The record on disk is the last one saved: whole, never torn, no temporary file beside it.
    let on_disk = record_on_disk(data.path(), &id);
    assert_eq!(on_disk["id"], id.as_str());
    assert_eq!(leftovers(data.path(), &id), Vec::<String>::new());
    assert_eq!(labelled(&id), (0, 0, 0), "the build's containers, volumes and networks are removed");
    std::fs::remove_file(&filler).expect("remove filler");
    drop(disk);
}
