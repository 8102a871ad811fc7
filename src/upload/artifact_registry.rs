//! Artifact Registry "Kubeflow Pipelines" template repositories (research/kfp.md §6): a multipart POST
//! to the repository URL with the file in `content` and the tags in `tags`; the answer is plain text
//! `<package>/<version>`, the version being the `sha256:` digest Vertex AI's `templateUri` should name.

use reqwest::multipart::{Form, Part};

use super::{UploadError, snippet};

pub struct ArtifactRegistryClient {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
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
        let http =
            reqwest::Client::builder().redirect(crate::credentials::redirect_policy()).build().unwrap_or_default();
        ArtifactRegistryClient { http, url: url.trim_end_matches('/').to_string(), token }
    }

    pub async fn upload(&self, file_name: &str, spec: &[u8], tags: &[String]) -> Result<TemplateVersion, UploadError> {
        let part = Part::bytes(spec.to_vec())
            .file_name(file_name.to_string())
            .mime_str("application/octet-stream")
            .expect("a constant mime type parses");
        let form = Form::new().part("content", part).text("tags", tags.join(","));
        let mut request = self.http.post(&self.url).multipart(form);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| UploadError::from_reqwest(&self.url, e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| UploadError::from_reqwest(&self.url, e))?;
        if !(200..300).contains(&status) {
            return Err(UploadError::Http { method: "POST", url: self.url.clone(), status, body: snippet(&body) });
        }
        let answer = body.trim();
        let (package, version) =
            answer.split_once('/').filter(|(_, v)| v.starts_with("sha256:")).ok_or_else(|| UploadError::Protocol {
                url: self.url.clone(),
                message: format!("expected `<package>/sha256:…`, got `{}`", snippet(answer)),
            })?;
        Ok(TemplateVersion {
            package: package.to_string(),
            version: version.to_string(),
            uri: format!("{}/{package}/{version}", self.url),
        })
    }
}
