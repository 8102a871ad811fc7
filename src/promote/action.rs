//! The promotion action (docs/SPEC.md §11): check the rules, then move the environment's names onto exactly what
//! the build produced (registry-side manifest copies, never a rebuild), publish the spec under the
//! environment's names, launch the environment's run, and record who, when, why and what.
//!
//! Every promotion of one environment holds that environment's lock from the first read of "what is in
//! it now" to the release row and its note, so two promotions never interleave (the second sees the
//! first's release as the current one). The environment's `run` comes after, without the lock: a
//! remote run may take hours, and holding the lock for it would stall every other promotion,
//! rollback included (a rollback is what one wants while a bad run goes on). The run exercises the
//! release it was started for, by digest; a later release starts its own.
//!
//! Whose rules: the environment's rules are those of the build now in it (taken from that build's
//! record), or the promoted build's own when the environment is empty. A branch that loosens `prod` in
//! its build file therefore cannot use the looser rules to get in: new rules apply once a build carrying
//! them has entered under the old ones.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::policy::{self, Approval, BuildFacts, Facts, Refusal};
use crate::io::credentials::Credentials;
use crate::io::registry::Registry;
use crate::io::store::db::{ApprovalRow, AuditEntry, Database, DbError, Release, ReleaseDigests, now};
use crate::io::store::{Store, StoreError};
use crate::plan::Environment;
use crate::publish::{Publication, publish};
use crate::record::{Build, PromotionRecord, RunRecord, Status, UploadRecord};

/// How a release came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `pipewright promote` (or the API).
    Promote,
    /// An `auto: true` environment at the end of a build.
    Auto,
    /// `pipewright rollback`: the previous release again.
    Rollback,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Auto => "auto",
            Action::Rollback => "rollback",
        }
    }
}

/// Who asks, and why.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub name: String,
    pub comment: String,
}

pub use super::policy::UNVERIFIED;

impl Actor {
    /// The CLI's local identity (`$PIPEWRIGHT_USER`): whoever the shell says, so its name says so
    /// wherever it is kept. The rules compare people without the mark (`policy::same_person`).
    pub fn local(name: &str, comment: &str) -> Actor {
        Actor { name: format!("{}{UNVERIFIED}", name.trim()), comment: comment.to_string() }
    }
}

/// One name moved onto one digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    /// The component's name, or `spec`.
    pub what: String,
    /// `repository:tag`.
    pub reference: String,
    pub digest: String,
}

/// A promotion that happened.
#[derive(Clone, Debug)]
pub struct Promotion {
    pub release: Release,
    /// The build was already the release of the environment: nothing moved, nothing was recorded.
    pub unchanged: bool,
    pub tagged: Vec<Tagged>,
    pub uploads: Vec<UploadRecord>,
    pub run: Option<RunRecord>,
}

/// An approval that was counted.
#[derive(Clone, Debug)]
pub struct Approved {
    pub approvals: Vec<ApprovalRow>,
    pub required: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("`{name}` is not an environment of build {build} (its environments: {known})")]
    UnknownEnvironment { name: String, build: String, known: String },
    #[error("build {build} may not enter `{environment}`")]
    Refused { build: String, environment: String, refusals: Vec<Refusal> },
    #[error("`{environment}` has no earlier release to roll back to")]
    NothingToRollBack { environment: String },
    /// The rules held but moving the names failed part way; the environment keeps its previous release
    /// in the database and a retry moves every name again.
    #[error("promoting build {build} to `{environment}` failed: {message}")]
    Failed { build: String, environment: String, message: String },
    /// The approval or release happened (it is in the database; for a release the names moved) but the
    /// build's record could not be updated to show it.
    #[error(
        "the {what} of build {build} for `{environment}` is in the release database, but the build's record does not show it"
    )]
    NotRecorded {
        what: &'static str,
        build: String,
        environment: String,
        #[source]
        source: StoreError,
    },
}

