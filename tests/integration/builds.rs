//! `pipewright builds list | show | logs` over the records real builds left in a data directory.

use crate::support::*;

fn builds(data: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = pipewright().arg("builds").args(args).arg("--data-dir").arg(data).output().expect("runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn builds_are_listed_newest_first_shown_and_their_logs_printed() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::with_config(
        "steps:\n- {id: greet, name: local/busybox:1, args: [echo, hello from the first step]}\n\
         - {id: second, name: local/busybox:1, args: [echo, and the second]}\n",
    );
    let (_, first) = run_build_in(repo.path(), data.path(), &[]);
    repo.write("cloudbuild.yaml", "steps:\n- {id: boom, name: local/busybox:1, args: [sh, -c, 'echo bad; exit 4']}\n");
    let sha = repo.commit("break");
    let (_, second) = run_build_in(repo.path(), data.path(), &[]);
    let (first_id, second_id) = (first["id"].as_str().expect("id"), second["id"].as_str().expect("id"));

    let (code, stdout, _) = builds(data.path(), &["list"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("BUILD"), "{stdout}");
    assert!(lines[1].starts_with(&second_id[..8]) && lines[1].contains("FAILURE") && lines[1].contains(&sha[..7]));
    assert!(lines[2].starts_with(&first_id[..8]) && lines[2].contains("SUCCESS") && lines[2].contains("main"));
    let (_, stdout, _) = builds(data.path(), &["list", "--status", "success", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], first_id);
    let (code, _, stderr) = builds(data.path(), &["list", "--status", "GREEN"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("`--status GREEN` is not a build status") && stderr.contains("SUCCESS"), "{stderr}");

    let (code, stdout, _) = builds(data.path(), &["show", &second_id[..6]]);
    assert_eq!(code, 0);
    assert!(stdout.contains("pipewright build FAILURE"), "{stdout}");
    assert!(stdout.contains("| 0 | boom (local/busybox:1) | ❌ FAILURE (exit code 4) |"), "{stdout}");
    let (_, stdout, _) = builds(data.path(), &["show", first_id, "--format", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(shown, first);

    let (code, stdout, _) = builds(data.path(), &["logs", first_id]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Step #0 - \"greet\": hello from the first step"), "{stdout}");
    assert!(stdout.contains("Step #1 - \"second\": and the second"), "{stdout}");
    let (_, stdout, _) = builds(data.path(), &["logs", first_id, "--step", "1"]);
    assert_eq!(stdout, "and the second\n");
    let (code, _, stderr) = builds(data.path(), &["logs", first_id, "--step", "5"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("has 2 steps; there is no step 5"), "{stderr}");
    let (code, _, stderr) = builds(data.path(), &["show", "zzz"]);
    assert_eq!(code, 2, "{stderr}");
}
