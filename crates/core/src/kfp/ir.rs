//! The parts of a compiled Kubeflow pipeline (IR, `PipelineSpec`) that the local runner executes, as
//! types (`research/kfp.md` §2).
//!
//! The text is read with the project's YAML reader (JSON is YAML too), first document only (later
//! documents are platform specs, which have no local meaning), and a legacy `{pipelineSpec,
//! runtimeConfig}` wrapper is unwrapped with its parameter values as defaults. Everything the runner
//! would trip over later is checked here, before anything runs: every task names a component that
//! exists, every leaf component an executor the runner supports, every upstream task is a sibling,
//! no DAG has a cycle and no component contains itself. Errors name the file and the path in it.
//!
//! Fields the runner has no use for (resources, caching keys, platform specs) are not modelled.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::yaml;

/// A problem with the IR, at a path in the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{label}: {}{message}", if path.is_empty() { String::new() } else { format!("`{path}`: ") })]
pub struct IrError {
    pub label: String,
    /// Dotted path in the document, e.g. `root.dag.tasks.train.componentRef.name`.
    pub path: String,
    pub message: String,
}

/// A compiled pipeline, ready to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    /// `pipelineInfo.name`.
    pub name: String,
    pub schema_version: String,
    pub root: Component,
    /// By name (`comp-…`).
    pub components: BTreeMap<String, Component>,
    /// By label (`exec-…`); only executors some task runs.
    pub executors: BTreeMap<String, Executor>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub inputs: Interface,
    pub outputs: Interface,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// A leaf: runs the executor with this label.
    Executor(String),
    Dag(Dag),
}

/// A component's inputs or outputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interface {
    pub parameters: BTreeMap<String, ParameterSpec>,
    pub artifacts: BTreeMap<String, ArtifactSpec>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParameterSpec {
    pub kind: ParameterType,
    pub default: Option<Value>,
    pub optional: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterType {
    String,
    Integer,
    Double,
    Boolean,
    List,
    Struct,
    /// `PipelineTaskFinalStatus`, a struct.
    TaskFinalStatus,
    /// `dsl.TaskConfig`, a struct only the backend fills; locally it stays absent.
    TaskConfig,
}

impl ParameterType {
    /// The IR's name for the type (`NUMBER_INTEGER`).
    pub fn name(self) -> &'static str {
        match self {
            ParameterType::String => "STRING",
            ParameterType::Integer => "NUMBER_INTEGER",
            ParameterType::Double => "NUMBER_DOUBLE",
            ParameterType::Boolean => "BOOLEAN",
            ParameterType::List => "LIST",
            ParameterType::Struct => "STRUCT",
            ParameterType::TaskFinalStatus => "TASK_FINAL_STATUS",
            ParameterType::TaskConfig => "TASK_CONFIG",
        }
    }

    /// `parameterType` (schema 2.1.0) or the deprecated `type` (2.0.0: `STRING`, `INT`, `DOUBLE`).
    fn parse(text: &str) -> Option<ParameterType> {
        Some(match text {
            "STRING" => ParameterType::String,
            "NUMBER_INTEGER" | "INT" => ParameterType::Integer,
            "NUMBER_DOUBLE" | "DOUBLE" => ParameterType::Double,
            "BOOLEAN" => ParameterType::Boolean,
            "LIST" => ParameterType::List,
            "STRUCT" => ParameterType::Struct,
            "TASK_FINAL_STATUS" => ParameterType::TaskFinalStatus,
            "TASK_CONFIG" => ParameterType::TaskConfig,
            _ => return None,
        })
    }
}

