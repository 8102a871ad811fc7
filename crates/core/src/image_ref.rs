//! Container image references (`[host[:port]/]path[:tag][@sha256:…]`), parsed by Docker's grammar.
//!
//! Pure: used to check step images after substitution and, later, to name component images.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (with port), if the reference names one.
    pub domain: Option<String>,
    /// Repository path, e.g. `library/python` or `acme/train`.
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:…`
    pub digest: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference `{0}` is longer than 255 characters in its name")]
    TooLong(String),
    #[error("repository name `{0}` must be lowercase")]
    Uppercase(String),
    #[error("`{0}` is not a valid image reference")]
    Invalid(String),
    #[error(
        "tag `{tag}` in `{reference}` is not valid (letters, digits, `_`, `.`, `-`; at most 128, not starting with `.` or `-`)"
    )]
    BadTag { reference: String, tag: String },
    #[error("digest in `{0}` is not valid (expected `sha256:` and 64 hex digits)")]
    BadDigest(String),
}

impl ImageRef {
    pub fn parse(reference: &str) -> Result<ImageRef, RefError> {
        if reference.is_empty() {
            return Err(RefError::Empty);
        }
        let invalid = || RefError::Invalid(reference.to_string());
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                if !valid_digest(digest) {
                    return Err(RefError::BadDigest(reference.to_string()));
                }
                (rest, Some(digest.to_string()))
            }
            None => (reference, None),
        };
        // A `:` after the last `/` separates the tag; one before it belongs to a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !valid_tag(tag) {
                    return Err(RefError::BadTag { reference: reference.to_string(), tag: tag.to_string() });
                }
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid());
        }
        if name.len() > 255 {
            return Err(RefError::TooLong(reference.to_string()));
        }
        let (domain, path) = match name.split_once('/') {
            // Docker's rule: the first component is a registry if it looks like a host name.
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (Some(first.to_string()), rest)
            }
            _ => (None, name),
        };
        if let Some(domain) = &domain
            && !valid_domain(domain)
        {
            return Err(invalid());
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(RefError::Uppercase(reference.to_string()));
        }
        if !path.split('/').all(valid_component) {
            return Err(invalid());
        }
        Ok(ImageRef { domain, path: path.to_string(), tag, digest })
    }

    /// The repository without tag or digest, e.g. `localhost:5000/acme/train`.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `[\w][\w.-]{0,127}`: Docker's tag grammar (also Cloud Build's rule for build tags).
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    tag.len() <= 128
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(reference: &str, expected: Result<(&str, Option<&str>, Option<&str>), &str>) {
        match (ImageRef::parse(reference), expected) {
            (Ok(r), Ok((repo, tag, digest))) => {
                assert_eq!(r.repository(), repo, "{reference}");
                assert_eq!(r.tag.as_deref(), tag, "{reference}");
                assert_eq!(r.digest.as_deref(), digest, "{reference}");
                assert_eq!(r.to_string(), reference);
            }
            (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "{reference}: {e}"),
            (got, want) => panic!("{reference}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn references() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        check("busybox", Ok(("busybox", None, None)));
        check("local/busybox:1", Ok(("local/busybox", Some("1"), None)));
        check("gcr.io/cloud-builders/docker", Ok(("gcr.io/cloud-builders/docker", None, None)));
        check("localhost:5000/acme/train:abc", Ok(("localhost:5000/acme/train", Some("abc"), None)));
        check(&format!("localhost:5000/a/b:t@{d}"), Ok(("localhost:5000/a/b", Some("t"), Some(d))));
        check(&format!("python@{d}"), Ok(("python", None, Some(d))));
        check(
            "us-docker.pkg.dev/p/r/img_name.x__y--z:1.2",
            Ok(("us-docker.pkg.dev/p/r/img_name.x__y--z", Some("1.2"), None)),
        );
        check("", Err("empty"));
        check("Busybox", Err("lowercase"));
        check("gcr.io/MyProject/img", Err("lowercase"));
        check("gcr.io//img", Err("not a valid"));
        check("gcr.io/img:", Err("tag"));
        check("img:-x", Err("tag"));
        check("img@sha256:abc", Err("digest"));
        check("-img", Err("not a valid"));
        check("a b", Err("not a valid"));
        check("europe-docker.pkg.dev//myimage:abc", Err("not a valid"));
    }

    #[test]
    fn tags() {
        assert!(valid_tag("ABCabc-._"));
        assert!(!valid_tag("%"));
        assert!(valid_tag(&"a".repeat(128)));
        assert!(!valid_tag(&"a".repeat(129)));
    }
}
