//! docs/THREATS.md property 1 and 2, played for real: a fork's pull request, sent to a real `pipewright
//! serve` as a signed GitHub webhook, runs steps that try to get out, and every attempt fails. The
//! untrusted build runs on the sandbox executor (the private engine `steps/sandbox/start.sh` starts,
//! under gVisor's `runsc`); each test checks from outside that nothing moved and nothing was left.
//!
//! The attack steps print what they found (`FOUND …`, `OPEN …`) and the tests read the build's log,
//! so a step that got through fails the test by what it says, not only by its exit code.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::{SECRET, Server, TOKEN_BOB, config, github_push, signed};
use crate::support::*;

/// The socket of the sandbox's engine (steps/sandbox/start.sh).
const SANDBOX: &str = "unix:///run/pipewright-sandbox/docker.sock";
const PYTHON: &str = "local/python:3.11";

/// True when the sandbox tests can run: Docker, and the sandbox's engine. In CI (`.ci/setup` starts
/// it) a missing sandbox is a failure.
fn sandbox_ready() -> bool {
    if !docker_ready() {
        return false;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    match rt.block_on(pipewright::io::docker::Docker::connect_to(SANDBOX)) {
        Ok(_) => true,
        Err(e) => {
            let why = pipewright::error_chain(&e);
            if std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
                panic!("the sandbox tests need the sandbox engine (`steps/sandbox/start.sh`): {why}");
            }
            eprintln!("SKIPPED: no sandbox engine (`steps/sandbox/start.sh`): {why}");
            false
        }
    }
}

/// A repository whose `main` builds `BASE`, a server for it, and a way to open a fork's pull request.
struct Fixture {
    repo: GitRepo,
    base: String,
    server: Server,
    _data: tempfile::TempDir,
}

/// What `main` builds: a trusted push is one step.
const BASE: &str = "steps:\n- name: local/busybox:1\n  args: [echo, base]\n";

impl Fixture {
    /// `extra` goes under the repository in the server config; `top` at the top level.
    fn new(extra: &str, top: &str) -> Fixture {
        let mut repo = GitRepo::new();
        repo.write("cloudbuild.yaml", BASE);
        let base = repo.commit("base");
        let data = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "{}{top}secrets: {{HF_TOKEN: env:PW_STATUS_TOKEN}}\n\
             sandbox:\n  docker: '{SANDBOX}'\n  limits: {{memory: 512MiB, workspace: 1GiB}}\n",
            config(repo.path(), None, extra)
        );
        let server = Server::start(data.path(), &text);
        Fixture { repo, base, server, _data: data }
    }

    /// Commits `build_file` on a branch and sends the pull request as coming from the fork
    /// `mallory/demo`; returns the head commit.
    fn fork_pull_request(&mut self, number: u64, build_file: &str) -> String {
        self.repo.git(&["checkout", "-q", "-B", &format!("contrib-{number}"), &self.base]);
        self.repo.write("cloudbuild.yaml", build_file);
        let head = self.repo.commit("a change from a fork");
        self.repo.git(&["checkout", "-q", "main"]);
        let (_, body) = crate::server::github_pull_request("acme/demo", number, &self.base, &head, "patch");
        let mut payload: Value = serde_json::from_slice(&body).expect("json");
        payload["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/demo");
        payload["pull_request"]["head"]["repo"]["clone_url"] = json!("https://github.com/mallory/demo.git");
        payload["pull_request"]["head"]["repo"]["fork"] = json!(true);
        let (headers, body) = signed("pull_request", serde_json::to_vec(&payload).expect("json"));
        let (code, answer) = self.server.post_raw("/hooks/github", &headers, body);
        assert_eq!(code, 202, "{answer}");
        head
    }

    /// Waits for the one build of `sha` to reach a status in `statuses`; returns its record.
    fn wait(&self, sha: &str, statuses: &[&str], seconds: u64) -> Value {
        let builds = self.server.wait_for(&format!("a build of {sha} in {statuses:?}"), seconds, |b| {
            b.iter().any(|x| x["commit"]["sha"] == sha && statuses.iter().any(|s| x["status"] == *s))
        });
        let id = builds.iter().find(|x| x["commit"]["sha"] == sha).and_then(|x| x["id"].as_str()).expect("id");
        self.server.build(id)
    }

    /// The build's whole log.
    fn log(&self, build: &Value) -> String {
        let id = build["id"].as_str().expect("id");
        let (code, text) = self.server.get(&format!("/v1/projects/local/builds/{id}/logs"));
        assert_eq!(code, 200);
        text.as_str().unwrap_or_default().to_string()
    }
}

