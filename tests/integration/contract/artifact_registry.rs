//! `FakeArtifactRegistry`: an Artifact Registry "Kubeflow Pipelines" template repository at
//! `{url}/my-proj/pipelines`, as docs/research/kfp.md §6 documents it (there is no definition file in
//! the corpus): `POST {repository}` with multipart field `content` (the template, a file) and an
//! optional text field `tags` (comma-separated) answers plain text `<package>/sha256:<hex of the
//! bytes>`, the package being the template's `pipelineInfo.name`; `GET {repository}/{package}/{tag
//! or version}` answers the bytes. A bearer token is always required, as for every Google API.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::server::{Auth, FakeServer, Reply, Request, Service};
use super::template::pipeline_name;

pub const PROJECT: &str = "my-proj";
pub const REPOSITORY: &str = "pipelines";

pub struct FakeArtifactRegistry {
    server: FakeServer,
    registry: Arc<Registry>,
}

/// The common handle: `url()`, `requests()`, `violations()`, `expect_token()`, `reply_next()`.
impl Deref for FakeArtifactRegistry {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

/// A package: its versions (`sha256:…` → bytes) and tags (tag → version).
#[derive(Clone, Debug, Default)]
pub struct Package {
    pub versions: BTreeMap<String, Vec<u8>>,
    pub tags: BTreeMap<String, String>,
}

impl FakeArtifactRegistry {
    /// An empty repository that accepts any bearer token (see `expect_token`).
    pub fn start() -> FakeArtifactRegistry {
        let registry = Arc::new(Registry { packages: Mutex::new(BTreeMap::new()) });
        let server = FakeServer::start("FakeArtifactRegistry", registry.clone(), Auth::AnyBearer);
        FakeArtifactRegistry { server, registry }
    }

    /// `{url}/my-proj/pipelines`: what pipewright's `artifactRegistry:` takes.
    pub fn repository_url(&self) -> String {
        format!("{}/{PROJECT}/{REPOSITORY}", self.url())
    }

    pub fn package(&self, name: &str) -> Option<Package> {
        self.registry.packages().get(name).cloned()
    }
}

struct Registry {
    packages: Mutex<BTreeMap<String, Package>>,
}

/// What a request asks for.
enum Endpoint<'a> {
    Upload,
    Download { package: &'a str, reference: &'a str },
}

impl Registry {
    fn packages(&self) -> MutexGuard<'_, BTreeMap<String, Package>> {
        self.packages.lock().expect("FakeArtifactRegistry's state is not poisoned")
    }

    fn endpoint<'a>(request: &'a Request) -> Result<Endpoint<'a>, String> {
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("POST", [project, repository]) if *project == PROJECT && *repository == REPOSITORY => Ok(Endpoint::Upload),
            ("GET", [project, repository, package, reference]) if *project == PROJECT && *repository == REPOSITORY => {
                Ok(Endpoint::Download { package, reference })
            }
            _ => Err(format!(
                "docs/research/kfp.md §6 documents no `{} {}` (upload: `POST /{PROJECT}/{REPOSITORY}`, \
                 download: `GET /{PROJECT}/{REPOSITORY}/<package>/<tag or sha256:…>`)",
                request.method, request.path
            )),
        }
    }
}

impl Service for Registry {
    fn check(&self, request: &Request) -> Vec<String> {
        let mut problems: Vec<String> =
            request.query.iter().map(|(k, _)| format!("unknown query parameter `{k}`")).collect();
        match Registry::endpoint(request) {
            Ok(Endpoint::Upload) => problems.extend(upload_problems(request)),
            Ok(Endpoint::Download { .. }) if !request.body.is_empty() => {
                problems.push("a download takes no body".into())
            }
            Ok(Endpoint::Download { .. }) => {}
            Err(problem) => problems.push(problem),
        }
        problems
    }

    fn answer(&self, request: &Request) -> Reply {
        match Registry::endpoint(request).expect("a checked request has an endpoint") {
            Endpoint::Upload => self.upload(request),
            Endpoint::Download { package, reference } => self.download(package, reference),
        }
    }

    fn error(&self, status: u16, message: &str) -> Reply {
        google_error(status, message)
    }
}

impl Registry {
    fn upload(&self, request: &Request) -> Reply {
        let content = request.part("content").expect("a checked upload has `content`");
        let version = format!("sha256:{}", hex::encode(Sha256::digest(&content.data)));
        let stem = content.file_name.as_deref().unwrap_or("").split('.').next().unwrap_or("").to_string();
        let name = pipeline_name(&content.data).unwrap_or(stem);
        let mut packages = self.packages();
        let package = packages.entry(name.clone()).or_default();
        package.versions.insert(version.clone(), content.data.clone());
        for tag in tags(request) {
            package.tags.insert(tag, version.clone());
        }
        Reply::text(200, &format!("{name}/{version}"))
    }

    fn download(&self, package: &str, reference: &str) -> Reply {
        let packages = self.packages();
        let found = packages.get(package).and_then(|p| {
            let version = if reference.starts_with("sha256:") { reference } else { p.tags.get(reference)? };
            p.versions.get(version)
        });
        match found {
            Some(bytes) => Reply::bytes(200, "application/octet-stream", bytes.clone()),
            None => google_error(404, &format!("package `{package}` has no version or tag `{reference}`")),
        }
    }
}

/// An upload: multipart with the template in file field `content` and optionally the text field
/// `tags`; tags are not empty, have no spaces and do not start with `sha256:` (that is a version).
fn upload_problems(request: &Request) -> Vec<String> {
    let content_type = request.header("content-type").unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        return vec![format!("an upload is multipart/form-data, sent as `{content_type}`")];
    }
    let mut problems = Vec::new();
    for (i, part) in request.form.iter().enumerate() {
        if !matches!(part.name.as_str(), "content" | "tags") {
            problems.push(format!("unknown form field `{}` (an upload has `content` and `tags`)", part.name));
        }
        if request.form[..i].iter().any(|p| p.name == part.name) {
            problems.push(format!("form field `{}` is sent twice", part.name));
        }
    }
    match request.part("content") {
        None => problems.push("the template must be in form field `content`".into()),
        Some(content) if content.file_name.is_none() => problems.push("form field `content` must be a file".into()),
        Some(content) if pipeline_name(&content.data).is_none() => {
            problems.push("`content` is not a KFP template (no `pipelineInfo.name`)".into())
        }
        Some(_) => {}
    }
    if request.part("tags").is_some_and(|t| t.file_name.is_some()) {
        problems.push("form field `tags` must be text, not a file".into());
    }
    for tag in tags(request) {
        if tag.is_empty() || tag.contains(char::is_whitespace) || tag.starts_with("sha256:") {
            problems.push(format!("`{tag}` is not a valid tag (empty, spaces, or a `sha256:` version)"));
        }
    }
    problems
}

/// The tags of an upload; an empty `tags` field means none.
fn tags(request: &Request) -> Vec<String> {
    let text = request.part("tags").map(|t| t.text()).unwrap_or_default();
    if text.is_empty() { Vec::new() } else { text.split(',').map(str::to_string).collect() }
}

/// A Google API error body, with the canonical code usual for `status`.
pub fn google_error(status: u16, message: &str) -> Reply {
    let code = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        501 => "UNIMPLEMENTED",
        _ => "INTERNAL",
    };
    google_status(status, code, message)
}

/// A Google API error body: `{"error": {code, message, status}}`.
pub fn google_status(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"error": {"code": status, "message": message, "status": code}}))
}
