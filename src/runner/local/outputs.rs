//! A container task's outputs after it exited 0, collected as the backend's launcher collects them:
//! the ExecutorOutput file wins for the parameters it names; every other declared output parameter
//! must exist as a file and is parsed by its type; every declared output artifact is registered, with
//! the URI and metadata the ExecutorOutput gives for it merged in.
//!
//! Also here: reading run metrics from `system.Metrics` / `system.ClassificationMetrics` artifacts.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::super::ir::{self, Component, ParameterType};
use super::placeholders::OutputPaths;
use super::{Artifact, Values};

const METRICS_SCHEMAS: [&str; 2] = ["system.Metrics", "system.ClassificationMetrics"];

/// The outputs of a task that exited 0; an error names the output that is missing or malformed.
pub(super) fn collect(component: &Component, paths: &OutputPaths) -> Result<Values, String> {
    let executor_output = read_executor_output(Path::new(&paths.output_file))?;
    let mut values = Values::default();
    let reported = executor_output.parameters;
    for (name, spec) in &component.outputs.parameters {
        if let Some(value) = reported.get(name) {
            values.parameters.insert(name.clone(), ir::canonical(value.clone()));
            continue;
        }
        let Some(file) = paths.parameters.get(name) else { continue };
        let text = std::fs::read_to_string(file).map_err(|e| {
            format!("output parameter `{name}` was not written: cannot read `{file}`: {}", io_reason(&e))
        })?;
        let value = parse_text(&text, spec.kind)
            .map_err(|e| format!("output parameter `{name}` ({}) in `{file}`: {e}", spec.kind))?;
        values.parameters.insert(name.clone(), value);
    }
    for (name, artifact) in &paths.artifacts {
        let mut artifact = artifact.clone();
        if let Some(reported) = executor_output.artifacts.get(name) {
            merge(&mut artifact, reported);
        }
        values.artifacts.insert(name.clone(), vec![artifact]);
    }
    Ok(values)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => e.to_string(),
    }
}

/// What an `executor_output.json` reports.
#[derive(Default)]
struct ExecutorOutput {
    parameters: Map<String, Value>,
    /// The first artifact of each output's list (the launcher merges only that one).
    artifacts: BTreeMap<String, Map<String, Value>>,
}

fn read_executor_output(path: &Path) -> Result<ExecutorOutput, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ExecutorOutput::default()),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| format!("`{}` is not an ExecutorOutput (invalid JSON: {e})", path.display()))?;
    let mut output = ExecutorOutput::default();
    if let Some(values) = document.get("parameterValues").and_then(Value::as_object) {
        output.parameters = values.clone();
    }
    // The deprecated typed form: `parameters: {name: {stringValue | intValue | doubleValue}}`.
    if let Some(typed) = document.get("parameters").and_then(Value::as_object) {
        for (name, value) in typed {
            if let Some(plain) = deprecated_value(value) {
                output.parameters.entry(name.clone()).or_insert(plain);
            }
        }
    }
    if let Some(artifacts) = document.get("artifacts").and_then(Value::as_object) {
        for (name, list) in artifacts {
            let first = list.get("artifacts").and_then(|a| a.get(0)).and_then(Value::as_object);
            if let Some(first) = first {
                output.artifacts.insert(name.clone(), first.clone());
            }
        }
    }
    Ok(output)
}

fn deprecated_value(value: &Value) -> Option<Value> {
    if let Some(s) = value.get("stringValue").and_then(Value::as_str) {
        return Some(Value::String(s.to_string()));
    }
    let number = |key: &str| match value.get(key)? {
        Value::String(s) => s.parse::<f64>().ok(),
        other => other.as_f64(),
    };
    number("intValue").or_else(|| number("doubleValue")).map(ir::number)
}

/// The launcher's `mergeRuntimeArtifacts`: a non-empty URI replaces ours, metadata keys overwrite.
fn merge(artifact: &mut Artifact, reported: &Map<String, Value>) {
    if let Some(uri) = reported.get("uri").and_then(Value::as_str).filter(|u| !u.is_empty()) {
        artifact.uri = uri.to_string();
    }
    if let Some(metadata) = reported.get("metadata").and_then(Value::as_object) {
        for (key, value) in metadata {
            artifact.metadata.insert(key.clone(), ir::canonical(value.clone()));
        }
    }
}

