//! `includedFiles` / `ignoredFiles`: Cloud Build's rule, exactly (cloudbuild.md §10.3).
//!
//! ```text
//! no globs at all                                    → build
//! no files changed                                   → skip ("no files changed")
//! drop every changed file an ignoredFiles glob matches
//! ignoredFiles given and nothing is left             → skip ("only docs/** changed")
//! no includedFiles                                   → build
//! a file left matches an includedFiles glob          → build, else skip
//! ```
//!
//! A file matching both lists is ignored: includedFiles only sees what ignoredFiles left.
//!
//! Globs are matched against repository-relative paths as git prints them (`components/train/model.py`,
//! no leading `/` or `./`), with these rules:
//! - `*` matches within one path segment (`*.md` is a root-level file only), `?` one character of a
//!   segment, `[abc]`, `[a-z]` and `[!a]`/`[^a]` one character from a class, `\` escapes;
//! - `**` matches any number of segments: `**/*.md` is every Markdown file at any depth, and `dir/**` is
//!   **every file below `dir/`** at any depth (on Cloud Build `dir/**` has been reported to miss files
//!   that `dir/**/*` matched; here both mean the same);
//! - `{a,b}` alternatives also work (Cloud Build's Go matcher has none; nothing valid there changes).
//!
//! Each list is compiled once into a `GlobSet`, so a decision over 50,000 changed files costs one pass.

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("`{field}` glob `{glob}` is invalid: {message}")]
    Invalid { field: &'static str, glob: String, message: String },
    #[error(
        "`{field}` glob `{glob}` starts with `/`; globs are relative to the repository root\n\nhint: write `{}`",
        .glob.trim_start_matches('/')
    )]
    Absolute { field: &'static str, glob: String },
}

/// The compiled `ignoredFiles` and `includedFiles` of one trigger.
#[derive(Clone, Debug)]
pub struct PathFilter {
    ignored: Globs,
    included: Globs,
}

/// What the filter says about a change set, with the clause that explains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Build(String),
    Skip(String),
}

#[derive(Clone, Debug)]
struct Globs {
    set: GlobSet,
    patterns: Vec<String>,
}

impl PathFilter {
    pub fn new<S: AsRef<str>>(ignored: &[S], included: &[S]) -> Result<PathFilter, FilterError> {
        Ok(PathFilter {
            ignored: Globs::new("ignoredFiles", ignored)?,
            included: Globs::new("includedFiles", included)?,
        })
    }

    /// No globs in either list: every change set builds.
    pub fn is_empty(&self) -> bool {
        self.ignored.patterns.is_empty() && self.included.patterns.is_empty()
    }

    /// Applies Cloud Build's rule to `changed`. Stops at the first file that decides to build.
    pub fn apply<S: AsRef<str>>(&self, changed: &[S]) -> Verdict {
        if self.is_empty() {
            return Verdict::Build("no path filters".to_string());
        }
        if changed.is_empty() {
            return Verdict::Skip("no files changed".to_string());
        }
        let mut any_left = false;
        for file in changed {
            let file = file.as_ref();
            let candidate = Candidate::new(file);
            if self.ignored.set.is_match_candidate(&candidate) {
                continue;
            }
            any_left = true;
            if self.included.patterns.is_empty() {
                return Verdict::Build(format!("{file} is not ignored"));
            }
            if let Some(&index) = self.included.set.matches_candidate(&candidate).first() {
                return Verdict::Build(format!("{file} matches {}", self.included.patterns[index]));
            }
        }
        if any_left {
            Verdict::Skip(format!("no change matches {}", list(&self.included.patterns)))
        } else {
            Verdict::Skip(format!("only {} changed", list(&self.ignored_globs_matching(changed))))
        }
    }

    /// The ignoredFiles globs that matched at least one file, in the order written: the skip reason names
    /// them. A second pass, run only when a change set is skipped, and cut short once all are found.
    fn ignored_globs_matching<S: AsRef<str>>(&self, changed: &[S]) -> Vec<String> {
        let mut seen = vec![false; self.ignored.patterns.len()];
        let mut scratch = Vec::new();
        for file in changed {
            self.ignored.set.matches_into(file.as_ref(), &mut scratch);
            for &index in &scratch {
                seen[index] = true;
            }
            if seen.iter().all(|s| *s) {
                break;
            }
        }
        self.ignored.patterns.iter().zip(seen).filter(|(_, seen)| *seen).map(|(p, _)| p.clone()).collect()
    }
}

impl Globs {
    fn new<S: AsRef<str>>(field: &'static str, patterns: &[S]) -> Result<Globs, FilterError> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let invalid =
                |message: &str| FilterError::Invalid { field, glob: pattern.to_string(), message: message.to_string() };
            if pattern.is_empty() {
                return Err(invalid("it is empty"));
            }
            if pattern.starts_with('/') {
                return Err(FilterError::Absolute { field, glob: pattern.to_string() });
            }
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| invalid(&e.kind().to_string()))?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| FilterError::Invalid {
            field,
            glob: patterns.iter().map(|p| p.as_ref()).collect::<Vec<_>>().join(", "),
            message: e.to_string(),
        })?;
        Ok(Globs { set, patterns: patterns.iter().map(|p| p.as_ref().to_string()).collect() })
    }
}

