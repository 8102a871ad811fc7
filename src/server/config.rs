//! The server's config file (docs/SPEC.md §12), read with the build file's decoder so that every problem is
//! reported at once as `FILE:LINE:COL: field: message`.
//!
//! ```yaml
//! listen: 127.0.0.1:8080
//! dataDir: /var/lib/pipewright
//! publicUrl: https://ci.example.com      # links in commit statuses
//! maxBuilds: 2                           # builds running at once
//! publicReads: false                     # true: dashboard and GET API without a token
//! maxBodyBytes: 5242880                  # a larger webhook body is answered 413
//! deliveryRetentionDays: 30              # deliveries kept (replays of their bodies refused) this long
//! maxStreams: 256                        # log follows (SSE) open at once; more get 429
//! sessionTimeout: 43200s                 # a dashboard sign-in lasts this long (src/server/session.rs)
//! tokens:                                # bearer tokens; the name is who acts (audit, approvals)
//! - {name: alice, token: env:PIPEWRIGHT_TOKEN_ALICE}
//! repositories:
//! - name: acme/ml                        # as the forge names it
//!   url: https://github.com/acme/ml.git
//!   forge: github                        # github | gitlab | gitea
//!   webhookSecret: env:GITHUB_WEBHOOK_SECRET
//!   statuses: {api: https://api.github.com, token: env:GITHUB_TOKEN}
//!   untrusted: [forks]                   # which builds are untrusted: forks (default) | pull_requests
//!   approval: forks                      # which builds wait for approval: forks (default) | always | never
//!   commentCommand: /gcbrun              # a collaborator's comment that approves a pull request's builds
//!   approvers: [alice]                   # forge logins whose comments approve (GitLab, Gitea say no rights)
//!   untrustedBuilds: sandbox             # sandbox (default) | never
//! secrets: {HF_TOKEN: env:HF_TOKEN}
//! credentials:                           # the only hosts that get a token (src/io/credentials.rs)
//! - {host: https://kfp.example.com, token: env:KFP_TOKEN}
//! limits: {cpus: 2, memory: 8GiB, pids: 4096, workspace: 100GiB}   # the most any build gets
//! sandbox:                               # where untrusted builds run (README: Running untrusted builds)
//!   docker: unix:///run/pipewright-sandbox/docker.sock
//!   runtime: runsc
//!   network: none
//!   limits: {memory: 2GiB}
//! ```
//!
//! Secret values (tokens, webhook secrets, build secrets, credentials) are never written in the file:
//! each is `env:VAR` or `file:PATH`. Every `env:VAR` is read once at start-up and removed from the
//! process environment ([`ServerConfig::capture_environment`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{Decoder, Diagnostics, Pos};
use crate::executor::{SandboxConfig, SandboxNetwork};
use crate::io::credentials::{Credential, Credentials, Origin};
use crate::io::secrets::SecretSource;
use crate::limits::Limits;
use crate::trigger::Forge;
use crate::trust::{ApprovalPolicy, Untrusted};

pub const DEFAULT_BODY_LIMIT: usize = 5 * 1024 * 1024;
/// Deliveries are kept (and a replay of one recognised) for this many days.
pub const DEFAULT_DELIVERY_RETENTION_DAYS: u32 = 30;
/// Log follows (Server-Sent Events) open at once, server-wide.
pub const DEFAULT_MAX_STREAMS: usize = 256;
/// A dashboard sign-in lasts this long (a working day), then the browser signs in again.
pub const DEFAULT_SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

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
    /// How long kept deliveries (and so the memory of which bodies were seen) last.
    pub delivery_retention_days: u32,
    /// Log follows open at once; one more is answered 429.
    pub max_streams: usize,
    /// How long a dashboard session lasts after sign-in.
    pub session_timeout: std::time::Duration,
    pub tokens: Vec<TokenConfig>,
    pub repositories: Vec<RepositoryConfig>,
    /// Build secrets by name, for every repository's builds.
    pub secrets: BTreeMap<String, SecretSource>,
    /// The most any build gets.
    pub limits: Limits,
    /// Where untrusted builds run.
    pub sandbox: SandboxConfig,
    /// The tokens trusted builds' uploads and runs may carry, each for one origin.
    pub credentials: Credentials,
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
    pub untrusted: Untrusted,
    pub approval: ApprovalPolicy,
    /// The comment that approves a pull request's waiting builds (`/gcbrun`, as Cloud Build's).
    pub comment_command: String,
    /// Logins whose approval comments count where the forge does not say who may approve.
    pub approvers: Vec<String>,
    /// Whether untrusted builds run at all (in the sandbox) or end at once.
    pub untrusted_builds: UntrustedBuilds,
}

