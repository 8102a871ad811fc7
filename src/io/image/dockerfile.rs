//! The external images a Dockerfile starts from, read the way BuildKit reads them.
//!
//! The context hash must change when a base image moves (`python:3.12` gets a new patch release), so
//! the caller resolves these names to image ids and hands them to [`super::ImageContext::hash`].
//! This reads only what that needs: logical lines (continuations, comments, heredoc bodies), global
//! `ARG`s, `FROM` and `COPY --from`. It never fails: a line it does not understand names no image,
//! and Docker reports the real error when it builds.

use std::collections::BTreeMap;

/// The images a Dockerfile builds `FROM` or copies from (`COPY --from=image`), in order of first
/// use, without duplicates.
///
/// Names are substituted with the global `ARG`s (declared before the first `FROM`): a build arg
/// overrides a declared default, and, as in Docker, a build arg that no `ARG` declares is not seen.
/// `scratch`, earlier stage names (`FROM builder`), stage numbers (`COPY --from=0`) and names that
/// substitute to nothing are skipped.
pub fn base_images(dockerfile: &str, build_args: &BTreeMap<String, String>) -> Vec<String> {
    let mut reader =
        Reader { build_args, args: BTreeMap::new(), stages: Vec::new(), in_stage: false, images: Vec::new() };
    for line in logical_lines(dockerfile) {
        reader.instruction(&line);
    }
    reader.images
}

struct Reader<'a> {
    build_args: &'a BTreeMap<String, String>,
    /// Global `ARG`s with a value; declared ones without a value stay unset.
    args: BTreeMap<String, String>,
    /// Lowercase names of the stages seen so far.
    stages: Vec<String>,
    in_stage: bool,
    images: Vec<String>,
}

impl Reader<'_> {
    fn instruction(&mut self, line: &str) {
        let line = line.trim();
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match keyword.to_ascii_uppercase().as_str() {
            // Only `ARG`s before the first `FROM` can be used in `FROM` lines.
            "ARG" if !self.in_stage => self.declare_args(rest),
            "FROM" => self.from(rest),
            "COPY" => self.copy(rest),
            _ => {}
        }
    }

    fn declare_args(&mut self, rest: &str) {
        for word in words(rest) {
            let (name, default) = match word.split_once('=') {
                Some((name, default)) => (name, Some(default)),
                None => (word.as_str(), None),
            };
            let value = match (self.build_args.get(name), default) {
                (Some(given), _) => given.clone(),
                (None, Some(default)) => expand(default, &self.args),
                (None, None) => continue,
            };
            self.args.insert(name.to_owned(), value);
        }
    }

    /// `FROM [--platform=…] image [AS name]`
    fn from(&mut self, rest: &str) {
        self.in_stage = true;
        let mut words = words(rest).into_iter().filter(|word| !word.starts_with("--"));
        let Some(image) = words.next() else { return };
        self.use_image(&image);
        if words.next().is_some_and(|word| word.eq_ignore_ascii_case("as"))
            && let Some(name) = words.next()
        {
            self.stages.push(name.to_ascii_lowercase());
        }
    }

    fn copy(&mut self, rest: &str) {
        for word in words(rest) {
            if let Some(source) = word.strip_prefix("--from=") {
                self.use_image(source);
            }
        }
    }

    fn use_image(&mut self, word: &str) {
        let name = expand(word, &self.args);
        let is_stage = self.stages.contains(&name.to_ascii_lowercase())
            || (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()));
        if name.is_empty() || is_stage || name.eq_ignore_ascii_case("scratch") || self.images.contains(&name) {
            return;
        }
        self.images.push(name);
    }
}

/// Joins continuation lines and drops comments, blank lines and heredoc bodies.
fn logical_lines(dockerfile: &str) -> Vec<String> {
    let escape = escape_directive(dockerfile);
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut heredocs: Vec<Heredoc> = Vec::new();
    for line in dockerfile.lines() {
        if let Some(heredoc) = heredocs.first() {
            if heredoc.ends_at(line) {
                heredocs.remove(0);
            }
            continue;
        }
        let trimmed = line.trim();
        // Comments and blank lines may sit inside a continued instruction too.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix(escape) {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                heredocs = heredocs_opened_by(&current);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        lines.push(current);
    }
    lines
}

