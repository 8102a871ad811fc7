//! Stopping pipewright: Ctrl-C cleans up; a crash is cleaned up by the next run.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use pipewright::executor::janitor;
use pipewright::io::store::Store;

use crate::support::*;

const CONFIG: &str = "steps:\n- {name: BUSYBOX, args: [sleep, '60'], waitFor: ['-'], volumes: [{name: shared, path: /shared}]}\n- {name: BUSYBOX, args: [sleep, '60'], waitFor: ['-'], volumes: [{name: shared, path: /shared}]}\n";

fn start(repo: &Path, data: &Path) -> Child {
    pipewright()
        .arg("run")
        .arg(repo)
        .args(["--format", "json", "--pull", "never", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pipewright starts")
}

/// Waits until the one build in `data` has both steps WORKING; returns its id.
fn wait_until_running(data: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(entries) = std::fs::read_dir(data.join("builds")) {
            for entry in entries.flatten() {
                let Ok(text) = std::fs::read_to_string(entry.path().join("build.json")) else { continue };
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                let steps = record["steps"].as_array().cloned().unwrap_or_default();
                let running =
                    steps.len() == 2 && steps.iter().all(|s| s["status"] == "WORKING" && s.get("timing").is_some());
                if running {
                    // The record is saved twice a second; give the containers a moment past "created".
                    std::thread::sleep(Duration::from_millis(700));
                    return record["id"].as_str().expect("id").to_string();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the build did not start running within 60 s");
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pipewright did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_cancels_the_build_and_leaves_nothing_behind() {
    if !docker_ready() {
        return;
    }
    let repo = GitRepo::with_config(&CONFIG.replace("BUSYBOX", BUSYBOX));
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = start(repo.path(), data.path());
    let id = wait_until_running(data.path());
    let (containers, volumes, networks) = labelled(&id);
    assert!(
        containers == 2 && volumes >= 2 && networks == 1,
        "resources while running: {containers} {volumes} {networks}"
    );

    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    assert!(sent.elapsed() < Duration::from_secs(15), "stopping took {:?}", sent.elapsed());
    assert_eq!(status.code(), Some(1));
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("stdout"), &mut stdout).expect("read");
    let record: serde_json::Value = serde_json::from_str(&stdout).expect("record on stdout");
    assert_eq!(record["status"], "CANCELLED");
    assert_eq!(record["steps"][0]["status"], "CANCELLED");
    assert_eq!(labelled(&id), (0, 0, 0), "containers, volumes or networks left behind");
    assert!(!data.path().join("work").join(&id).exists(), "workspace left behind");
}

/// Starts a build of two long steps in `data`, kills pipewright with SIGKILL while they run, and
/// returns the build's id: its containers, volumes and network stay behind.
fn crash_a_build(data: &Path) -> String {
    let repo = GitRepo::with_config(&CONFIG.replace("BUSYBOX", BUSYBOX));
    let mut child = start(repo.path(), data);
    let id = wait_until_running(data);
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    id
}

fn record_of(data: &Path, id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(data.join("builds").join(id).join("build.json")).expect("record");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn the_next_run_cleans_up_after_a_crash() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let id = crash_a_build(data.path());
    let (containers, _, networks) = labelled(&id);
    assert!(containers > 0 && networks > 0, "a crash leaves resources (that is what this test is about)");

    let quick = GitRepo::with_config(&format!("steps:\n- {{name: {BUSYBOX}, args: ['true']}}\n"));
    let out = pipewright()
        .arg("run")
        .arg(quick.path())
        .args(["--pull", "never", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Other tests running at the same time may have left crashed runs too: at least this one is swept.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("removed what ") && stderr.contains("crashed earlier run"), "{stderr}");
    assert_eq!(labelled(&id), (0, 0, 0));
    let record = record_of(data.path(), &id);
    assert_eq!(record["status"], "INTERNAL_ERROR");
    assert!(record["statusDetail"].as_str().expect("detail").contains("pipewright exited"));
    assert!(!data.path().join("work").join(&id).exists());
}

/// Many `pipewright run`s start at once (CI, a busy machine): each sweeps every crashed run it can see,
/// so two sweeps meet on the same containers. The one that finds a removal already in progress must wait
/// for it, or the volumes and network it removes next are still in use.
#[test]
fn two_sweeps_of_one_crash_at_once_both_clean_up() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let id = crash_a_build(data.path());
    let (containers, volumes, networks) = labelled(&id);
    assert!(containers == 2 && volumes == 2 && networks == 1, "{containers} {volumes} {networks}");

    let other = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (first, second) = rt.block_on(async {
        let docker = pipewright::io::docker::Docker::connect().await.expect("docker");
        let (mine, theirs) = (Store::new(data.path().to_path_buf()), Store::new(other.path().to_path_buf()));
        tokio::join!(janitor::sweep(&docker, &mine), janitor::sweep(&docker, &theirs))
    });
    for swept in [&first, &second] {
        assert!(swept.docker_error.is_none(), "{:?}", swept.docker_error);
    }
    assert!(first.builds.contains(&id), "the sweep with the build's store closes it: {:?}", first.builds);
    assert_eq!(labelled(&id), (0, 0, 0), "containers, volumes or networks left behind");
    let record = record_of(data.path(), &id);
    assert_eq!(record["status"], "INTERNAL_ERROR");
}
