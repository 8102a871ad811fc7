//! docs/THREATS.md property 5 (identity is proven where it matters), played against a real `pipewright
//! serve`. The dashboard: a cookie holds a session id (never the API token), every form needs the
//! session's CSRF token and this server's origin, the API takes no cookie for a write, signing out
//! and the session timeout end a session. The CLI: while a server owns the data directory, its
//! self-declared identity writes nothing; `--server` acts as the token's owner; without a server its
//! identity is recorded as unverified. Each attack is checked from outside: the approvals and
//! releases are read from the database file.

use crate::server::{Browser, RELEASED, Server, TOKEN_ALICE, TOKEN_BOB, config, github_push};
use crate::support::*;

const FORM: &str = "application/x-www-form-urlencoded";

fn approvals(server: &Server, id: &str) -> Vec<String> {
    let db = server.database();
    let rows = server.rt.block_on(db.approvals(id, "prod")).expect("approvals");
    rows.into_iter().map(|r| r.approver).collect()
}

/// Posts the dashboard's approve form for `id` with `cookie` and extra headers; the status.
fn approve(server: &Server, id: &str, cookie: &str, csrf: Option<&str>, extra: &[(&str, String)]) -> (u16, String) {
    let mut headers = vec![("content-type", FORM.to_string()), ("cookie", cookie.to_string())];
    headers.extend(extra.iter().cloned());
    let body = match csrf {
        Some(csrf) => format!("environment=prod&comment=looks+good&csrf={csrf}"),
        None => "environment=prod&comment=looks+good".to_string(),
    };
    let (code, _, text) = server.browse("POST", &format!("/builds/{id}/approve"), &headers, &body);
    (code, text)
}

#[test]
fn dashboard_sessions_hold_no_token_need_csrf_and_end() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config(RELEASED);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let server = Server::start(data.path(), &config(repo.path(), None, "sessionTimeout: 4s\n"));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "build file");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the build", 60, |b| b.len() == 1 && b[0]["queue"]["state"] == "done");
    assert_eq!(builds[0]["status"], "SUCCESS", "{:#}", builds[0]);
    let id = builds[0]["id"].as_str().expect("id").to_string();

    // The old cookie (the raw API token) signs nobody in any more.
    let (code, text) = approve(&server, &id, &format!("pipewright_token={TOKEN_ALICE}"), None, &[]);
    assert_eq!(code, 401, "{text}");

    // Signing in: the cookie is a fresh random id with the browser's rules, not the token.
    let form = [("content-type", FORM.to_string())];
    let (code, headers, _) = server.browse("POST", "/login", &form, &format!("token={TOKEN_ALICE}"));
    assert_eq!(code, 303);
    let set = headers.iter().find(|(k, _)| k == "set-cookie").map(|(_, v)| v.clone()).expect("set-cookie");
    assert!(!set.contains(TOKEN_ALICE), "the API token went into the cookie: {set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=4"] {
        assert!(set.contains(attribute), "`{attribute}` missing: {set}");
    }
    assert!(!set.contains("Secure"), "http://127.0.0.1 is not https: {set}");
    let (code, _, text) = server.browse("POST", "/login", &form, "token=not-a-token");
    assert_eq!(code, 401, "{text}");
    let evil = ("origin", "https://evil.example".to_string());
    let (code, _, text) =
        server.browse("POST", "/login", &[form[0].clone(), evil.clone()], &format!("token={TOKEN_ALICE}"));
    assert_eq!(code, 403, "a sign-in posted by another site: {text}");

    // A signed-in browser made to post the form by another site: no CSRF token, a wrong one, or the
    // right one from another origin (as a page on a sibling host could read it): all refused.
    let Browser { cookie, csrf } = server.sign_in(TOKEN_ALICE);
    assert_eq!(approve(&server, &id, &cookie, None, &[]).0, 403);
    assert_eq!(approve(&server, &id, &cookie, Some(&"0".repeat(64)), &[]).0, 403);
    assert_eq!(approve(&server, &id, &cookie, Some(&csrf), std::slice::from_ref(&evil)).0, 403);
    // The JSON API does not take the cookie for a write at all.
    let api = [("content-type", "application/json".to_string()), ("cookie", cookie.clone())];
    let (code, _, text) =
        server.browse("POST", &format!("/v1/projects/local/builds/{id}:approve"), &api, r#"{"environment":"prod"}"#);
    assert_eq!(code, 401, "{text}");
    assert_eq!(approvals(&server, &id), Vec::<String>::new(), "nothing was approved");

    // The real form, from the server's own page.
    let own = ("origin", server.url.clone());
    let (code, text) = approve(&server, &id, &cookie, Some(&csrf), &[own]);
    assert_eq!(code, 303, "{text}");
    assert_eq!(approvals(&server, &id), ["alice"]);

    // Signing out ends the session on the server, not just in this browser.
    let (code, headers, _) =
        server.browse("POST", "/logout", &[form[0].clone(), ("cookie", cookie.clone())], &format!("csrf={csrf}"));
    assert_eq!(code, 303);
    let cleared = headers.iter().find(|(k, _)| k == "set-cookie").map(|(_, v)| v.clone()).expect("set-cookie");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(approve(&server, &id, &cookie, Some(&csrf), &[]).0, 401, "the ended session still works");
    let (_, _, page) = server.browse("GET", "/", &[("cookie", cookie.clone())], "");
    assert!(!page.contains("signed in as"), "{page}");

    // And a session ends by itself after `sessionTimeout`.
    let Browser { cookie, csrf } = server.sign_in(TOKEN_ALICE);
    std::thread::sleep(std::time::Duration::from_secs(5));
    let (code, text) = approve(&server, &id, &cookie, Some(&csrf), &[]);
    assert_eq!(code, 401, "an expired session still works: {text}");
    assert_eq!(approvals(&server, &id), ["alice"]);
}

