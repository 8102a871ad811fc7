//! The server's config file (SPEC §12), read with the build file's decoder so that every problem is
//! reported at once as `FILE:LINE:COL: field: message`.
//!
//! ```yaml
//! listen: 127.0.0.1:8080
//! dataDir: /var/lib/pipewright
//! publicUrl: https://ci.example.com      # links in commit statuses
//! maxBuilds: 2                           # builds running at once
//! publicReads: true                      # dashboard and GET API without a token
//! tokens:                                # bearer tokens; the name is who acts (audit, approvals)
//! - {name: alice, token: env:PIPEWRIGHT_TOKEN_ALICE}
//! repositories:
//! - name: acme/ml                        # as the forge names it
//!   url: https://github.com/acme/ml.git
//!   forge: github                        # github | gitlab | gitea
//!   webhookSecret: env:GITHUB_WEBHOOK_SECRET
//!   statuses: {api: https://api.github.com, token: env:GITHUB_TOKEN}
//! secrets: {HF_TOKEN: env:HF_TOKEN}
//! ```
//!
//! Secret values (tokens, webhook secrets, build secrets) are never written in the file: each is
//! `env:VAR` or `file:PATH`, read once at start-up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{Decoder, Diagnostics, Pos};
use crate::secrets::SecretSource;
use crate::trigger::Forge;

pub const DEFAULT_BODY_LIMIT: usize = 5 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: Option<PathBuf>,
    /// Base of the links in commit statuses (`<publicUrl>/builds/<id>`).
    pub public_url: Option<String>,
    pub project: String,
    pub max_builds: usize,
    pub public_reads: bool,
    pub body_limit: usize,
    pub tokens: Vec<TokenConfig>,
    pub repositories: Vec<RepositoryConfig>,
    /// Build secrets by name, for every repository's builds.
    pub secrets: BTreeMap<String, SecretSource>,
}

#[derive(Clone, Debug)]
pub struct TokenConfig {
    pub name: String,
    pub token: SecretSource,
}

#[derive(Clone, Debug)]
pub struct RepositoryConfig {
    /// `owner/repo` as the forge names it; webhooks must name the same repository.
    pub name: String,
    pub url: String,
    pub forge: Forge,
    pub webhook_secret: Option<SecretSource>,
    /// The build file, repository-relative; default: the usual names.
    pub config: Option<String>,
    pub statuses: Option<StatusConfig>,
}

#[derive(Clone, Debug)]
pub struct StatusConfig {
    /// GitHub's REST API base (`https://api.github.com`, or GitHub Enterprise's `/api/v3`).
    pub api: String,
    pub token: SecretSource,
}

impl ServerConfig {
    pub fn repository(&self, name: &str) -> Option<&RepositoryConfig> {
        self.repositories.iter().find(|r| r.name.eq_ignore_ascii_case(name))
    }
}

/// Reads a config file's bytes; `file` names it in diagnostics.
pub fn load(file: &str, bytes: &[u8]) -> Result<ServerConfig, Diagnostics> {
    let mut d = Decoder::new(file);
    let Ok(text) = std::str::from_utf8(bytes) else {
        d.error(Pos { line: 1, col: 1 }, "", "the file is not valid UTF-8");
        return Err(d.diagnostics);
    };
    let root = match crate::yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            d.error(e.pos, "", e.message);
            return Err(d.diagnostics);
        }
    };
    let config = read(&mut d, &root);
    d.diagnostics.sort();
    match config {
        Some(config) if !d.diagnostics.has_errors() => Ok(config),
        _ => Err(d.diagnostics),
    }
}

