//! The attacks on intake of docs/THREATS.md properties 2, 4, 5 and 7, each against a real
//! `pipewright serve`, real git repositories and its real mirror, checked from outside (the API, the
//! commit statuses the server posts, the SQLite file read with the `sqlite3` CLI and byte by byte):
//! a manual run laundering a fork's commit onto `main`, a pull request writing its own gate, a replay
//! of a signed delivery under a fresh delivery id, and GitLab's token in the stored headers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::*;
use crate::support::*;

fn id_of(build: &Value) -> String {
    build["id"].as_str().expect("id").to_string()
}

fn of_sha<'a>(builds: &'a [Value], sha: &str) -> Vec<&'a Value> {
    builds.iter().filter(|b| b["commit"]["sha"] == sha).collect()
}

/// `sql` against the server's database file, through the `sqlite3` CLI (not the server, not our code).
fn sqlite(data: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(data.join("pipewright.db"))
        .arg(sql)
        .output()
        .expect("the sqlite3 CLI runs (Debian's `sqlite3`)");
    assert!(out.status.success(), "sqlite3 {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A commit that only `refs/pull/<number>/head` holds, as a fork's pull request leaves in the repository:
/// made on a throw-away branch that is then deleted.
fn fork_commit(repo: &mut GitRepo, number: u64, files: &[(&str, &str)]) -> String {
    repo.git(&["checkout", "-q", "-b", "fork-work"]);
    for (path, content) in files {
        repo.write(path, content);
    }
    let sha = repo.commit("from a fork");
    repo.git(&["update-ref", &format!("refs/pull/{number}/head"), &sha]);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["branch", "-q", "-D", "fork-work"]);
    sha
}

/// A signed `pull_request` delivery for PR `number`, whose head lives in the fork `mallory/demo`.
fn fork_pull_request(number: u64, base: &str, head: &str) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let (_, body) = github_pull_request("acme/demo", number, base, head, "contrib");
    let mut payload: Value = serde_json::from_slice(&body).expect("json");
    payload["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/demo");
    payload["pull_request"]["head"]["repo"]["fork"] = json!(true);
    signed("pull_request", serde_json::to_vec(&payload).expect("json"))
}

const DEPLOYED: &str = "steps:
- name: local/busybox:1
  args: [echo, built]
triggers:
- name: deploy
  event: push
  branch: '^main$'
  concurrency: {group: 'deploy-$BRANCH_NAME'}
";

#[test]
fn a_manual_run_cannot_launder_a_forks_commit_onto_main() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::with_config(DEPLOYED);
    let first = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["tag", "v1"]);
    repo.write("README.md", "demo\n");
    repo.commit("second");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("feature.txt", "wip\n");
    let on_feature = repo.commit("feature work");
    repo.git(&["checkout", "-q", "main"]);
    let forked = fork_commit(&mut repo, 7, &[("cloudbuild.yaml", "steps:\n- {name: local/busybox:1, args: [env]}\n")]);
    let server = Server::start(data.path(), &config(repo.path(), None, ""));
    let create = "/v1/projects/local/builds";
    let run = |body: Value| server.request("POST", create, Some(TOKEN_ALICE), Some(body));

    let (code, answer) =
        server.request("POST", create, None, Some(json!({"repository": "acme/demo", "branch": "main"})));
    assert_eq!(code, 401, "{answer}");
    let refused = [
        (
            json!({"repository": "acme/demo", "branch": "main", "commitSha": "refs/pull/7/head"}),
            "must be a full commit id",
        ),
        (json!({"repository": "acme/demo", "branch": "main", "commitSha": "HEAD"}), "must be a full commit id"),
        (json!({"repository": "acme/demo", "branch": "main", "commitSha": forked}), "is on no branch of `acme/demo`"),
        (json!({"repository": "acme/demo", "branch": "main", "commitSha": on_feature}), "is on `feature`"),
        (json!({"repository": "acme/demo", "branch": "pull/7/head"}), "`acme/demo` has no branch `pull/7/head`"),
        (json!({"repository": "acme/demo", "tag": "v1", "commitSha": forked}), "tag `v1` is commit"),
    ];
    for (body, why) in refused {
        let (code, answer) = run(body.clone());
        assert_eq!(code, 400, "{body} was not refused: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{body}: expected `{why}` in {message:?}");
    }
    assert!(server.builds().is_empty(), "a refused manual run queued something");
    assert_eq!(sqlite(data.path(), "SELECT COUNT(*) FROM queue"), "0", "no queue row from a refused run");

    // The control: a commit on main (not its tip) runs, trusted, in the group its trigger names with
    // `$BRANCH_NAME` expanded, as a webhook's build would.
    let (code, answer) = run(json!({"repository": "acme/demo", "branch": "main", "commitSha": first}));
    assert_eq!(code, 200, "{answer}");
    let id = id_of(&answer);
    assert_eq!(answer["queue"]["group"], "acme/demo/deploy-main", "{answer:#}");
    let builds = server.wait_for("the manual run", 60, |b| b.len() == 1 && b[0]["status"] == "SUCCESS");
    let build = server.build(&id_of(&builds[0]));
    assert_eq!((id_of(&build), build["commit"]["sha"].clone()), (id, json!(first)));
    assert_eq!(build["trust"]["level"], "trusted", "{build:#}");
    assert!(build["trigger"]["rules"].as_str().unwrap_or_default().starts_with("`cloudbuild.yaml` at "), "{build:#}");
    assert_eq!(sqlite(data.path(), "SELECT COUNT(*) FROM queue"), "1");
}

