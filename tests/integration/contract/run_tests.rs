//! Contract tests of the `kfp` and `vertex` run backends: runs created, polled through their scripted
//! states and stopped (terminate / cancel) against fakes that validate every request against the
//! published API definitions. Not a live cluster.

use std::time::Duration;

use pipewright::runner::kfp::KfpBackend;
use pipewright::runner::vertex::VertexBackend;
use pipewright::runner::{PipelineRunner, PollInterval, RunState, Submission};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{FakeKfp, FakeVertex, demo_ir};
use crate::support::*;

const FAST: PollInterval = PollInterval { first: Duration::from_millis(5), max: Duration::from_millis(20) };

fn submission() -> Submission {
    let text = demo_ir(BUSYBOX);
    Submission {
        display_name: "demo-ci-abc1234".into(),
        description: "a contract test".into(),
        spec: pipewright::runner::spec_json(&text).expect("the demo IR parses"),
        spec_text: text,
        parameters: json!({"greeting": "hi"}).as_object().cloned().expect("an object"),
        pipeline_root: Some("gs://bucket/root".into()),
        ..Submission::default()
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

#[test]
fn kfp_run_contract_inline_spec_polls_to_success() {
    let kfp = FakeKfp::start();
    kfp.script_runs(&["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let backend = KfpBackend::new(kfp.url(), None).with_poll(FAST);
    let started = rt.block_on(backend.start(&submission())).expect("started");
    let finished = rt.block_on(backend.wait(&started, far(), &CancellationToken::new())).expect("waited");
    assert_eq!(finished.state, RunState::Succeeded);
    assert!(!finished.timed_out);
    let run = kfp.run(&started.id).expect("the run exists");
    assert_eq!(run["display_name"], "demo-ci-abc1234");
    assert_eq!(run["runtime_config"]["parameters"]["greeting"], "hi");
    assert_eq!(run["pipeline_spec"]["pipelineInfo"]["name"], "demo-ci", "the spec went inline");
    // The creation answer shows the first state; each GET advances one.
    assert_eq!(kfp.lines().iter().filter(|l| l.starts_with("GET /apis/v2beta1/runs/")).count(), 3);
    kfp.assert_no_violations();
}

#[test]
fn kfp_run_contract_from_an_uploaded_version_reports_the_failure() {
    let kfp = FakeKfp::start();
    let (pipeline_id, version_id) = kfp.seed_pipeline("demo-ci", demo_ir(BUSYBOX).as_bytes());
    kfp.script_runs(&["RUNNING", "FAILED"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let backend = KfpBackend::new(kfp.url(), None).with_poll(FAST);
    let mut submission = submission();
    submission.kfp_version = Some((pipeline_id.clone(), version_id.clone()));
    let started = rt.block_on(backend.start(&submission)).expect("started");
    let finished = rt.block_on(backend.wait(&started, far(), &CancellationToken::new())).expect("waited");
    assert_eq!(finished.state, RunState::Failed);
    let run = kfp.run(&started.id).expect("the run");
    assert_eq!(run["pipeline_version_reference"]["pipeline_version_id"], version_id.as_str());
    assert!(run.get("pipeline_spec").is_none(), "a version reference, not the spec inline");
    kfp.assert_no_violations();
}

#[test]
fn kfp_run_contract_timeout_terminates_the_run() {
    let kfp = FakeKfp::start();
    kfp.script_runs(&["RUNNING"; 1000]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let backend = KfpBackend::new(kfp.url(), None).with_poll(FAST);
    let started = rt.block_on(backend.start(&submission())).expect("started");
    let until = Instant::now() + Duration::from_millis(200);
    let finished = rt.block_on(backend.wait(&started, until, &CancellationToken::new())).expect("waited");
    assert!(finished.timed_out);
    assert_eq!(finished.state, RunState::Cancelled);
    let terminate = format!("POST /apis/v2beta1/runs/{}:terminate", started.id);
    assert!(kfp.lines().contains(&terminate), "{:#?}", kfp.lines());
    assert_eq!(kfp.run(&started.id).expect("the run")["state"], "CANCELED");
    kfp.assert_no_violations();
}

#[test]
fn vertex_run_contract_template_job_polls_and_reads_state() {
    let vertex = FakeVertex::start();
    vertex.expect_token("g00gle");
    vertex.script_jobs(&["PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let backend = VertexBackend::new(Some(vertex.url()), "acme", "us-central1", Some("g00gle".into())).with_poll(FAST);
    let mut submission = submission();
    submission.template_uri = Some("https://us-central1-kfp.pkg.dev/acme/pipelines/demo-ci/sha256:abc".into());
    let started = rt.block_on(backend.start(&submission)).expect("started");
    let finished = rt.block_on(backend.wait(&started, far(), &CancellationToken::new())).expect("waited");
    assert_eq!(finished.state, RunState::Succeeded);
    let job = vertex.job(&started.id).expect("the job exists");
    assert_eq!(job["templateUri"], "https://us-central1-kfp.pkg.dev/acme/pipelines/demo-ci/sha256:abc");
    assert_eq!(job["runtimeConfig"]["gcsOutputDirectory"], "gs://bucket/root");
    assert!(started.url.as_deref().is_some_and(|u| u.contains(&started.id)));
    vertex.assert_no_violations();
}

#[test]
fn vertex_run_contract_cancel_stops_the_job() {
    let vertex = FakeVertex::start();
    vertex.script_jobs(&["PIPELINE_STATE_RUNNING"; 1000]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let backend = VertexBackend::new(Some(vertex.url()), "acme", "europe-west4", Some("t".into())).with_poll(FAST);
    let started = rt.block_on(backend.start(&submission())).expect("started");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let finished = rt.block_on(backend.wait(&started, far(), &cancel)).expect("waited");
    assert!(!finished.timed_out);
    assert_eq!(finished.state, RunState::Cancelled);
    let path = format!("POST /v1/projects/acme/locations/europe-west4/pipelineJobs/{}:cancel", started.id);
    assert!(vertex.lines().contains(&path), "{:#?}", vertex.lines());
    vertex.assert_no_violations();
}

#[test]
fn build_run_contract_kfp_runs_the_uploaded_version_and_times_out() {
    if !docker_ready() {
        return;
    }
    let kfp = FakeKfp::start();
    let spec = demo_ir(BUSYBOX);
    let build = |run: &str| {
        let config = format!(
            "steps: [{{name: '{BUSYBOX}', args: ['true']}}]\npipeline:\n  name: demo-ci\n  spec: pipeline.yaml\n  upload:\n  - kfp: {{host: '{}'}}\n{run}",
            kfp.url()
        );
        let mut repo = GitRepo::new();
        repo.write("cloudbuild.yaml", &config).write("pipeline.yaml", &spec);
        repo.commit("a pipeline run on Kubeflow Pipelines");
        let data = tempfile::tempdir().expect("tempdir");
        let output = pipewright()
            .arg("run")
            .arg(repo.path())
            .args(["--format", "json", "--pull", "never", "--data-dir"])
            .arg(data.path())
            .env("PIPEWRIGHT_POLL_MS", "10")
            .output()
            .expect("runs");
        let record: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a record");
        (record, output.status.code())
    };

    kfp.script_runs(&["PENDING", "RUNNING", "SUCCEEDED"]);
    let (record, code) =
        build(&format!("run:\n  backend: kfp\n  host: '{}'\n  parameters: {{greeting: hey}}\n", kfp.url()));
    assert_eq!(record["status"], "SUCCESS", "{:#}", record["failureInfo"]);
    assert_eq!(code, Some(0));
    let run = &record["run"];
    assert_eq!((run["backend"].as_str(), run["state"].as_str()), (Some("kfp"), Some("SUCCEEDED")));
    let created = kfp.run(run["id"].as_str().expect("run id")).expect("the run");
    let version = record["pipeline"]["uploads"][1]["version"].as_str().expect("the uploaded version");
    assert_eq!(created["pipeline_version_reference"]["pipeline_version_id"], version);
    assert_eq!(created["runtime_config"]["parameters"]["greeting"], "hey");

    kfp.script_runs(&["RUNNING"; 5000]);
    let (record, code) = build(&format!("run:\n  backend: kfp\n  host: '{}'\n  timeout: 1s\n", kfp.url()));
    assert_eq!(record["status"], "TIMEOUT", "{:#}", record["failureInfo"]);
    assert_eq!(code, Some(1));
    let id = record["run"]["id"].as_str().expect("run id");
    assert!(kfp.lines().contains(&format!("POST /apis/v2beta1/runs/{id}:terminate")), "the run was terminated");
    kfp.assert_no_violations();
}
