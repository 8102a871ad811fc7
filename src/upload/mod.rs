//! Where a pipeline spec is published besides the local store and OCI registries: Kubeflow Pipelines
//! (a pipeline version per commit) and Artifact Registry's Kubeflow template repositories
//! (research/kfp.md §4, §6). HTTP only; the caller decides what to upload and records the answers.

mod artifact_registry;
mod kfp;

pub use artifact_registry::{ArtifactRegistryClient, TemplateVersion};
pub use kfp::{KfpClient, KfpVersion};

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot reach `{url}`: {message}")]
    Unreachable { url: String, message: String },
    #[error("`{method} {url}` answered {status}: {body}")]
    Http { method: &'static str, url: String, status: u16, body: String },
    #[error("`{url}` answered something unexpected: {message}")]
    Protocol { url: String, message: String },
}

impl UploadError {
    fn from_reqwest(url: &str, e: reqwest::Error) -> UploadError {
        UploadError::Unreachable { url: url.to_string(), message: crate::error_chain(&e) }
    }
}

/// Trims a response body for an error message.
fn snippet(body: &str) -> String {
    let body = body.trim();
    if body.len() > 300 { format!("{}…", &body[..body.floor_char_boundary(300)]) } else { body.to_string() }
}