/// The base branch's build file: a slow deploy on main in the `deploy` group; pull requests in their
/// own group, unfiltered.
const BASE: &str = "steps:
- name: local/busybox:1
  entrypoint: sh
  args: ['-c', 'echo start; if [ -f slow ]; then sleep 120; fi; echo done']
triggers:
- name: deploy
  event: push
  branch: '^main$'
  concurrency: {group: deploy}
- name: pr
  event: pull_request
  branch: '^main$'
  concurrency: {group: 'pr-$_PR_NUMBER'}
";

/// A pull request's own build file that would skip it (a skip is reported as a success status).
const SKIPS_ITSELF: &str = "steps:
- {name: local/busybox:1, args: [echo, pwned]}
triggers:
- name: pr
  event: pull_request
  branch: '.*'
  ignoredFiles: ['**']
";

/// A pull request's own build file that would join the deploy group and cancel what runs in it.
const JOINS_DEPLOY: &str = "steps:
- {name: local/busybox:1, args: [echo, pwned]}
triggers:
- name: pr
  event: pull_request
  branch: '.*'
  concurrency: {group: deploy, cancelInProgress: true}
";

#[test]
fn a_pull_request_cannot_skip_itself_or_cancel_the_deploy_group() {
    if !docker_ready() {
        return;
    }
    let statuses = FakeStatuses::start();
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::with_config(BASE);
    repo.write("slow", "");
    let deploying = repo.commit("slow deploy");
    let skipping = fork_commit(&mut repo, 7, &[("cloudbuild.yaml", SKIPS_ITSELF)]);
    let cancelling = fork_commit(&mut repo, 8, &[("cloudbuild.yaml", JOINS_DEPLOY)]);
    let server = Server::start(data.path(), &config(repo.path(), Some(&statuses.url), ""));

    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &deploying, "slow deploy");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the deploy to run", 60, |b| b.len() == 1 && b[0]["status"] == "WORKING");
    let deploy = id_of(&builds[0]);
    assert_eq!(builds[0]["queue"]["group"], "acme/demo/deploy");

    for (number, head) in [(7, &skipping), (8, &cancelling)] {
        let (headers, body) = fork_pull_request(number, &deploying, head);
        let (code, answer) = server.post_raw("/hooks/github", &headers, body);
        assert_eq!(code, 202, "{answer}");
    }
    let builds = server.wait_for("both pull requests to be decided", 30, |b| {
        !of_sha(b, &skipping).is_empty() && !of_sha(b, &cancelling).is_empty()
    });

    // `ignoredFiles: ['**']` at the head decided nothing: the base's `pr` trigger builds it (after an
    // approval, being a fork's), and no success status was posted for it.
    let pr7 = server.build(&id_of(of_sha(&builds, &skipping)[0]));
    assert_eq!(pr7["status"], "PENDING", "{pr7:#}");
    assert_eq!((pr7["trigger"]["decision"].clone(), pr7["trigger"]["name"].clone()), (json!("build"), json!("pr")));
    let rules = pr7["trigger"]["rules"].as_str().unwrap_or_default().to_string();
    assert!(rules.starts_with("`cloudbuild.yaml` of the base branch `main` at "), "{pr7:#}");
    let posted = statuses.wait_for(&skipping, 10, |state, _| state == "pending");
    assert!(posted.iter().all(|(state, _, _)| state != "success"), "a success status was posted: {posted:?}");
    assert!(server.log().contains(&rules), "the log names the rules used");
    let (_, page) = server.get(&format!("/builds/{}", id_of(&pr7)));
    let page = page.as_str().unwrap_or_default().replace("&#x60;", "`").replace("&#x2f;", "/");
    assert!(page.contains(&format!("rules from {rules}")), "the build page names the rules used: {page}");

    // The head's `deploy` group with cancelInProgress: the build joined `pr-8`, and the deploy runs on.
    let pr8 = of_sha(&builds, &cancelling)[0];
    assert_eq!(pr8["queue"]["group"], "acme/demo/pr-8", "{pr8:#}");
    std::thread::sleep(Duration::from_secs(2));
    let running = server.build(&deploy);
    assert_eq!(running["status"], "WORKING", "the deploy was cancelled: {running:#}");
    let flagged = sqlite(data.path(), &format!("SELECT cancel_requested FROM queue WHERE build_id = '{deploy}'"));
    assert_eq!(flagged, "0", "the deploy was asked to stop");
    assert!(statuses.for_sha(&deploying).iter().all(|(state, _, _)| state == "pending"), "the deploy ended");

    // Clean up now rather than after the two-minute step.
    let (code, answer) =
        server.request("POST", &format!("/v1/projects/local/builds/{deploy}:cancel"), Some(TOKEN_ALICE), None);
    assert_eq!(code, 200, "{answer}");
    server.wait_for("the deploy to stop", 60, |b| {
        b.iter().any(|x| x["id"] == deploy.as_str() && x["status"] == "CANCELLED" && x["queue"]["state"] == "done")
    });
}

