//! `pipewright serve` as a real process: signed webhooks from real payloads (edited to name the test's
//! repository and commits), builds in real containers, the JSON API, the dashboard, commit statuses
//! posted to a local fake of GitHub's statuses endpoint, kill -9 and restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::support::*;

pub const SECRET: &str = "ci-test-secret";
pub const TOKEN_ALICE: &str = "alice-token-0123456789";
pub const TOKEN_BOB: &str = "bob-token-0123456789ab";
/// The token of the author of every commit [`GitRepo`] makes.
pub const TOKEN_ADA: &str = "ada-token-0123456789abc";
/// In the server's environment as `PW_KFP_TOKEN`, for configs that list it in `credentials:`.
pub const KFP_TOKEN: &str = "kfp-token-0123456789";

/// A running `pipewright serve`.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data: PathBuf,
    config: PathBuf,
    port: u16,
    pub rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Server {
    /// Writes `config` (YAML; `repositories` etc.) and starts the server on a free port.
    pub fn start(data: &Path, config: &str) -> Server {
        let path = data.join("server.yaml");
        std::fs::write(&path, config).expect("write config");
        let port = free_port();
        let mut server = Server {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            data: data.to_path_buf(),
            config: path,
            port,
            rt: tokio::runtime::Runtime::new().expect("runtime"),
            http: reqwest::Client::new(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join("server.log"))
            .expect("server log");
        let child = pipewright()
            .args(["serve", "--config"])
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env("PW_SECRET", SECRET)
            .env("PW_ALICE", TOKEN_ALICE)
            .env("PW_BOB", TOKEN_BOB)
            .env("PW_ADA", TOKEN_ADA)
            .env("PW_STATUS_TOKEN", "status-token")
            .env("PW_KFP_TOKEN", KFP_TOKEN)
            .env("PIPEWRIGHT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("pipewright serve starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("the server exited with {status}:\n{}", self.log());
            }
            if self.get("/healthz").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not come up:\n{}", self.log());
    }

    /// The server process's id (for `/proc/<pid>/…`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
    }

    /// SIGKILL: no cleanup, no graceful anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn request(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let http = self.http.clone();
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let token = token.map(str::to_string);
        self.rt.block_on(async move {
            let mut request = http.request(method, &url).timeout(Duration::from_secs(30));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
                }
                Err(_) => (0, Value::Null),
            }
        })
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None, None)
    }

    /// Posts raw bytes with headers (a webhook delivery).
    pub fn post_raw(&self, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let http = self.http.clone();
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        self.rt.block_on(async move {
            let mut request = http.post(&url).body(body).timeout(Duration::from_secs(30));
            for (k, v) in headers {
                request = request.header(k, v);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
                }
                Err(e) => (0, Value::String(e.to_string())),
            }
        })
    }

    pub fn build(&self, id: &str) -> Value {
        let (status, build) = self.get(&format!("/v1/projects/local/builds/{id}"));
        assert_eq!(status, 200, "{build}");
        build
    }

    pub fn builds(&self) -> Vec<Value> {
        let (status, list) = self.get("/v1/projects/local/builds?pageSize=100");
        assert_eq!(status, 200, "{list}");
        list["builds"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `check` holds for the build list (or fails with the list and the server log).
    pub fn wait_for(&self, what: &str, seconds: u64, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let builds = self.builds();
            if check(&builds) {
                return builds;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}:\n{builds:#?}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn database(&self) -> pipewright::io::store::db::Database {
        self.rt.block_on(pipewright::io::store::db::Database::open(&self.data)).expect("database")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: the server cancels its builds and removes their containers before it exits.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fake of GitHub's commit statuses endpoint: records every `POST /repos/{o}/{r}/statuses/{sha}`.
pub struct FakeStatuses {
    pub url: String,
    pub posts: Arc<Mutex<Vec<(String, Value)>>>,
    _thread: std::thread::JoinHandle<()>,
}

impl FakeStatuses {
    pub fn start() -> FakeStatuses {
        use axum::routing::post;
        let posts: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let recorded = posts.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/repos/{owner}/{repo}/statuses/{sha}",
                    post(
                        move |axum::extract::Path((owner, repo, sha)): axum::extract::Path<(
                            String,
                            String,
                            String,
                        )>,
                              headers: axum::http::HeaderMap,
                              axum::Json(body): axum::Json<Value>| async move {
                            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                            if auth != "Bearer status-token" {
                                return (axum::http::StatusCode::UNAUTHORIZED, "bad token");
                            }
                            recorded.lock().expect("lock").push((format!("{owner}/{repo}@{sha}"), body));
                            (axum::http::StatusCode::CREATED, "{}")
                        },
                    ),
                );
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(listener, app).await;
            });
        });
        FakeStatuses { url, posts, _thread: thread }
    }

    /// (state, description, context) of every status posted for `sha`, in order.
    pub fn for_sha(&self, sha: &str) -> Vec<(String, String, String)> {
        self.posts
            .lock()
            .expect("lock")
            .iter()
            .filter(|(target, _)| target.ends_with(sha))
            .map(|(_, b)| {
                let text = |k: &str| b[k].as_str().unwrap_or("").to_string();
                (text("state"), text("description"), text("context"))
            })
            .collect()
    }

    /// Waits up to `secs` for a status on `sha` that `wanted` accepts: statuses are posted beside
    /// the record, so a build can read finished before its last status has arrived.
    pub fn wait_for(&self, sha: &str, secs: u64, wanted: impl Fn(&str, &str) -> bool) -> Vec<(String, String, String)> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let posted = self.for_sha(sha);
            if posted.iter().any(|(s, d, _)| wanted(s, d)) {
                return posted;
            }
            assert!(Instant::now() < deadline, "no such status for {sha} within {secs} s: {posted:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A GitHub `push` delivery for `repo` from the corpus payload, signed with [`SECRET`].
pub fn github_push(
    full_name: &str,
    branch: &str,
    before: &str,
    after: &str,
    message: &str,
) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let mut payload: Value =
        serde_json::from_slice(&std::fs::read(fixture("webhooks/github/push__branch.json")).expect("payload"))
            .expect("json");
    payload["ref"] = json!(format!("refs/heads/{branch}"));
    payload["before"] = json!(before);
    payload["after"] = json!(after);
    payload["created"] = json!(before.chars().all(|c| c == '0'));
    payload["repository"]["full_name"] = json!(full_name);
    payload["repository"]["name"] = json!(full_name.rsplit('/').next().unwrap_or(full_name));
    payload["head_commit"]["id"] = json!(after);
    payload["head_commit"]["message"] = json!(message);
    payload["commits"] = json!([]);
    signed("push", serde_json::to_vec(&payload).expect("json"))
}

