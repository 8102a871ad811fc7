//! Docker's `.dockerignore` rules, as moby's `patternmatcher` applies them.
//!
//! This is not gitignore: every pattern is anchored at the context root (`*.md` excludes `README.md`
//! but not `docs/a.md`), a pattern that matches a directory excludes everything below it, `!` lines
//! re-include, and the last matching line wins, even inside an excluded directory. Segments use Go's
//! `filepath.Match` syntax (`*`, `?`, `[a-z]`, `[^a-z]`, `\` escapes) plus `**` for any number of
//! directories, including none. Patterns are cleaned like Go's `path.Clean` (`./a/../b` is `b`) and a
//! leading `/` is dropped.
//!
//! Where moby's behaviour is odd we copy it, because users check their `.dockerignore` with
//! `docker build`: `#` starts a comment only in the first column, `[!a]` is a class of `!` and `a`
//! (Go has no `!` negation), and `**foo` matches any path ending in `foo` (moby's suffix shortcut).

use std::fmt;

/// A parsed `.dockerignore`: which context paths Docker would leave out.
#[derive(Clone, Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// A line of a `.dockerignore` that Docker would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: `{pattern}` is not a valid pattern: {problem}")]
pub struct IgnoreError {
    /// 1-based line number.
    pub line: usize,
    /// The line as written, trimmed.
    pub pattern: String,
    pub problem: PatternProblem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternProblem {
    /// `!` with nothing after it.
    LoneBang,
    /// A `\` with nothing to escape.
    TrailingBackslash,
    /// A `[` without its `]`.
    UnclosedClass,
    /// A `-` or `]` where a class needs a character (`[]`, `[-a]`, `[a-]`, `[a-b-c]`).
    MisplacedInClass(char),
    /// A range whose end comes before its start, such as `[z-a]`.
    ReversedRange(char, char),
}

impl fmt::Display for PatternProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternProblem::LoneBang => write!(f, "`!` needs a pattern after it"),
            PatternProblem::TrailingBackslash => write!(f, "it ends with a `\\` that escapes nothing"),
            PatternProblem::UnclosedClass => write!(f, "a `[` has no closing `]`"),
            PatternProblem::MisplacedInClass(c) => {
                write!(f, "a character class has `{c}` where a character belongs (escape it as `\\{c}`)")
            }
            PatternProblem::ReversedRange(lo, hi) => write!(f, "the range `{lo}-{hi}` runs backwards"),
        }
    }
}

#[derive(Clone, Debug)]
struct Pattern {
    /// A `!` line: a match re-includes the path.
    exception: bool,
    /// The cleaned pattern without its `!`.
    text: String,
    matcher: Matcher,
}

#[derive(Clone, Debug)]
enum Matcher {
    /// `**` followed by literal text. moby matches these by `strings.HasSuffix`, so `**foo` also
    /// matches `xfoo`; `**/foo` matches `foo` and `…/foo`.
    Suffix(String),
    Glob(Vec<Token>),
}

