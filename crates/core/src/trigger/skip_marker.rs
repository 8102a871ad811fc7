//! Skip markers: the commit-message words that ask CI not to build a push (docs/SPEC.md §10).
//!
//! The bracket forms are GitHub's and GitLab's common ones plus our own, matched anywhere in the message
//! and in any case, as GitHub does (peers.md §2.1). The `skip-checks: true` trailer counts only in the
//! message's last paragraph, after the subject: that is where git and GitHub put trailers, and it keeps a
//! subject that merely mentions the words from skipping a build.

/// The bracket markers, lowercase.
pub const MARKERS: &[&str] = &["[skip ci]", "[ci skip]", "[no ci]", "[skip pipewright]"];

/// The trailer, as reported.
pub const TRAILER: &str = "skip-checks: true";

/// The first skip marker in `message` (as listed in [`MARKERS`], or [`TRAILER`]), if any.
pub fn find(message: &str) -> Option<&'static str> {
    let lower = message.to_ascii_lowercase();
    if let Some(marker) = MARKERS.iter().find(|marker| lower.contains(*marker)) {
        return Some(marker);
    }
    has_trailer(message).then_some(TRAILER)
}

fn has_trailer(message: &str) -> bool {
    let lines: Vec<&str> = message.lines().collect();
    let blank = |line: &&str| line.trim().is_empty();
    let Some(end) = lines.iter().rposition(|line| !blank(line)) else { return false };
    // The last paragraph starts after the last blank line before its end; with none, it is the subject.
    let Some(start) = lines[..end].iter().rposition(blank).map(|i| i + 1) else { return false };
    if lines[..start].iter().all(blank) {
        return false;
    }
    lines[start..=end].iter().any(|line| {
        line.split_once(':').is_some_and(|(key, value)| {
            key.trim().eq_ignore_ascii_case("skip-checks") && value.trim().eq_ignore_ascii_case("true")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(message: &str, expected: Option<&str>) {
        assert_eq!(find(message), expected, "{message:?}");
    }

    #[test]
    fn bracket_markers_anywhere_any_case() {
        check("Update docs [skip ci]", Some("[skip ci]"));
        check("[ci skip] typo", Some("[ci skip]"));
        check("[no ci]", Some("[no ci]"));
        check("fix\n\nbody mentions [skip pipewright] here", Some("[skip pipewright]"));
        check("Update [SKIP CI]", Some("[skip ci]"));
        check("Update [Skip Pipewright]", Some("[skip pipewright]"));
        check("Update [ci Skip]\r\n", Some("[ci skip]"));
        check("skip ci", None);
        check("[skip  ci]", None);
        check("[skip-ci]", None);
        check("[skip actions]", None);
        check("", None);
    }

    #[test]
    fn trailer_in_the_last_paragraph_only() {
        check("Update README\n\nskip-checks: true", Some(TRAILER));
        check("Update README\n\nskip-checks:true\n", Some(TRAILER));
        check("Update README\n\n\nSkip-Checks: TRUE", Some(TRAILER));
        check("Update README\r\n\r\nskip-checks: true\r\n", Some(TRAILER));
        check("Update\n\nBody.\n\nSigned-off-by: A <a@b>\nskip-checks: true", Some(TRAILER));
        check("skip-checks: true", None);
        check("Update\n\nskip-checks: true\n\nMore text", None);
        check("Update\n\nskip-checks: false", None);
        check("Update\n\nskip-checks: truely", None);
        check("Update\n\n  \n", None);
        check("\n\nskip-checks: true", None);
        check("\n\nUpdate\n\nskip-checks: true", Some(TRAILER));
    }
}
