//! THREATS property 3 played for real: a run that tries to name another commit's tags.

use crate::support::*;

/// `--substitutions COMMIT_SHA=<another commit>` would tag the images and the spec with that commit's
/// names (the ones promotion trusts): the run is refused with the key and what is valid, and nothing
/// reaches the registry under the build's repository.
#[test]
fn a_run_cannot_override_commit_sha() {
    let repository = format!("pw-tags-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut repo = GitRepo::new();
    repo.write(
        "cloudbuild.yaml",
        &format!(
            "steps:\n- name: local/busybox:1\n  args: [echo, $COMMIT_SHA]\n\
             pipeline:\n  name: p\n  spec: pipeline.yaml\n  upload:\n  - oci: 127.0.0.1:5000/{repository}\n"
        ),
    );
    repo.write("pipeline.yaml", "pipelineInfo: {name: p}\n");
    repo.commit("a pipeline");
    let other = "0123456789abcdef0123456789abcdef01234567";
    let data = tempfile::tempdir().expect("tempdir");
    let out = pipewright()
        .arg("run")
        .arg(repo.path())
        .args(["--format", "json", "--pull", "never", "--data-dir"])
        .arg(data.path())
        .args(["--substitutions", &format!("COMMIT_SHA={other}")])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the run was not refused: {stderr}");
    assert!(stderr.contains("built-in substitution `COMMIT_SHA` cannot be overridden"), "{stderr}");
    assert!(stderr.contains("start with `_`"), "{stderr}");
    // Nothing was pushed: the registry does not know the repository (no `:<other>` tag either).
    let tags = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:5000/v2/{repository}/tags/list"))
        .output()
        .expect("curl");
    let code = String::from_utf8_lossy(&tags.stdout).to_string();
    assert_eq!(code, "404", "the registry should not know {repository}");
}
