//! `FakeKfp`: the Kubeflow Pipelines API server (REST v2beta1, docs/research/kfp.md §4) for the endpoints
//! pipewright uses and the ones the run feature will use: pipelines by name, multipart upload of a
//! pipeline and of a version, versions list, experiments, runs (create, get, terminate) and health.
//!
//! Every request is checked against KFP's published Swagger
//! (`tests/fixtures/kfp/reference/…kfp_api_single_file.swagger.json`) and the oneofs of its `.proto`
//! files, then against the server rules the Swagger cannot express (`server_rules`). State is
//! kept, so flows are realistic: names are unique, a duplicate version gets the server's "already
//! exist" answer, and runs walk through a scripted state sequence, one step per GET.
//!
//! Not a live Kubeflow: nothing is compiled, scheduled or run, and answers to uploads leave out the
//! version's `pipeline_spec`, which the real server fills in from the file (pipewright does not read it).

use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde_json::{Value, json};

use super::server::{Auth, FakeServer, Reply, Request, Service};
use super::swagger::{Names, Route, Swagger};
use super::template::pipeline_name;

const SWAGGER_FILE: &str = "kubeflow__pipelines__backend__api__v2beta1__swagger__kfp_api_single_file.swagger.json";
const SWAGGER: &str = include_str!(
    "../../fixtures/kfp/reference/kubeflow__pipelines__backend__api__v2beta1__swagger__kfp_api_single_file.swagger.json"
);
const RUN_PROTO: &str =
    include_str!("../../fixtures/kfp/reference/kubeflow__pipelines__backend__api__v2beta1__run.proto");
const PIPELINE_PROTO: &str =
    include_str!("../../fixtures/kfp/reference/kubeflow__pipelines__backend__api__v2beta1__pipeline.proto");

/// The states a run walks through unless a test scripts others.
pub const DEFAULT_RUN_STATES: &[&str] = &["PENDING", "RUNNING", "SUCCEEDED"];

const TERMINAL: &[&str] = &["SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"];

/// KFP's Swagger with the oneofs of `run.proto` and `pipeline.proto`.
pub fn swagger() -> &'static Swagger {
    static SWAGGER_DOC: OnceLock<Swagger> = OnceLock::new();
    SWAGGER_DOC.get_or_init(|| {
        Swagger::parse(SWAGGER_FILE, SWAGGER).with_oneofs(RUN_PROTO, "v2beta1").with_oneofs(PIPELINE_PROTO, "v2beta1")
    })
}

pub struct FakeKfp {
    server: FakeServer,
    kfp: Arc<Kfp>,
}

/// The common handle: `url()`, `requests()`, `violations()`, `expect_token()`, `reply_next()`.
impl Deref for FakeKfp {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeKfp {
    /// A server without auth (standalone KFP), holding only the `Default` experiment.
    pub fn start() -> FakeKfp {
        let kfp = Arc::new(Kfp { state: Mutex::new(State::new()) });
        FakeKfp { server: FakeServer::start("FakeKfp", kfp.clone(), Auth::None), kfp }
    }

    /// Runs created from now on walk through `states` (`v2beta1RuntimeState` names), one per GET.
    pub fn script_runs(&self, states: &[&str]) {
        let known = swagger().enum_values("v2beta1RuntimeState");
        for state in states {
            assert!(known.iter().any(|k| k == state), "`{state}` is not a v2beta1RuntimeState");
        }
        assert!(!states.is_empty(), "a run needs at least one state");
        self.state().run_states = states.iter().map(|s| s.to_string()).collect();
    }

    /// A pipeline and its first version, as if uploaded before the test; returns their ids.
    pub fn seed_pipeline(&self, name: &str, spec: &[u8]) -> (String, String) {
        let mut state = self.state();
        let pipeline = state.add_pipeline(name, name, "", "");
        let id = pipeline["pipeline_id"].as_str().expect("an id").to_string();
        let version = state.add_version(&id, name, name, "", None, spec);
        (id, version["pipeline_version_id"].as_str().expect("an id").to_string())
    }

    /// The pipeline named `name`, as the API shows it.
    pub fn pipeline(&self, name: &str) -> Option<Value> {
        self.state().pipelines.iter().find(|p| p["name"] == name).cloned()
    }

