//! Typed reading of YAML nodes that records a problem and carries on, so one run reports every problem.
//!
//! Field names are proto-JSON names: the lowerCamelCase spelling is canonical and the snake_case one is
//! accepted too, as gcloud does. A key that no reader asked for is an error with a "did you mean" hint.

use std::time::Duration;

use super::diagnostic::{Diagnostic, Diagnostics};
use crate::yaml::{Node, Pos, Value, parse_bool};

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> Spanned<T> {
    pub fn new(value: T, pos: Pos) -> Spanned<T> {
        Spanned { value, pos }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

pub type Str = Spanned<String>;

/// Collects diagnostics while typed values are read out of nodes.
pub struct Decoder {
    pub diagnostics: Diagnostics,
}

impl Decoder {
    pub fn new(file: &str) -> Decoder {
        Decoder { diagnostics: Diagnostics::new(file) }
    }

    pub fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::error(pos, path, message));
    }

    pub fn error_hint(&mut self, pos: Pos, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.diagnostics.push(Diagnostic::error(pos, path, message).with_hint(hint));
    }

    pub fn warning(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::warning(pos, path, message));
    }

    fn expected(&mut self, node: &Node, path: &str, what: &str) {
        self.error(node.pos, path, format!("expected {what}, found {}", node.kind()));
    }

    /// Opens a mapping for field-by-field reading; `None` (with a diagnostic) when the node is no mapping.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<MapReader<'n>> {
        match &node.value {
            Value::Map(entries) => {
                let mut reader = MapReader {
                    entries,
                    used: vec![false; entries.len()],
                    known: Vec::new(),
                    path: path.to_string(),
                    pos: node.pos,
                };
                reader.check_keys(self);
                Some(reader)
            }
            _ => {
                self.expected(node, path, "a mapping");
                None
            }
        }
    }

    pub fn string(&mut self, node: &Node, path: &str) -> Option<Str> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some(Spanned::new(text.clone(), node.pos)),
            _ => {
                self.expected(node, path, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        if let Value::Scalar { text, plain: true } = &node.value
            && let Some(value) = parse_bool(text)
        {
            return Some(value);
        }
        self.expected(node, path, "`true` or `false`");
        None
    }

    pub fn int(&mut self, node: &Node, path: &str) -> Option<Spanned<i64>> {
        // proto-JSON writes int64 as a string, so `"5"` is as good as `5`.
        if let Value::Scalar { text, .. } = &node.value
            && let Ok(value) = text.trim().parse::<i64>()
        {
            return Some(Spanned::new(value, node.pos));
        }
        self.expected(node, path, "an integer");
        None
    }

    /// A protobuf Duration: decimal seconds with at most nine fractional digits and a trailing `s`.
    pub fn duration(&mut self, node: &Node, path: &str) -> Option<Spanned<Duration>> {
        let text = match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => text.trim(),
            _ => {
                self.expected(node, path, "a duration such as `600s`");
                return None;
            }
        };
        match parse_duration(text) {
            Some(d) => Some(Spanned::new(d, node.pos)),
            None => {
                let hint = if text.parse::<f64>().is_ok() {
                    format!("durations are seconds with an `s` suffix: write `{text}s`")
                } else {
                    "write seconds with an `s` suffix, e.g. `600s` or `1.5s`".to_string()
                };
                self.error_hint(node.pos, path, format!("`{text}` is not a duration"), hint);
                None
            }
        }
    }

    /// A list of items read by `item`. A single value where a list belongs is read as a one-item list,
    /// as gcloud's loader does (real build files rely on it, e.g. `waitFor: 'build'`), with a warning
    /// that shows the list form.
    pub fn list<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut item: impl FnMut(&mut Decoder, &Node, &str) -> Option<T>,
    ) -> Vec<T> {
        match &node.value {
            Value::Seq(items) => {
                items.iter().enumerate().filter_map(|(i, n)| item(self, n, &format!("{path}[{i}]"))).collect()
            }
            Value::Scalar { text, .. } if !node.is_null() => {
                self.diagnostics.push(
                    Diagnostic::warning(node.pos, path, format!("is a single value, read as a list of one ({text:?})"))
                        .with_hint(format!(
                            "write the list form, `['{text}']`; Cloud Build's local runner rejects this"
                        )),
                );
                item(self, node, &format!("{path}[0]")).into_iter().collect()
            }
            _ if node.is_null() => Vec::new(),
            _ => {
                self.expected(node, path, "a list");
                Vec::new()
            }
        }
    }

    pub fn string_list(&mut self, node: &Node, path: &str) -> Vec<Str> {
        self.list(node, path, |d, n, p| d.string(n, p))
    }

    /// A mapping of string keys to string values, in document order.
    pub fn string_map(&mut self, node: &Node, path: &str) -> Vec<(Str, Str)> {
        let Value::Map(entries) = &node.value else {
            if !node.is_null() {
                self.expected(node, path, "a mapping");
            }
            return Vec::new();
        };
        let mut out: Vec<(Str, Str)> = Vec::new();
        for (key, value) in entries {
            let Some(k) = self.string(key, path) else { continue };
            let field = format!("{path}.{}", k.value);
            if out.iter().any(|(seen, _)| seen.value == k.value) {
                self.error(key.pos, &field, "key is given twice");
                continue;
            }
            // `_X:` with nothing after it is how files declare a key the trigger fills in: proto-JSON
            // reads null as the default value, the empty string.
            if value.is_null() {
                out.push((k, Spanned::new(String::new(), value.pos)));
            } else if let Some(v) = self.string(value, &field) {
                out.push((k, v));
            }
        }
        out
    }

    /// The keys of a mapping whose values must be strings; a bad value is reported but its key is kept,
    /// so that one typo does not cascade into "not defined" errors for the key.
    pub fn string_map_keys(&mut self, node: &Node, path: &str) -> Vec<Str> {
        let Value::Map(entries) = &node.value else {
            self.expected(node, path, "a mapping");
            return Vec::new();
        };
        let mut keys: Vec<Str> = Vec::new();
        for (key, value) in entries {
            let Some(k) = self.string(key, path) else { continue };
            let field = format!("{path}.{}", k.value);
            if keys.iter().any(|seen| seen.value == k.value) {
                self.error(key.pos, &field, "key is given twice");
                continue;
            }
            if !value.is_null() {
                self.string(value, &field);
            }
            keys.push(k);
        }
        keys
    }

    /// One of a fixed set of enum values.
    pub fn one_of(&mut self, node: &Node, path: &str, allowed: &[&str]) -> Option<Str> {
        let value = self.string(node, path)?;
        if allowed.contains(&value.value.as_str()) {
            return Some(value);
        }
        let mut hint = format!("valid values: {}", allowed.join(", "));
        if let Some(close) = closest(&value.value, allowed.iter().copied()) {
            hint = format!("did you mean `{close}`? {hint}");
        }
        self.error_hint(node.pos, path, format!("`{}` is not a valid value", value.value), hint);
        None
    }
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let number = text.strip_suffix('s')?;
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() > 12 {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) || (number.contains('.') && frac.is_empty()) {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let nanos: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    Some(Duration::new(secs, nanos))
}