#[derive(Clone, Debug)]
enum Token {
    Char(char),
    /// `?`: one character other than `/`.
    AnyChar,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` (with the `/` after it) before more pattern: no directories, or any number of them.
    AnyDirs,
    /// `**` at the end: anything at all.
    AnyRest,
    Class(Class),
}

#[derive(Clone, Debug)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<DockerIgnore, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let parsed = Pattern::parse(line).map_err(|problem| IgnoreError {
                line: index + 1,
                pattern: line.trim().to_owned(),
                problem,
            })?;
            patterns.extend(parsed);
        }
        Ok(DockerIgnore { patterns })
    }

    /// Whether Docker leaves `rel_path` out of the context.
    ///
    /// `rel_path` is relative to the context root, `/`-separated and clean (no `./`, `..` or `//`).
    pub fn excludes(&self, rel_path: &str) -> bool {
        let mut excluded = false;
        for pattern in &self.patterns {
            // The last matching pattern decides, so a pattern that agrees with the verdict so far
            // cannot change it and need not be tried.
            if pattern.exception != excluded {
                continue;
            }
            if pattern.matches_path_or_parent(rel_path) {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether an exception could re-include something below the directory `dir`, which lets a
    /// walker skip excluded directories such as `.git` whole.
    ///
    /// A pattern only matches paths that start with its text up to the first wildcard, so an
    /// exception whose literal start is not a prefix of `dir/` (or the other way round) can never
    /// match `dir`, a parent of it or anything below it.
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let dir = format!("{dir}/");
        self.patterns.iter().filter(|pattern| pattern.exception).any(|pattern| {
            let literal = pattern.literal_prefix();
            dir.starts_with(literal) || literal.starts_with(&dir)
        })
    }
}

impl Pattern {
    /// Parses one line; `None` for comments and blank lines.
    fn parse(line: &str) -> Result<Option<Pattern>, PatternProblem> {
        // Docker reads a comment only where `#` is the first character of the line.
        if line.starts_with('#') {
            return Ok(None);
        }
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let normalized = normalize(line);
        let (exception, text) = match normalized.strip_prefix('!') {
            Some("") => return Err(PatternProblem::LoneBang),
            Some(rest) => (true, rest.to_owned()),
            None => (false, normalized),
        };
        let matcher = Matcher::compile(&text)?;
        Ok(Some(Pattern { exception, text, matcher }))
    }

    fn matches_path_or_parent(&self, path: &str) -> bool {
        self.matcher.matches(path) || parents(path).any(|parent| self.matcher.matches(parent))
    }

    fn literal_prefix(&self) -> &str {
        let end = self.text.find(['*', '?', '[', '\\']).unwrap_or(self.text.len());
        &self.text[..end]
    }
}

/// Docker's two cleaning passes: the ignore-file reader cleans the pattern after any `!` and drops a
/// leading `/`; the matcher then cleans the whole line again, `!` included (so `!/` becomes `!`).
fn normalize(line: &str) -> String {
    let (bang, body) = match line.strip_prefix('!') {
        Some(rest) => ("!", rest.trim()),
        None => ("", line),
    };
    let mut body = if body.is_empty() { String::new() } else { clean(body) };
    if body.len() > 1 && body.starts_with('/') {
        body.remove(0);
    }
    clean(&format!("{bang}{body}"))
}

/// Go's `path.Clean`: one `/` between elements, no `.` elements, `..` folded into its parent.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            // `..` above the root is the root.
            ".." if rooted => {}
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// `a`, `a/b` for `a/b/c`.
fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(index, _)| &path[..index])
}

