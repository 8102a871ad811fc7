//! The images phase: one image per pipeline component, tagged with the commit SHA, built only when its
//! context changed (docs/SPEC.md §6); then Cloud Build's `images:` are pushed.
//!
//! Reuse: an image built by pipewright carries the label `pipewright.context-hash=<hash>` and, in a
//! registry, the tag `ctx-<hash>`. If that tag exists and its config has the label, the commit tag is
//! added by copying the manifest inside the registry: no pull, no build, the same digest. Without a
//! registry the local engine is searched by label instead.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;

use futures_util::StreamExt;

use super::{PhaseError, PhaseOutcome, Phases};
use crate::image_ref::ImageRef;
use crate::io::docker::{BuildSpec, Docker, DockerError, PushAuth};
use crate::io::image::{self, ImageContext};
use crate::io::registry::LabelCache;
use crate::plan::ComponentPlan;
use crate::record::{BuiltImage, ComponentRecord, Status, TimeSpan, Timestamp};

pub const HASH_LABEL: &str = "pipewright.context-hash";
pub const BUILD_LABEL: &str = "pipewright.build";
pub const COMMIT_LABEL: &str = "pipewright.commit";
pub const COMPONENT_LABEL: &str = "pipewright.component";

impl Phases<'_> {
    /// Builds or reuses every component image. Hashing and reuse checks are cheap and run side by
    /// side; builds run `--jobs` at a time.
    pub async fn components(&self) -> Result<((), String), PhaseOutcome> {
        const CHECKS_AT_ONCE: usize = 32;
        let plan = &self.run.plan;
        let builds = tokio::sync::Semaphore::new(self.run.request.jobs.max(1));
        let base_ids = BaseIds::default();
        // The futures are made before the stream: a closure inside the stream would make this future
        // not `Send` (rustc's higher-ranked lifetime limitation), and the server spawns builds.
        let checks: Vec<_> = plan.components.iter().map(|c| self.component(c, &builds, &base_ids)).collect();
        let results: Vec<Result<ComponentRecord, PhaseError>> =
            futures_util::stream::iter(checks).buffered(CHECKS_AT_ONCE).collect().await;
        let mut records = Vec::new();
        let mut errors = Vec::new();
        for result in results {
            match result {
                Ok(record) => records.push(record),
                Err(e) => errors.push(e),
            }
        }
        let built = records.iter().filter(|r| !r.reused).count();
        let reused = records.len() - built;
        self.record(|b| b.components = records);
        if let Some(first) = errors.into_iter().next() {
            return Err(first.into());
        }
        Ok(((), format!("{built} built, {reused} reused")))
    }

    async fn component(
        &self,
        c: &ComponentPlan,
        builds: &tokio::sync::Semaphore,
        base_ids: &BaseIds,
    ) -> Result<ComponentRecord, PhaseError> {
        let mut timing = TimeSpan::started();
        let fail = |message: String| PhaseError::new(format!("component `{}`: {message}", c.name));
        let context_dir = self.run.workspace.existing(&c.context).map_err(|e| fail(format!("context: {e}")))?;
        let dockerfile = c.dockerfile.clone();
        let dir = context_dir.clone();
        let context = tokio::task::spawn_blocking(move || image::collect(&dir, &dockerfile))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        let dockerfile_text = tokio::fs::read_to_string(context.root.join(&context.dockerfile))
            .await
            .map_err(|e| fail(format!("cannot read `{}`: {e}", c.dockerfile)))?;
        let hash = self.context_hash(c, context.clone(), &dockerfile_text, base_ids).await.map_err(fail)?;

        let plan = &self.run.plan;
        let image = format!("{}:{}", c.repository, plan.commit_sha);
        let found = match self.registry() {
            Some(_) => self.reuse_from_registry(c, &hash, &image).await.map_err(fail)?,
            None => self.reuse_from_engine(c, &hash).await.map_err(fail)?,
        };
        let (digest, reused, built_by) = match found {
            Some((digest, built_by)) => {
                self.output(&c.name, &format!("reused {} (context unchanged)", short(&digest)));
                (digest, true, built_by)
            }
            None => {
                let _permit = builds.acquire().await.map_err(|e| fail(e.to_string()))?;
                (self.build(c, &context, &hash).await.map_err(fail)?, false, plan.build_id.clone())
            }
        };
        timing.end_time = Some(Timestamp::now());
        Ok(ComponentRecord {
            name: c.name.clone(),
            context_hash: hash,
            image,
            digest,
            pushed: self.registry().is_some(),
            reused,
            built_by,
            status: Status::Success,
            timing: Some(timing),
        })
    }

    /// The context hash, with the ids of the base images it names (a base that is not here is named
    /// instead: the hash then changes when it arrives).
    async fn context_hash(
        &self,
        c: &ComponentPlan,
        context: ImageContext,
        dockerfile: &str,
        known: &BaseIds,
    ) -> Result<String, String> {
        let mut base_ids = BTreeMap::new();
        for base in image::base_images(dockerfile, &c.build_args) {
            // The sandbox brings the host's base image in first; one the host lacks is named `absent`.
            let _ = self.shared.executor.prepare_image(&base).await;
            let id = known.get(&self.shared.docker, &base).await.map_err(|e| e.to_string())?;
            base_ids.insert(base.clone(), id.unwrap_or_else(|| format!("absent:{base}")));
        }
        let args = c.build_args.clone();
        let target = c.target.clone();
        tokio::task::spawn_blocking(move || context.hash(&args, target.as_deref(), &base_ids))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Looks for `<repository>:ctx-<hash>`; when its config carries the hash label, tags it with the commit
    /// by a registry-side copy. Returns the digest and the build that made it.
    async fn reuse_from_registry(
        &self,
        c: &ComponentPlan,
        hash: &str,
        image: &str,
    ) -> Result<Option<(String, String)>, String> {
        let registry = &self.run.engine.registry;
        let hash_ref = format!("{}:{}", c.repository, hash_tag(hash));
        // An image under our tag without our label is someone else's: build rather than trust it.
        let accept = |labels: &HashMap<String, String>| labels.get(HASH_LABEL).map(String::as_str) == Some(hash);
        let known = LabelCache::new(self.run.engine.store.image_labels_dir());
        let found =
            registry.copy_if(&hash_ref, image, Some(&known), accept).await.map_err(|e| with_hint(&e, e.hint()))?;
        Ok(found.map(|(digest, labels)| (digest, labels.get(BUILD_LABEL).cloned().unwrap_or_default())))
    }

    async fn reuse_from_engine(&self, c: &ComponentPlan, hash: &str) -> Result<Option<(String, String)>, String> {
        let docker = &self.shared.docker;
        let found = docker.images_labelled(HASH_LABEL, hash).await.map_err(|e| e.to_string())?;
        let Some(id) = found.into_iter().next() else {
            return Ok(None);
        };
        docker.tag(&id, &c.repository, &self.run.plan.commit_sha).await.map_err(|e| e.to_string())?;
        let labels = docker.image_labels(&id).await.map_err(|e| e.to_string())?.unwrap_or_default();
        Ok(Some((id, labels.get(BUILD_LABEL).cloned().unwrap_or_default())))
    }

    /// Builds the image, tags it with the commit and the context hash, and pushes both tags when there is
    /// a registry. Returns the registry digest (or the local image id).
    async fn build(&self, c: &ComponentPlan, context: &ImageContext, hash: &str) -> Result<String, String> {
        let plan = &self.run.plan;
        let docker = &self.shared.docker;
        let labels = HashMap::from([
            (HASH_LABEL.to_string(), hash.to_string()),
            (BUILD_LABEL.to_string(), plan.build_id.clone()),
            (COMMIT_LABEL.to_string(), plan.commit_sha.clone()),
            (COMPONENT_LABEL.to_string(), c.name.clone()),
            ("org.opencontainers.image.revision".to_string(), plan.commit_sha.clone()),
            ("org.opencontainers.image.source".to_string(), self.run.source.url.clone()),
        ]);
        // The classic builder turns every build-API label into a step of its own (a container and a
        // layer commit each, seconds apiece on a big base image); one LABEL instruction appended to a
        // copy of the Dockerfile costs one step for all of them.
        let original = tokio::fs::read(context.root.join(&context.dockerfile)).await.map_err(|e| e.to_string())?;
        let dockerfile = labelled_dockerfile(&original, &labels, c.target.as_deref());
        let spec = BuildSpec {
            tag: format!("{}:{}", c.repository, plan.commit_sha),
            dockerfile: GENERATED_DOCKERFILE.to_string(),
            build_args: c.build_args.clone().into_iter().collect(),
            labels: HashMap::new(),
            target: c.target.as_ref().map(|_| LABELLED_STAGE.to_string()),
            resources: crate::executor::resources(&self.shared.env.limits),
            network_mode: self.shared.executor.build_network().map(str::to_string),
        };
        let tar = {
            let context = context.clone();
            tokio::task::spawn_blocking(move || context.tar_with(&[(GENERATED_DOCKERFILE, &dockerfile)]))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
        };
        let mut log = std::fs::File::create(self.log_file(&format!("component-{}.log", c.name))).ok();
        self.output(&c.name, &format!("building {} (context {})", spec.tag, &hash[..12]));
        let id = docker
            .build(&spec, tar, |line| {
                if let Some(file) = log.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
                self.output(&c.name, line);
            })
            .await
            .map_err(|e| e.to_string())?;
        docker.tag(&id, &c.repository, &hash_tag(hash)).await.map_err(|e| e.to_string())?;
        let Some(registry) = self.registry() else {
            return Ok(id);
        };
        let auth = self.push_auth(registry).await;
        let digest = docker.push(&c.repository, &plan.commit_sha, auth.as_ref()).await.map_err(|e| e.to_string())?;
        docker.push(&c.repository, &hash_tag(hash), auth.as_ref()).await.map_err(|e| e.to_string())?;
        self.output(&c.name, &format!("pushed {}@{digest}", spec.tag));
        Ok(digest)
    }

    async fn push_auth(&self, registry: &str) -> Option<PushAuth> {
        let host = registry.split('/').next().unwrap_or(registry);
        let credential = self.run.engine.registry.credential(host).await?;
        Some(if credential.username == "<token>" {
            PushAuth { identity_token: Some(credential.secret), server: host.to_string(), ..PushAuth::default() }
        } else {
            PushAuth {
                username: Some(credential.username),
                password: Some(credential.secret),
                server: host.to_string(),
                ..PushAuth::default()
            }
        })
    }

    /// Cloud Build's `images:`: every listed image must exist after the steps, and is pushed.
    pub async fn push_images(&self) -> Result<((), String), PhaseOutcome> {
        let docker = &self.shared.docker;
        let mut pushed = Vec::new();
        for image in &self.run.plan.images {
            let parsed = ImageRef::parse(image).map_err(|e| PhaseError::push(e.to_string()))?;
            if docker.image_id(image).await.map_err(|e| PhaseError::push(e.to_string()))?.is_none() {
                return Err(PhaseError {
                    kind: crate::record::FailureType::PushImageNotFound,
                    detail: format!("failed to find one or more images after execution of build steps: `{image}`"),
                }
                .into());
            }
            let mut timing = TimeSpan::started();
            let tag = parsed.tag.clone().unwrap_or_else(|| "latest".into());
            let host = parsed.domain.clone().unwrap_or_else(|| "docker.io".into());
            let auth = self.push_auth(&host).await;
            let digest = docker
                .push(&parsed.repository(), &tag, auth.as_ref())
                .await
                .map_err(|e| PhaseError::push(e.to_string()))?;
            timing.end_time = Some(Timestamp::now());
            self.output("images", &format!("pushed {image}@{digest}"));
            pushed.push(BuiltImage { name: image.clone(), digest, push_timing: Some(timing) });
        }
        let count = pushed.len();
        self.record(|b| b.results.images = pushed);
        Ok(((), format!("{count} pushed")))
    }
}

