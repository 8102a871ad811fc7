//! A task's inputs, resolved as the backend's driver resolves them: from the parent DAG's inputs,
//! upstream outputs, constants and final statuses; then the `parameterExpressionSelector`; then the
//! component's declared types (a STRING input accepts any value as its text, other types must match);
//! then the defaults of inputs left without a value.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::super::cel;
use super::super::ir::{self, ArtifactInput, Component, ParameterSource, ParameterType, Pipeline, Task};
use super::{RunError, RunIds, TaskState, Values};

/// What a task's inputs can draw on: its DAG's inputs and its finished siblings.
pub(super) struct Sources<'a> {
    pub scope: &'a Values,
    pub siblings: &'a BTreeMap<&'a str, Sibling>,
    pub ids: &'a RunIds,
}

/// A finished sibling, as its dependants see it.
#[derive(Clone, Debug)]
pub(super) struct Sibling {
    pub state: TaskState,
    pub outputs: Values,
    pub error: Option<String>,
}

/// Resolves `task`'s inputs for `component`. `item_input` names the loop item a ParallelFor supplies
/// later, so its absence is not an error. Errors say which input and why.
pub(super) fn resolve(
    task: &Task,
    component: &Component,
    sources: &Sources<'_>,
    item_input: Option<&str>,
) -> Result<Values, String> {
    let mut values = Values::default();
    for (name, input) in &task.parameters {
        let declared = component.inputs.parameters.get(name);
        let Some(value) = parameter(&input.source, sources).map_err(|e| format!("input parameter `{name}`: {e}"))?
        else {
            continue;
        };
        let value = match &input.selector {
            Some(selector) => cel::select(selector, &value)
                .map_err(|e| format!("input parameter `{name}`: selector `{selector}` failed: {e}"))?,
            None => value,
        };
        let value = match declared {
            Some(spec) => convert(value, spec.kind).map_err(|e| format!("input parameter `{name}`: {e}"))?,
            None => ir::canonical(value),
        };
        values.parameters.insert(name.clone(), value);
    }
    for (name, spec) in &component.inputs.parameters {
        if values.parameters.contains_key(name) || Some(name.as_str()) == item_input {
            continue;
        }
        match &spec.default {
            Some(default) => {
                values.parameters.insert(name.clone(), ir::canonical(default.clone()));
            }
            None if spec.optional || spec.kind == ParameterType::TaskConfig => {}
            None => return Err(format!("input parameter `{name}` has no value and no default")),
        }
    }
    for (name, input) in &task.artifacts {
        let found = match input {
            ArtifactInput::ComponentInput(parent) => sources.scope.artifacts.get(parent).cloned(),
            ArtifactInput::TaskOutput(s) => upstream(sources, &s.producer)
                .map_err(|e| format!("input artifact `{name}`: {e}"))?
                .outputs
                .artifacts
                .get(&s.key)
                .cloned(),
        };
        match found {
            Some(list) => {
                values.artifacts.insert(name.clone(), list);
            }
            None if component.inputs.artifacts.get(name).is_some_and(|a| a.optional) => {}
            None => return Err(format!("input artifact `{name}` has no value: {}", describe_missing(input, sources))),
        }
    }
    Ok(values)
}

fn upstream<'a>(sources: &'a Sources<'_>, producer: &str) -> Result<&'a Sibling, String> {
    sources.siblings.get(producer).ok_or_else(|| format!("task `{producer}` has not run"))
}

fn describe_missing(input: &ArtifactInput, sources: &Sources<'_>) -> String {
    match input {
        ArtifactInput::ComponentInput(parent) => format!("the enclosing DAG has no input artifact `{parent}`"),
        ArtifactInput::TaskOutput(s) => match sources.siblings.get(s.producer.as_str()) {
            Some(sibling) if sibling.state != TaskState::Succeeded => {
                format!("task `{}` is {}", s.producer, state_word(sibling.state))
            }
            _ => format!("task `{}` produced no output artifact `{}`", s.producer, s.key),
        },
    }
}

fn state_word(state: TaskState) -> &'static str {
    match state {
        TaskState::Succeeded => "succeeded",
        TaskState::Failed => "failed",
        TaskState::Skipped => "skipped",
        TaskState::Cancelled => "cancelled",
        TaskState::NotTriggered => "not triggered",
    }
}