/// A GitHub `pull_request` `synchronize` delivery for PR `number` with head `head`.
pub fn github_pull_request(
    full_name: &str,
    number: u64,
    base: &str,
    head: &str,
    head_branch: &str,
) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let mut payload: Value = serde_json::from_slice(
        &std::fs::read(fixture("webhooks/github/pull_request__synchronize.json")).expect("payload"),
    )
    .expect("json");
    payload["action"] = json!("synchronize");
    payload["number"] = json!(number);
    payload["pull_request"]["number"] = json!(number);
    payload["pull_request"]["head"]["sha"] = json!(head);
    payload["pull_request"]["head"]["ref"] = json!(head_branch);
    payload["pull_request"]["head"]["repo"]["full_name"] = json!(full_name);
    payload["pull_request"]["base"]["sha"] = json!(base);
    payload["pull_request"]["base"]["ref"] = json!("main");
    payload["pull_request"]["base"]["repo"]["full_name"] = json!(full_name);
    payload["repository"]["full_name"] = json!(full_name);
    signed("pull_request", serde_json::to_vec(&payload).expect("json"))
}

pub fn signed(event: &str, body: Vec<u8>) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-github-event", event.to_string()),
        ("x-github-delivery", uuid::Uuid::new_v4().to_string()),
        ("x-hub-signature-256", signature),
    ];
    (headers, body)
}

