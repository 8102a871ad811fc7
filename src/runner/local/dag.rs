//! The scheduler: runs a DAG's tasks as their upstream tasks finish, independent ones side by side,
//! and each task by its kind: a container, an importer, a sub-DAG (conditions, exit handlers,
//! pipelines in pipelines), or a ParallelFor over a sub-DAG.
//!
//! Within one DAG, a task whose upstream tasks are all finished is decided at once: not triggered
//! (an upstream task did not succeed, or a sibling failed, unless its strategy is
//! `ALL_UPSTREAM_TASKS_COMPLETED`), failed (its inputs do not resolve), skipped (its condition is
//! false) or started. The first failure stops the siblings still running. A DAG's outputs are
//! resolved from its tasks once it succeeded; a ParallelFor's outputs are the lists of its
//! iterations' outputs (`dsl.Collected`).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::super::cel;
use super::super::ir::{
    self, Body, Component, Dag, DagParameter, Executor, Importer, ImporterUri, Items, Pipeline, Selector, Strategy,
    Task,
};
use super::container::ContainerTask;
use super::inputs::{self, Sibling, Sources};
use super::outputs::{self, Metric};
use super::placeholders::{Context, OutputPaths, TaskInfo};
use super::{Artifact, LocalRunner, RunEvent, RunIds, TaskResult, TaskState, Values};
use crate::io::host_path::Rooted;
use crate::record::Timestamp;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One run in progress: what every task of it shares.
pub(super) struct ActiveRun<'r> {
    pub runner: &'r LocalRunner,
    pub pipeline: &'r Pipeline,
    pub ids: RunIds,
    /// `<root>/<run id>`, also `{{$.pipeline_root}}`.
    pub dir: Rooted,
    /// Free container slots.
    pub slots: tokio::sync::Semaphore,
    pub results: Mutex<Vec<TaskResult>>,
    pub metrics: Mutex<Vec<Metric>>,
    pub events: &'r (dyn Fn(RunEvent) + Send + Sync),
    /// Numbers containers and `{{$.pipeline_task_uuid}}`.
    pub sequence: AtomicUsize,
}

/// How a task ended, for its dependants and its record.
pub(super) struct Ended {
    pub sibling: Sibling,
    pub started: Option<Timestamp>,
    pub exit_code: Option<i64>,
}

impl Ended {
    pub(super) fn unstarted(state: TaskState, error: Option<String>) -> Ended {
        Ended { sibling: Sibling { state, outputs: Values::default(), error }, started: None, exit_code: None }
    }
}

/// Where a DAG runs: its inputs, and how its tasks are named (`prefix` + task + `suffix`, the suffix
/// holding the loop iterations around it, `[1][0]`).
struct Scope {
    prefix: String,
    suffix: String,
    inputs: Values,
}

impl Scope {
    fn path(&self, task: &str) -> String {
        format!("{}{task}{}", self.prefix, self.suffix)
    }

    /// The scope of a sub-DAG run by `task`.
    fn child(&self, task: &str, inputs: Values) -> Scope {
        Scope { prefix: format!("{}{task}/", self.prefix), suffix: self.suffix.clone(), inputs }
    }
}

/// The progress of one DAG.
#[derive(Default)]
struct Progress<'a> {
    pending: BTreeSet<&'a str>,
    finished: BTreeMap<&'a str, Sibling>,
    /// Stop tokens of the tasks running now.
    running: BTreeMap<&'a str, CancellationToken>,
    /// The first failure, which names the failing task.
    failure: Option<String>,
}

impl Progress<'_> {
    /// Records a failure and stops the siblings still running.
    fn fail(&mut self, error: Option<String>) {
        if self.failure.is_none() {
            self.failure = Some(error.unwrap_or_else(|| "a task failed".into()));
        }
        for token in self.running.values() {
            token.cancel();
        }
    }
}

