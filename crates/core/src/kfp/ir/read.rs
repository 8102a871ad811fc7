//! Decoding a document into the IR's types: every accessor knows its path, so errors say where.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::check::check;
use super::{
    ArtifactInput, ArtifactSpec, Body, Component, Container, Dag, DagParameter, Executor, Importer, ImporterUri,
    Interface, IrError, Items, Loop, ParameterInput, ParameterSource, ParameterSpec, ParameterType, Pipeline,
    RetryPolicy, Selector, Strategy, Task, to_json,
};
use crate::yaml;

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
        check(&pipeline, ir.label)?;
        Ok(pipeline)
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
