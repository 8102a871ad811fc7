//! `FakeVertex`: Vertex AI Pipelines' PipelineJob REST v1 (docs/research/kfp.md §5) for the run feature:
//! create (`POST …/pipelineJobs?pipelineJobId=`), get, cancel and list. There is no definition file in
//! the corpus, so requests are checked against `vertex_pipeline_jobs.swagger.json`, a hand-written
//! Swagger of the documented fields, plus the documented rules in `job_rules`. A bearer token is
//! always required. Jobs walk through a scripted state sequence, one step per GET.
//!
//! Not Vertex AI: nothing runs, templates are not downloaded, and undocumented fields of the real
//! API are refused as unknown (add them to the Swagger file, with their source, when needed).

use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde_json::{Value, json};

use super::artifact_registry::{google_error, google_status};
use super::server::{Auth, FakeServer, Reply, Request, Service};
use super::swagger::Swagger;

const SWAGGER_FILE: &str = "vertex_pipeline_jobs.swagger.json";

/// The states a job walks through unless a test scripts others.
pub const DEFAULT_JOB_STATES: &[&str] =
    &["PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"];

const FINISHED: &[&str] = &["PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"];

pub fn swagger() -> &'static Swagger {
    static SWAGGER_DOC: OnceLock<Swagger> = OnceLock::new();
    SWAGGER_DOC.get_or_init(|| Swagger::parse(SWAGGER_FILE, include_str!("vertex_pipeline_jobs.swagger.json")))
}

pub struct FakeVertex {
    server: FakeServer,
    vertex: Arc<Vertex>,
}

/// The common handle: `url()`, `requests()`, `violations()`, `expect_token()`, `reply_next()`.
impl Deref for FakeVertex {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeVertex {
    /// A server that requires a bearer token (any, unless `expect_token` names one).
    pub fn start() -> FakeVertex {
        let vertex = Arc::new(Vertex { state: Mutex::new(State::default()) });
        FakeVertex { server: FakeServer::start("FakeVertex", vertex.clone(), Auth::AnyBearer), vertex }
    }

    /// `{url}/v1/projects/{project}/locations/{location}`: the parent of pipeline jobs.
    pub fn parent_url(&self, project: &str, location: &str) -> String {
        format!("{}/v1/projects/{project}/locations/{location}", self.url())
    }

    /// Jobs created from now on walk through `states` (PipelineState names), one per GET.
    pub fn script_jobs(&self, states: &[&str]) {
        let known = swagger().enum_values("PipelineState");
        for state in states {
            assert!(known.iter().any(|k| k == state), "`{state}` is not a PipelineState");
        }
        assert!(!states.is_empty(), "a job needs at least one state");
        self.vertex.state().script = states.iter().map(|s| s.to_string()).collect();
    }

    /// The job named `…/pipelineJobs/{id}`, as the API shows it.
    pub fn job(&self, id: &str) -> Option<Value> {
        self.vertex.state().jobs.iter().find(|j| j.id == id).map(|j| j.api.clone())
    }
}

struct Vertex {
    state: Mutex<State>,
}

struct Job {
    id: String,
    api: Value,
    script: Vec<String>,
    step: usize,
}

struct State {
    jobs: Vec<Job>,
    script: Vec<String>,
    counter: u64,
}

impl Default for State {
    fn default() -> State {
        State { jobs: Vec::new(), script: DEFAULT_JOB_STATES.iter().map(|s| s.to_string()).collect(), counter: 0 }
    }
}

impl Vertex {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("FakeVertex's state is not poisoned")
    }
}

impl Service for Vertex {
    fn check(&self, request: &Request) -> Vec<String> {
        let route = match swagger().route(&request.method, &request.path) {
            Ok(route) => route,
            Err(problem) => return vec![problem],
        };
        let mut problems = swagger().check_request(&route, request);
        if problems.is_empty() && route.operation.id == "PipelineService_CreatePipelineJob" {
            problems.extend(job_id_rules(request.param("pipelineJobId")));
            problems.extend(job_rules(&job_body(request)));
        }
        problems
    }

