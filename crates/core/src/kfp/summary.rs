//! The structural summary of a compiled pipeline, kept in the build record and compared later by the
//! semantic spec diff: what runs (components, executors and their images), in which order (DAG edges
//! in every DAG, nested ones too), with which inputs (root parameters and defaults), and whether each
//! task may be served from cache. Maps are `BTreeMap`s so that the same spec always serialises the
//! same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::yaml::{self, Node, Value};

use super::SpecKind;
use super::error::SpecError;
use super::spec::{Field, Spec};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSummary {
    pub kind: SpecKind,
    /// `pipelineInfo.name`.
    pub name: String,
    pub schema_version: String,
    pub sdk_version: Option<String>,
    /// Component name (`comp-…`) → its executor label, or `dag` for a sub-DAG (condition, loop, …).
    pub components: BTreeMap<String, String>,
    pub executors: BTreeMap<String, ExecutorSummary>,
    /// DAG component (`root` for the pipeline itself) → task → what it runs and waits for.
    pub dags: BTreeMap<String, BTreeMap<String, TaskSummary>>,
    /// The pipeline's input parameters.
    pub parameters: BTreeMap<String, ParameterSummary>,
    /// The pipeline's input artifacts and their types (`artifactType.schemaTitle`, e.g.
    /// `system.Dataset`). Records written before this field existed read as having none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    Container,
    Importer,
    Resolver,
    /// The deprecated Vertex executor running a CustomJob.
    CustomJob,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorSummary {
    pub kind: ExecutorKind,
    /// `container.image`.
    pub image: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// A `customJob` executor's images, one per worker pool.
    pub worker_pool_images: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// `componentRef.name`.
    pub component: String,
    /// Upstream tasks in the same DAG, sorted.
    pub dependent_tasks: Vec<String>,
    /// `cachingOptions.enableCache`; `None` when the task has no `cachingOptions`.
    pub caching: Option<bool>,
    /// `triggerPolicy.condition`, the CEL expression that decides whether the task runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Where each input (`inputs.parameters.*` and `inputs.artifacts.*`) comes from. Records written
    /// before this field existed read as having none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, TaskInput>,
}

/// Where a task input comes from (`PipelineTaskSpec.inputs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskInput {
    /// `runtimeValue.constant` (schema 2.1.0) or `runtimeValue.constantValue.*` (2.0.0).
    Constant(serde_json::Value),
    /// `taskOutputParameter` / `taskOutputArtifact`: an output of another task in the same DAG.
    TaskOutput { task: String, output: String },
    /// `componentInputParameter` / `componentInputArtifact`: an input of the enclosing DAG.
    ComponentInput(String),
    /// `taskFinalStatus`: the final status of an upstream task (exit handlers).
    TaskFinalStatus(String),
    /// Anything else, as compact JSON.
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterSummary {
    /// `parameterType` (schema 2.1.0) or `type` (2.0.0), e.g. `STRING`.
    pub parameter_type: String,
    pub default: Option<serde_json::Value>,
    pub optional: bool,
}

/// The `schemaVersion`s this module understands.
pub(crate) const KNOWN_SCHEMA_VERSIONS: [&str; 2] = ["2.0.0", "2.1.0"];

pub(crate) fn summarize(spec: &Spec<'_>) -> Result<PipelineSummary, SpecError> {
    let ir = spec.ir()?;
    let mut dags = BTreeMap::new();
    if let Some(dag) = ir.require("root")?.get("dag")? {
        dags.insert("root".to_string(), tasks(&dag)?);
    }
    let mut components = BTreeMap::new();
    for (name, component) in entries_of(&ir, "components")? {
        if let Some(dag) = component.get("dag")? {
            dags.insert(name.to_string(), tasks(&dag)?);
            components.insert(name.to_string(), "dag".to_string());
        } else {
            components.insert(name.to_string(), component.require("executorLabel")?.text()?.to_string());
        }
    }
    Ok(PipelineSummary {
        kind: spec.kind,
        name: ir.require("pipelineInfo")?.require("name")?.text()?.to_string(),
        schema_version: schema_version(&ir)?.to_string(),
        sdk_version: ir.get("sdkVersion")?.map(|f| f.text().map(str::to_string)).transpose()?,
        components,
        executors: executors(&ir)?,
        dags,
        parameters: parameters(spec, &ir)?,
        artifacts: artifacts(&ir)?,
    })
}

/// `schemaVersion`, which must be one this module understands.
pub(crate) fn schema_version<'a>(ir: &Field<'a>) -> Result<&'a str, SpecError> {
    let field = ir.require("schemaVersion")?;
    let version = field.text()?;
    if !KNOWN_SCHEMA_VERSIONS.contains(&version) {
        return Err(SpecError::UnknownSchemaVersion {
            label: field.label.to_string(),
            line: field.line(),
            found: version.to_string(),
        });
    }
    Ok(version)
}

