//! The images this build made, and which images in a spec are theirs.
//!
//! An image belongs to a target when its repository (the reference without tag or digest; a
//! registry port is part of the repository) is the target's `repository`, or the repository of the
//! target's own `reference`, so an image left from an earlier build of the same component is found
//! too and rewriting twice gives the same file. Repositories compare as written: `python` and
//! `docker.io/library/python` are different repositories here, as they are in a spec's text.

use crate::image_ref::ImageRef;

use super::error::SpecError;

/// One component's new image: every image whose repository equals `repository` is set to `reference`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageTarget {
    pub component: String,
    /// e.g. `localhost:5000/acme/train`, without tag or digest.
    pub repository: String,
    /// e.g. `localhost:5000/acme/train:<sha>@sha256:<digest>`.
    pub reference: String,
}

/// Validated targets, ready to claim images.
pub(crate) struct Targets<'a> {
    entries: Vec<(&'a ImageTarget, [String; 2])>,
}

impl<'a> Targets<'a> {
    pub(crate) fn new(targets: &'a [ImageTarget], label: &str) -> Result<Targets<'a>, SpecError> {
        let mut entries: Vec<(&'a ImageTarget, [String; 2])> = Vec::with_capacity(targets.len());
        for target in targets {
            let repositories = validate(target, label)?;
            for (other, claimed) in &entries {
                let shared = repositories.iter().find(|r| claimed.contains(r));
                if let Some(repository) = shared
                    && other.reference != target.reference
                {
                    return Err(SpecError::AmbiguousTarget {
                        label: label.to_string(),
                        repository: repository.clone(),
                        first: other.component.clone(),
                        second: target.component.clone(),
                    });
                }
            }
            entries.push((target, repositories));
        }
        Ok(Targets { entries })
    }

    /// The target an image belongs to, if any. Text that is not an image reference (an empty string,
    /// a placeholder such as `{{$.inputs.parameters['image']}}`) belongs to none.
    pub(crate) fn find(&self, image: &str) -> Option<&'a ImageTarget> {
        let repository = repository_of(image)?;
        self.entries.iter().find(|(_, claimed)| claimed.contains(&repository)).map(|(target, _)| *target)
    }

    pub(crate) fn repositories(&self) -> Vec<String> {
        self.entries.iter().map(|(target, _)| target.repository.clone()).collect()
    }
}

/// The repository of an image as written in a spec. Surrounding whitespace (a block scalar's final
/// line break) is not part of the reference.
pub(crate) fn repository_of(image: &str) -> Option<String> {
    ImageRef::parse(image.trim()).ok().map(|r| r.repository())
}

/// Checks a target and returns the two repositories it claims.
fn validate(target: &ImageTarget, label: &str) -> Result<[String; 2], SpecError> {
    let invalid = |field: &'static str, reason: String| SpecError::InvalidTarget {
        label: label.to_string(),
        component: target.component.clone(),
        field,
        reason,
    };
    let reference = ImageRef::parse(&target.reference).map_err(|e| invalid("reference", e.to_string()))?;
    let repository = ImageRef::parse(&target.repository).map_err(|e| invalid("repository", e.to_string()))?;
    if repository.tag.is_some() || repository.digest.is_some() || repository.repository() != target.repository {
        let reason =
            format!("`{}` has a tag or digest; the repository is `{}`", target.repository, repository.repository());
        return Err(invalid("repository", reason));
    }
    Ok([target.repository.clone(), reference.repository()])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn target(component: &str, repository: &str, reference: &str) -> ImageTarget {
        ImageTarget { component: component.into(), repository: repository.into(), reference: reference.into() }
    }

    #[track_caller]
    fn check(repository: &str, image: &str, matches: bool) {
        let targets = [target("train", repository, &format!("localhost:5000/pw/train:abc@{DIGEST}"))];
        let found = Targets::new(&targets, "f.yaml").expect("valid").find(image).is_some();
        assert_eq!(found, matches, "{image} against {repository}");
    }

    #[test]
    fn matching() {
        check("localhost:5000/x", "localhost:5000/x", true);
        check("localhost:5000/x", "localhost:5000/x:5000", true);
        check("localhost:5000/x", &format!("localhost:5000/x@{DIGEST}"), true);
        check("localhost:5000/x", &format!("localhost:5000/x:t@{DIGEST}"), true);
        check("localhost:5000/x", "localhost/x", false);
        check("localhost:5000/x", "localhost:5001/x", false);
        check("localhost:5000/x", "localhost:5000/x/y", false);
        check("localhost:5000/x", "localhost:5000/xy", false);
        check("python", "python:3.11", true);
        check("python", "python", true);
        check("python", "docker.io/library/python:3.11", false);
        check("docker.io/library/python", "python:3.11", false);
        check("gcr.io/p/train", "gcr.io/p/train:latest", true);
        check("gcr.io/p/train", "gcr.io/p/train-v2:latest", false);
        check("gcr.io/p/train", "", false);
        check("gcr.io/p/train", "{{$.inputs.parameters['image']}}", false);
        check("gcr.io/p/train", "docker image name", false);
        // An image from an earlier build of the component belongs to it too.
        check("gcr.io/p/train", "localhost:5000/pw/train:old", true);
    }

    #[test]
    fn invalid_targets() {
        let err = |t: ImageTarget| Targets::new(std::slice::from_ref(&t), "f.yaml").err().map(|e| e.to_string());
        assert_eq!(
            err(target("train", "r/train:tag", "r/train:abc")).as_deref(),
            Some(
                "f.yaml: component `train`: bad `repository`: `r/train:tag` has a tag or digest; the repository is `r/train`"
            )
        );
        assert!(err(target("train", "r/train", "")).expect("error").contains("reference is empty"));
        assert!(err(target("train", "r/Train", "r/train:x")).expect("error").contains("lowercase"));
    }

    #[test]
    fn two_components_one_repository() {
        let targets = [target("a", "r/x", "r/x:1"), target("b", "r/x", "r/x:2")];
        let err = Targets::new(&targets, "f.yaml").err().expect("ambiguous").to_string();
        assert_eq!(err, "f.yaml: components `a` and `b` both claim repository `r/x` but name different images");
        let same = [target("a", "r/x", "r/x:1"), target("b", "r/x", "r/x:1")];
        assert!(Targets::new(&same, "f.yaml").is_ok());
    }
}