impl fmt::Display for ParameterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactSpec {
    /// `artifactType` as written (`{schemaTitle, schemaVersion}` or `{instanceSchema}`).
    pub artifact_type: Value,
    /// `artifactType.schemaTitle`, e.g. `system.Metrics`.
    pub schema_title: Option<String>,
    pub is_list: bool,
    pub optional: bool,
    /// Initial metadata of an output artifact.
    pub metadata: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dag {
    pub tasks: BTreeMap<String, Task>,
    pub outputs: DagOutputs,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DagOutputs {
    pub parameters: BTreeMap<String, DagParameter>,
    /// Each output is the first selector that resolves (several for `dsl.OneOf`).
    pub artifacts: BTreeMap<String, Vec<Selector>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DagParameter {
    /// `valueFromParameter`.
    Single(Selector),
    /// `valueFromOneof.parameterSelectors`: the first that resolves.
    OneOf(Vec<Selector>),
}

/// An output of a task in the DAG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub producer: String,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// `componentRef.name`.
    pub component: String,
    /// `dependentTasks`.
    pub dependent_tasks: Vec<String>,
    pub parameters: BTreeMap<String, ParameterInput>,
    pub artifacts: BTreeMap<String, ArtifactInput>,
    /// `triggerPolicy.condition` (CEL).
    pub condition: Option<String>,
    pub strategy: Strategy,
    pub iterator: Option<Loop>,
    /// `iteratorPolicy.parallelismLimit`; 0 is no limit.
    pub parallelism_limit: usize,
    pub retry: Option<RetryPolicy>,
}

impl Task {
    /// Every sibling this task waits for: `dependentTasks` and the producers of its inputs.
    pub fn upstream(&self) -> BTreeSet<&str> {
        let mut upstream: BTreeSet<&str> = self.dependent_tasks.iter().map(String::as_str).collect();
        for input in self.parameters.values() {
            match &input.source {
                ParameterSource::TaskOutput(s) => {
                    upstream.insert(&s.producer);
                }
                ParameterSource::TaskFinalStatus { producer } => {
                    upstream.insert(producer);
                }
                ParameterSource::ComponentInput(_) | ParameterSource::Constant(_) => {}
            }
        }
        for input in self.artifacts.values() {
            if let ArtifactInput::TaskOutput(s) = input {
                upstream.insert(&s.producer);
            }
        }
        upstream
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParameterInput {
    pub source: ParameterSource,
    /// `parameterExpressionSelector` (CEL over the value).
    pub selector: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ParameterSource {
    ComponentInput(String),
    TaskOutput(Selector),
    /// `runtimeValue.constant` (2.0.0: `constantValue`).
    Constant(Value),
    TaskFinalStatus {
        producer: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum ArtifactInput {
    ComponentInput(String),
    TaskOutput(Selector),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Runs when every upstream task succeeded (the default).
    #[default]
    AllSucceeded,
    /// Runs when every upstream task ended, however (exit handlers, `ignore_upstream_failure`).
    AllCompleted,
}

/// A ParallelFor.
#[derive(Clone, Debug, PartialEq)]
pub enum Loop {
    /// One iteration per item; the item is the component input `item_input`.
    Parameter { items: Items, item_input: String },
    /// One iteration per artifact of the task input `items`.
    Artifact { items: String, item_input: String },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Items {
    /// A JSON array written into the IR.
    Raw(String),
    /// A task input holding the list.
    InputParameter(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff: std::time::Duration,
    pub factor: f64,
    pub max_backoff: std::time::Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Executor {
    Container(Container),
    Importer(Importer),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Importer {
    pub uri: ImporterUri,
    pub artifact_type: Value,
    pub schema_title: Option<String>,
    pub metadata: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ImporterUri {
    Constant(String),
    /// A task input parameter holding the URI.
    Parameter(String),
}

impl Pipeline {
    /// Reads and checks a compiled pipeline. `label` names the text in errors (a file name).
    pub fn parse(text: &str, label: &str) -> Result<Pipeline, IrError> {
        let documents = yaml::parse_stream(text).map_err(|e| IrError {
            label: label.to_string(),
            path: String::new(),
            message: format!("line {}: {}", e.pos, e.message),
        })?;
        let Some(first) = documents.first() else {
            return Err(IrError { label: label.into(), path: String::new(), message: "the file is empty".into() });
        };
        let document = to_json(first);
        let top = At::top(&document, label);
        let (ir, legacy_defaults) = match top.get("pipelineSpec") {
            Some(spec) => (spec, legacy_defaults(&top)?),
            None => (top, BTreeMap::new()),
        };
        let pipeline = read_pipeline(&ir, &legacy_defaults)?;
        check(&pipeline, &ir)?;
        Ok(pipeline)
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.get(name)
    }

    /// How many tasks the pipeline's DAGs hold (loops counted once).
    pub fn task_count(&self) -> usize {
        let dags = std::iter::once(&self.root).chain(self.components.values());
        dags.map(|c| match &c.body {
            Body::Dag(dag) => dag.tasks.len(),
            Body::Executor(_) => 0,
        })
        .sum()
    }
}

/// A value in the document and the path that led to it, so every accessor can say where a problem is.
#[derive(Clone)]
struct At<'a> {
    value: &'a Value,
    path: String,
    label: &'a str,
}

impl<'a> At<'a> {
    fn top(value: &'a Value, label: &'a str) -> At<'a> {
        At { value, path: String::new(), label }
    }

    fn error(&self, message: impl Into<String>) -> IrError {
        IrError { label: self.label.to_string(), path: self.path.clone(), message: message.into() }
    }

    fn child(&self, key: &str, value: &'a Value) -> At<'a> {
        let simple = !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_'));
        let path = match (self.path.is_empty(), simple) {
            (true, true) => key.to_string(),
            (false, true) => format!("{}.{key}", self.path),
            (_, false) => format!("{}[{key:?}]", self.path),
        };
        At { value, path, label: self.label }
    }

    /// The value of `key`; null counts as absent, as in protobuf's JSON mapping.
    fn get(&self, key: &str) -> Option<At<'a>> {
        match self.value.as_object()?.get(key)? {
            Value::Null => None,
            value => Some(self.child(key, value)),
        }
    }

    fn require(&self, key: &str) -> Result<At<'a>, IrError> {
        self.object()?;
        self.get(key).ok_or_else(|| self.error(format!("`{key}` is missing")))
    }

    fn object(&self) -> Result<&'a Map<String, Value>, IrError> {
        self.value.as_object().ok_or_else(|| self.error(format!("expected a mapping, found {}", kind(self.value))))
    }

    /// The entries of an optional mapping.
    fn entries(&self, key: &str) -> Result<Vec<(&'a str, At<'a>)>, IrError> {
        let Some(field) = self.get(key) else { return Ok(Vec::new()) };
        Ok(field.object()?.iter().map(|(k, v)| (k.as_str(), field.child(k, v))).collect())
    }

    fn items(&self) -> Result<Vec<At<'a>>, IrError> {
        let items =
            self.value.as_array().ok_or_else(|| self.error(format!("expected a list, found {}", kind(self.value))))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| At { value: v, path: format!("{}[{i}]", self.path), label: self.label })
            .collect())
    }

    fn text(&self) -> Result<&'a str, IrError> {
        self.value.as_str().ok_or_else(|| self.error(format!("expected a string, found {}", kind(self.value))))
    }

    fn string(&self, key: &str) -> Result<String, IrError> {
        self.require(key)?.text().map(str::to_string)
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>, IrError> {
        self.get(key).map(|f| f.text().map(str::to_string)).transpose()
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, IrError> {
        let Some(list) = self.get(key) else { return Ok(Vec::new()) };
        list.items()?.iter().map(|item| item.text().map(str::to_string)).collect()
    }

    fn flag(&self, key: &str) -> Result<bool, IrError> {
        match self.get(key) {
            None => Ok(false),
            Some(f) => f.value.as_bool().ok_or_else(|| f.error(format!("expected a boolean, found {}", kind(f.value)))),
        }
    }

    /// A non-negative integer, written as a number or (proto JSON's int64) a string.
    fn count(&self, key: &str) -> Result<u64, IrError> {
        let Some(field) = self.get(key) else { return Ok(0) };
        let number = match field.value {
            Value::String(s) => s.parse::<f64>().ok(),
            other => other.as_f64(),
        };
        match number {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(n as u64),
            _ => Err(field.error(format!("expected a non-negative integer, found {}", kind(field.value)))),
        }
    }

    fn map(&self, key: &str) -> Result<Map<String, Value>, IrError> {
        match self.get(key) {
            None => Ok(Map::new()),
            Some(field) => field.object().cloned(),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn read_pipeline(ir: &At<'_>, legacy_defaults: &BTreeMap<String, Value>) -> Result<Pipeline, IrError> {
    let name = ir.require("pipelineInfo")?.string("name")?;
    let schema_version = ir.get("schemaVersion").map(|f| f.text().map(str::to_string)).transpose()?.unwrap_or_default();
    let mut root = read_component(&ir.require("root")?)?;
    for (name, value) in legacy_defaults {
        if let Some(spec) = root.inputs.parameters.get_mut(name) {
            spec.default = Some(value.clone());
        }
    }
    let mut components = BTreeMap::new();
    for (name, component) in ir.entries("components")? {
        components.insert(name.to_string(), read_component(&component)?);
    }
    // Only what the root reaches runs; a component no task uses may have an executor we cannot run.
    let reachable = reachable(&root, &components);
    components.retain(|name, _| reachable.contains(name));
    let mut executors = BTreeMap::new();
    let deployment = ir.get("deploymentSpec");
    let declared = match &deployment {
        Some(d) => d.entries("executors")?,
        None => Vec::new(),
    };
    let used: BTreeSet<&str> = components
        .values()
        .chain(std::iter::once(&root))
        .filter_map(|c| match &c.body {
            Body::Executor(label) => Some(label.as_str()),
            Body::Dag(_) => None,
        })
        .collect();
    for (label, executor) in declared {
        if used.contains(label) {
            executors.insert(label.to_string(), read_executor(&executor)?);
        }
    }
    Ok(Pipeline { name, schema_version, root, components, executors })
}

/// The names of the components the root's tasks use, directly or through sub-DAGs.
fn reachable(root: &Component, components: &BTreeMap<String, Component>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue = vec![root];
    while let Some(component) = queue.pop() {
        let Body::Dag(dag) = &component.body else { continue };
        for task in dag.tasks.values() {
            if seen.insert(task.component.clone())
                && let Some(child) = components.get(&task.component)
            {
                queue.push(child);
            }
        }
    }
    seen
}

/// A legacy wrapper's `runtimeConfig`: `parameterValues` (plain JSON) or, schema 2.0.0, `parameters`
/// (`{stringValue|intValue|doubleValue: …}`).
fn legacy_defaults(top: &At<'_>) -> Result<BTreeMap<String, Value>, IrError> {
    let mut out = BTreeMap::new();
    let Some(config) = top.get("runtimeConfig") else { return Ok(out) };
    for (name, value) in config.entries("parameters")? {
        out.insert(name.to_string(), typed_value(&value)?);
    }
    for (name, value) in config.entries("parameterValues")? {
        out.insert(name.to_string(), value.value.clone());
    }
    Ok(out)
}

/// A deprecated typed `Value` (`{stringValue: "a"}`, `{intValue: "3"}`, `{doubleValue: 0.5}`).
fn typed_value(at: &At<'_>) -> Result<Value, IrError> {
    let object = at.object()?;
    let Some((key, value)) = object.iter().find(|(_, v)| !v.is_null()) else {
        return Err(at.error("expected one of `stringValue`, `intValue` or `doubleValue`"));
    };
    let field = at.child(key, value);
    let number = |v: &Value| match v {
        Value::String(s) => s.trim().parse::<f64>().ok(),
        other => other.as_f64(),
    };
    match key.as_str() {
        "stringValue" => Ok(Value::String(field.text()?.to_string())),
        "intValue" => number(value)
            .filter(|n| n.fract() == 0.0)
            .map(|n| Value::from(n as i64))
            .ok_or_else(|| field.error("expected an integer")),
        "doubleValue" => number(value)
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| field.error("expected a number")),
        other => Err(field.error(format!("unknown value kind `{other}`"))),
    }
}

fn read_component(at: &At<'_>) -> Result<Component, IrError> {
    let body = match (at.get("executorLabel"), at.get("dag")) {
        (Some(label), None) => Body::Executor(label.text()?.to_string()),
        (None, Some(dag)) => Body::Dag(read_dag(&dag)?),
        (Some(_), Some(_)) => return Err(at.error("has both `executorLabel` and `dag`")),
        (None, None) => return Err(at.error("has neither `executorLabel` nor `dag`")),
    };
    Ok(Component {
        inputs: read_interface(at.get("inputDefinitions"))?,
        outputs: read_interface(at.get("outputDefinitions"))?,
        body,
    })
}

fn read_interface(at: Option<At<'_>>) -> Result<Interface, IrError> {
    let mut interface = Interface::default();
    let Some(at) = at else { return Ok(interface) };
    for (name, spec) in at.entries("parameters")? {
        let type_field = spec
            .get("parameterType")
            .or_else(|| spec.get("type"))
            .ok_or_else(|| spec.error("`parameterType` is missing"))?;
        let text = type_field.text()?;
        let kind =
            ParameterType::parse(text).ok_or_else(|| type_field.error(format!("unknown parameter type `{text}`")))?;
        let parameter = ParameterSpec {
            kind,
            default: spec.get("defaultValue").map(|d| d.value.clone()),
            optional: spec.flag("isOptional")?,
        };
        interface.parameters.insert(name.to_string(), parameter);
    }
    for (name, spec) in at.entries("artifacts")? {
        interface.artifacts.insert(name.to_string(), read_artifact_spec(&spec)?);
    }
    Ok(interface)
}

fn read_artifact_spec(at: &At<'_>) -> Result<ArtifactSpec, IrError> {
    let artifact_type = at.require("artifactType")?;
    artifact_type.object()?;
    Ok(ArtifactSpec {
        schema_title: artifact_type.optional_string("schemaTitle")?,
        artifact_type: artifact_type.value.clone(),
        is_list: at.flag("isArtifactList")?,
        optional: at.flag("isOptional")?,
        metadata: at.map("metadata")?,
    })
}

fn read_dag(at: &At<'_>) -> Result<Dag, IrError> {
    let mut dag = Dag::default();
    for (name, task) in at.entries("tasks")? {
        dag.tasks.insert(name.to_string(), read_task(&task)?);
    }
    let Some(outputs) = at.get("outputs") else { return Ok(dag) };
    for (name, spec) in outputs.entries("parameters")? {
        let parameter = match (spec.get("valueFromParameter"), spec.get("valueFromOneof")) {
            (Some(single), _) => DagParameter::Single(read_selector(&single, "producerSubtask", "outputParameterKey")?),
            (None, Some(oneof)) => DagParameter::OneOf(
                oneof
                    .require("parameterSelectors")?
                    .items()?
                    .iter()
                    .map(|s| read_selector(s, "producerSubtask", "outputParameterKey"))
                    .collect::<Result<_, _>>()?,
            ),
            (None, None) => return Err(spec.error("expected `valueFromParameter` or `valueFromOneof`")),
        };
        dag.outputs.parameters.insert(name.to_string(), parameter);
    }
    for (name, spec) in outputs.entries("artifacts")? {
        let selectors = spec
            .require("artifactSelectors")?
            .items()?
            .iter()
            .map(|s| read_selector(s, "producerSubtask", "outputArtifactKey"))
            .collect::<Result<Vec<_>, _>>()?;
        dag.outputs.artifacts.insert(name.to_string(), selectors);
    }
    Ok(dag)
}

fn read_selector(at: &At<'_>, producer: &str, key: &str) -> Result<Selector, IrError> {
    Ok(Selector { producer: at.string(producer)?, key: at.string(key)? })
}

fn read_task(at: &At<'_>) -> Result<Task, IrError> {
    let mut task = Task {
        component: at.require("componentRef")?.string("name")?,
        dependent_tasks: at.strings("dependentTasks")?,
        parameters: BTreeMap::new(),
        artifacts: BTreeMap::new(),
        condition: None,
        strategy: Strategy::AllSucceeded,
        iterator: read_iterator(at)?,
        parallelism_limit: 0,
        retry: at.get("retryPolicy").map(|r| read_retry(&r)).transpose()?,
    };
    if let Some(inputs) = at.get("inputs") {
        for (name, input) in inputs.entries("parameters")? {
            task.parameters.insert(name.to_string(), read_parameter_input(&input)?);
        }
        for (name, input) in inputs.entries("artifacts")? {
            task.artifacts.insert(name.to_string(), read_artifact_input(&input)?);
        }
    }
    if let Some(policy) = at.get("triggerPolicy") {
        task.condition = policy.optional_string("condition")?.filter(|c| !c.trim().is_empty());
        if let Some(strategy) = policy.get("strategy") {
            task.strategy = match strategy.text()? {
                "ALL_UPSTREAM_TASKS_COMPLETED" => Strategy::AllCompleted,
                "ALL_UPSTREAM_TASKS_SUCCEEDED" | "TRIGGER_STRATEGY_UNSPECIFIED" => Strategy::AllSucceeded,
                other => return Err(strategy.error(format!("unknown trigger strategy `{other}`"))),
            };
        }
    }
    if let Some(policy) = at.get("iteratorPolicy") {
        task.parallelism_limit = usize::try_from(policy.count("parallelismLimit")?).unwrap_or(usize::MAX);
    }
    Ok(task)
}

fn read_parameter_input(at: &At<'_>) -> Result<ParameterInput, IrError> {
    let source = if let Some(name) = at.get("componentInputParameter") {
        ParameterSource::ComponentInput(name.text()?.to_string())
    } else if let Some(output) = at.get("taskOutputParameter") {
        ParameterSource::TaskOutput(read_selector(&output, "producerTask", "outputParameterKey")?)
    } else if let Some(runtime) = at.get("runtimeValue") {
        if let Some(constant) = runtime.get("constant") {
            ParameterSource::Constant(constant.value.clone())
        } else if let Some(constant) = runtime.get("constantValue") {
            ParameterSource::Constant(typed_value(&constant)?)
        } else if let Some(parameter) = runtime.get("runtimeParameter") {
            ParameterSource::ComponentInput(parameter.text()?.to_string())
        } else {
            // protobuf's JSON mapping drops a null constant, leaving `runtimeValue: {}`.
            ParameterSource::Constant(Value::Null)
        }
    } else if let Some(status) = at.get("taskFinalStatus") {
        ParameterSource::TaskFinalStatus { producer: status.string("producerTask")? }
    } else {
        return Err(at.error(
            "expected one of `componentInputParameter`, `taskOutputParameter`, `runtimeValue` or `taskFinalStatus`",
        ));
    };
    Ok(ParameterInput { source, selector: at.optional_string("parameterExpressionSelector")? })
}

fn read_artifact_input(at: &At<'_>) -> Result<ArtifactInput, IrError> {
    if let Some(name) = at.get("componentInputArtifact") {
        Ok(ArtifactInput::ComponentInput(name.text()?.to_string()))
    } else if let Some(output) = at.get("taskOutputArtifact") {
        Ok(ArtifactInput::TaskOutput(read_selector(&output, "producerTask", "outputArtifactKey")?))
    } else {
        Err(at.error("expected `componentInputArtifact` or `taskOutputArtifact`"))
    }
}

fn read_iterator(at: &At<'_>) -> Result<Option<Loop>, IrError> {
    if let Some(iterator) = at.get("parameterIterator") {
        let items = iterator.require("items")?;
        let items = match (items.get("raw"), items.get("inputParameter")) {
            (Some(raw), _) => Items::Raw(raw.text()?.to_string()),
            (None, Some(input)) => Items::InputParameter(input.text()?.to_string()),
            (None, None) => return Err(items.error("expected `raw` or `inputParameter`")),
        };
        return Ok(Some(Loop::Parameter { items, item_input: iterator.string("itemInput")? }));
    }
    if let Some(iterator) = at.get("artifactIterator") {
        let items = iterator.require("items")?.string("inputArtifact")?;
        return Ok(Some(Loop::Artifact { items, item_input: iterator.string("itemInput")? }));
    }
    Ok(None)
}

fn read_retry(at: &At<'_>) -> Result<RetryPolicy, IrError> {
    let duration = |key: &str, default: f64| -> Result<std::time::Duration, IrError> {
        let Some(field) = at.get(key) else { return Ok(std::time::Duration::from_secs_f64(default)) };
        let text = field.text()?;
        text.strip_suffix('s')
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| field.error(format!("expected a duration such as `30s`, found `{text}`")))
    };
    let factor = match at.get("backoffFactor") {
        None => 2.0,
        Some(f) => {
            f.value.as_f64().filter(|f| f.is_finite() && *f >= 0.0).ok_or_else(|| f.error("expected a number"))?
        }
    };
    Ok(RetryPolicy {
        max_retries: u32::try_from(at.count("maxRetryCount")?).unwrap_or(u32::MAX),
        backoff: duration("backoffDuration", 0.0)?,
        factor,
        max_backoff: duration("backoffMaxDuration", 3600.0)?,
    })
}

fn read_executor(at: &At<'_>) -> Result<Executor, IrError> {
    if let Some(container) = at.get("container") {
        let mut env = Vec::new();
        if let Some(list) = container.get("env") {
            for item in list.items()? {
                env.push((item.string("name")?, item.optional_string("value")?.unwrap_or_default()));
            }
        }
        return Ok(Executor::Container(Container {
            image: container.string("image")?,
            command: container.strings("command")?,
            args: container.strings("args")?,
            env,
        }));
    }
    if let Some(importer) = at.get("importer") {
        let uri_field = importer.require("artifactUri")?;
        let uri = if let Some(constant) = uri_field.get("constant") {
            ImporterUri::Constant(constant.text()?.to_string())
        } else if let Some(constant) = uri_field.get("constantValue") {
            ImporterUri::Constant(constant.string("stringValue")?)
        } else if let Some(parameter) = uri_field.get("runtimeParameter") {
            ImporterUri::Parameter(parameter.text()?.to_string())
        } else {
            return Err(uri_field.error("expected `constant` or `runtimeParameter`"));
        };
        let type_schema = importer.require("typeSchema")?;
        type_schema.object()?;
        return Ok(Executor::Importer(Importer {
            uri,
            schema_title: type_schema.optional_string("schemaTitle")?,
            artifact_type: type_schema.value.clone(),
            metadata: importer.map("metadata")?,
        }));
    }
    let kind = at.object()?.keys().next().map_or("an empty executor".to_string(), |k| format!("a `{k}` executor"));
    Err(at.error(format!("{kind} cannot run locally; the local runner runs `container` and `importer` executors")))
}

/// The checks that make a parsed pipeline safe to run.
fn check(pipeline: &Pipeline, ir: &At<'_>) -> Result<(), IrError> {
    let error = |path: String, message: String| IrError { label: ir.label.to_string(), path, message };
    let mut dags: Vec<(String, &Component)> = vec![("root".to_string(), &pipeline.root)];
    dags.extend(pipeline.components.iter().map(|(name, c)| (format!("components.{name}"), c)));
    for (path, component) in &dags {
        // Output names become file names in the task's directory (the local runner's layout).
        for (kind, names) in [
            ("parameters", component.outputs.parameters.keys().collect::<Vec<_>>()),
            ("artifacts", component.outputs.artifacts.keys().collect()),
        ] {
            for name in names {
                if let Err(e) = crate::host_path::Segment::new(name) {
                    return Err(error(format!("{path}.outputDefinitions.{kind}.{name}"), e.to_string()));
                }
            }
        }
        match &component.body {
            Body::Executor(label) if !pipeline.executors.contains_key(label) => {
                return Err(error(
                    format!("{path}.executorLabel"),
                    format!("executor `{label}` is not in `deploymentSpec.executors`"),
                ));
            }
            Body::Executor(_) => {}
            Body::Dag(dag) => check_dag(pipeline, dag, &format!("{path}.dag"), &error)?,
        }
    }
    check_nesting(pipeline, &error)
}

fn check_dag(
    pipeline: &Pipeline,
    dag: &Dag,
    path: &str,
    error: &impl Fn(String, String) -> IrError,
) -> Result<(), IrError> {
    for (name, task) in &dag.tasks {
        let at = format!("{path}.tasks.{name}");
        // A task's name is a directory of the run (the local runner's layout).
        if let Err(e) = crate::host_path::Segment::new(name) {
            return Err(error(at, e.to_string()));
        }
        if pipeline.component(&task.component).is_none() {
            return Err(error(
                format!("{at}.componentRef.name"),
                format!("component `{}` does not exist", task.component),
            ));
        }
        for upstream in task.upstream() {
            if !dag.tasks.contains_key(upstream) {
                return Err(error(at.clone(), format!("waits for `{upstream}`, which is not a task of the same DAG")));
            }
        }
    }
    for (name, output) in &dag.outputs.parameters {
        let selectors = match output {
            DagParameter::Single(s) => std::slice::from_ref(s),
            DagParameter::OneOf(s) => s.as_slice(),
        };
        check_selectors(dag, selectors, &format!("{path}.outputs.parameters.{name}"), error)?;
    }
    for (name, selectors) in &dag.outputs.artifacts {
        check_selectors(dag, selectors, &format!("{path}.outputs.artifacts.{name}"), error)?;
    }
    if let Some(task) = cycle(dag) {
        return Err(error(format!("{path}.tasks.{task}"), "is part of a dependency cycle".into()));
    }
    Ok(())
}

fn check_selectors(
    dag: &Dag,
    selectors: &[Selector],
    path: &str,
    error: &impl Fn(String, String) -> IrError,
) -> Result<(), IrError> {
    match selectors.iter().find(|s| !dag.tasks.contains_key(&s.producer)) {
        Some(s) => Err(error(path.to_string(), format!("names `{}`, which is not a task of this DAG", s.producer))),
        None => Ok(()),
    }
}

/// A task on a dependency cycle, if the DAG has one (Kahn's algorithm: what cannot be ordered).
fn cycle(dag: &Dag) -> Option<&str> {
    let mut waiting: BTreeMap<&str, BTreeSet<&str>> =
        dag.tasks.iter().map(|(n, t)| (n.as_str(), t.upstream())).collect();
    loop {
        let ready: Vec<&str> = waiting.iter().filter(|(_, up)| up.is_empty()).map(|(n, _)| *n).collect();
        if ready.is_empty() {
            return waiting.keys().next().copied();
        }
        for name in ready {
            waiting.remove(name);
            for upstream in waiting.values_mut() {
                upstream.remove(name);
            }
        }
    }
}

/// No component may contain itself, directly or through other DAGs: running it would never end.
fn check_nesting(pipeline: &Pipeline, error: &impl Fn(String, String) -> IrError) -> Result<(), IrError> {
    fn visit<'p>(
        pipeline: &'p Pipeline,
        name: &'p str,
        stack: &mut Vec<&'p str>,
        done: &mut BTreeSet<&'p str>,
    ) -> Option<String> {
        if done.contains(name) {
            return None;
        }
        if stack.contains(&name) {
            return Some(name.to_string());
        }
        let Some(Body::Dag(dag)) = pipeline.component(name).map(|c| &c.body) else {
            done.insert(name);
            return None;
        };
        stack.push(name);
        let found = dag.tasks.values().find_map(|t| visit(pipeline, &t.component, stack, done));
        stack.pop();
        done.insert(name);
        found
    }
    let mut done = BTreeSet::new();
    for name in pipeline.components.keys() {
        if let Some(name) = visit(pipeline, name, &mut Vec::new(), &mut done) {
            return Err(error(format!("components.{name}"), "contains itself through its DAG's tasks".into()));
        }
    }
    Ok(())
}

/// A number as protobuf's JSON mapping prints it: integral values without a fraction (`2`, not
/// `2.0`), so a double parameter of 2 renders as the backend renders it. NaN and infinities, which JSON
/// cannot hold, become null.
pub fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.007_199_254_740_992e15 {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

/// Numbers anywhere in `value` in their canonical form (see [`number`]).
pub fn canonical(value: Value) -> Value {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => n.as_f64().map_or(Value::Number(n), number),
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, canonical(v))).collect()),
        other => other,
    }
}

/// A parameter value as text, as the backend renders it into a command line: strings raw, numbers in
/// the shortest plain decimal (`2`, `0.5`), booleans `true`/`false`, null empty, lists and structs as
/// compact JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => f.to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A YAML node as JSON, resolving plain scalars as YAML's core schema does (`1000.0` is a number,
/// `'1000.0'` a string). Infinities and NaN, which JSON cannot hold, stay strings.
pub(crate) fn to_json(node: &yaml::Node) -> Value {
    match &node.value {
        yaml::Value::Scalar { text, plain: true } => scalar(text, node.is_null()),
        yaml::Value::Scalar { text, .. } => Value::String(text.clone()),
        yaml::Value::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        yaml::Value::Map(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let key = match &key.value {
                    yaml::Value::Scalar { text, .. } => text.clone(),
                    _ => to_json(key).to_string(),
                };
                // A key written twice: the last one wins, as in PyYAML and JSON parsers.
                object.insert(key, to_json(value));
            }
            Value::Object(object)
        }
    }
}

fn scalar(text: &str, null: bool) -> Value {
    if null {
        return Value::Null;
    }
    if let Some(b) = yaml::parse_bool(text) {
        return Value::Bool(b);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if is_float(text)
        && let Some(n) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

/// YAML 1.2 core-schema float syntax, without the special values.
fn is_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (whole.is_empty() || digits(whole))
                && (fraction.is_empty() || digits(fraction))
                && !(whole.is_empty() && fraction.is_empty())
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests;