/// Where the labelled copy of a component's Dockerfile goes in the context sent to Docker.
const GENERATED_DOCKERFILE: &str = ".pipewright.Dockerfile";
/// The stage added after a build `target` to carry the labels.
const LABELLED_STAGE: &str = "pipewright-labelled";

/// Image ids of base images, looked up once per build however many components name them (twenty
/// components on one base are one engine call, not twenty side by side).
#[derive(Default)]
struct BaseIds(std::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Option<String>>>>>);

impl BaseIds {
    async fn get(&self, docker: &Docker, base: &str) -> Result<Option<String>, DockerError> {
        let cell = self.0.lock().expect("base ids lock").entry(base.to_string()).or_default().clone();
        cell.get_or_try_init(|| docker.image_id(base)).await.cloned()
    }
}

/// The Dockerfile with one `LABEL` instruction for all `labels`, on the stage that becomes the image:
/// the last one, or, with a build target, a stage added on top of the target.
pub fn labelled_dockerfile(original: &[u8], labels: &HashMap<String, String>, target: Option<&str>) -> Vec<u8> {
    let mut sorted: Vec<(&String, &String)> = labels.iter().collect();
    sorted.sort();
    let pairs: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={}", quote_label(v))).collect();
    let mut out = original.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    if let Some(target) = target {
        out.extend_from_slice(format!("FROM {target} AS {LABELLED_STAGE}\n").as_bytes());
    }
    out.extend_from_slice(format!("LABEL {}\n", pairs.join(" ")).as_bytes());
    out
}

/// A label value as a Dockerfile double-quoted word.
fn quote_label(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('\n', " ");
    format!("\"{escaped}\"")
}

/// The registry tag that names an image by its context hash.
pub fn hash_tag(hash: &str) -> String {
    format!("ctx-{hash}")
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

fn with_hint(e: &dyn std::error::Error, hint: Option<String>) -> String {
    match hint {
        Some(hint) => format!("{e} ({hint})"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_go_on_the_final_stage() {
        let labels = HashMap::from([("a".to_string(), "1".to_string()), ("b".to_string(), "x \"y\" $z".to_string())]);
        let out = String::from_utf8(labelled_dockerfile(b"FROM x\nRUN true", &labels, None)).expect("utf-8");
        assert_eq!(out, "FROM x\nRUN true\nLABEL a=\"1\" b=\"x \\\"y\\\" \\$z\"\n");
        let out = String::from_utf8(labelled_dockerfile(b"FROM x AS build\nFROM y\n", &labels, Some("build")))
            .expect("utf-8");
        assert!(out.ends_with("FROM build AS pipewright-labelled\nLABEL a=\"1\" b=\"x \\\"y\\\" \\$z\"\n"), "{out}");
    }
}
