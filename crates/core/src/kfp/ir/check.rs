//! The error type, and the checks that make a pipeline that was read safe to run.

use std::collections::{BTreeMap, BTreeSet};

use super::{Body, Component, Dag, DagParameter, Pipeline, Selector};

/// A problem with the IR, at a path in the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{label}: {}{message}", if path.is_empty() { String::new() } else { format!("`{path}`: ") })]
pub struct IrError {
    pub label: String,
    /// Dotted path in the document, e.g. `root.dag.tasks.train.componentRef.name`.
    pub path: String,
    pub message: String,
}

/// The checks that make a parsed pipeline safe to run.
pub(super) fn check(pipeline: &Pipeline, label: &str) -> Result<(), IrError> {
    let error = |path: String, message: String| IrError { label: label.to_string(), path, message };
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