    /// The versions of pipeline `pipeline_id`, oldest first, as the API shows them.
    pub fn versions(&self, pipeline_id: &str) -> Vec<Value> {
        self.state().versions.iter().filter(|v| v.api["pipeline_id"] == pipeline_id).map(|v| v.api.clone()).collect()
    }

    /// The bytes uploaded as version `version_id`.
    pub fn spec(&self, version_id: &str) -> Option<Vec<u8>> {
        self.state().versions.iter().find(|v| v.api["pipeline_version_id"] == version_id).map(|v| v.spec.clone())
    }

    pub fn run(&self, run_id: &str) -> Option<Value> {
        self.state().runs.iter().find(|r| r.api["run_id"] == run_id).map(|r| r.api.clone())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.kfp.state()
    }
}

struct Kfp {
    state: Mutex<State>,
}

impl Kfp {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("FakeKfp's state is not poisoned")
    }
}

impl Service for Kfp {
    fn check(&self, request: &Request) -> Vec<String> {
        let route = match swagger().route(&request.method, &request.path) {
            Ok(route) => route,
            Err(problem) => return vec![problem],
        };
        let mut problems = swagger().check_request(&route, request);
        if problems.is_empty() {
            problems = server_rules(&route, request);
        }
        problems
    }

    fn answer(&self, request: &Request) -> Reply {
        let route = swagger().route(&request.method, &request.path).expect("a checked request has a route");
        let param = |name: &str| route.params.get(name).map(String::as_str).unwrap_or_default();
        let mut state = self.state();
        let op = route.operation;
        match op.id.as_str() {
            "HealthzService_GetHealthz" => ok(json!({"multi_user": false, "pipeline_store": "database"})),
            "PipelineService_GetPipelineByName" => {
                state.pipeline_by_name(param("name"), request.param("namespace").unwrap_or(""))
            }
            "PipelineService_GetPipeline" => state.get_pipeline(param("pipeline_id")),
            "PipelineService_ListPipelines" => list(state.pipelines.clone(), request, "pipelines"),
            "UploadPipeline" => state.upload_pipeline(request),
            "UploadPipelineVersion" => state.upload_version(request),
            "PipelineService_ListPipelineVersions" => {
                let versions =
                    state.versions.iter().map(|v| v.api.clone()).filter(|v| v["pipeline_id"] == param("pipeline_id"));
                list(versions.collect(), request, "pipeline_versions")
            }
            "PipelineService_GetPipelineVersion" => {
                state.get_version(param("pipeline_id"), param("pipeline_version_id"))
            }
            "ExperimentService_CreateExperiment" => state.create_experiment(&body(request, "v2beta1Experiment")),
            "ExperimentService_GetExperiment" => state.get_experiment(param("experiment_id")),
            "ExperimentService_ListExperiments" => list(state.experiments.clone(), request, "experiments"),
            "RunService_CreateRun" => state.create_run(&body(request, "v2beta1Run"), request.param("experiment_id")),
            "RunService_GetRun" => state.get_run(param("run_id")),
            "RunService_ListRuns" => {
                let experiment = request.param("experiment_id").unwrap_or("");
                let runs = state.runs.iter().map(|r| r.api.clone());
                list(
                    runs.filter(|r| experiment.is_empty() || r["experiment_id"] == experiment).collect(),
                    request,
                    "runs",
                )
            }
            "RunService_TerminateRun" => state.terminate_run(param("run_id")),
            id => Reply::unimplemented("FakeKfp", &format!("`{id}` ({} {})", op.method, op.template)),
        }
    }

    fn error(&self, status: u16, message: &str) -> Reply {
        status_error(status, message)
    }

    /// Answers keep the Swagger's response schemas, except the multipart handlers' errors, which
    /// the real server writes as `{error_message, error_details}` whatever the Swagger says.
    fn check_reply(&self, request: &Request, reply: &Reply) -> Vec<String> {
        let Ok(route) = swagger().route(&request.method, &request.path) else { return Vec::new() };
        let op = route.operation;
        if reply.status == 501 || op.has_form() && reply.status >= 400 {
            return Vec::new();
        }
        swagger().check_response(op, reply.status, &reply.body)
    }
}

