//! What a container task's command line says once its placeholders are filled in
//! (`docs/research/kfp.md` §3.1, §3.2): the ExecutorInput JSON for `{{$}}`, input parameters as the
//! backend renders them, artifact URIs, paths and metadata, output files, run and task metadata, and
//! the structural `IfPresent` / `Concat` elements.
//!
//! Unknown placeholders, and those naming an input without a value, are left as written, as the
//! backend's plain string replacement leaves them.

use serde_json::{Map, Value, json};

use super::super::ir;
use super::{Artifact, Values};

/// The workspace mount of the backend; there is no workspace locally, but the placeholder has a value.
const WORKSPACE: &str = "/kfp-workspace";

/// Where a task writes its outputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct OutputPaths {
    /// Output parameter → the file the program writes its value to.
    pub parameters: std::collections::BTreeMap<String, String>,
    /// Output artifact → the artifact the program fills (its URI is its path).
    pub artifacts: std::collections::BTreeMap<String, Artifact>,
    /// The ExecutorOutput file.
    pub output_file: String,
}

/// Run and task metadata for the `{{$.pipeline_…}}` placeholders.
#[derive(Clone, Debug, Default)]
pub(super) struct TaskInfo {
    pub job_name: String,
    pub run_id: String,
    pub task_name: String,
    pub task_id: String,
    pub pipeline_root: String,
    pub created_utc: String,
}

/// Everything a placeholder can refer to.
pub(super) struct Context<'a> {
    pub inputs: &'a Values,
    pub outputs: &'a OutputPaths,
    pub task: &'a TaskInfo,
}

