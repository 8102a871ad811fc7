//! Where a pipeline spec is published besides the local store and OCI registries: Kubeflow Pipelines
//! (a pipeline version per commit) and Artifact Registry's Kubeflow template repositories
//! (docs/research/kfp.md §4, §6). HTTP only, through src/io/http.rs (whose `HttpError` is every failure); the caller decides what to upload
//! and records the answers.

mod artifact_registry;
mod kfp;

pub use artifact_registry::{ArtifactRegistryClient, TemplateVersion};
pub use kfp::{KfpClient, KfpVersion};
