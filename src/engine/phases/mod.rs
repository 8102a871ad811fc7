//! The phases after the steps (docs/SPEC.md §1): component images, Cloud Build `images:`, spec rewriting,
//! compile and check, upload. Each phase either completes or fails the build with a detail that names
//! what to fix; a failed phase stops the build before anything is uploaded.

pub(super) mod components;
mod pipeline_run;
mod specs;
pub(super) mod steps;
mod upload;

use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{BuildEvent, BuildRun, Outcome};
use crate::io::credentials::Credentials;
use crate::record::{Build, FailureType};
use steps::Shared;

/// What the phases after the steps share.
pub(super) struct Phases<'a> {
    pub run: &'a BuildRun<'a>,
    pub events: mpsc::UnboundedSender<BuildEvent>,
    pub shared: Shared,
}

/// Why a phase failed; becomes the build's `failureInfo`.
#[derive(Debug)]
pub(super) struct PhaseError {
    pub kind: FailureType,
    pub detail: String,
}

impl PhaseError {
    pub fn new(detail: impl Into<String>) -> PhaseError {
        PhaseError { kind: FailureType::FailureTypeUnspecified, detail: detail.into() }
    }

    pub fn push(detail: impl Into<String>) -> PhaseError {
        PhaseError { kind: FailureType::PushFailed, detail: detail.into() }
    }
}

impl Phases<'_> {
    /// Runs the phases in order, each timed in the record.
    pub async fn artifacts(&self, deadline: tokio::time::Instant, cancel: &CancellationToken) -> Outcome {
        let plan = &self.run.plan;
        let result = async {
            if !plan.components.is_empty() {
                self.phase("components", "COMPONENTS", self.components()).await?;
            }
            if !plan.images.is_empty() {
                if self.trusted() {
                    self.phase("images", "PUSH", self.push_images()).await?;
                } else {
                    self.withheld("images", "`images:` are not pushed for an untrusted build");
                }
            }
            let targets = self.phase("specs", "SPECS", self.rewrite_specs()).await?;
            if let Some(pipeline) = &plan.pipeline {
                if pipeline.compile.is_some() {
                    self.phase("compile", "COMPILE", self.compile(deadline, cancel)).await?;
                }
                let spec = self.phase("check", "CHECK", self.check_spec(&targets)).await?;
                self.phase("upload", "UPLOAD", self.upload(&spec)).await?;
                if plan.run.is_some() {
                    if self.trusted() {
                        self.phase("run", "RUN", self.pipeline_run(&spec, deadline, cancel)).await?;
                    } else {
                        self.withheld("run", "the pipeline is not run for an untrusted build");
                    }
                }
            }
            Ok::<(), PhaseOutcome>(())
        }
        .await;
        match result {
            Ok(()) => Outcome::Success,
            Err(PhaseOutcome::Failed(e)) => Outcome::Failure { kind: e.kind, detail: e.detail },
            Err(PhaseOutcome::Ended(outcome)) => outcome,
        }
    }

    async fn phase<T>(
        &self,
        name: &'static str,
        timing: &str,
        work: impl std::future::Future<Output = Result<(T, String), PhaseOutcome>>,
    ) -> Result<T, PhaseOutcome> {
        let _ = self.events.send(BuildEvent::Phase { name });
        let result = self.run.timed(timing, work).await;
        let (ok, detail) = match &result {
            Ok((_, detail)) => (true, detail.clone()),
            Err(PhaseOutcome::Failed(e)) => (false, e.detail.clone()),
            Err(PhaseOutcome::Ended(outcome)) => (false, format!("{outcome:?}")),
        };
        let _ = self.events.send(BuildEvent::PhaseDone { name, ok, detail });
        result.map(|(value, _)| value)
    }

    /// Whether the build may publish and launch: images pushed, specs uploaded beyond the local store,
    /// pipelines run (crates/core/src/trust.rs).
    pub fn trusted(&self) -> bool {
        self.run.request.trust.level.is_trusted()
    }

    /// The tokens this build's uploads and runs may carry: none for an untrusted build, whatever the
    /// server holds (it publishes and runs nothing either; this keeps it so if that changes).
    pub fn credentials(&self) -> Credentials {
        if self.trusted() { self.run.engine.credentials.clone() } else { Credentials::none() }
    }

    /// The registry component images go to: none for an untrusted build, whose images stay in its
    /// executor's engine and go with the build.
    pub fn registry(&self) -> Option<&String> {
        self.run.plan.registry.as_ref().filter(|_| self.trusted())
    }

    /// A phase an untrusted build does not get: said in the log and kept as a warning in the record.
    pub fn withheld(&self, name: &'static str, why: &str) {
        let _ = self.events.send(BuildEvent::Phase { name });
        let _ = self.events.send(BuildEvent::PhaseDone { name, ok: true, detail: format!("skipped: {why}") });
        self.record(|b| b.warnings.push(crate::record::Warning { text: why.to_string(), priority: "WARNING".into() }));
    }

    pub fn record(&self, f: impl FnOnce(&mut Build)) {
        let mut record = self.run.record.lock().expect("record lock");
        f(&mut record);
    }

    /// A line about the phase's work (build output, an upload), for the terminal and the build log.
    pub fn output(&self, source: &str, line: &str) {
        let _ = self.events.send(BuildEvent::Output { source: source.to_string(), line: line.to_string() });
    }

    pub fn log_file(&self, name: &str) -> PathBuf {
        self.run.engine.store.build_dir(&self.run.plan.build_id).join("logs").join(name)
    }
}

/// How a phase ends when it does not succeed: a failure of the build, or the build's end for another
/// reason (timeout or cancel while the compile step ran).
#[derive(Debug)]
pub(super) enum PhaseOutcome {
    Failed(PhaseError),
    Ended(Outcome),
}

impl From<PhaseError> for PhaseOutcome {
    fn from(e: PhaseError) -> PhaseOutcome {
        PhaseOutcome::Failed(e)
    }
}