/// The server config for one GitHub repository served from a local path.
pub fn config(repo: &Path, statuses: Option<&str>, extra: &str) -> String {
    let statuses =
        statuses.map(|url| format!("  statuses: {{api: '{url}', token: env:PW_STATUS_TOKEN}}\n")).unwrap_or_default();
    format!(
        "maxBuilds: 2\npublicReads: true\ntokens:\n- {{name: alice, token: env:PW_ALICE}}\n- {{name: bob, token: env:PW_BOB}}\n\
         - {{name: 'ada@example.com', token: env:PW_ADA}}\n\
         repositories:\n- name: acme/demo\n  url: '{}'\n  forge: github\n  webhookSecret: env:PW_SECRET\n{statuses}{extra}",
        repo.display()
    )
}

fn id_of(b: &Value) -> String {
    b["id"].as_str().expect("id").to_string()
}

const DEMO: &str = "steps:
- id: hello
  name: local/busybox:1
  entrypoint: sh
  args: ['-c', 'echo building $COMMIT_SHA on $BRANCH_NAME; for i in 1 2 3; do echo line $$i; done']
triggers:
- name: main
  event: push
  branch: '^main$'
  ignoredFiles: ['docs/**', '**/*.md']
";

#[test]
fn a_signed_push_builds_and_a_docs_only_push_is_skipped_with_a_success_status() {
    if !docker_ready() {
        return;
    }
    let statuses = FakeStatuses::start();
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::with_config(DEMO);
    let first = repo.git(&["rev-parse", "HEAD"]);
    let server = Server::start(data.path(), &config(repo.path(), Some(&statuses.url), ""));

    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &first, "build file");
    let (code, answer) = server.post_raw("/hooks/github", &headers, body);
    assert_eq!(code, 202, "{answer}");
    let builds = server.wait_for("the build to succeed", 60, |b| b.len() == 1 && b[0]["status"] == "SUCCESS");
    let build = server.build(&id_of(&builds[0]));
    assert_eq!(build["trigger"]["name"], "main");
    assert_eq!(build["trigger"]["event"], "push");
    assert_eq!(build["substitutions"]["BRANCH_NAME"], "main");
    assert_eq!(build["source"]["gitSource"]["url"], repo.path().display().to_string());
    let (code, log) = server.get(&format!("/v1/projects/local/builds/{}/logs", id_of(&build)));
    assert_eq!(code, 200);
    let log = log.as_str().expect("text").to_string();
    assert!(log.contains(&format!("building {first} on main")), "{log}");

    // The dashboard lists it and shows its page.
    let (code, list) = server.get("/");
    assert_eq!(code, 200);
    assert!(list.as_str().expect("html").contains(&id_of(&build)[..8]));
    let (code, page) = server.get(&format!("/builds/{}", id_of(&build)));
    assert_eq!(code, 200);
    let page = page.as_str().expect("html").to_string();
    assert!(page.contains("line 3") && page.contains("SUCCESS") && page.contains("decision <b>build</b>"), "{page}");

    // A docs-only change: skipped, and GitHub hears success so the required check does not hang.
    repo.write("docs/guide.md", "# Guide\n");
    let second = repo.commit("docs only");
    let (headers, body) = github_push("acme/demo", "main", &first, &second, "docs only");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the docs push to be decided", 30, |b| b.len() == 2);
    let skipped = server.build(&id_of(&builds[0]));
    assert_eq!(skipped["status"], "SKIPPED", "{skipped:#}");
    assert!(skipped["trigger"]["reason"].as_str().expect("reason").contains("docs/**"), "{skipped:#}");

    let deadline = Instant::now() + Duration::from_secs(10);
    while statuses.for_sha(&second).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let posted = statuses.for_sha(&second);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0].0, "success");
    assert!(posted[0].1.starts_with("skipped: "), "{posted:?}");
    let first_statuses: Vec<String> =
        statuses.for_sha(&first).into_iter().map(|(s, _, c)| format!("{s} {c}")).collect();
    assert_eq!(first_statuses.first().map(String::as_str), Some("pending pipewright/main"));
    assert_eq!(first_statuses.last().map(String::as_str), Some("success pipewright/main"), "{first_statuses:?}");
    let target = statuses.posts.lock().expect("lock")[0].1["target_url"].as_str().unwrap_or("").to_string();
    assert_eq!(target, format!("{}/builds/{}", server.url, id_of(&build)));
}

