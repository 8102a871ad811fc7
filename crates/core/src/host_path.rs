//! The pure half of host paths (the product's `host_path` holds the rest): a [`Segment`] is one checked
//! name (a build id, a pipeline, task or output name) that may become one component of a path on the
//! host, so `../x`, `/proc/self/environ` or a name with a `/` in it never does (docs/THREATS.md property 6).

use std::fmt;

/// The longest segment, in bytes (the usual file-name limit).
pub const MAX_SEGMENT: usize = 255;

const VALID: &str = "a name is 1 to 255 bytes without `/`, `\\` or NUL, and is not `.` or `..`";

/// A name that cannot be a path component, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` is not a valid name: {reason}\n\nhint: {VALID}", shown(.text))]
pub struct SegmentError {
    pub text: String,
    pub reason: &'static str,
}

/// Input shown in an error: control characters escaped, long text cut.
pub fn shown(text: &str) -> String {
    let escaped: String = text.chars().flat_map(char::escape_debug).collect();
    if escaped.len() <= 120 { escaped } else { format!("{}…", &escaped[..escaped.floor_char_boundary(120)]) }
}

/// One checked path component: non-empty, at most [`MAX_SEGMENT`] bytes, no `/`, `\` or NUL, not `.`
/// or `..`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment(String);

impl Segment {
    pub fn new(text: &str) -> Result<Segment, SegmentError> {
        let reason = if text.is_empty() {
            "it is empty"
        } else if text.len() > MAX_SEGMENT {
            "it is longer than 255 bytes"
        } else if text.contains('/') {
            "it contains `/`"
        } else if text.contains('\\') {
            "it contains `\\`"
        } else if text.contains('\0') {
            "it contains NUL"
        } else if text == "." || text == ".." {
            "it names a directory by a relative name"
        } else {
            return Ok(Segment(text.to_string()));
        };
        Err(SegmentError { text: text.to_string(), reason })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        let check = |text: &str, expect: Result<(), &str>| match (Segment::new(text), expect) {
            (Ok(s), Ok(())) => assert_eq!(s.as_str(), text),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{text:?}: {e}"),
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        };
        check("train", Ok(()));
        check("for-loop-2", Ok(()));
        check("print-op[1]", Ok(()));
        check("0123abcd-uuid", Ok(()));
        check("..x", Ok(()));
        check(&"a".repeat(255), Ok(()));
        check("", Err("it is empty"));
        check(&"a".repeat(256), Err("longer than 255 bytes"));
        check("../../x", Err("contains `/`"));
        check("/proc/self/environ", Err("contains `/`"));
        check("a\\b", Err("contains `\\`"));
        check("a\0b", Err("`a\\0b` is not a valid name: it contains NUL"));
        check(".", Err("relative name"));
        check("..", Err("relative name"));
        let e = Segment::new("..").expect_err("refused");
        assert!(e.to_string().ends_with(&format!("hint: {VALID}")), "{e}");
    }
}
