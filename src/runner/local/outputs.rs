//! A container task's outputs after it exited 0, collected as the backend's launcher collects them:
//! the ExecutorOutput file wins for the parameters it names; every other declared output parameter
//! must exist as a file and is parsed by its type; every declared output artifact is registered, with
//! the URI and metadata the ExecutorOutput gives for it merged in.
//!
//! Also here: reading run metrics from `system.Metrics` / `system.ClassificationMetrics` artifacts.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::ir::{self, Component, ParameterType};
use super::placeholders::OutputPaths;
use super::{Artifact, Values};
use crate::io::host_path::{Rooted, Segment};

const METRICS_SCHEMAS: [&str; 2] = ["system.Metrics", "system.ClassificationMetrics"];

/// The outputs of a task that exited 0, read from its directory `dir` (where only the task wrote, so
/// nothing is followed out of it); an error names the output that is missing, malformed or points
/// outside.
pub(super) fn collect(component: &Component, paths: &OutputPaths, dir: &Rooted) -> Result<Values, String> {
    let executor_output = read_executor_output(&dir.join(&fixed("executor_output.json")))?;
    let mut values = Values::default();
    let reported = executor_output.parameters;
    for (name, spec) in &component.outputs.parameters {
        if let Some(value) = reported.get(name) {
            values.parameters.insert(name.clone(), ir::canonical(value.clone()));
            continue;
        }
        if !paths.parameters.contains_key(name) {
            continue;
        }
        let segment = Segment::new(name).map_err(|e| format!("output parameter name: {e}"))?;
        let file = dir.join(&fixed("parameters")).join(&segment);
        let text = file
            .read_to_string()
            .map_err(|e| format!("output parameter `{name}` was not written: cannot read `{file}`: {e}"))?;
        let value = parse_text(&text, spec.kind)
            .map_err(|e| format!("output parameter `{name}` ({}) in `{file}`: {e}", spec.kind))?;
        values.parameters.insert(name.clone(), value);
    }
    for (name, artifact) in &paths.artifacts {
        let mut artifact = artifact.clone();
        if let Some(reported) = executor_output.artifacts.get(name) {
            merge(&mut artifact, reported, dir).map_err(|e| format!("output artifact `{name}`: {e}"))?;
        }
        values.artifacts.insert(name.clone(), vec![artifact]);
    }
    Ok(values)
}

/// A name the runner itself chose.
fn fixed(name: &str) -> Segment {
    Segment::new(name).expect("the runner's own names are segments")
}

/// What an `executor_output.json` reports.
#[derive(Default)]
struct ExecutorOutput {
    parameters: Map<String, Value>,
    /// The first artifact of each output's list (the launcher merges only that one).
    artifacts: BTreeMap<String, Map<String, Value>>,
}