impl Context<'_> {
    /// The ExecutorInput as protobuf's JSON mapping writes it (empty maps omitted).
    pub fn executor_input(&self) -> Value {
        let mut inputs = Map::new();
        if !self.inputs.parameters.is_empty() {
            inputs.insert("parameterValues".into(), json!(self.inputs.parameters));
        }
        if !self.inputs.artifacts.is_empty() {
            let lists: Map<String, Value> =
                self.inputs.artifacts.iter().map(|(name, list)| (name.clone(), json!({ "artifacts": list }))).collect();
            inputs.insert("artifacts".into(), Value::Object(lists));
        }
        let mut outputs = Map::new();
        if !self.outputs.parameters.is_empty() {
            let files: Map<String, Value> = self
                .outputs
                .parameters
                .iter()
                .map(|(name, file)| (name.clone(), json!({ "outputFile": file })))
                .collect();
            outputs.insert("parameters".into(), Value::Object(files));
        }
        if !self.outputs.artifacts.is_empty() {
            let lists: Map<String, Value> = self
                .outputs
                .artifacts
                .iter()
                .map(|(name, artifact)| (name.clone(), json!({ "artifacts": [artifact] })))
                .collect();
            outputs.insert("artifacts".into(), Value::Object(lists));
        }
        outputs.insert("outputFile".into(), Value::String(self.outputs.output_file.clone()));
        let mut input = Map::new();
        if !inputs.is_empty() {
            input.insert("inputs".into(), Value::Object(inputs));
        }
        input.insert("outputs".into(), Value::Object(outputs));
        Value::Object(input)
    }

    /// A command line: each element with its placeholders replaced; an `IfPresent` element becomes
    /// zero or more elements, a `Concat` element one.
    pub fn command_line(&self, elements: &[String]) -> Vec<String> {
        let executor_input = self.executor_input().to_string();
        elements.iter().flat_map(|element| self.element(element, &executor_input, 0)).collect()
    }

    /// One string, placeholders replaced (environment values, importer metadata).
    pub fn substitute(&self, text: &str) -> String {
        let executor_input = if text.contains("{{$}}") { self.executor_input().to_string() } else { String::new() };
        self.replace(text, &executor_input)
    }

    fn element(&self, text: &str, executor_input: &str, depth: usize) -> Vec<String> {
        let expanded = match structural(text) {
            Some(Value::Object(map)) if depth < 16 => self.expand_object(&map, executor_input, depth + 1),
            _ => None,
        };
        expanded.unwrap_or_else(|| vec![self.replace(text, executor_input)])
    }

    fn expand(&self, value: &Value, executor_input: &str, depth: usize) -> Vec<String> {
        match value {
            Value::String(s) => self.element(s, executor_input, depth),
            Value::Array(items) => items.iter().flat_map(|i| self.expand(i, executor_input, depth)).collect(),
            Value::Object(map) => {
                self.expand_object(map, executor_input, depth).unwrap_or_else(|| vec![value.to_string()])
            }
            other => vec![ir::text(other)],
        }
    }

    /// A `Concat` or `IfPresent` object expanded; `None` for any other object.
    fn expand_object(&self, map: &Map<String, Value>, executor_input: &str, depth: usize) -> Option<Vec<String>> {
        if let Some(parts) = map.get("Concat") {
            return Some(vec![self.expand(parts, executor_input, depth).concat()]);
        }
        let Some(Value::Object(branch)) = map.get("IfPresent") else { return None };
        let name = branch.get("InputName").and_then(Value::as_str).unwrap_or_default();
        let chosen = if self.present(name) { branch.get("Then") } else { branch.get("Else") };
        Some(chosen.map(|c| self.expand(c, executor_input, depth)).unwrap_or_default())
    }

    fn present(&self, name: &str) -> bool {
        self.inputs.parameters.get(name).is_some_and(|v| !v.is_null())
            || self.inputs.artifacts.get(name).is_some_and(|list| !list.is_empty())
    }

    /// Replaces every `{{$…}}` this module knows; leaves the others.
    fn replace(&self, text: &str, executor_input: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{$") {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            let Some(end) = after.find("}}") else {
                out.push_str(after);
                return out;
            };
            let placeholder = &after[..end + 2];
            match self.value_of(&placeholder[2..end], executor_input) {
                Some(value) => out.push_str(&value),
                None => out.push_str(placeholder),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// The value of a placeholder's inside (`$.inputs.parameters['x']`), if known.
    fn value_of(&self, inner: &str, executor_input: &str) -> Option<String> {
        let path = parse_path(inner.strip_prefix('$')?)?;
        let keys: Vec<&str> = path.iter().map(|s| s.as_str()).collect();
        let first = |list: &Vec<Artifact>| list.first().cloned();
        match keys.as_slice() {
            [] => Some(executor_input.to_string()),
            ["inputs", "parameters", name] => self.inputs.parameters.get(*name).map(ir::text),
            ["inputs", "artifacts", name, rest @ ..] => {
                artifact_value(&first(self.inputs.artifacts.get(*name)?)?, rest)
            }
            ["outputs", "parameters", name, "output_file"] => self.outputs.parameters.get(*name).cloned(),
            ["outputs", "artifacts", name, rest @ ..] => artifact_value(self.outputs.artifacts.get(*name)?, rest),
            ["outputs", "output_file"] | ["outputMetadataUri"] => Some(self.outputs.output_file.clone()),
            ["pipeline_job_name"] | ["pipeline_job_resource_name"] => Some(self.task.job_name.clone()),
            ["pipeline_job_uuid"] => Some(self.task.run_id.clone()),
            ["pipeline_task_name"] => Some(self.task.task_name.clone()),
            ["pipeline_task_uuid"] => Some(self.task.task_id.clone()),
            ["pipeline_root"] => Some(self.task.pipeline_root.clone()),
            ["pipeline_job_create_time_utc"] | ["pipeline_job_schedule_time_utc"] => {
                Some(self.task.created_utc.clone())
            }
            ["workspace_path"] => Some(WORKSPACE.to_string()),
            _ => None,
        }
    }
}

fn artifact_value(artifact: &Artifact, rest: &[&str]) -> Option<String> {
    match rest {
        // Locally the URI is the path: the run directory is mounted where it is on the host.
        ["uri"] | ["path"] => Some(artifact.uri.clone()),
        ["metadata"] => Some(Value::Object(artifact.metadata.clone()).to_string()),
        ["metadata", key] => artifact.metadata.get(*key).map(ir::text),
        _ => None,
    }
}

/// `.a.b['c']["d"]` as `[a, b, c, d]`; `None` if it is not that shape.
fn parse_path(mut text: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    while !text.is_empty() {
        if let Some(rest) = text.strip_prefix('.') {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return None;
            }
            keys.push(name.to_string());
            text = &rest[end..];
        } else if let Some(rest) = text.strip_prefix('[') {
            let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let body = &rest[1..];
            let close = body.find(&format!("{quote}]"))?;
            keys.push(body[..close].to_string());
            text = &body[close + 2..];
        } else {
            return None;
        }
    }
    Some(keys)
}

/// An element that is a whole `{"IfPresent": …}` or `{"Concat": …}` JSON text.
fn structural(text: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with("{\"IfPresent\"") || trimmed.starts_with("{\"Concat\"")) {
        return None;
    }
    serde_json::from_str::<Value>(text).ok().filter(Value::is_object)
}