#[test]
fn a_replay_under_a_fresh_delivery_id_builds_nothing() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::with_config(DEPLOYED);
    let first = repo.git(&["rev-parse", "HEAD"]);
    let mut server = Server::start(data.path(), &config(repo.path(), None, ""));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &first, "build file");
    let (code, answer) = server.post_raw("/hooks/github", &headers, body.clone());
    assert_eq!(code, 202, "{answer}");
    let original = answer["delivery"].as_str().expect("delivery id").to_string();
    server.wait_for("the build", 60, |b| b.len() == 1 && b[0]["queue"]["state"] == "done");

    // The captured bytes, its valid signature, and a delivery id of the attacker's choosing.
    let fresh = |headers: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let id = uuid::Uuid::new_v4().to_string();
        headers.iter().map(|(k, v)| (*k, if *k == "x-github-delivery" { id.clone() } else { v.clone() })).collect()
    };
    let (code, answer) = server.post_raw("/hooks/github", &fresh(&headers), body.clone());
    assert_eq!((code, answer["duplicate"].clone()), (200, json!(true)), "{answer}");
    assert_eq!((answer["matchedBy"].clone(), answer["duplicateOf"].clone()), (json!("body"), json!(original)));
    let (code, answer) = server.post_raw("/hooks/github", &headers, body.clone());
    assert_eq!((code, answer["matchedBy"].clone()), (200, json!("delivery id")), "a redelivery: {answer}");
    // Remembered across a restart: it is the database that knows, not the process.
    server.restart();
    let (code, answer) = server.post_raw("/hooks/github", &fresh(&headers), body);
    assert_eq!((code, answer["matchedBy"].clone()), (200, json!("body")), "after a restart: {answer}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sqlite(data.path(), "SELECT COUNT(*) FROM queue"), "1", "a replay queued a build");
    assert_eq!(sqlite(data.path(), "SELECT COUNT(*) FROM deliveries"), "1", "a replay was kept");

    // The control: a new push (new bytes) is a new delivery and builds.
    let second = repo.commit("second");
    let (headers, body) = github_push("acme/demo", "main", &first, &second, "second");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    server.wait_for("the second build", 60, |b| b.len() == 2 && b.iter().all(|x| x["queue"]["state"] == "done"));
    assert_eq!(sqlite(data.path(), "SELECT COUNT(*) FROM deliveries"), "2");
    let (_, metrics) = server.get("/metrics");
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(metrics.contains("pipewright_webhook_deliveries_total{result=\"duplicate\"} 1"), "{metrics}");
}

