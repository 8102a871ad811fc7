//! The parts of a compiled Kubeflow pipeline (IR, `PipelineSpec`) that the local runner executes, as
//! types (`docs/research/kfp.md` §2).
//!
//! The text is read with the project's YAML reader (JSON is YAML too), first document only (later
//! documents are platform specs, which have no local meaning), and a legacy `{pipelineSpec,
//! runtimeConfig}` wrapper is unwrapped with its parameter values as defaults. Everything the runner
//! would trip over later is checked here, before anything runs: every task names a component that
//! exists, every leaf component an executor the runner supports, every upstream task is a sibling,
//! no DAG has a cycle and no component contains itself. Errors name the file and the path in it.
//!
//! Fields the runner has no use for (resources, caching keys, platform specs) are not modelled.
//!
//! The module is split by concern: `types` holds the spec's parts (pipeline, components, DAGs,
//! tasks, executors), `read` decodes a document into them, `check` holds the error type and the
//! checks run on what was read, and `json` the JSON value helpers (canonical numbers, a value as
//! command-line text, YAML nodes as JSON).

mod check;
mod json;
mod read;
mod types;

pub use check::IrError;
pub(crate) use json::to_json;
pub use json::{canonical, number, text};
pub use types::{
    ArtifactInput, ArtifactSpec, Body, Component, Container, Dag, DagOutputs, DagParameter, Executor, Importer,
    ImporterUri, Interface, Items, Loop, ParameterInput, ParameterSource, ParameterSpec, ParameterType, Pipeline,
    RetryPolicy, Selector, Strategy, Task,
};

#[cfg(test)]
mod tests;
