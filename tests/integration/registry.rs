//! The registry client against a real registry (Debian's `docker-registry` on 127.0.0.1:5000, started
//! by `.ci/setup`): digests, registry-side tag copies, config labels, OCI artifacts.

use std::collections::{BTreeMap, HashMap};

use pipewright::io::docker::Docker;
use pipewright::io::registry::{Artifact, LabelCache, Registry};

use serde_json::Value;

use crate::support::*;

pub const REGISTRY: &str = "localhost:5000";

/// True when the local registry answers; like `docker_ready`, a failure in CI mode.
pub fn registry_ready() -> bool {
    if !docker_ready() {
        return false;
    }
    let ok = std::process::Command::new("curl")
        .args(["-sf", "http://127.0.0.1:5000/v2/"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("the local registry on 127.0.0.1:5000 does not answer (run `.ci/setup`)");
        }
        eprintln!("SKIPPED: no registry on 127.0.0.1:5000 (run `.ci/setup`)");
    }
    ok
}

/// Deletes a manifest (and so every tag on it) from the local registry, so tests leave nothing behind.
pub fn registry_delete(repo: &str, digest: &str) {
    let path = repo.strip_prefix(&format!("{REGISTRY}/")).unwrap_or(repo);
    let url = format!("http://127.0.0.1:5000/v2/{path}/manifests/{digest}");
    let out = std::process::Command::new("curl").args(["-sf", "-X", "DELETE", &url]).output().expect("curl");
    assert!(out.status.success(), "DELETE {url}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn unique(name: &str) -> String {
    format!("{REGISTRY}/pw-test/{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

#[test]
fn digests_copies_and_labels() {
    if !registry_ready() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let docker = Docker::connect().await.expect("docker");
        let registry = Registry::new().await;
        let repo = unique("busybox");
        docker.tag(BUSYBOX, &repo, "one").await.expect("tag");
        let pushed = docker.push(&repo, "one", None).await.expect("push");
        docker.remove_image(&format!("{repo}:one")).await.expect("untag");
        assert!(pushed.starts_with("sha256:"), "{pushed}");

        assert_eq!(registry.digest(&format!("{repo}:one")).await.expect("digest"), Some(pushed.clone()));
        assert_eq!(registry.digest(&format!("{repo}:nope")).await.expect("digest"), None);
        assert_eq!(registry.digest(&unique("never-pushed")).await.expect("digest"), None);

        let copied = registry.copy(&format!("{repo}:one"), &format!("{repo}:two")).await.expect("copy");
        assert_eq!(copied, pushed);
        assert_eq!(registry.digest(&format!("{repo}:two")).await.expect("digest"), Some(pushed.clone()));
        let labels = registry.config_labels(&format!("{repo}@{pushed}")).await.expect("labels");
        assert!(labels.is_empty(), "busybox has no labels: {labels:?}");

        // copy_if: the config's labels are fetched once, checked against the config digest, and kept.
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = LabelCache::new(cache_dir.path());
        let three = format!("{repo}:three");
        let found = registry.copy_if(&format!("{repo}:one"), &three, Some(&cache), |_| true).await.expect("copy_if");
        assert_eq!(found, Some((pushed.clone(), HashMap::new())));
        assert_eq!(registry.digest(&three).await.expect("digest"), Some(pushed.clone()));
        let entries: Vec<_> = std::fs::read_dir(cache_dir.path()).expect("cache dir").flatten().collect();
        assert_eq!(entries.len(), 1, "one config, one entry");
        // Seeded labels are what the next copy sees: the cache answers instead of the registry.
        std::fs::write(entries[0].path(), r#"{"seeded": "yes"}"#).expect("seed");
        let seeded = |labels: &HashMap<String, String>| labels.get("seeded").map(String::as_str) == Some("yes");
        let four = format!("{repo}:four");
        let found = registry.copy_if(&format!("{repo}:one"), &four, Some(&cache), seeded).await.expect("copy_if");
        assert_eq!(found.map(|(d, _)| d), Some(pushed.clone()));
        // Without the cache the registry's answer (no labels) is refused, and no tag is written.
        let five = format!("{repo}:five");
        let found = registry.copy_if(&format!("{repo}:one"), &five, None, seeded).await.expect("copy_if");
        assert_eq!(found, None);
        assert_eq!(registry.digest(&five).await.expect("digest"), None);
        registry_delete(&repo, &pushed);
        assert_eq!(registry.digest(&format!("{repo}:two")).await.expect("digest"), None);
    });
}

#[test]
fn artifacts_round_trip() {
    if !registry_ready() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let registry = Registry::new().await;
        let repo = unique("spec");
        let artifact = Artifact {
            artifact_type: "application/vnd.pipewright.kfp.pipeline.v1".into(),
            layer_media_type: "application/vnd.pipewright.kfp.spec.v1+yaml".into(),
            data: b"pipelineInfo:\n  name: x\n".to_vec(),
            annotations: BTreeMap::from([("org.opencontainers.image.revision".to_string(), "abc".to_string())]),
            title: "pipeline.yaml".into(),
        };
        let digest = registry.push_artifact(&format!("{repo}:v1"), &artifact).await.expect("push");
        let (by_tag, d1) =
            registry.pull_artifact(&format!("{repo}:v1"), &artifact.layer_media_type).await.expect("pull");
        let (by_digest, _) =
            registry.pull_artifact(&format!("{repo}@{digest}"), &artifact.layer_media_type).await.expect("pull");
        assert_eq!(by_tag, artifact.data);
        assert_eq!(by_digest, artifact.data);
        assert_eq!(d1, digest);
        registry_delete(&repo, &digest);
        let err = registry.digest("127.0.0.1:5999/none/x:1").await.expect_err("nothing listens there");
        assert!(err.to_string().contains("cannot reach the registry `127.0.0.1:5999`"), "{err}");
    });
}

