//! The `kfp` backend: a run on Kubeflow Pipelines through its REST API v2beta1 (docs/research/kfp.md §4):
//! create from the pipeline version this build uploaded (or the spec inline), poll, terminate.

use std::time::Duration;

use serde_json::{Value, json};

use crate::io::http::{Client, HttpError, Method};

use super::{BackendError, RemoteStatus, RunState, Started, Submission};

pub struct KfpBackend {
    http: Client,
    host: String,
    poll: super::PollInterval,
}

impl KfpBackend {
    pub fn new(host: &str, token: Option<String>) -> KfpBackend {
        let http = Client::new(token, Some(Duration::from_secs(60)));
        KfpBackend { http, host: host.trim_end_matches('/').to_string(), poll: super::PollInterval::from_env() }
    }

    /// How often `wait` polls (default: [`super::PollInterval::from_env`]).
    pub fn with_poll(mut self, poll: super::PollInterval) -> KfpBackend {
        self.poll = poll;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}/apis/v2beta1/{path}", self.host)
    }

    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> Result<Value, BackendError> {
        Ok(self.http.json(method, url, body).await?)
    }
}

impl super::Remote for KfpBackend {
    fn name(&self) -> &'static str {
        "kfp"
    }

    fn poll_interval(&self) -> super::PollInterval {
        self.poll
    }

    /// Creates the run (the body *is* the Run; snake_case proto names, as the API server answers).
    async fn create(&self, submission: &Submission) -> Result<Started, BackendError> {
        let mut runtime_config = json!({ "parameters": submission.parameters });
        if let Some(root) = &submission.pipeline_root {
            runtime_config["pipeline_root"] = json!(root);
        }
        let mut run = json!({
            "display_name": submission.display_name,
            "description": submission.description,
            "runtime_config": runtime_config,
        });
        match (&submission.kfp_version, &submission.spec) {
            (Some((pipeline_id, version_id)), _) => {
                run["pipeline_version_reference"] =
                    json!({"pipeline_id": pipeline_id, "pipeline_version_id": version_id});
            }
            (None, spec) => run["pipeline_spec"] = spec.clone(),
        }
        if let Some(account) = &submission.service_account {
            run["service_account"] = json!(account);
        }
        let url = self.url("runs");
        let created = self.call(Method::POST, &url, Some(run)).await?;
        let id = created["run_id"]
            .as_str()
            .ok_or_else(|| BackendError::from(HttpError::protocol(&url, "no `run_id` in the answer")))?
            .to_string();
        let ui = self.host.trim_end_matches("/pipeline");
        Ok(Started { id: id.clone(), url: Some(format!("{ui}/#/runs/details/{id}")) })
    }

    async fn status(&self, started: &Started) -> Result<RemoteStatus, BackendError> {
        let url = self.url(&format!("runs/{}", started.id));
        let run = self.call(Method::GET, &url, None).await?;
        let raw = run["state"].as_str().unwrap_or("RUNTIME_STATE_UNSPECIFIED").to_string();
        let state = match raw.as_str() {
            "SUCCEEDED" => RunState::Succeeded,
            "SKIPPED" => RunState::Skipped,
            "FAILED" => RunState::Failed,
            "CANCELED" => RunState::Cancelled,
            "PENDING" | "RUNTIME_STATE_UNSPECIFIED" | "PAUSED" => RunState::Pending,
            _ => RunState::Running,
        };
        let error = run["error"]["message"].as_str().map(str::to_string).or_else(|| failed_task(&run["run_details"]));
        Ok(RemoteStatus { state, raw_state: raw, error, metrics: Default::default() })
    }

    async fn stop(&self, started: &Started) -> Result<(), BackendError> {
        let url = self.url(&format!("runs/{}:terminate", started.id));
        self.call(Method::POST, &url, None).await.map(|_| ())
    }
}

/// The first failed task's name and error, from `run_details.task_details`.
fn failed_task(details: &Value) -> Option<String> {
    details["task_details"].as_array()?.iter().find(|t| t["state"] == "FAILED").map(|t| {
        let name = t["display_name"].as_str().unwrap_or("a task");
        match t["error"]["message"].as_str() {
            Some(message) => format!("task `{name}` failed: {message}"),
            None => format!("task `{name}` failed"),
        }
    })
}
