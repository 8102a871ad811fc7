//! docs/THREATS.md property 3 played for real: a run that tries to name another commit's tags.

use crate::registry::{Cleanup, REGISTRY, registry_ready, tags, unique};
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

/// A branch named `prod` pushes its spec to the repository where promotion moves `:prod`. Before the
/// tag policy its build wrote `:prod` itself (the sanitised branch name), so a pusher of any branch
/// could put an unpromoted spec where prod's run reads it. Now such a branch is tagged
/// `branch-<name>`: for the environments of the file, for the usual ones, and for an environment
/// that has a release even when the branch's file leaves it out. Only promotion writes `:<env>`.
#[test]
fn a_branch_named_like_an_environment_cannot_write_the_environment_tag() {
    if !registry_ready() {
        return;
    }
    let prefix = unique("tags");
    let _cleanup = Cleanup { prefix: prefix.clone(), builds: Vec::new() };
    let repository = format!("{prefix}/pipelines");
    let config = |environments: &str| {
        format!(
            "steps:\n- name: local/busybox:1\n  args: [echo, $BRANCH_NAME]\n{environments}\
             pipeline:\n  name: p\n  spec: pipeline.yaml\n  upload:\n  - oci: {repository}\n"
        )
    };
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", &config("environments:\n- name: qa\n- name: prod\n"));
    repo.write(
        "pipeline.yaml",
        "pipelineInfo: {name: p}\nschemaVersion: 2.1.0\nsdkVersion: kfp-2.14.6\nroot:\n  dag:\n    tasks:\n      \
         comp: {componentRef: {name: comp-comp}, taskInfo: {name: comp}}\ncomponents:\n  comp-comp: {executorLabel: exec-comp}\n\
         deploymentSpec:\n  executors:\n    exec-comp: {container: {image: 'local/busybox:1', command: [sh, -c, echo hi]}}\n",
    );
    let first = repo.commit("a pipeline");
    let data = tempfile::tempdir().expect("tempdir");
    let build = |repo: &GitRepo, branch: &str| {
        let (out, record) = run_build_in(repo.path(), data.path(), &["--commit", branch]);
        assert_eq!(record["status"], "SUCCESS", "{branch}: {}", String::from_utf8_lossy(&out.stderr));
        record
    };
    let released = build(&repo, "main");
    let promote = pipewright()
        .args(["promote", released["id"].as_str().expect("id"), "--to", "qa", "--data-dir"])
        .arg(data.path())
        .env("PIPEWRIGHT_USER", "carol")
        .output()
        .expect("promote");
    assert!(promote.status.success(), "{}", String::from_utf8_lossy(&promote.stderr));
    let path = repository.strip_prefix(&format!("{REGISTRY}/")).expect("a local repository");
    let qa = std::process::Command::new("curl")
        .args(["-sI", "-H", "Accept: application/vnd.oci.image.manifest.v1+json"])
        .arg(format!("http://127.0.0.1:5000/v2/{path}/manifests/qa"))
        .output()
        .expect("curl");
    let digest_of_qa = String::from_utf8_lossy(&qa.stdout).to_string();
    let digest_of_qa = digest_of_qa.lines().find(|l| l.to_ascii_lowercase().starts_with("docker-content-digest"));
    assert!(digest_of_qa.is_some(), "promotion tagged {repository}:qa");

    // `prod` and `Staging-hotfix`: reserved by the file and by default; `qa`: the branch's file has no
    // `environments:` (its author freed the name), but qa has a release.
    for branch in ["prod", "Staging-hotfix", "qa"] {
        repo.git(&["checkout", "-q", "-b", branch, "main"]);
        repo.write("cloudbuild.yaml", &config(""));
        repo.write("branch.txt", branch);
        repo.commit(&format!("the {branch} branch"));
        build(&repo, branch);
    }
    let mut tags = tags(path);
    tags.retain(|t| !(t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit())));
    tags.sort();
    let qa_first = format!("qa-{first}");
    let expected = ["branch-Staging-hotfix", "branch-prod", "branch-qa", "main", "qa", qa_first.as_str()];
    assert_eq!(tags, expected, "{repository}: commit tags aside");
    let after = std::process::Command::new("curl")
        .args(["-sI", "-H", "Accept: application/vnd.oci.image.manifest.v1+json"])
        .arg(format!("http://127.0.0.1:5000/v2/{path}/manifests/qa"))
        .output()
        .expect("curl");
    let after = String::from_utf8_lossy(&after.stdout).to_string();
    assert_eq!(
        after.lines().find(|l| l.to_ascii_lowercase().starts_with("docker-content-digest")),
        digest_of_qa,
        "{repository}:qa is still the promoted spec"
    );
}

/// The same through a server: a trigger's `substitutions` naming `COMMIT_SHA` would tag this
/// build's images with another commit's names. The build fails at its file and line with what is
/// valid, the commit status says so, and nothing reaches the registry.
#[test]
fn a_trigger_cannot_override_commit_sha() {
    if !registry_ready() {
        return;
    }
    let prefix = unique("tags");
    let _cleanup = Cleanup { prefix: prefix.clone(), builds: Vec::new() };
    let other = "0123456789abcdef0123456789abcdef01234567";
    let repo = GitRepo::with_config(&format!(
        "steps:\n- name: local/busybox:1\n  args: [echo, $COMMIT_SHA]\n\
         images: ['{prefix}/app:$COMMIT_SHA']\n\
         triggers:\n- name: main\n  event: push\n  branch: '^main$'\n  substitutions: {{COMMIT_SHA: '{other}'}}\n"
    ));
    let head = repo.git(&["rev-parse", "HEAD"]);
    let data = tempfile::tempdir().expect("tempdir");
    let server = crate::server::Server::start(data.path(), &crate::server::config(repo.path(), None, ""));
    let (headers, body) = crate::server::github_push("acme/demo", "main", &"0".repeat(40), &head, "override");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the build to end", 60, |b| b.len() == 1 && b[0]["queue"]["state"] == "done");
    let build = &builds[0];
    assert_eq!(build["status"], "FAILURE", "{build:#}");
    let detail = build["failureInfo"]["detail"].as_str().unwrap_or_default();
    for part in ["cloudbuild.yaml:9:19:", "triggers[0].substitutions.COMMIT_SHA", "cannot be overridden"] {
        assert!(detail.contains(part), "`{part}` not in: {detail}");
    }
    assert_eq!(detail.matches("COMMIT_SHA").count(), 2, "reported once, at the trigger's key: {detail}");
    assert_eq!(build["substitutions"]["COMMIT_SHA"].as_str().unwrap_or(&head), head.as_str(), "{build:#}");
    let path = prefix.strip_prefix(&format!("{REGISTRY}/")).expect("a local repository");
    assert_eq!(tags(&format!("{path}/app")), Vec::<String>::new(), "something was pushed");
}
