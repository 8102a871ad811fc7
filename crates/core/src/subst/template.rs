//! The non-dynamic grammar (cloudbuild.md §5.3): `$$`, `$NAME` and `${NAME}`, scanned left to right.

use std::ops::Range;

/// Length of the `[A-Z_][A-Z0-9_]*` run at the start of `s` (0 if none): a reference name.
pub(super) fn reference_name_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_uppercase() || *b == b'_' => {
            1 + bytes[1..].iter().take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_').count()
        }
        _ => 0,
    }
}

/// Whether all of `name` is a reference name.
pub(super) fn is_reference_name(name: &str) -> bool {
    !name.is_empty() && reference_name_len(name) == name.len()
}

/// One `$NAME` / `${NAME}` reference found by the non-dynamic scanner; `range` is the byte range of the whole
/// reference (dollar and braces included) in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    pub name: &'a str,
    pub range: Range<usize>,
}

/// One lexical item of the non-dynamic grammar.
enum Token<'a> {
    Text(&'a str),
    /// `$$`, which stands for a literal `$`.
    Escape,
    Reference(Reference<'a>),
}

/// Splits a template into [`Token`]s, left to right, exactly as cloud-build-local's `FindTemplateParameters`.
struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let src = self.src;
        let rest = src.get(self.pos..).filter(|r| !r.is_empty())?;
        let starts_with_dollar = rest.starts_with('$');
        if starts_with_dollar {
            if rest[1..].starts_with('$') {
                self.pos += 2;
                return Some(Token::Escape);
            }
            if let Some((name, len)) = reference_at(rest) {
                let range = self.pos..self.pos + len;
                self.pos += len;
                return Some(Token::Reference(Reference { name, range }));
            }
        }
        // Text up to the next `$`; a `$` that starts nothing is text too. Skipping it means slicing at 1, which
        // is a char boundary because `$` is ASCII.
        let skip = usize::from(starts_with_dollar);
        let len = rest[skip..].find('$').map_or(rest.len(), |i| i + skip);
        self.pos += len;
        Some(Token::Text(&rest[..len]))
    }
}

/// The reference at the start of `rest` (which starts with `$`), with its length in bytes.
fn reference_at(rest: &str) -> Option<(&str, usize)> {
    let after = rest.get(1..)?;
    if let Some(inner) = after.strip_prefix('{') {
        // `${NAME}` only when the name is followed by `}` at once: `${ _X}`, `${_X` and `${_X:-y}` are text.
        let len = reference_name_len(inner);
        return (len > 0 && inner[len..].starts_with('}')).then(|| (&inner[..len], len + 3));
    }
    let len = reference_name_len(after);
    (len > 0).then(|| (&after[..len], len + 1))
}

/// Every reference in `template`, in order, as the non-dynamic grammar sees it. Escaped ones (`$$NAME`) are
/// not references.
pub fn references(template: &str) -> Vec<Reference<'_>> {
    Scanner { src: template, pos: 0 }
        .filter_map(|token| match token {
            Token::Reference(reference) => Some(reference),
            _ => None,
        })
        .collect()
}

/// Non-dynamic expansion: `$$` becomes `$`, each reference becomes `lookup(name)` (absent: `""`), values are
/// inserted verbatim and never re-scanned.
pub fn expand<S: AsRef<str>>(template: &str, mut lookup: impl FnMut(&str) -> Option<S>) -> String {
    let mut out = String::with_capacity(template.len());
    for token in (Scanner { src: template, pos: 0 }) {
        match token {
            Token::Text(text) => out.push_str(text),
            Token::Escape => out.push('$'),
            Token::Reference(reference) => {
                if let Some(value) = lookup(reference.name) {
                    out.push_str(value.as_ref());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subst::tests::map;

    #[test]
    fn references_report_names_and_ranges() {
        let template = "a$_X-${PROJECT_ID}$$_Y${_Z $ ${lower}$";
        let found: Vec<(&str, &str)> = references(template).into_iter().map(|r| (r.name, &template[r.range])).collect();
        assert_eq!(found, [("_X", "$_X"), ("PROJECT_ID", "${PROJECT_ID}")]);
    }

    #[test]
    fn expand_accepts_borrowed_and_owned_values() {
        let values = map(&[("_A", "1")]);
        assert_eq!(expand("$_A$$_A$_B", |n| values.get(n).map(String::as_str)), "1$_A");
        assert_eq!(expand("${_A}", |n| Some(n.to_lowercase())), "_a");
    }
}