/// `untrustedBuilds:` of a repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UntrustedBuilds {
    /// In the sandbox (the default).
    #[default]
    Sandbox,
    /// Never: such builds end `FAILURE` with the reason, before anything runs.
    Never,
}

/// The approval command of Cloud Build's comment control.
pub const DEFAULT_COMMENT_COMMAND: &str = "/gcbrun";

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

    /// Reads every `env:VAR` the config names (webhook secrets, status tokens, API tokens, build
    /// secrets, credentials) into the config, and returns the variables read, which the caller removes
    /// from the environment ([`crate::io::secrets::scrub_environment`]) so that no child inherits them.
    pub fn capture_environment(&mut self) -> Vec<String> {
        let mut vars = Vec::new();
        for repo in &mut self.repositories {
            vars.extend(repo.webhook_secret.as_mut().and_then(SecretSource::capture));
            vars.extend(repo.statuses.as_mut().and_then(|s| s.token.capture()));
        }
        vars.extend(self.tokens.iter_mut().filter_map(|t| t.token.capture()));
        vars.extend(self.secrets.values_mut().filter_map(SecretSource::capture));
        vars.extend(self.credentials.capture());
        vars.sort();
        vars.dedup();
        vars
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
    // Off unless asked for: records and logs of private repositories are not for the internet.
    let public_reads = map.bool(d, "publicReads").unwrap_or(false);
    let body_limit = positive(d, &mut map, "maxBodyBytes").unwrap_or(DEFAULT_BODY_LIMIT);
    let delivery_retention_days = match positive(d, &mut map, "deliveryRetentionDays") {
        Some(days) => u32::try_from(days).unwrap_or(u32::MAX),
        None => DEFAULT_DELIVERY_RETENTION_DAYS,
    };
    let max_streams = positive(d, &mut map, "maxStreams").unwrap_or(DEFAULT_MAX_STREAMS);
    let session_timeout = match map.duration(d, "sessionTimeout") {
        Some(t) if t.value.as_secs() == 0 => {
            d.error(t.pos, "sessionTimeout", "must be at least `1s` (a duration in seconds, such as `43200s`)");
            DEFAULT_SESSION_TIMEOUT
        }
        Some(t) => t.value,
        None => DEFAULT_SESSION_TIMEOUT,
    };
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
    let limits = match map.take(d, "limits") {
        Some((node, path)) => read_limits(d, node, &path),
        None => Limits::default(),
    };
    let sandbox = match map.take(d, "sandbox") {
        Some((node, path)) => read_sandbox(d, node, &path),
        None => SandboxConfig::default(),
    };
    let credentials = match map.take(d, "credentials") {
        Some((node, path)) => read_credentials(d, node, &path),
        None => Credentials::none(),
    };
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
        delivery_retention_days,
        max_streams,
        session_timeout,
        tokens,
        repositories,
        secrets,
        limits,
        sandbox,
        credentials,
    })
}

