//! Writing a new value where a scalar was, in the style the file used for it: plain stays plain when
//! that is safe, quotes stay quotes, JSON strings stay JSON strings. Whether the edit really says what
//! we meant is proven afterwards by re-parsing (see `rewrite`); this module only has to be right in the
//! cases it claims, and conservative elsewhere.

use std::fmt::Write as _;
use std::ops::Range;

use crate::yaml::Style;

use super::error::SpecError;
use super::spec::Field;

/// Bytes of the original text to replace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edit {
    pub range: Range<usize>,
    pub replacement: String,
}

/// The edit that sets `field` (a scalar) to `value` in `text`.
pub(crate) fn edit(text: &str, field: &Field<'_>, value: &str) -> Result<Edit, SpecError> {
    let span = field.node.span.clone();
    let replacement = match field.node.style {
        Style::Plain if plain_is_safe(value) => value.to_string(),
        Style::Plain | Style::SingleQuoted => single_quoted(value),
        Style::DoubleQuoted => double_quoted(value),
        Style::Block => return block_edit(text, field, value),
        Style::Alias => {
            return Err(SpecError::AliasImage {
                label: field.label.to_string(),
                line: field.line(),
                path: field.path.to_string(),
            });
        }
        Style::Collection => return Err(field.shape("a string")),
    };
    Ok(Edit { range: span, replacement })
}

/// Whether `value` written as a plain scalar reads back as that same string in YAML 1.2 *and* 1.1
/// (PyYAML, which Kubeflow's SDK uses): no indicators, no spaces, and nothing a resolver would take
/// for a number, boolean, null or timestamp. Image references always pass; odd values get quotes.
pub(crate) fn plain_is_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    let charset = value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | ':' | '@' | '-'));
    if !charset || !first.is_ascii_alphanumeric() || value.ends_with(':') {
        return false;
    }
    // No number, boolean, null or timestamp contains `/` or `@`; without them, start with a letter
    // (numbers, `.inf` and dates do not) and avoid YAML 1.1's boolean words.
    if value.contains(['/', '@']) {
        return true;
    }
    let words = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    first.is_ascii_alphabetic() && !words.iter().any(|w| value.eq_ignore_ascii_case(w))
}

/// `'…'`, or a double-quoted scalar when the value holds characters single quotes cannot carry.
fn single_quoted(value: &str) -> String {
    if value.chars().any(needs_escape) {
        return double_quoted(value);
    }
    format!("'{}'", value.replace('\'', "''"))
}

/// A double-quoted scalar that is also a valid JSON string, so JSON files stay JSON.
pub(crate) fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Control characters, line and paragraph separators and the byte-order mark: not printable in YAML,
/// or not safe inside a JSON string read by JavaScript.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A block scalar (`image: |` and indented lines) becomes a single-quoted scalar on the header's line.
/// Its span starts at the first content line, so the edit starts at the `|`/`>` indicator after the
/// key, keeps any comment on the header line, and drops the content lines. Whether the document still
/// has the same shape is for the caller's verification to prove; it reports a failure as a block image.
fn block_edit(text: &str, field: &Field<'_>, value: &str) -> Result<Edit, SpecError> {
    let span = field.node.span.clone();
    let block_error = |detail: &str| SpecError::BlockImage {
        label: field.label.to_string(),
        line: field.line(),
        path: field.path.to_string(),
        detail: detail.to_string(),
    };
    let header_start = field.key.map_or(span.start, |key| key.span.end).min(span.start);
    let Some(between) = text.get(header_start..span.start) else {
        return Err(block_error("its header could not be found"));
    };
    let after_colon = between.find(':').map_or(0, |i| i + 1);
    let Some(indicator) = between[after_colon..].find(['|', '>']).map(|i| header_start + after_colon + i) else {
        return Err(block_error("its `|` or `>` header could not be found"));
    };
    let header_end = text[indicator + 1..]
        .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '+'))
        .map_or(text.len(), |i| indicator + 1 + i);
    let Some(line_end) = text.get(header_end..span.start).and_then(|s| s.find('\n')).map(|i| header_end + i) else {
        return Err(block_error("its content does not start on the next line"));
    };
    let content = text.get(span.clone()).unwrap_or_default();
    // The span runs on to the next key's indentation; keep that line break and indentation.
    let tail = content.rfind('\n').map_or("", |i| &content[i..]);
    let replacement = format!("{}{}{}", single_quoted(value), &text[header_end..line_end], tail);
    Ok(Edit { range: indicator..span.end, replacement })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_safety() {
        for safe in [
            "python",
            "python:3.11",
            "localhost:5000/pw/train:0123@sha256:ab",
            "gcr.io/p/i",
            "train_image_location",
            "alpine/git",
            "2024/x",
        ] {
            assert!(plain_is_safe(safe), "{safe}");
        }
        for unsafe_ in [
            "",
            "true",
            "No",
            "null",
            "y",
            "1.5",
            "1:20",
            "2001-12-14",
            "0x1f",
            "1e5",
            ".inf",
            "-x",
            ":x",
            "x:",
            "a b",
            "a #b",
            "a,b",
            "[a]",
            "{a}",
            "'a'",
            "~",
            "@x",
            "a\nb",
        ] {
            assert!(!plain_is_safe(unsafe_), "{unsafe_:?}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(single_quoted("it's"), "'it''s'");
        assert_eq!(single_quoted("a\tb"), "\"a\\tb\"");
        assert_eq!(double_quoted("a\"b\\c\n\u{1}\u{2028}é"), "\"a\\\"b\\\\c\\n\\u0001\\u2028é\"");
        for value in ["a\"b\\c\n\u{1}\u{7f}\u{85}\u{2028}é", "plain", ""] {
            let json: String = serde_json::from_str(&double_quoted(value)).expect("valid JSON");
            assert_eq!(json, value);
            let yaml = crate::yaml::parse(&format!("k: {}", double_quoted(value))).expect("valid YAML");
            let crate::yaml::Value::Map(entries) = yaml.value else { panic!("a mapping") };
            assert_eq!(entries[0].1.value, crate::yaml::Value::Scalar { text: value.into(), plain: false });
        }
    }
}