#[test]
fn a_gitlab_delivery_leaves_no_token_in_the_database() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config(DEPLOYED);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let config = format!(
        "publicReads: true\ntokens:\n- {{name: alice, token: env:PW_ALICE}}\nrepositories:\n- name: acme/demo\n  url: '{}'\n  \
         forge: gitlab\n  webhookSecret: env:PW_SECRET\n",
        repo.path().display()
    );
    let server = Server::start(data.path(), &config);
    let mut payload: Value =
        serde_json::from_slice(&std::fs::read(fixture("webhooks/gitlab/push.json")).expect("payload")).expect("json");
    payload["ref"] = json!("refs/heads/main");
    payload["before"] = json!("0".repeat(40));
    payload["after"] = json!(head);
    payload["checkout_sha"] = json!(head);
    payload["commits"] = json!([]);
    payload["total_commits_count"] = json!(0);
    payload["project"]["path_with_namespace"] = json!("acme/demo");
    payload["project"]["git_http_url"] = json!(repo.path().display().to_string());
    let body = serde_json::to_vec(&payload).expect("json");
    let uuid = uuid::Uuid::new_v4().to_string();
    // What a forge (or a proxy in front of the server) sends: the token, and credentials besides.
    let headers = |token: &str| {
        vec![
            ("content-type", "application/json".to_string()),
            ("x-gitlab-event", "Push Hook".to_string()),
            ("x-gitlab-event-uuid", uuid.clone()),
            ("x-gitlab-token", token.to_string()),
            ("authorization", format!("Bearer {TOKEN_ALICE}")),
            ("cookie", format!("pipewright_token={TOKEN_BOB}")),
        ]
    };
    let wrong = "not-the-secret-but-a-guess";
    assert_eq!(server.post_raw("/hooks/gitlab", &headers(wrong), body.clone()).0, 401);
    let (code, answer) = server.post_raw("/hooks/gitlab", &headers(SECRET), body);
    assert_eq!(code, 202, "{answer}");
    let builds = server.wait_for("the build", 60, |b| b.len() == 1 && b[0]["queue"]["state"] == "done");
    assert_eq!(builds[0]["status"], "SUCCESS", "{:#}", builds[0]);

    let stored = sqlite(data.path(), "SELECT headers FROM deliveries");
    let stored: Vec<(String, String)> = serde_json::from_str(&stored).expect("headers are JSON");
    let names: Vec<&str> = stored.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["content-type", "x-gitlab-event", "x-gitlab-event-uuid"], "{stored:?}");
    // Every byte the database has written (the file, its write-ahead log, its shared memory).
    let mut files = 0;
    for entry in std::fs::read_dir(data.path()).expect("list") {
        let path = entry.expect("entry").path();
        if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("pipewright.db")) {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).expect("read");
        for secret in [SECRET, wrong, TOKEN_ALICE, TOKEN_BOB] {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "`{secret}` is in {}", path.display());
        }
    }
    assert!(files >= 1, "no database file found");
}
