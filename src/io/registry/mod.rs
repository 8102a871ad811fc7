//! OCI registries, spoken to directly (oci-client): manifest digests, registry-side tag copies (a new
//! tag for an existing manifest, with no pull and no rebuild), image config labels, and OCI artifacts.
//!
//! `localhost`, `127.0.0.0/8` and the hosts in `PIPEWRIGHT_INSECURE_REGISTRIES` (comma-separated) are
//! spoken to over plain HTTP, as the Docker engine does by default; everything else over HTTPS.

mod credentials;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

pub use credentials::{Credential, DockerConfig};

/// Manifest media types we copy as they are.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{0}` is not a valid image reference")]
    BadReference(String),
    #[error("cannot reach the registry `{host}`: {message}")]
    Unreachable { host: String, message: String },
    #[error("the registry refused access to `{reference}` ({message})")]
    Unauthorized { reference: String, message: String },
    #[error("`{0}` does not exist in the registry")]
    NotFound(String),
    #[error("registry {action} `{reference}` failed: {message}")]
    Protocol { action: &'static str, reference: String, message: String },
}

impl RegistryError {
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Unreachable { host, .. } => Some(format!(
                "start the registry or fix the reference; `localhost` and `127.*` registries are reached over http, \
                 others over https (add `{host}` to PIPEWRIGHT_INSECURE_REGISTRIES for http)"
            )),
            RegistryError::Unauthorized { .. } => Some(format!(
                "log in with `docker login`; credentials are read from {}",
                DockerConfig::path().display()
            )),
            _ => None,
        }
    }
}

/// An OCI artifact to push: one layer plus the empty config (OCI 1.1).
#[derive(Clone, Debug)]
pub struct Artifact {
    pub artifact_type: String,
    pub layer_media_type: String,
    pub data: Vec<u8>,
    /// Annotations of the manifest (commit, repository, build id, …).
    pub annotations: BTreeMap<String, String>,
    /// `org.opencontainers.image.title` of the layer.
    pub title: String,
}

/// Image config labels by config digest, in a directory. A config digest names its content, so an
/// entry never goes stale: reuse checks read it instead of fetching the config again.
#[derive(Clone, Debug)]
pub struct LabelCache {
    dir: PathBuf,
}

impl LabelCache {
    pub fn new(dir: impl Into<PathBuf>) -> LabelCache {
        LabelCache { dir: dir.into() }
    }

    fn path(&self, config_digest: &str) -> Option<PathBuf> {
        let hex = config_digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| self.dir.join(format!("{hex}.json")))
    }

    /// The labels recorded for `config_digest`; `None` when absent or unreadable (the caller fetches).
    pub async fn get(&self, config_digest: &str) -> Option<HashMap<String, String>> {
        let text = tokio::fs::read(self.path(config_digest)?).await.ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Records the labels read from `config`, the bytes of the config blob `config_digest`, if they hash
    /// to that digest (a registry that served other bytes must not teach the cache a wrong answer).
    /// Best effort: a cache that cannot be written only costs a request next time. Written to a
    /// temporary file and renamed, so a reader never sees half of it.
    pub async fn put(&self, config_digest: &str, config: &[u8], labels: &HashMap<String, String>) {
        use sha2::{Digest, Sha256};
        let Some(path) = self.path(config_digest) else {
            return;
        };
        if format!("sha256:{}", hex::encode(Sha256::digest(config))) != config_digest {
            return;
        }
        let Ok(json) = serde_json::to_vec(labels) else {
            return;
        };
        let temporary = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        let written = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            tokio::fs::write(&temporary, json).await?;
            tokio::fs::rename(&temporary, &path).await
        };
        if written.await.is_err() {
            let _ = tokio::fs::remove_file(&temporary).await;
        }
    }
}

/// Cheap to clone: clones share their connections.
#[derive(Clone)]
pub struct Registry {
    docker_config: DockerConfig,
    clients: std::sync::Arc<Mutex<HashMap<String, Client>>>,
}

impl Registry {
    pub async fn new() -> Registry {
        Registry { docker_config: DockerConfig::load().await, clients: Default::default() }
    }

    fn parse(reference: &str) -> Result<Reference, RegistryError> {
        reference.parse().map_err(|_| RegistryError::BadReference(reference.to_string()))
    }

    fn client(&self, host: &str) -> Client {
        let mut clients = self.clients.lock().expect("clients lock");
        clients
            .entry(host.to_string())
            .or_insert_with(|| {
                let protocol = if is_insecure(host) {
                    ClientProtocol::HttpsExcept(vec![host.to_string()])
                } else {
                    ClientProtocol::Https
                };
                Client::new(ClientConfig { protocol, ..Default::default() })
            })
            .clone()
    }

    /// Credentials for `host`, as Docker would use them.
    pub async fn credential(&self, host: &str) -> Option<Credential> {
        self.docker_config.credential(host).await
    }

