//! The pure core of pipewright: text in, values out. The build file (`config`), Cloud Build's
//! substitutions (`subst`), the plan of a build (`plan`), trigger rules and forge events (`trigger`),
//! whose code a build runs (`trust`), the promotion policy (`policy`), the Kubeflow formats (`kfp`:
//! component specs, the IR, CEL, summaries and diffs), the build record (`record`) and the checked
//! names every layer shares (`host_path::Segment`, `tag`, `image_ref`, `limits`, `mask`).
//!
//! Nothing here reads a file, runs a process, opens a socket or needs an async runtime; the product
//! crate (`pipewright`, the repository root) does all of that and re-exports these modules under the
//! same names. See ARCHITECTURE.md for the layers.

pub mod config;
pub mod github;
pub mod host_path;
pub mod image_ref;
pub mod kfp;
pub mod limits;
pub mod mask;
pub mod plan;
pub mod policy;
pub mod record;
pub mod source;
pub mod subst;
pub mod tag;
pub mod trigger;
pub mod trust;
pub mod yaml;

/// An error and its causes on one line (`a: b: c`), skipping a cause already contained in the text
/// before it (many errors repeat their source's message).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