/// What KFP's server requires beyond the Swagger (pipeline_upload_server.go, the `Required input`
/// notes in the Swagger's descriptions, and docs/research/kfp.md §4).
fn server_rules(route: &Route<'_>, request: &Request) -> Vec<String> {
    let mut problems = Vec::new();
    let op = route.operation.id.as_str();
    if matches!(op, "UploadPipeline" | "UploadPipelineVersion") {
        problems.extend(upload_rules(request));
    }
    if op == "UploadPipelineVersion" && request.param("pipelineid").unwrap_or("").is_empty() {
        problems.push("`pipelineid` is required: the server answers \"error reading pipeline id\" without it".into());
    }
    let listed = match op {
        "PipelineService_ListPipelines" => Some("v2beta1Pipeline"),
        "PipelineService_ListPipelineVersions" => Some("v2beta1PipelineVersion"),
        "ExperimentService_ListExperiments" => Some("v2beta1Experiment"),
        "RunService_ListRuns" => Some("v2beta1Run"),
        _ => None,
    };
    if let Some(definition) = listed {
        problems.extend(list_rules(definition, request));
    }
    if op == "RunService_CreateRun" {
        problems.extend(run_rules(&body(request, "v2beta1Run")));
    }
    if op == "ExperimentService_CreateExperiment"
        && text(&body(request, "v2beta1Experiment")["display_name"]).is_empty()
    {
        problems.push("`display_name` is a required input of an experiment".into());
    }
    problems
}

/// The multipart upload handlers: the file's format is chosen by its name (or zip/gzip magic bytes),
/// it must be a pipeline spec, and `tags` is a JSON object of strings.
fn upload_rules(request: &Request) -> Vec<String> {
    let mut problems = Vec::new();
    let file = request.part("uploadfile").expect("the Swagger check found `uploadfile`");
    let file_name = file.file_name.as_deref().unwrap_or("");
    let archive = file.data.starts_with(b"PK\x03\x04") || file.data.starts_with(b"\x1f\x8b");
    if ![".yaml", ".yml", ".json"].iter().any(|ext| file_name.ends_with(ext)) && !archive {
        problems
            .push(format!("`uploadfile` is named `{file_name}`: the server reads .yaml, .yml, .json, zip or tar.gz"));
    } else if !archive && pipeline_name(&file.data).is_none() {
        problems.push("`uploadfile` is not a KFP pipeline spec (no `pipelineInfo.name`)".into());
    }
    if let Some(tags) = request.param("tags") {
        let valid = serde_json::from_str::<Value>(tags)
            .ok()
            .and_then(|t| t.as_object().map(|o| o.values().all(Value::is_string)))
            .unwrap_or(false);
        if !valid {
            problems.push(format!("`tags` must be a JSON object of strings, got `{tags}`"));
        }
    }
    problems
}

/// `filter` is a JSON `v2beta1Filter` on fields of the listed resource; `sort_by` is
/// `field [asc|desc]`.
fn list_rules(definition: &str, request: &Request) -> Vec<String> {
    let mut problems = Vec::new();
    let fields = swagger().json_fields(definition);
    if let Some(filter) = request.param("filter") {
        match serde_json::from_str::<Value>(filter) {
            Ok(value) => {
                problems.extend(swagger().check_json(
                    &swagger().definition("v2beta1Filter"),
                    &value,
                    "filter",
                    Names::Either,
                ));
                for predicate in value["predicates"].as_array().into_iter().flatten() {
                    let key = predicate["key"].as_str().unwrap_or("");
                    if !fields.iter().any(|f| f == key) {
                        problems.push(format!("`filter` predicate key `{key}` is not a field of `{definition}`"));
                    }
                }
            }
            Err(e) => problems.push(format!("`filter` is not JSON: {e}")),
        }
    }
    if let Some(sort_by) = request.param("sort_by").filter(|s| !s.is_empty()) {
        let mut words = sort_by.split_whitespace();
        let field = words.next().unwrap_or("");
        let order = words.next().unwrap_or("asc");
        if !fields.iter().any(|f| f == field) || !matches!(order, "asc" | "desc") || words.next().is_some() {
            problems.push(format!("`sort_by` must be `<field of {definition}> [asc|desc]`, got `{sort_by}`"));
        }
    }
    problems
}

