//! The upload phase (SPEC §9): the checked spec goes to the local store always, then to every
//! destination of `pipeline.upload`. Each destination's answer (digest, version) is recorded.

use std::collections::BTreeMap;

use super::phases::{PhaseError, PhaseOutcome, Phases};
use super::specs::CheckedSpec;
use crate::record::UploadRecord;
use crate::upload::publish::{Publication, publish};

impl Phases<'_> {
    pub async fn upload(&self, spec: &CheckedSpec) -> Result<((), String), PhaseOutcome> {
        let plan = &self.run.plan;
        let pipeline = plan.pipeline.as_ref().expect("the upload runs only for a pipeline");
        let store = &self.run.engine.store;
        // The plan refused a name that is not a segment; this is where that is relied on.
        let name = crate::host_path::Segment::new(&pipeline.name)
            .map_err(|e| PhaseError::new(format!("`pipeline.name`: {}", crate::error_chain(&e))))?;
        let path = store
            .save_spec(&name, &plan.commit_sha, &spec.bytes, &spec.digest)
            .map_err(|e| PhaseError::new(crate::error_chain(&e)))?;
        let mut uploads = vec![UploadRecord {
            destination: "local".into(),
            uri: path.display().to_string(),
            version: spec.digest.clone(),
            tags: Vec::new(),
        }];
        let publication = self.publication(spec);
        if !self.trusted() && !pipeline.uploads.is_empty() {
            let why = format!(
                "the spec goes to the local store only for an untrusted build ({} destination{} not used)",
                pipeline.uploads.len(),
                if pipeline.uploads.len() == 1 { "" } else { "s" }
            );
            self.output("upload", &why);
            self.record(|b| b.warnings.push(crate::record::Warning { text: why.clone(), priority: "WARNING".into() }));
        }
        let destinations = if self.trusted() { pipeline.uploads.as_slice() } else { &[] };
        for destination in destinations {
            match publish(destination, &publication, &self.run.engine.registry, &self.credentials()).await {
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

    /// The spec under the build's names: tags commit and branch, KFP version named after the commit.
    fn publication(&self, spec: &CheckedSpec) -> Publication {
        let plan = &self.run.plan;
        let pipeline = plan.pipeline.as_ref().expect("a pipeline");
        let mut tags = vec![plan.commit_sha.clone()];
        let reference = sanitize_tag(&plan.ref_name);
        if !reference.is_empty() && reference != plan.commit_sha {
            tags.push(reference);
        }
        Publication {
            pipeline: pipeline.name.clone(),
            bytes: spec.bytes.clone(),
            digest: spec.digest.clone(),
            tags,
            version_name: plan.commit_sha.clone(),
            description: format!(
                "{} at {} (pipewright build {})",
                self.run.source.repo_full_name, plan.commit_sha, plan.build_id
            ),
            annotations: BTreeMap::from([
                ("org.opencontainers.image.revision".to_string(), plan.commit_sha.clone()),
                ("org.opencontainers.image.source".to_string(), self.run.source.url.clone()),
                ("org.opencontainers.image.title".to_string(), pipeline.name.clone()),
                ("dev.pipewright.build".to_string(), plan.build_id.clone()),
                ("dev.pipewright.spec-digest".to_string(), spec.digest.clone()),
            ]),
        }
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