/// `credentials: [{host: ORIGIN, token: env:VAR | file:PATH}]`; every problem reported at its entry.
fn read_credentials(d: &mut Decoder, node: &crate::yaml::Node, path: &str) -> Credentials {
    let entries = d.list(node, path, |d, n, p| {
        let mut m = d.map(n, p)?;
        let host = m.string(d, "host");
        if host.is_none() && !m.has("host") {
            d.error(m.pos, &m.child("host"), "is required");
        }
        let origin = host.and_then(|h| match Origin::parse(&h.value) {
            Ok(origin) => Some(origin),
            Err(e) => {
                d.error_hint(
                    h.pos,
                    &m.child("host"),
                    e.to_string(),
                    "write the origin only, e.g. `https://kfp.example.com`",
                );
                None
            }
        });
        let token = secret_source(d, &mut m, "token", true);
        let pos = m.pos;
        m.finish(d);
        Some((pos, format!("{p}.host"), Credential { origin: origin?, token: token? }))
    });
    let mut kept: Vec<Credential> = Vec::new();
    for (pos, field, entry) in entries {
        if kept.iter().any(|k| k.origin == entry.origin) {
            d.error(pos, &field, format!("`{}` is given twice", entry.origin));
        } else {
            kept.push(entry);
        }
    }
    Credentials::new(kept).expect("duplicates were refused above")
}

fn read_limits(d: &mut Decoder, node: &crate::yaml::Node, path: &str) -> Limits {
    let mut limits = Limits::default();
    let Some(mut m) = d.map(node, path) else {
        return limits;
    };
    if let Some((n, p)) = m.take(d, "cpus")
        && let Some(text) = d.string(n, &p)
    {
        match text.value.parse::<f64>() {
            Ok(c) if c > 0.0 && c.is_finite() => limits.cpus = Some(c),
            _ => d.error_hint(
                text.pos,
                &p,
                format!("`{}` is not a number of CPUs", text.value),
                "write e.g. `2` or `0.5`",
            ),
        }
    }
    for (field, slot) in [("memory", &mut limits.memory), ("workspace", &mut limits.workspace)] {
        if let Some((n, p)) = m.take(d, field)
            && let Some(text) = d.string(n, &p)
        {
            match crate::limits::parse_size(&text.value) {
                Ok(bytes) => *slot = Some(bytes),
                Err(e) => d.error_hint(text.pos, &p, e, "write a size such as `512MiB` or `8GiB`"),
            }
        }
    }
    limits.pids = positive(d, &mut m, "pids").map(|p| p as i64);
    m.finish(d);
    limits
}