/// A run needs a name and exactly one pipeline source (run.proto: "Required input").
fn run_rules(run: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if text(&run["display_name"]).is_empty() {
        problems.push("`display_name` is a required input of a run".into());
    }
    let sources = ["pipeline_version_reference", "pipeline_spec", "pipeline_version_id"];
    if sources.iter().all(|s| run[s].is_null()) {
        problems.push("a run needs a pipeline source: `pipeline_version_reference` or `pipeline_spec`".into());
    }
    let reference = &run["pipeline_version_reference"];
    if !reference.is_null() && text(&reference["pipeline_id"]).is_empty() {
        problems.push("`pipeline_version_reference.pipeline_id` is a required input".into());
    }
    problems
}

/// A request's JSON body with its fields spelt as in `definition` (snake_case proto names).
fn body(request: &Request, definition: &str) -> Value {
    swagger().canonical(&swagger().definition(definition), &request.json())
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn ok(body: Value) -> Reply {
    Reply::json(200, &body)
}

/// A grpc-gateway error: a google.rpc.Status with the gRPC code for `status`.
fn status_error(status: u16, message: &str) -> Reply {
    let code = match status {
        400 => 3,
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 6,
        501 => 12,
        _ => 13,
    };
    Reply::json(status, &json!({"code": code, "message": message, "details": []}))
}

/// An error from the multipart upload handlers (writeErrorToResponse).
fn upload_error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"error_message": message, "error_details": message}))
}

/// A list answer: `filter` (EQUALS, NOT_EQUALS, IS_SUBSTRING, IN on string fields), `sort_by`,
/// `page_size` (0: everything) and `page_token` (an offset this fake issued).
fn list(mut items: Vec<Value>, request: &Request, key: &str) -> Reply {
    if let Some(filter) = request.param("filter") {
        let filter: Value = serde_json::from_str(filter).expect("a checked filter is JSON");
        let filter = swagger().canonical(&swagger().definition("v2beta1Filter"), &filter);
        let predicates = filter["predicates"].as_array().cloned().unwrap_or_default();
        if let Some(predicate) = predicates.iter().find(|p| holds(p, &json!({})).is_none()) {
            return Reply::unimplemented("FakeKfp", &format!("the filter predicate {predicate}"));
        }
        items.retain(|item| predicates.iter().all(|p| holds(p, item) == Some(true)));
    }
    if let Some(sort_by) = request.param("sort_by").filter(|s| !s.is_empty()) {
        let mut words = sort_by.split_whitespace();
        let field = words.next().unwrap_or("").to_string();
        items.sort_by(|a, b| a[&field].to_string().cmp(&b[&field].to_string()));
        if words.next() == Some("desc") {
            items.reverse();
        }
    }
    let total = items.len();
    let start = match request.param("page_token").filter(|t| !t.is_empty()) {
        Some(token) => match token.parse::<usize>() {
            Ok(start) if start <= total => start,
            _ => return status_error(400, &format!("invalid page token `{token}`")),
        },
        None => 0,
    };
    let size = request.param("page_size").and_then(|s| s.parse::<usize>().ok()).filter(|s| *s > 0).unwrap_or(total);
    let page: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let mut body = json!({});
    if !page.is_empty() {
        body[key] = Value::Array(page.clone());
    }
    if total > 0 {
        body["total_size"] = json!(total);
    }
    if start + page.len() < total {
        body["next_page_token"] = json!((start + page.len()).to_string());
    }
    ok(body)
}

/// Whether `item` satisfies `predicate`; `None` for a predicate this fake does not evaluate.
fn holds(predicate: &Value, item: &Value) -> Option<bool> {
    let actual = item[text(&predicate["key"])].as_str().unwrap_or("");
    let value = text(&predicate["string_value"]);
    let values = predicate["string_values"]["values"].as_array();
    match text(&predicate["operation"]) {
        "EQUALS" => Some(actual == value),
        "NOT_EQUALS" => Some(actual != value),
        "IS_SUBSTRING" => Some(actual.contains(value)),
        "IN" => Some(values.is_some_and(|v| v.iter().any(|s| s == actual))),
        _ => None,
    }
}

struct Version {
    api: Value,
    spec: Vec<u8>,
}

struct Run {
    api: Value,
    /// The states this run walks through; `step` is where it is.
    script: Vec<String>,
    step: usize,
}