/// Runs one attack as a fork's pull request (no approval needed here: approval has its own tests) and
/// returns the ended build and its log, after checking the build ran untrusted, sandboxed, and left
/// nothing behind.
fn attack(step_image: &str, script: &str) -> (Value, String, Fixture) {
    let mut f = Fixture::new("  approval: never\n", "");
    let (build, log) = attack_on(&mut f, step_image, script);
    (build, log, f)
}

/// [`attack`] on a server the test already has.
fn attack_on(f: &mut Fixture, step_image: &str, script: &str) -> (Value, String) {
    let file = format!(
        "steps:\n- id: attack\n  name: {step_image}\n  secretEnv: [HF_TOKEN]\n  script: |\n{}\n\
         availableSecrets:\n  secretManager:\n  - {{versionName: projects/p/secrets/hf/versions/1, env: HF_TOKEN}}\n",
        indent(script)
    );
    let head = f.fork_pull_request(7, &file);
    let build = f.wait(&head, &["SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT"], 180);
    assert_eq!(build["trust"]["level"], "untrusted", "{build:#}");
    assert_eq!(build["executor"], "sandbox", "{build:#}");
    let log = f.log(&build);
    assert!(!log.contains("status-token"), "a secret reached the untrusted build:\n{log}");
    assert_nothing_left(f, &build);
    (build, log)
}

fn indent(script: &str) -> String {
    script.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// No container, volume or network of the build on either engine, no disk, no work directory, and no
/// gVisor sandbox without a container.
fn assert_nothing_left(f: &Fixture, build: &Value) {
    let id = build["id"].as_str().expect("id");
    assert_eq!(labelled(id), (0, 0, 0), "the host engine keeps resources of {id}");
    assert_eq!(labelled_at(SANDBOX, id), (0, 0, 0), "the sandbox's engine keeps resources of {id}");
    // The work directory goes right after the record is written: give it a moment.
    let work = f.server.data.join("work");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<_> = std::fs::read_dir(&work)
            .map(|d| {
                d.filter_map(Result::ok).map(|e| e.file_name()).filter(|n| n.to_string_lossy().contains(id)).collect()
            })
            .unwrap_or_default();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left in {}: {left:?}", work.display());
        std::thread::sleep(Duration::from_millis(200));
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    assert!(!mounts.contains(id), "a mount of {id} is left:\n{mounts}");
    assert_no_orphan_sandboxes();
}

/// Every `runsc-sandbox` process belongs to a container the sandbox's engine still has: a build that
/// ended left no gVisor sandbox running.
fn assert_no_orphan_sandboxes() {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running = sandbox_containers();
        let orphans: Vec<String> =
            runsc_sandboxes().into_iter().filter(|c| !running.iter().any(|r| r.starts_with(c.as_str()))).collect();
        if orphans.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("gVisor sandboxes without a container: {orphans:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The container id (last argument) of every `runsc-sandbox` process.
fn runsc_sandboxes() -> Vec<String> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("proc").filter_map(Result::ok) {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> =
            cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into()).collect();
        if args.first().is_some_and(|a| a == "runsc-sandbox")
            && let Some(id) = args.last()
        {
            ids.push(id.clone());
        }
    }
    ids
}

fn sandbox_containers() -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["-H", SANDBOX, "ps", "-aq", "--no-trunc"])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Resources labelled `pipewright.build=<id>` on the engine at `host`.
fn labelled_at(host: &str, build_id: &str) -> (usize, usize, usize) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let docker = pipewright::io::docker::Docker::connect_to(host).await.expect("engine");
        let found = docker.list_labelled(&format!("pipewright.build={build_id}")).await.expect("list");
        (found.containers.len(), found.volumes.len(), found.networks.len())
    })
}

/// The step's failure detail, for messages.
fn detail(build: &Value) -> String {
    build["failureInfo"]["detail"].as_str().unwrap_or_default().to_string()
}