fn read(d: &mut Decoder, root: &crate::yaml::Node) -> Option<ServerConfig> {
    let mut map = d.map(root, "")?;
    let listen = match map.take(d, "listen") {
        Some((node, path)) => d.string(node, &path).and_then(|s| match s.value.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                d.error_hint(s.pos, &path, format!("`{}` is not an address", s.value), "write `127.0.0.1:8080`");
                None
            }
        }),
        None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
    };
    let data_dir = map.string(d, "dataDir").map(|s| PathBuf::from(s.value));
    let public_url = map.string(d, "publicUrl").map(|s| s.value.trim_end_matches('/').to_string());
    let project = map.string(d, "project").map_or_else(|| "local".to_string(), |s| s.value);
    let max_builds = positive(d, &mut map, "maxBuilds").unwrap_or(2);
    let public_reads = map.bool(d, "publicReads").unwrap_or(true);
    let body_limit = positive(d, &mut map, "maxBodyBytes").unwrap_or(DEFAULT_BODY_LIMIT);
    let tokens = match map.take(d, "tokens") {
        Some((node, path)) => d.list(node, &path, |d, n, p| {
            let mut m = d.map(n, p)?;
            let name = required_string(d, &mut m, "name");
            let token = secret_source(d, &mut m, "token", true);
            m.finish(d);
            Some(TokenConfig { name: name?, token: token? })
        }),
        None => Vec::new(),
    };
    let repositories = match map.take(d, "repositories") {
        Some((node, path)) => d.list(node, &path, read_repository),
        None => Vec::new(),
    };
    let mut secrets = BTreeMap::new();
    if let Some((node, path)) = map.take(d, "secrets") {
        for (name, value) in d.string_map(node, &path) {
            match parse_source(&value.value) {
                Some(source) => {
                    secrets.insert(name.value, source);
                }
                None => d.error_hint(
                    value.pos,
                    &format!("{path}.{}", name.value),
                    format!("`{}` is not where a value comes from", value.value),
                    "write `env:VAR` or `file:PATH`",
                ),
            }
        }
    }
    map.finish(d);
    let mut names = std::collections::HashSet::new();
    for (i, repo) in repositories.iter().enumerate() {
        if !names.insert(repo.name.to_ascii_lowercase()) {
            d.error(root.pos, &format!("repositories[{i}].name"), format!("`{}` is configured twice", repo.name));
        }
    }
    Some(ServerConfig {
        listen: listen?,
        data_dir,
        public_url,
        project,
        max_builds,
        public_reads,
        body_limit,
        tokens,
        repositories,
        secrets,
    })
}

fn read_repository(d: &mut Decoder, node: &crate::yaml::Node, path: &str) -> Option<RepositoryConfig> {
    let mut m = d.map(node, path)?;
    let name = required_string(d, &mut m, "name");
    if let Some(name) = &name
        && (name.split('/').count() < 2 || name.split('/').any(str::is_empty))
    {
        d.error_hint(
            m.pos,
            &m.child("name"),
            format!("`{name}` is not an `owner/repository` name"),
            "use the name the forge shows, e.g. `acme/ml`",
        );
    }
    let url = required_string(d, &mut m, "url");
    let forge = match m.take(d, "forge") {
        Some((n, p)) => d.one_of(n, &p, &["github", "gitlab", "gitea"]).map(|s| match s.value.as_str() {
            "gitlab" => Forge::GitLab,
            "gitea" => Forge::Gitea,
            _ => Forge::GitHub,
        }),
        None => Some(Forge::GitHub),
    };
    let webhook_secret = secret_source(d, &mut m, "webhookSecret", false);
    let config = m.string(d, "config").map(|s| s.value);
    let statuses = m.take(d, "statuses").and_then(|(n, p)| {
        let mut s = d.map(n, &p)?;
        let api = s.string(d, "api").map_or_else(|| "https://api.github.com".to_string(), |a| a.value);
        let token = secret_source(d, &mut s, "token", true);
        s.finish(d);
        Some(StatusConfig { api: api.trim_end_matches('/').to_string(), token: token? })
    });
    m.finish(d);
    Some(RepositoryConfig { name: name?, url: url?, forge: forge?, webhook_secret, config, statuses })
}

