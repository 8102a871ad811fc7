//! docs/THREATS.md property 7 for log follows, against a real `pipewright serve`: a client that opens
//! follow after follow (Server-Sent Events) gets `429` once `maxStreams` are open, on the API and
//! the dashboard alike, and a stream that is closed gives its place back.

use std::time::{Duration, Instant};

use crate::server::{Server, TOKEN_ALICE, config, github_push};
use crate::support::*;

/// A build that writes a line every half second for a minute (so the server writes to each follower
/// and notices one that has gone).
const CHATTY: &str = "steps:
- name: local/busybox:1
  entrypoint: sh
  args: ['-c', 'for i in $(seq 120); do echo line $i; sleep 0.5; done']
";

/// Opens a follow and keeps it open: the status, and the response while it streams.
fn open(server: &Server, path: &str) -> (u16, Option<reqwest::Response>, String) {
    let url = format!("{}{path}", server.url);
    server.rt.block_on(async move {
        let response =
            reqwest::Client::new().get(&url).bearer_auth(TOKEN_ALICE).send().await.expect("the server answers");
        let status = response.status().as_u16();
        if status == 200 {
            return (status, Some(response), String::new());
        }
        (status, None, response.text().await.unwrap_or_default())
    })
}

#[test]
fn log_follows_are_bounded_in_number_and_a_closed_one_frees_its_place() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config(CHATTY);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let server = Server::start(data.path(), &config(repo.path(), None, "maxStreams: 2\n"));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "chatty");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the build to run", 60, |b| b.len() == 1 && b[0]["status"] == "WORKING");
    let id = builds[0]["id"].as_str().expect("id").to_string();
    let api = format!("/v1/projects/local/builds/{id}/logs?follow=true");
    let page = format!("/builds/{id}/log?follow=true");

    let (code, first, _) = open(&server, &api);
    assert_eq!(code, 200);
    let (code, second, _) = open(&server, &page);
    assert_eq!(code, 200);
    for path in [&api, &page] {
        let (code, _, text) = open(&server, path);
        assert_eq!(code, 429, "a third follow of {path}: {text}");
        assert!(text.contains("maxStreams"), "{text}");
    }
    // A plain read of the log is not a stream and is still answered.
    let (code, _) = server.get(&format!("/v1/projects/local/builds/{id}/logs"));
    assert_ne!(code, 429);

    // Closing a follow gives its place back once the server has noticed (its next line).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(20);
    let reopened = loop {
        let (code, response, text) = open(&server, &api);
        if code == 200 {
            break response;
        }
        assert_eq!(code, 429, "{text}");
        assert!(Instant::now() < deadline, "the closed follow never gave its place back");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(reopened.is_some() && second.is_some());
}
