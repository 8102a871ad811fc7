//! The server's JSON API against its own OpenAPI document (`GET /openapi.json`), with schemathesis
//! (PyPI; `.ci/setup` installs it in a virtualenv of its own) against a live `pipewright serve`:
//! no 5xx, every answer as documented (status, content type, body schema), invalid input refused,
//! and no request without a token accepted where the document asks for one.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::*;
use crate::support::*;

/// schemathesis's CLI: `PIPEWRIGHT_SCHEMATHESIS`, else `schemathesis` on PATH, else where `.ci/setup`
/// puts it. `None` only outside CI (`PIPEWRIGHT_REQUIRE_DOCKER=1` makes a missing one a failure).
fn schemathesis() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> =
        std::env::var_os("PIPEWRIGHT_SCHEMATHESIS").map(PathBuf::from).into_iter().collect();
    candidates.extend(std::env::var_os("PATH").iter().flat_map(std::env::split_paths).map(|d| d.join("schemathesis")));
    if let Some(state) = std::env::var_os("PIPEWRIGHT_CI_STATE") {
        candidates.push(PathBuf::from(state).join("schemathesis/bin/schemathesis"));
    }
    candidates.push(PathBuf::from("/var/lib/pipewright-ci/schemathesis/bin/schemathesis"));
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".local/state/pipewright-ci/schemathesis/bin/schemathesis"));
    }
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        let required = std::env::var("PIPEWRIGHT_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
        assert!(!required, "schemathesis is not installed; run .ci/setup");
        eprintln!("SKIPPED: schemathesis is not installed (run .ci/setup)");
    }
    found
}

const BUILD_FILE: &str = "steps:\n- name: local/busybox:1\n  args: [echo, hello]\n";

#[test]
fn api_schema_the_live_api_keeps_its_openapi_document_under_schemathesis() {
    if !docker_ready() {
        return;
    }
    let Some(st) = schemathesis() else { return };
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config(BUILD_FILE);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let text = config(repo.path(), None, "").replace("publicReads: true\n", "publicReads: false\nproject: demo\n");
    let server = Server::start(data.path(), &text);

    // The document is served, as JSON, to anyone.
    let (code, doc) = server.get("/openapi.json");
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");

    // One real build, so the list and get answers carry a real record to check against the schema.
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "a build to look at");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let deadline = Instant::now() + Duration::from_secs(90);
    let build_id = loop {
        let (code, list) = server.request("GET", "/v1/projects/demo/builds", Some(TOKEN_ALICE), None);
        assert_eq!(code, 200, "{list}");
        if let Some(b) = list["builds"].as_array().and_then(|b| b.first())
            && b["status"] == "SUCCESS"
        {
            break b["id"].as_str().expect("id").to_string();
        }
        assert!(Instant::now() < deadline, "the seed build did not finish: {list}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(300));
    };
    let audit_before = server.request("GET", "/v1/environments/dev/history", Some(TOKEN_ALICE), None).1;

    // `project` fixed to this server's, so requests get past the project check into each handler.
    let settings = data.path().join("schemathesis.toml");
    std::fs::write(&settings, "[parameters]\nproject = \"demo\"\n").expect("write schemathesis.toml");
    let output = Command::new(&st)
        .current_dir(data.path())
        .args(["--no-color", "--config-file"])
        .arg(&settings)
        .args(["run", &format!("{}/openapi.json", server.url)])
        .args(["--header", &format!("Authorization: Bearer {TOKEN_ALICE}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,\
             negative_data_rejection,missing_required_header,unsupported_method,ignored_auth",
        ])
        .args(["--phases", "examples,coverage,fuzzing", "--max-examples", "40", "--workers", "2"])
        .args(["--request-timeout", "20", "--seed", "1"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("schemathesis runs");
    let report = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found problems:\n{report}\n--- server log ---\n{}", server.log());
    // It did test something: every operation of the document was exercised.
    assert!(!report.contains("No operations"), "{report}");

    // Nothing a request could change changed: the seed build is still the only one and still
    // succeeded, and no release or audit line appeared.
    let (_, list) = server.request("GET", "/v1/projects/demo/builds", Some(TOKEN_ALICE), None);
    let builds: Vec<&Value> = list["builds"].as_array().expect("builds").iter().collect();
    assert_eq!(builds.len(), 1, "schemathesis made builds: {list}");
    assert_eq!((builds[0]["id"].as_str(), &builds[0]["status"]), (Some(build_id.as_str()), &Value::from("SUCCESS")));
    let audit_after = server.request("GET", "/v1/environments/dev/history", Some(TOKEN_ALICE), None).1;
    assert_eq!(audit_before, audit_after);
}