#[test]
fn sandbox_a_fork_finds_no_docker_socket_anywhere() {
    if !sandbox_ready() {
        return;
    }
    let script = r#"#!/usr/bin/env python3
import os, socket
paths = ["/var/run/docker.sock", "/run/docker.sock", "/run/pipewright-sandbox/docker.sock"]
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev")]
    paths += [os.path.join(top, f) for f in files if f.endswith(".sock")]
for p in sorted(set(paths)):
    if os.path.exists(p):
        print("FOUND", p)
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(p)
            s.sendall(b"GET /version HTTP/1.0\r\n\r\n"); print("ANSWER", s.recv(200))
        except OSError as e:
            print("refused", p, e)
# The engine over TCP, where a careless host might listen.
for host in ["127.0.0.1", "172.17.0.1", "192.0.2.2"]:
    for port in [2375, 2376]:
        try:
            socket.create_connection((host, port), timeout=2); print("OPEN", host, port)
        except OSError as e:
            print("closed", host, port, e.__class__.__name__)
print("checked")
"#;
    let (build, log, _f) = attack(PYTHON, script);
    assert_eq!(build["status"], "SUCCESS", "{}\n{log}", detail(&build));
    assert!(log.contains("checked"), "{log}");
    assert!(!log.contains("FOUND") && !log.contains("ANSWER") && !log.contains("OPEN"), "{log}");
}

#[test]
fn sandbox_a_docker_step_of_a_fork_fails_before_anything_runs() {
    if !sandbox_ready() {
        return;
    }
    let mut f = Fixture::new("  approval: never\n", "");
    let file = "steps:\n- id: lint\n  name: local/busybox:1\n  args: [touch, /workspace/ran]\n\
                - id: image\n  name: gcr.io/cloud-builders/docker\n  args: [run, -v, '/:/host', local/busybox:1, cat, /host/etc/shadow]\n";
    let head = f.fork_pull_request(8, file);
    let build = f.wait(&head, &["FAILURE"], 120);
    let why = detail(&build);
    assert!(
        why.contains("step 1 (image) (`gcr.io/cloud-builders/docker`) needs a Docker daemon, which untrusted builds do not get here"),
        "{why}"
    );
    assert!(
        build["steps"].as_array().expect("steps").iter().all(|s| s["status"] == "QUEUED"),
        "nothing ran: {build:#}"
    );
    assert_nothing_left(&f, &build);
}

#[test]
fn sandbox_a_fork_cannot_read_the_hosts_processes_config_or_data() {
    if !sandbox_ready() {
        return;
    }
    // The paths are the real ones of the test's server: the step knows exactly where to look.
    let probe = tempfile::tempdir().expect("tempdir");
    let data_hint = probe.path().display().to_string();
    let script = format!(
        r#"#!/usr/bin/env python3
import glob, os
for path in ["/proc/1/environ", "/proc/self/environ"]:
    data = open(path, "rb").read()
    print(path, "has the webhook secret" if b"{SECRET}" in data else "is the sandbox's own")
for path in glob.glob("/proc/*/cmdline"):
    try:
        if b"pipewright" in open(path, "rb").read(): print("FOUND a host process", path)
    except OSError: pass
for path in ["DATA/server.yaml", "DATA/pipewright.db", "DATA/work", "{data_hint}", "/etc/docker/key.json",
             "/var/lib/pipewright-ci", "/var/lib/pipewright-sandbox", "/run/pipewright-sandbox"]:
    print(path, "FOUND" if os.path.exists(path) else "absent")
print("hostname", open("/etc/hostname").read().strip())
"#
    );
    let mut f = Fixture::new("  approval: never\n", "");
    let data = f.server.data.display().to_string();
    let file =
        format!("steps:\n- id: attack\n  name: {PYTHON}\n  script: |\n{}\n", indent(&script.replace("DATA", &data)));
    let host_files_before = std::fs::read(f.server.data.join("server.yaml")).expect("config");
    let head = f.fork_pull_request(9, &file);
    let build = f.wait(&head, &["SUCCESS", "FAILURE"], 180);
    let log = f.log(&build);
    assert_eq!(build["status"], "SUCCESS", "{}\n{log}", detail(&build));
    assert!(log.contains("/proc/1/environ is the sandbox's own"), "{log}");
    assert!(!log.contains("has the webhook secret") && !log.contains("FOUND"), "{log}");
    assert!(log.contains(&format!("{data}/server.yaml absent")), "{log}");
    assert_eq!(std::fs::read(f.server.data.join("server.yaml")).expect("config"), host_files_before);
    assert_nothing_left(&f, &build);
}

