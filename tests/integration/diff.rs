//! `pipewright diff BASE HEAD` on files: the human, JSON and Markdown forms, and the exit codes.

use std::path::{Path, PathBuf};

use crate::support::*;

/// The compiled example as commit 1 left it, and commit 2: a new `train` image and a lower default of
/// `c` (the root's, not the component's).
fn two_commits(dir: &Path) -> (PathBuf, PathBuf) {
    let first = std::fs::read_to_string(fixture("kfp/examples/breast-cancer-training.yaml")).expect("fixture");
    let old = format!("breast-cancer/train:{}", "1".repeat(40));
    assert_eq!(first.matches(&old).count(), 1);
    let second = first.replace(&old, &format!("breast-cancer/train:{}", "2".repeat(40)));
    let (head, tail) = second.rsplit_once("defaultValue: 1.0").expect("the root's default of `c`");
    let second = format!("{head}defaultValue: 0.5{tail}");
    let (base, changed) = (dir.join("base.yaml"), dir.join("head.yaml"));
    std::fs::write(&base, first).expect("write");
    std::fs::write(&changed, second).expect("write");
    (base, changed)
}

fn diff(args: &[&str], base: &Path, head: &Path) -> (Option<i32>, String, String) {
    let out = pipewright().arg("diff").arg(base).arg(head).args(args).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn diff_prints_what_changed_between_two_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, head) = two_commits(dir.path());

    let (code, stdout, stderr) = diff(&[], &base, &head);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "~ default    c: 1.0 → 0.5\n~ image      exec-train: localhost:5000/examples/breast-cancer/train:{} → …:{}\n",
            "1".repeat(40),
            "2".repeat(40)
        )
    );
    assert_eq!(stderr, "");

    let (code, stdout, _) = diff(&["--format", "json"], &base, &head);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(json["summary"], serde_json::json!({"total": 2, "byKind": {"defaultChanged": 1, "imageChanged": 1}}));
    assert_eq!(
        json["changes"][0],
        serde_json::json!({"kind": "defaultChanged", "parameter": "c", "before": 1.0, "after": 0.5})
    );
    assert_eq!(json["changes"][1]["kind"], "imageChanged");
    assert_eq!(json["changes"][1]["executor"], "exec-train");
    assert_eq!(json["changes"][1]["component"], "comp-train");

    let (code, stdout, _) = diff(&["--format", "markdown"], &base, &head);
    assert_eq!(code, Some(0));
    assert!(
        stdout.starts_with("2 changes to the pipeline spec:\n\n| | change | where | before | after |\n"),
        "{stdout}"
    );
    assert!(stdout.contains("| ~ | default | `c` | `1.0` | `0.5` |"), "{stdout}");
}

#[test]
fn diff_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, head) = two_commits(dir.path());

    let (code, stdout, _) = diff(&["--exit-code"], &base, &head);
    assert_eq!(code, Some(1), "--exit-code: 1 when the specs differ");
    assert_eq!(stdout.lines().count(), 2);
    let (code, stdout, _) = diff(&["--exit-code"], &base, &base);
    assert_eq!((code, stdout.as_str()), (Some(0), "no changes\n"));
    let (code, stdout, _) = diff(&["--format", "json"], &base, &base);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(json["changes"], serde_json::json!([]));

    let missing = dir.path().join("missing.yaml");
    let (code, stdout, stderr) = diff(&[], &base, &missing);
    assert_eq!(code, Some(2));
    assert_eq!(stdout, "");
    assert!(stderr.contains(&format!("error: cannot read `{}`: ", missing.display())), "{stderr}");

    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "pipelineInfo: {name: p}\nroot: [\n").expect("write");
    let (code, _, stderr) = diff(&[], &broken, &head);
    assert_eq!(code, Some(2));
    assert!(stderr.contains(&format!("error: {}:", broken.display())), "names the file and line: {stderr}");

    let build_file = fixture("cloudbuild/GoogleCloudPlatform__cloud-builders__docker__cloudbuild.yaml");
    let (code, _, stderr) = diff(&[], &base, &build_file);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not a Kubeflow component or pipeline spec"), "{stderr}");
}