/// The entries of an optional mapping field (absent means none).
fn entries_of<'a>(field: &Field<'a>, key: &str) -> Result<Vec<(&'a str, Field<'a>)>, SpecError> {
    field.get(key)?.map_or(Ok(Vec::new()), |f| f.entries())
}

fn executors(ir: &Field<'_>) -> Result<BTreeMap<String, ExecutorSummary>, SpecError> {
    let mut out = BTreeMap::new();
    let Some(executors) = ir.dig(&["deploymentSpec", "executors"])? else {
        return Ok(out);
    };
    for (label, executor) in executors.entries()? {
        out.insert(label.to_string(), executor_summary(&executor)?);
    }
    Ok(out)
}

fn executor_summary(executor: &Field<'_>) -> Result<ExecutorSummary, SpecError> {
    let mut summary = ExecutorSummary {
        kind: ExecutorKind::Other,
        image: None,
        command: vec![],
        args: vec![],
        worker_pool_images: vec![],
    };
    if let Some(container) = executor.get("container")? {
        summary.kind = ExecutorKind::Container;
        summary.image = Some(container.require("image")?.text()?.to_string());
        summary.command = strings(&container, "command")?;
        summary.args = strings(&container, "args")?;
    } else if executor.get("importer")?.is_some() {
        summary.kind = ExecutorKind::Importer;
    } else if executor.get("resolver")?.is_some() {
        summary.kind = ExecutorKind::Resolver;
    } else if executor.get("customJob")?.is_some() {
        summary.kind = ExecutorKind::CustomJob;
        if let Some(pools) = executor.dig(&["customJob", "customJob", "jobSpec", "workerPoolSpecs"])? {
            for pool in pools.items()? {
                if let Some(image) = pool.dig(&["containerSpec", "imageUri"])? {
                    summary.worker_pool_images.push(image.text()?.to_string());
                }
            }
        }
    }
    Ok(summary)
}

/// A list of strings (`command`, `args`). IR writes only strings there; anything else is kept as
/// compact JSON rather than refused, since the summary describes and does not judge.
fn strings(field: &Field<'_>, key: &str) -> Result<Vec<String>, SpecError> {
    let Some(list) = field.get(key)? else {
        return Ok(Vec::new());
    };
    Ok(list
        .items()?
        .iter()
        .map(|item| match &item.node.value {
            Value::Scalar { text, .. } => text.clone(),
            _ => to_json(item.node).to_string(),
        })
        .collect())
}

