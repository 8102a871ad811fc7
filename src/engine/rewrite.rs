//! `pipewright rewrite`: the specs phase alone, in place, on a checkout (no clone, no build).
//!
//! Each component's image becomes `<registry>/<name>:<COMMIT_SHA>` of the checkout's HEAD, pinned to its
//! registry digest when that tag exists, unless `--image NAME=REF` names it; the specs are edited the
//! way a build edits them (docs/SPEC.md §7).

use std::collections::BTreeMap;

use super::{Rejected, read_config};
use crate::config;
use crate::io::registry::Registry;
use crate::io::source::{self, SourceSpec, Workspace};
use crate::kfp::{self, ImageTarget};
use crate::plan::{self, BuildContext};
use crate::record::SpecRecord;

/// What to rewrite and how.
#[derive(Clone, Debug, Default)]
pub struct RewriteRequest {
    /// The checkout (or a directory in it) to edit in place.
    pub dir: String,
    pub config_path: Option<String>,
    pub overrides: Vec<(String, String)>,
    /// `component name → reference` given on the command line.
    pub images: BTreeMap<String, String>,
    /// Report the changes without writing them.
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error(transparent)]
    Rejected(#[from] Rejected),
    #[error("`--image {0}=…` names no component of the build file")]
    UnknownComponent(String),
    #[error("the build file has no `components` whose specs could be rewritten")]
    NoComponents,
    #[error("{0}")]
    Spec(String),
}

/// Rewrites the specs of every component (and a committed `pipeline.spec` when there is no compile step);
/// returns every change.
pub async fn rewrite(request: &RewriteRequest, registry: &Registry) -> Result<Vec<SpecRecord>, RewriteError> {
    let spec = SourceSpec { repo: request.dir.clone(), rev: "HEAD".into() };
    let source = tokio::task::spawn_blocking(move || source::describe(&spec))
        .await
        .map_err(|e| Rejected::Io { path: request.dir.clone(), source: std::io::Error::other(e.to_string()) })?
        .map_err(Rejected::Source)?;
    let workspace = Workspace::new(std::path::Path::new(&request.dir))
        .map_err(|e| Rejected::Io { path: request.dir.clone(), source: e })?;
    let (config_path, bytes) = read_config(&workspace, request.config_path.as_deref())?;
    let label = match &source.dir {
        Some(dir) => format!("{dir}/{config_path}"),
        None => config_path.clone(),
    };
    let loaded = config::load(&label, &bytes, &request.overrides).map_err(Rejected::Config)?;
    let context = BuildContext {
        build_id: "rewrite".into(),
        project_id: "local".into(),
        location: "local".into(),
        source: source.clone(),
        config_path,
        overrides: request.overrides.clone(),
        ..BuildContext::default()
    };
    let plan = plan::plan(&label, &loaded.config, &context).map_err(Rejected::Config)?;
    if plan.components.is_empty() {
        return Err(RewriteError::NoComponents);
    }
    if let Some(name) = request.images.keys().find(|n| !plan.components.iter().any(|c| &c.name == *n)) {
        return Err(RewriteError::UnknownComponent(name.clone()));
    }
    let mut targets = Vec::new();
    for c in &plan.components {
        let reference = match request.images.get(&c.name) {
            Some(reference) => reference.clone(),
            None => {
                let tagged = format!("{}:{}", c.repository, plan.commit_sha);
                let digest = match plan.registry {
                    Some(_) => registry.digest(&tagged).await.ok().flatten(),
                    None => None,
                };
                match digest {
                    Some(digest) => format!("{tagged}@{digest}"),
                    None => tagged,
                }
            }
        };
        targets.push(ImageTarget { component: c.name.clone(), repository: c.repository.clone(), reference });
    }
    let prefix = source.dir.clone().map(|d| format!("{d}/")).unwrap_or_default();
    let mut changes = Vec::new();
    for c in &plan.components {
        let target = targets.iter().find(|t| t.component == c.name).expect("a target per component");
        for spec in &c.specs {
            changes.extend(
                edit(&workspace, spec, &prefix, request.dry_run, |text, label| {
                    kfp::rewrite_component(text, label, target)
                })
                .await?,
            );
        }
    }
    if let Some(pipeline) = plan.pipeline.as_ref().filter(|p| p.compile.is_none())
        && workspace.existing(&pipeline.spec).is_ok()
    {
        changes.extend(
            edit(&workspace, &pipeline.spec, &prefix, request.dry_run, |text, label| {
                kfp::rewrite_pipeline(text, label, &targets)
            })
            .await?,
        );
    }
    Ok(changes)
}

async fn edit(
    workspace: &Workspace,
    path: &str,
    prefix: &str,
    dry_run: bool,
    rewrite: impl FnOnce(&str, &str) -> Result<kfp::Rewrite, kfp::SpecError>,
) -> Result<Vec<SpecRecord>, RewriteError> {
    let label = format!("{prefix}{path}");
    let host = workspace.existing(path).map_err(|e| RewriteError::Spec(format!("{label}: {e}")))?;
    let text = tokio::fs::read_to_string(&host)
        .await
        .map_err(|e| RewriteError::Spec(format!("cannot read `{label}`: {e}")))?;
    let result = rewrite(&text, &label).map_err(|e| RewriteError::Spec(e.to_string()))?;
    if !dry_run && result.text != text {
        tokio::fs::write(&host, &result.text)
            .await
            .map_err(|e| RewriteError::Spec(format!("cannot write `{label}`: {e}")))?;
    }
    Ok(result
        .changes
        .into_iter()
        .map(|c| SpecRecord {
            file: label.clone(),
            component: c.component,
            path: c.path,
            line: c.line,
            old_image: c.old,
            new_image: c.new,
        })
        .collect())
}