#[test]
fn sandbox_a_fork_reaches_no_host_port_loopback_or_metadata_address() {
    if !sandbox_ready() {
        return;
    }
    // A host service on every address, as a careless one would listen.
    let service = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = service.local_addr().expect("addr").port();
    let mut f = Fixture::new("  approval: never\n", "");
    let server_port: u16 = f.server.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let script = format!(
        r#"#!/usr/bin/env python3
import socket
targets = [("127.0.0.1", {server_port}), ("127.0.0.1", {port}), ("172.17.0.1", {port}), ("192.0.2.2", {port}),
           ("192.0.2.2", {server_port}), ("169.254.169.254", 80), ("10.0.2.2", {port})]
for host, port in targets:
    try:
        socket.create_connection((host, port), timeout=3); print("OPEN", host, port)
    except OSError as e:
        print("blocked", host, port, e.__class__.__name__)
print("checked")
"#
    );
    let (build, log) = attack_on(&mut f, PYTHON, &script);
    assert_eq!(build["status"], "SUCCESS", "{}\n{log}", detail(&build));
    assert!(log.contains("checked") && !log.contains("OPEN"), "{log}");
    // From the host the service answers: the test is not vacuous.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(std::net::TcpStream::connect(("127.0.0.1", server_port)).is_ok());
}

#[test]
fn sandbox_a_fork_cannot_see_or_touch_a_concurrent_trusted_build() {
    if !sandbox_ready() {
        return;
    }
    let mut f = Fixture::new("  approval: never\n", "");
    // A trusted push that keeps a file and a listening service for 25 seconds, and checks its file after.
    f.repo.write(
        "cloudbuild.yaml",
        "steps:\n- id: service\n  name: local/busybox:1\n  entrypoint: sh\n  args: ['-c', 'echo precious > /workspace/mine; \
         (echo hello | nc -l -p 8080 &); sleep 25; cat /workspace/mine; test \"$(cat /workspace/mine)\" = precious']\n",
    );
    let trusted = f.repo.commit("a long trusted build");
    let (headers, body) = github_push("acme/demo", "main", &f.base, &trusted, "a long trusted build");
    assert_eq!(f.server.post_raw("/hooks/github", &headers, body).0, 202);
    let running = f.wait(&trusted, &["WORKING"], 60);
    let trusted_id = running["id"].as_str().expect("id").to_string();
    std::thread::sleep(Duration::from_secs(2));
    let data = f.server.data.display().to_string();
    let script = format!(
        r#"#!/usr/bin/env python3
import os, socket, subprocess
for path in ["{data}/work/{trusted_id}/checkout/mine", "{data}/work/{trusted_id}", "{data}/builds/{trusted_id}/log.txt"]:
    print(path, "FOUND" if os.path.exists(path) else "absent")
for host in ["step_0", "service", "pipewright-{trusted_id}-step-0"]:
    try:
        socket.create_connection((host, 8080), timeout=3); print("OPEN", host)
    except OSError as e:
        print("blocked", host, e.__class__.__name__)
# Every address of the trusted build's network range on the host engine.
for last in range(1, 6):
    for net in ["172.18.0", "172.19.0", "172.20.0", "192.168.32"]:
        try:
            socket.create_connection((f"{{net}}.{{last}}", 8080), timeout=0.5); print("OPEN", net, last)
        except OSError: pass
print("checked")
"#
    );
    let file = format!("steps:\n- id: attack\n  name: {PYTHON}\n  script: |\n{}\n", indent(&script));
    let head = f.fork_pull_request(10, &file);
    let fork = f.wait(&head, &["SUCCESS", "FAILURE"], 180);
    let log = f.log(&fork);
    assert_eq!(fork["status"], "SUCCESS", "{}\n{log}", detail(&fork));
    assert!(log.contains("checked") && !log.contains("FOUND") && !log.contains("OPEN"), "{log}");
    let trusted = f.wait(&trusted, &["SUCCESS", "FAILURE"], 120);
    assert_eq!(trusted["status"], "SUCCESS", "the trusted build was disturbed: {}", detail(&trusted));
    assert!(f.log(&trusted).contains("precious"));
    assert_nothing_left(&f, &fork);
    assert_nothing_left(&f, &trusted);
}

#[test]
fn sandbox_a_fork_bomb_ends_the_build_and_nothing_else() {
    if !sandbox_ready() {
        return;
    }
    let script = "#!/bin/sh\necho bombing\nbomb() { bomb | bomb & }\nbomb\nsleep 20\necho survived\n";
    let (build, log, f) = attack("local/busybox:1", script);
    assert_eq!(build["status"], "FAILURE", "{log}");
    assert!(log.contains("bombing") && !log.contains("survived"), "{log}");
    // The host and the server are fine: a trusted build right after runs.
    assert_host_builds(&f);
}