/// The escape character, `\` unless a `# escape=` parser directive at the top says otherwise.
fn escape_directive(dockerfile: &str) -> char {
    for line in dockerfile.lines() {
        // Directives are `# key=value` comments before anything else; the first other line ends them.
        let Some((key, value)) = line.trim().strip_prefix('#').and_then(|directive| directive.split_once('=')) else {
            break;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        if key.eq_ignore_ascii_case("escape") {
            match value.trim() {
                "`" => return '`',
                _ => return '\\',
            }
        }
    }
    '\\'
}

/// A heredoc (`RUN <<EOF` … `EOF`) whose body lines are not instructions.
struct Heredoc {
    terminator: String,
    /// `<<-EOF`: the terminator may be indented with tabs.
    strip_tabs: bool,
}

impl Heredoc {
    fn ends_at(&self, line: &str) -> bool {
        let line = if self.strip_tabs { line.trim_start_matches('\t') } else { line };
        line == self.terminator
    }
}

/// The heredocs a `RUN`, `COPY` or `ADD` line opens, in order (BuildKit reads their bodies in turn).
fn heredocs_opened_by(instruction: &str) -> Vec<Heredoc> {
    let mut words = instruction.split_whitespace();
    let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
    if !matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
        return Vec::new();
    }
    words
        .filter_map(|word| word.trim_start_matches(|c: char| c.is_ascii_digit()).strip_prefix("<<"))
        .filter_map(|marker| {
            let (strip_tabs, name) = match marker.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, marker),
            };
            let terminator = name.trim_matches(['"', '\'']);
            // `<<<` is a shell here-string, not a heredoc.
            (!terminator.is_empty() && !terminator.contains('<'))
                .then(|| Heredoc { terminator: terminator.to_owned(), strip_tabs })
        })
        .collect()
}

/// Splits an instruction's arguments at whitespace outside quotes, keeping the quotes for [`expand`].
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                word.push(c);
            }
            (Some(open), c) if c == open => {
                quote = None;
                word.push(c);
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Substitutes `$NAME`, `${NAME}` and `${NAME:-default}`-style forms and removes quotes, like
/// Docker's word processing: nothing is substituted inside single quotes, `\` escapes one character.
fn expand(word: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (Some('\''), c) => out.push(c),
            (_, '\\') => out.extend(chars.next()),
            (_, '$') => out.push_str(&variable(&mut chars, vars)),
            (_, c) => out.push(c),
        }
    }
    out
}

/// The value of the variable after a `$`.
fn variable(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, vars: &BTreeMap<String, String>) -> String {
    if chars.next_if_eq(&'{').is_none() {
        let name = take_name(chars);
        return if name.is_empty() { "$".to_owned() } else { vars.get(&name).cloned().unwrap_or_default() };
    }
    let name = take_name(chars);
    // `${NAME:-word}` tests for unset or empty, `${NAME-word}` for unset only; likewise `+`.
    let colon = chars.next_if_eq(&':').is_some();
    let operator = chars.next_if(|c| matches!(c, '-' | '+'));
    let word = take_braced(chars);
    let value = vars.get(&name).filter(|value| !colon || !value.is_empty());
    match (operator, value) {
        (Some('-'), None) => expand(&word, vars),
        (Some('+'), Some(_)) => expand(&word, vars),
        (Some('+'), None) => String::new(),
        // `${NAME}`, `${NAME:-…}` when set, and forms Docker would reject (`${NAME:?msg}`).
        (_, value) => value.cloned().unwrap_or_default(),
    }
}

fn take_name(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut name = String::new();
    while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
        name.push(c);
    }
    name
}