/// The value of one parameter input; `None` when it has none (a null, or an absent optional parent
/// input), which the caller treats like an input not given.
fn parameter(source: &ParameterSource, sources: &Sources<'_>) -> Result<Option<Value>, String> {
    let value = match source {
        ParameterSource::ComponentInput(parent) => sources.scope.parameters.get(parent).cloned(),
        ParameterSource::TaskOutput(s) => {
            let sibling = upstream(sources, &s.producer)?;
            match sibling.outputs.parameters.get(&s.key) {
                Some(value) => Some(value.clone()),
                None if sibling.state != TaskState::Succeeded => {
                    return Err(format!("task `{}` is {}", s.producer, state_word(sibling.state)));
                }
                None => return Err(format!("task `{}` produced no output parameter `{}`", s.producer, s.key)),
            }
        }
        ParameterSource::Constant(value) => Some(run_constant(value, sources.ids)),
        ParameterSource::TaskFinalStatus { producer } => {
            Some(final_status(producer, upstream(sources, producer)?, sources.ids))
        }
    };
    Ok(value.filter(|v| !v.is_null()))
}

/// Constants that are exactly a run placeholder are replaced by the driver, before the launcher sees
/// them (`dsl.PIPELINE_JOB_NAME_PLACEHOLDER` passed as an argument).
fn run_constant(value: &Value, ids: &RunIds) -> Value {
    let Some(text) = value.as_str() else { return value.clone() };
    let replaced = match text {
        "{{$.pipeline_job_name}}" | "{{$.pipeline_job_resource_name}}" => &ids.job_name,
        "{{$.pipeline_job_uuid}}" => &ids.run_id,
        "{{$.pipeline_job_create_time_utc}}" | "{{$.pipeline_job_schedule_time_utc}}" => &ids.created_utc,
        _ => return value.clone(),
    };
    Value::String(replaced.clone())
}

/// A `PipelineTaskFinalStatus` as JSON. `state` uses the backend's execution states.
fn final_status(producer: &str, sibling: &Sibling, ids: &RunIds) -> Value {
    let state = match sibling.state {
        TaskState::Succeeded | TaskState::Skipped => "COMPLETE",
        TaskState::Failed => "FAILED",
        TaskState::Cancelled | TaskState::NotTriggered => "CANCELED",
    };
    let error = match &sibling.error {
        Some(message) if sibling.state == TaskState::Failed => json!({ "message": message }),
        _ => json!({}),
    };
    json!({
        "state": state,
        "error": error,
        "pipelineJobResourceName": ids.job_name,
        "pipelineTaskName": producer,
    })
}

/// A value made to fit a declared type as the driver does: STRING accepts anything as its text; the
/// other types must already be of their kind. Numbers end up canonical (`2`, not `2.0`).
pub(super) fn convert(value: Value, kind: ParameterType) -> Result<Value, String> {
    let fits = match (&value, kind) {
        (Value::String(_), ParameterType::String) => true,
        (_, ParameterType::String) => return Ok(Value::String(ir::text(&value))),
        (Value::Number(_), ParameterType::Integer | ParameterType::Double) => true,
        (Value::Bool(_), ParameterType::Boolean) => true,
        (Value::Array(_), ParameterType::List) => true,
        (Value::Object(_), ParameterType::Struct | ParameterType::TaskFinalStatus | ParameterType::TaskConfig) => true,
        _ => false,
    };
    if !fits {
        return Err(format!("expected {kind}, got {}", describe(&value)));
    }
    Ok(ir::canonical(value))
}

fn describe(value: &Value) -> String {
    let shown = value.to_string();
    let shown = if shown.len() > 60 { format!("{}…", &shown[..shown.floor_char_boundary(60)]) } else { shown };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a struct",
    };
    format!("{kind} ({shown})")
}

/// The root DAG's inputs: defaults (the legacy wrapper's runtime values included), overridden by
/// the caller's values, each checked against its declared type.
pub(super) fn root_parameters(
    pipeline: &Pipeline,
    label: &str,
    given: &Map<String, Value>,
) -> Result<Values, RunError> {
    let declared = &pipeline.root.inputs.parameters;
    let mut values = Values::default();
    for (name, value) in given {
        let Some(spec) = declared.get(name) else {
            return Err(RunError::UnknownParameter {
                label: label.to_string(),
                name: name.clone(),
                known: declared.keys().cloned().collect(),
            });
        };
        if !strictly_fits(value, spec.kind) {
            return Err(RunError::ParameterType {
                label: label.to_string(),
                name: name.clone(),
                expected: expected_kind(spec.kind),
                found: describe(value),
            });
        }
        values.parameters.insert(name.clone(), ir::canonical(value.clone()));
    }
    for (name, spec) in declared {
        if values.parameters.contains_key(name) {
            continue;
        }
        match &spec.default {
            Some(default) => {
                values.parameters.insert(name.clone(), ir::canonical(default.clone()));
            }
            None if spec.optional => {}
            None => return Err(RunError::MissingParameter { label: label.to_string(), name: name.clone() }),
        }
    }
    Ok(values)
}

