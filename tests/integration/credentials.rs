//! docs/THREATS.md property 2 against a real `pipewright serve`: a build file cannot direct a server
//! credential to a host of its choosing, a token goes only to the origin the server config lists it
//! for, and the config's `env:` secrets leave the server's environment. Every request a destination
//! receives is recorded by a local fake (`contract::FakeKfp`) and checked from outside.

use crate::contract::{FakeKfp, demo_ir};
use crate::server::*;
use crate::support::*;

fn id_of(b: &serde_json::Value) -> String {
    b["id"].as_str().expect("id").to_string()
}

/// Pushes `main` at the repository's HEAD and waits for the build to end.
fn push_and_wait(server: &Server, repo: &GitRepo) -> serde_json::Value {
    let head = repo.git(&["rev-parse", "HEAD"]);
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "build");
    let (code, answer) = server.post_raw("/hooks/github", &headers, body);
    assert_eq!(code, 202, "{answer}");
    let builds = server.wait_for("the build to end", 120, |b| {
        b.len() == 1 && !matches!(b[0]["status"].as_str(), Some("QUEUED" | "WORKING" | "PENDING"))
    });
    server.build(&id_of(&builds[0]))
}

#[test]
fn a_build_file_naming_the_webhook_secret_as_its_token_fails_and_sends_nothing() {
    if !docker_ready() {
        return;
    }
    let listener = FakeKfp::start();
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::new();
    let file = format!(
        "steps: [{{name: '{BUSYBOX}', args: ['true']}}]\npipeline: {{name: demo-ci, spec: pipeline.yaml}}\n\
         run: {{backend: kfp, host: '{}', tokenEnv: PW_SECRET}}\n",
        listener.url()
    );
    repo.write("cloudbuild.yaml", &file).write("pipeline.yaml", &demo_ir(BUSYBOX));
    repo.commit("a run that asks for the webhook secret");
    let server = Server::start(data.path(), &config(repo.path(), None, ""));

    let build = push_and_wait(&server, &repo);

    assert_eq!(build["status"], "FAILURE", "{build:#}");
    let detail = build["failureInfo"]["detail"].as_str().unwrap_or_default();
    for part in ["cloudbuild.yaml:3:", "run.tokenEnv", "a build file cannot choose a credential", "`credentials:`"] {
        assert!(detail.contains(part), "`{part}` not in: {detail}");
    }
    assert!(listener.requests().is_empty(), "the run's host heard from the build: {:?}", listener.lines());
    let record = std::fs::read_to_string(data.path().join("builds").join(id_of(&build)).join("build.json"))
        .unwrap_or_else(|_| build.to_string());
    assert!(!record.contains(SECRET) && !server.log().contains(SECRET), "the secret is written somewhere");
}

#[test]
fn only_the_listed_origin_gets_its_token_and_an_unlisted_one_gets_none() {
    if !docker_ready() {
        return;
    }
    let listed = FakeKfp::start();
    let unlisted = FakeKfp::start();
    unlisted.script_runs(&["SUCCEEDED"]);
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::new();
    let file = format!(
        "steps: [{{name: '{BUSYBOX}', args: ['true']}}]\n\
         pipeline:\n  name: demo-ci\n  spec: pipeline.yaml\n  upload:\n\
         \x20 - kfp: {{host: '{listed}', pipeline: demo-ci}}\n\
         \x20 - kfp: {{host: '{unlisted}', pipeline: demo-ci}}\n\
         run: {{backend: kfp, host: '{unlisted}'}}\n",
        listed = listed.url(),
        unlisted = unlisted.url(),
    );
    repo.write("cloudbuild.yaml", &file).write("pipeline.yaml", &demo_ir(BUSYBOX));
    repo.commit("uploads to two hosts, a run on the unlisted one");
    // The same host by another spelling (`localhost`) is another origin: it must not match either.
    let extra = format!(
        "credentials:\n- {{host: '{}', token: env:PW_KFP_TOKEN}}\n- {{host: 'http://localhost:{}', token: env:PW_SECRET}}\n",
        listed.url(),
        unlisted.url().rsplit(':').next().expect("a port"),
    );
    let server = Server::start(data.path(), &config(repo.path(), None, &extra));

    let build = push_and_wait(&server, &repo);

    assert_eq!(build["status"], "SUCCESS", "{build:#}\n{}", server.log());
    let listed_requests = listed.requests();
    assert!(!listed_requests.is_empty(), "the listed host got the upload");
    for request in &listed_requests {
        let expected = format!("Bearer {KFP_TOKEN}");
        assert_eq!(request.header("authorization"), Some(expected.as_str()), "{}", request.line());
    }
    let unlisted_requests = unlisted.requests();
    let lines: Vec<String> = unlisted_requests.iter().map(|r| r.line()).collect();
    assert!(lines.iter().any(|l| l == "POST /apis/v2beta1/pipelines/upload_version"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "POST /apis/v2beta1/runs"), "the run was created there: {lines:?}");
    for request in &unlisted_requests {
        assert_eq!(request.header("authorization"), None, "{}", request.line());
    }
    assert_eq!(build["run"]["state"], "SUCCEEDED", "{build:#}");
    listed.assert_no_violations();
    unlisted.assert_no_violations();
}

#[test]
fn the_config_secrets_leave_the_servers_environment_and_still_work() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config("steps: [{name: local/busybox:1, args: ['true']}]\n");
    let extra = "credentials: [{host: 'https://kfp.example.com', token: env:PW_KFP_TOKEN}]\n";
    let server = Server::start(data.path(), &config(repo.path(), None, extra));

    let environ = std::fs::read(format!("/proc/{}/environ", server.pid())).expect("the server's environment");
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("PIPEWRIGHT_LOG=info"), "not the server's environment: {environ}");
    for value in [SECRET, TOKEN_ALICE, TOKEN_BOB, TOKEN_ADA, KFP_TOKEN] {
        assert!(!environ.contains(value), "`{value}` is still in /proc/<pid>/environ");
    }
    // What was read before it left still works: a delivery signed with the webhook secret is taken,
    // a forged one is not.
    let head = repo.git(&["rev-parse", "HEAD"]);
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "signed");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let (mut headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "forged");
    headers.retain(|(k, _)| *k != "x-hub-signature-256");
    headers.push(("x-hub-signature-256", format!("sha256={}", "0".repeat(64))));
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 401);
}
