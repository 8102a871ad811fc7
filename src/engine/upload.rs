//! The upload phase (SPEC §9): the checked spec goes to the local store always, then to every
//! destination of `pipeline.upload`. Each destination's answer (digest, version) is recorded.

use std::collections::BTreeMap;

use super::phases::{PhaseError, PhaseOutcome, Phases};
use super::specs::CheckedSpec;
use crate::plan::UploadPlan;
use crate::record::UploadRecord;
use crate::registry::Artifact;
use crate::upload::{self, ArtifactRegistryClient, KfpClient};

pub const SPEC_MEDIA_TYPE: &str = "application/vnd.pipewright.kfp.spec.v1+yaml";
pub const PIPELINE_ARTIFACT_TYPE: &str = "application/vnd.pipewright.kfp.pipeline.v1";

impl Phases<'_> {
    pub async fn upload(&self, spec: &CheckedSpec) -> Result<((), String), PhaseOutcome> {
        let plan = &self.run.plan;
        let pipeline = plan.pipeline.as_ref().expect("the upload runs only for a pipeline");
        let store = &self.run.engine.store;
        let path = store
            .save_spec(&pipeline.name, &plan.commit_sha, &spec.bytes, &spec.digest)
            .map_err(|e| PhaseError::new(e.to_string()))?;
        let mut uploads = vec![UploadRecord {
            destination: "local".into(),
            uri: path.display().to_string(),
            version: spec.digest.clone(),
            tags: Vec::new(),
        }];
        for destination in &pipeline.uploads {
            let record = match destination {
                UploadPlan::Oci(repository) => self.upload_oci(repository, spec).await,
                UploadPlan::Kfp { host, pipeline } => self.upload_kfp(host, pipeline, spec).await,
                UploadPlan::ArtifactRegistry(url) => self.upload_artifact_registry(url, &pipeline.name, spec).await,
            };
            match record {
                Ok(record) => {
                    self.output("upload", &format!("{} {} {}", record.destination, record.uri, record.version));
                    uploads.push(record);
                }
                Err(e) => {
                    self.record(|b| b.pipeline.get_or_insert_with(Default::default).uploads = uploads.clone());
                    return Err(PhaseError::push(e).into());
                }
            }
        }
        let count = uploads.len();
        self.record(|b| b.pipeline.get_or_insert_with(Default::default).uploads = uploads);
        Ok(((), format!("{count} destination{}", if count == 1 { "" } else { "s" })))
    }

    /// Tags for an upload: the commit, and the branch (or tag) made safe as a tag.
    fn upload_tags(&self) -> Vec<String> {
        let plan = &self.run.plan;
        let mut tags = vec![plan.commit_sha.clone()];
        let reference = sanitize_tag(&plan.ref_name);
        if !reference.is_empty() && reference != plan.commit_sha {
            tags.push(reference);
        }
        tags
    }

    async fn upload_oci(&self, repository: &str, spec: &CheckedSpec) -> Result<UploadRecord, String> {
        let plan = &self.run.plan;
        let registry = &self.run.engine.registry;
        let pipeline = plan.pipeline.as_ref().expect("a pipeline");
        let annotations = BTreeMap::from([
            ("org.opencontainers.image.revision".to_string(), plan.commit_sha.clone()),
            ("org.opencontainers.image.source".to_string(), self.run.source.url.clone()),
            ("org.opencontainers.image.title".to_string(), pipeline.name.clone()),
            ("dev.pipewright.build".to_string(), plan.build_id.clone()),
            ("dev.pipewright.spec-digest".to_string(), spec.digest.clone()),
        ]);
        let artifact = Artifact {
            artifact_type: PIPELINE_ARTIFACT_TYPE.into(),
            layer_media_type: SPEC_MEDIA_TYPE.into(),
            data: spec.bytes.clone(),
            annotations,
            title: format!("{}.yaml", pipeline.name),
        };
        let tags = self.upload_tags();
        let first = format!("{repository}:{}", tags[0]);
        let digest = registry.push_artifact(&first, &artifact).await.map_err(|e| format!("oci `{first}`: {e}"))?;
        for tag in &tags[1..] {
            let target = format!("{repository}:{tag}");
            registry.copy(&first, &target).await.map_err(|e| format!("oci `{target}`: {e}"))?;
        }
        Ok(UploadRecord { destination: "oci".into(), uri: format!("{repository}@{digest}"), version: digest, tags })
    }

    async fn upload_kfp(&self, host: &str, pipeline: &str, spec: &CheckedSpec) -> Result<UploadRecord, String> {
        let plan = &self.run.plan;
        let token = upload::token_from_env(&["PIPEWRIGHT_KFP_TOKEN", "KF_PIPELINES_SA_TOKEN_PATH@file"]);
        let client = KfpClient::new(host, token);
        let description =
            format!("{} at {} (pipewright build {})", self.run.source.repo_full_name, plan.commit_sha, plan.build_id);
        let version = client
            .upload_version(pipeline, &plan.commit_sha, &description, &spec.bytes)
            .await
            .map_err(|e| format!("kfp `{host}`: {e}"))?;
        Ok(UploadRecord {
            destination: "kfp".into(),
            uri: format!("{host}/apis/v2beta1/pipelines/{}/versions/{}", version.pipeline_id, version.version_id),
            version: version.version_id,
            tags: vec![version.version_name],
        })
    }

    async fn upload_artifact_registry(
        &self,
        url: &str,
        name: &str,
        spec: &CheckedSpec,
    ) -> Result<UploadRecord, String> {
        let token = upload::token_from_env(&["PIPEWRIGHT_GOOGLE_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN"]);
        let client = ArtifactRegistryClient::new(url, token);
        let tags = self.upload_tags();
        let version = client
            .upload(&format!("{name}.yaml"), &spec.bytes, &tags)
            .await
            .map_err(|e| format!("artifactRegistry `{url}`: {e}"))?;
        Ok(UploadRecord { destination: "artifactRegistry".into(), uri: version.uri, version: version.version, tags })
    }
}

/// A branch name as a tag: characters outside `[A-Za-z0-9_.-]` become `-`, at most 128, not starting
/// with `.` or `-` (`feature/x` → `feature-x`).
pub fn sanitize_tag(name: &str) -> String {
    let mut tag: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' }).collect();
    while tag.starts_with(['.', '-']) {
        tag.remove(0);
    }
    tag.truncate(128);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_tags() {
        assert_eq!(sanitize_tag("main"), "main");
        assert_eq!(sanitize_tag("feature/new-model"), "feature-new-model");
        assert_eq!(sanitize_tag("-x"), "x");
        assert_eq!(sanitize_tag(""), "");
        assert!(crate::image_ref::valid_tag(&sanitize_tag(&"a/".repeat(100))));
    }
}