fn tasks(dag: &Field<'_>) -> Result<BTreeMap<String, TaskSummary>, SpecError> {
    let mut out = BTreeMap::new();
    for (name, task) in entries_of(dag, "tasks")? {
        let mut dependent_tasks = match task.get("dependentTasks")? {
            Some(list) => list.items()?.iter().map(|t| t.text().map(str::to_string)).collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        dependent_tasks.sort();
        dependent_tasks.dedup();
        // `cachingOptions: {}` is how the compiler writes "caching off".
        let caching = match task.get("cachingOptions")? {
            Some(options) => Some(options.get("enableCache")?.is_some_and(|f| is_true(f.node))),
            None => None,
        };
        let component = task.require("componentRef")?.require("name")?.text()?.to_string();
        let condition = match task.dig(&["triggerPolicy", "condition"])? {
            Some(condition) => Some(condition.text()?.to_string()),
            None => None,
        };
        let mut inputs = BTreeMap::new();
        for kind in ["parameters", "artifacts"] {
            let Some(section) = task.dig(&["inputs", kind])? else { continue };
            for (input, spec) in section.entries()? {
                inputs.insert(input.to_string(), task_input(&spec)?);
            }
        }
        out.insert(name.to_string(), TaskSummary { component, dependent_tasks, caching, condition, inputs });
    }
    Ok(out)
}

fn task_input(spec: &Field<'_>) -> Result<TaskInput, SpecError> {
    for (key, output_key) in
        [("taskOutputParameter", "outputParameterKey"), ("taskOutputArtifact", "outputArtifactKey")]
    {
        if let Some(source) = spec.get(key)? {
            let task = source.require("producerTask")?.text()?.to_string();
            let output = source.get(output_key)?.map(|f| f.text().map(str::to_string)).transpose()?.unwrap_or_default();
            return Ok(TaskInput::TaskOutput { task, output });
        }
    }
    for key in ["componentInputParameter", "componentInputArtifact"] {
        if let Some(source) = spec.get(key)? {
            return Ok(TaskInput::ComponentInput(source.text()?.to_string()));
        }
    }
    if let Some(status) = spec.get("taskFinalStatus")? {
        return Ok(TaskInput::TaskFinalStatus(status.require("producerTask")?.text()?.to_string()));
    }
    if let Some(value) = spec.get("runtimeValue")? {
        if let Some(constant) = value.get("constant")? {
            return Ok(TaskInput::Constant(to_json(constant.node)));
        }
        // Schema 2.0.0: `constantValue: {stringValue|intValue|doubleValue: …}`.
        if let Some(constant) = value.get("constantValue")?
            && let Some((_, typed)) = constant.entries()?.into_iter().next()
        {
            return Ok(TaskInput::Constant(to_json(typed.node)));
        }
    }
    Ok(TaskInput::Other(to_json(spec.node).to_string()))
}

fn is_true(node: &Node) -> bool {
    matches!(&node.value, Value::Scalar { text, plain: true } if yaml::parse_bool(text) == Some(true))
}

fn parameters(spec: &Spec<'_>, ir: &Field<'_>) -> Result<BTreeMap<String, ParameterSummary>, SpecError> {
    let mut out = BTreeMap::new();
    let Some(parameters) = ir.dig(&["root", "inputDefinitions", "parameters"])? else {
        return Ok(out);
    };
    let runtime_defaults = legacy_defaults(spec)?;
    for (name, parameter) in parameters.entries()? {
        let parameter_type = match parameter.get("parameterType")? {
            Some(t) => t.text()?.to_string(),
            None => parameter.get("type")?.map(|t| t.text().map(str::to_string)).transpose()?.unwrap_or_default(),
        };
        let default = match parameter.get("defaultValue")? {
            Some(value) => Some(to_json(value.node)),
            None => runtime_defaults.get(name).cloned(),
        };
        let optional = parameter.get("isOptional")?.is_some_and(|f| is_true(f.node));
        out.insert(name.to_string(), ParameterSummary { parameter_type, default, optional });
    }
    Ok(out)
}

fn artifacts(ir: &Field<'_>) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    let Some(artifacts) = ir.dig(&["root", "inputDefinitions", "artifacts"])? else {
        return Ok(out);
    };
    for (name, artifact) in artifacts.entries()? {
        let title = match artifact.dig(&["artifactType", "schemaTitle"])? {
            Some(title) => title.text()?.to_string(),
            None => "artifact".to_string(),
        };
        out.insert(name.to_string(), title);
    }
    Ok(out)
}

