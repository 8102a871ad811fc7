//! The fakes behave like their peers where the run feature will depend on it: experiments, runs that
//! walk through scripted states (one step per GET) and stop when terminated, Vertex AI jobs likewise;
//! and every answer keeps the peer's response schemas (a violation otherwise).

use reqwest::Client;
use serde_json::{Value, json};

use super::{FakeArtifactRegistry, FakeKfp, FakeVertex, demo_ir};

/// Sends a JSON request, expects `status`, returns the answer.
async fn call(request: reqwest::RequestBuilder, status: u16) -> Value {
    let response = request.send().await.expect("the fake answers");
    let actual = response.status().as_u16();
    let body = response.text().await.expect("a body");
    assert_eq!(actual, status, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The `state` of `count` successive GETs of `url`.
async fn states(client: &Client, url: &str, count: usize, token: Option<&str>) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        seen.push(call(request, 200).await["state"].as_str().unwrap_or("").to_string());
    }
    seen
}

#[tokio::test]
async fn kfp_runs_contract_follow_their_script_and_stop_when_terminated() {
    let kfp = FakeKfp::start();
    let (pipeline_id, version_id) = kfp.seed_pipeline("demo-ci", demo_ir("local/busybox:1").as_bytes());
    let client = Client::new();
    let api = format!("{}/apis/v2beta1", kfp.url());
    assert_eq!(call(client.get(format!("{api}/healthz")), 200).await["multi_user"], false);
    let experiment = call(client.post(format!("{api}/experiments")).json(&json!({"display_name": "ci"})), 200).await;
    let experiment_id = experiment["experiment_id"].as_str().expect("an id");
    let duplicate = call(client.post(format!("{api}/experiments")).json(&json!({"display_name": "ci"})), 409).await;
    assert_eq!(duplicate["code"], 6, "ALREADY_EXISTS: {duplicate}");
    let listed = call(client.get(format!("{api}/experiments")), 200).await;
    let names: Vec<&str> = listed["experiments"]
        .as_array()
        .expect("experiments")
        .iter()
        .filter_map(|e| e["display_name"].as_str())
        .collect();
    assert_eq!(names, ["Default", "ci"]);

    let new_run = |name: &str| {
        json!({
            "display_name": name,
            "experiment_id": experiment_id,
            "pipeline_version_reference": {"pipeline_id": pipeline_id},
            "runtime_config": {"parameters": {"greeting": "hi"}},
        })
    };
    let run = call(client.post(format!("{api}/runs")).json(&new_run("finishes")), 200).await;
    assert_eq!(run["state"], "PENDING");
    assert_eq!(run["pipeline_version_reference"]["pipeline_version_id"], version_id.as_str(), "the latest version");
    let url = format!("{api}/runs/{}", run["run_id"].as_str().expect("an id"));
    assert_eq!(states(&client, &url, 3, None).await, ["RUNNING", "SUCCEEDED", "SUCCEEDED"]);
    let finished = call(client.post(format!("{url}:terminate")), 400).await;
    assert!(finished["message"].as_str().unwrap_or("").contains("Row not found"), "{finished}");

    kfp.script_runs(&["PENDING", "RUNNING", "RUNNING", "FAILED"]);
    let run = call(client.post(format!("{api}/runs")).json(&new_run("terminated")), 200).await;
    let run_id = run["run_id"].as_str().expect("an id");
    let url = format!("{api}/runs/{run_id}");
    assert_eq!(states(&client, &url, 1, None).await, ["RUNNING"]);
    assert_eq!(call(client.post(format!("{url}:terminate")), 200).await, json!({}));
    assert_eq!(kfp.run(run_id).expect("the run")["state"], "CANCELING");
    assert_eq!(states(&client, &url, 2, None).await, ["CANCELED", "CANCELED"]);
    let history: Vec<Value> = kfp.run(run_id).expect("the run")["state_history"].as_array().expect("a history").clone();
    let history: Vec<&str> = history.iter().filter_map(|h| h["state"].as_str()).collect();
    assert_eq!(history, ["PENDING", "RUNNING", "CANCELING", "CANCELED"]);

    let runs = call(client.get(format!("{api}/runs?experiment_id={experiment_id}&page_size=1")), 200).await;
    assert_eq!((runs["total_size"].as_u64(), runs["next_page_token"].as_str()), (Some(2), Some("1")));
    kfp.assert_no_violations();
}

