//! The ML build phases end to end on the real engine and the local registry: component images tagged
//! with the commit and reused when unchanged, specs rewritten to exactly those images, the compiled
//! spec checked and uploaded.

use std::path::Path;

use pipewright::io::registry::Registry;
use serde_json::Value;

use crate::registry::{Cleanup, REGISTRY, registry_ready};
use crate::support::*;

pub const ML_IMAGE: &str = "local/python-ml:3.11";

/// True when the ML base image (`steps/python-ml/build.sh`) is present; a failure in CI mode.
pub fn ml_ready() -> bool {
    if !registry_ready() {
        return false;
    }
    let ok = std::process::Command::new("docker")
        .args(["image", "inspect", ML_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("`{ML_IMAGE}` is missing (run `.ci/setup`)");
        }
        eprintln!("SKIPPED: `{ML_IMAGE}` is missing (run `.ci/setup`)");
    }
    ok
}

pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub fn component<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component {name}"))
}

#[test]
fn the_example_builds_reuses_rewrites_compiles_and_uploads() {
    if !ml_ready() {
        return;
    }
    let mut repo = GitRepo::new();
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/breast-cancer"), repo.path());
    let first_sha = repo.commit("example");
    let prefix = format!("{REGISTRY}/pw-e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut cleanup = Cleanup { prefix: prefix.clone(), builds: Vec::new() };
    let registry_arg = format!("_REGISTRY={prefix}");

    let first = run_build(repo.path(), &["--substitutions", &registry_arg, "--keep-workspace"]);
    let id = first.record["id"].as_str().expect("id").to_string();
    cleanup.builds.push(id.clone());
    assert_eq!(first.status(), "SUCCESS", "{}\n{:#}", first.stderr(), first.record["failureInfo"]);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let registry = rt.block_on(Registry::new());
    let work = first.data.path().join("work").join(&id).join("checkout");
    for name in ["preprocess", "train", "evaluate"] {
        let c = component(&first.record, name);
        assert_eq!(c["reused"], false, "{name} is new");
        assert_eq!(c["builtBy"], id.as_str());
        let image = format!("{prefix}/breast-cancer/{name}:{first_sha}");
        assert_eq!(c["image"], image.as_str());
        let digest = c["digest"].as_str().expect("digest");
        assert_eq!(
            rt.block_on(registry.digest(&image)).expect("registry"),
            Some(digest.to_string()),
            "{name} in the registry"
        );
        // The workspace spec names exactly this image, by tag and digest.
        let spec = std::fs::read_to_string(work.join(format!("components/{name}/component.yaml"))).expect("spec");
        assert!(spec.contains(&format!("image: {image}@{digest}")), "{name}:\n{spec}");
        assert!(spec.starts_with("# KFP v1 component"), "comments are kept");
    }
    assert_eq!(first.record["specs"].as_array().expect("specs").len(), 3);

    // The compiled spec names the same references, and is what was uploaded, byte for byte.
    let pipeline = &first.record["pipeline"];
    let compiled = std::fs::read(work.join("build/pipeline.yaml")).expect("compiled spec");
    let text = String::from_utf8_lossy(&compiled);
    for name in ["preprocess", "train", "evaluate"] {
        let c = component(&first.record, name);
        let reference = format!("{}@{}", c["image"].as_str().expect("image"), c["digest"].as_str().expect("digest"));
        assert!(text.contains(&reference), "compiled spec lacks {reference}");
    }
    let oci = pipeline["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .find(|u| u["destination"] == "oci")
        .expect("oci upload");
    let oci_repo = format!("{prefix}/pipelines/breast-cancer-training");
    let media = "application/vnd.pipewright.kfp.spec.v1+yaml";
    let (by_tag, _) =
        rt.block_on(registry.pull_artifact(&format!("{oci_repo}:{first_sha}"), media)).expect("pull by tag");
    let (by_branch, _) =
        rt.block_on(registry.pull_artifact(&format!("{oci_repo}:main"), media)).expect("pull by branch");
    let (by_digest, _) = rt
        .block_on(registry.pull_artifact(&format!("{oci_repo}@{}", oci["version"].as_str().expect("digest")), media))
        .expect("pull by digest");
    assert_eq!(by_tag, compiled);
    assert_eq!(by_branch, compiled);
    assert_eq!(by_digest, compiled);
    let local = pipeline["uploads"][0]["uri"].as_str().expect("local store path");
    assert_eq!(std::fs::read(local).expect("local copy"), compiled);
    assert!(pipeline["specDigest"].as_str().expect("digest").starts_with("sha256:"));
    assert!(!pipeline["summary"]["executors"].as_object().expect("summary").is_empty());

    // The pipeline ran on the local runner: real training, its metrics in the record.
    let run = &first.record["run"];
    assert_eq!(run["backend"], "local");
    assert_eq!(run["state"], "SUCCEEDED", "{run:#}");
    let accuracy = run["metrics"]["accuracy"].as_f64().expect("accuracy metric");
    assert!((0.9..=1.0).contains(&accuracy), "accuracy {accuracy}");
    assert!(run["metrics"]["auc"].as_f64().expect("auc metric") > 0.9);
    let tasks: Vec<&str> =
        run["tasks"].as_array().expect("tasks").iter().map(|t| t["state"].as_str().unwrap_or("")).collect();
    assert_eq!(tasks, ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);

    // A second commit changes train's code and only a file evaluate's .dockerignore excludes.
    let train = repo.path().join("components/train/src/train.py");
    let code = std::fs::read_to_string(&train).expect("read");
    std::fs::write(&train, code.replace("max_iter=1000", "max_iter=2000")).expect("write");
    std::fs::write(repo.path().join("components/evaluate/NOTES.md"), "ignored by .dockerignore\n").expect("write");
    let second_sha = repo.commit("change train");
    let second = run_build(repo.path(), &["--substitutions", &registry_arg]);
    let second_id = second.record["id"].as_str().expect("id").to_string();
    cleanup.builds.push(second_id.clone());
    assert_eq!(second.status(), "SUCCESS", "{}", second.stderr());
    let built: Vec<&str> = second.record["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|c| c["reused"] == false)
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(built, ["train"], "exactly one image is built");
    assert_eq!(component(&second.record, "train")["builtBy"], second_id.as_str());
    for name in ["preprocess", "evaluate"] {
        let before = component(&first.record, name);
        let now = component(&second.record, name);
        assert_eq!(now["reused"], true);
        assert_eq!(now["builtBy"], id.as_str(), "{name} was not rebuilt: it was built by the first build");
        assert_eq!(now["digest"], before["digest"]);
        let tag = format!("{prefix}/breast-cancer/{name}:{second_sha}");
        assert_eq!(
            rt.block_on(registry.digest(&tag)).expect("registry"),
            before["digest"].as_str().map(str::to_string)
        );
    }
}
