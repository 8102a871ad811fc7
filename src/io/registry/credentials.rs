//! Registry credentials, found where every Docker tool finds them: `$DOCKER_CONFIG/config.json` (else
//! `~/.docker/config.json`), its `auths` entries, and its credential helpers (`credHelpers`,
//! `credsStore`, run as `docker-credential-<name> get`).

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

/// One registry's credentials. `Debug` never shows the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    /// A password, or an identity token when `username` is `<token>`.
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("username", &self.username).finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The Docker client configuration, read once.
#[derive(Clone, Debug, Default)]
pub struct DockerConfig {
    file: ConfigFile,
}

impl DockerConfig {
    pub fn path() -> PathBuf {
        match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir).join("config.json"),
            None => {
                let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
                home.join(".docker/config.json")
            }
        }
    }

    /// Reads the config; a missing or unreadable file means "no credentials", as for the Docker CLI.
    pub async fn load() -> DockerConfig {
        let text = tokio::fs::read(Self::path()).await.unwrap_or_default();
        DockerConfig { file: serde_json::from_slice(&text).unwrap_or_default() }
    }

    pub fn from_json(text: &str) -> DockerConfig {
        DockerConfig { file: serde_json::from_str(text).unwrap_or_default() }
    }

    /// Credentials for `host` (`localhost:5000`, `europe-docker.pkg.dev`), if any are configured.
    pub async fn credential(&self, host: &str) -> Option<Credential> {
        let helper = self.file.cred_helpers.get(host).or(self.file.creds_store.as_ref());
        if let Some(from_file) = self.auths_entry(host) {
            return Some(from_file);
        }
        let helper = helper?;
        let mut child = tokio::process::Command::new(format!("docker-credential-{helper}"))
            .arg("get")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin.write_all(host.as_bytes()).await.ok()?;
        }
        let output = child.wait_with_output().await.ok()?;
        let answer: HelperAnswer = serde_json::from_slice(&output.stdout).ok()?;
        Some(Credential { username: answer.username, secret: answer.secret })
    }

    fn auths_entry(&self, host: &str) -> Option<Credential> {
        // Docker Hub is written with a URL in old config files.
        let entry = self.file.auths.get(host).or_else(|| {
            self.file
                .auths
                .iter()
                .find(|(k, _)| k.trim_start_matches("https://").trim_end_matches('/') == host)
                .map(|(_, v)| v)
        })?;
        if let Some(token) = &entry.identity_token {
            return Some(Credential { username: "<token>".into(), secret: token.clone() });
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Some(Credential { username: username.clone(), secret: password.clone() });
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(entry.auth.as_ref()?.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (username, secret) = text.split_once(':')?;
        Some(Credential { username: username.to_string(), secret: secret.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn auths_entries() {
        let config = DockerConfig::from_json(
            r#"{"auths": {
                "localhost:5000": {"auth": "YWxpY2U6czNjcjN0"},
                "https://index.docker.io/v1/": {"auth": "Ym9iOnB3"},
                "ghcr.io": {"identitytoken": "tok"}
            }}"#,
        );
        let alice = config.credential("localhost:5000").await.expect("configured");
        assert_eq!((alice.username.as_str(), alice.secret.as_str()), ("alice", "s3cr3t"));
        assert_eq!(config.credential("index.docker.io/v1").await.map(|c| c.username), Some("bob".into()));
        assert_eq!(config.credential("ghcr.io").await.map(|c| c.secret), Some("tok".into()));
        assert_eq!(config.credential("quay.io").await, None);
        assert!(!format!("{alice:?}").contains("s3cr3t"));
    }
}
