//! The branch or tag an event is about.
//!
//! Names come from webhook bodies and later reach git commands, substitutions (`BRANCH_NAME`) and the
//! dashboard, so they are checked here against git's own rules (`git check-ref-format`): a name git would
//! refuse cannot have been pushed, and refusing it early keeps odd bytes out of everything downstream.

use serde::{Deserialize, Serialize};

/// A branch or a tag, by its short name (`main`, `v1.2.0`), never with the `refs/…/` prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "name")]
pub enum GitRef {
    Branch(String),
    Tag(String),
}

impl GitRef {
    /// Reads a full ref name (`refs/heads/main`, `refs/tags/v1`). `Ok(None)` for refs that are neither a
    /// branch nor a tag (`refs/notes/…`, `refs/pull/…`): real, but nothing a trigger can name.
    pub fn from_full(full: &str) -> Result<Option<GitRef>, String> {
        let (name, make): (&str, fn(String) -> GitRef) = if let Some(name) = full.strip_prefix("refs/heads/") {
            (name, GitRef::Branch)
        } else if let Some(name) = full.strip_prefix("refs/tags/") {
            (name, GitRef::Tag)
        } else if full.starts_with("refs/") {
            return Ok(None);
        } else {
            return Err(format!("`{full}` is not a full ref name (expected `refs/heads/…` or `refs/tags/…`)"));
        };
        check_name(name)?;
        Ok(Some(make(name.to_string())))
    }

    /// The short name: what `branch:` and `tag:` regexes are matched against.
    pub fn name(&self) -> &str {
        match self {
            GitRef::Branch(name) | GitRef::Tag(name) => name,
        }
    }

    pub fn is_tag(&self) -> bool {
        matches!(self, GitRef::Tag(_))
    }
}

/// Checks a short branch or tag name against `git check-ref-format`'s rules.
pub fn check_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`{}` is not a valid branch or tag name: {why}", name.escape_debug()));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "@" {
        return bad("`@` alone is reserved");
    }
    if let Some(c) = name.chars().find(|c| c.is_ascii_control() || " ~^:?*[\\".contains(*c)) {
        return bad(&format!("it contains `{}`", c.escape_debug()));
    }
    for sequence in ["..", "@{", "//"] {
        if name.contains(sequence) {
            return bad(&format!("it contains `{sequence}`"));
        }
    }
    if name.starts_with('-') {
        // `git check-ref-format --branch` refuses it too; git commands would read it as an option.
        return bad("it starts with `-`");
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return bad("it starts or ends with `/`, or ends with `.`");
    }
    if name.split('/').any(|part| part.starts_with('.') || part.ends_with(".lock")) {
        return bad("a component starts with `.` or ends with `.lock`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(full: &str, expected: Result<Option<GitRef>, &str>) {
        match (GitRef::from_full(full), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{full}"),
            (Err(got), Err(fragment)) => assert!(got.contains(fragment), "{full}: `{fragment}` not in `{got}`"),
            (got, want) => panic!("{full}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn full_refs() {
        let branch = |n: &str| Ok(Some(GitRef::Branch(n.to_string())));
        let tag = |n: &str| Ok(Some(GitRef::Tag(n.to_string())));
        check("refs/heads/main", branch("main"));
        check("refs/heads/feature/x-1", branch("feature/x-1"));
        check("refs/heads/refs/tags/v1", branch("refs/tags/v1"));
        check("refs/tags/v1.0.0", tag("v1.0.0"));
        check("refs/tags/release@2024", tag("release@2024"));
        check("refs/notes/commits", Ok(None));
        check("refs/pull/2/head", Ok(None));
        check("main", Err("not a full ref name"));
        check("", Err("not a full ref name"));
        check("refs/heads/", Err("it is empty"));
        check("refs/heads/a..b", Err("`..`"));
        check("refs/heads/a b", Err("it contains ` `"));
        check("refs/heads/a\u{0}b", Err("it contains `\\0`"));
        check("refs/heads/a\nb", Err("it contains `\\n`"));
        check("refs/heads/x.lock", Err("`.lock`"));
        check("refs/heads/.hidden", Err("starts with `.`"));
        check("refs/heads/a/", Err("ends with `/`"));
        check("refs/heads/a//b", Err("`//`"));
        check("refs/heads/@", Err("reserved"));
        check("refs/heads/a@{1}", Err("`@{`"));
        check("refs/tags/v1.", Err("ends with `.`"));
        check("refs/tags/x~1", Err("`~`"));
        check("refs/heads/--upload-pack=x", Err("starts with `-`"));
        check("refs/heads/a-b", branch("a-b"));
    }
}