    async fn auth(&self, host: &str) -> RegistryAuth {
        match self.credential(host).await {
            Some(c) if c.username == "<token>" => RegistryAuth::Bearer(c.secret),
            Some(c) => RegistryAuth::Basic(c.username, c.secret),
            None => RegistryAuth::Anonymous,
        }
    }

    /// The manifest digest of `reference`, or `None` if it does not exist.
    pub async fn digest(&self, reference: &str) -> Result<Option<String>, RegistryError> {
        let r = Self::parse(reference)?;
        let host = r.resolve_registry().to_string();
        let auth = self.auth(&host).await;
        match self.client(&host).fetch_manifest_digest(&r, &auth).await {
            Ok(digest) => Ok(Some(digest)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(classify("read manifest of", reference, &host, e)),
        }
    }

    /// The labels in the image config of `reference` (Docker's `config.Labels`).
    pub async fn config_labels(&self, reference: &str) -> Result<HashMap<String, String>, RegistryError> {
        let r = Self::parse(reference)?;
        let host = r.resolve_registry().to_string();
        let auth = self.auth(&host).await;
        let (_, _, config) = self
            .client(&host)
            .pull_manifest_and_config(&r, &auth)
            .await
            .map_err(|e| classify("read config of", reference, &host, e))?;
        let config: serde_json::Value = serde_json::from_str(&config).map_err(|e| RegistryError::Protocol {
            action: "read config of",
            reference: reference.to_string(),
            message: e.to_string(),
        })?;
        let labels = config["config"]["Labels"].as_object().cloned().unwrap_or_default();
        Ok(labels.into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_string()))).collect())
    }

    /// If `source` exists and `accept` approves its config labels, gives its manifest the new name
    /// `target` (same registry) and returns the digest and the labels; `None` if `source` does not exist
    /// or was not accepted. Three requests: the manifest, its config, the new tag; two when `known`
    /// already holds the config's labels.
    pub async fn copy_if(
        &self,
        source: &str,
        target: &str,
        known: Option<&LabelCache>,
        accept: impl FnOnce(&HashMap<String, String>) -> bool,
    ) -> Result<Option<(String, HashMap<String, String>)>, RegistryError> {
        let from = Self::parse(source)?;
        let to = Self::parse(target)?;
        let host = from.resolve_registry().to_string();
        let auth = self.auth(&host).await;
        let client = self.client(&host);
        let (bytes, digest) = match client.pull_manifest_raw(&from, &auth, MANIFEST_TYPES).await {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(classify("read manifest of", source, &host, e)),
        };
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let Some(config_digest) = manifest["config"]["digest"].as_str() else {
            return Ok(None);
        };
        let cached = match known {
            Some(cache) => cache.get(config_digest).await,
            None => None,
        };
        let labels = match cached {
            Some(labels) => labels,
            None => {
                let mut bytes = Vec::new();
                client
                    .pull_blob(&from, config_digest, &mut bytes)
                    .await
                    .map_err(|e| classify("read config of", source, &host, e))?;
                let config: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let labels: HashMap<String, String> = config["config"]["Labels"]
                    .as_object()
                    .map(|l| l.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                    .unwrap_or_default();
                if let Some(cache) = known {
                    cache.put(config_digest, &bytes, &labels).await;
                }
                labels
            }
        };
        if !accept(&labels) {
            return Ok(None);
        }
        let media_type = manifest_media_type(&bytes);
        let content_type = media_type.parse().map_err(|_| RegistryError::Protocol {
            action: "copy",
            reference: source.to_string(),
            message: format!("bad media type `{media_type}`"),
        })?;
        client
            .push_manifest_raw(&to, bytes, content_type)
            .await
            .map_err(|e| classify("write manifest of", target, &host, e))?;
        Ok(Some((digest, labels)))
    }

    /// Gives the manifest of `source` a new name `target` in the same registry, by copying the manifest
    /// bytes: the digest stays the same, no layer moves. Returns that digest.
    pub async fn copy(&self, source: &str, target: &str) -> Result<String, RegistryError> {
        let from = Self::parse(source)?;
        let to = Self::parse(target)?;
        let host = from.resolve_registry().to_string();
        let auth = self.auth(&host).await;
        let client = self.client(&host);
        let (bytes, digest) = client
            .pull_manifest_raw(&from, &auth, MANIFEST_TYPES)
            .await
            .map_err(|e| classify("read manifest of", source, &host, e))?;
        let media_type = manifest_media_type(&bytes);
        let content_type = media_type.parse().map_err(|_| RegistryError::Protocol {
            action: "copy",
            reference: source.to_string(),
            message: format!("bad media type `{media_type}`"),
        })?;
        client.store_auth_if_needed(to.resolve_registry(), &auth).await;
        client
            .push_manifest_raw(&to, bytes, content_type)
            .await
            .map_err(|e| classify("write manifest of", target, &host, e))?;
        Ok(digest)
    }

    /// Pushes an OCI 1.1 artifact and returns its manifest digest.
    pub async fn push_artifact(&self, reference: &str, artifact: &Artifact) -> Result<String, RegistryError> {
        let r = Self::parse(reference)?;
        let host = r.resolve_registry().to_string();
        let auth = self.auth(&host).await;
        let client = self.client(&host);
        let layer = ImageLayer::new(
            artifact.data.clone(),
            artifact.layer_media_type.clone(),
            Some(BTreeMap::from([("org.opencontainers.image.title".to_string(), artifact.title.clone())])),
        );
        let config = Config::new(b"{}".to_vec(), "application/vnd.oci.empty.v1+json".into(), None);
        let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
        manifest.artifact_type = Some(artifact.artifact_type.clone());
        manifest.annotations = Some(artifact.annotations.clone());
        client
            .push(&r, &[layer], config, &auth, Some(manifest))
            .await
            .map_err(|e| classify("push artifact to", reference, &host, e))?;
        self.digest(reference).await?.ok_or_else(|| RegistryError::NotFound(reference.to_string()))
    }

    /// Pulls the single layer of an artifact of `media_type`; returns its bytes and the manifest digest.
    pub async fn pull_artifact(&self, reference: &str, media_type: &str) -> Result<(Vec<u8>, String), RegistryError> {
        let r = Self::parse(reference)?;
        let host = r.resolve_registry().to_string();
        let auth = self.auth(&host).await;
        let data = self
            .client(&host)
            .pull(&r, &auth, vec![media_type])
            .await
            .map_err(|e| classify("pull artifact", reference, &host, e))?;
        let digest = data.digest.unwrap_or_default();
        let layer = data.layers.into_iter().next().ok_or_else(|| RegistryError::Protocol {
            action: "pull artifact",
            reference: reference.to_string(),
            message: "the artifact has no layer".into(),
        })?;
        Ok((layer.data.to_vec(), digest))
    }
}