/// Removes what a test pushed and built: registry manifests under `prefix` and local images of the
/// given builds.
/// Every repository in the local registry. The registry serves at most 1000 names a page (a larger
/// `n` is refused with 400), so this follows the pages.
pub fn catalog() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    loop {
        let mut url = "http://127.0.0.1:5000/v2/_catalog?n=1000".to_string();
        if let Some(last) = names.last() {
            url.push_str(&format!("&last={last}"));
        }
        let out = std::process::Command::new("curl").args(["-sf", &url]).output();
        let page: Value = match out {
            Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap_or_default(),
            _ => {
                eprintln!("cleanup: cannot list the registry's repositories ({url})");
                return names;
            }
        };
        let batch: Vec<String> = page["repositories"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let full = batch.len() == 1000;
        names.extend(batch);
        if !full {
            return names;
        }
    }
}

/// The tags of one repository of the local registry (none when it has none left, or is unknown).
pub fn tags(repo: &str) -> Vec<String> {
    let out = std::process::Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:5000/v2/{repo}/tags/list")])
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let list: Value = serde_json::from_slice(&out).unwrap_or_default();
    list["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Every `repository:tag` left in the registry under `prefix` (`localhost:5000/pw-test/x-1234`).
pub fn tags_under(prefix: &str) -> Vec<String> {
    let path = prefix.strip_prefix(&format!("{REGISTRY}/")).unwrap_or(prefix).to_string();
    catalog()
        .into_iter()
        .filter(|r| r.starts_with(&path))
        .flat_map(|r| tags(&r).into_iter().map(move |t| format!("{r}:{t}")))
        .collect()
}

pub struct Cleanup {
    pub prefix: String,
    pub builds: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let registry = Registry::new().await;
            let path = self.prefix.strip_prefix(&format!("{REGISTRY}/")).unwrap_or(&self.prefix).to_string();
            for repo in catalog().into_iter().filter(|r| r.starts_with(&path)) {
                for tag in tags(&repo) {
                    let reference = format!("{REGISTRY}/{repo}:{tag}");
                    if let Ok(Some(digest)) = registry.digest(&reference).await {
                        let _ = std::panic::catch_unwind(|| registry_delete(&format!("{REGISTRY}/{repo}"), &digest));
                    }
                }
            }
        });
        for build in &self.builds {
            let ids = std::process::Command::new("docker")
                .args(["images", "-q", "--filter", &format!("label=pipewright.build={build}")])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for id in ids.split_whitespace() {
                let _ = std::process::Command::new("docker").args(["rmi", "-f", id]).output();
            }
        }
    }
}