fn required_string(d: &mut Decoder, m: &mut crate::config::MapReader<'_>, field: &'static str) -> Option<String> {
    let value = m.string(d, field);
    if value.is_none() && !m.has(field) {
        d.error(m.pos, &m.child(field), "is required");
    }
    value.map(|s| s.value)
}

fn positive(d: &mut Decoder, m: &mut crate::config::MapReader<'_>, field: &'static str) -> Option<usize> {
    let (node, path) = m.take(d, field)?;
    let value = d.int(node, &path)?;
    if value.value < 1 {
        d.error(value.pos, &path, "must be at least 1");
        return None;
    }
    Some(value.value as usize)
}

fn secret_source(
    d: &mut Decoder,
    m: &mut crate::config::MapReader<'_>,
    field: &'static str,
    required: bool,
) -> Option<SecretSource> {
    let Some(value) = m.string(d, field) else {
        if required && !m.has(field) {
            d.error(m.pos, &m.child(field), "is required");
        }
        return None;
    };
    let parsed = parse_source(&value.value);
    if parsed.is_none() {
        d.error_hint(
            value.pos,
            &m.child(field),
            "a secret is never written in the config file",
            "write where it comes from: `env:VAR` or `file:PATH`",
        );
    }
    parsed
}

fn parse_source(text: &str) -> Option<SecretSource> {
    match text.split_once(':') {
        Some(("env", var)) if !var.is_empty() => Some(SecretSource::Env(var.to_string())),
        Some(("file", path)) if !path.is_empty() => Some(SecretSource::File(path.to_string())),
        _ => None,
    }
}

/// Reads a secret's value now (at start-up: a missing one stops the server with its name).
pub fn read_secret(what: &str, source: &SecretSource) -> Result<String, String> {
    match source {
        SecretSource::Env(var) => {
            std::env::var(var).map_err(|_| format!("{what}: environment variable `{var}` is not set"))
        }
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| format!("{what}: cannot read `{path}`: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config() {
        let text = "listen: 127.0.0.1:9000\npublicUrl: http://ci.local/\nmaxBuilds: 3\npublicReads: false\n\
                    tokens: [{name: alice, token: env:T_ALICE}]\nrepositories:\n- name: acme/ml\n  url: file:///r\n  \
                    forge: gitea\n  webhookSecret: file:/run/secret\n  statuses: {token: env:GH}\n\
                    secrets: {HF: env:HF_TOKEN}\n";
        let c = load("server.yaml", text.as_bytes()).expect("valid");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.public_url.as_deref(), Some("http://ci.local"));
        assert_eq!((c.max_builds, c.public_reads), (3, false));
        assert_eq!(c.tokens[0].token, SecretSource::Env("T_ALICE".into()));
        let repo = c.repository("ACME/ml").expect("found regardless of case");
        assert_eq!(repo.forge, Forge::Gitea);
        assert_eq!(repo.statuses.as_ref().map(|s| s.api.as_str()), Some("https://api.github.com"));
        assert_eq!(c.secrets["HF"], SecretSource::Env("HF_TOKEN".into()));
    }

    #[test]
    fn every_problem_at_once() {
        let text = "listen: nowhere\nmaxBuilds: 0\ntokens: [{name: a, token: hunter2}]\nrepositories:\n\
                    - {name: ml, forge: bitbucket}\nsecrets: {X: plain}\nlisten_addr: 1\n";
        let e = load("server.yaml", text.as_bytes()).expect_err("invalid").to_string();
        for expected in [
            "server.yaml:1:9: listen: `nowhere` is not an address",
            "server.yaml:2:12: maxBuilds: must be at least 1",
            "tokens[0].token: a secret is never written in the config file",
            "repositories[0].name: `ml` is not an `owner/repository` name",
            "repositories[0].url: is required",
            "repositories[0].forge: `bitbucket` is not a valid value",
            "secrets.X: `plain` is not where a value comes from",
            "listen_addr: unknown field",
        ] {
            assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
        }
    }
}