struct State {
    pipelines: Vec<Value>,
    versions: Vec<Version>,
    experiments: Vec<Value>,
    runs: Vec<Run>,
    run_states: Vec<String>,
    /// Source of ids and of the clock: deterministic, so answers are stable.
    counter: u64,
}

impl State {
    fn new() -> State {
        let mut state = State {
            pipelines: Vec::new(),
            versions: Vec::new(),
            experiments: Vec::new(),
            runs: Vec::new(),
            run_states: DEFAULT_RUN_STATES.iter().map(|s| s.to_string()).collect(),
            counter: 0,
        };
        state.add_experiment("Default", "All runs created without specifying an experiment are grouped here.", "");
        state
    }

    /// A UUID-shaped id, as KFP's.
    fn id(&mut self) -> String {
        self.counter += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.counter)
    }

    /// The fake's clock: one second per event from 2026-01-01.
    fn now(&mut self) -> String {
        self.counter += 1;
        let t = time::macros::datetime!(2026-01-01 00:00:00 UTC) + time::Duration::seconds(self.counter as i64);
        t.format(&time::format_description::well_known::Rfc3339).expect("a timestamp formats")
    }

    fn add_pipeline(&mut self, name: &str, display_name: &str, description: &str, namespace: &str) -> Value {
        let mut pipeline = json!({"pipeline_id": self.id(), "name": name, "display_name": display_name});
        set_nonempty(&mut pipeline, "description", description);
        pipeline["created_at"] = json!(self.now());
        set_nonempty(&mut pipeline, "namespace", namespace);
        self.pipelines.push(pipeline.clone());
        pipeline
    }

    fn add_version(
        &mut self,
        pipeline_id: &str,
        name: &str,
        display_name: &str,
        description: &str,
        code_source_url: Option<&str>,
        spec: &[u8],
    ) -> Value {
        let mut version = json!({
            "pipeline_id": pipeline_id, "pipeline_version_id": self.id(), "name": name, "display_name": display_name,
        });
        set_nonempty(&mut version, "description", description);
        version["created_at"] = json!(self.now());
        set_nonempty(&mut version, "code_source_url", code_source_url.unwrap_or(""));
        self.versions.push(Version { api: version.clone(), spec: spec.to_vec() });
        version
    }

    fn add_experiment(&mut self, name: &str, description: &str, namespace: &str) -> Value {
        let mut experiment = json!({"experiment_id": self.id(), "display_name": name});
        set_nonempty(&mut experiment, "description", description);
        experiment["created_at"] = json!(self.now());
        set_nonempty(&mut experiment, "namespace", namespace);
        experiment["storage_state"] = json!("AVAILABLE");
        self.experiments.push(experiment.clone());
        experiment
    }

    fn pipeline_by_name(&self, name: &str, namespace: &str) -> Reply {
        let found =
            self.pipelines.iter().find(|p| p["name"] == name && p["namespace"].as_str().unwrap_or("") == namespace);
        match found {
            Some(pipeline) => ok(pipeline.clone()),
            None => status_error(404, &format!("Failed to get a pipeline with name {name}: Pipeline {name} not found")),
        }
    }

    fn get_pipeline(&self, id: &str) -> Reply {
        match self.pipelines.iter().find(|p| p["pipeline_id"] == id) {
            Some(pipeline) => ok(pipeline.clone()),
            None => status_error(404, &format!("Failed to get pipeline {id}: Pipeline {id} not found")),
        }
    }

    fn get_version(&self, pipeline_id: &str, version_id: &str) -> Reply {
        let found = self
            .versions
            .iter()
            .find(|v| v.api["pipeline_id"] == pipeline_id && v.api["pipeline_version_id"] == version_id);
        match found {
            Some(version) => ok(version.api.clone()),
            None => status_error(404, &format!("Failed to get pipeline version {version_id}: not found")),
        }
    }

    /// POST /pipelines/upload: a new pipeline and its first version, both named after the pipeline.
    fn upload_pipeline(&mut self, request: &Request) -> Reply {
        let file = request.part("uploadfile").expect("a checked upload has a file");
        let name = upload_name(request, file.file_name.as_deref().unwrap_or(""));
        let display_name = nonempty(request.param("display_name")).unwrap_or(&name).to_string();
        let namespace = request.param("namespace").unwrap_or("");
        if self
            .pipelines
            .iter()
            .any(|p| p["name"] == name.as_str() && p["namespace"].as_str().unwrap_or("") == namespace)
        {
            return upload_error(
                409,
                &format!(
                    "Failed to create a pipeline and a pipeline version. The pipeline already exists.: \
                     Failed to create a new pipeline. The name {name} already exists. Please specify a new name"
                ),
            );
        }
        let description = request.param("description").unwrap_or("");
        let pipeline = self.add_pipeline(&name, &display_name, description, namespace);
        let id = pipeline["pipeline_id"].as_str().expect("an id").to_string();
        self.add_version(&id, &name, &display_name, description, request.param("code_source_url"), &file.data);
        ok(pipeline)
    }

    /// POST /pipelines/upload_version: a version of an existing pipeline; names are unique per pipeline.
    fn upload_version(&mut self, request: &Request) -> Reply {
        let file = request.part("uploadfile").expect("a checked upload has a file");
        let pipeline_id = request.param("pipelineid").expect("a checked upload names its pipeline");
        if !self.pipelines.iter().any(|p| p["pipeline_id"] == pipeline_id) {
            return upload_error(
                400,
                &format!(
                    "Failed to create a pipeline version due to error reading namespace: \
                     Pipeline {pipeline_id} not found"
                ),
            );
        }
        let name = upload_name(request, file.file_name.as_deref().unwrap_or(""));
        let display_name = nonempty(request.param("display_name")).unwrap_or(&name).to_string();
        if self.versions.iter().any(|v| v.api["pipeline_id"] == pipeline_id && v.api["name"] == name.as_str()) {
            return upload_error(
                409,
                &format!(
                    "Failed to create a pipeline version. The pipeline already exists.: \
                     Failed to create a new pipeline version. The name {name} already exist. Specify a new name"
                ),
            );
        }
        let description = request.param("description").unwrap_or("");
        let code_source_url = request.param("code_source_url");
        ok(self.add_version(pipeline_id, &name, &display_name, description, code_source_url, &file.data))
    }

    fn create_experiment(&mut self, body: &Value) -> Reply {
        let name = text(&body["display_name"]);
        let namespace = text(&body["namespace"]);
        if self
            .experiments
            .iter()
            .any(|e| e["display_name"] == name && e["namespace"].as_str().unwrap_or("") == namespace)
        {
            return status_error(
                409,
                &format!(
                    "Failed to create a new experiment. The name {name} already exists. Please specify a new name"
                ),
            );
        }
        ok(self.add_experiment(name, text(&body["description"]), namespace))
    }

    fn get_experiment(&self, id: &str) -> Reply {
        match self.experiments.iter().find(|e| e["experiment_id"] == id) {
            Some(experiment) => ok(experiment.clone()),
            None => status_error(404, &format!("Failed to get experiment {id}: Experiment {id} not found")),
        }
    }

    fn create_run(&mut self, body: &Value, experiment_query: Option<&str>) -> Reply {
        let experiment_id = nonempty(body["experiment_id"].as_str())
            .or(nonempty(experiment_query))
            .map(str::to_string)
            .unwrap_or_else(|| self.experiments[0]["experiment_id"].as_str().expect("an id").to_string());
        if !self.experiments.iter().any(|e| e["experiment_id"] == experiment_id.as_str()) {
            return status_error(404, &format!("Failed to create a run: Experiment {experiment_id} not found"));
        }
        let source = match self.pipeline_source(body) {
            Ok(source) => source,
            Err(reply) => return reply,
        };
        let script = self.run_states.clone();
        let mut run =
            json!({"run_id": self.id(), "experiment_id": experiment_id, "display_name": body["display_name"]});
        set_nonempty(&mut run, "description", text(&body["description"]));
        run["storage_state"] = json!("AVAILABLE");
        run[source.0] = source.1;
        if body["runtime_config"].is_object() {
            run["runtime_config"] = body["runtime_config"].clone();
        }
        set_nonempty(&mut run, "service_account", text(&body["service_account"]));
        let now = self.now();
        run["created_at"] = json!(now);
        run["scheduled_at"] = json!(now);
        run["state_history"] = json!([]);
        let mut run = Run { api: run, script, step: 0 };
        self.enter(&mut run, 0);
        let answer = run.api.clone();
        self.runs.push(run);
        ok(answer)
    }

    /// The run's pipeline source as the answer shows it: a reference resolved to a version, or the
    /// inline spec.
    fn pipeline_source(&self, body: &Value) -> Result<(&'static str, Value), Reply> {
        if body["pipeline_spec"].is_object() {
            return Ok(("pipeline_spec", body["pipeline_spec"].clone()));
        }
        let reference = &body["pipeline_version_reference"];
        let (pipeline_id, version_id) = if reference.is_null() {
            let version_id = text(&body["pipeline_version_id"]);
            let version = self.versions.iter().find(|v| v.api["pipeline_version_id"] == version_id);
            let pipeline_id = version.map(|v| v.api["pipeline_id"].as_str().unwrap_or("")).unwrap_or("");
            (pipeline_id, version_id)
        } else {
            (text(&reference["pipeline_id"]), text(&reference["pipeline_version_id"]))
        };
        let versions: Vec<&Version> = self.versions.iter().filter(|v| v.api["pipeline_id"] == pipeline_id).collect();
        let version = if version_id.is_empty() {
            versions.last()
        } else {
            versions.iter().find(|v| v.api["pipeline_version_id"] == version_id)
        };
        match version {
            Some(v) => Ok((
                "pipeline_version_reference",
                json!({"pipeline_id": pipeline_id, "pipeline_version_id": v.api["pipeline_version_id"]}),
            )),
            None => Err(status_error(
                404,
                &format!("Failed to create a run: pipeline `{pipeline_id}` version `{version_id}` not found"),
            )),
        }
    }

    /// GET advances a run one step along its script.
    fn get_run(&mut self, id: &str) -> Reply {
        let Some(i) = self.runs.iter().position(|r| r.api["run_id"] == id) else {
            return status_error(404, &format!("Failed to get a run: Run {id} not found"));
        };
        let mut run = std::mem::replace(&mut self.runs[i], Run { api: Value::Null, script: Vec::new(), step: 0 });
        if run.step + 1 < run.script.len() {
            let step = run.step + 1;
            self.enter(&mut run, step);
        }
        let answer = run.api.clone();
        self.runs[i] = run;
        ok(answer)
    }

    /// Only a PENDING or RUNNING run can be terminated; it becomes CANCELING, then CANCELED.
    fn terminate_run(&mut self, id: &str) -> Reply {
        let Some(i) = self.runs.iter().position(|r| r.api["run_id"] == id) else {
            return status_error(
                404,
                &format!("Failed to terminate run {id} due to error fetching the run: Run {id} not found"),
            );
        };
        let mut run = std::mem::replace(&mut self.runs[i], Run { api: Value::Null, script: Vec::new(), step: 0 });
        let reply = if matches!(run.api["state"].as_str(), Some("PENDING" | "RUNNING")) {
            run.script.truncate(run.step + 1);
            run.script.extend(["CANCELING".to_string(), "CANCELED".to_string()]);
            let step = run.step + 1;
            self.enter(&mut run, step);
            ok(json!({}))
        } else {
            status_error(400, &format!("Failed to terminate run {id}: Failed to terminate run {id}. Row not found."))
        };
        self.runs[i] = run;
        reply
    }

    fn enter(&mut self, run: &mut Run, step: usize) {
        let state = run.script[step].clone();
        let now = self.now();
        run.step = step;
        run.api["state"] = json!(state);
        run.api["state_history"].as_array_mut().expect("a history").push(json!({"update_time": now, "state": state}));
        if TERMINAL.contains(&state.as_str()) {
            run.api["finished_at"] = json!(now);
        }
    }
}

/// The name the upload handlers give: query `name`, else `display_name`, else the file name.
fn upload_name(request: &Request, file_name: &str) -> String {
    nonempty(request.param("name")).or(nonempty(request.param("display_name"))).unwrap_or(file_name).to_string()
}

fn nonempty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// Sets `key` unless `value` is empty: the server omits unpopulated fields.
fn set_nonempty(object: &mut Value, key: &str, value: &str) {
    if !value.is_empty() {
        object[key] = json!(value);
    }
}