/// A legacy `{pipelineSpec, runtimeConfig}` file keeps defaults in `runtimeConfig`: `parameterValues`
/// (plain JSON values) or, for schema 2.0.0, `parameters` (`{stringValue|intValue|doubleValue: …}`).
fn legacy_defaults(spec: &Spec<'_>) -> Result<BTreeMap<String, serde_json::Value>, SpecError> {
    let mut out = BTreeMap::new();
    if spec.kind != SpecKind::LegacyPipelineJob {
        return Ok(out);
    }
    let Some(config) = spec.top().get("runtimeConfig")? else {
        return Ok(out);
    };
    for (name, value) in entries_of(&config, "parameterValues")? {
        out.insert(name.to_string(), to_json(value.node));
    }
    for (name, value) in entries_of(&config, "parameters")? {
        let typed = value.entries()?.into_iter().next().map(|(_, v)| to_json(v.node));
        if let Some(typed) = typed {
            out.entry(name.to_string()).or_insert(typed);
        }
    }
    Ok(out)
}

/// A node as JSON, resolving plain scalars the way YAML's core schema does (`1000.0` is a number,
/// `'1000.0'` a string).
fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as Json;
    match &node.value {
        Value::Scalar { text, plain: true } => {
            if node.is_null() {
                Json::Null
            } else if let Some(b) = yaml::parse_bool(text) {
                Json::Bool(b)
            } else if let Ok(i) = text.parse::<i64>() {
                Json::from(i)
            } else if let Some(n) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Json::Number(n)
            } else {
                Json::String(text.clone())
            }
        }
        Value::Scalar { text, .. } => Json::String(text.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match &k.value {
                        Value::Scalar { text, .. } => text.clone(),
                        _ => to_json(k).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = r#"# PIPELINE DEFINITION
pipelineInfo: {name: demo}
schemaVersion: 2.1.0
sdkVersion: kfp-2.17.0
root:
  inputDefinitions:
    parameters:
      greeting: {parameterType: STRING, defaultValue: hello}
      times: {parameterType: NUMBER_INTEGER, defaultValue: 1000.0, isOptional: true}
      label: {parameterType: STRING, defaultValue: '1'}
      flags: {parameterType: STRUCT, defaultValue: {a: [1, true, null]}}
  dag:
    tasks:
      produce: {componentRef: {name: comp-produce}, cachingOptions: {enableCache: true}}
      loop:
        componentRef: {name: comp-for-loop-1}
        dependentTasks: [produce, produce]
        cachingOptions: {}
components:
  comp-produce: {executorLabel: exec-produce}
  comp-for-loop-1:
    dag:
      tasks:
        consume:
          componentRef: {name: comp-produce}
          dependentTasks: [b, a]
          triggerPolicy: {condition: "inputs.parameter_values['n'] > 1"}
          inputs:
            parameters:
              n: {runtimeValue: {constant: 3}}
              m: {taskOutputParameter: {producerTask: b, outputParameterKey: out}}
              g: {componentInputParameter: pipelinechannel--greeting}
            artifacts:
              data: {taskOutputArtifact: {producerTask: a, outputArtifactKey: ds}}
deploymentSpec:
  executors:
    exec-produce:
      container: {image: 'python:3.11', command: [sh, -c], args: ['{{$}}']}
    exec-import:
      importer: {artifactUri: {constant: gs://x}}
"#;

    #[test]
    fn summary_of_a_pipeline() {
        let spec = Spec::parse(PIPELINE, "p.yaml").expect("valid");
        let summary = summarize(&spec).expect("summary");
        assert_eq!(summary.name, "demo");
        assert_eq!(summary.sdk_version.as_deref(), Some("kfp-2.17.0"));
        assert_eq!(summary.components["comp-for-loop-1"], "dag");
        assert_eq!(summary.components["comp-produce"], "exec-produce");
        let produce = &summary.executors["exec-produce"];
        assert_eq!(produce.image.as_deref(), Some("python:3.11"));
        assert_eq!(produce.args, ["{{$}}"]);
        assert_eq!(summary.executors["exec-import"].kind, ExecutorKind::Importer);
        let root = &summary.dags["root"];
        assert_eq!(root["loop"].dependent_tasks, ["produce"]);
        assert_eq!(root["loop"].caching, Some(false));
        assert_eq!(root["produce"].caching, Some(true));
        assert_eq!(summary.dags["comp-for-loop-1"]["consume"].dependent_tasks, ["a", "b"]);
        let consume = &summary.dags["comp-for-loop-1"]["consume"];
        assert_eq!(consume.caching, None);
        assert_eq!(consume.condition.as_deref(), Some("inputs.parameter_values['n'] > 1"));
        assert_eq!(consume.inputs["n"], TaskInput::Constant(serde_json::json!(3)));
        assert_eq!(consume.inputs["m"], TaskInput::TaskOutput { task: "b".into(), output: "out".into() });
        assert_eq!(consume.inputs["g"], TaskInput::ComponentInput("pipelinechannel--greeting".into()));
        assert_eq!(consume.inputs["data"], TaskInput::TaskOutput { task: "a".into(), output: "ds".into() });
        assert!(root["produce"].inputs.is_empty() && root["produce"].condition.is_none());
        let p = &summary.parameters;
        assert_eq!(p["greeting"].default, Some(serde_json::json!("hello")));
        assert_eq!(p["times"].default, Some(serde_json::json!(1000.0)));
        assert!(p["times"].optional);
        assert_eq!(p["label"].default, Some(serde_json::json!("1")));
        assert_eq!(p["flags"].default, Some(serde_json::json!({"a": [1, true, null]})));
    }

    #[test]
    fn summaries_recorded_before_inputs_were_summarised_still_read() {
        let old = r#"{"component": "comp-a", "dependent_tasks": ["b"], "caching": true}"#;
        let task: TaskSummary = serde_json::from_str(old).expect("an old record reads");
        assert!(task.inputs.is_empty() && task.condition.is_none());
    }

    #[test]
    fn summary_round_trips_through_json() {
        let spec = Spec::parse(PIPELINE, "p.yaml").expect("valid");
        let summary = summarize(&spec).expect("summary");
        let json = serde_json::to_string(&summary).expect("serialises");
        assert_eq!(serde_json::from_str::<PipelineSummary>(&json).expect("deserialises"), summary);
        assert_eq!(serde_json::to_string(&summarize(&spec).expect("summary")).expect("serialises"), json);
    }

    #[test]
    fn legacy_defaults_come_from_the_runtime_config() {
        let text = r#"{"pipelineSpec": {"pipelineInfo": {"name": "p"}, "schemaVersion": "2.0.0",
            "root": {"inputDefinitions": {"parameters": {"n": {"type": "INT"}, "s": {"type": "STRING"}}}}},
            "runtimeConfig": {"parameters": {"n": {"intValue": "3"}}, "parameterValues": {"s": "x"}}}"#;
        let spec = Spec::parse(text, "p.json").expect("valid");
        let summary = summarize(&spec).expect("summary");
        assert_eq!(summary.kind, SpecKind::LegacyPipelineJob);
        assert_eq!(summary.parameters["n"].parameter_type, "INT");
        assert_eq!(summary.parameters["n"].default, Some(serde_json::json!("3")));
        assert_eq!(summary.parameters["s"].default, Some(serde_json::json!("x")));
    }

    #[test]
    fn schema_versions() {
        let with = |v: &str| PIPELINE.replace("schemaVersion: 2.1.0", &format!("schemaVersion: {v}"));
        let err = |text: &str| summarize(&Spec::parse(text, "p.yaml").expect("valid")).err().map(|e| e.to_string());
        assert_eq!(err(&with("2.0.0")), None);
        assert_eq!(
            err(&with("3.0.0")).as_deref(),
            Some("p.yaml:3: unknown `schemaVersion` `3.0.0`\n\nhint: known versions are `2.0.0` and `2.1.0`")
        );
        let missing = PIPELINE.replace("schemaVersion: 2.1.0\n", "");
        assert_eq!(err(&missing).as_deref(), Some("p.yaml:2: `schemaVersion` is missing"));
    }
}
