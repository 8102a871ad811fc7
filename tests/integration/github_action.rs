//! The GitHub Action (`.github/actions/pipewright/run.sh`) in a simulated Actions job: the GITHUB_*
//! variables and event payloads a runner provides, made from the corpus's GitHub webhook payloads (the
//! payload a workflow gets at `GITHUB_EVENT_PATH` is the webhook's), pointed at commits of a real
//! repository made by the test. Real Docker, real git; the runner itself is the only thing simulated.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::registry::{Cleanup, registry_ready, unique};
use crate::support::*;

const BUILD_FILE: &str = "steps:
- id: show
  name: local/busybox:1
  args: [sh, -c, 'echo sha=$COMMIT_SHA branch=$BRANCH_NAME repo=$REPO_NAME pr=$_PR_NUMBER head=$_HEAD_BRANCH base=$_BASE_BRANCH']
- id: fail-on-request
  name: local/busybox:1
  args: [sh, -c, 'test ! -f FAIL']
triggers:
- name: code
  event: push
  branch: '.*'
  ignoredFiles: ['docs/**']
- name: review
  event: pull_request
  branch: '^main$'
options:
  substitutionOption: ALLOW_LOOSE
";

/// One simulated job: its files, and what the action printed and wrote.
struct Job {
    dir: tempfile::TempDir,
    output: Output,
}

impl Job {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    fn summary(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("summary.md")).unwrap_or_default()
    }
    /// `GITHUB_OUTPUT` as name → value.
    fn outputs(&self) -> std::collections::BTreeMap<String, String> {
        let text = std::fs::read_to_string(self.dir.path().join("output")).unwrap_or_default();
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
    fn record(&self) -> Value {
        let id = &self.outputs()["build-id"];
        let path = self.dir.path().join("data/builds").join(id).join("build.json");
        serde_json::from_slice(&std::fs::read(&path).expect("record")).expect("json")
    }
    fn explain(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout(), String::from_utf8_lossy(&self.output.stderr))
    }
}

/// Runs the action's script in `repo` as a job started by `event` with `payload`, at `sha` / `git_ref`.
fn run_action(repo: &Path, event: &str, payload: &Value, sha: &str, git_ref: &str, inputs: &[(&str, &str)]) -> Job {
    let dir = tempfile::tempdir().expect("tempdir");
    let event_path = dir.path().join("event.json");
    std::fs::write(&event_path, serde_json::to_vec(payload).expect("json")).expect("write");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".github/actions/pipewright/run.sh");
    let mut command = std::process::Command::new("bash");
    command
        .arg(script)
        .current_dir(repo)
        .env("PIPEWRIGHT_BIN", env!("CARGO_BIN_EXE_pipewright"))
        .env("PIPEWRIGHT_DATA_DIR", dir.path().join("data"))
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", event)
        .env("GITHUB_EVENT_PATH", &event_path)
        .env("GITHUB_SHA", sha)
        .env("GITHUB_REF", git_ref)
        .env("GITHUB_REPOSITORY", "acme/ml-repo")
        .env("GITHUB_SERVER_URL", "https://github.example.com")
        .env("GITHUB_RUN_ID", "7")
        .env("GITHUB_WORKSPACE", repo)
        .env("GITHUB_STEP_SUMMARY", dir.path().join("summary.md"))
        .env("GITHUB_OUTPUT", dir.path().join("output"))
        .env("NO_COLOR", "1");
    for (name, value) in inputs {
        command.env(format!("INPUT_{}", name.to_uppercase().replace('-', "_")), value);
    }
    let output = command.output().expect("run.sh runs");
    Job { dir, output }
}

/// The corpus push payload, pointed at `before..after` of branch `main` of the test's repository.
fn push_payload(before: &str, after: &str, message: &str) -> Value {
    let mut payload: Value =
        serde_json::from_slice(&std::fs::read(fixture("webhooks/github/push__branch.json")).expect("fixture"))
            .expect("json");
    payload["ref"] = "refs/heads/main".into();
    payload["before"] = before.into();
    payload["after"] = after.into();
    payload["head_commit"]["id"] = after.into();
    payload["head_commit"]["message"] = message.into();
    payload["repository"]["full_name"] = "acme/ml-repo".into();
    payload["repository"]["name"] = "ml-repo".into();
    payload["repository"]["default_branch"] = "main".into();
    payload
}