fn read_executor_output(path: &Rooted) -> Result<ExecutorOutput, String> {
    let text = match path.read_to_string() {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Ok(ExecutorOutput::default()),
        Err(e) => return Err(format!("cannot read `{path}`: {e}")),
    };
    let document: Value =
        serde_json::from_str(&text).map_err(|e| format!("`{path}` is not an ExecutorOutput (invalid JSON: {e})"))?;
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
/// The task wrote that URI, and a local URI becomes a mount of the tasks downstream and a file the
/// server reads: it must name a path in the task's own directory `dir`, with no link on the way.
fn merge(artifact: &mut Artifact, reported: &Map<String, Value>, dir: &Rooted) -> Result<(), String> {
    if let Some(uri) = reported.get("uri").and_then(Value::as_str).filter(|u| !u.is_empty()) {
        let path = dir.within(uri).map_err(|e| {
            format!(
                "the ExecutorOutput URI is refused: {e}\n\nhint: a task's artifacts stay in its own directory `{dir}`"
            )
        })?;
        path.refuse_symlinks().map_err(|e| format!("the ExecutorOutput URI is refused: {e}"))?;
        artifact.uri = path.path().display().to_string();
    }
    if let Some(metadata) = reported.get("metadata").and_then(Value::as_object) {
        for (key, value) in metadata {
            artifact.metadata.insert(key.clone(), ir::canonical(value.clone()));
        }
    }
    Ok(())
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
/// metadata holds none, in its file if that is a JSON object and lies in the run's directory `run`.
pub(super) fn metrics(task: &str, outputs: &Values, run: &Rooted) -> Vec<Metric> {
    let mut found = Vec::new();
    for artifact in outputs.artifacts.values().flatten() {
        if !artifact.schema_title().is_some_and(|t| METRICS_SCHEMAS.contains(&t)) {
            continue;
        }
        let mut numbers = numbers(&artifact.metadata);
        if numbers.is_empty() {
            numbers = read_metrics_file(run, &artifact.uri);
        }
        found.extend(numbers.into_iter().map(|(key, value)| Metric { task: task.to_string(), key, value }));
    }
    found
}

fn numbers(map: &Map<String, Value>) -> Vec<(String, f64)> {
    map.iter().filter_map(|(k, v)| Some((k.clone(), v.as_f64()?))).collect()
}

fn read_metrics_file(run: &Rooted, uri: &str) -> Vec<(String, f64)> {
    // Only files the run wrote: a metrics URI elsewhere (an importer's) is not read.
    let Ok(path) = run.within(uri) else { return Vec::new() };
    let Ok(text) = path.read_to_string() else { return Vec::new() };
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
    use std::path::Path;

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

    fn task_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("parameters")).expect("mkdir");
        dir
    }

    fn rooted(dir: &Path) -> Rooted {
        Rooted::root(dir).expect("root")
    }

    #[test]
    fn what_a_task_reports_cannot_point_outside_its_directory() {
        let dir = task_dir();
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), "s3cret").expect("write");
        std::fs::write(dir.path().join("parameters/s"), "x").expect("write");
        let report = |uri: &str| {
            let output = json!({"parameterValues": {"n": 1}, "artifacts": {"data": {"artifacts": [{"uri": uri}]}}});
            std::fs::write(dir.path().join("executor_output.json"), output.to_string()).expect("write");
            collect(&component(), &paths(dir.path()), &rooted(dir.path()))
        };
        for uri in ["/etc", "/proc/self/environ", &format!("{}/../x", dir.path().display()), "relative/x"] {
            let err = report(uri).expect_err(uri);
            assert!(err.starts_with("output artifact `data`: the ExecutorOutput URI is refused: `"), "{err}");
        }
        let inside = dir.path().join("artifacts-elsewhere").display().to_string();
        assert_eq!(report(&inside).expect("inside").artifacts["data"][0].uri, inside);
        // A link the task planted: neither a URI through it nor a parameter file that is one is read.
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).expect("link");
        let err = report(&format!("{}/out/secret", dir.path().display())).expect_err("through a link");
        assert!(err.contains("is a symbolic link"), "{err}");
        std::fs::remove_file(dir.path().join("executor_output.json")).expect("rm");
        std::fs::write(dir.path().join("parameters/n"), "1").expect("write");
        std::fs::remove_file(dir.path().join("parameters/s")).expect("rm");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("parameters/s")).expect("link");
        let err = collect(&component(), &paths(dir.path()), &rooted(dir.path())).expect_err("a linked parameter");
        assert!(err.contains("output parameter `s` was not written") && err.contains("symbolic link"), "{err}");
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
                ("n".into(), dir.join("parameters/n").display().to_string()),
                ("s".into(), dir.join("parameters/s").display().to_string()),
            ]),
            artifacts: BTreeMap::from([("data".into(), artifact)]),
            output_file: dir.join("executor_output.json").display().to_string(),
        }
    }

    #[test]
    fn executor_output_wins_and_every_artifact_is_registered() {
        let dir = task_dir();
        std::fs::write(dir.path().join("parameters/n"), "1").expect("write");
        std::fs::write(dir.path().join("parameters/s"), "from file").expect("write");
        let output = json!({
            "parameterValues": {"n": 5.0},
            "artifacts": {"data": {"artifacts": [{"uri": "", "metadata": {"rows": 3.0}}]}},
        });
        std::fs::write(dir.path().join("executor_output.json"), output.to_string()).expect("write");
        let values = collect(&component(), &paths(dir.path()), &rooted(dir.path())).expect("collected");
        assert_eq!(values.parameters["n"], json!(5));
        assert_eq!(values.parameters["s"], json!("from file"));
        let data = &values.artifacts["data"][0];
        assert_eq!(data.uri, dir.path().join("data").display().to_string());
        assert_eq!(data.metadata.get("rows"), Some(&json!(3)));
    }

    #[test]
    fn files_alone_and_missing_outputs() {
        let dir = task_dir();
        std::fs::write(dir.path().join("parameters/n"), " 12\n").expect("write");
        let err = collect(&component(), &paths(dir.path()), &rooted(dir.path())).expect_err("s is missing");
        assert!(err.starts_with("output parameter `s` was not written: cannot read `"), "{err}");
        assert!(err.ends_with("`: no such file"), "{err}");
        std::fs::write(dir.path().join("parameters/s"), "x").expect("write");
        let values = collect(&component(), &paths(dir.path()), &rooted(dir.path())).expect("collected");
        assert_eq!(values.parameters["n"], json!(12));
        assert_eq!(values.artifacts["data"][0].metadata, Map::new());
        std::fs::write(dir.path().join("parameters/n"), "twelve").expect("write");
        let err = collect(&component(), &paths(dir.path()), &rooted(dir.path())).expect_err("n is malformed");
        assert!(
            err.contains("output parameter `n` (NUMBER_INTEGER)") && err.ends_with("`twelve` is not an integer"),
            "{err}"
        );
        std::fs::write(dir.path().join("executor_output.json"), "{").expect("write");
        assert!(
            collect(&component(), &paths(dir.path()), &rooted(dir.path()))
                .expect_err("bad JSON")
                .contains("invalid JSON")
        );
    }

    #[test]
    fn deprecated_typed_parameters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = json!({"parameters": {"n": {"intValue": "9"}, "s": {"stringValue": "typed"}}});
        std::fs::write(dir.path().join("executor_output.json"), output.to_string()).expect("write");
        let values = collect(&component(), &paths(dir.path()), &rooted(dir.path())).expect("collected");
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
        let found = metrics("train", &outputs, &rooted(dir.path()));
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
