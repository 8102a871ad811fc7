//! Which registry tags a build may write (docs/THREATS.md property 3: no tag moves outside promotion).
//!
//! Promotion moves `<env>` and `<env>-<COMMIT_SHA>` in the same repositories a build pushes to, and
//! the component images are named `<COMMIT_SHA>` and `ctx-<hash>`. A [`Tag`] is the only way to name
//! a tag for publication: a build gets [`Tag::commit`] and [`Tag::branch`], which never yield a
//! reserved name; only promotion asks for [`Tag::environment`] explicitly.

/// Environment names reserved even when the build file declares none: a branch may drop its
/// `environments:` to free the name, so the usual ones stay reserved regardless.
pub const DEFAULT_ENVIRONMENTS: &[&str] = &["dev", "staging", "prod"];

/// The prefix a branch tag gets when its sanitised name is reserved (`prod` → `branch-prod`).
pub const BRANCH_PREFIX: &str = "branch-";

/// A tag pipewright may write; see the module comment for who may make which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag(String);

impl Tag {
    /// The commit tag of the build of `sha` (the plan's built-in `COMMIT_SHA`, which no user
    /// substitution can override).
    pub fn commit(sha: &str) -> Tag {
        Tag(sha.to_string())
    }

    /// The tag for branch or tag `ref_name`: its sanitised form, or `branch-<sanitised>` when that
    /// is reserved. `None` when nothing is left after sanitising.
    pub fn branch(ref_name: &str, reserved: &Reserved) -> Option<Tag> {
        let tag = sanitize_tag(ref_name);
        if tag.is_empty() {
            return None;
        }
        if !reserved.reserves(&tag) {
            return Some(Tag(tag));
        }
        let mut tag = format!("{BRANCH_PREFIX}{tag}");
        tag.truncate(128);
        Some(Tag(tag))
    }

    /// Promotion only: `<env>` and `<env>-<sha>`, the names a promotion moves.
    pub fn environment(env: &str, sha: &str) -> [Tag; 2] {
        [Tag(env.to_string()), Tag(format!("{env}-{sha}"))]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tag names only promotion (or the build of that very commit) may write.
#[derive(Clone, Debug)]
pub struct Reserved {
    /// Lower-cased environment names.
    environments: Vec<String>,
}

impl Reserved {
    /// Reserves the given environments and [`DEFAULT_ENVIRONMENTS`].
    pub fn new<'a>(environments: impl IntoIterator<Item = &'a str>) -> Reserved {
        let mut names: Vec<String> =
            DEFAULT_ENVIRONMENTS.iter().copied().chain(environments).map(str::to_ascii_lowercase).collect();
        names.sort();
        names.dedup();
        Reserved { environments: names }
    }

    /// Whether `tag` is reserved: an environment `<env>` or `<env>-…` (case-insensitively, as
    /// registries and people compare them), a commit tag (7 to 64 hex digits: another commit's name),
    /// or a context tag `ctx-…`.
    pub fn reserves(&self, tag: &str) -> bool {
        let lower = tag.to_ascii_lowercase();
        let commit = (7..=64).contains(&lower.len()) && lower.bytes().all(|b| b.is_ascii_hexdigit());
        self.environment_of(tag).is_some() || commit || lower.starts_with("ctx-")
    }

    /// The environment whose tags `tag` is one of (`prod`, `prod-…`, in any case), if any.
    pub fn environment_of(&self, tag: &str) -> Option<&str> {
        let tag = tag.to_ascii_lowercase();
        self.environments
            .iter()
            .find(|env| tag == **env || tag.strip_prefix(env.as_str()).is_some_and(|rest| rest.starts_with('-')))
            .map(String::as_str)
    }
}

/// A branch name as a tag: characters outside `[A-Za-z0-9_.-]` become `-`, at most 128, not starting
/// with `.` or `-` (`feature/x` → `feature-x`).
pub fn sanitize_tag(name: &str) -> String {
    let mut tag: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' }).collect();
    while tag.starts_with(['.', '-']) {
        tag.remove(0);
    }
    tag.truncate(128);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_tags() {
        assert_eq!(sanitize_tag("main"), "main");
        assert_eq!(sanitize_tag("feature/new-model"), "feature-new-model");
        assert_eq!(sanitize_tag("-x"), "x");
        assert_eq!(sanitize_tag(""), "");
        assert!(crate::image_ref::valid_tag(&sanitize_tag(&"a/".repeat(100))));
    }

    fn reserved() -> Reserved {
        Reserved::new(["qa"])
    }

    #[test]
    fn environment_names_are_reserved_in_every_spelling() {
        let r = reserved();
        for tag in ["prod", "PROD", "Prod", "prod-1234", "staging", "dev", "qa", "QA-x", "prod-x"] {
            assert!(r.reserves(tag), "{tag}");
        }
        for tag in ["main", "production", "develop", "feature-x", "branch-prod", "qa_x"] {
            assert!(!r.reserves(tag), "{tag}");
        }
    }

    #[test]
    fn the_environment_a_tag_belongs_to() {
        let r = reserved();
        assert_eq!(r.environment_of("PROD-abc"), Some("prod"));
        assert_eq!(r.environment_of("qa"), Some("qa"));
        assert_eq!(r.environment_of("0123abc"), None);
        assert_eq!(r.environment_of("production"), None);
    }

    #[test]
    fn commit_and_context_tags_are_reserved() {
        let r = reserved();
        assert!(r.reserves("0123456789abcdef0123456789abcdef01234567"));
        assert!(r.reserves("abc1234"));
        assert!(r.reserves("ctx-deadbeef"));
        assert!(!r.reserves("abc12"));
        assert!(!r.reserves("cafe-au-lait"));
    }

    #[test]
    fn a_reserved_branch_gets_a_tag_that_cannot_collide() {
        let r = reserved();
        let tag = |name: &str| Tag::branch(name, &r).map(|t| t.to_string());
        assert_eq!(tag("main").as_deref(), Some("main"));
        assert_eq!(tag("feature/x").as_deref(), Some("feature-x"));
        assert_eq!(tag("prod").as_deref(), Some("branch-prod"));
        assert_eq!(tag("Prod").as_deref(), Some("branch-Prod"));
        assert_eq!(tag("prod/x").as_deref(), Some("branch-prod-x"));
        assert_eq!(tag("prod-1234").as_deref(), Some("branch-prod-1234"));
        assert_eq!(tag("qa").as_deref(), Some("branch-qa"));
        assert_eq!(tag("/").as_deref(), None);
        for name in ["prod", "PROD", "staging-9", "dev", "qa", "abcdef0"] {
            let t = Tag::branch(name, &r).unwrap();
            assert!(!r.reserves(t.as_str()), "{name} → {t}");
            assert!(crate::image_ref::valid_tag(t.as_str()));
        }
        let long = Tag::branch(&format!("prod{}", "x".repeat(200)), &r).unwrap();
        assert!(long.as_str().len() <= 128 && crate::image_ref::valid_tag(long.as_str()));
    }

    #[test]
    fn promotion_names_its_tags() {
        let [env, env_sha] = Tag::environment("prod", "abc");
        assert_eq!((env.as_str(), env_sha.as_str()), ("prod", "prod-abc"));
    }
}