/// Values a caller may give for a type: its own kind only (an integer must be integral).
fn strictly_fits(value: &Value, kind: ParameterType) -> bool {
    match kind {
        ParameterType::String => value.is_string(),
        ParameterType::Integer => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        ParameterType::Double => value.is_number(),
        ParameterType::Boolean => value.is_boolean(),
        ParameterType::List => value.is_array(),
        ParameterType::Struct | ParameterType::TaskFinalStatus | ParameterType::TaskConfig => value.is_object(),
    }
}

fn expected_kind(kind: ParameterType) -> &'static str {
    match kind {
        ParameterType::String => "a string",
        ParameterType::Integer => "an integer",
        ParameterType::Double => "a number",
        ParameterType::Boolean => "a boolean",
        ParameterType::List => "a list",
        ParameterType::Struct | ParameterType::TaskFinalStatus | ParameterType::TaskConfig => "a struct",
    }
}

/// The items a ParallelFor iterates over: a JSON list, or a string holding one (as the driver accepts).
pub(super) fn parameter_items(value: &Value) -> Result<Vec<Value>, String> {
    match value {
        Value::Array(items) => Ok(items.clone()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err(format!("loop items must be a list, got the string {}", describe(value))),
        },
        other => Err(format!("loop items must be a list, got {}", describe(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_to_declared_types() {
        let check = |value: Value, kind: ParameterType, expected: Result<Value, &str>| match (
            convert(value.clone(), kind),
            expected,
        ) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{value} as {kind}"),
            (Err(got), Err(want)) => assert!(got.contains(want), "{value} as {kind}: {got}"),
            (got, want) => panic!("{value} as {kind}: got {got:?}, want {want:?}"),
        };
        check(json!("a"), ParameterType::String, Ok(json!("a")));
        check(json!(1), ParameterType::String, Ok(json!("1")));
        check(json!(2.0), ParameterType::String, Ok(json!("2")));
        check(json!(0.5), ParameterType::String, Ok(json!("0.5")));
        check(json!(true), ParameterType::String, Ok(json!("true")));
        check(json!([1, "a"]), ParameterType::String, Ok(json!(r#"[1,"a"]"#)));
        check(json!({"a": 1.0}), ParameterType::String, Ok(json!(r#"{"a":1.0}"#)));
        check(json!(100.0), ParameterType::Integer, Ok(json!(100)));
        check(json!(2.0), ParameterType::Double, Ok(json!(2)));
        check(json!(2.5), ParameterType::Double, Ok(json!(2.5)));
        check(json!({"a": [1.0]}), ParameterType::Struct, Ok(json!({"a": [1]})));
        check(json!({"state": "FAILED"}), ParameterType::TaskFinalStatus, Ok(json!({"state": "FAILED"})));
        check(json!("1"), ParameterType::Integer, Err("expected NUMBER_INTEGER, got a string (\"1\")"));
        check(json!("true"), ParameterType::Boolean, Err("expected BOOLEAN, got a string"));
        check(json!("[1]"), ParameterType::List, Err("expected LIST, got a string"));
        check(json!([1]), ParameterType::Struct, Err("expected STRUCT, got a list"));
        check(json!(1), ParameterType::Boolean, Err("expected BOOLEAN, got a number"));
    }

    #[test]
    fn loop_items() {
        assert_eq!(parameter_items(&json!([1, "a"])), Ok(vec![json!(1), json!("a")]));
        assert_eq!(parameter_items(&json!(r#"[{"a": 1}]"#)), Ok(vec![json!({"a": 1})]));
        assert!(parameter_items(&json!("a,b")).expect_err("not a list").contains("must be a list"));
        assert!(parameter_items(&json!({"a": 1})).expect_err("not a list").contains("got a struct"));
    }

    #[test]
    fn run_placeholders_in_constants() {
        let ids = RunIds { job_name: "p-1".into(), run_id: "u".into(), created_utc: "t".into() };
        assert_eq!(run_constant(&json!("{{$.pipeline_job_name}}"), &ids), json!("p-1"));
        assert_eq!(run_constant(&json!("{{$.pipeline_job_uuid}}"), &ids), json!("u"));
        assert_eq!(run_constant(&json!("x {{$.pipeline_job_uuid}}"), &ids), json!("x {{$.pipeline_job_uuid}}"));
        assert_eq!(run_constant(&json!(3), &ids), json!(3));
    }
}