impl<'r> ActiveRun<'r> {
    /// Runs the root DAG with the pipeline's inputs.
    pub(super) async fn root(&self, inputs: Values, cancel: &CancellationToken) -> Sibling {
        let Body::Dag(dag) = &self.pipeline.root.body else {
            return Sibling {
                state: TaskState::Failed,
                outputs: Values::default(),
                error: Some("the pipeline's `root` is not a DAG".into()),
            };
        };
        let scope = Scope { prefix: String::new(), suffix: String::new(), inputs };
        self.run_dag(&scope, dag, cancel).await
    }

    fn run_dag<'a>(&'a self, scope: &'a Scope, dag: &'a Dag, stop: &'a CancellationToken) -> BoxFuture<'a, Sibling> {
        Box::pin(async move {
            let mut progress =
                Progress { pending: dag.tasks.keys().map(String::as_str).collect(), ..Progress::default() };
            let mut running: FuturesUnordered<BoxFuture<'a, (&'a str, Sibling)>> = FuturesUnordered::new();
            loop {
                self.decide(scope, dag, stop, &mut progress, &mut running);
                let Some((name, sibling)) = running.next().await else { break };
                progress.running.remove(name);
                if sibling.state == TaskState::Failed {
                    progress.fail(sibling.error.clone());
                }
                progress.finished.insert(name, sibling);
            }
            conclude(dag, progress)
        })
    }

    /// Decides every pending task whose upstream tasks have finished, until none is left to decide.
    fn decide<'a>(
        &'a self,
        scope: &'a Scope,
        dag: &'a Dag,
        stop: &'a CancellationToken,
        progress: &mut Progress<'a>,
        running: &mut FuturesUnordered<BoxFuture<'a, (&'a str, Sibling)>>,
    ) {
        loop {
            let ready: Vec<&'a str> = progress
                .pending
                .iter()
                .copied()
                .filter(|name| dag.tasks[*name].upstream().iter().all(|u| progress.finished.contains_key(u)))
                .collect();
            if ready.is_empty() {
                return;
            }
            for name in ready {
                progress.pending.remove(name);
                let task = &dag.tasks[name];
                let path = scope.path(name);
                match self.prepare(scope, name, task, stop, progress) {
                    Ok((component, inputs)) => {
                        let token = stop.child_token();
                        progress.running.insert(name, token.clone());
                        running.push(Box::pin(async move {
                            let ended = self.execute(scope, name, task, component, inputs, &token).await;
                            (name, self.finish(&path, ended))
                        }));
                    }
                    Err(ended) => {
                        if ended.sibling.state == TaskState::Failed {
                            progress.fail(ended.sibling.error.clone());
                        }
                        progress.finished.insert(name, self.finish(&path, ended));
                    }
                }
            }
        }
    }

    /// A ready task's component and inputs, or how it ended without starting.
    fn prepare<'a>(
        &self,
        scope: &Scope,
        name: &str,
        task: &'a Task,
        stop: &CancellationToken,
        progress: &Progress<'_>,
    ) -> Result<(&'r Component, Values), Ended> {
        let path = scope.path(name);
        if stop.is_cancelled() {
            return Err(Ended::unstarted(TaskState::Cancelled, None));
        }
        let upstream_ok = task.upstream().iter().all(|u| progress.finished[u].state == TaskState::Succeeded);
        if task.strategy == Strategy::AllSucceeded && (progress.failure.is_some() || !upstream_ok) {
            return Err(Ended::unstarted(TaskState::NotTriggered, None));
        }
        let failed = |error: String| Ended::unstarted(TaskState::Failed, Some(format!("task `{path}`: {error}")));
        let Some(component) = self.pipeline.component(&task.component) else {
            return Err(failed(format!("component `{}` does not exist", task.component)));
        };
        let sources = Sources { scope: &scope.inputs, siblings: &progress.finished, ids: &self.ids };
        let item_input = match &task.iterator {
            Some(ir::Loop::Parameter { item_input, .. } | ir::Loop::Artifact { item_input, .. }) => {
                Some(item_input.as_str())
            }
            None => None,
        };
        let inputs = inputs::resolve(task, component, &sources, item_input).map_err(failed)?;
        if let Some(condition) = &task.condition {
            match cel::condition(condition, &condition_inputs(&inputs)) {
                Ok(true) => {}
                Ok(false) => return Err(Ended::unstarted(TaskState::Skipped, None)),
                Err(e) => return Err(failed(format!("condition `{condition}` failed: {e}"))),
            }
        }
        Ok((component, inputs))
    }

    /// Runs a started task by the kind of its component.
    async fn execute(
        &self,
        scope: &Scope,
        name: &str,
        task: &Task,
        component: &'r Component,
        inputs: Values,
        stop: &CancellationToken,
    ) -> Ended {
        let path = scope.path(name);
        match &component.body {
            Body::Executor(label) => match self.pipeline.executors.get(label) {
                Some(Executor::Container(container)) => {
                    let task =
                        ContainerTask { path: &path, name, container, component, inputs, retry: task.retry.as_ref() };
                    self.run_container(task, stop).await
                }
                Some(Executor::Importer(importer)) => self.import(&path, name, importer, component, &inputs),
                None => Ended::unstarted(
                    TaskState::Failed,
                    Some(format!("task `{path}`: executor `{label}` does not exist")),
                ),
            },
            Body::Dag(dag) => {
                let started = self.task_started(&path);
                let sibling = match &task.iterator {
                    Some(iterator) => self.run_loop(scope, name, task, component, iterator, inputs, stop).await,
                    None => self.run_dag(&scope.child(name, inputs), dag, stop).await,
                };
                Ended { sibling, started: Some(started), exit_code: None }
            }
        }
    }

    /// A ParallelFor: the sub-DAG once per item, at most `parallelismLimit` at a time. The first
    /// failing iteration stops the others.
    #[allow(clippy::too_many_arguments)]
    async fn run_loop(
        &self,
        scope: &Scope,
        name: &str,
        task: &Task,
        component: &Component,
        iterator: &ir::Loop,
        inputs: Values,
        stop: &CancellationToken,
    ) -> Sibling {
        let Body::Dag(dag) = &component.body else {
            let error = Some(format!("task `{}`: a ParallelFor runs a DAG component", scope.path(name)));
            return Sibling { state: TaskState::Failed, outputs: Values::default(), error };
        };
        let iterations = match iteration_inputs(iterator, inputs, component) {
            Ok(iterations) => iterations,
            Err(e) => {
                let error = Some(format!("task `{}`: {e}", scope.path(name)));
                return Sibling { state: TaskState::Failed, outputs: Values::default(), error };
            }
        };
        let count = iterations.len();
        let limit = if task.parallelism_limit == 0 { count.max(1) } else { task.parallelism_limit };
        let loop_stop = stop.child_token();
        let prefix = format!("{}{name}/", scope.prefix);
        let (loop_stop_ref, prefix_ref) = (&loop_stop, &prefix);
        let mut stream = futures_util::stream::iter(iterations.into_iter().enumerate())
            .map(|(index, inputs)| async move {
                if loop_stop_ref.is_cancelled() {
                    return (index, None);
                }
                let iteration =
                    Scope { prefix: prefix_ref.clone(), suffix: format!("{}[{index}]", scope.suffix), inputs };
                (index, Some(self.run_dag(&iteration, dag, loop_stop_ref).await))
            })
            .buffer_unordered(limit);
        let mut results: Vec<Option<Sibling>> = (0..count).map(|_| None).collect();
        let mut failure = None;
        while let Some((index, result)) = stream.next().await {
            if let Some(sibling) = &result
                && sibling.state == TaskState::Failed
                && failure.is_none()
            {
                failure = sibling.error.clone();
                loop_stop.cancel();
            }
            results[index] = result;
        }
        let state = if failure.is_some() {
            TaskState::Failed
        } else if stop.is_cancelled()
            || results.iter().any(|r| r.as_ref().is_none_or(|s| s.state == TaskState::Cancelled))
        {
            TaskState::Cancelled
        } else {
            TaskState::Succeeded
        };
        let outputs = if state == TaskState::Succeeded { collected(dag, &results) } else { Values::default() };
        Sibling { state, outputs, error: failure }
    }

    /// An importer registers the artifact at its URI; nothing runs.
    fn import(&self, path: &str, name: &str, importer: &Importer, component: &Component, inputs: &Values) -> Ended {
        let started = self.task_started(path);
        let uri = match &importer.uri {
            ImporterUri::Constant(uri) => Ok(uri.clone()),
            ImporterUri::Parameter(input) => match inputs.parameters.get(input) {
                Some(Value::String(uri)) => Ok(uri.clone()),
                Some(other) => Err(format!("the URI input `{input}` is not a string: {other}")),
                None => Err(format!("the URI input `{input}` has no value")),
            },
        };
        let uri = match uri {
            Ok(uri) => uri,
            Err(e) => {
                let mut ended = Ended::unstarted(TaskState::Failed, Some(format!("task `{path}` failed: {e}")));
                ended.started = Some(started);
                return ended;
            }
        };
        let info = TaskInfo {
            job_name: self.ids.job_name.clone(),
            run_id: self.ids.run_id.clone(),
            task_name: name.to_string(),
            pipeline_root: self.dir.to_string(),
            created_utc: self.ids.created_utc.clone(),
            ..TaskInfo::default()
        };
        let no_outputs = OutputPaths::default();
        let context = Context { inputs, outputs: &no_outputs, task: &info };
        let metadata = match substitute_json(&Value::Object(importer.metadata.clone()), &context) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let artifact = |key: &str| Artifact {
            name: key.to_string(),
            artifact_type: importer.artifact_type.clone(),
            uri: uri.clone(),
            metadata: metadata.clone(),
        };
        let mut outputs = Values::default();
        let keys: Vec<&str> = component.outputs.artifacts.keys().map(String::as_str).collect();
        for key in if keys.is_empty() { vec!["artifact"] } else { keys } {
            outputs.artifacts.insert(key.to_string(), vec![artifact(key)]);
        }
        self.record_metrics(path, &outputs);
        Ended {
            sibling: Sibling { state: TaskState::Succeeded, outputs, error: None },
            started: Some(started),
            exit_code: None,
        }
    }

    /// Announces that a task started; its start time.
    pub(super) fn task_started(&self, path: &str) -> Timestamp {
        (self.events)(RunEvent::TaskStarted { task: path.to_string() });
        Timestamp::now()
    }

    pub(super) fn emit_line(&self, path: &str, line: &str) {
        (self.events)(RunEvent::Output { task: path.to_string(), line: line.to_string() });
    }

    pub(super) fn record_metrics(&self, path: &str, outputs: &Values) {
        let found = outputs::metrics(path, outputs, &self.dir);
        if !found.is_empty() {
            self.metrics.lock().unwrap_or_else(|e| e.into_inner()).extend(found);
        }
    }

    /// Records a task's end and announces it; what its dependants see.
    fn finish(&self, path: &str, ended: Ended) -> Sibling {
        let Ended { sibling, started, exit_code } = ended;
        let finished = (started.is_some() || sibling.state == TaskState::Skipped || sibling.state == TaskState::Failed)
            .then(Timestamp::now);
        let result = TaskResult {
            name: path.to_string(),
            state: sibling.state,
            started,
            finished,
            exit_code,
            error: sibling.error.clone(),
        };
        self.results.lock().unwrap_or_else(|e| e.into_inner()).push(result);
        (self.events)(RunEvent::TaskFinished { task: path.to_string(), state: sibling.state, exit_code });
        sibling
    }
}

