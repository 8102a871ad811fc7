//! Environments and promotion (docs/SPEC.md §11) through the real binary: releases recorded in the data
//! directory's database, rules checked by the one rule engine, tags moved in the local registry.

use std::path::Path;
use std::process::Output;

use pipewright::io::registry::Registry;
use pipewright::io::store::db::Database;
use serde_json::Value;

use crate::contract::{FakeKfp, demo_ir};
use crate::ml::{component, copy_tree, ml_ready};
use crate::registry::{Cleanup, REGISTRY};
use crate::support::*;

/// `pipewright ARGS --data-dir DATA` as `user`.
fn pw(data: &Path, user: &str, args: &[&str]) -> Output {
    pipewright().args(args).arg("--data-dir").arg(data).env("PIPEWRIGHT_USER", user).output().expect("pipewright runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "expected success:\n{}", stderr(out));
}

/// Asserts the command was refused (exit 1) and that its message names every `expected` text.
#[track_caller]
fn refused(out: &Output, expected: &[&str]) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(1), "expected a refusal:\n{text}");
    for e in expected {
        assert!(text.contains(e), "the refusal does not say `{e}`:\n{text}");
    }
}

fn envs(data: &Path) -> Value {
    let out = pw(data, "reader", &["envs", "--history", "--format", "json"]);
    ok(&out);
    serde_json::from_slice(&out.stdout).expect("envs json")
}

fn current<'a>(envs: &'a Value, environment: &str) -> &'a Value {
    envs["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .find(|r| r["environment"] == environment)
        .unwrap_or_else(|| panic!("`{environment}` has no release: {envs:#}"))
}

fn id(record: &Value) -> String {
    record["id"].as_str().expect("id").to_string()
}