#[test]
fn push_and_pull_request_jobs_build_with_the_events_substitutions_and_a_summary() {
    if !docker_ready() {
        return;
    }
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", BUILD_FILE).write("src/model.py", "x = 1\n");
    let first = repo.commit("first");
    repo.write("src/model.py", "x = 2\n");
    let second = repo.commit("tune the model");

    // A push: the build runs with the push's substitutions, each step's log in a group.
    let job = run_action(
        repo.path(),
        "push",
        &push_payload(&first, &second, "tune the model"),
        &second,
        "refs/heads/main",
        &[],
    );
    assert_eq!(job.output.status.code(), Some(0), "{}", job.explain());
    let stdout = job.stdout();
    assert!(stdout.contains(&format!("sha={second} branch=main repo=ml-repo pr= head= base=")), "{stdout}");
    assert!(stdout.contains("::group::step 0 (show) SUCCESS"), "{stdout}");
    assert!(stdout.contains("::endgroup::"), "{stdout}");
    let outputs = job.outputs();
    assert_eq!(outputs["status"], "SUCCESS");
    assert_eq!(outputs["spec-digest"], "", "no pipeline, no spec");
    let record = job.record();
    assert_eq!(record["status"], "SUCCESS");
    assert_eq!(record["trigger"]["name"], "code");
    assert_eq!(record["substitutions"]["COMMIT_SHA"], second.as_str());
    let summary = job.summary();
    for expected in [
        "## ✅ pipewright build SUCCESS",
        &format!("build `{}`", outputs["build-id"]),
        &format!("commit `{}` on `main`", &second[..12]),
        "**Trigger** `code`: push to main",
        "| 0 | show (local/busybox:1) | ✅ SUCCESS |",
        "| 1 | fail-on-request (local/busybox:1) | ✅ SUCCESS |",
    ] {
        assert!(summary.contains(expected), "missing {expected:?} in\n{summary}");
    }

    // A pull request from `feature` into `main`: the pull request's substitutions.
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("src/model.py", "x = 3\n");
    let head = repo.commit("try x = 3");
    let mut payload: Value =
        serde_json::from_slice(&std::fs::read(fixture("webhooks/github/pull_request__opened.json")).expect("fixture"))
            .expect("json");
    payload["number"] = 12.into();
    payload["pull_request"]["number"] = 12.into();
    payload["pull_request"]["head"]["sha"] = head.as_str().into();
    payload["pull_request"]["head"]["ref"] = "feature".into();
    payload["pull_request"]["head"]["repo"]["full_name"] = "acme/ml-repo".into();
    payload["pull_request"]["base"]["sha"] = second.as_str().into();
    payload["pull_request"]["base"]["ref"] = "main".into();
    payload["pull_request"]["base"]["repo"]["full_name"] = "acme/ml-repo".into();
    payload["repository"]["full_name"] = "acme/ml-repo".into();
    let job = run_action(repo.path(), "pull_request", &payload, &head, "refs/pull/12/merge", &[]);
    assert_eq!(job.output.status.code(), Some(0), "{}", job.explain());
    assert!(
        job.stdout().contains(&format!("sha={head} branch=feature repo=ml-repo pr=12 head=feature base=main")),
        "{}",
        job.explain()
    );
    assert_eq!(job.record()["trigger"]["name"], "review");
    assert!(job.summary().contains("**Trigger** `review`: pull request #12 into main"), "{}", job.summary());
}

#[test]
fn a_docs_only_push_is_skipped_with_exit_code_0_and_a_failing_step_is_annotated() {
    if !docker_ready() {
        return;
    }
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", BUILD_FILE).write("src/model.py", "x = 1\n");
    let first = repo.commit("first");
    repo.write("docs/guide.md", "# Guide\n");
    let docs = repo.commit("document");

    let job = run_action(repo.path(), "push", &push_payload(&first, &docs, "document"), &docs, "refs/heads/main", &[]);
    assert_eq!(job.output.status.code(), Some(0), "a skipped build is not a failure: {}", job.explain());
    let outputs = job.outputs();
    assert_eq!(outputs["status"], "SKIPPED", "{}", job.explain());
    assert_eq!(outputs["build-id"], "");
    assert!(job.stdout().contains("::notice title=pipewright%3A build skipped::"), "{}", job.explain());
    let summary = job.summary();
    assert!(summary.contains("## ⏭️ pipewright build SKIPPED"), "{summary}");
    assert!(summary.contains("**Trigger** `code`: only docs/** changed"), "the reason names the filter: {summary}");
    assert!(!job.dir.path().join("data/builds").exists(), "nothing ran");

    // A push whose second step fails: exit code 1, an error annotation on that step's line.
    repo.write("FAIL", "");
    let failing = repo.commit("break it");
    let job =
        run_action(repo.path(), "push", &push_payload(&docs, &failing, "break it"), &failing, "refs/heads/main", &[]);
    assert_eq!(job.output.status.code(), Some(1), "{}", job.explain());
    let line = BUILD_FILE.lines().position(|l| l.contains("id: fail-on-request")).expect("step") + 1;
    let annotation = format!(
        "::error title=pipewright,file=cloudbuild.yaml,line={line}::Step #1 \"fail-on-request\" (local/busybox:1) exited with code 1"
    );
    assert!(job.stdout().contains(&annotation), "expected {annotation}\n{}", job.explain());
    assert_eq!(job.outputs()["status"], "FAILURE");
    let summary = job.summary();
    assert!(summary.contains("## ❌ pipewright build FAILURE"), "{summary}");
    assert!(summary.contains("| 1 | fail-on-request (local/busybox:1) | ❌ FAILURE (exit code 1) |"), "{summary}");

    // A build file with a problem: exit code 2 and an annotation at the field.
    repo.write("cloudbuild.yaml", &BUILD_FILE.replace("  args: [sh, -c, 'test ! -f FAIL']", "  argz: [oops]"));
    let broken = repo.commit("typo");
    let job =
        run_action(repo.path(), "push", &push_payload(&failing, &broken, "typo"), &broken, "refs/heads/main", &[]);
    assert_eq!(job.output.status.code(), Some(2), "{}", job.explain());
    assert!(
        job.stdout().contains(&format!("::error title=pipewright,file=cloudbuild.yaml,line={},col=3::", line + 2)),
        "{}",
        job.explain()
    );
}