/// `a`, `a, b`, `a, b, c`, then `a, b, c and 2 more`: reasons end up in commit statuses, which are short.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 3;
    let shown = items.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    match items.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `ignored`/`included` to `changed` and compares the verdict.
    #[track_caller]
    fn check(ignored: &[&str], included: &[&str], changed: &[&str], expected: Verdict) {
        let filter = PathFilter::new(ignored, included).expect("globs compile");
        assert_eq!(filter.apply(changed), expected, "ignored {ignored:?} included {included:?} changed {changed:?}");
    }

    fn build(clause: &str) -> Verdict {
        Verdict::Build(clause.to_string())
    }

    fn skip(reason: &str) -> Verdict {
        Verdict::Skip(reason.to_string())
    }

    /// Whether `glob` matches `path` alone, as an includedFiles entry.
    #[track_caller]
    fn matches(glob: &str, path: &str) -> bool {
        let filter = PathFilter::new(&[], &[glob]).expect("glob compiles");
        matches!(filter.apply(&[path]), Verdict::Build(_))
    }

    #[test]
    fn glob_syntax() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.md", "README.md", true),
            ("*.md", "docs/guide.md", false),
            ("**/*.md", "README.md", true),
            ("**/*.md", "docs/a/b/guide.md", true),
            ("docs/**", "docs/guide.md", true),
            ("docs/**", "docs/a/b/c.png", true),
            ("docs/**", "docs", false),
            ("docs/**", "mydocs/x.md", false),
            ("docs/**", "src/docs/x.md", false),
            ("docs/**/*", "docs/a/b/c.png", true),
            ("components/*.py", "components/train/model.py", false),
            ("components/*/*.py", "components/train/model.py", true),
            ("components/**/*.py", "components/train/src/model.py", true),
            ("components/**/*.py", "components/model.py", true),
            ("?.txt", "a.txt", true),
            ("?.txt", "ab.txt", false),
            ("?", "/", false),
            ("[ab].txt", "b.txt", true),
            ("[a-c].txt", "d.txt", false),
            ("[!a].txt", "a.txt", false),
            ("[!a].txt", "b.txt", true),
            ("[^a].txt", "b.txt", true),
            ("\\*.txt", "*.txt", true),
            ("\\*.txt", "a.txt", false),
            ("{docs,site}/**", "site/index.html", true),
            ("Dockerfile", "Dockerfile", true),
            ("Dockerfile", "components/Dockerfile", false),
            ("**/Dockerfile", "components/train/Dockerfile", true),
            ("*", "a/b", false),
            ("**", "a/b", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("*.MD", "README.md", false),
        ];
        for (glob, path, expected) in cases {
            assert_eq!(matches(glob, path), *expected, "`{glob}` on `{path}`");
        }
    }

    #[test]
    fn cloud_build_rule() {
        let docs = &["docs/**", "**/*.md"][..];
        check(&[], &[], &[], build("no path filters"));
        check(&[], &[], &["a.py"], build("no path filters"));
        check(docs, &[], &[], skip("no files changed"));
        check(&[], &["src/**"], &[], skip("no files changed"));
        check(docs, &[], &["docs/a.png", "README.md"], skip("only docs/**, **/*.md changed"));
        check(docs, &[], &["docs/a.md"], skip("only docs/**, **/*.md changed"));
        check(docs, &[], &["docs/a.png"], skip("only docs/** changed"));
        check(docs, &[], &["x/y.md"], skip("only **/*.md changed"));
        check(docs, &[], &["README.md", "src/a.py"], build("src/a.py is not ignored"));
        check(&[], &["src/**"], &["README.md", "src/a.py"], build("src/a.py matches src/**"));
        check(&[], &["src/**", "lib/**"], &["README.md"], skip("no change matches src/**, lib/**"));
        // Ignored wins over included: a file in both lists is dropped before includedFiles looks.
        check(&["src/**/*.md"], &["src/**"], &["src/notes.md"], skip("only src/**/*.md changed"));
        check(&["src/**/*.md"], &["src/**"], &["src/notes.md", "src/a.py"], build("src/a.py matches src/**"));
        check(&["**/*.md"], &["src/**"], &["README.md", "tests/t.py"], skip("no change matches src/**"));
        check(&["a", "b", "c", "d", "e"], &[], &["a", "b", "c", "d", "e"], skip("only a, b, c and 2 more changed"));
    }

    #[test]
    fn bad_globs_name_themselves() {
        let err = |ignored: &[&str], included: &[&str]| PathFilter::new(ignored, included).unwrap_err().to_string();
        assert_eq!(
            err(&["/docs/**"], &[]),
            "`ignoredFiles` glob `/docs/**` starts with `/`; globs are relative to the repository root\n\nhint: write `docs/**`"
        );
        assert!(
            err(&[], &["src/[a"]).starts_with("`includedFiles` glob `src/[a` is invalid: "),
            "{}",
            err(&[], &["src/[a"])
        );
        assert_eq!(err(&[""], &[]), "`ignoredFiles` glob `` is invalid: it is empty");
    }
}
