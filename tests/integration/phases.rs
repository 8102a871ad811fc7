//! The phases after the steps on small busybox components: a committed spec rewritten and uploaded,
//! and every kind of bad input failing the build with a clear error before anything is uploaded.

use pipewright::io::registry::Registry;

use crate::registry::{Cleanup, registry_ready, unique};
use crate::support::*;

/// A minimal KFP IR with one executor whose image is `image`.
fn ir(image: &str) -> String {
    format!(
        "# PIPELINE DEFINITION\n# Name: tiny\npipelineInfo:\n  name: tiny\nschemaVersion: 2.1.0\nsdkVersion: kfp-2.14.6\nroot:\n  dag:\n    tasks:\n      comp:\n        componentRef: {{name: comp-comp}}\n        taskInfo: {{name: comp}}\ncomponents:\n  comp-comp:\n    executorLabel: exec-comp\ndeploymentSpec:\n  executors:\n    exec-comp:\n      container:\n        image: {image}\n        command: [sh, -c, echo hi]\n"
    )
}

const COMPONENT: &str = "name: Comp\nimplementation:\n  container:\n    image: comp:dev # rewritten by pipewright\n    command: [sh, -c, echo hi]\n";

/// A repository with one busybox component `comp`; `extra` is appended to the build file.
fn repo(registry: &str, component: &str, pipeline: &str) -> GitRepo {
    let mut repo = GitRepo::new();
    repo.write("comp/Dockerfile", &format!("FROM {BUSYBOX}\nCOPY . /app\n"))
        .write("comp/component.yaml", COMPONENT)
        .write("ir/committed.yaml", &ir(&format!("{registry}/comp:old")))
        .write("ir/stale.yaml", &ir(&format!("{registry}/comp:stale")))
        .write("ir/broken.yaml", "pipelineInfo: [not, an, ir\n")
        .write(
            "cloudbuild.yaml",
            &format!(
                "steps:\n- {{name: '{BUSYBOX}', args: ['true']}}\ncomponents:\n  registry: {registry}\n  items:\n  - {component}\npipeline:\n  name: tiny\n{pipeline}"
            ),
        );
    repo.commit("phases");
    repo
}

const GOOD_COMPONENT: &str = "{name: comp, context: comp, spec: comp/component.yaml}";

#[test]
fn a_committed_spec_is_rewritten_checked_and_uploaded() {
    if !registry_ready() {
        return;
    }
    let registry = unique("phases");
    let mut cleanup = Cleanup { prefix: registry.clone(), builds: Vec::new() };
    let repo = repo(
        &registry,
        GOOD_COMPONENT,
        &format!("  spec: ir/committed.yaml\n  upload:\n  - oci: {registry}/pipelines/tiny\n"),
    );
    let r = run_build(repo.path(), &["--keep-workspace"]);
    let id = r.record["id"].as_str().expect("id").to_string();
    cleanup.builds.push(id.clone());
    assert_eq!(r.status(), "SUCCESS", "{}\n{:#}", r.stderr(), r.record["failureInfo"]);
    let c = &r.record["components"][0];
    let reference = format!("{}@{}", c["image"].as_str().expect("image"), c["digest"].as_str().expect("digest"));
    let specs: Vec<(&str, &str)> = r.record["specs"]
        .as_array()
        .expect("specs")
        .iter()
        .map(|s| (s["file"].as_str().expect("file"), s["newImage"].as_str().expect("new")))
        .collect();
    assert_eq!(specs, [("comp/component.yaml", reference.as_str()), ("ir/committed.yaml", reference.as_str())]);
    let work = r.data.path().join("work").join(&id).join("checkout");
    let rewritten = std::fs::read_to_string(work.join("comp/component.yaml")).expect("spec");
    assert_eq!(rewritten, COMPONENT.replace("comp:dev", &reference), "only the image changed; the comment stayed");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (uploaded, _) = rt
        .block_on(async {
            Registry::new()
                .await
                .pull_artifact(
                    &format!("{registry}/pipelines/tiny:main"),
                    "application/vnd.pipewright.kfp.spec.v1+yaml",
                )
                .await
        })
        .expect("uploaded spec");
    assert_eq!(uploaded, std::fs::read(work.join("ir/committed.yaml")).expect("spec"));
    // The tests' own cleanup is checked too: nothing of this test stays in the registry.
    drop(cleanup);
    assert_eq!(crate::registry::tags_under(&registry), Vec::<String>::new());
}

/// Runs a build that must fail; returns its failure detail after checking nothing was uploaded.
fn failing(component: &str, pipeline: &str, registry: &str, cleanup: &mut Cleanup) -> String {
    let repo = repo(registry, component, pipeline);
    let r = run_build(repo.path(), &[]);
    cleanup.builds.push(r.record["id"].as_str().expect("id").to_string());
    assert_eq!(r.status(), "FAILURE", "{}", r.stderr());
    assert_eq!(r.output.status.code(), Some(1));
    let uploads = r.record["pipeline"]["uploads"].as_array().map_or(0, Vec::len);
    assert_eq!(uploads, 0, "nothing is uploaded after a failure");
    r.record["failureInfo"]["detail"].as_str().expect("detail").to_string()
}

#[test]
fn bad_inputs_fail_the_build_with_a_clear_error() {
    if !registry_ready() {
        return;
    }
    let registry = unique("bad");
    let mut cleanup = Cleanup { prefix: registry.clone(), builds: Vec::new() };
    let upload = format!("  upload:\n  - oci: {registry}/pipelines/tiny\n");
    let committed = format!("  spec: ir/committed.yaml\n{upload}");
    let cases: Vec<(String, String, &str)> = vec![
        (
            "{name: comp, context: nope, spec: comp/component.yaml}".into(),
            committed.clone(),
            "component `comp`: context: `nope` does not exist in the checkout",
        ),
        ("{name: comp, context: comp, dockerfile: ../Dockerfile}".into(), committed.clone(), "outside"),
        (
            "{name: comp, context: comp, spec: ../../etc/passwd}".into(),
            committed.clone(),
            "leaves the repository through `..`",
        ),
        (
            GOOD_COMPONENT.into(),
            format!(
                "  compile: {{name: '{BUSYBOX}', args: [sh, -c, 'mkdir -p build && cp ir/broken.yaml build/p.yaml']}}\n  spec: build/p.yaml\n{upload}"
            ),
            "build/p.yaml",
        ),
        (
            GOOD_COMPONENT.into(),
            format!(
                "  compile: {{name: '{BUSYBOX}', args: [sh, -c, 'mkdir -p build && cp ir/stale.yaml build/p.yaml']}}\n  spec: build/p.yaml\n{upload}"
            ),
            "exec-comp",
        ),
        (
            GOOD_COMPONENT.into(),
            format!("  compile: {{name: '{BUSYBOX}', args: [sh, -c, 'exit 3']}}\n  spec: build/p.yaml\n{upload}"),
            "pipeline.compile failed",
        ),
    ];
    for (component, pipeline, expected) in cases {
        let detail = failing(&component, &pipeline, &registry, &mut cleanup);
        assert!(detail.contains(expected), "expected `{expected}` in: {detail}");
    }
    let detail = failing(GOOD_COMPONENT, &committed, "127.0.0.1:5999/nowhere", &mut cleanup);
    assert!(
        detail.contains("cannot reach the registry `127.0.0.1:5999`") || detail.contains("127.0.0.1:5999"),
        "{detail}"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tag = format!("{registry}/pipelines/tiny:main");
    assert_eq!(rt.block_on(async { Registry::new().await.digest(&tag).await }).expect("registry"), None);
}