/// A busybox component, a committed spec naming its image, uploaded to the local registry: the second
/// push's summary compares its spec with the one the registry holds for the first push's commit.
#[test]
fn the_summary_shows_images_and_the_spec_diff_against_the_base_commits_spec() {
    if !registry_ready() {
        return;
    }
    let registry = unique("action");
    let mut cleanup = Cleanup { prefix: registry.clone(), builds: Vec::new() };
    let ir = |image: &str, cache: bool| {
        format!(
            "pipelineInfo:\n  name: tiny\nschemaVersion: 2.1.0\nsdkVersion: kfp-2.14.6\nroot:\n  dag:\n    tasks:\n      comp:\n        cachingOptions: {{enableCache: {cache}}}\n        componentRef: {{name: comp-comp}}\n        taskInfo: {{name: comp}}\ncomponents:\n  comp-comp:\n    executorLabel: exec-comp\ndeploymentSpec:\n  executors:\n    exec-comp:\n      container:\n        image: {image}\n        command: [sh, -c, echo hi]\n"
        )
    };
    let mut repo = GitRepo::new();
    repo.write("comp/Dockerfile", &format!("FROM {BUSYBOX}\nCOPY . /app\n"))
        .write("comp/component.yaml", "name: Comp\nimplementation:\n  container:\n    image: comp:dev\n    command: [sh, -c, echo hi]\n")
        .write("ir/pipeline.yaml", &ir(&format!("{registry}/comp:dev"), true))
        .write(
            "cloudbuild.yaml",
            &format!(
                "steps:\n- {{name: '{BUSYBOX}', args: ['true']}}\ncomponents:\n  registry: {registry}\n  items:\n  - {{name: comp, context: comp, spec: comp/component.yaml}}\npipeline:\n  name: tiny\n  spec: ir/pipeline.yaml\n  upload:\n  - oci: {registry}/pipelines/tiny\n"
            ),
        );
    let zero = "0".repeat(40);
    let first = repo.commit("first");
    let job = run_action(repo.path(), "push", &push_payload(&zero, &first, "first"), &first, "refs/heads/main", &[]);
    assert_eq!(job.output.status.code(), Some(0), "{}", job.explain());
    let record = job.record();
    cleanup.builds.push(record["id"].as_str().expect("id").to_string());
    assert_eq!(job.outputs()["spec-digest"], record["pipeline"]["specDigest"].as_str().expect("digest"));
    let component = &record["components"][0];
    let summary = job.summary();
    assert!(
        summary.contains(&format!(
            "| comp | `{}` | `{}` | ✅ built |",
            component["image"].as_str().expect("image"),
            component["digest"].as_str().expect("digest")
        )),
        "{summary}"
    );
    assert!(summary.contains("### Component images (1 built, 0 reused)"), "{summary}");

    repo.write("comp/model.txt", "v2\n").write("ir/pipeline.yaml", &ir(&format!("{registry}/comp:dev"), false));
    let second = repo.commit("second");
    let job =
        run_action(repo.path(), "push", &push_payload(&first, &second, "second"), &second, "refs/heads/main", &[]);
    assert_eq!(job.output.status.code(), Some(0), "{}", job.explain());
    cleanup.builds.push(job.record()["id"].as_str().expect("id").to_string());
    let summary = job.summary();
    assert!(summary.contains(&format!("### Spec changes\n\nAgainst base commit `{}`", &first[..12])), "{summary}");
    assert!(summary.contains(&format!("{registry}/comp:{first}")), "the old image is named: {summary}");
    assert!(summary.contains(&format!("{registry}/comp:{second}")), "the new image is named: {summary}");
    assert!(summary.to_lowercase().contains("cach"), "the caching change is named: {summary}");
    // Kept for people to look at, as the runner would render it.
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    std::fs::write(artifacts.join("action-summary.md"), &summary).expect("summary artifact");
}