/// An output parameter file's text as a value of its type (the launcher's `TextToPbValue`).
pub(super) fn parse_text(text: &str, kind: ParameterType) -> Result<Value, String> {
    let trimmed = text.trim();
    match kind {
        ParameterType::String => Ok(Value::String(text.to_string())),
        ParameterType::Integer => {
            trimmed.parse::<i64>().map(Value::from).map_err(|_| format!("`{}` is not an integer", short(trimmed)))
        }
        ParameterType::Double => trimmed
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(ir::number)
            .ok_or_else(|| format!("`{}` is not a number", short(trimmed))),
        // Go's strconv.ParseBool, which the launcher uses.
        ParameterType::Boolean => match trimmed {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
            _ => Err(format!("`{}` is not a boolean", short(trimmed))),
        },
        ParameterType::List => match serde_json::from_str::<Value>(text) {
            Ok(list @ Value::Array(_)) => Ok(ir::canonical(list)),
            _ => Err(format!("`{}` is not a JSON list", short(trimmed))),
        },
        ParameterType::Struct | ParameterType::TaskFinalStatus | ParameterType::TaskConfig => {
            match serde_json::from_str::<Value>(text) {
                Ok(object @ Value::Object(_)) => Ok(ir::canonical(object)),
                _ => Err(format!("`{}` is not a JSON object", short(trimmed))),
            }
        }
    }
}

fn short(text: &str) -> String {
    if text.len() <= 40 { text.to_string() } else { format!("{}…", &text[..text.floor_char_boundary(40)]) }
}

/// One metric reported by one artifact.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Metric {
    pub task: String,
    pub key: String,
    pub value: f64,
}

/// The metrics in a task's output artifacts: numbers in a metrics artifact's metadata or, when its
/// metadata holds none, in its file if that is a JSON object.
pub(super) fn metrics(task: &str, outputs: &Values) -> Vec<Metric> {
    let mut found = Vec::new();
    for artifact in outputs.artifacts.values().flatten() {
        if !artifact.schema_title().is_some_and(|t| METRICS_SCHEMAS.contains(&t)) {
            continue;
        }
        let mut numbers = numbers(&artifact.metadata);
        if numbers.is_empty() {
            numbers = read_metrics_file(Path::new(&artifact.uri));
        }
        found.extend(numbers.into_iter().map(|(key, value)| Metric { task: task.to_string(), key, value }));
    }
    found
}

fn numbers(map: &Map<String, Value>) -> Vec<(String, f64)> {
    map.iter().filter_map(|(k, v)| Some((k.clone(), v.as_f64()?))).collect()
}

fn read_metrics_file(path: &Path) -> Vec<(String, f64)> {
    // Only files the run wrote: a metrics URI is a path in the run directory.
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => numbers(&map),
        _ => Vec::new(),
    }
}