#[test]
fn webhook_intake_answers_and_keeps_only_verified_new_deliveries() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config(DEMO);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let server = Server::start(data.path(), &config(repo.path(), None, "maxBodyBytes: 65536\n"));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "build file");
    let without = |name: &str| headers.iter().filter(|(k, _)| *k != name).cloned().collect::<Vec<_>>();

    let mut tampered = body.clone();
    tampered.push(b' ');
    let (code, answer) = server.post_raw("/hooks/github", &headers, tampered);
    assert_eq!(code, 401, "{answer}");
    assert!(answer["error"].as_str().unwrap_or("").contains("does not match the body"), "{answer}");
    let (code, answer) = server.post_raw("/hooks/github", &without("x-hub-signature-256"), body.clone());
    assert_eq!(code, 401, "{answer}");
    assert!(answer["error"].as_str().unwrap_or("").contains("X-Hub-Signature-256"), "{answer}");
    let (big_headers, big) = signed("push", vec![b' '; 70_000]);
    assert_eq!(server.post_raw("/hooks/github", &big_headers, big).0, 413);
    let (bad_headers, bad) = signed("push", b"{\"ref\": ".to_vec());
    let (code, answer) = server.post_raw("/hooks/github", &bad_headers, bad);
    assert_eq!(code, 400, "{answer}");
    let (ping_headers, ping) = signed("ping", std::fs::read(fixture("webhooks/github/ping.json")).expect("ping"));
    assert_eq!(server.post_raw("/hooks/github", &ping_headers, ping).0, 200);
    let (code, answer) = server.post_raw("/hooks/gitlab", &headers, body.clone());
    assert_eq!(code, 401, "no GitLab repository is configured: {answer}");

    let (code, answer) = server.post_raw("/hooks/github", &headers, body.clone());
    assert_eq!(code, 202, "{answer}");
    let (code, answer) = server.post_raw("/hooks/github", &headers, body);
    assert_eq!((code, &answer["duplicate"]), (200, &json!(true)), "a redelivery: {answer}");

    let db = server.database();
    assert_eq!(server.rt.block_on(db.delivery_count()).expect("count"), 1, "only the verified, new delivery is kept");
    // The record says SUCCESS a moment before the queue row is done; the gauge counts queue rows.
    let builds = server.wait_for("the build", 60, |b| {
        !b.is_empty() && b[0]["status"] == "SUCCESS" && b[0]["queue"]["state"] == "done"
    });
    assert_eq!(builds.len(), 1);
    let (_, metrics) = server.get("/metrics");
    let metrics = metrics.as_str().expect("text").to_string();
    for line in [
        "pipewright_webhook_deliveries_total{result=\"accepted\"} 1",
        "pipewright_webhook_deliveries_total{result=\"duplicate\"} 1",
        "pipewright_webhook_deliveries_total{result=\"unauthorized\"} 3",
        "pipewright_webhook_deliveries_total{result=\"malformed\"} 1",
        "pipewright_builds{status=\"SUCCESS\"} 1",
    ] {
        assert!(metrics.contains(line), "no `{line}` in:\n{metrics}");
    }
}

const SLOW: &str = "steps:
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
  concurrency: {group: 'pr-$_PR_NUMBER', cancelInProgress: true}
";

fn containers_of(build_id: &str) -> usize {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=pipewright.build={build_id}")])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).split_whitespace().count()
}

fn of_sha<'a>(builds: &'a [Value], sha: &str) -> Vec<&'a Value> {
    builds.iter().filter(|b| b["commit"]["sha"] == sha).collect()
}