impl PromoteError {
    /// The refusals, when the rules said no.
    pub fn refusals(&self) -> &[Refusal] {
        match self {
            PromoteError::Refused { refusals, .. } => refusals,
            _ => &[],
        }
    }
}

pub struct Promoter {
    store: Store,
    db: Database,
    registry: Registry,
    /// The tokens an environment's uploads and run may carry, each for one origin.
    credentials: Credentials,
    progress: Arc<dyn Fn(String) + Send + Sync>,
}

impl Promoter {
    pub fn new(store: Store, db: Database, registry: Registry) -> Promoter {
        Promoter { store, db, registry, credentials: Credentials::none(), progress: Arc::new(|_| {}) }
    }

    /// The operator's allow-list (the server config's `credentials:`, or `--credential`).
    pub fn with_credentials(mut self, credentials: Credentials) -> Promoter {
        self.credentials = credentials;
        self
    }

    /// Receives a line per thing done (`tagged …`, `uploaded …`).
    pub fn with_progress(mut self, progress: Arc<dyn Fn(String) + Send + Sync>) -> Promoter {
        self.progress = progress;
        self
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Promotes `build` (an id or its prefix) to `environment`.
    pub async fn promote(
        &self,
        build: &str,
        environment: &str,
        actor: &Actor,
        action: Action,
    ) -> Result<Promotion, PromoteError> {
        let id = self.store.resolve(build)?;
        let released = {
            let _lock = self.store.lock(&lock_name(environment)).await?;
            let record = self.store.load(&id)?;
            let current = self.db.current(environment).await?;
            self.promote_locked(&record, environment, actor, action, current).await?
        };
        self.run_released(released, environment, actor).await
    }

    /// Promotes the build of the release before the current one of `environment` again.
    pub async fn rollback(&self, environment: &str, actor: &Actor) -> Result<Promotion, PromoteError> {
        let released = {
            let _lock = self.store.lock(&lock_name(environment)).await?;
            let releases = self.db.releases(environment).await?;
            let nothing = || PromoteError::NothingToRollBack { environment: environment.to_string() };
            let current = releases.first().ok_or_else(nothing)?;
            let target = releases.iter().skip(1).find(|r| r.build_id != current.build_id).ok_or_else(nothing)?;
            let record = self.store.load(&target.build_id)?;
            self.promote_locked(&record, environment, actor, Action::Rollback, Some(current.clone())).await?
        };
        self.run_released(released, environment, actor).await
    }

    /// After the lock: the environment's `run` of a new release, if it has one.
    async fn run_released(
        &self,
        released: Released,
        environment: &str,
        actor: &Actor,
    ) -> Result<Promotion, PromoteError> {
        let Released { mut promotion, run, record } = released;
        if let Some(plan) = run {
            promotion.run = Some(self.environment_run(&record, environment, &plan, actor).await?);
        }
        Ok(promotion)
    }

    /// Every `auto: true` environment of a finished build, in the order of the build file; a refusal is
    /// recorded and the next environment is still tried (an `after:` chain stops by itself).
    pub async fn auto(&self, build: &Build) -> Vec<(String, Result<Promotion, PromoteError>)> {
        let actor = Actor { name: AUTO_ACTOR.into(), comment: "auto: true".into() };
        let mut results = Vec::new();
        // Names first: an iterator adapter held across an await makes the future not `Send`.
        let names: Vec<String> = build.environments.iter().filter(|e| e.auto).map(|e| e.name.clone()).collect();
        for name in names {
            let result = self.promote(&build.id, &name, &actor, Action::Auto).await;
            results.push((name, result));
        }
        results
    }

    /// Records `actor`'s approval of `build` for `environment`, if the rules let them approve.
    pub async fn approve(&self, build: &str, environment: &str, actor: &Actor) -> Result<Approved, PromoteError> {
        let id = self.store.resolve(build)?;
        let record = self.store.load(&id)?;
        let current = self.db.current(environment).await?;
        let rules = self.rules(&record, environment, current.as_ref())?;
        let facts = facts(&record);
        let audit = |result: &str, detail: String| AuditEntry {
            seq: 0,
            at: now(),
            actor: actor.name.clone(),
            action: "approve".into(),
            environment: environment.to_string(),
            build_id: record.id.clone(),
            commit_sha: facts.commit.clone(),
            result: result.into(),
            detail,
        };
        if let Err(refusal) = policy::may_approve(&rules, &facts, &actor.name) {
            self.db.audit(&audit("refused", refusal.to_string())).await?;
            self.note(&record.id, environment, "approval refused", actor, &refusal.to_string()).await?;
            return Err(PromoteError::Refused {
                build: record.id.clone(),
                environment: environment.to_string(),
                refusals: vec![refusal],
            });
        }
        let row = ApprovalRow {
            build_id: record.id.clone(),
            environment: environment.to_string(),
            approver: actor.name.clone(),
            comment: actor.comment.clone(),
            at: now(),
        };
        self.db.add_approval(&row, &audit("ok", actor.comment.clone())).await?;
        self.note(&record.id, environment, "approved", actor, &actor.comment).await.map_err(|source| {
            PromoteError::NotRecorded {
                what: "approval",
                build: record.id.clone(),
                environment: environment.to_string(),
                source,
            }
        })?;
        let approvals = self.db.approvals(&record.id, environment).await?;
        Ok(Approved { approvals, required: rules.approval.map_or(0, |a| a.required) })
    }

    async fn promote_locked(
        &self,
        record: &Build,
        environment: &str,
        actor: &Actor,
        action: Action,
        current: Option<Release>,
    ) -> Result<Released, PromoteError> {
        let rules = self.rules(record, environment, current.as_ref())?;
        let facts = facts(record);
        if action != Action::Rollback
            && let Some(current) = current.as_ref().filter(|c| c.build_id == record.id)
        {
            let promotion = Promotion {
                release: current.clone(),
                unchanged: true,
                tagged: Vec::new(),
                uploads: Vec::new(),
                run: None,
            };
            return Ok(Released { promotion, run: None, record: record.clone() });
        }
        // `improves` compares with the release being replaced; a rollback goes back to a release that
        // cleared its gates when it first entered, so it is not held against the one it replaces.
        let current_facts = match (&current, action) {
            (Some(c), Action::Promote | Action::Auto) => Some(self.store.load(&c.build_id).map(|b| self::facts(&b))?),
            _ => None,
        };
        let been_in = self.db.been_in(&record.id).await?;
        let approvals: Vec<Approval> = self
            .db
            .approvals(&record.id, environment)
            .await?
            .into_iter()
            .map(|a| Approval { approver: a.approver, comment: a.comment })
            .collect();
        let checked = policy::check(
            &rules,
            &Facts {
                build: &facts,
                current: current_facts.as_ref(),
                been_in: &been_in,
                approvals: &approvals,
                promoter: &actor.name,
            },
        );
        let audit = |result: &str, detail: String| AuditEntry {
            seq: 0,
            at: now(),
            actor: actor.name.clone(),
            action: action.as_str().into(),
            environment: environment.to_string(),
            build_id: record.id.clone(),
            commit_sha: facts.commit.clone(),
            result: result.into(),
            detail,
        };
        if let Err(refusals) = checked {
            let detail = refusals.iter().map(Refusal::to_string).collect::<Vec<_>>().join("; ");
            self.db.audit(&audit("refused", detail.clone())).await?;
            self.note(&record.id, environment, "refused", actor, &detail).await?;
            return Err(PromoteError::Refused {
                build: record.id.clone(),
                environment: environment.to_string(),
                refusals,
            });
        }

        let moved = self.move_names(record, &rules).await;
        let (tagged, uploads, digests) = match moved {
            Ok(moved) => moved,
            Err(message) => {
                self.db.audit(&audit("failed", message.clone())).await?;
                self.note(&record.id, environment, "failed", actor, &message).await?;
                return Err(PromoteError::Failed {
                    build: record.id.clone(),
                    environment: environment.to_string(),
                    message,
                });
            }
        };
        let mut release = Release {
            seq: 0,
            environment: environment.to_string(),
            build_id: record.id.clone(),
            commit_sha: facts.commit.clone(),
            digests,
            promoted_by: actor.name.clone(),
            promoted_at: now(),
            comment: actor.comment.clone(),
            action: action.as_str().into(),
            previous_build: current.as_ref().map(|c| c.build_id.clone()),
        };
        let detail = match &release.previous_build {
            Some(previous) => format!("{}; replaces build {previous}", actor.comment),
            None => actor.comment.clone(),
        };
        release.seq = self.db.add_release(&release, &audit("ok", detail)).await?;
        let result = if action == Action::Rollback { "rolled back" } else { "promoted" };
        self.note(&record.id, environment, result, actor, &actor.comment).await.map_err(|source| {
            PromoteError::NotRecorded {
                what: if action == Action::Rollback { "rollback" } else { "promotion" },
                build: record.id.clone(),
                environment: environment.to_string(),
                source,
            }
        })?;
        (self.progress)(format!("build {} is the release of `{environment}`", short(&record.id)));

        // The environment's run comes after the release (and after the lock, `run_released`): the
        // names have moved, and the run exercises what is now in the environment. Its outcome is
        // recorded, not a reason to undo the release.
        let promotion = Promotion { release, unchanged: false, tagged, uploads, run: None };
        Ok(Released { promotion, run: rules.run.clone(), record: record.clone() })
    }

    /// The rules `environment` is entered under (see the module's note on whose rules).
    fn rules(&self, record: &Build, environment: &str, current: Option<&Release>) -> Result<Environment, PromoteError> {
        let from_current = match current {
            Some(c) if c.build_id != record.id => {
                let owner = self.store.load(&c.build_id)?;
                owner.environments.into_iter().find(|e| e.name == environment)
            }
            _ => None,
        };
        from_current.or_else(|| record.environments.iter().find(|e| e.name == environment).cloned()).ok_or_else(|| {
            let known: Vec<&str> = record.environments.iter().map(|e| e.name.as_str()).collect();
            PromoteError::UnknownEnvironment {
                name: environment.to_string(),
                build: record.id.clone(),
                known: if known.is_empty() { "none".into() } else { known.join(", ") },
            }
        })
    }

    /// Tags every component image and the spec artifact with `<env>` and `<env>-<COMMIT_SHA>`, then
    /// publishes the spec to the environment's destinations. Errors say what had already moved.
    async fn move_names(
        &self,
        record: &Build,
        rules: &Environment,
    ) -> Result<(Vec<Tagged>, Vec<UploadRecord>, ReleaseDigests), String> {
        let env = &rules.name;
        let sha = record.commit.as_ref().map(|c| c.sha.clone()).unwrap_or_default();
        // The one caller that asks for the reserved environment tags.
        let tags = crate::tag::Tag::environment(env, &sha);
        let mut tagged = Vec::new();
        let mut digests = ReleaseDigests::default();
        let mut docker = None;
        for c in &record.components {
            if c.status != Status::Success || c.digest.is_empty() {
                return Err(format!("component `{}` has no image in this build", c.name));
            }
            let repository = c.image.rsplit_once(':').map_or(c.image.as_str(), |(repo, _)| repo);
            for tag in &tags {
                let reference = format!("{repository}:{tag}");
                if c.pushed {
                    let digest = self
                        .registry
                        .copy(&format!("{repository}@{}", c.digest), &reference)
                        .await
                        .map_err(|e| partial(&tagged, &[], format!("cannot tag `{reference}`: {e}")))?;
                    if digest != c.digest {
                        return Err(partial(
                            &tagged,
                            &[],
                            format!("`{reference}` came out as {digest}, not the build's {}", c.digest),
                        ));
                    }
                } else {
                    if docker.is_none() {
                        docker = Some(crate::io::docker::Docker::connect().await.map_err(|e| e.to_string())?);
                    }
                    let engine = docker.as_ref().expect("connected above");
                    engine
                        .tag(&c.digest, repository, tag.as_str())
                        .await
                        .map_err(|e| partial(&tagged, &[], format!("cannot tag `{reference}`: {e}")))?;
                }
                (self.progress)(format!("tagged {reference} = {}", c.digest));
                tagged.push(Tagged { what: c.name.clone(), reference, digest: c.digest.clone() });
            }
            digests.components.insert(c.name.clone(), c.digest.clone());
        }

        let Some(pipeline) = record.pipeline.as_ref().filter(|p| !p.spec_digest.is_empty()) else {
            return Ok((tagged, Vec::new(), digests));
        };
        digests.spec = pipeline.spec_digest.clone();
        let oci: Vec<&UploadRecord> = pipeline.uploads.iter().filter(|u| u.destination == "oci").collect();
        for upload in oci {
            let Some((repository, digest)) = upload.uri.rsplit_once('@') else { continue };
            for tag in &tags {
                let reference = format!("{repository}:{tag}");
                let copied = self
                    .registry
                    .copy(&upload.uri, &reference)
                    .await
                    .map_err(|e| partial(&tagged, &[], format!("cannot tag `{reference}`: {e}")))?;
                if copied != digest {
                    return Err(partial(&tagged, &[], format!("`{reference}` came out as {copied}, not {digest}")));
                }
                (self.progress)(format!("tagged {reference} = {digest}"));
                tagged.push(Tagged { what: "spec".into(), reference, digest: digest.to_string() });
            }
            digests.spec_artifacts.insert(repository.to_string(), digest.to_string());
        }

        let mut uploads = Vec::new();
        let destinations: Vec<_> = rules
            .upload
            .iter()
            .filter(|d| !matches!(d, crate::plan::UploadPlan::Oci(repo) if digests.spec_artifacts.contains_key(repo)))
            .collect();
        if destinations.is_empty() {
            return Ok((tagged, uploads, digests));
        }
        let blob = self
            .store
            .recorded_spec(&pipeline.name, &pipeline.spec_digest)
            .map_err(|e| partial(&tagged, &[], crate::error_chain(&e)))?;
        let bytes = tokio::fs::read(&blob)
            .await
            .map_err(|e| partial(&tagged, &[], format!("cannot read the build's spec `{}`: {e}", blob.display())))?;
        let publication = Publication {
            pipeline: pipeline.name.clone(),
            bytes,
            digest: pipeline.spec_digest.clone(),
            tags: tags.to_vec(),
            version_name: format!("{env}-{sha}"),
            description: format!("{} in {env} (pipewright build {})", pipeline.name, record.id),
            annotations: [
                ("org.opencontainers.image.revision".to_string(), sha.clone()),
                ("org.opencontainers.image.title".to_string(), pipeline.name.clone()),
                ("dev.pipewright.build".to_string(), record.id.clone()),
                ("dev.pipewright.environment".to_string(), env.clone()),
                ("dev.pipewright.spec-digest".to_string(), pipeline.spec_digest.clone()),
            ]
            .into(),
        };
        for destination in destinations {
            let upload = publish(destination, &publication, &self.registry, &self.credentials)
                .await
                .map_err(|e| partial(&tagged, &uploads, e))?;
            (self.progress)(format!("uploaded {} {} {}", upload.destination, upload.uri, upload.version));
            if upload.destination == "oci"
                && let Some((repository, digest)) = upload.uri.rsplit_once('@')
            {
                digests.spec_artifacts.insert(repository.to_string(), digest.to_string());
            }
            uploads.push(upload);
        }
        Ok((tagged, uploads, digests))
    }

    /// Launches the environment's `run:` on the promoted spec and records how it went.
    async fn environment_run(
        &self,
        record: &Build,
        environment: &str,
        plan: &crate::plan::RunPlan,
        actor: &Actor,
    ) -> Result<RunRecord, PromoteError> {
        let pipeline = record.pipeline.as_ref().filter(|p| !p.spec_digest.is_empty());
        let Some(pipeline) = pipeline else {
            let message = "the environment has a `run` but the build has no pipeline spec".to_string();
            return Ok(RunRecord { state: "FAILED".into(), error: Some(message), ..RunRecord::default() });
        };
        let request = crate::runner::RunSpecRequest {
            spec_path: self.store.recorded_spec(&pipeline.name, &pipeline.spec_digest)?,
            run: plan.clone(),
            data_dir: self.store.root().to_path_buf(),
            credentials: self.credentials.clone(),
            // The build's checkout is gone: an environment's run imports no local file.
            import_roots: Vec::new(),
        };
        let progress = self.progress.clone();
        let on_output: Arc<dyn Fn(String, String) + Send + Sync> =
            Arc::new(move |task, line| progress(format!("run {task}: {line}")));
        let run = match crate::runner::run_spec(&request, &CancellationToken::new(), on_output).await {
            Ok(run) => run,
            Err(e) => RunRecord { state: "FAILED".into(), error: Some(crate::error_chain(&e)), ..RunRecord::default() },
        };
        let detail = match &run.error {
            Some(error) => format!("run {} {}: {error}", run.id, run.state),
            None => format!("run {} {}", run.id, run.state),
        };
        let entry = AuditEntry {
            seq: 0,
            at: now(),
            actor: actor.name.clone(),
            action: "run".into(),
            environment: environment.to_string(),
            build_id: record.id.clone(),
            commit_sha: record.commit.as_ref().map(|c| c.sha.clone()).unwrap_or_default(),
            result: if run.state == "SUCCEEDED" || run.state == "PENDING" { "ok" } else { "failed" }.into(),
            detail: detail.clone(),
        };
        self.db.audit(&entry).await?;
        self.note(&record.id, environment, "run", actor, &detail).await?;
        Ok(run)
    }

    /// Appends to the build record's `promotions`, through the record's one write path
    /// (src/io/store/records.rs): two environments may be promoting the same build at once, and the build
    /// may still be running, its engine saving its own view every half second; none of them loses the
    /// note. A note that cannot be written fails the promotion's call.
    async fn note(
        &self,
        build_id: &str,
        environment: &str,
        result: &str,
        actor: &Actor,
        detail: &str,
    ) -> Result<(), StoreError> {
        let note = PromotionRecord {
            environment: environment.to_string(),
            result: result.to_string(),
            by: actor.name.clone(),
            at: now(),
            detail: detail.to_string(),
        };
        self.store.update(build_id, move |record| record.promotions.push(note)).await.map(drop)
    }
}

/// A failure part way, with what had already moved (a retry moves it all again).
fn partial(tagged: &[Tagged], uploads: &[UploadRecord], message: String) -> String {
    let done: Vec<&str> =
        tagged.iter().map(|t| t.reference.as_str()).chain(uploads.iter().map(|u| u.uri.as_str())).collect();
    if done.is_empty() { message } else { format!("{message} (already moved: {})", done.join(", ")) }
}

/// A release made under the lock, with the run still to start.
struct Released {
    promotion: Promotion,
    run: Option<crate::plan::RunPlan>,
    record: Build,
}

/// Who `auto: true` promotions are recorded as.
pub const AUTO_ACTOR: &str = "pipewright (auto)";

fn lock_name(environment: &str) -> String {
    // Environment names are tags ([A-Za-z0-9_-]); anything else cannot be a file name part anyway.
    let safe: String =
        environment.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("env-{safe}")
}

/// What the rules look at, from a build's record.
pub fn facts(record: &Build) -> BuildFacts {
    let commit = record.commit.clone().unwrap_or_default();
    BuildFacts {
        id: record.id.clone(),
        succeeded: record.status == Status::Success,
        branch: commit.branch,
        tag: commit.tag,
        commit: commit.sha,
        author_name: commit.author_name,
        author_email: commit.author_email,
        untrusted: record.trigger.as_ref().is_some_and(|t| t.fork)
            || record.trust.as_ref().is_some_and(|t| !t.level.is_trusted()),
        metrics: record.run.as_ref().map(|r| r.metrics.clone()).unwrap_or_default(),
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}
