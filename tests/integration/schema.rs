//! `pipewright schema` against `pipewright validate`: every build file validate accepts is valid
//! against the schema, and every file it rejects for its structure (an unknown or misspelt key, a
//! wrong type or value, a missing field) is invalid. Rejections for rules a JSON Schema cannot state
//! are listed with their reason, and those files must still be valid against the schema (so the
//! table cannot hide a structural problem behind a "semantic" label).
//!
//! The check itself is Python's `jsonschema` (`tests/schema_check.py`), reading the files with
//! PyYAML as gcloud does. Without it the test is skipped loudly, unless CI mode
//! (`PIPEWRIGHT_REQUIRE_DOCKER=1`) makes that a failure. `PIPEWRIGHT_PYTHON` names the interpreter.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::*;

enum Expect {
    /// `validate` accepts it; the schema must too.
    Valid,
    /// `validate` rejects its structure; so must the schema.
    Structural(&'static str),
    /// `validate` rejects it for a rule the schema cannot state; the schema accepts it.
    Semantic(&'static str),
}
use Expect::{Semantic, Structural, Valid};

const MUST_MATCH: &str = "a `$_KEY` it uses is not defined (MUST_MATCH substitution references inside text)";

/// The corpus files `pipewright validate` rejects (`validate_corpus.rs` has the exact problems);
/// every other corpus file is accepted and must be [`Valid`].
#[rustfmt::skip]
const REJECTED: &[(&str, Expect)] = &[
    ("GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_builtin_substitutions.yaml", Structural("a substitution key that is not `_[A-Z0-9_]+`")),
    ("GoogleCloudPlatform__cloud-builders-community__jfrog__examples__cloudbuild.yaml", Structural("`secrets[0].secretEnv.APIKEY` is a list, not text")),
    ("ollama__ollama__.cloudbuild.yaml", Structural("unknown fields `onFailure` and `options.loggingLevel`")),
    ("GoogleCloudPlatform__cloud-builders-community__firebase__examples__cloudbuild.yaml", Semantic("a secret is defined but no step uses it")),
    ("GoogleCloudPlatform__vertex-ai-samples__.cloud-build__notebook-execution-test-cloudbuild.yaml", Semantic("`timeout` is over 24 hours (a duration's value, not its form), and MUST_MATCH references")),
    ("GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_substitutions2.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_substitutions3.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__cloud-builders-community__alcide__example__cloudbuild-gkescan.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__cloud-builders-community__terraform__examples__infra_at_scale__cloudbuild.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__emblem__ops__canary.cloudbuild.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__emblem__ops__unit-tests.cloudbuild.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__emblem__ops__web-build.cloudbuild.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__mlops-with-vertex-ai__build__model-deployment.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__mlops-with-vertex-ai__build__pipeline-deployment.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__professional-services__examples__vertex_pipeline__components__cloudbuild_components.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__professional-services__examples__vertex_pipeline__images__cloudbuild_images.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__professional-services__examples__vertex_pipeline__pipelines__cloudbuild_pipeline.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__vertex-ai-samples__.cloud-build__notebook-execution-test-cloudbuild-single.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__vertex-ai-samples__.cloud-build__web-index__notebook-index-cloudbuild.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__e2e-test.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__pr-checks.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__release.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__terraform-apply.yaml", Semantic(MUST_MATCH)),
    ("GoogleCloudPlatform__vertex-pipelines-end-to-end-samples__cloudbuild__terraform-plan.yaml", Semantic(MUST_MATCH)),
    ("kubeflow__pipelines__test__cloudbuild__api_server.yaml", Semantic(MUST_MATCH)),
    ("kubeflow__pipelines__test__cloudbuild__batch_build.yaml", Semantic(MUST_MATCH)),
];

/// Files written for this test: what the decoder allows that a naive schema would not, pipewright's
/// own keys, and one structural mistake each.
#[rustfmt::skip]
const CASES: &[(&str, &str, Expect)] = &[
    ("snake-case", "steps:\n- name: busybox\n  wait_for: ['-']\n  allow_failure: true\n  secret_env: [S]\n  allow_exit_codes: [1]\noptions:\n  substitution_option: ALLOW_LOOSE\n  machine_type: E2_MEDIUM\n  disk_size_gb: '100'\navailable_secrets:\n  secret_manager:\n  - {version_name: projects/p/secrets/s/versions/1, env: S}\nqueue_ttl: 60s\n", Valid),
    ("nulls-and-lists-of-one", "steps:\n- name: busybox\n  args: $_X\n  env: ~\n  dir:\n  allowExitCodes: '3'\ntimeout: 60s\nsubstitutions:\n  _X:\ntags: one\n", Valid),
    ("scalars-as-text", "steps:\n- name: busybox\n  args: [1, true, 2.5, 2024-01-01]\n  id: 7\n", Valid),
    ("pipewright-keys", "steps:\n- name: busybox\ncomponents:\n  registry: r\n  items:\n  - {name: a, context: a, spec: a/c.yaml, build_args: {X: '1'}}\n  - {name: b, context: b, spec: [b/c.yaml, b/d.yaml], dockerfile: D, target: t}\npipeline:\n  name: p\n  spec: p.yaml\n  compile: {name: python, args: [c.py], wait_for: ['-']}\n  upload:\n  - oci: r/p\n  - kfp: {host: 'http://k', pipeline: p}\n  - artifact_registry: 'https://x'\nrun: {backend: local, parameters: {a: 1, b: [x]}, pipeline_root: /tmp/x, timeout: 60s, metrics: [acc]}\nenvironments:\n- {name: dev, branches: ['^main$'], auto: true}\n- name: prod\n  after: dev\n  gates: {metrics: [{name: acc, op: '>=', value: 0.9}, {name: auc, improves: {over: current, by: 0.01}}]}\n  approval: {required: 1, approvers: [a, b], prevent_self_approval: true}\n  run: {backend: vertex, project: p, location: l}\n  upload: [{oci: r/prod}]\ntriggers:\n- {name: t, event: push, branch: '^main$', ignored_files: ['docs/**'], concurrency: {group: g, cancel_in_progress: true}}\n- {name: m, event: manual, invert_regex: false, substitutions: {_A: b}}\n", Valid),
    ("unknown-step-key", "steps:\n- name: busybox\n  argz: [x]\n", Structural("unknown field `argz`")),
    ("both-spellings", "steps:\n- name: busybox\n  waitFor: ['-']\n  wait_for: ['-']\n", Structural("`waitFor` given twice, in two spellings")),
    ("no-step-name", "steps:\n- args: [x]\n", Structural("`name` is required")),
    ("no-steps", "timeout: 60s\n", Structural("`steps` is required")),
    ("empty-steps", "steps: []\n", Structural("`steps` needs a step")),
    ("output-only", "steps:\n- name: busybox\nstatus: SUCCESS\n", Structural("`status` is output-only")),
    ("enum", "steps:\n- name: busybox\noptions: {substitutionOption: LOOSE}\n", Structural("`LOOSE` is not a substitution option")),
    ("machine-type", "steps:\n- name: busybox\noptions: {machineType: HUGE}\n", Structural("`HUGE` is not a machine type")),
    ("bool", "steps:\n- name: busybox\n  allowFailure: maybe\n", Structural("`maybe` is not a boolean")),
    ("duration", "steps:\n- name: busybox\ntimeout: 600\n", Structural("a duration needs its `s`")),
    ("env-entry", "steps:\n- name: busybox\n  env: [FOO]\n", Structural("an env entry without `=`")),
    ("two-destinations", "steps:\n- name: busybox\npipeline:\n  name: p\n  spec: p.yaml\n  upload: [{oci: a, kfp: {host: h}}]\n", Structural("an upload names one destination")),
    ("gate", "steps:\n- name: busybox\nenvironments:\n- name: e\n  gates: {metrics: [{name: acc}]}\n", Structural("a gate needs `op` and `value`, or `improves`")),
    ("trigger-event", "steps:\n- name: busybox\ntriggers:\n- {name: t, branch: main}\n", Structural("a trigger needs `event`")),
    ("component-context", "steps:\n- name: busybox\ncomponents:\n  items: [{name: a}]\n", Structural("a component needs `context`")),
    ("wait-for-later", "steps:\n- name: busybox\n  waitFor: [nope]\n", Semantic("`waitFor` must name an earlier step")),
    ("duplicate-component", "steps:\n- name: busybox\ncomponents:\n  items: [{name: a, context: a}, {name: a, context: b}]\n", Semantic("component names must be unique")),
    ("regex", "steps:\n- name: busybox\ntriggers:\n- {name: t, event: push, branch: '('}\n", Semantic("`branch` must be a valid regular expression")),
    ("undefined-substitution", "steps:\n- name: busybox\n  args: [$_NOPE]\n", Semantic(MUST_MATCH)),
];

fn accepted(file: &Path) -> bool {
    let out = pipewright().arg("validate").arg(file).output().expect("pipewright runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{}: {stderr}", file.display());
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("{}: validate exited {other:?}: {stderr}", file.display()),
    }
}

#[test]
fn the_schema_accepts_what_validate_accepts_and_rejects_what_it_rejects_for_structure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = pipewright().arg("schema").output().expect("pipewright runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the schema is JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["additionalProperties"], false);
    let schema_file = dir.path().join("schema.json");
    std::fs::write(&schema_file, &out.stdout).expect("write");

    // (file, must be valid against the schema, what the table says)
    let mut cases: Vec<(PathBuf, bool, String)> = Vec::new();
    let corpus = fixture("cloudbuild");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&corpus)
        .expect("corpus dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    for name in &on_disk {
        let expect = REJECTED.iter().find(|(f, _)| f == name).map_or(&Valid, |(_, e)| e);
        cases.push((corpus.join(name), !matches!(expect, Structural(_)), describe(expect)));
    }
    for (name, _) in REJECTED {
        assert!(on_disk.contains(*name), "`{name}` is not in the corpus");
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/breast-cancer/pipewright.yaml");
    cases.push((example, true, describe(&Valid)));
    for (name, text, expect) in CASES {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, text).expect("write");
        cases.push((file, !matches!(expect, Structural(_)), describe(expect)));
    }