    fn answer(&self, request: &Request) -> Reply {
        let route = swagger().route(&request.method, &request.path).expect("a checked request has a route");
        let param = |name: &str| route.params.get(name).cloned().unwrap_or_default();
        let parent = format!("projects/{}/locations/{}", param("project"), param("location"));
        let mut state = self.state();
        match route.operation.id.as_str() {
            "PipelineService_CreatePipelineJob" => {
                state.create(&parent, request.param("pipelineJobId"), job_body(request))
            }
            "PipelineService_GetPipelineJob" => state.get(&parent, &param("pipelineJob")),
            "PipelineService_CancelPipelineJob" => state.cancel(&parent, &param("pipelineJob")),
            "PipelineService_ListPipelineJobs" => state.list(&parent, request),
            id => Reply::unimplemented("FakeVertex", &format!("`{id}`")),
        }
    }

    fn error(&self, status: u16, message: &str) -> Reply {
        google_error(status, message)
    }

    fn check_reply(&self, request: &Request, reply: &Reply) -> Vec<String> {
        let Ok(route) = swagger().route(&request.method, &request.path) else { return Vec::new() };
        if reply.status == 501 {
            return Vec::new();
        }
        swagger().check_response(route.operation, reply.status, &reply.body)
    }
}

fn job_body(request: &Request) -> Value {
    swagger().canonical(&swagger().definition("PipelineJob"), &request.json())
}

/// `pipelineJobId`: optional; under 128 characters of `[a-z][-a-z0-9]*`.
fn job_id_rules(id: Option<&str>) -> Vec<String> {
    let Some(id) = id else { return Vec::new() };
    let valid = id.len() < 128
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Vec::new()
    } else {
        vec![format!("`pipelineJobId` `{id}` must be under 128 characters of `[a-z][-a-z0-9]*`")]
    }
}