#[test]
fn kill_9_during_a_build_loses_nothing_and_duplicates_nothing() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::with_config(SLOW);
    repo.write("slow", "");
    let slow = repo.commit("slow");
    let mut server = Server::start(data.path(), &config(repo.path(), None, ""));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &slow, "slow");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the build to run", 60, |b| b.len() == 1 && b[0]["status"] == "WORKING");
    let interrupted = id_of(&builds[0]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while containers_of(&interrupted) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(containers_of(&interrupted), 1, "the step's container runs");

    // One more delivery, answered, then the server dies at once.
    std::fs::remove_file(repo.path().join("slow")).expect("rm");
    let quick = repo.commit("quick");
    let (headers, body) = github_push("acme/demo", "main", &slow, &quick, "quick");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    server.kill9();
    assert_eq!(containers_of(&interrupted), 1, "kill -9 cleans nothing up");

    server.restart();
    let builds = server.wait_for("the builds to end", 90, |b| {
        b.len() == 2 && b.iter().all(|x| !matches!(x["status"].as_str(), Some("QUEUED" | "WORKING")))
    });
    let first = server.build(&interrupted);
    assert_eq!(first["status"], "INTERNAL_ERROR", "{first:#}");
    assert!(first["statusDetail"].as_str().unwrap_or("").contains("stopped while the build was running"), "{first:#}");
    assert_eq!(containers_of(&interrupted), 0, "the restarted server removed what the build left");
    assert_eq!(of_sha(&builds, &quick).len(), 1, "the delivery answered before the kill built exactly once");
    let db = server.database();
    assert_eq!(server.rt.block_on(db.delivery_count()).expect("count"), 2);
    assert!(server.rt.block_on(db.pending_deliveries(10)).expect("pending").is_empty());
}

#[test]
fn a_newer_pull_request_push_cancels_the_older_build_and_deploys_queue_in_order() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::with_config(SLOW);
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("slow", "");
    let older = repo.commit("slow change");
    let server = Server::start(data.path(), &config(repo.path(), None, ""));
    let (headers, body) = github_pull_request("acme/demo", 7, &base, &older, "feature");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the PR build to run", 60, |b| b.len() == 1 && b[0]["status"] == "WORKING");
    let superseded = id_of(&builds[0]);
    assert_eq!(server.build(&superseded)["substitutions"]["_PR_NUMBER"], "7");

    std::fs::remove_file(repo.path().join("slow")).expect("rm");
    let newer = repo.commit("fix");
    let (headers, body) = github_pull_request("acme/demo", 7, &base, &newer, "feature");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the newer PR build", 60, |b| {
        b.len() == 2 && of_sha(b, &newer).first().is_some_and(|x| x["status"] == "SUCCESS")
    });
    assert_eq!(of_sha(&builds, &older)[0]["status"], "CANCELLED");
    assert_eq!(containers_of(&superseded), 0, "the cancelled build's container was stopped and removed");

    // Three pushes to main at once: the deploy group runs them one at a time, in arrival order.
    repo.git(&["checkout", "-q", "main"]);
    let mut shas = Vec::new();
    let mut before = base.clone();
    for i in 0..3 {
        repo.write("n", &i.to_string());
        let sha = repo.commit(&format!("deploy {i}"));
        let (headers, body) = github_push("acme/demo", "main", &before, &sha, "deploy");
        assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
        before = sha.clone();
        shas.push(sha);
    }
    let builds = server.wait_for("the deploys", 120, |b| {
        shas.iter().all(|s| of_sha(b, s).first().is_some_and(|x| x["status"] == "SUCCESS"))
    });
    let spans: Vec<(f64, f64)> = shas
        .iter()
        .map(|s| {
            let b = of_sha(&builds, s)[0];
            (timestamp(&b["startTime"]), timestamp(&b["finishTime"]))
        })
        .collect();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "deploys overlapped or ran out of order: {spans:?}");
    }
}

pub const RELEASED: &str = "steps:
- name: local/busybox:1
  args: [echo, built]
triggers:
- {name: main, event: push, branch: '^main$'}
- {name: pr, event: pull_request, branch: '^main$'}
environments:
- name: dev
  branches: ['^main$']
  auto: true
- name: prod
  approval: {required: 1, preventSelfApproval: true}