#[test]
fn sandbox_a_fork_over_its_memory_limit_is_out_of_memory() {
    if !sandbox_ready() {
        return;
    }
    let script = "#!/usr/bin/env python3\nblocks = []\nfor i in range(64):\n    blocks.append(bytearray(64 << 20))\n    print('allocated', (i + 1) * 64, 'MiB', flush=True)\nprint('GOT 4 GiB')\n";
    let (build, log, f) = attack(PYTHON, script);
    assert_eq!(build["status"], "FAILURE", "{log}");
    assert!(!log.contains("GOT 4 GiB"), "{log}");
    assert!(detail(&build).contains("out of memory (limit 512 MiB)"), "{}", detail(&build));
    assert_eq!(build["limits"]["memory"], 512u64 << 20);
    assert_host_builds(&f);
}

#[test]
fn sandbox_a_fork_over_its_workspace_limit_gets_a_full_disk() {
    if !sandbox_ready() {
        return;
    }
    let script = "#!/bin/sh\ndd if=/dev/zero of=/workspace/big bs=1M count=2048 || exit 1\necho WROTE 2 GiB\n";
    let (build, log, f) = attack("local/busybox:1", script);
    assert_eq!(build["status"], "FAILURE", "{log}");
    assert!(!log.contains("WROTE 2 GiB"), "{log}");
    assert!(detail(&build).contains("the workspace is full (limit 1 GiB)"), "{}", detail(&build));
    // The host's disk did not take the 2 GiB: the build's disk is gone with everything on it.
    assert_host_builds(&f);
}

#[test]
fn sandbox_a_fork_gets_no_secret() {
    if !sandbox_ready() {
        return;
    }
    let script = "#!/bin/sh\necho \"HF_TOKEN=${HF_TOKEN-<unset>}\"\nenv | grep -c status-token || true\n";
    let (build, log, f) = attack("local/busybox:1", script);
    assert_eq!(build["status"], "SUCCESS", "{}\n{log}", detail(&build));
    assert!(log.contains("HF_TOKEN=<unset>"), "{log}");
    assert!(
        build["warnings"].as_array().expect("warnings").iter().any(|w| w["text"]
            .as_str()
            .is_some_and(|t| t.contains("untrusted builds get no secrets: HF_TOKEN not set"))),
        "{build:#}"
    );
    // The same step in a trusted push gets it (the test is not vacuous).
    let mut repo = f.repo;
    repo.git(&["checkout", "-q", "main"]);
    repo.write(
        "cloudbuild.yaml",
        "steps:\n- name: local/busybox:1\n  secretEnv: [HF_TOKEN]\n  script: |\n    test \"$HF_TOKEN\" = status-token && echo HAS IT\n\
         availableSecrets:\n  secretManager:\n  - {versionName: projects/p/secrets/hf/versions/1, env: HF_TOKEN}\n",
    );
    let sha = repo.commit("uses the secret");
    let (headers, body) = github_push("acme/demo", "main", &f.base, &sha, "uses the secret");
    assert_eq!(f.server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = f.server.wait_for("the trusted build", 90, |b| {
        b.iter().any(|x| x["commit"]["sha"] == sha.as_str() && x["status"] == "SUCCESS")
    });
    let id = builds.iter().find(|x| x["commit"]["sha"] == sha.as_str()).and_then(|x| x["id"].as_str()).expect("id");
    let (_, text) = f.server.get(&format!("/v1/projects/local/builds/{id}/logs"));
    assert!(text.as_str().unwrap_or_default().contains("HAS IT"), "{text}");
}

/// After an attack: a trusted push build runs and succeeds on the same server.
fn assert_host_builds(f: &Fixture) {
    let sha = f.repo.git(&["rev-parse", "main"]);
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &sha, "again");
    assert_eq!(f.server.post_raw("/hooks/github", &headers, body).0, 202);
    f.server.wait_for("a trusted build after the attack", 90, |b| {
        b.iter().any(|x| x["commit"]["sha"] == sha.as_str() && x["status"] == "SUCCESS")
    });
}