/// The documented rules for a new PipelineJob: a template (`pipelineSpec` or `templateUri`), an output
/// directory, a display name of at most 128 characters, labels of lowercase letters, digits, `_` and
/// `-` (at most 64 each), and parameter values only for parameters the spec declares.
fn job_rules(job: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if job["pipelineSpec"].is_null() && job["templateUri"].is_null() {
        problems.push("a PipelineJob needs `pipelineSpec` or `templateUri`".into());
    }
    if job["runtimeConfig"]["gcsOutputDirectory"].as_str().unwrap_or("").is_empty() {
        problems.push("`runtimeConfig.gcsOutputDirectory` is required".into());
    }
    if job["displayName"].as_str().is_some_and(|n| n.chars().count() > 128) {
        problems.push("`displayName` is longer than 128 characters".into());
    }
    let label_ok = |s: &str| {
        s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    for (key, value) in job["labels"].as_object().into_iter().flatten() {
        let value = value.as_str().unwrap_or("");
        if key.is_empty() || !label_ok(key) || !label_ok(value) {
            problems.push(format!("label `{key}: {value}`: keys and values are at most 64 of `[a-z0-9_-]`"));
        }
    }
    let declared = &job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"];
    if job["pipelineSpec"].is_object() {
        for name in job["runtimeConfig"]["parameterValues"].as_object().into_iter().flatten().map(|(k, _)| k) {
            if declared.get(name).is_none() {
                problems.push(format!("parameter `{name}` is not an input of the pipeline (`root.inputDefinitions`)"));
            }
        }
    }
    problems
}

impl State {
    fn now(&mut self) -> String {
        self.counter += 1;
        let t = time::macros::datetime!(2026-01-01 00:00:00 UTC) + time::Duration::seconds(self.counter as i64);
        t.format(&time::format_description::well_known::Rfc3339).expect("a timestamp formats")
    }

    fn find(&self, parent: &str, id: &str) -> Option<usize> {
        let name = format!("{parent}/pipelineJobs/{id}");
        self.jobs.iter().position(|j| j.api["name"] == name.as_str())
    }

    fn create(&mut self, parent: &str, id: Option<&str>, mut job: Value) -> Reply {
        self.counter += 1;
        let id = id.map(str::to_string).unwrap_or_else(|| format!("{:019}", 1_000_000_000_000 + self.counter));
        if self.find(parent, &id).is_some() {
            return google_status(
                409,
                "ALREADY_EXISTS",
                &format!("PipelineJob `{parent}/pipelineJobs/{id}` already exists"),
            );
        }
        let object = job.as_object_mut().expect("a checked PipelineJob is an object");
        for output in ["name", "state", "createTime", "startTime", "endTime", "updateTime", "error", "jobDetail"] {
            object.remove(output);
        }
        job["name"] = json!(format!("{parent}/pipelineJobs/{id}"));
        job["createTime"] = json!(self.now());
        if let Some(digest) =
            job["templateUri"].as_str().and_then(|u| u.rsplit('/').next()).filter(|v| v.starts_with("sha256:"))
        {
            job["templateMetadata"] = json!({"version": digest});
        }
        let mut job = Job { id, api: job, script: self.script.clone(), step: 0 };
        self.enter(&mut job, 0);
        let answer = job.api.clone();
        self.jobs.push(job);
        Reply::json(200, &answer)
    }

    fn get(&mut self, parent: &str, id: &str) -> Reply {
        let Some(i) = self.find(parent, id) else { return not_found(parent, id) };
        let mut job = self.jobs.remove(i);
        if job.step + 1 < job.script.len() {
            let step = job.step + 1;
            self.enter(&mut job, step);
        }
        let answer = job.api.clone();
        self.jobs.insert(i, job);
        Reply::json(200, &answer)
    }

    /// Cancelling is asynchronous: CANCELLING now, CANCELLED at the next GET.
    fn cancel(&mut self, parent: &str, id: &str) -> Reply {
        let Some(i) = self.find(parent, id) else { return not_found(parent, id) };
        let mut job = self.jobs.remove(i);
        let state = job.api["state"].as_str().unwrap_or("").to_string();
        let reply = if FINISHED.contains(&state.as_str()) {
            google_status(400, "FAILED_PRECONDITION", &format!("cannot cancel a PipelineJob in state {state}"))
        } else {
            job.script.truncate(job.step + 1);
            job.script.extend(["PIPELINE_STATE_CANCELLING".to_string(), "PIPELINE_STATE_CANCELLED".to_string()]);
            let step = job.step + 1;
            self.enter(&mut job, step);
            Reply::json(200, &json!({}))
        };
        self.jobs.insert(i, job);
        reply
    }

    fn list(&self, parent: &str, request: &Request) -> Reply {
        if request.param("filter").is_some_and(|f| !f.is_empty()) {
            return Reply::unimplemented("FakeVertex", "`filter` on the jobs list");
        }
        let prefix = format!("{parent}/");
        let jobs: Vec<Value> = self
            .jobs
            .iter()
            .filter(|j| j.api["name"].as_str().unwrap_or("").starts_with(&prefix))
            .map(|j| j.api.clone())
            .collect();
        Reply::json(200, &if jobs.is_empty() { json!({}) } else { json!({"pipelineJobs": jobs}) })
    }

    fn enter(&mut self, job: &mut Job, step: usize) {
        let state = job.script[step].clone();
        let now = self.now();
        job.step = step;
        job.api["state"] = json!(state);
        job.api["updateTime"] = json!(now);
        if state == "PIPELINE_STATE_RUNNING" && job.api["startTime"].is_null() {
            job.api["startTime"] = json!(now);
        }
        if FINISHED.contains(&state.as_str()) {
            job.api["endTime"] = json!(now);
        }
        match state.as_str() {
            "PIPELINE_STATE_FAILED" => {
                job.api["error"] = json!({"code": 9, "message": "The DAG failed (scripted by the fake)."})
            }
            "PIPELINE_STATE_CANCELLED" => {
                job.api["error"] = json!({"code": 1, "message": "The PipelineJob was cancelled."})
            }
            _ => {}
        }
    }
}

fn not_found(parent: &str, id: &str) -> Reply {
    google_error(404, &format!("PipelineJob `{parent}/pipelineJobs/{id}` does not exist"))
}