/// `pipewright ARGS --data-dir DATA` with `env` set (and nothing inherited that names a server).
fn cli(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = pipewright();
    command.args(args).arg("--data-dir").arg(data).env_remove("PIPEWRIGHT_SERVER").env_remove("PIPEWRIGHT_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("pipewright runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_cli_acts_on_a_served_data_directory_only_through_the_server() {
    if !docker_ready() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let repo = GitRepo::with_config(RELEASED);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let server = Server::start(data.path(), &config(repo.path(), None, ""));
    let (headers, body) = github_push("acme/demo", "main", &"0".repeat(40), &head, "build file");
    assert_eq!(server.post_raw("/hooks/github", &headers, body).0, 202);
    let builds = server.wait_for("the build", 60, |b| b.len() == 1 && b[0]["queue"]["state"] == "done");
    assert_eq!(builds[0]["status"], "SUCCESS", "{:#}", builds[0]);
    let id = builds[0]["id"].as_str().expect("id").to_string();

    // Anyone with a shell on the host calling themselves alice: refused, and told the way.
    let alice = [("PIPEWRIGHT_USER", "alice")];
    for args in [["approve", &id, "--env", "prod"], ["promote", &id, "--to", "prod"]] {
        let (code, _, stderr) = cli(data.path(), &args, &alice);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("owns the data directory"), "{stderr}");
        assert!(stderr.contains(&format!("--server {}", server.url)), "{stderr}");
    }
    let (code, _, stderr) = cli(data.path(), &["rollback", "dev"], &alice);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(approvals(&server, &id), Vec::<String>::new());

    // Through the server: a wrong token is refused; the right one acts as its owner, whatever
    // PIPEWRIGHT_USER says.
    let through = ["--server", server.url.as_str()];
    let approve: Vec<&str> = ["approve", id.as_str(), "--env", "prod"].into_iter().chain(through).collect();
    let (code, _, stderr) = cli(data.path(), &approve, &[("PIPEWRIGHT_TOKEN", "not-a-token")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the token is not valid"), "{stderr}");
    let (code, _, stderr) =
        cli(data.path(), &approve, &[("PIPEWRIGHT_TOKEN", TOKEN_ALICE), ("PIPEWRIGHT_USER", "bob")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(approvals(&server, &id), ["alice"], "the token's owner approved, not PIPEWRIGHT_USER");
    let token_file = data.path().join("bob.token");
    std::fs::write(&token_file, format!("{TOKEN_BOB}\n")).expect("token file");
    let promote: Vec<&str> = ["promote", id.as_str(), "--to", "prod", "--format", "json", "--token-file"]
        .into_iter()
        .chain([token_file.to_str().expect("utf-8 path")])
        .chain(through)
        .collect();
    let (code, stdout, stderr) = cli(data.path(), &promote, &[]);
    assert_eq!(code, 0, "{stderr}");
    let answer: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        (answer["release"]["environment"].as_str(), answer["release"]["promotedBy"].as_str()),
        (Some("prod"), Some("bob"))
    );
    // A refusal through the server exits 1 with the rule, as a local one does.
    let again: Vec<&str> = ["rollback", "prod"].into_iter().chain(through).collect();
    let (code, _, stderr) = cli(data.path(), &again, &[("PIPEWRIGHT_TOKEN", TOKEN_BOB)]);
    assert_eq!(code, 1, "prod has no earlier release to go back to: {stderr}");

    // Without a server, the local identity writes, and says it is unverified.
    drop(server);
    let (code, _, stderr) = cli(data.path(), &["approve", &id, "--env", "prod"], &[("PIPEWRIGHT_USER", "carol")]);
    assert_eq!(code, 0, "{stderr}");
    let db = pipewright::io::store::db::Database::open(data.path());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = rt.block_on(db).expect("database");
    let approvers: Vec<String> =
        rt.block_on(db.approvals(&id, "prod")).expect("approvals").into_iter().map(|r| r.approver).collect();
    assert_eq!(approvers, ["alice", "carol (unverified)"]);
}