/// The text up to the `}` that closes the current `${`, nested braces included.
fn take_braced(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut depth = 0;
    let mut text = String::new();
    for c in chars.by_ref() {
        match c {
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            '{' => depth += 1,
            _ => {}
        }
        text.push(c);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dockerfile` uses `|` for line breaks; `args` is `KEY=value` pairs separated by spaces.
    #[track_caller]
    fn check(dockerfile: &str, args: &str, expected: &[&str]) {
        let build_args = args
            .split_whitespace()
            .map(|pair| pair.split_once('=').expect("KEY=value"))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        assert_eq!(base_images(&dockerfile.replace('|', "\n"), &build_args), expected, "{dockerfile:?}");
    }

    #[test]
    fn from_lines() {
        check("FROM python:3.12-slim", "", &["python:3.12-slim"]);
        check("from python:3.12", "", &["python:3.12"]);
        check("FROM --platform=linux/amd64 python:3.12 AS base", "", &["python:3.12"]);
        check("FROM --platform=$BUILDPLATFORM golang:1.22 as build", "", &["golang:1.22"]);
        check("FROM scratch|COPY app /app", "", &[]);
        check("FROM python:3.12 AS build|FROM build|FROM BUILD AS again|FROM again", "", &["python:3.12"]);
        check("FROM a|FROM b|FROM a", "", &["a", "b"]);
        check("FROM \\|  --platform=linux/arm64 \\|  debian:12 \\|  AS base", "", &["debian:12"]);
        check("# FROM commented:out|FROM real:1", "", &["real:1"]);
        check("FROM a:1 AS x|RUN echo \\|# a comment inside a continuation|  done|FROM b:2", "", &["a:1", "b:2"]);
        check("FROM", "", &[]);
    }

    #[test]
    fn global_args() {
        check("ARG BASE_IMAGE=python:3.11|FROM ${BASE_IMAGE}", "", &["python:3.11"]);
        check(
            "ARG BASE_IMAGE=python:3.11|FROM ${BASE_IMAGE}",
            "BASE_IMAGE=pytorch/pytorch:2.3",
            &["pytorch/pytorch:2.3"],
        );
        check("ARG BASE_IMAGE|FROM $BASE_IMAGE", "BASE_IMAGE=x", &["x"]);
        check("ARG VERSION=3.12|FROM python:${VERSION}-slim", "VERSION=3.13", &["python:3.13-slim"]);
        check("ARG REGISTRY=gcr.io VERSION=1|FROM $REGISTRY/app:v$VERSION", "", &["gcr.io/app:v1"]);
        check("ARG A=py|ARG B=${A}thon|FROM $B", "", &["python"]);
        check("ARG TAG|FROM python:${TAG:-3.10}", "", &["python:3.10"]);
        check("ARG TAG|FROM python:${TAG:-3.10}", "TAG=3.9", &["python:3.9"]);
        check("ARG SUFFIX=-gpu|FROM app${SUFFIX:+-cuda}", "", &["app-cuda"]);
        check("ARG IMG=\"python:3.12\"|FROM ${IMG}", "", &["python:3.12"]);
        // A build arg no `ARG` declares is invisible to `FROM`, as in Docker.
        check("FROM ${UNDECLARED}|FROM fallback", "UNDECLARED=x", &["fallback"]);
        // `ARG`s inside a stage are not global.
        check("FROM a|ARG LATER=b|FROM $LATER", "", &["a"]);
        check("ARG B=x|FROM \\$B", "", &["$B"]);
    }

    #[test]
    fn copy_from_and_heredocs() {
        check("FROM python:3.12 AS build|FROM debian|COPY --from=build /a /a", "", &["python:3.12", "debian"]);
        check(
            "FROM debian|COPY --from=0 /a /a|COPY --from=ghcr.io/astral-sh/uv:0.4 /uv /bin/",
            "",
            &["debian", "ghcr.io/astral-sh/uv:0.4"],
        );
        check("FROM a|RUN <<EOF|FROM not-an-image|EOF|FROM b", "", &["a", "b"]);
        check("FROM a|COPY <<-EOT /x|FROM nope|\tEOT|FROM c", "", &["a", "c"]);
        check("FROM a|RUN cat <<< \"FROM x\"|FROM b", "", &["a", "b"]);
        check("# syntax=docker/dockerfile:1|# escape=`|FROM `|  windows:1", "", &["windows:1"]);
        check("# a note: x=y|# escape=`|FROM a`", "", &["a`"]);
    }
}
