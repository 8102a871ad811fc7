//! The specs, compile and check phases (docs/SPEC.md §7, §8): point every component spec at exactly the image
//! this build made, run `pipeline.compile`, then check the compiled (or committed) pipeline spec names
//! only this build's images.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::steps::{self, StepKind, StepsContext};
use super::{PhaseError, PhaseOutcome, Phases};
use crate::engine::Outcome;
use crate::kfp::{self, ImageTarget, Rewrite};
use crate::record::{PipelineRecord, SpecRecord, Status, StepRecord};

/// The compiled spec, read and checked.
pub(super) struct CheckedSpec {
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
}

impl Phases<'_> {
    /// The reference each component's images must become: `repo:sha@sha256:…` with a registry,
    /// `name:sha` without (docs/SPEC.md §7).
    fn targets(&self) -> Vec<ImageTarget> {
        let plan = &self.run.plan;
        let record = self.run.record.lock().expect("record lock");
        plan.components
            .iter()
            .filter_map(|c| {
                let built = record.components.iter().find(|r| r.name == c.name)?;
                let reference = match self.registry() {
                    Some(_) => format!("{}@{}", built.image, built.digest),
                    None => built.image.clone(),
                };
                Some(ImageTarget { component: c.name.clone(), repository: c.repository.clone(), reference })
            })
            .collect()
    }

    /// Rewrites each component's spec files in the workspace.
    pub async fn rewrite_specs(&self) -> Result<(Vec<ImageTarget>, String), PhaseOutcome> {
        let plan = &self.run.plan;
        let targets = self.targets();
        let mut files = 0;
        for component in &plan.components {
            let Some(target) = targets.iter().find(|t| t.component == component.name) else { continue };
            for spec in &component.specs {
                let rewrite = self
                    .rewrite_file(spec, |text, label| kfp::rewrite_component(text, label, target))
                    .await
                    .map_err(|e| PhaseError::new(format!("component `{}`: {e}", component.name)))?;
                files += usize::from(!rewrite.changes.is_empty());
            }
        }
        Ok((targets, format!("{files} spec file{} rewritten", if files == 1 { "" } else { "s" })))
    }

    /// Reads a workspace file, rewrites it, writes it back and records every change.
    async fn rewrite_file(
        &self,
        path: &str,
        rewrite: impl FnOnce(&str, &str) -> Result<Rewrite, kfp::SpecError>,
    ) -> Result<Rewrite, String> {
        let label = self.label(path);
        let host = self.run.workspace.existing(path).map_err(|e| e.to_string())?;
        let text = tokio::fs::read_to_string(&host).await.map_err(|e| format!("cannot read `{label}`: {e}"))?;
        let result = rewrite(&text, &label).map_err(|e| e.to_string())?;
        if result.text != text {
            tokio::fs::write(&host, &result.text).await.map_err(|e| format!("cannot write `{label}`: {e}"))?;
        }
        for change in &result.changes {
            self.output("specs", &format!("{label}:{}: {} → {}", change.line, change.old, change.new));
        }
        self.record(|b| {
            b.specs.extend(result.changes.iter().map(|c| SpecRecord {
                file: label.clone(),
                component: c.component.clone(),
                path: c.path.clone(),
                line: c.line,
                old_image: c.old.clone(),
                new_image: c.new.clone(),
            }))
        });
        Ok(result)
    }

    /// A workspace path as the user knows it: relative to the repository.
    fn label(&self, path: &str) -> String {
        match &self.run.source.dir {
            Some(dir) => format!("{dir}/{path}"),
            None => path.to_string(),
        }
    }

    /// Runs `pipeline.compile` as a step of its own (same semantics as the build's steps).
    pub async fn compile(
        &self,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
    ) -> Result<((), String), PhaseOutcome> {
        let plan = &self.run.plan;
        let Some(step) = plan.pipeline.as_ref().and_then(|p| p.compile.clone()) else {
            return Ok(((), "nothing to compile".into()));
        };
        let number = plan.steps.len();
        self.record(|b| {
            let pipeline = b.pipeline.get_or_insert_with(PipelineRecord::default);
            pipeline.compile = Some(StepRecord {
                name: step.image.clone(),
                args: step.args.clone(),
                env: step.env.clone(),
                dir: step.dir.clone(),
                id: "pipeline.compile".into(),
                wait_for: Vec::new(),
                entrypoint: step.entrypoint.clone().unwrap_or_default(),
                secret_env: step.secret_env.clone(),
                volumes: Vec::new(),
                timeout: step.timeout.map(crate::record::duration_text),
                script: step.script.clone(),
                allow_failure: false,
                allow_exit_codes: Vec::new(),
                status: Status::Queued,
                timing: None,
                pull_timing: None,
                exit_code: None,
            })
        });
        let logs = self.compile_logs().map_err(|e| PhaseError::new(format!("cannot open the compile log: {e}")))?;
        let ctx = Arc::new(StepsContext::new(self.shared.clone(), StepKind::Compile { number }, vec![step], logs));
        match steps::run(ctx, deadline, cancel.clone()).await {
            Outcome::Success => Ok(((), "compiled".into())),
            Outcome::Failure { detail, .. } => {
                Err(PhaseError::new(format!("pipeline.compile failed: {detail}")).into())
            }
            other => Err(PhaseOutcome::Ended(other)),
        }
    }

    fn compile_logs(&self) -> std::io::Result<steps::Logs> {
        let store = &self.run.engine.store;
        let id = &self.run.plan.build_id;
        let combined = std::fs::OpenOptions::new().append(true).create(true).open(store.log_path(id))?;
        let compile = std::fs::File::create(self.log_file("compile.log"))?;
        Ok(steps::Logs { combined, steps: vec![compile] })
    }

    /// Reads the pipeline spec; a committed one (no compile) is rewritten first, like a component spec.
    /// Then the IR check: it parses, its schema version is known, and it names only this build's images.
    pub(super) async fn check_spec(&self, targets: &[ImageTarget]) -> Result<(CheckedSpec, String), PhaseOutcome> {
        let pipeline = self.run.plan.pipeline.as_ref().expect("the check runs only for a pipeline");
        let label = self.label(&pipeline.spec);
        if pipeline.compile.is_none() && !targets.is_empty() {
            self.rewrite_file(&pipeline.spec, |text, label| kfp::rewrite_pipeline(text, label, targets))
                .await
                .map_err(|e| PhaseError::new(format!("pipeline.spec: {e}")))?;
        }
        let host = self.run.workspace.existing(&pipeline.spec).map_err(|e| {
            let after = if pipeline.compile.is_some() { " after `pipeline.compile` ran" } else { "" };
            PhaseError::new(format!("pipeline.spec: {e}{after}"))
        })?;
        let bytes = tokio::fs::read(&host).await.map_err(|e| PhaseError::new(format!("cannot read `{label}`: {e}")))?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| PhaseError::new(format!("`{label}` is not UTF-8 text, so it is no pipeline spec")))?;
        let summary = kfp::check_pipeline(&text, &label, targets).map_err(|e| PhaseError::new(e.to_string()))?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let summary_json = serde_json::to_value(&summary).unwrap_or_default();
        let executors = summary.executors.len();
        self.record(|b| {
            let record = b.pipeline.get_or_insert_with(PipelineRecord::default);
            record.name = pipeline.name.clone();
            record.spec = label.clone();
            record.spec_digest = digest.clone();
            record.summary = summary_json;
        });
        Ok((CheckedSpec { bytes, digest }, format!("{label}: {executors} executors, images current")))
    }
}