";

/// A signed-in browser: its session cookie and the CSRF token the server's pages carry for it.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

impl Server {
    /// A request as a browser sends it, without following redirects: status, headers, body.
    pub fn browse(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let url = format!("{}{path}", self.url);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let body = body.to_string();
        self.rt.block_on(async move {
            let client =
                reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
            let mut request = client.request(method, &url).body(body);
            for (k, v) in headers {
                request = request.header(k, v);
            }
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            (status, headers, response.text().await.unwrap_or_default())
        })
    }

    /// Signs in at `/login` with `token` as the dashboard's form does, then reads the CSRF token
    /// from the build list's sign-out form.
    pub fn sign_in(&self, token: &str) -> Browser {
        let form = [("content-type", "application/x-www-form-urlencoded".to_string())];
        let (code, headers, text) = self.browse("POST", "/login", &form, &format!("token={token}"));
        assert_eq!(code, 303, "sign-in: {text}");
        let set = headers.iter().find(|(k, _)| k == "set-cookie").map(|(_, v)| v.clone()).expect("a session cookie");
        let cookie = set.split(';').next().expect("name=value").to_string();
        let (code, _, page) = self.browse("GET", "/", &[("cookie", cookie.clone())], "");
        assert_eq!(code, 200, "{page}");
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page carries a CSRF token")
            .to_string();
        Browser { cookie, csrf }
    }

    /// A dashboard form post by a browser signed in with `token` (its CSRF token added); returns the
    /// page it redirects to.
    pub fn form(&self, path: &str, token: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let browser = self.sign_in(token);
        let url = format!("{}{path}", self.url);
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        fields.push(("csrf", &browser.csrf));
        let body: String =
            fields.iter().map(|(k, v)| format!("{k}={}", v.replace(' ', "+"))).collect::<Vec<_>>().join("&");
        let http = self.http.clone();
        self.rt.block_on(async move {
            let response = http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", browser.cookie)
                .body(body)
                .send()
                .await
                .expect("dashboard answers");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        })
    }
}

