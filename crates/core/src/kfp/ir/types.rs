//! The parts of the IR the runner uses, as types; `Pipeline::parse` (in `read`) builds them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

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
    pub(super) fn parse(text: &str) -> Option<ParameterType> {
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