/// Reads the fields of one mapping; whatever is left when [`MapReader::finish`] runs is unknown.
pub struct MapReader<'n> {
    entries: &'n [(Node, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
    pub path: String,
    pub pos: Pos,
}

impl<'n> MapReader<'n> {
    /// Non-string and duplicate keys are reported once, when the mapping is opened.
    fn check_keys(&mut self, d: &mut Decoder) {
        for (i, (key, _)) in self.entries.iter().enumerate() {
            match key_text(key) {
                None => {
                    d.error(key.pos, &self.path, format!("keys must be strings, found {}", key.kind()));
                    self.used[i] = true;
                }
                Some(text) => {
                    let earlier = self.entries[..i].iter().any(|(k, _)| key_text(k) == Some(text));
                    if earlier {
                        d.error(key.pos, &self.child(text), "field is given twice");
                        self.used[i] = true;
                    }
                }
            }
        }
    }

    pub fn child(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_string() } else { format!("{}.{name}", self.path) }
    }

    /// Takes the field named `camel` (or its snake_case spelling); a null value counts as absent.
    /// Returns the value node and the field path to report problems at.
    pub fn take(&mut self, d: &mut Decoder, camel: &'static str) -> Option<(&'n Node, String)> {
        self.known.push(camel);
        let snake = snake_case(camel);
        let mut found: Option<(usize, &'n Node)> = None;
        for (i, (key, value)) in self.entries.iter().enumerate() {
            let Some(text) = key_text(key) else { continue };
            if self.used[i] || (text != camel && text != snake) {
                continue;
            }
            self.used[i] = true;
            if found.is_some() {
                d.error_hint(
                    key.pos,
                    &self.child(camel),
                    format!("field is given twice, as `{camel}` and as `{snake}`"),
                    "keep one spelling",
                );
                continue;
            }
            found = Some((i, value));
        }
        let (_, value) = found?;
        if value.is_null() {
            return None;
        }
        Some((value, self.child(camel)))
    }

    /// Whether the mapping has the field at all, without consuming it.
    pub fn has(&self, camel: &str) -> bool {
        let snake = snake_case(camel);
        self.entries.iter().any(|(k, _)| key_text(k).is_some_and(|t| t == camel || t == snake))
    }

    pub fn string(&mut self, d: &mut Decoder, camel: &'static str) -> Option<Str> {
        let (node, path) = self.take(d, camel)?;
        d.string(node, &path)
    }

    pub fn string_list(&mut self, d: &mut Decoder, camel: &'static str) -> Vec<Str> {
        match self.take(d, camel) {
            Some((node, path)) => d.string_list(node, &path),
            None => Vec::new(),
        }
    }

    pub fn bool(&mut self, d: &mut Decoder, camel: &'static str) -> Option<bool> {
        let (node, path) = self.take(d, camel)?;
        d.bool(node, &path)
    }

    pub fn duration(&mut self, d: &mut Decoder, camel: &'static str) -> Option<Spanned<Duration>> {
        let (node, path) = self.take(d, camel)?;
        d.duration(node, &path)
    }

    /// Reads a field that only means something on Google's hosted service: checked for shape by
    /// `check`, then reported once as having no effect here.
    pub fn no_effect(&mut self, d: &mut Decoder, camel: &'static str, check: impl FnOnce(&mut Decoder, &Node, &str)) {
        if let Some((node, path)) = self.take(d, camel) {
            check(d, node, &path);
            d.warning(node.pos, &path, "has no effect here (it configures Google's hosted service)");
        }
    }

    /// Reports every key no reader took, with the closest known name as a hint.
    pub fn finish(self, d: &mut Decoder) {
        for (i, (key, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let Some(text) = key_text(key) else { continue };
            let path = self.child(text);
            let message = format!("unknown field `{text}`");
            let candidates = self.known.iter().copied();
            match closest(text, candidates) {
                Some(close) => d.error_hint(key.pos, &path, message, format!("did you mean `{close}`?")),
                None => {
                    let mut known = self.known.clone();
                    known.sort_unstable();
                    known.dedup();
                    d.error_hint(key.pos, &path, message, format!("known fields here: {}", known.join(", ")))
                }
            }
        }
    }
}

fn key_text(key: &Node) -> Option<&str> {
    match &key.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

/// `waitFor` → `wait_for`.
pub fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The known name closest to `word`, if it is close enough to be a likely typo (or a case/spelling slip).
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let folded = fold(word);
    candidates
        .map(|c| (distance(&folded, &fold(c)), c))
        .filter(|(d, c)| *d <= 2 && *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Lower case without `_` or `-`, so `wait-for`, `WaitFor` and `wait_for` all meet `waitFor`.
fn fold(word: &str) -> String {
    word.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// Edit distance over characters where swapping two neighbours counts as one edit (`biuld` → `build`).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("600s", Some(Duration::from_secs(600))),
            ("3.5s", Some(Duration::from_millis(3500))),
            ("0.000000001s", Some(Duration::from_nanos(1))),
            ("0s", Some(Duration::ZERO)),
            ("600", None),
            ("10m", None),
            ("1.s", None),
            (".5s", None),
            ("-1s", None),
            ("1.0000000001s", None),
            ("s", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), expected, "{text}");
        }
    }

    #[test]
    fn closest_names() {
        let known = ["waitFor", "name", "args", "entrypoint", "secretEnv"];
        assert_eq!(closest("wait_for", known.iter().copied()), Some("waitFor"));
        assert_eq!(closest("waitfor", known.iter().copied()), Some("waitFor"));
        assert_eq!(closest("arg", known.iter().copied()), Some("args"));
        assert_eq!(closest("entryPoint", known.iter().copied()), Some("entrypoint"));
        assert_eq!(closest("onFailure", ["allowFailure"].iter().copied()), None);
        assert_eq!(closest("biuld", ["build"].iter().copied()), Some("build"));
    }

    #[test]
    fn snake() {
        assert_eq!(snake_case("waitFor"), "wait_for");
        assert_eq!(snake_case("allowExitCodes"), "allow_exit_codes");
        assert_eq!(snake_case("name"), "name");
    }
}
