//! Kubeflow component specs and compiled pipeline specs (IR): pointing them at this build's images,
//! checking a compiled spec uses only those, summarising its structure and comparing two compiled
//! specs by that structure (docs/SPEC.md §7, §8, §14; `docs/research/kfp.md` §1, §2).
//!
//! Rewriting is surgical: the bytes of each image scalar are replaced, in the style the file wrote
//! it, and nothing else. Comments, key order, quoting and flow style stay as they were, so a
//! committed spec's diff is exactly its image lines. Every rewrite is proven by re-parsing the result
//! and comparing it with the original value by value; a rewrite that would change anything else is
//! an error, never a silently different file.
//!
//! Pure: text in, value out. No IO, no Docker, no Python; the SDK is only used by a test
//! (`tests/kfp_check.py`) to confirm Kubeflow reads our output.

pub mod cel;
pub mod diff;
mod error;
pub mod ir;
mod path;
mod rewrite;
mod scalar;
mod spec;
mod summary;
mod target;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod diff_tests;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use diff::{Change, SpecDiff};
pub use error::{SpecError, StaleImage};
pub use rewrite::{ImageChange, Rewrite};
pub use summary::{ExecutorKind, ExecutorSummary, ParameterSummary, PipelineSummary, TaskInput, TaskSummary};
pub use target::ImageTarget;

use spec::Spec;
use target::Targets;

/// What kind of Kubeflow file a text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecKind {
    /// A KFP v1 `component.yaml` (`implementation.container.image`).
    ComponentV1,
    /// KFP v2 IR, a whole pipeline or one component compiled on its own; YAML (maybe followed by
    /// platform-spec documents) or JSON.
    PipelineSpec,
    /// The `{pipelineSpec, runtimeConfig}` JSON written by the KFP 1.6–1.8 `kfp.v2` compiler.
    LegacyPipelineJob,
}

/// One image named by a spec file, for listings and dry runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecImage {
    /// The executor label; `None` for a v1 component.
    pub executor: Option<String>,
    pub path: String,
    pub line: usize,
    pub image: String,
}

/// Rewrites the spec file of ONE component. For a KFP v1 component, `implementation.container.image`
/// is set to `target.reference` whatever it was (the file belongs to this component; placeholders,
/// empty strings and untagged references occur in real files). For IR, every executor image whose
/// repository is the target's is set; naming none is an error.
pub fn rewrite_component(text: &str, label: &str, target: &ImageTarget) -> Result<Rewrite, SpecError> {
    rewrite::component(text, label, target)
}

/// Rewrites a (committed or compiled) pipeline spec for a set of components: every executor image
/// (the legacy wrapper's nested `pipelineSpec` too, and the deprecated `customJob` worker-pool images)
/// whose repository belongs to one of the targets. Zero matches is an error.
pub fn rewrite_pipeline(text: &str, label: &str, targets: &[ImageTarget]) -> Result<Rewrite, SpecError> {
    rewrite::pipeline(text, label, targets)
}

/// The check after compile (docs/SPEC.md §8): the text is a KFP IR with a known `schemaVersion`, and every
/// executor image that belongs to one of the targets is exactly that target's reference. All stale
/// executors are reported at once. Returns the structural summary.
pub fn check_pipeline(text: &str, label: &str, targets: &[ImageTarget]) -> Result<PipelineSummary, SpecError> {
    let targets = Targets::new(targets, label)?;
    let spec = Spec::parse(text, label)?;
    let ir = spec.ir()?;
    summary::schema_version(&ir)?;
    let stale: Vec<StaleImage> = spec::executor_images(&ir)?
        .into_iter()
        .filter_map(|site| {
            let target = targets.find(site.image)?;
            (site.image != target.reference).then(|| StaleImage {
                executor: site.executor_or_component().to_string(),
                line: site.field.line(),
                path: site.field.path.to_string(),
                image: site.image.to_string(),
                expected: target.reference.clone(),
            })
        })
        .collect();
    if !stale.is_empty() {
        return Err(SpecError::StaleImage { label: label.to_string(), stale });
    }
    summary::summarize(&spec)
}

/// The structural summary of a compiled pipeline spec (see [`PipelineSummary`]).
pub fn summarize(text: &str, label: &str) -> Result<PipelineSummary, SpecError> {
    summary::summarize(&Spec::parse(text, label)?)
}

/// The semantic diff between two compiled pipeline specs (see [`diff`]).
pub fn diff_specs(base: &str, base_label: &str, head: &str, head_label: &str) -> Result<SpecDiff, SpecError> {
    let base = summarize(base, base_label)?;
    let head = summarize(head, head_label)?;
    Ok(diff::diff(&base, &head))
}

/// Every image a spec file names where a rewrite would look: a v1 component's image, or each
/// executor's image in IR.
pub fn images(text: &str, label: &str) -> Result<Vec<SpecImage>, SpecError> {
    let spec = Spec::parse(text, label)?;
    Ok(spec::all_images(&spec)?
        .into_iter()
        .map(|site| SpecImage {
            executor: site.executor.map(str::to_string),
            path: site.field.path.to_string(),
            line: site.field.line(),
            image: site.image.to_string(),
        })
        .collect())
}

/// What kind of Kubeflow file `text` is.
pub fn kind(text: &str, label: &str) -> Result<SpecKind, SpecError> {
    Ok(Spec::parse(text, label)?.kind)
}