fn promotions(record_path: &Path) -> Vec<(String, String)> {
    let record: Value = serde_json::from_slice(&std::fs::read(record_path).expect("record")).expect("json");
    record["promotions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| (p["environment"].as_str().unwrap_or("").to_string(), p["result"].as_str().unwrap_or("").to_string()))
        .collect()
}

const LIGHT: &str = "steps:
- name: local/busybox:1
  args: [echo, built]
environments:
- name: dev
  branches: ['^main$']
  auto: true
- name: qa
- name: prod
  approval: {required: 1}
";

#[test]
fn concurrent_promotions_serialize_and_the_rules_of_the_release_in_place_hold() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let data = data.path();
    let mut repo = GitRepo::with_config(LIGHT);
    let build = |repo: &GitRepo| {
        let (out, record) = run_build_in(repo.path(), data, &[]);
        assert_eq!(record["status"], "SUCCESS", "{}", String::from_utf8_lossy(&out.stderr));
        record
    };
    let b1 = build(&repo);
    let record_path = |b: &Value| data.join("builds").join(id(b)).join("build.json");
    assert_eq!(promotions(&record_path(&b1)), [("dev".to_string(), "promoted".to_string())]);
    repo.commit("second");
    let b2 = build(&repo);
    assert_eq!(current(&envs(data), "dev")["buildId"], id(&b2).as_str());
    assert_eq!(current(&envs(data), "dev")["previousBuild"], id(&b1).as_str());

    // A branch build succeeds but does not enter dev: the refusal is on the build and in the audit log.
    repo.git(&["checkout", "-q", "-b", "feature/x"]);
    repo.commit("feature");
    let b3 = build(&repo);
    assert_eq!(promotions(&record_path(&b3)), [("dev".to_string(), "refused".to_string())]);
    let refusal = envs(data)["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|a| a["buildId"] == id(&b3).as_str())
        .cloned()
        .expect("the refusal is audited");
    assert_eq!(refusal["result"], "refused");
    assert!(refusal["detail"].as_str().expect("detail").contains("branch `feature/x` may not enter `dev`"));

    // Three promotions to qa started at the same moment: each sees the one before it as the release it
    // replaces (interleaved, two would have read "no release" and both claimed to replace nothing).
    let children: Vec<_> = [&b1, &b2, &b3]
        .iter()
        .map(|b| {
            pipewright()
                .args(["promote", &id(b), "--to", "qa", "--data-dir"])
                .arg(data)
                .env("PIPEWRIGHT_USER", "carol")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        ok(&child.wait_with_output().expect("wait"));
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = rt.block_on(Database::open(data)).expect("database");
    let releases = rt.block_on(db.releases("qa")).expect("releases");
    assert_eq!(releases.len(), 3);
    assert_eq!(releases[2].previous_build, None);
    assert_eq!(releases[1].previous_build.as_deref(), Some(releases[2].build_id.as_str()));
    assert_eq!(releases[0].previous_build.as_deref(), Some(releases[1].build_id.as_str()));

    // prod asks for one approval, which the promoter cannot give themself.
    refused(&pw(data, "carol", &["promote", &id(&b1), "--to", "prod"]), &["approval: 0 of 1 approval given"]);
    ok(&pw(data, "carol", &["approve", &id(&b1)[..8], "--env", "prod", "--comment", "checked"]));
    refused(&pw(data, "carol", &["promote", &id(&b1), "--to", "prod"]), &["approval: 0 of 1"]);
    ok(&pw(data, "dave", &["promote", &id(&b1), "--to", "prod", "--comment", "release 1"]));
    refused(&pw(data, "carol", &["approve", &id(&b1), "--env", "qa"]), &["`qa` needs no approval"]);

    // A build whose file drops prod's approval is still judged by the rules of the release in prod.
    repo.git(&["checkout", "-q", "main"]);
    repo.write("cloudbuild.yaml", &LIGHT.replace("  approval: {required: 1}\n", ""));
    repo.commit("loosen prod");
    let b4 = build(&repo);
    refused(&pw(data, "dave", &["promote", &id(&b4), "--to", "prod"]), &["approval: 0 of 1"]);
    ok(&pw(data, "carol", &["approve", &id(&b4), "--env", "prod"]));
    ok(&pw(data, "dave", &["promote", &id(&b4), "--to", "prod"]));

    // A build of a forked pull request is never promoted, whatever else holds.
    let fork_path = record_path(&b2);
    let mut fork: Value = serde_json::from_slice(&std::fs::read(&fork_path).expect("record")).expect("json");
    fork["trigger"] = serde_json::json!({"event": "pull_request", "decision": "build", "fork": true});
    std::fs::write(&fork_path, serde_json::to_vec(&fork).expect("json")).expect("write");
    refused(
        &pw(data, "dave", &["promote", &id(&b2), "--to", "prod"]),
        &["trusted builds only: the build ran untrusted code"],
    );

    // Rollback puts back the release before; with none, it says so.
    let out = pw(data, "dave", &["rollback", "prod", "--comment", "b4 misbehaves"]);
    ok(&out);
    let now = envs(data);
    let prod = current(&now, "prod");
    assert_eq!(prod["buildId"], id(&b1).as_str());
    assert_eq!(prod["action"], "rollback");
    assert_eq!(prod["promotedBy"], "dave (unverified)", "the local identity is named as such");
    assert_eq!(prod["comment"], "b4 misbehaves");
    assert_eq!(prod["previousBuild"], id(&b4).as_str());
    refused(&pw(data, "dave", &["rollback", "nowhere"]), &["`nowhere` has no earlier release to roll back to"]);
    let unknown = pw(data, "dave", &["promote", &id(&b1), "--to", "staging"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("its environments: dev, qa, prod"), "{}", stderr(&unknown));

    // The audit log has every step, with who and why; it cannot be rewritten.
    let history = now["history"].as_array().expect("history");
    let lines: Vec<(String, String, String)> = history
        .iter()
        .filter(|a| a["environment"] == "prod")
        .map(|a| {
            (
                a["actor"].as_str().unwrap_or("").into(),
                a["action"].as_str().unwrap_or("").into(),
                a["result"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let expected = [
        ("carol (unverified)", "promote", "refused"),
        ("carol (unverified)", "approve", "ok"),
        ("carol (unverified)", "promote", "refused"),
        ("dave (unverified)", "promote", "ok"),
        ("dave (unverified)", "promote", "refused"),
        ("carol (unverified)", "approve", "ok"),
        ("dave (unverified)", "promote", "ok"),
        ("dave (unverified)", "promote", "refused"),
        ("dave (unverified)", "rollback", "ok"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(lines, expected);
    assert!(history.iter().all(|a| !a["at"].as_str().unwrap_or("").is_empty()));
    let table = pw(data, "reader", &["envs"]);
    ok(&table);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.lines().any(|l| l.starts_with("prod") && l.contains(&id(&b1)[..8]) && l.contains("dave")), "{table}");
    let sql = try_to_rewrite_the_audit_log(data);
    assert!(sql.contains("append-only"), "{sql}");
}

/// Tries to rewrite the audit log through SQLite itself; returns the error text.
fn try_to_rewrite_the_audit_log(data: &Path) -> String {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", data.join("pipewright.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("connect");
        match sqlx::query("UPDATE audit SET actor = 'nobody'").execute(&mut conn).await {
            Ok(_) => "the update went through".to_string(),
            Err(e) => e.to_string(),
        }
    })
}

/// The registry digest of `reference`.
fn digest(rt: &tokio::runtime::Runtime, registry: &Registry, reference: &str) -> String {
    rt.block_on(registry.digest(reference)).expect("registry").unwrap_or_else(|| panic!("no `{reference}`"))
}

/// Asserts that `:<env>` and `:<env>-<sha>` of every component and of the spec are the build's digests.
#[track_caller]
fn assert_in(rt: &tokio::runtime::Runtime, registry: &Registry, prefix: &str, build: &Value, env: &str) {
    let sha = build["commit"]["sha"].as_str().expect("sha");
    for name in ["preprocess", "train", "evaluate"] {
        let built = component(build, name)["digest"].as_str().expect("digest");
        for tag in [env.to_string(), format!("{env}-{sha}")] {
            let reference = format!("{prefix}/breast-cancer/{name}:{tag}");
            assert_eq!(digest(rt, registry, &reference), built, "{reference}");
        }
    }
    let oci = build["pipeline"]["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .find(|u| u["destination"] == "oci")
        .expect("oci upload");
    for tag in [env.to_string(), format!("{env}-{sha}")] {
        let reference = format!("{prefix}/pipelines/breast-cancer-training:{tag}");
        assert_eq!(digest(rt, registry, &reference), oci["version"].as_str().expect("digest"), "{reference}");
    }
}

#[test]
fn the_example_goes_from_dev_to_prod_behind_its_gates() {
    if !ml_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let data = data.path();
    let mut repo = GitRepo::new();
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/breast-cancer"), repo.path());
    repo.commit("example");
    let prefix = format!("{REGISTRY}/pw-promote-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut cleanup = Cleanup { prefix: prefix.clone(), builds: Vec::new() };
    let registry_arg = format!("_REGISTRY={prefix}");
    let mut build = |repo: &GitRepo| {
        let (out, record) = run_build_in(repo.path(), data, &["--substitutions", &registry_arg]);
        cleanup.builds.push(id(&record));
        assert_eq!(record["status"], "SUCCESS", "{}", String::from_utf8_lossy(&out.stderr));
        record
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let registry = rt.block_on(Registry::new());

    // A build of main lands in dev by itself.
    let b1 = build(&repo);
    assert_in(&rt, &registry, &prefix, &b1, "dev");
    assert_eq!(current(&envs(data), "dev")["promotedBy"], "pipewright (auto)");
    let accuracy = b1["run"]["metrics"]["accuracy"].as_f64().expect("accuracy");
    assert!(accuracy >= 0.95, "the example's accuracy {accuracy} clears staging's gate");

    // prod wants staging first and an approval; staging takes b1 on its accuracy.
    refused(&pw(data, "carol", &["promote", &id(&b1), "--to", "prod"]), &["after staging", "approval: 0 of 1"]);
    ok(&pw(data, "carol", &["promote", &id(&b1), "--to", "staging", "--comment", "accuracy is fine"]));
    assert_in(&rt, &registry, &prefix, &b1, "staging");

    // A commit that weakens the model builds (nothing rebuilt: only the run changed) and reaches dev,
    // but staging's gate refuses it, naming the gate and the value.
    let config = repo.path().join("pipewright.yaml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("c: 1.0}", "c: 0.001}")).expect("write");
    repo.commit("regularize harder");
    let b2 = build(&repo);
    assert!(b2["components"].as_array().expect("components").iter().all(|c| c["reused"] == true));
    let weak = b2["run"]["metrics"]["accuracy"].as_f64().expect("accuracy");
    assert!(weak < 0.95, "accuracy {weak}");
    assert_in(&rt, &registry, &prefix, &b2, "dev");
    refused(
        &pw(data, "carol", &["promote", &id(&b2), "--to", "staging"]),
        &["gate accuracy >= 0.95", &format!("accuracy is {weak}")],
    );

    // prod: the author cannot approve; someone else can; the promoter is a third person.
    refused(&pw(data, "carol", &["promote", &id(&b1), "--to", "prod"]), &["approval: 0 of 1 approval given"]);
    refused(
        &pw(data, "ada@example.com", &["approve", &id(&b1), "--env", "prod"]),
        &["no self-approval", "`ada@example.com (unverified)` wrote commit"],
    );
    ok(&pw(data, "bob", &["approve", &id(&b1), "--env", "prod", "--comment", "reviewed the metrics"]));
    ok(&pw(data, "carol", &["promote", &id(&b1), "--to", "prod", "--comment", "first release"]));
    assert_in(&rt, &registry, &prefix, &b1, "prod");

    // A better train component goes the whole way, then prod is rolled back to b1's exact digests.
    std::fs::write(&config, text).expect("write");
    let train = repo.path().join("components/train/src/train.py");
    let code = std::fs::read_to_string(&train).expect("read");
    std::fs::write(&train, code.replace("max_iter=1000", "max_iter=2000")).expect("write");
    repo.commit("train longer");
    let b3 = build(&repo);
    assert_ne!(component(&b3, "train")["digest"], component(&b1, "train")["digest"]);
    ok(&pw(data, "carol", &["promote", &id(&b3), "--to", "staging"]));
    ok(&pw(data, "bob", &["approve", &id(&b3), "--env", "prod"]));
    ok(&pw(data, "carol", &["promote", &id(&b3), "--to", "prod"]));
    assert_in(&rt, &registry, &prefix, &b3, "prod");
    ok(&pw(data, "carol", &["rollback", "prod", "--comment", "b3 is slower"]));
    assert_in(&rt, &registry, &prefix, &b1, "prod");
    assert_in(&rt, &registry, &prefix, &b3, "staging");

    // What is where, and who put it there, when and why.
    let now = envs(data);
    let prod = current(&now, "prod");
    assert_eq!(prod["buildId"], id(&b1).as_str());
    assert_eq!(prod["previousBuild"], id(&b3).as_str());
    assert_eq!(prod["digests"]["components"]["train"], component(&b1, "train")["digest"]);
    let history: Vec<String> = now["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|a| format!("{} {} {} {} {}", a["actor"], a["action"], a["environment"], a["result"], a["detail"]))
        .collect();
    for expected in [
        r#""pipewright (auto)" "auto" "dev" "ok""#,
        r#""carol (unverified)" "promote" "staging" "ok" "accuracy is fine""#,
        r#""carol (unverified)" "promote" "staging" "refused" "gate accuracy >= 0.95"#,
        r#""ada@example.com (unverified)" "approve" "prod" "refused""#,
        r#""bob (unverified)" "approve" "prod" "ok" "reviewed the metrics""#,
        r#""carol (unverified)" "promote" "prod" "ok" "first release""#,
        r#""carol (unverified)" "rollback" "prod" "ok" "b3 is slower; replaces build"#,
    ] {
        assert!(history.iter().any(|h| h.starts_with(expected)), "no `{expected}` in:\n{}", history.join("\n"));
    }
}

#[test]
fn components_kept_in_the_engine_are_tagged_there() {
    if !docker_ready() {
        return;
    }
    let name = format!("pw-local-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut cleanup = Cleanup { prefix: format!("{REGISTRY}/{name}-nothing-pushed"), builds: Vec::new() };
    let mut repo = GitRepo::new();
    repo.write(
        "cloudbuild.yaml",
        &format!(
            "steps: [{{name: '{BUSYBOX}', args: ['true']}}]\ncomponents:\n  items: [{{name: {name}, context: comp}}]\nenvironments: [{{name: qa}}]\n"
        ),
    )
    .write("comp/Dockerfile", &format!("FROM {BUSYBOX}\nCOPY hello.txt /hello.txt\n"))
    .write("comp/hello.txt", "hello\n");
    let sha = repo.commit("a component without a registry");
    let data = tempfile::tempdir().expect("tempdir");
    let (out, record) = run_build_in(repo.path(), data.path(), &[]);
    cleanup.builds.push(id(&record));
    assert_eq!(record["status"], "SUCCESS", "{}", String::from_utf8_lossy(&out.stderr));
    let built = record["components"][0]["digest"].as_str().expect("image id").to_string();
    assert_eq!(record["components"][0]["pushed"], false);

    ok(&pw(data.path(), "carol", &["promote", &id(&record), "--to", "qa"]));
    for tag in ["qa".to_string(), format!("qa-{sha}")] {
        let inspect = std::process::Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", &format!("{name}:{tag}")])
            .output()
            .expect("docker");
        assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), built, "{name}:{tag}");
    }
}

/// An environment's `run` may take hours on a remote backend. The release is made under the
/// environment's lock; the run is not: while the first promotion's run is still going, a second
/// promotion of the same environment goes through at once (before, it waited for the run).
#[test]
fn a_long_environment_run_does_not_hold_the_environment_for_other_promotions() {
    if !docker_ready() {
        return;
    }
    let kfp = FakeKfp::start();
    kfp.script_runs(&["RUNNING", "RUNNING", "RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"]);
    let mut repo = GitRepo::new();
    let file = format!(
        "steps: [{{name: '{BUSYBOX}', args: ['true']}}]\npipeline: {{name: demo-ci, spec: pipeline.yaml}}\n\
         environments:\n- name: qa\n  run: {{backend: kfp, host: '{}'}}\n",
        kfp.url()
    );
    repo.write("cloudbuild.yaml", &file).write("pipeline.yaml", &demo_ir(BUSYBOX));
    repo.commit("one");
    let data = tempfile::tempdir().expect("tempdir");
    let data = data.path();
    let (out, b1) = run_build_in(repo.path(), data, &[]);
    assert_eq!(b1["status"], "SUCCESS", "{}", stderr(&out));
    repo.write("notes.txt", "two");
    repo.commit("two");
    let (out, b2) = run_build_in(repo.path(), data, &[]);
    assert_eq!(b2["status"], "SUCCESS", "{}", stderr(&out));

    // The first promotion's run polls after 2 s, then 3, 4.5, 6.75: about 16 s of RUNNING.
    let mut slow = pipewright()
        .args(["promote", &id(&b1), "--to", "qa", "--data-dir"])
        .arg(data)
        .env("PIPEWRIGHT_USER", "carol")
        .env("PIPEWRIGHT_POLL_MS", "2000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promote starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !kfp.lines().iter().any(|l| l.starts_with("POST") && l.ends_with("/runs")) {
        assert!(std::time::Instant::now() < deadline, "the first run was never created: {:?}", kfp.lines());
        assert!(slow.try_wait().expect("wait").is_none(), "the first promotion ended before its run");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    kfp.script_runs(&["SUCCEEDED"]);
    ok(&pw(data, "dave", &["promote", &id(&b2), "--to", "qa", "--comment", "while the run goes on"]));
    assert!(
        slow.try_wait().expect("wait").is_none(),
        "the first promotion's run had already ended, so this proves nothing"
    );
    let now = envs(data);
    let qa = current(&now, "qa");
    assert_eq!(
        (qa["buildId"].as_str(), qa["previousBuild"].as_str()),
        (Some(id(&b2).as_str()), Some(id(&b1).as_str()))
    );

    let out = slow.wait_with_output().expect("promote ends");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Both runs are in the audit log, each for its own build.
    let now = envs(data);
    let runs: Vec<(String, String)> = now["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|a| a["action"] == "run")
        .map(|a| (a["buildId"].as_str().unwrap_or("").to_string(), a["result"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for b in [&b1, &b2] {
        assert!(runs.contains(&(id(b), "ok".to_string())), "no successful run of {} in {runs:?}", id(b));
    }
}
