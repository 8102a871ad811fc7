//! The `vertex` backend: a Vertex AI PipelineJob (docs/research/kfp.md §5): created from the Artifact
//! Registry template this build uploaded (`templateUri` with its `sha256:` version) or the spec inline,
//! polled, cancelled. Metrics come from the job's task details (artifact metadata of `system.Metrics`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::io::http::{Client, Method};

use super::{BackendError, RemoteStatus, RunState, Started, Submission};

pub struct VertexBackend {
    http: Client,
    /// `https://<location>-aiplatform.googleapis.com`, or a test server.
    endpoint: String,
    project: String,
    location: String,
    poll: super::PollInterval,
}

/// The API a run in `location` goes to: `endpoint` when given, else Google's regional one.
pub fn endpoint(endpoint: Option<&str>, location: &str) -> String {
    endpoint.map_or_else(|| format!("https://{location}-aiplatform.googleapis.com"), str::to_string)
}

impl VertexBackend {
    pub fn new(endpoint: Option<&str>, project: &str, location: &str, token: Option<String>) -> VertexBackend {
        let endpoint = self::endpoint(endpoint, location);
        let http = Client::new(token, Some(Duration::from_secs(60)));
        VertexBackend {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            project: project.to_string(),
            location: location.to_string(),
            poll: super::PollInterval::from_env(),
        }
    }

    /// How often `wait` polls (default: [`super::PollInterval::from_env`]).
    pub fn with_poll(mut self, poll: super::PollInterval) -> VertexBackend {
        self.poll = poll;
        self
    }

    fn parent(&self) -> String {
        format!("{}/v1/projects/{}/locations/{}/pipelineJobs", self.endpoint, self.project, self.location)
    }

    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> Result<Value, BackendError> {
        Ok(self.http.json(method, url, body).await?)
    }
}

impl super::Remote for VertexBackend {
    fn name(&self) -> &'static str {
        "vertex"
    }

    fn poll_interval(&self) -> super::PollInterval {
        self.poll
    }

    async fn create(&self, submission: &Submission) -> Result<Started, BackendError> {
        let output = submission.pipeline_root.clone().ok_or_else(|| BackendError::Config {
            message:
                "Vertex AI needs a pipeline root: set `run.pipelineRoot` (gs://…) or `defaultPipelineRoot` in the spec"
                    .into(),
        })?;
        let mut job = json!({
            "displayName": submission.display_name,
            "runtimeConfig": {"gcsOutputDirectory": output, "parameterValues": submission.parameters},
            "labels": submission.labels,
        });
        match &submission.template_uri {
            Some(uri) => job["templateUri"] = json!(uri),
            None => job["pipelineSpec"] = submission.spec.clone(),
        }
        if let Some(account) = &submission.service_account {
            job["serviceAccount"] = json!(account);
        }
        let id = job_id(&submission.display_name);
        let url = format!("{}?pipelineJobId={id}", self.parent());
        let created = self.call(Method::POST, &url, Some(job)).await?;
        let name =
            created["name"].as_str().map_or_else(|| id.clone(), |n| n.rsplit('/').next().unwrap_or(&id).to_string());
        let console = format!(
            "https://console.cloud.google.com/vertex-ai/locations/{}/pipelines/runs/{name}?project={}",
            self.location, self.project
        );
        Ok(Started { id: name, url: Some(console) })
    }

    async fn status(&self, started: &Started) -> Result<RemoteStatus, BackendError> {
        let url = format!("{}/{}", self.parent(), started.id);
        let job = self.call(Method::GET, &url, None).await?;
        let raw = job["state"].as_str().unwrap_or("PIPELINE_STATE_UNSPECIFIED").to_string();
        let state = match raw.as_str() {
            "PIPELINE_STATE_SUCCEEDED" => RunState::Succeeded,
            "PIPELINE_STATE_FAILED" => RunState::Failed,
            "PIPELINE_STATE_CANCELLED" => RunState::Cancelled,
            // Paused is terminal for the Python SDK: nothing moves until someone resumes it.
            "PIPELINE_STATE_PAUSED" => RunState::Cancelled,
            "PIPELINE_STATE_RUNNING" | "PIPELINE_STATE_CANCELLING" => RunState::Running,
            _ => RunState::Pending,
        };
        let error = job["error"]["message"].as_str().map(str::to_string).or_else(|| failed_task(&job["jobDetail"]));
        Ok(RemoteStatus { state, raw_state: raw, error, metrics: metrics(&job["jobDetail"]) })
    }

    async fn stop(&self, started: &Started) -> Result<(), BackendError> {
        let url = format!("{}/{}:cancel", self.parent(), started.id);
        self.call(Method::POST, &url, Some(json!({}))).await.map(|_| ())
    }
}

/// `[a-z][-a-z0-9]*`, under 128 characters, unique per run.
fn job_id(display_name: &str) -> String {
    let mut id: String =
        display_name.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    id = id.trim_matches('-').to_string();
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        id.insert_str(0, "run-");
    }
    id.truncate(100);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", id.trim_end_matches('-'), &suffix[..8])
}

fn failed_task(detail: &Value) -> Option<String> {
    detail["taskDetails"].as_array()?.iter().find(|t| t["state"] == "FAILED").map(|t| {
        let name = t["taskName"].as_str().unwrap_or("a task");
        match t["error"]["message"].as_str() {
            Some(message) => format!("task `{name}` failed: {message}"),
            None => format!("task `{name}` failed"),
        }
    })
}

/// Numbers in the metadata of `system.Metrics` output artifacts of every task.
fn metrics(detail: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for task in detail["taskDetails"].as_array().into_iter().flatten() {
        for (_, output) in task["outputs"].as_object().into_iter().flatten() {
            for artifact in output["artifacts"].as_array().into_iter().flatten() {
                if artifact["schemaTitle"] != "system.Metrics" {
                    continue;
                }
                for (key, value) in artifact["metadata"].as_object().into_iter().flatten() {
                    if let Some(number) = value.as_f64() {
                        out.insert(key.clone(), number);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_follow_vertex_rules() {
        for name in ["breast-cancer-training-1a2b3c4", "9 Train", "---", "Ünïcode"] {
            let id = job_id(name);
            assert!(id.len() < 128 && id.starts_with(|c: char| c.is_ascii_lowercase()), "{id}");
            assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{id}");
        }
    }

    #[test]
    fn metrics_come_from_metrics_artifacts() {
        let detail = json!({"taskDetails": [{"taskName": "evaluate", "outputs": {"metrics": {"artifacts": [
            {"schemaTitle": "system.Metrics", "metadata": {"accuracy": 0.95, "note": "x"}}
        ]}, "model": {"artifacts": [{"schemaTitle": "system.Model", "metadata": {"size": 3}}]}}}]});
        assert_eq!(metrics(&detail), BTreeMap::from([("accuracy".to_string(), 0.95)]));
    }
}