/// How a DAG ended once all its tasks did: failed if one failed, cancelled if one was, else succeeded
/// with its outputs.
fn conclude(dag: &Dag, progress: Progress<'_>) -> Sibling {
    let states: Vec<TaskState> = progress.finished.values().map(|s| s.state).collect();
    let state = if progress.failure.is_some() || states.contains(&TaskState::Failed) {
        TaskState::Failed
    } else if states.contains(&TaskState::Cancelled) {
        TaskState::Cancelled
    } else {
        TaskState::Succeeded
    };
    let outputs = if state == TaskState::Succeeded { dag_outputs(dag, &progress.finished) } else { Values::default() };
    Sibling { state, outputs, error: progress.failure }
}

/// A DAG's outputs: each the first selector whose producer succeeded and has the output.
fn dag_outputs(dag: &Dag, finished: &BTreeMap<&str, Sibling>) -> Values {
    let producer = |s: &Selector| finished.get(s.producer.as_str()).filter(|f| f.state == TaskState::Succeeded);
    let mut values = Values::default();
    for (name, output) in &dag.outputs.parameters {
        let selectors = match output {
            DagParameter::Single(s) => std::slice::from_ref(s),
            DagParameter::OneOf(selectors) => selectors.as_slice(),
        };
        if let Some(value) = selectors.iter().find_map(|s| producer(s)?.outputs.parameters.get(&s.key)) {
            values.parameters.insert(name.clone(), value.clone());
        }
    }
    for (name, selectors) in &dag.outputs.artifacts {
        if let Some(list) = selectors.iter().find_map(|s| producer(s)?.outputs.artifacts.get(&s.key)) {
            values.artifacts.insert(name.clone(), list.clone());
        }
    }
    values
}

