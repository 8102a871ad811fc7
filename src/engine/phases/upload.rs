//! The upload phase (docs/SPEC.md §9): the checked spec goes to the local store always, then to every
//! destination of `pipeline.upload`. Each destination's answer (digest, version) is recorded.

use std::collections::BTreeMap;

use super::specs::CheckedSpec;
use super::{PhaseError, PhaseOutcome, Phases};
use crate::publish::{Publication, publish};
use crate::record::UploadRecord;
use crate::tag::{Reserved, Tag};

impl Phases<'_> {
    pub(super) async fn upload(&self, spec: &CheckedSpec) -> Result<((), String), PhaseOutcome> {
        let plan = &self.run.plan;
        let pipeline = plan.pipeline.as_ref().expect("the upload runs only for a pipeline");
        let store = &self.run.engine.store;
        // The plan refused a name that is not a segment; this is where that is relied on.
        let name = crate::io::host_path::Segment::new(&pipeline.name)
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
        let released = self.released_environments().await?;
        let publication = self.publication(spec, &released);
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

    /// The environments that have a release in this data directory's database. A branch's build
    /// file may leave out an environment (`qa`) to free its name for a branch tag; the environments
    /// promotion has written stay reserved whatever the file says. Fails closed: without the database
    /// the build does not know which names promotion owns, so it publishes nothing.
    async fn released_environments(&self) -> Result<Vec<String>, PhaseError> {
        let db = crate::io::store::db::Database::open(self.run.engine.store.root()).await.map_err(|e| {
            PhaseError::new(format!(
                "cannot read which environments have releases (the release database): {}",
                crate::error_chain(&e)
            ))
        })?;
        let releases = db.environments().await.map_err(|e| {
            PhaseError::new(format!("cannot read which environments have releases: {}", crate::error_chain(&e)))
        })?;
        Ok(releases.into_iter().map(|r| r.environment).collect())
    }

    /// The spec under the build's names: tags commit and branch (never a reserved name), KFP version
    /// named after the commit.
    fn publication(&self, spec: &CheckedSpec, released: &[String]) -> Publication {
        let plan = &self.run.plan;
        let pipeline = plan.pipeline.as_ref().expect("a pipeline");
        // The branch tag shares the repository with promotion's `<env>` tags: the policy gives a
        // branch named like an environment (this file's, or one with a release) or like a commit a
        // tag that cannot collide.
        let reserved =
            Reserved::new(plan.environments.iter().map(|e| e.name.as_str()).chain(released.iter().map(String::as_str)));
        let mut tags = vec![Tag::commit(&plan.commit_sha)];
        tags.extend(Tag::branch(&plan.ref_name, &reserved));
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
