//! The run phase (docs/SPEC.md §9): launch the checked pipeline on the configured backend, wait for it with a
//! deadline, and keep its state, tasks and metrics in the record. A run that fails fails the build.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::specs::CheckedSpec;
use super::{PhaseError, PhaseOutcome, Phases};
use crate::engine::Outcome;
use crate::plan::{RunBackend, RunPlan};
use crate::record::{TimeSpan, Warning};
use crate::runner::{
    LocalBackend, PipelineRunner, RunState, Submission, kfp_backend, local, spec_json, state_text, vertex_backend,
};

impl Phases<'_> {
    pub(super) async fn pipeline_run(
        &self,
        spec: &CheckedSpec,
        deadline: tokio::time::Instant,
        cancel: &CancellationToken,
    ) -> Result<((), String), PhaseOutcome> {
        let plan = &self.run.plan;
        let run = plan.run.as_ref().expect("the run phase runs only with `run:`");
        let submission = self.submission(run, spec).map_err(PhaseError::new)?;
        let until = match run.timeout {
            Some(timeout) => deadline.min(tokio::time::Instant::now() + timeout),
            None => deadline,
        };
        match &run.backend {
            RunBackend::Local => {
                let root = self.run.engine.store.root().join("runs");
                // An importer's local file comes from the build's own checkout, nowhere else on the host.
                let workspace = [self.run.workspace.root().to_path_buf()];
                let runner = local::LocalRunner::new(self.shared.docker.clone(), root, plan.build_id.clone())
                    .with_stop_grace(self.run.request.stop_grace)
                    .with_import_roots(&workspace)
                    .map_err(|e| PhaseError::new(crate::error_chain(&e)))?;
                let events = self.events.clone();
                let on_event: Arc<dyn Fn(local::RunEvent) + Send + Sync> = Arc::new(move |event| {
                    let (source, line) = match event {
                        local::RunEvent::TaskStarted { task } => (task, "started".to_string()),
                        local::RunEvent::TaskFinished { task, state, exit_code } => {
                            let code = exit_code.map(|c| format!(" (exit code {c})")).unwrap_or_default();
                            (task, format!("{state:?}{code}"))
                        }
                        local::RunEvent::Output { task, line } => (task, line),
                    };
                    let _ = events.send(crate::engine::BuildEvent::Output { source: format!("run/{source}"), line });
                });
                self.launch(&LocalBackend::new(runner, on_event), run, &submission, until, cancel).await
            }
            RunBackend::Kfp { host } => {
                let backend = kfp_backend(host, &self.credentials()).map_err(PhaseError::new)?;
                self.launch(&backend, run, &submission, until, cancel).await
            }
            RunBackend::Vertex { project, location, endpoint } => {
                let backend = vertex_backend(endpoint.as_deref(), project, location, &self.credentials())
                    .map_err(PhaseError::new)?;
                self.launch(&backend, run, &submission, until, cancel).await
            }
        }
    }

    async fn launch(
        &self,
        runner: &impl PipelineRunner,
        run: &RunPlan,
        submission: &Submission,
        until: tokio::time::Instant,
        cancel: &CancellationToken,
    ) -> Result<((), String), PhaseOutcome> {
        let timing = TimeSpan::started();
        let started = runner
            .start(submission)
            .await
            .map_err(|e| PhaseError::new(format!("cannot start the pipeline run on `{}`: {e}", runner.backend())))?;
        let mut record = crate::runner::started_record(runner.backend(), &started, submission);
        self.record(|b| b.run = Some(record.clone()));
        self.output("run", &format!("started {} run {}", runner.backend(), started.id));
        if !run.wait {
            return Ok(((), format!("started {} (not waiting)", started.id)));
        }
        let finished = runner
            .wait(&started, until, cancel)
            .await
            .map_err(|e| PhaseError::new(format!("pipeline run {}: {e}", started.id)))?;
        crate::runner::record_finished(&mut record, &finished, timing);
        record.metrics = if run.metrics.is_empty() {
            finished.metrics.clone()
        } else {
            finished.metrics.iter().filter(|(k, _)| run.metrics.contains(k)).map(|(k, v)| (k.clone(), *v)).collect()
        };
        let missing: Vec<&String> = run.metrics.iter().filter(|m| !record.metrics.contains_key(*m)).collect();
        let metrics = record.metrics.clone();
        self.record(|b| {
            b.run = Some(record);
            if !missing.is_empty() && finished.state == RunState::Succeeded {
                let names: Vec<&str> = missing.iter().map(|m| m.as_str()).collect();
                b.warnings.push(Warning {
                    text: format!("the run reported no metric named {}", names.join(", ")),
                    priority: "WARNING".into(),
                });
            }
        });
        let summary: Vec<String> = metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match finished.state {
            RunState::Succeeded | RunState::Skipped => Ok(((), format!("{} {}", started.id, summary.join(" ")))),
            RunState::Cancelled if finished.timed_out => Err(PhaseOutcome::Ended(Outcome::Timeout)),
            RunState::Cancelled if cancel.is_cancelled() => Err(PhaseOutcome::Ended(Outcome::Cancelled)),
            state => {
                let why = finished.error.unwrap_or_else(|| format!("it ended {}", state_text(state)));
                Err(PhaseError::new(format!("pipeline run {} failed: {why}", started.id)).into())
            }
        }
    }

    /// What every backend gets: the spec (as text and as JSON), parameters, and the uploads this build
    /// made (a KFP pipeline version, an Artifact Registry template) to run from.
    fn submission(&self, run: &RunPlan, spec: &CheckedSpec) -> Result<Submission, String> {
        let plan = &self.run.plan;
        let pipeline = plan.pipeline.as_ref().expect("a pipeline");
        let text = String::from_utf8(spec.bytes.clone()).map_err(|_| "the spec is not UTF-8".to_string())?;
        let json = spec_json(&text)?;
        let uploads = self.run.record.lock().expect("record lock").pipeline.clone().unwrap_or_default().uploads;
        let kfp_version = uploads.iter().find(|u| u.destination == "kfp").and_then(|u| {
            let rest = u.uri.split("/pipelines/").nth(1)?;
            let (pipeline_id, version_id) = rest.split_once("/versions/")?;
            Some((pipeline_id.to_string(), version_id.to_string()))
        });
        let template_uri = uploads.iter().find(|u| u.destination == "artifactRegistry").map(|u| u.uri.clone());
        let short = &plan.commit_sha[..plan.commit_sha.len().min(7)];
        let pipeline_root =
            run.pipeline_root.clone().or_else(|| json["defaultPipelineRoot"].as_str().map(str::to_string));
        Ok(Submission {
            display_name: format!("{}-{short}", pipeline.name),
            description: format!(
                "{} at {} (pipewright build {})",
                self.run.source.repo_full_name, plan.commit_sha, plan.build_id
            ),
            spec: json,
            spec_text: text,
            parameters: run.parameters.clone(),
            pipeline_root,
            kfp_version,
            template_uri,
            service_account: run.service_account.clone(),
            labels: BTreeMap::from([
                ("pipewright-build".to_string(), plan.build_id[..plan.build_id.len().min(36)].to_string()),
                ("git-sha".to_string(), short.to_string()),
            ]),
        })
    }
}