/// Placeholders inside string parameter values (f-strings in the DSL) are resolved against the other
/// inputs first, as the backend does before it renders the command line.
pub(super) fn resolve_parameter_values(inputs: &mut Values, task: &TaskInfo) {
    let original = inputs.clone();
    let empty = OutputPaths::default();
    let context = Context { inputs: &original, outputs: &empty, task };
    for value in inputs.parameters.values_mut() {
        if let Value::String(text) = value
            && text.contains("{{$")
        {
            *text = context.replace(text, "");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn artifact(name: &str, uri: &str, metadata: Value) -> Artifact {
        Artifact {
            name: name.into(),
            artifact_type: json!({"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}),
            uri: uri.into(),
            metadata: metadata.as_object().cloned().unwrap_or_default(),
        }
    }

    fn fixture() -> (Values, OutputPaths, TaskInfo) {
        let inputs = Values {
            parameters: BTreeMap::from([
                ("s".into(), json!("hello world")),
                ("n".into(), json!(2)),
                ("d".into(), json!(0.5)),
                ("b".into(), json!(false)),
                ("l".into(), json!([1, "a"])),
                ("m".into(), json!({"k": [true]})),
            ]),
            artifacts: BTreeMap::from([("data".into(), vec![artifact("data", "/r/x/data", json!({"rows": 3}))])]),
        };
        let outputs = OutputPaths {
            parameters: BTreeMap::from([("out".into(), "/r/t/parameters/out".into())]),
            artifacts: BTreeMap::from([("model".into(), artifact("model", "/r/t/artifacts/model", json!({})))]),
            output_file: "/r/t/executor_output.json".into(),
        };
        let task = TaskInfo {
            job_name: "demo-20260101000000".into(),
            run_id: "uuid".into(),
            task_name: "train".into(),
            task_id: "7".into(),
            pipeline_root: "/r".into(),
            created_utc: "2026-01-01T00:00:00Z".into(),
        };
        (inputs, outputs, task)
    }

    /// One command-line element in, the elements it becomes out.
    fn check(element: &str, expected: &[&str]) {
        let (inputs, outputs, task) = fixture();
        let context = Context { inputs: &inputs, outputs: &outputs, task: &task };
        assert_eq!(context.command_line(&[element.to_string()]), expected, "{element}");
    }

    #[test]
    fn parameters_render_as_the_backend_renders_them() {
        check("{{$.inputs.parameters['s']}}", &["hello world"]);
        check(r#"{{$.inputs.parameters["s"]}}"#, &["hello world"]);
        check("{{$.inputs.parameters['n']}}", &["2"]);
        check("{{$.inputs.parameters['d']}}", &["0.5"]);
        check("{{$.inputs.parameters['b']}}", &["false"]);
        check("{{$.inputs.parameters['l']}}", &[r#"[1,"a"]"#]);
        check("{{$.inputs.parameters['m']}}", &[r#"{"k":[true]}"#]);
        check("--n={{$.inputs.parameters['n']}}x{{$.inputs.parameters['d']}}", &["--n=2x0.5"]);
        check("{{$.inputs.parameters['absent']}}", &["{{$.inputs.parameters['absent']}}"]);
    }

    #[test]
    fn artifacts_outputs_and_metadata() {
        check("{{$.inputs.artifacts['data'].uri}}", &["/r/x/data"]);
        check("{{$.inputs.artifacts['data'].path}}", &["/r/x/data"]);
        check("{{$.inputs.artifacts['data'].metadata}}", &[r#"{"rows":3}"#]);
        check("{{$.inputs.artifacts['data'].metadata['rows']}}", &["3"]);
        check("{{$.outputs.artifacts['model'].path}}", &["/r/t/artifacts/model"]);
        check("{{$.outputs.artifacts['model'].uri}}", &["/r/t/artifacts/model"]);
        check("{{$.outputs.artifacts['model'].metadata}}", &["{}"]);
        check("{{$.outputs.parameters['out'].output_file}}", &["/r/t/parameters/out"]);
        check("{{$.outputs.output_file}}", &["/r/t/executor_output.json"]);
        check("{{$.pipeline_job_name}}/{{$.pipeline_job_uuid}}", &["demo-20260101000000/uuid"]);
        check("{{$.pipeline_task_name}} {{$.pipeline_task_uuid}}", &["train 7"]);
        check("{{$.pipeline_root}}", &["/r"]);
        check("{{$.pipeline_job_create_time_utc}}", &["2026-01-01T00:00:00Z"]);
        check("{{$.workspace_path}}", &["/kfp-workspace"]);
        check(
            "{{$.unknown}} {{$.inputs.artifacts['data'].bogus}} {{$",
            &["{{$.unknown}} {{$.inputs.artifacts['data'].bogus}} {{$"],
        );
        check("no placeholders {{ here }}", &["no placeholders {{ here }}"]);
    }

    #[test]
    fn structural_elements() {
        check(r#"{"Concat": ["--x=", "{{$.inputs.parameters['n']}}"]}"#, &["--x=2"]);
        check(
            r#"{"IfPresent": {"InputName": "s", "Then": ["--s", "{{$.inputs.parameters['s']}}"]}}"#,
            &["--s", "hello world"],
        );
        check(r#"{"IfPresent": {"InputName": "absent", "Then": ["--a"]}}"#, &[]);
        check(r#"{"IfPresent": {"InputName": "absent", "Then": ["--a"], "Else": ["--none"]}}"#, &["--none"]);
        check(r#"{"IfPresent": {"InputName": "data", "Then": "--data"}}"#, &["--data"]);
        check(
            r#"{"Concat": ["a", {"IfPresent": {"InputName": "n", "Then": ["-", "{{$.inputs.parameters['n']}}"]}}, "b"]}"#,
            &["a-2b"],
        );
        check(r#"{"IfPresent": {"InputName": "n", "Then": [{"Concat": ["x", "y"]}, "z"]}}"#, &["xy", "z"]);
        check(r#"{"Concat": "not a list"}"#, &["not a list"]);
        check(r#"{"Concat": [1, true]}"#, &["1true"]);
        check(r#"{"IfPresent": "garbage"}"#, &[r#"{"IfPresent": "garbage"}"#]);
        check(r#"{"Concat": [broken json"#, &[r#"{"Concat": [broken json"#]);
        check(r#"{"Other": 1}"#, &[r#"{"Other": 1}"#]);
    }

    #[test]
    fn executor_input_json() {
        let (inputs, outputs, task) = fixture();
        let context = Context { inputs: &inputs, outputs: &outputs, task: &task };
        let value = context.executor_input();
        assert_eq!(value["inputs"]["parameterValues"]["n"], json!(2));
        assert_eq!(value["inputs"]["parameterValues"]["n"].to_string(), "2");
        assert_eq!(value["inputs"]["artifacts"]["data"]["artifacts"][0]["uri"], json!("/r/x/data"));
        assert_eq!(
            value["inputs"]["artifacts"]["data"]["artifacts"][0]["type"]["schemaTitle"],
            json!("system.Dataset")
        );
        assert_eq!(value["outputs"]["parameters"]["out"]["outputFile"], json!("/r/t/parameters/out"));
        assert_eq!(value["outputs"]["artifacts"]["model"]["artifacts"][0]["name"], json!("model"));
        assert_eq!(value["outputs"]["outputFile"], json!("/r/t/executor_output.json"));
        check("{{$}}", &[value.to_string().as_str()]);
        let empty = Values::default();
        let bare = Context { inputs: &empty, outputs: &outputs, task: &task }.executor_input();
        assert!(bare.get("inputs").is_none(), "{bare}");
    }

    #[test]
    fn placeholders_inside_parameter_values() {
        let (mut inputs, _, task) = fixture();
        inputs.parameters.insert("f".into(), json!("{{$.inputs.parameters['s']}}-{{$.inputs.parameters['n']}}!"));
        inputs.parameters.insert("job".into(), json!("{{$.pipeline_job_name}}"));
        resolve_parameter_values(&mut inputs, &task);
        assert_eq!(inputs.parameters["f"], json!("hello world-2!"));
        assert_eq!(inputs.parameters["job"], json!("demo-20260101000000"));
    }

    #[test]
    fn paths() {
        let keys = |text: &str| parse_path(text).map(|k| k.join("|"));
        assert_eq!(keys(".inputs.parameters['a.b']").as_deref(), Some("inputs|parameters|a.b"));
        assert_eq!(keys(r#".x["y"].z"#).as_deref(), Some("x|y|z"));
        assert_eq!(keys("").as_deref(), Some(""));
        assert_eq!(keys(".x[y]"), None);
        assert_eq!(keys(".x['y"), None);
        assert_eq!(keys("x"), None);
        assert_eq!(keys(". x"), None);
    }
}