/// Names each metric by its key, or `<task>/<key>` when more than one artifact reports that key.
pub(super) fn name_metrics(metrics: Vec<Metric>) -> BTreeMap<String, f64> {
    let mut by_key: BTreeMap<&str, usize> = BTreeMap::new();
    for metric in &metrics {
        *by_key.entry(metric.key.as_str()).or_default() += 1;
    }
    let mut named = BTreeMap::new();
    for metric in &metrics {
        let name = if by_key[metric.key.as_str()] > 1 {
            format!("{}/{}", metric.task, metric.key)
        } else {
            metric.key.clone()
        };
        named.insert(name, metric.value);
    }
    named
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runner::ir::{ArtifactSpec, Body, Interface, ParameterSpec};

    #[test]
    fn parameter_files_by_type() {
        let check =
            |text: &str, kind: ParameterType, expected: Result<Value, &str>| match (parse_text(text, kind), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text:?} as {kind}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text:?} as {kind}: {got}"),
                (got, want) => panic!("{text:?} as {kind}: got {got:?}, want {want:?}"),
            };
        check(" raw text\n", ParameterType::String, Ok(json!(" raw text\n")));
        check("42\n", ParameterType::Integer, Ok(json!(42)));
        check("-7", ParameterType::Integer, Ok(json!(-7)));
        check("4.0", ParameterType::Integer, Err("`4.0` is not an integer"));
        check("0.5\n", ParameterType::Double, Ok(json!(0.5)));
        check("2.0", ParameterType::Double, Ok(json!(2)));
        check("1e3", ParameterType::Double, Ok(json!(1000)));
        check("nan", ParameterType::Double, Err("not a number"));
        check("inf", ParameterType::Double, Err("not a number"));
        check("True", ParameterType::Boolean, Ok(json!(true)));
        check("false\n", ParameterType::Boolean, Ok(json!(false)));
        check("1", ParameterType::Boolean, Ok(json!(true)));
        check("yes", ParameterType::Boolean, Err("not a boolean"));
        check("[1.0, \"a\"]", ParameterType::List, Ok(json!([1, "a"])));
        check("{\"a\": 1}", ParameterType::List, Err("not a JSON list"));
        check("{\"a\": 2.5}", ParameterType::Struct, Ok(json!({"a": 2.5})));
        check("[]", ParameterType::Struct, Err("not a JSON object"));
    }

    fn component() -> Component {
        let parameter = |kind| ParameterSpec { kind, default: None, optional: false };
        let dataset = ArtifactSpec {
            artifact_type: json!({"schemaTitle": "system.Dataset"}),
            schema_title: Some("system.Dataset".into()),
            is_list: false,
            optional: false,
            metadata: Map::new(),
        };
        Component {
            inputs: Interface::default(),
            outputs: Interface {
                parameters: BTreeMap::from([
                    ("n".into(), parameter(ParameterType::Integer)),
                    ("s".into(), parameter(ParameterType::String)),
                ]),
                artifacts: BTreeMap::from([("data".into(), dataset)]),
            },
            body: Body::Executor("exec".into()),
        }
    }

    fn paths(dir: &Path) -> OutputPaths {
        let artifact = Artifact {
            name: "data".into(),
            artifact_type: json!({"schemaTitle": "system.Dataset"}),
            uri: dir.join("data").display().to_string(),
            metadata: Map::new(),
        };
        OutputPaths {
            parameters: BTreeMap::from([
                ("n".into(), dir.join("n").display().to_string()),
                ("s".into(), dir.join("s").display().to_string()),
            ]),
            artifacts: BTreeMap::from([("data".into(), artifact)]),
            output_file: dir.join("executor_output.json").display().to_string(),
        }
    }

    #[test]
    fn executor_output_wins_and_every_artifact_is_registered() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("n"), "1").expect("write");
        std::fs::write(dir.path().join("s"), "from file").expect("write");
        let output = json!({
            "parameterValues": {"n": 5.0},
            "artifacts": {"data": {"artifacts": [{"uri": "", "metadata": {"rows": 3.0}}]}},
        });
        std::fs::write(dir.path().join("executor_output.json"), output.to_string()).expect("write");
        let values = collect(&component(), &paths(dir.path())).expect("collected");
        assert_eq!(values.parameters["n"], json!(5));
        assert_eq!(values.parameters["s"], json!("from file"));
        let data = &values.artifacts["data"][0];
        assert_eq!(data.uri, dir.path().join("data").display().to_string());
        assert_eq!(data.metadata.get("rows"), Some(&json!(3)));
    }

    #[test]
    fn files_alone_and_missing_outputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("n"), " 12\n").expect("write");
        let err = collect(&component(), &paths(dir.path())).expect_err("s is missing");
        assert!(err.starts_with("output parameter `s` was not written: cannot read `"), "{err}");
        assert!(err.ends_with("`: no such file"), "{err}");
        std::fs::write(dir.path().join("s"), "x").expect("write");
        let values = collect(&component(), &paths(dir.path())).expect("collected");
        assert_eq!(values.parameters["n"], json!(12));
        assert_eq!(values.artifacts["data"][0].metadata, Map::new());
        std::fs::write(dir.path().join("n"), "twelve").expect("write");
        let err = collect(&component(), &paths(dir.path())).expect_err("n is malformed");
        assert!(
            err.contains("output parameter `n` (NUMBER_INTEGER)") && err.ends_with("`twelve` is not an integer"),
            "{err}"
        );
        std::fs::write(dir.path().join("executor_output.json"), "{").expect("write");
        assert!(collect(&component(), &paths(dir.path())).expect_err("bad JSON").contains("invalid JSON"));
    }

    #[test]
    fn deprecated_typed_parameters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = json!({"parameters": {"n": {"intValue": "9"}, "s": {"stringValue": "typed"}}});
        std::fs::write(dir.path().join("executor_output.json"), output.to_string()).expect("write");
        let values = collect(&component(), &paths(dir.path())).expect("collected");
        assert_eq!(values.parameters["n"], json!(9));
        assert_eq!(values.parameters["s"], json!("typed"));
    }

    #[test]
    fn metrics_from_metadata_or_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("metrics");
        std::fs::write(&file, r#"{"loss": 0.25, "note": "text"}"#).expect("write");
        let metrics_artifact = |uri: &str, metadata: Value| Artifact {
            name: "m".into(),
            artifact_type: json!({"schemaTitle": "system.Metrics"}),
            uri: uri.into(),
            metadata: metadata.as_object().cloned().unwrap_or_default(),
        };
        let outputs = Values {
            parameters: BTreeMap::new(),
            artifacts: BTreeMap::from([
                ("a".into(), vec![metrics_artifact("/nowhere", json!({"accuracy": 0.9, "label": "x"}))]),
                ("b".into(), vec![metrics_artifact(&file.display().to_string(), json!({}))]),
            ]),
        };
        let found = metrics("train", &outputs);
        let keys: Vec<(&str, f64)> = found.iter().map(|m| (m.key.as_str(), m.value)).collect();
        assert_eq!(keys, [("accuracy", 0.9), ("loss", 0.25)]);
        let mut all = found.clone();
        all.push(Metric { task: "eval".into(), key: "accuracy".into(), value: 0.8 });
        let named = name_metrics(all);
        assert_eq!(
            named,
            BTreeMap::from([("eval/accuracy".into(), 0.8), ("train/accuracy".into(), 0.9), ("loss".into(), 0.25)])
        );
    }
}
