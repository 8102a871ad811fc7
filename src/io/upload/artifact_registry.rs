//! Artifact Registry "Kubeflow Pipelines" template repositories (docs/research/kfp.md §6): a multipart POST
//! to the repository URL with the file in `content` and the tags in `tags`; the answer is plain text
//! `<package>/<version>`, the version being the `sha256:` digest Vertex AI's `templateUri` should name.

use crate::io::http::multipart::{Form, Part};
use crate::io::http::{Client, HttpError, Method, snippet};

pub struct ArtifactRegistryClient {
    http: Client,
    url: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateVersion {
    pub package: String,
    /// `sha256:…`
    pub version: String,
    /// `<repository url>/<package>/<version>`: what a Vertex AI PipelineJob's `templateUri` takes.
    pub uri: String,
}

impl ArtifactRegistryClient {
    /// `url` is the repository, `https://<location>-kfp.pkg.dev/<project>/<repository>`.
    pub fn new(url: &str, token: Option<String>) -> ArtifactRegistryClient {
        ArtifactRegistryClient { http: Client::new(token, None), url: url.trim_end_matches('/').to_string() }
    }

    pub async fn upload(&self, file_name: &str, spec: &[u8], tags: &[String]) -> Result<TemplateVersion, HttpError> {
        let part = Part::bytes(spec.to_vec())
            .file_name(file_name.to_string())
            .mime_str("application/octet-stream")
            .expect("a constant mime type parses");
        let form = Form::new().part("content", part).text("tags", tags.join(","));
        let request = self.http.request(Method::POST, &self.url).multipart(form);
        let (status, body) = self.http.send(&self.url, request).await?;
        if !(200..300).contains(&status) {
            return Err(HttpError::status(&Method::POST, &self.url, status, &body));
        }
        let answer = body.trim();
        let (package, version) = answer.split_once('/').filter(|(_, v)| v.starts_with("sha256:")).ok_or_else(|| {
            HttpError::protocol(&self.url, format!("expected `<package>/sha256:…`, got `{}`", snippet(answer)))
        })?;
        Ok(TemplateVersion {
            package: package.to_string(),
            version: version.to_string(),
            uri: format!("{}/{package}/{version}", self.url),
        })
    }
}
