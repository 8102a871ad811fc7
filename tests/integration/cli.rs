//! The command line without Docker: `validate`, `version`, argument and source errors.

use crate::support::*;

fn validate(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cloudbuild.yaml");
    std::fs::write(&file, text).expect("write");
    let out = pipewright().arg("validate").arg(&file).current_dir(dir.path()).output().expect("runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).replace(&file.display().to_string(), "FILE"),
    )
}

#[test]
fn version_prints_the_version() {
    let out = pipewright().arg("version").output().expect("runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("pipewright {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn validate_reports_every_problem_with_file_line_and_field() {
    let (code, stdout, stderr) = validate("steps:\n- name: busybox\n  waitFor: [nope]\n  onFailure: x\n");
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(stderr.contains("FILE:3:13: steps[0].waitFor[0]: `nope` is not the id of any earlier step"), "{stderr}");
    assert!(stderr.contains("FILE:4:3: steps[0].onFailure: unknown field `onFailure`"), "{stderr}");
    assert!(stderr.contains("2 problems"), "{stderr}");
}

#[test]
fn validate_accepts_a_good_file() {
    let (code, _, stderr) = validate("steps:\n- name: busybox\nlogsBucket: gs://x\n");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("valid (1 step)"), "{stderr}");
    assert!(stderr.contains("warning: logsBucket: has no effect here"), "{stderr}");
}

#[test]
fn validate_json_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cloudbuild.yaml");
    std::fs::write(&file, "steps:\n- name: busybox\n  args: [$_NOPE]\n").expect("write");
    let out = pipewright().args(["validate", "--format", "json"]).arg(&file).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(json["valid"], false);
    assert_eq!(json["diagnostics"][0]["line"], 3);
    assert_eq!(json["diagnostics"][0]["field"], "steps[0].args[0]");
}

#[test]
fn validate_finds_the_default_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = pipewright().arg("validate").current_dir(dir.path()).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no build file in the current directory"));
    std::fs::write(dir.path().join("cloudbuild.yaml"), "steps: [{name: a}]").expect("write");
    let out = pipewright().arg("validate").current_dir(dir.path()).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn validate_substitution_flags_take_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cloudbuild.yaml");
    std::fs::write(&file, "steps:\n- name: busybox\n  args: [$_X]\n").expect("write");
    let out = pipewright().arg("validate").arg(&file).args(["--substitutions", "_X=1"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = pipewright().arg("validate").arg(&file).args(["--substitutions", "BUILD_ID=x"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BUILD_ID"));
}

#[test]
fn hostile_files_get_errors_not_panics() {
    let big = format!("steps:\n- name: a\n#{}\n", "x".repeat(10 * 1024 * 1024));
    let (code, _, stderr) = validate(&big);
    assert_eq!(code, 1);
    assert!(stderr.contains("FILE:1:1: the file is 10.0 MiB; build files may be at most 4 MiB"), "{stderr}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, b"steps:\n- name: \xff\xfe\n").expect("write");
    let out = pipewright().arg("validate").arg(&file).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2:9: the file is not valid UTF-8"));

    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let (code, _, stderr) = validate(&bomb);
    assert_eq!(code, 1);
    assert!(stderr.contains("alias bomb"), "{stderr}");

    let (code, _, stderr) = validate("steps: [{name: a}\n");
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid YAML"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn run_refuses_a_build_file_outside_the_checkout() {
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", "steps: [{name: a}]\n");
    std::os::unix::fs::symlink("/etc/hostname", repo.path().join("link.yaml")).expect("symlink");
    repo.commit("files");
    let data = tempfile::tempdir().expect("tempdir");
    for (config, expected) in [
        ("../outside.yaml", "leaves the repository through `..`"),
        ("/etc/hostname", "is an absolute path"),
        ("link.yaml", "leads outside the repository through the symlink `link.yaml`"),
        ("missing.yaml", "it does not exist in the commit"),
    ] {
        let out = pipewright()
            .arg("run")
            .arg(repo.path())
            .args(["--config", config, "--data-dir"])
            .arg(data.path())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("cannot reach the Docker engine") {
            return; // no engine here: the check under test runs after connecting
        }
        assert_eq!(out.status.code(), Some(2), "{config}: {stderr}");
        assert!(stderr.contains(expected), "{config}: {stderr}");
    }
    // Nothing was kept for builds that never started.
    let builds = std::fs::read_dir(data.path().join("builds")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(builds, 0);
}

#[test]
fn run_reports_an_unknown_revision() {
    let repo = GitRepo::with_config("steps: [{name: a}]\n");
    let data = tempfile::tempdir().expect("tempdir");
    let out = pipewright()
        .arg("run")
        .arg(repo.path())
        .args(["--commit", "no-such-branch", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    if !stderr.contains("cannot reach the Docker engine") {
        assert!(stderr.contains("revision `no-such-branch` does not name a commit"), "{stderr}");
    }
}

#[test]
fn run_reports_config_problems_with_the_repository_path() {
    let mut repo = GitRepo::new();
    repo.write("ml/cloudbuild.yaml", "steps:\n- name: a\n  waitFor: [x]\n");
    repo.commit("nested build");
    let data = tempfile::tempdir().expect("tempdir");
    let out = pipewright()
        .arg("run")
        .arg(repo.path().join("ml"))
        .args(["--data-dir"])
        .arg(data.path())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    if !stderr.contains("cannot reach the Docker engine") {
        assert!(stderr.contains("ml/cloudbuild.yaml:3:13: steps[0].waitFor[0]"), "{stderr}");
        assert!(stderr.contains("nothing was run"), "{stderr}");
    }
}

#[test]
fn rewrite_points_specs_at_the_head_commit_in_place() {
    let mut repo = GitRepo::new();
    repo.write(
        "cloudbuild.yaml",
        "steps: [{name: a}]\ncomponents:\n  items:\n  - {name: train, context: train, spec: train/component.yaml}\n  - {name: eval, context: eval, spec: eval/component.yaml}\n",
    )
    .write("train/component.yaml", "# keep me\nname: Train\nimplementation:\n  container:\n    image: 'old/train:1' # and me\n")
    .write("eval/component.yaml", "name: Eval\nimplementation:\n  container: {image: eval, command: [x]}\n");
    let sha = repo.commit("components");
    let spec = repo.path().join("train/component.yaml");

    let out = pipewright().arg("rewrite").arg(repo.path()).arg("--dry-run").output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("train/component.yaml:5: old/train:1 -> train:{sha}")), "{stdout}");
    assert!(std::fs::read_to_string(&spec).expect("read").contains("old/train:1"), "--dry-run writes nothing");

    let out = pipewright()
        .arg("rewrite")
        .arg(repo.path())
        .args(["--image", "eval=localhost:5000/x/eval:1", "--format", "json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let changes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(changes.as_array().map(Vec::len), Some(2));
    assert_eq!(
        std::fs::read_to_string(&spec).expect("read"),
        format!("# keep me\nname: Train\nimplementation:\n  container:\n    image: 'train:{sha}' # and me\n")
    );
    let eval = std::fs::read_to_string(repo.path().join("eval/component.yaml")).expect("read");
    assert_eq!(eval, "name: Eval\nimplementation:\n  container: {image: localhost:5000/x/eval:1, command: [x]}\n");

    let out = pipewright().arg("rewrite").arg(repo.path()).args(["--image", "nope=x"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`--image nope=…` names no component"));
}