#[test]
fn promotions_through_the_api_and_the_dashboard_follow_the_same_rules() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let mut repo = GitRepo::with_config(RELEASED);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let server = Server::start(data.path(), &config(repo.path(), None, ""));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "build file");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    // The record says SUCCESS before `auto` promotion runs; the queue row is done after it.
    let builds = server
        .wait_for("the build", 60, |b| b.len() == 1 && b[0]["status"] == "SUCCESS" && b[0]["queue"]["state"] == "done");
    let id = id_of(&builds[0]);
    let (_, envs) = server.get("/v1/environments");
    assert_eq!(envs["environments"][0]["environment"], "dev", "auto promotion: {envs}");
    assert_eq!(envs["environments"][0]["buildId"], id.as_str());

    let promote = format!("/v1/projects/local/builds/{id}:promote");
    let approve = format!("/v1/projects/local/builds/{id}:approve");
    let prod = json!({"environment": "prod", "comment": "ship it"});
    let (code, answer) = server.request("POST", &promote, None, Some(prod.clone()));
    assert_eq!(code, 401, "{answer}");
    let (code, answer) = server.request("POST", &promote, Some(TOKEN_ALICE), Some(prod.clone()));
    assert_eq!(code, 409, "{answer}");
    assert_eq!(answer["error"]["details"][0]["rule"], "approval");
    assert_eq!(answer["error"]["details"][0]["detail"], "0 of 1 approval given");
    let (code, answer) = server.request("POST", &approve, Some(TOKEN_ADA), Some(prod.clone()));
    assert_eq!(code, 409, "the commit's author cannot approve it: {answer}");
    assert_eq!(answer["error"]["details"][0]["rule"], "no self-approval");
    let (code, answer) = server.request("POST", &approve, Some(TOKEN_ALICE), Some(prod.clone()));
    assert_eq!(code, 200, "{answer}");
    let (code, answer) = server.request("POST", &promote, Some(TOKEN_ALICE), Some(prod.clone()));
    assert_eq!(code, 409, "the approver cannot also be the promoter: {answer}");

    // The dashboard's button goes through the same rules and shows the refusal.
    let (code, page) = server.form(&format!("/builds/{id}/promote"), TOKEN_ALICE, &[("environment", "prod")]);
    assert_eq!(code, 200);
    assert!(page.contains("may not enter `prod`") && page.contains("approval: 0 of 1 approval given"), "{page}");
    let (code, page) =
        server.form(&format!("/builds/{id}/promote"), TOKEN_BOB, &[("environment", "prod"), ("comment", "ship it")]);
    assert_eq!(code, 200);
    assert!(page.contains("promoted to prod"), "{page}");
    let (_, history) = server.get("/v1/environments/prod/history");
    let audit: Vec<String> = history["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["actor"].as_str().unwrap_or(""),
                a["action"].as_str().unwrap_or(""),
                a["result"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        audit,
        [
            "alice promote refused",
            "ada@example.com approve refused",
            "alice approve ok",
            "alice promote refused",
            "alice promote refused",
            "bob promote ok",
        ]
    );

    // A pull request from a fork builds, without secrets, and can never be promoted.
    repo.git(&["checkout", "-q", "-b", "contrib"]);
    let forked = repo.commit("from a fork");
    let (_, body) = github_pull_request("acme/demo", 9, &head, &forked, "contrib");
    let mut payload: Value = serde_json::from_slice(&body).expect("json");
    payload["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/demo");
    payload["pull_request"]["head"]["repo"]["fork"] = json!(true);
    let (headers, body) = signed("pull_request", serde_json::to_vec(&payload).expect("json"));
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    // It waits for an approval first (crates/core/src/trust.rs), then runs in the sandbox.
    let builds = server.wait_for("the fork's build to wait", 60, |b| {
        of_sha(b, &forked).first().is_some_and(|x| x["status"] == "PENDING")
    });
    let fork_id = id_of(of_sha(&builds, &forked)[0]);
    assert_eq!(server.build(&fork_id)["statusDetail"], "waiting for approval");
    let (code, answer) = server.request(
        "POST",
        &format!("/v1/projects/local/builds/{fork_id}:approve"),
        Some(TOKEN_BOB),
        Some(json!({})),
    );
    assert_eq!(code, 200, "{answer}");
    let builds = server
        .wait_for("the fork's build", 90, |b| of_sha(b, &forked).first().is_some_and(|x| x["status"] == "SUCCESS"));
    assert_eq!(id_of(of_sha(&builds, &forked)[0]), fork_id);
    let fork = server.build(&fork_id);
    assert_eq!((fork["trigger"]["fork"].clone(), fork["trust"]["level"].clone()), (json!(true), json!("untrusted")));
    assert_eq!(fork["executor"], "sandbox");
    let (code, answer) = server.request(
        "POST",
        &format!("/v1/projects/local/builds/{fork_id}:promote"),
        Some(TOKEN_BOB),
        Some(json!({"environment": "dev"})),
    );
    assert_eq!(code, 409, "{answer}");
    assert!(
        answer["error"]["details"].as_array().expect("details").iter().any(|d| d["rule"] == "trusted builds only"),
        "{answer}"
    );
}

const TICKING: &str = "steps:
- id: ticker
  name: local/busybox:1
  entrypoint: sh
  args: ['-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo tick $$i; sleep 0.5; done']
";

/// Debian's `chromium`, headless; `None` (SKIPPED, or a failure in CI) when it is not installed.
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()));
    if found.is_none() {
        if std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("chromium is missing (run `.ci/setup`)");
        }
        eprintln!("SKIPPED: chromium is not installed");
    }
    found
}