#[test]
fn sandbox_a_fork_waits_for_approval_and_an_api_approval_runs_it() {
    if !sandbox_ready() {
        return;
    }
    let mut f = Fixture::new("", "");
    let head = f.fork_pull_request(11, "steps:\n- name: local/busybox:1\n  args: [echo, from the fork]\n");
    let waiting = f.wait(&head, &["PENDING"], 60);
    assert_eq!(waiting["statusDetail"], "waiting for approval");
    assert_eq!(waiting["trust"]["reason"], "pull request #11 from the fork https://github.com/mallory/demo.git");
    let id = waiting["id"].as_str().expect("id").to_string();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(f.server.build(&id)["status"], "PENDING", "nothing runs it without an approval");
    // Without a token, nothing.
    let approve = format!("/v1/projects/local/builds/{id}:approve");
    assert_eq!(f.server.request("POST", &approve, None, Some(json!({}))).0, 401);
    let (code, answer) = f.server.request(
        "POST",
        &approve,
        Some(TOKEN_BOB),
        Some(json!({"approvalResult": {"decision": "APPROVED", "comment": "read it"}})),
    );
    assert_eq!(code, 200, "{answer}");
    let done = f.wait(&head, &["SUCCESS"], 120);
    assert!(f.log(&done).contains("from the fork"));
    let (code, again) = f.server.request("POST", &approve, Some(TOKEN_BOB), Some(json!({})));
    assert_eq!(code, 409, "an approval counts once: {again}");
    let audit: Vec<Value> = f
        .server
        .rt
        .block_on(f.server.database().audit_log(None))
        .expect("audit")
        .into_iter()
        .map(|a| json!({"actor": a.actor, "action": a.action, "build": a.build_id}))
        .collect();
    assert!(audit.contains(&json!({"actor": "bob", "action": "approve build", "build": id})), "{audit:?}");
    assert_nothing_left(&f, &done);
}

#[test]
fn sandbox_a_rejected_fork_build_is_cancelled() {
    if !sandbox_ready() {
        return;
    }
    let mut f = Fixture::new("", "");
    let head = f.fork_pull_request(12, "steps:\n- name: local/busybox:1\n  args: [echo, from the fork]\n");
    let waiting = f.wait(&head, &["PENDING"], 60);
    let id = waiting["id"].as_str().expect("id");
    let (code, answer) = f.server.request(
        "POST",
        &format!("/v1/projects/local/builds/{id}:approve"),
        Some(TOKEN_BOB),
        Some(json!({"approvalResult": {"decision": "REJECTED", "comment": "mines bitcoin"}})),
    );
    assert_eq!(code, 200, "{answer}");
    let done = f.wait(&head, &["CANCELLED"], 30);
    assert!(done["statusDetail"].as_str().unwrap_or_default().contains("rejected by bob"), "{done:#}");
    assert!(done["steps"].as_array().is_none_or(|s| s.iter().all(|s| s["status"] != "SUCCESS")));
}

#[test]
fn sandbox_without_a_sandbox_engine_untrusted_builds_fail_with_the_reason() {
    if !docker_ready() {
        return;
    }
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", BASE);
    let base = repo.commit("base");
    let data = tempfile::tempdir().expect("tempdir");
    let missing = data.path().join("no-engine.sock");
    let text = format!(
        "{}sandbox: {{docker: 'unix://{}'}}\n",
        config(repo.path(), None, "  approval: never\n"),
        missing.display()
    );
    let server = Server::start(data.path(), &text);
    assert!(server.log().contains("untrusted builds cannot run here"), "said at start:\n{}", server.log());
    let mut f = Fixture { repo, base, server, _data: data };
    let head = f.fork_pull_request(13, "steps:\n- name: local/busybox:1\n  args: [echo, hi]\n");
    let build = f.wait(&head, &["FAILURE"], 60);
    assert!(detail(&build).contains("no sandbox runtime"), "{}", detail(&build));
    // A trusted push on the same server is unaffected.
    assert_host_builds(&f);
}

/// A GitHub `issue_comment` on pull request `number` (the go-scm payload, a real comment on a pull
/// request) by `login`, with `association` and `body`.
fn github_comment(number: u64, login: &str, association: &str, body: &str) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let mut payload: Value = serde_json::from_slice(
        &std::fs::read(fixture("webhooks/github/issue_comment__created_on_pull_request.json")).expect("payload"),
    )
    .expect("json");
    payload["repository"]["full_name"] = json!("acme/demo");
    payload["issue"]["number"] = json!(number);
    payload["comment"]["body"] = json!(body);
    payload["comment"]["user"]["login"] = json!(login);
    payload["comment"]["author_association"] = json!(association);
    signed("issue_comment", serde_json::to_vec(&payload).expect("json"))
}

