//! The registry client against a real registry (Debian's `docker-registry` on 127.0.0.1:5000, started
//! by `.ci/setup`): digests, registry-side tag copies, config labels, OCI artifacts.

use std::collections::BTreeMap;

use pipewright::docker::Docker;
use pipewright::registry::{Artifact, Registry};

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
pub struct Cleanup {
    pub prefix: String,
    pub builds: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let registry = Registry::new().await;
            let catalog = std::process::Command::new("curl")
                .args(["-sf", "http://127.0.0.1:5000/v2/_catalog?n=10000"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let catalog: Value = serde_json::from_str(&catalog).unwrap_or_default();
            let path = self.prefix.strip_prefix(&format!("{REGISTRY}/")).unwrap_or(&self.prefix).to_string();
            for repo in catalog["repositories"].as_array().cloned().unwrap_or_default() {
                let Some(repo) = repo.as_str().filter(|r| r.starts_with(&path)) else { continue };
                let tags = std::process::Command::new("curl")
                    .args(["-sf", &format!("http://127.0.0.1:5000/v2/{repo}/tags/list")])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                let tags: Value = serde_json::from_str(&tags).unwrap_or_default();
                for tag in tags["tags"].as_array().cloned().unwrap_or_default() {
                    let reference = format!("{REGISTRY}/{repo}:{}", tag.as_str().unwrap_or_default());
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