impl Matcher {
    fn compile(pattern: &str) -> Result<Matcher, PatternProblem> {
        if let Some(rest) = pattern.strip_prefix("**")
            && !rest.contains(['*', '?', '[', ']', '\\'])
        {
            return Ok(Matcher::Suffix(rest.to_owned()));
        }
        tokenize(pattern).map(Matcher::Glob)
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/').is_some_and(|name| path == name)
            }
            Matcher::Glob(tokens) => glob_matches(tokens, path),
        }
    }
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, PatternProblem> {
    let mut chars = pattern.chars().peekable();
    let mut tokens = Vec::new();
    while let Some(c) = chars.next() {
        let token = match c {
            '*' if chars.next_if_eq(&'*').is_some() => {
                // `**/` is the same as `**`.
                chars.next_if_eq(&'/');
                if chars.peek().is_none() { Token::AnyRest } else { Token::AnyDirs }
            }
            '*' => Token::Star,
            '?' => Token::AnyChar,
            '\\' => Token::Char(chars.next().ok_or(PatternProblem::TrailingBackslash)?),
            '[' => Token::Class(parse_class(&mut chars)?),
            _ => Token::Char(c),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// The rest of a class after its `[`, by `filepath.Match`'s grammar: `[^]`, `[]` and stray `-`
/// are errors there, and Docker rejects what `filepath.Match` rejects.
fn parse_class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Class, PatternProblem> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
            return Ok(Class { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = if chars.next_if_eq(&'-').is_some() { class_char(chars)? } else { lo };
        if hi < lo {
            return Err(PatternProblem::ReversedRange(lo, hi));
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, PatternProblem> {
    match chars.next() {
        None => Err(PatternProblem::UnclosedClass),
        Some(c @ ('-' | ']')) => Err(PatternProblem::MisplacedInClass(c)),
        Some('\\') => chars.next().ok_or(PatternProblem::UnclosedClass),
        Some(c) => Ok(c),
    }
}

impl Class {
    fn matches(&self, c: char) -> bool {
        // Docker turns a class into a regular-expression class, which (unlike `?`) can match `/`.
        self.ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != self.negated
    }
}

/// Runs the pattern as a small NFA over the path's characters, so that no pattern, however many
/// stars it has, costs more than (pattern length × path length).
fn glob_matches(tokens: &[Token], path: &str) -> bool {
    let end = tokens.len();
    // `at[i]`: the path so far matches `tokens[..i]`. `inside[i]`: `tokens[i]` is `AnyDirs` and the
    // path so far has begun, but not finished, the directories it stands for.
    let mut at = vec![false; end + 1];
    let mut inside = vec![false; end + 1];
    at[0] = true;
    skip_empty(tokens, &mut at);
    for c in path.chars() {
        let mut next_at = vec![false; end + 1];
        let mut next_inside = vec![false; end + 1];
        for (i, token) in tokens.iter().enumerate() {
            match token {
                Token::AnyDirs if at[i] || inside[i] => {
                    next_inside[i] = true;
                    next_at[i + 1] |= c == '/';
                }
                _ => {
                    if at[i]
                        && let Some(to) = step(token, c, i)
                    {
                        next_at[to] = true;
                    }
                }
            }
        }
        skip_empty(tokens, &mut next_at);
        if !next_at.contains(&true) && !next_inside.contains(&true) {
            return false;
        }
        at = next_at;
        inside = next_inside;
    }
    at[end]
}

/// Where reading `c` at `tokens[i]` leads, other than into `AnyDirs`.
fn step(token: &Token, c: char, i: usize) -> Option<usize> {
    match token {
        Token::Char(expected) => (c == *expected).then_some(i + 1),
        Token::AnyChar => (c != '/').then_some(i + 1),
        Token::Class(class) => class.matches(c).then_some(i + 1),
        Token::Star => (c != '/').then_some(i),
        Token::AnyRest => Some(i),
        Token::AnyDirs => None,
    }
}

/// Lets tokens that can match nothing (`*`, `**`) be passed without reading a character.
fn skip_empty(tokens: &[Token], at: &mut [bool]) {
    for (i, token) in tokens.iter().enumerate() {
        if at[i] && matches!(token, Token::Star | Token::AnyDirs | Token::AnyRest) {
            at[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ignore` is the file's lines joined by `|`; `excluded` is whether `path` is left out.
    #[track_caller]
    fn check(ignore: &str, path: &str, excluded: bool) {
        let text = ignore.replace('|', "\n");
        let parsed = DockerIgnore::parse(&text).expect("test patterns are valid");
        assert_eq!(parsed.excludes(path), excluded, "patterns {ignore:?}, path {path:?}");
    }

    #[track_caller]
    fn check_error(ignore: &str, expected: &str) {
        let text = ignore.replace('|', "\n");
        let error = DockerIgnore::parse(&text).expect_err("pattern should be rejected");
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn anchoring() {
        check("*.md", "README.md", true);
        check("*.md", "docs/a.md", false);
        check("docs/*.md", "docs/a.md", true);
        check("docs/*.md", "README.md", false);
        check("docs/*.md", "docs/deep/a.md", false);
        check("**/*.md", "README.md", true);
        check("**/*.md", "docs/deep/a.md", true);
        check("**/*.md", "docs/a.mdx", false);
        check("foo", "a/foo", false);
        check("*/temp*", "somedir/temporary.txt", true);
        check("*/temp*", "temp", false);
        check("*/*/temp*", "somedir/subdir/temporary.txt", true);
    }

    #[test]
    fn leading_slash_and_cleaning() {
        check("/foo/bar", "foo/bar", true);
        check("/*.md", "README.md", true);
        check("./a/../b", "b", true);
        check("./a/../b", "a", false);
        check("a//b/", "a/b/c", true);
        check("src/./main.py", "src/main.py", true);
        check("../outside", "outside", false);
        check("/", "anything", false);
    }

    #[test]
    fn double_star() {
        check("**", "any/thing/at/all", true);
        check("**/node_modules", "node_modules/x.js", true);
        check("**/node_modules", "web/app/node_modules/x.js", true);
        check("**/node_modules", "web/my_node_modules", false);
        check("dir/**", "dir/a/b", true);
        check("dir/**", "dir", false);
        check("dir/**", "dirt/a", false);
        check("a/**/b", "a/b", true);
        check("a/**/b", "a/x/y/b", true);
        check("a/**/b", "a/xb", false);
        check("a**/*.txt", "a/dir/dir/file.txt", true);
        check("**/**/*.txt", "file.txt", true);
        // moby's suffix shortcut: `**` then literal text matches any path ending with that text.
        check("**file", "dir/afile", true);
        check("**file*", "dir/afile", false);
    }

    #[test]
    fn single_character_classes_and_escapes() {
        check("temp?", "tempa", true);
        check("temp?", "temp", false);
        check("temp?", "tempab", false);
        check("a?b", "a/b", false);
        check("*", "a/b", true);
        check("a*b", "a/b", false);
        check("file[0-9].txt", "file7.txt", true);
        check("file[0-9].txt", "filex.txt", false);
        check("file[^0-9].txt", "filex.txt", true);
        check("file[^0-9].txt", "file7.txt", false);
        check("file[!0-9].txt", "file!.txt", true);
        check("file[!0-9].txt", "filex.txt", false);
        // Docker compiles a class to a regular expression, so a negated class can match `/`.
        check("a[^x]b", "a/b", true);
        check("[\\]a]", "]", true);
        check("[x\\-]", "-", true);
        check("a\\*b", "a*b", true);
        check("a\\*b", "axb", false);
        check("\\#notes", "#notes", true);
        check("a.)$(}+{bc", "a.)$(}+{bc", true);
        check("abc.def", "abcZdef", false);
        check("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true);
    }

    #[test]
    fn exceptions_and_last_match() {
        check("*.md|!README.md", "README.md", false);
        check("*.md|!README.md", "CHANGES.md", true);
        check("*.md|!README.md|README.md", "README.md", true);
        check("!README.md|*.md", "README.md", true);
        check("*.md|!README*.md|README-secret.md", "README-secret.md", true);
        check("*.md|!README*.md|README-secret.md", "README-public.md", false);
        check("*.md|!README*.md|README-secret.md", "CHANGES.md", true);
        check("*.md|README-secret.md|!README*.md", "README-secret.md", false);
        check("*|!src", "src/deep/main.py", false);
        check("*|!src", "setup.py", true);
        check("**|!util/docker/web|util/docker/web/foo", "util/docker/web/foo", true);
        check("**|!util/docker/web|util/docker/web/foo", "util/docker/web/bar", false);
    }

    #[test]
    fn directories_exclude_what_is_below() {
        check("build", "build", true);
        check("build", "build/x/y", true);
        check("build", "builds/x", false);
        check("build/", "build/x", true);
        check("docs|!docs/README.md", "docs/README.md", false);
        check("docs|!docs/README.md", "docs/other.md", true);
        check("docs/*|!docs/README.md", "docs/README.md", false);
        check("a/b", "a/b/c/d", true);
        check("a/b", "a", false);
    }

    #[test]
    fn comments_blank_lines_and_whitespace() {
        check("# *.md", "README.md", false);
        check("#|*.md", "README.md", true);
        check("||  *.md  ||", "README.md", true);
        check("*.md|  !  README.md", "README.md", false);
        // Docker only sees a comment in the first column; indented, it is a pattern.
        check("  # notes", "# notes", true);
        check("*.md\r|!README.md\r", "README.md", false);
        check("\u{feff}*.md", "README.md", true);
    }

    #[test]
    fn invalid_patterns_name_the_line() {
        check_error("ok|!", "line 2: `!` is not a valid pattern: `!` needs a pattern after it");
        check_error("!  ", "line 1: `!` is not a valid pattern: `!` needs a pattern after it");
        check_error("a[", "line 1: `a[` is not a valid pattern: a `[` has no closing `]`");
        check_error("[^", "line 1: `[^` is not a valid pattern: a `[` has no closing `]`");
        check_error(
            "x|[]a]",
            "line 2: `[]a]` is not a valid pattern: a character class has `]` where a character belongs (escape it as `\\]`)",
        );
        check_error(
            "[a-b-c]",
            "line 1: `[a-b-c]` is not a valid pattern: a character class has `-` where a character belongs (escape it as `\\-`)",
        );
        check_error("[z-a]", "line 1: `[z-a]` is not a valid pattern: the range `z-a` runs backwards");
        check_error("foo\\", "line 1: `foo\\` is not a valid pattern: it ends with a `\\` that escapes nothing");
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let pattern = "*a".repeat(40) + "b";
        let path = "a".repeat(200);
        check(&pattern, &path, false);
    }

    #[test]
    fn reinclusion_below_a_directory() {
        let ignore = |text: &str| DockerIgnore::parse(&text.replace('|', "\n")).expect("valid");
        assert!(!ignore(".git").may_reinclude_below(".git"));
        assert!(!ignore(".git|!README.md").may_reinclude_below(".git"));
        assert!(ignore("docs|!docs/README.md").may_reinclude_below("docs"));
        assert!(ignore("docs|!doc*").may_reinclude_below("docs"));
        assert!(ignore("a/b|!a").may_reinclude_below("a/b"));
        assert!(ignore("*|!**/keep").may_reinclude_below("deep"));
        assert!(!ignore("ab|!abc").may_reinclude_below("ab"));
    }
}