fn read_sandbox(d: &mut Decoder, node: &crate::yaml::Node, path: &str) -> SandboxConfig {
    let mut sandbox = SandboxConfig::default();
    let Some(mut m) = d.map(node, path) else {
        return sandbox;
    };
    if let Some(socket) = m.string(d, "docker") {
        if socket.value.starts_with("unix://") {
            sandbox.docker = socket.value;
        } else {
            d.error_hint(
                socket.pos,
                &m.child("docker"),
                format!("`{}` is not a unix socket URL", socket.value),
                "the sandbox's engine listens on a local socket: write `unix:///run/pipewright-sandbox/docker.sock`",
            );
        }
    }
    if let Some(runtime) = m.string(d, "runtime") {
        sandbox.runtime = runtime.value;
    }
    if let Some((n, p)) = m.take(d, "network")
        && let Some(value) = d.one_of(n, &p, &["none", "egress"])
    {
        if value.value == "egress" {
            d.error_hint(
                value.pos,
                &p,
                "`egress` is not available: sandboxed steps reach only their own build's other steps",
                "write `none`; a build that needs the internet must be run as trusted",
            );
        }
        sandbox.network = SandboxNetwork::None;
    }
    if let Some((n, p)) = m.take(d, "limits") {
        sandbox.limits = read_limits(d, n, &p);
    }
    m.finish(d);
    sandbox
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
    let untrusted = m.take(d, "untrusted").map_or(Untrusted::Forks, |(n, p)| {
        let kinds = d.list(n, &p, |d, n, p| d.one_of(n, p, &["forks", "pull_requests"]));
        if kinds.iter().any(|k| k.value == "pull_requests") { Untrusted::PullRequests } else { Untrusted::Forks }
    });
    let approval = match m.take(d, "approval") {
        Some((n, p)) => {
            d.one_of(n, &p, &["forks", "always", "never"]).map_or(ApprovalPolicy::Forks, |v| match v.value.as_str() {
                "always" => ApprovalPolicy::Always,
                "never" => ApprovalPolicy::Never,
                _ => ApprovalPolicy::Forks,
            })
        }
        None => ApprovalPolicy::Forks,
    };
    let comment_command = match m.string(d, "commentCommand") {
        Some(c) if c.value.trim().is_empty() || c.value.trim().contains(char::is_whitespace) => {
            d.error_hint(c.pos, &m.child("commentCommand"), "is not one word", "write e.g. `/gcbrun`");
            DEFAULT_COMMENT_COMMAND.to_string()
        }
        Some(c) => c.value.trim().to_string(),
        None => DEFAULT_COMMENT_COMMAND.to_string(),
    };
    let approvers = m.string_list(d, "approvers").into_iter().map(|a| a.value).collect();
    let untrusted_builds = match m.take(d, "untrustedBuilds") {
        Some((n, p)) => match d.one_of(n, &p, &["sandbox", "never"]).map(|v| v.value) {
            Some(v) if v == "never" => UntrustedBuilds::Never,
            _ => UntrustedBuilds::Sandbox,
        },
        None => UntrustedBuilds::Sandbox,
    };
    m.finish(d);
    Some(RepositoryConfig {
        name: name?,
        url: url?,
        forge: forge?,
        webhook_secret,
        config,
        statuses,
        untrusted,
        approval,
        comment_command,
        approvers,
        untrusted_builds,
    })
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
    source.read_value().map_err(|e| format!("{what}: {e}"))
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
        assert_eq!((repo.untrusted, repo.approval), (Untrusted::Forks, ApprovalPolicy::Forks));
        assert_eq!((repo.comment_command.as_str(), repo.untrusted_builds), ("/gcbrun", UntrustedBuilds::Sandbox));
        assert_eq!(c.sandbox, SandboxConfig::default());
        assert_eq!(c.limits, Limits::default());
        assert_eq!((c.body_limit, c.delivery_retention_days), (DEFAULT_BODY_LIMIT, DEFAULT_DELIVERY_RETENTION_DAYS));
        let c = load("server.yaml", b"maxBodyBytes: 1024\ndeliveryRetentionDays: 7\n").expect("valid");
        assert_eq!((c.body_limit, c.delivery_retention_days), (1024, 7));
    }

    #[test]
    fn trust_limits_and_the_sandbox() {
        let text = "repositories:\n- name: acme/ml\n  url: file:///r\n  untrusted: [pull_requests]\n  approval: always\n  \
                    commentCommand: /ok-to-test\n  approvers: [lin]\n  untrustedBuilds: never\n\
                    limits: {cpus: 1.5, memory: 4GiB, pids: 512, workspace: 20GiB}\n\
                    sandbox: {docker: unix:///tmp/s.sock, runtime: runsc-x, network: none, limits: {memory: 512MiB}}\n";
        let c = load("server.yaml", text.as_bytes()).expect("valid");
        let repo = &c.repositories[0];
        assert_eq!((repo.untrusted, repo.approval), (Untrusted::PullRequests, ApprovalPolicy::Always));
        assert_eq!(
            (repo.comment_command.as_str(), repo.approvers.as_slice()),
            ("/ok-to-test", &["lin".to_string()][..])
        );
        assert_eq!(repo.untrusted_builds, UntrustedBuilds::Never);
        assert_eq!(c.limits.describe(), "1.5 CPUs, 4 GiB memory, 512 processes, 20 GiB workspace");
        assert_eq!((c.sandbox.docker.as_str(), c.sandbox.runtime.as_str()), ("unix:///tmp/s.sock", "runsc-x"));
        assert_eq!(c.sandbox.limits.memory, Some(512 << 20));

        let bad = "limits: {cpus: lots, memory: 8 parsecs}\nsandbox: {docker: tcp://x:2375, network: egress}\n\
                   repositories:\n- {name: a/b, url: u, approval: sometimes, commentCommand: 'run it'}\n";
        let e = load("server.yaml", bad.as_bytes()).expect_err("invalid").to_string();
        for expected in [
            "limits.cpus: `lots` is not a number of CPUs",
            "limits.memory: `parsecs` is not a unit of size",
            "sandbox.docker: `tcp://x:2375` is not a unix socket URL",
            "sandbox.network: `egress` is not available",
            "repositories[0].approval: `sometimes` is not a valid value",
            "repositories[0].commentCommand: is not one word",
        ] {
            assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
        }
    }

    #[test]
    fn credentials_are_origins_with_a_source() {
        let text = "credentials:\n- {host: 'https://KFP.example.com/', token: env:KFP_TOKEN}\n\
                    - {host: 'http://127.0.0.1:8888', token: file:/run/kfp}\n";
        let c = load("server.yaml", text.as_bytes()).expect("valid");
        let origins: Vec<String> = c.credentials.origins().map(ToString::to_string).collect();
        assert_eq!(origins, ["https://kfp.example.com", "http://127.0.0.1:8888"]);

        let bad = "credentials:\n- {host: 'https://kfp.example.com/pipeline', token: env:A}\n\
                   - {host: 'https://u@kfp.example.com', token: env:A}\n- {token: env:A}\n\
                   - {host: 'https://a.example', token: hunter2}\n- {host: 'https://b.example', token: env:B}\n\
                   - {host: 'https://b.example:443', token: env:C}\n";
        let e = load("server.yaml", bad.as_bytes()).expect_err("invalid").to_string();
        for expected in [
            "server.yaml:2:10: credentials[0].host: `https://kfp.example.com/pipeline` is not an origin",
            "credentials[1].host: `https://u@kfp.example.com` is not an origin for a credential: it names a user",
            "credentials[2].host: is required",
            "credentials[3].token: a secret is never written in the config file",
            "credentials[5].host: `https://b.example` is given twice",
        ] {
            assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
        }
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn every_env_secret_is_captured_once() {
        // `PATH` is set wherever tests run; capturing only reads it (the caller scrubs).
        let value = std::env::var("PATH").expect("PATH is set");
        let text = "tokens: [{name: a, token: env:PATH}]\nrepositories:\n- {name: a/b, url: u, webhookSecret: env:PATH}\n\
                    secrets: {S: env:PATH, U: env:PIPEWRIGHT_TEST_SURELY_UNSET}\n\
                    credentials: [{host: 'https://k.example', token: env:PATH}]\n";
        let mut c = load("server.yaml", text.as_bytes()).expect("valid");
        assert_eq!(c.capture_environment(), ["PATH".to_string()]);
        let captured =
            SecretSource::Captured { var: "PATH".into(), value: crate::io::secrets::Secret::new(value.clone()) };
        assert_eq!(c.secrets["S"], captured);
        assert_eq!(c.tokens[0].token, captured);
        assert_eq!(c.repositories[0].webhook_secret.as_ref(), Some(&captured));
        assert_eq!(c.secrets["U"], SecretSource::Env("PIPEWRIGHT_TEST_SURELY_UNSET".into()), "unset stays as it was");
        assert_eq!(captured.to_string(), "env:PATH");
        let token = c.credentials.for_url("https://k.example/x").expect("readable").expect("listed");
        assert_eq!(token.expose(), value);
        assert!(!format!("{c:?}").contains(&value), "Debug never shows a value");
    }

    #[test]
    fn every_problem_at_once() {
        let text = "listen: nowhere\nmaxBuilds: 0\ntokens: [{name: a, token: hunter2}]\nrepositories:\n\
                    - {name: ml, forge: bitbucket}\nsecrets: {X: plain}\nlisten_addr: 1\ndeliveryRetentionDays: 0\n";
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
            "deliveryRetentionDays: must be at least 1",
        ] {
            assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
        }
    }
}