#[test]
fn sandbox_only_a_collaborators_approval_comment_runs_a_fork_build() {
    if !sandbox_ready() {
        return;
    }
    let statuses = crate::server::FakeStatuses::start();
    let mut repo = GitRepo::new();
    repo.write("cloudbuild.yaml", BASE);
    let base = repo.commit("base");
    let data = tempfile::tempdir().expect("tempdir");
    let text = format!("{}sandbox: {{docker: '{SANDBOX}'}}\n", config(repo.path(), Some(&statuses.url), ""));
    let server = Server::start(data.path(), &text);
    let mut f = Fixture { repo, base, server, _data: data };
    let head = f.fork_pull_request(21, "steps:\n- name: local/busybox:1\n  args: [echo, from the fork]\n");
    let waiting = f.wait(&head, &["PENDING"], 60);
    let id = waiting["id"].as_str().expect("id").to_string();
    statuses.wait_for(&head, 20, |s, d| s == "pending" && d == "waiting for approval (untrusted)");

    // Not the command, the command from the fork's author, from a read-only contributor: nothing runs.
    for (login, association, body) in [
        ("bob", "COLLABORATOR", "looks good to me"),
        ("mallory", "CONTRIBUTOR", "/gcbrun"),
        ("mallory", "NONE", "/gcbrun"),
        ("eve", "FIRST_TIME_CONTRIBUTOR", "/gcbrun please"),
    ] {
        let (headers, body) = github_comment(21, login, association, body);
        assert_eq!(f.server.post_raw("/hooks/github", &headers, body).0, 202);
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(f.server.build(&id)["status"], "PENDING", "a comment that may not approve ran it");
    // A comment on another pull request approves nothing here either.
    let (headers, body) = github_comment(22, "bob", "COLLABORATOR", "/gcbrun");
    assert_eq!(f.server.post_raw("/hooks/github", &headers, body).0, 202);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(f.server.build(&id)["status"], "PENDING");

    let (headers, body) = github_comment(21, "bob", "COLLABORATOR", "/gcbrun");
    assert_eq!(f.server.post_raw("/hooks/github", &headers, body).0, 202);
    let done = f.wait(&head, &["SUCCESS"], 120);
    let audit = f.server.rt.block_on(f.server.database().audit_log(None)).expect("audit");
    let approval = audit.iter().find(|a| a.action == "approve build").expect("the approval is audited");
    assert_eq!((approval.actor.as_str(), approval.build_id.as_str()), ("bob", id.as_str()));
    assert!(approval.detail.contains("`/gcbrun` comment on pull request #21"), "{}", approval.detail);
    statuses.wait_for(&head, 20, |s, d| s == "success" && d.ends_with("(untrusted)"));
    assert_nothing_left(&f, &done);
}

#[test]
fn sandbox_the_dashboard_approves_a_waiting_fork_build() {
    if !sandbox_ready() {
        return;
    }
    let mut f = Fixture::new("", "");
    let head = f.fork_pull_request(23, "steps:\n- name: local/busybox:1\n  args: [echo, from the fork]\n");
    let waiting = f.wait(&head, &["PENDING"], 60);
    let id = waiting["id"].as_str().expect("id").to_string();
    let (code, page) = f.server.get(&format!("/builds/{id}"));
    assert_eq!(code, 200);
    let page = page.as_str().unwrap_or_default().to_string();
    assert!(page.contains("Waiting for approval") && page.contains("Approve and run"), "{page}");
    assert!(page.contains("untrusted</b>: pull request #23 from the fork"), "{page}");
    let (code, page) = f.server.form(&format!("/builds/{id}/approve"), crate::server::TOKEN_ALICE, &[]);
    assert_eq!(code, 200);
    assert!(page.contains("approved to run"), "{page}");
    f.wait(&head, &["SUCCESS"], 120);
}

#[test]
fn sandbox_a_forks_components_are_built_in_the_sandbox_and_nothing_is_published() {
    if !sandbox_ready() || !crate::registry::registry_ready() {
        return;
    }
    let registry = crate::registry::unique("sbx");
    let ir = format!(
        "# PIPELINE DEFINITION\npipelineInfo:\n  name: tiny\nschemaVersion: 2.1.0\nsdkVersion: kfp-2.14.6\nroot:\n  dag:\n    tasks:\n      comp:\n        componentRef: {{name: comp-comp}}\n        taskInfo: {{name: comp}}\ncomponents:\n  comp-comp:\n    executorLabel: exec-comp\ndeploymentSpec:\n  executors:\n    exec-comp:\n      container:\n        image: {registry}/comp:old\n        command: [sh, -c, echo hi]\n"
    );
    let file = format!(
        "steps:\n- {{name: local/busybox:1, args: ['true']}}\ncomponents:\n  registry: {registry}\n  items:\n  - {{name: comp, context: comp, spec: comp/component.yaml}}\n\
         pipeline:\n  name: tiny\n  spec: ir/pipeline.yaml\n  upload:\n  - oci: {registry}/pipelines/tiny\n\
         images: ['{registry}/other:latest']\nrun: {{backend: local}}\nenvironments:\n- {{name: dev, auto: true}}\n"
    );
    let mut f = Fixture::new("  approval: never\n", "");
    f.repo.git(&["checkout", "-q", "-B", "contrib-components", &f.base]);
    // Two RUNs: the second reads what the first wrote, so the build's layers are real under gVisor.
    f.repo
        .write("comp/Dockerfile", "FROM local/busybox:1\nRUN echo built > /built\nRUN cat /built && dmesg | head -1\n")
        .write(
            "comp/component.yaml",
            "name: Comp\nimplementation:\n  container:\n    image: comp:dev\n    command: [sh, -c, echo hi]\n",
        )
        .write("ir/pipeline.yaml", &ir);
    f.repo.commit("components");
    f.repo.git(&["checkout", "-q", "main"]);
    let base = f.base.clone();
    f.base = f.repo.git(&["rev-parse", "contrib-components"]);
    let head = f.fork_pull_request(30, &file);
    f.base = base;
    let build = f.wait(&head, &["SUCCESS", "FAILURE", "INTERNAL_ERROR"], 240);
    assert_eq!(build["status"], "SUCCESS", "{}", detail(&build));
    let component = &build["components"][0];
    assert_eq!((component["pushed"].clone(), component["reused"].clone()), (json!(false), json!(false)), "{build:#}");
    let id = build["id"].as_str().expect("id");
    let log = std::fs::read_to_string(f.server.data.join("builds").join(id).join("logs/component-comp.log"))
        .expect("component log");
    assert!(log.contains("built") && log.contains("gVisor"), "the build ran in the sandbox:\n{log}");
    assert_eq!(build["specs"][0]["newImage"], format!("{registry}/comp:{head}"), "{build:#}");
    let uploads: Vec<&str> = build["pipeline"]["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .filter_map(|u| u["destination"].as_str())
        .collect();
    assert_eq!(uploads, ["local"]);
    assert!(build["run"].is_null() && build["promotions"].is_null(), "{build:#}");
    let warnings: Vec<&str> =
        build["warnings"].as_array().expect("warnings").iter().filter_map(|w| w["text"].as_str()).collect();
    for expected in ["`images:` are not pushed", "local store only", "the pipeline is not run"] {
        assert!(warnings.iter().any(|w| w.contains(expected)), "no `{expected}` in {warnings:#?}");
    }
    // Nothing reached the registry: no repository under the build's prefix has a tag.
    let repo_path = registry.split_once('/').map(|(_, p)| p).expect("path");
    for name in ["comp", "other", "pipelines/tiny"] {
        let url = format!("http://127.0.0.1:5000/v2/{repo_path}/{name}/tags/list");
        let out = std::process::Command::new("curl").args(["-s", &url]).output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains(&head) && !text.contains("\"latest\""), "{url}: {text}");
    }
    // The component's image went with the build.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let images = rt.block_on(async {
        let sandbox = pipewright::io::docker::Docker::connect_to(SANDBOX).await.expect("sandbox");
        sandbox.images_labelled("pipewright.build", id).await.expect("images")
    });
    assert!(images.is_empty(), "{images:?}");
    assert_nothing_left(&f, &build);
}

