//! The IR reader (`runner::ir::Pipeline::parse`): a compiled KFP pipeline from a file we do not control.
//!
//! Input: the file's text. What `parse` promises to have checked is checked again here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipewright::runner::cel;
use pipewright::runner::ir::{Body, Component, Pipeline};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let pipeline = match Pipeline::parse(text, "fuzz.yaml") {
        Ok(pipeline) => pipeline,
        Err(e) => {
            assert!(!e.message.is_empty(), "an error without a message: {e:?}");
            return;
        }
    };
    let _ = pipeline.task_count();
    // No component contains itself: no chain of nested DAGs is longer than there are components.
    assert!(depth(&pipeline, &pipeline.root, pipeline.components.len() + 1), "a component contains itself");
    let inputs = json!({"parameter_values": {}});
    for component in std::iter::once(&pipeline.root).chain(pipeline.components.values()) {
        match &component.body {
            Body::Executor(label) => {
                // Only executors some task runs are kept, and every leaf's is among them.
                assert!(pipeline.executors.contains_key(label), "executor `{label}` is missing");
            }
            Body::Dag(dag) => {
                for (name, task) in &dag.tasks {
                    assert!(pipeline.component(&task.component).is_some(), "task `{name}`: no component");
                    for upstream in task.upstream() {
                        assert!(dag.tasks.contains_key(upstream), "task `{name}` waits for a non-sibling `{upstream}`");
                        assert_ne!(upstream, name.as_str(), "task `{name}` waits for itself");
                    }
                    // The runner evaluates conditions later; they must not panic either.
                    if let Some(condition) = &task.condition {
                        let _ = cel::condition(condition, &inputs);
                    }
                }
            }
        }
    }
});

/// Whether every chain of DAGs nested in `component` is at most `budget` deep.
fn depth(pipeline: &Pipeline, component: &Component, budget: usize) -> bool {
    let Body::Dag(dag) = &component.body else { return true };
    budget > 0
        && dag
            .tasks
            .values()
            .all(|task| pipeline.component(&task.component).is_none_or(|inner| depth(pipeline, inner, budget - 1)))
}