/// A ParallelFor's outputs: each parameter the list of the iterations' values, each artifact output
/// the iterations' artifacts in order.
fn collected(dag: &Dag, iterations: &[Option<Sibling>]) -> Values {
    let mut values = Values::default();
    let done: Vec<&Sibling> = iterations.iter().flatten().collect();
    for name in dag.outputs.parameters.keys() {
        let list: Vec<Value> = done.iter().filter_map(|s| s.outputs.parameters.get(name).cloned()).collect();
        values.parameters.insert(name.clone(), Value::Array(list));
    }
    for name in dag.outputs.artifacts.keys() {
        let list: Vec<Artifact> =
            done.iter().filter_map(|s| s.outputs.artifacts.get(name)).flatten().cloned().collect();
        values.artifacts.insert(name.clone(), list);
    }
    values
}

/// Each iteration's inputs: the loop task's inputs without the item list, plus its item (of the type
/// the loop's component declares for it).
fn iteration_inputs(iterator: &ir::Loop, inputs: Values, component: &Component) -> Result<Vec<Values>, String> {
    match iterator {
        ir::Loop::Parameter { items, item_input } => {
            let (list, items_input) = match items {
                Items::Raw(raw) => (
                    inputs::parameter_items(&Value::String(raw.clone()))
                        .map_err(|e| format!("the loop's raw items: {e}"))?,
                    None,
                ),
                Items::InputParameter(name) => {
                    let value = inputs
                        .parameters
                        .get(name)
                        .ok_or_else(|| format!("the loop's items input `{name}` has no value"))?;
                    (inputs::parameter_items(value)?, Some(name))
                }
            };
            let declared = component.inputs.parameters.get(item_input).map(|spec| spec.kind);
            list.into_iter()
                .map(|item| {
                    let item = match declared {
                        Some(kind) => {
                            inputs::convert(item, kind).map_err(|e| format!("loop item `{item_input}`: {e}"))?
                        }
                        None => ir::canonical(item),
                    };
                    let mut iteration = inputs.clone();
                    if let Some(name) = items_input {
                        iteration.parameters.remove(name);
                    }
                    iteration.parameters.insert(item_input.clone(), item);
                    Ok(iteration)
                })
                .collect()
        }
        ir::Loop::Artifact { items, item_input } => {
            let list = inputs
                .artifacts
                .get(items)
                .ok_or_else(|| format!("the loop's items artifact `{items}` has no value"))?;
            Ok(list
                .iter()
                .map(|artifact| {
                    let mut iteration = inputs.clone();
                    iteration.artifacts.remove(items);
                    iteration.artifacts.insert(item_input.clone(), vec![artifact.clone()]);
                    iteration
                })
                .collect())
        }
    }
}

