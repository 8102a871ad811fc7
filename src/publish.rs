//! Publishing a checked pipeline spec to one destination (`oci`, `kfp`, `artifactRegistry`): shared by
//! the build's upload phase and by promotion, which publishes the same bytes under the environment's
//! names.

use std::collections::BTreeMap;

use crate::io::credentials::Credentials;
use crate::io::registry::{Artifact, Registry};
use crate::io::upload::{ArtifactRegistryClient, KfpClient};
use crate::plan::UploadPlan;
use crate::record::UploadRecord;
use crate::tag::Tag;

pub const SPEC_MEDIA_TYPE: &str = "application/vnd.pipewright.kfp.spec.v1+yaml";
pub const PIPELINE_ARTIFACT_TYPE: &str = "application/vnd.pipewright.kfp.pipeline.v1";

/// The spec and the names to publish it under.
#[derive(Clone, Debug)]
pub struct Publication {
    /// The pipeline's name (KFP pipeline, file names).
    pub pipeline: String,
    pub bytes: Vec<u8>,
    /// `sha256:…` of the bytes.
    pub digest: String,
    /// Tags for OCI and Artifact Registry, the first one pushed, the others copied; a [`Tag`] says
    /// who may write it (a build: commit and branch; promotion: the environment's).
    pub tags: Vec<Tag>,
    /// The Kubeflow Pipelines version name.
    pub version_name: String,
    pub description: String,
    /// OCI manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Publication {
    pub fn tag_names(&self) -> Vec<String> {
        self.tags.iter().map(ToString::to_string).collect()
    }
}

/// Publishes `spec` to `destination`; the error names the destination. The destination is the build
/// file's; a token goes with it only when `credentials` lists its origin.
pub async fn publish(
    destination: &UploadPlan,
    spec: &Publication,
    registry: &Registry,
    credentials: &Credentials,
) -> Result<UploadRecord, String> {
    match destination {
        UploadPlan::Oci(repository) => oci(registry, repository, spec).await,
        UploadPlan::Kfp { host, pipeline } => kfp(host, pipeline, spec, credentials).await,
        UploadPlan::ArtifactRegistry(url) => artifact_registry(url, spec, credentials).await,
    }
}

async fn oci(registry: &Registry, repository: &str, spec: &Publication) -> Result<UploadRecord, String> {
    let artifact = Artifact {
        artifact_type: PIPELINE_ARTIFACT_TYPE.into(),
        layer_media_type: SPEC_MEDIA_TYPE.into(),
        data: spec.bytes.clone(),
        annotations: spec.annotations.clone(),
        title: format!("{}.yaml", spec.pipeline),
    };
    let first = format!("{repository}:{}", spec.tags.first().map_or("latest", Tag::as_str));
    let digest = registry.push_artifact(&first, &artifact).await.map_err(|e| format!("oci `{first}`: {e}"))?;
    for tag in spec.tags.iter().skip(1) {
        let target = format!("{repository}:{tag}");
        registry.copy(&first, &target).await.map_err(|e| format!("oci `{target}`: {e}"))?;
    }
    Ok(UploadRecord {
        destination: "oci".into(),
        uri: format!("{repository}@{digest}"),
        version: digest,
        tags: spec.tag_names(),
    })
}

async fn kfp(
    host: &str,
    pipeline: &str,
    spec: &Publication,
    credentials: &Credentials,
) -> Result<UploadRecord, String> {
    let token = credentials.for_url(host).map_err(|e| format!("kfp `{host}`: {e}"))?;
    let version = KfpClient::new(host, token.map(|t| t.expose().to_string()))
        .upload_version(pipeline, &spec.version_name, &spec.description, &spec.bytes)
        .await
        .map_err(|e| format!("kfp `{host}`: {e}"))?;
    Ok(UploadRecord {
        destination: "kfp".into(),
        uri: format!("{host}/apis/v2beta1/pipelines/{}/versions/{}", version.pipeline_id, version.version_id),
        version: version.version_id,
        tags: vec![version.version_name],
    })
}

async fn artifact_registry(url: &str, spec: &Publication, credentials: &Credentials) -> Result<UploadRecord, String> {
    let token = credentials.for_url(url).map_err(|e| format!("artifactRegistry `{url}`: {e}"))?;
    let version = ArtifactRegistryClient::new(url, token.map(|t| t.expose().to_string()))
        .upload(&format!("{}.yaml", spec.pipeline), &spec.bytes, &spec.tag_names())
        .await
        .map_err(|e| format!("artifactRegistry `{url}`: {e}"))?;
    Ok(UploadRecord {
        destination: "artifactRegistry".into(),
        uri: version.uri,
        version: version.version,
        tags: spec.tag_names(),
    })
}