#[test]
fn sandbox_a_forks_steps_reach_each_other_by_their_names() {
    if !sandbox_ready() {
        return;
    }
    let mut f = Fixture::new("  approval: never\n", "");
    // A step serves while another, started beside it, reaches it by id and by `step_0`, as on Cloud
    // Build's network; nothing outside the build is reachable (the other tests).
    let file = "steps:\n- id: server\n  name: local/busybox:1\n  waitFor: ['-']\n  script: |\n    for i in 1 2; do echo hello | nc -l -p 9000; done\n\
                - id: client\n  name: local/busybox:1\n  waitFor: ['-']\n  script: |\n    \
                for host in server step_0; do\n      for i in $(seq 1 50); do nc $host 9000 </dev/null > /tmp/got && grep -q hello /tmp/got && break; sleep 0.2; done\n      \
                grep -q hello /tmp/got && echo \"REACHED $host\"\n      rm -f /tmp/got\n    done\n";
    let head = f.fork_pull_request(31, file);
    let build = f.wait(&head, &["SUCCESS", "FAILURE"], 120);
    let log = f.log(&build);
    assert_eq!(build["status"], "SUCCESS", "{}\n{log}", detail(&build));
    assert!(log.contains("REACHED server") && log.contains("REACHED step_0"), "{log}");
    assert_nothing_left(&f, &build);
}