/// The variables a condition sees: `inputs.parameter_values` and `inputs.artifacts`.
fn condition_inputs(inputs: &Values) -> Value {
    let artifacts: Map<String, Value> =
        inputs.artifacts.iter().map(|(name, list)| (name.clone(), json!({ "artifacts": list }))).collect();
    json!({ "parameter_values": inputs.parameters, "artifacts": artifacts })
}

/// Placeholders replaced in every string of a JSON value, keys included (importer metadata).
fn substitute_json(value: &Value, context: &Context<'_>) -> Value {
    match value {
        Value::String(s) => Value::String(context.substitute(s)),
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute_json(i, context)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (context.substitute(k), substitute_json(v, context))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::ir::{Interface, ParameterSpec, ParameterType};

    fn sibling(state: TaskState, parameters: Value) -> Sibling {
        let parameters = parameters.as_object().map(|m| m.clone().into_iter().collect()).unwrap_or_default();
        Sibling { state, outputs: Values { parameters, artifacts: BTreeMap::new() }, error: None }
    }

    fn selector(producer: &str, key: &str) -> Selector {
        Selector { producer: producer.into(), key: key.into() }
    }

    #[test]
    fn oneof_takes_the_branch_that_ran() {
        let mut dag = Dag::default();
        dag.outputs.parameters.insert(
            "out".into(),
            DagParameter::OneOf(vec![selector("condition-2", "x"), selector("condition-3", "x")]),
        );
        dag.outputs.parameters.insert("single".into(), DagParameter::Single(selector("condition-2", "x")));
        let finished = BTreeMap::from([
            ("condition-2", sibling(TaskState::Skipped, json!({}))),
            ("condition-3", sibling(TaskState::Succeeded, json!({"x": "three"}))),
        ]);
        let outputs = dag_outputs(&dag, &finished);
        assert_eq!(outputs.parameters, BTreeMap::from([("out".to_string(), json!("three"))]));
    }

    #[test]
    fn loops_collect_in_item_order() {
        let mut dag = Dag::default();
        dag.outputs.parameters.insert("v".into(), DagParameter::Single(selector("t", "v")));
        let iterations = [
            Some(sibling(TaskState::Succeeded, json!({"v": 1}))),
            None,
            Some(sibling(TaskState::Succeeded, json!({"v": 3}))),
        ];
        assert_eq!(collected(&dag, &iterations).parameters["v"], json!([1, 3]));
    }

    #[test]
    fn iteration_inputs_replace_the_list_by_its_item() {
        let component = |kind| Component {
            inputs: Interface {
                parameters: BTreeMap::from([(
                    "item".to_string(),
                    ParameterSpec { kind, default: None, optional: false },
                )]),
                artifacts: BTreeMap::new(),
            },
            outputs: Interface::default(),
            body: Body::Dag(Dag::default()),
        };
        let inputs = Values {
            parameters: BTreeMap::from([("list".to_string(), json!([1, 2])), ("other".to_string(), json!("o"))]),
            artifacts: BTreeMap::new(),
        };
        let by_input = ir::Loop::Parameter { items: Items::InputParameter("list".into()), item_input: "item".into() };
        let got = iteration_inputs(&by_input, inputs.clone(), &component(ParameterType::Integer)).expect("items");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1].parameters,
            BTreeMap::from([("item".to_string(), json!(2)), ("other".to_string(), json!("o"))])
        );
        // A loop item declared STRING gets the item's text, as the driver converts it.
        let raw = ir::Loop::Parameter { items: Items::Raw("[1, {\"a\": 2}]".into()), item_input: "item".into() };
        let got = iteration_inputs(&raw, inputs.clone(), &component(ParameterType::String)).expect("items");
        assert_eq!(got[0].parameters["item"], json!("1"));
        assert_eq!(got[1].parameters["item"], json!(r#"{"a":2}"#));
        let err = iteration_inputs(&raw, inputs.clone(), &component(ParameterType::Integer)).expect_err("a struct");
        assert_eq!(err, r#"loop item `item`: expected NUMBER_INTEGER, got a struct ({"a":2})"#);
        let missing = ir::Loop::Parameter { items: Items::InputParameter("nope".into()), item_input: "item".into() };
        let err = iteration_inputs(&missing, inputs, &component(ParameterType::Integer)).expect_err("no list");
        assert_eq!(err, "the loop's items input `nope` has no value");
    }
}