/// Whether Docker would speak plain HTTP to this registry host.
pub fn is_insecure(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    if name == "localhost" || name.starts_with("127.") || name == "[::1]" {
        return true;
    }
    std::env::var("PIPEWRIGHT_INSECURE_REGISTRIES")
        .unwrap_or_default()
        .split(',')
        .any(|h| !h.trim().is_empty() && h.trim() == host)
}

/// The `mediaType` a manifest declares; OCI allows it to be absent, then the shape tells.
fn manifest_media_type(bytes: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    match value["mediaType"].as_str() {
        Some(t) => t.to_string(),
        None if value.get("manifests").is_some() => "application/vnd.oci.image.index.v1+json".into(),
        None => "application/vnd.oci.image.manifest.v1+json".into(),
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown))
        }
        _ => false,
    }
}

fn classify(action: &'static str, reference: &str, host: &str, e: OciDistributionError) -> RegistryError {
    match &e {
        _ if is_not_found(&e) => RegistryError::NotFound(reference.to_string()),
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            RegistryError::Unauthorized { reference: reference.to_string(), message: e.to_string() }
        }
        OciDistributionError::RequestError(inner) if inner.is_connect() || inner.is_timeout() => {
            RegistryError::Unreachable { host: host.to_string(), message: crate::error_chain(&e) }
        }
        _ => RegistryError::Protocol { action, reference: reference.to_string(), message: crate::error_chain(&e) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_label_cache_keeps_only_labels_of_the_bytes_the_digest_names() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = LabelCache::new(dir.path().join("labels"));
        let config = br#"{"config":{"Labels":{"a":"b"}}}"#;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(config)));
        let labels = HashMap::from([("a".to_string(), "b".to_string())]);
        assert_eq!(cache.get(&digest).await, None);

        // Bytes that do not hash to the digest (a lying or broken registry) teach the cache nothing.
        cache.put(&digest, b"something else", &labels).await;
        assert_eq!(cache.get(&digest).await, None);

        cache.put(&digest, config, &labels).await;
        assert_eq!(cache.get(&digest).await, Some(labels.clone()));
        // Only `sha256:<64 hex>` names an entry: nothing else becomes a path.
        for bad in ["sha256:../../etc/passwd", "md5:abc", "", &digest[..20]] {
            cache.put(bad, config, &labels).await;
            assert_eq!(cache.get(bad).await, None, "{bad}");
        }
        let files: Vec<_> = std::fs::read_dir(dir.path().join("labels")).expect("dir").flatten().collect();
        assert_eq!(files.len(), 1, "one entry, no temporary files left");
        // A damaged entry is a miss, not an error.
        std::fs::write(files[0].path(), "{not json").expect("damage");
        assert_eq!(cache.get(&digest).await, None);
    }

    #[test]
    fn insecure_hosts() {
        assert!(is_insecure("localhost:5000"));
        assert!(is_insecure("127.0.0.1:5000"));
        assert!(!is_insecure("gcr.io"));
        assert!(!is_insecure("localhost.example.com"));
    }

    #[test]
    fn media_types() {
        assert_eq!(
            manifest_media_type(br#"{"mediaType": "application/vnd.docker.distribution.manifest.v2+json"}"#),
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion": 2, "layers": []}"#),
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(manifest_media_type(br#"{"manifests": []}"#), "application/vnd.oci.image.index.v1+json");
    }
}