    // The table agrees with `pipewright validate`.
    let mut disagreements = Vec::new();
    for (file, _, expect) in &cases {
        let want = expect == "valid";
        if accepted(file) != want {
            disagreements.push(format!("{}: the table says {expect}, validate says otherwise", file.display()));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));

    let input: Vec<serde_json::Value> = cases
        .iter()
        .map(|(file, valid, _)| serde_json::json!({"file": file.display().to_string(), "valid": valid}))
        .collect();
    let python = std::env::var("PIPEWRIGHT_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema_check.py");
    let child = std::process::Command::new(&python)
        .arg(&script)
        .arg(&schema_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return skip_or_fail(&format!("cannot run `{python}`: {e}")),
    };
    let stdin = serde_json::to_vec(&input).expect("serialises");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &stdin).expect("write cases");
    let output = child.wait_with_output().expect("the check ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => eprintln!("{stdout}"),
        Some(77) => skip_or_fail(stderr.trim()),
        _ => panic!("tests/schema_check.py failed ({}):\n{stdout}\n{stderr}", output.status),
    }
}

fn describe(expect: &Expect) -> String {
    match expect {
        Valid => "valid".to_string(),
        Structural(why) => format!("rejected for its structure ({why})"),
        Semantic(why) => format!("rejected for a rule the schema cannot state ({why})"),
    }
}

fn skip_or_fail(reason: &str) {
    if std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("the schema check cannot run and PIPEWRIGHT_REQUIRE_DOCKER=1: {reason}");
    }
    eprintln!("\n==== SKIPPED: the JSON Schema check did not run: {reason} ====\n");
}

/// `pipewright schema | head` must end quietly: the schema is larger than a pipe's buffer, so the
/// reader going away makes the write fail, which is not a panic.
#[test]
fn schema_into_a_closed_pipe_is_not_a_panic() {
    let mut child = pipewright()
        .arg("schema")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pipewright runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