fn headless(browser: &str, args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_dashboard_renders_in_chromium_and_streams_a_running_log() {
    if !docker_ready() {
        return;
    }
    let Some(browser) = chromium() else { return };
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config(TICKING);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let server = Server::start(data.path(), &config(repo.path(), None, ""));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "ticking");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the build to start", 60, |b| b.len() == 1 && b[0]["status"] == "WORKING");
    let id = id_of(&builds[0]);
    let page = format!("{}/builds/{id}", server.url);

    // Loaded while the build runs, the page then receives lines written after it was rendered.
    let (_, rendered) = server.get(&format!("/builds/{id}"));
    assert!(!rendered.as_str().unwrap_or("").contains("tick 12"), "the build has not finished yet");
    let dom = headless(browser, &["--virtual-time-budget=20000", "--dump-dom"], &page);
    assert!(dom.contains("tick 12"), "the log did not stream:\n{dom}");
    assert!(dom.contains(r#"id="status" class="status SUCCESS""#), "the status did not follow the end:\n{dom}");

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    for (name, url) in [("dashboard-builds.png", format!("{}/", server.url)), ("dashboard-build.png", page)] {
        let shot = artifacts.join(name);
        let _ = std::fs::remove_file(&shot);
        headless(browser, &["--window-size=1280,900", &format!("--screenshot={}", shot.display())], &url);
        let bytes = std::fs::read(&shot).unwrap_or_else(|_| panic!("no screenshot {}", shot.display()));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{name} is not a real screenshot");
    }
    let list = headless(browser, &["--dump-dom"], &format!("{}/", server.url));
    assert!(list.contains(&id[..8]) && list.contains("SUCCESS"), "{list}");
}

/// A committed pipeline spec, `image` in its one executor and caching `cache`.
fn tiny_ir(image: &str, cache: bool) -> String {
    format!(
        "pipelineInfo:\n  name: tiny\nschemaVersion: 2.1.0\nsdkVersion: kfp-2.14.6\nroot:\n  dag:\n    tasks:\n      comp:\n        cachingOptions: {{enableCache: {cache}}}\n        componentRef: {{name: comp-comp}}\n        taskInfo: {{name: comp}}\ncomponents:\n  comp-comp:\n    executorLabel: exec-comp\ndeploymentSpec:\n  executors:\n    exec-comp:\n      container:\n        image: {image}\n        command: [sh, -c, echo hi]\n"
    )
}

#[test]
fn the_build_page_shows_the_spec_diff_against_each_environments_release() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let build_file = "steps:\n- {name: local/busybox:1, args: ['true']}\npipeline:\n  name: tiny\n  spec: ir.yaml\n\
                      triggers:\n- {name: any, event: push, branch: '.*'}\n\
                      environments:\n- {name: dev, branches: ['^main$'], auto: true}\n";
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", build_file).write("ir.yaml", &tiny_ir("acme/comp:1", true));
    let first = repo.commit("first");
    let server = Server::start(data.path(), &config(repo.path(), None, ""));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &first, "first");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the main build", 60, |b| {
        b.len() == 1 && b[0]["status"] == "SUCCESS" && b[0]["queue"]["state"] == "done"
    });
    let released = id_of(&builds[0]);
    let (_, envs) = server.get("/v1/environments");
    assert_eq!(envs["environments"][0]["buildId"], released.as_str(), "in dev: {envs}");

    repo.git(&["checkout", "-q", "-b", "faster"]);
    repo.write("ir.yaml", &tiny_ir("acme/comp:2", false));
    let second = repo.commit("a newer image, no cache");
    let (headers, body) = github_push("acme/demo", "faster", &"0".repeat(40), &second, "second");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server
        .wait_for("the branch build", 60, |b| of_sha(b, &second).first().is_some_and(|x| x["status"] == "SUCCESS"));
    let candidate = id_of(of_sha(&builds, &second)[0]);
    let (code, page) = server.get(&format!("/builds/{candidate}"));
    assert_eq!(code, 200);
    let page = page.as_str().expect("html").replace("&#x2f;", "/");
    assert!(page.contains(&format!("Against dev (build {})", &released[..8])), "{page}");
    assert!(page.contains("image      exec-comp: acme/comp:1 → …:2"), "the image change: {page}");
    assert!(page.contains("caching    root/comp: on → off"), "the caching change: {page}");
    let (_, page) = server.get(&format!("/builds/{released}"));
    assert!(!page.as_str().expect("html").contains("Against dev"), "no diff against itself");
}