#[tokio::test]
async fn kfp_runs_contract_inline_spec_and_missing_things() {
    let kfp = FakeKfp::start();
    let client = Client::new();
    let api = format!("{}/apis/v2beta1", kfp.url());
    let spec = json!({"pipelineInfo": {"name": "demo-ci"}, "root": {}});
    let inline = json!({"display_name": "inline", "pipeline_spec": spec});
    let run = call(client.post(format!("{api}/runs")).json(&inline), 200).await;
    assert_eq!(run["pipeline_spec"], spec, "the IR travels opaque, in its own camelCase");
    let missing = json!({"display_name": "r", "pipeline_version_reference": {"pipeline_id": "nope"}});
    assert_eq!(call(client.post(format!("{api}/runs")).json(&missing), 404).await["code"], 5);
    assert_eq!(call(client.get(format!("{api}/runs/nope")), 404).await["code"], 5);
    assert_eq!(call(client.get(format!("{api}/pipelines/names/nope")), 404).await["code"], 5);
    kfp.assert_no_violations();
}

#[tokio::test]
async fn vertex_pipeline_job_contract_runs_a_template_from_artifact_registry() {
    let registry = FakeArtifactRegistry::start();
    let vertex = FakeVertex::start();
    vertex.expect_token("google-t0ken");
    let client = Client::new();
    let spec = demo_ir("local/busybox:1");
    let form = reqwest::multipart::Form::new()
        .part("content", reqwest::multipart::Part::bytes(spec.clone().into_bytes()).file_name("demo-ci.yaml"))
        .text("tags", "main");
    let uploaded =
        client.post(registry.repository_url()).bearer_auth("t").multipart(form).send().await.expect("upload");
    let version = uploaded.text().await.expect("text").split_once('/').expect("package/version").1.to_string();
    let template_uri = format!("{}/demo-ci/{version}", registry.repository_url());

    let jobs = format!("{}/pipelineJobs", vertex.parent_url("my-proj", "europe-west4"));
    let body = json!({
        "displayName": "demo-ci-3f2c1e9",
        "templateUri": template_uri,
        "runtimeConfig": {"gcsOutputDirectory": "gs://my-proj-root/demo-ci", "parameterValues": {"greeting": "hi"}},
        "labels": {"git-sha": "3f2c1e9", "trigger": "ci"},
        "serviceAccount": "pipelines@my-proj.iam.gserviceaccount.com",
    });
    let create = |id: &str| client.post(format!("{jobs}?pipelineJobId={id}")).bearer_auth("google-t0ken").json(&body);
    let job = call(create("demo-ci-1"), 200).await;
    assert_eq!(job["name"], "projects/my-proj/locations/europe-west4/pipelineJobs/demo-ci-1");
    assert_eq!(
        (job["state"].as_str(), job["templateMetadata"]["version"].as_str()),
        (Some("PIPELINE_STATE_PENDING"), Some(version.as_str()))
    );
    assert_eq!(call(create("demo-ci-1"), 409).await["error"]["status"], "ALREADY_EXISTS");
    let url = format!("{jobs}/demo-ci-1");
    let seen = states(&client, &url, 3, Some("google-t0ken")).await;
    assert_eq!(seen, ["PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_SUCCEEDED"]);

    vertex.script_jobs(&["PIPELINE_STATE_QUEUED", "PIPELINE_STATE_RUNNING", "PIPELINE_STATE_FAILED"]);
    call(create("demo-ci-2"), 200).await;
    let cancel = client.post(format!("{jobs}/demo-ci-2:cancel")).bearer_auth("google-t0ken").json(&json!({}));
    assert_eq!(call(cancel, 200).await, json!({}));
    let seen = states(&client, &format!("{jobs}/demo-ci-2"), 1, Some("google-t0ken")).await;
    assert_eq!(seen, ["PIPELINE_STATE_CANCELLED"]);
    assert!(vertex.job("demo-ci-2").expect("the job")["endTime"].is_string());
    let finished = client.post(format!("{jobs}/demo-ci-1:cancel")).bearer_auth("google-t0ken").json(&json!({}));
    assert_eq!(call(finished, 400).await["error"]["status"], "FAILED_PRECONDITION");
    let listed = call(client.get(&jobs).bearer_auth("google-t0ken"), 200).await;
    assert_eq!(listed["pipelineJobs"].as_array().map(Vec::len), Some(2));
    vertex.assert_no_violations();
    registry.assert_no_violations();
}
