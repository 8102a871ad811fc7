//! One build through the CLI, end to end: a committed KFP IR uploaded by the build's upload phase to
//! the fake Kubeflow Pipelines and the fake Artifact Registry, which check every request against the
//! published definitions. Needs Docker for the busybox step.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{FakeArtifactRegistry, FakeKfp, demo_ir};
use crate::support::*;

/// `pipewright run REPO --format json` like `support::run_build`, with extra environment variables and
/// arguments (`--credential`).
fn run_build_with_env(repo: &Path, env: &[(&str, &str)], args: &[String]) -> RunResult {
    let data = tempfile::tempdir().expect("tempdir");
    let mut command = pipewright();
    command
        .arg("run")
        .arg(repo)
        .args(["--format", "json", "--pull", "never", "--data-dir"])
        .arg(data.path())
        .args(args);
    for var in
        ["PIPEWRIGHT_KFP_TOKEN", "KF_PIPELINES_SA_TOKEN_PATH", "PIPEWRIGHT_GOOGLE_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN"]
    {
        command.env_remove(var);
    }
    let output = command.envs(env.iter().copied()).output().expect("pipewright runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let record = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("no record on stdout ({e}); stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr))
    });
    RunResult { output, record, data }
}

#[test]
fn build_upload_contract_kfp_and_artifact_registry() {
    if !docker_ready() {
        return;
    }
    let kfp = FakeKfp::start();
    kfp.expect_token("kfp-t0ken");
    let registry = FakeArtifactRegistry::start();
    registry.expect_token("google-t0ken");
    let spec = demo_ir(BUSYBOX);
    let config = [
        format!("steps: [{{name: '{BUSYBOX}', args: ['true']}}]"),
        "pipeline:".into(),
        "  name: demo-ci".into(),
        "  spec: pipeline.yaml".into(),
        "  upload:".into(),
        format!("  - kfp: {{host: '{}', pipeline: demo-ci}}", kfp.url()),
        format!("  - artifactRegistry: '{}'", registry.repository_url()),
    ]
    .join("\n");
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", &config).write("pipeline.yaml", &spec);
    let sha = repo.commit("a pipeline uploaded to Kubeflow Pipelines and Artifact Registry");

    let r = run_build_with_env(
        repo.path(),
        &[("PIPEWRIGHT_KFP_TOKEN", "kfp-t0ken"), ("PIPEWRIGHT_GOOGLE_TOKEN", "google-t0ken")],
        &[
            format!("--credential={}=env:PIPEWRIGHT_KFP_TOKEN", kfp.url()),
            format!("--credential={}=env:PIPEWRIGHT_GOOGLE_TOKEN", registry.url()),
        ],
    );

    assert_eq!(r.status(), "SUCCESS", "{}\n{:#}", r.stderr(), r.record["failureInfo"]);
    kfp.assert_no_violations();
    registry.assert_no_violations();
    assert_eq!(
        kfp.lines(),
        [
            "GET /apis/v2beta1/pipelines/names/demo-ci",
            "POST /apis/v2beta1/pipelines/upload",
            "POST /apis/v2beta1/pipelines/upload_version",
        ]
    );
    assert_eq!(registry.lines(), ["POST /my-proj/pipelines"]);
    let pipeline_id =
        kfp.pipeline("demo-ci").expect("the pipeline")["pipeline_id"].as_str().expect("an id").to_string();
    let version = kfp
        .versions(&pipeline_id)
        .into_iter()
        .find(|v| v["name"] == sha.as_str())
        .expect("a version named after the commit");
    let version_id = version["pipeline_version_id"].as_str().expect("an id");
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(spec.as_bytes())));

    let uploads: Vec<(&str, &str)> = r.record["pipeline"]["uploads"]
        .as_array()
        .expect("uploads in the record")
        .iter()
        .map(|u| (u["destination"].as_str().unwrap_or(""), u["version"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(uploads, [("local", digest.as_str()), ("kfp", version_id), ("artifactRegistry", digest.as_str())]);
    let kfp_upload = &r.record["pipeline"]["uploads"][1];
    assert_eq!(kfp_upload["uri"], format!("{}/apis/v2beta1/pipelines/{pipeline_id}/versions/{version_id}", kfp.url()));
    assert_eq!(kfp_upload["tags"], serde_json::json!([sha]));
    assert_eq!(r.record["pipeline"]["uploads"][2]["tags"], serde_json::json!([sha, "main"]));

    assert_eq!(kfp.spec(version_id).as_deref(), Some(spec.as_bytes()), "KFP holds the committed spec");
    let package = registry.package("demo-ci").expect("the package");
    assert_eq!(package.versions.get(&digest).map(Vec::as_slice), Some(spec.as_bytes()));
    assert_eq!((package.tags.get(&sha), package.tags.get("main")), (Some(&digest), Some(&digest)));
    for request in kfp.requests() {
        assert_eq!(request.header("authorization"), Some("Bearer kfp-t0ken"), "{}", request.line());
    }
}

/// Promotion to an environment with its own destinations and run: the promoted build's spec, byte for
/// byte, becomes KFP version `prod-<sha>` and Artifact Registry tags `prod` / `prod-<sha>`, and the
/// environment's run is created on the fake Kubeflow Pipelines and followed to its end.
#[test]
fn promotion_contract_kfp_and_artifact_registry() {
    if !docker_ready() {
        return;
    }
    let kfp = FakeKfp::start();
    kfp.script_runs(&["RUNNING", "SUCCEEDED"]);
    let registry = FakeArtifactRegistry::start();
    registry.expect_token("google-t0ken");
    let spec = demo_ir(BUSYBOX);
    let config = [
        format!("steps: [{{name: '{BUSYBOX}', args: ['true']}}]"),
        "pipeline: {name: demo-ci, spec: pipeline.yaml}".into(),
        "environments:".into(),
        "- name: prod".into(),
        "  upload:".into(),
        format!("  - kfp: {{host: '{}', pipeline: demo-ci}}", kfp.url()),
        format!("  - artifactRegistry: '{}'", registry.repository_url()),
        format!("  run: {{backend: kfp, host: '{}', parameters: {{greeting: prod}}}}", kfp.url()),
    ]
    .join("\n");
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", &config).write("pipeline.yaml", &spec);
    let sha = repo.commit("a pipeline with a prod environment");
    let r = run_build_with_env(repo.path(), &[], &[]);
    assert_eq!(r.status(), "SUCCESS", "{}", r.stderr());
    assert!(kfp.lines().is_empty(), "the build itself uploads nothing to KFP");

    let out = pipewright()
        .args(["promote", r.record["id"].as_str().expect("id"), "--to", "prod", "--format", "json", "--data-dir"])
        .arg(r.data.path())
        .env("PIPEWRIGHT_USER", "carol")
        .env("PIPEWRIGHT_POLL_MS", "10")
        .arg(format!("--credential={}=env:PIPEWRIGHT_GOOGLE_TOKEN", registry.url()))
        .env("PIPEWRIGHT_GOOGLE_TOKEN", "google-t0ken")
        .env_remove("PIPEWRIGHT_KFP_TOKEN")
        .output()
        .expect("pipewright runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let promotion: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    kfp.assert_no_violations();
    registry.assert_no_violations();

    let name = format!("prod-{sha}");
    let pipeline_id = kfp.pipeline("demo-ci").expect("the pipeline")["pipeline_id"].as_str().expect("id").to_string();
    let version = kfp.versions(&pipeline_id).into_iter().find(|v| v["name"] == name.as_str()).expect("prod version");
    let version_id = version["pipeline_version_id"].as_str().expect("an id");
    assert_eq!(kfp.spec(version_id).as_deref(), Some(spec.as_bytes()));
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(spec.as_bytes())));
    let package = registry.package("demo-ci").expect("the package");
    assert_eq!((package.tags.get("prod"), package.tags.get(&name)), (Some(&digest), Some(&digest)));

    let run = &promotion["run"];
    assert_eq!(run["backend"], "kfp");
    assert_eq!(run["state"], "SUCCEEDED", "{promotion:#}");
    let created = kfp.run(run["id"].as_str().expect("run id")).expect("the run exists on KFP");
    assert_eq!(created["runtime_config"]["parameters"]["greeting"], "prod");
    assert_eq!(promotion["release"]["digests"]["spec"], digest.as_str());
}
