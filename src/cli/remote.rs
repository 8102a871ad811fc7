//! The CLI's promotions through a server (`--server URL`): the server proves who acts (its token),
//! applies its rules and writes its audit log; the CLI only asks (docs/THREATS.md property 5).
//!
//! The token comes from `--token-file PATH` or `$PIPEWRIGHT_TOKEN`, never from the command line
//! (where `ps` and shell history would show it).

use std::path::Path;

use serde_json::Value;

use super::error::CliError;
use crate::io::http::encode_component;

/// A server the CLI talks to.
pub struct Remote {
    base: String,
    project: String,
    http: crate::io::http::Client,
}

/// What the server answered when it did not do what was asked.
#[derive(Debug)]
pub struct Refusal {
    /// The HTTP status; `None` when the server was not reached.
    pub status: Option<u16>,
    pub message: String,
    /// `rule: detail` lines (a promotion's refusals).
    pub details: Vec<String>,
}

/// Why the CLI cannot talk to a server: its `--server` or its token.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("`--server {0}`: give the server's URL, such as `https://ci.example.com`")]
    NotAUrl(String),
    #[error("cannot read the token file {path}: {error}")]
    TokenFile { path: String, error: std::io::Error },
    #[error("`--server {0}` needs an API token of that server: set `PIPEWRIGHT_TOKEN` or pass `--token-file PATH`")]
    NoToken(String),
}

impl From<RemoteError> for CliError {
    fn from(e: RemoteError) -> CliError {
        CliError::unable(e.to_string())
    }
}

impl Remote {
    pub fn new(server: &str, project: &str, token_file: Option<&Path>) -> Result<Remote, RemoteError> {
        let base = server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(RemoteError::NotAUrl(server.to_string()));
        }
        let token = match token_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|error| RemoteError::TokenFile { path: path.display().to_string(), error })?
                .trim()
                .to_string(),
            None => std::env::var("PIPEWRIGHT_TOKEN").unwrap_or_default().trim().to_string(),
        };
        if token.is_empty() {
            return Err(RemoteError::NoToken(base));
        }
        // A promotion may wait for its environment's run: an hour, as the server's own limit.
        let http = crate::io::http::Client::new(Some(token), Some(std::time::Duration::from_secs(3600)));
        Ok(Remote { base, project: project.to_string(), http })
    }

    /// `POST /v1/projects/{project}/builds/{build}:{action}` with `body`.
    pub async fn build_action(&self, build: &str, action: &str, body: Value) -> Result<Value, Refusal> {
        let build = encode_component(build);
        self.post(&format!("/v1/projects/{}/builds/{build}:{action}", encode_component(&self.project)), body).await
    }

    /// `POST /v1/environments/{env}:rollback` with `body`.
    pub async fn rollback(&self, environment: &str, body: Value) -> Result<Value, Refusal> {
        self.post(&format!("/v1/environments/{}:rollback", encode_component(environment)), body).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, Refusal> {
        let url = format!("{}{path}", self.base);
        let request = self.http.request(crate::io::http::Method::POST, &url).json(&body);
        let (status, text) = self.http.send(&url, request).await.map_err(|e| Refusal {
            status: None,
            message: match e {
                crate::io::http::HttpError::Unreachable { message, .. } => {
                    format!("cannot reach {}: {message}", self.base)
                }
                other => other.to_string(),
            },
            details: Vec::new(),
        })?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        let error = &answer["error"];
        let message = error["message"]
            .as_str()
            .map_or_else(|| format!("{url} answered {}", crate::io::http::status_text(status)), str::to_string);
        let details = error["details"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|x| format!("{}: {}", x["rule"].as_str().unwrap_or(""), x["detail"].as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        Err(Refusal { status: Some(status), message, details })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_stay_segments() {
        assert_eq!(encode_component("0f3a-9b"), "0f3a-9b");
        assert_eq!(encode_component("../x?y"), "..%2Fx%3Fy");
    }

    #[test]
    fn a_server_needs_a_url_and_a_token() {
        let message = |r: Result<Remote, RemoteError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message(Remote::new("ci.example.com", "local", None)).contains("server's URL"));
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("token");
        std::fs::write(&empty, "\n").expect("write");
        let e = message(Remote::new("http://127.0.0.1:1", "local", Some(&empty)));
        assert!(e.contains("needs an API token"), "{e}");
        std::fs::write(&empty, "t0ken\n").expect("write");
        let remote = Remote::new("http://127.0.0.1:1/", "local", Some(&empty)).expect("remote");
        assert_eq!((remote.base.as_str(), remote.http.token().unwrap_or_default()), ("http://127.0.0.1:1", "t0ken"));
    }
}
