//! Post-substitution tag sanitising.

use std::collections::BTreeSet;

use super::SubstError;

/// At most this many tags survive sanitising (cloudbuild.md §2, `tags`).
pub const MAX_TAGS: usize = 64;

/// The format every build tag must have after substitution (Docker's tag grammar; `\w` is ASCII only).
pub const TAG_FORMAT: &str = r"^[\w][\w.-]{0,127}$";

/// Post-substitution tag sanitising, after cloud-build-local's `sanitizeBuildTags`: empty tags (from empty
/// substitutions) are dropped, duplicates dropped keeping the first, then at most [`MAX_TAGS`] may remain and each
/// must match [`TAG_FORMAT`]. Reports the first problem. (cloud-build-local counts the tags before dropping any;
/// counting what remains accepts a few more configs and never accepts an over-long list of distinct tags.)
pub fn sanitize_tags(tags: Vec<String>) -> Result<Vec<String>, SubstError> {
    let mut seen = BTreeSet::new();
    let tags: Vec<String> = tags.into_iter().filter(|tag| !tag.is_empty() && seen.insert(tag.clone())).collect();
    if tags.len() > MAX_TAGS {
        return Err(SubstError::TooManyTags { count: tags.len(), max: MAX_TAGS });
    }
    match tags.iter().find(|tag| !is_valid_tag(tag)) {
        Some(bad) => Err(SubstError::InvalidTag(bad.clone())),
        None => Ok(tags),
    }
}

fn is_valid_tag(tag: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    // Every accepted character is ASCII, so counting bytes counts characters.
    match bytes.split_first() {
        Some((first, rest)) => {
            is_word(*first) && rest.len() <= 127 && rest.iter().all(|&b| is_word(b) || b == b'.' || b == b'-')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_sanitised_in_order() {
        let tags = ["b", "", "a", "b", "x.y-z_1"].map(String::from).to_vec();
        assert_eq!(sanitize_tags(tags), Ok(vec!["b".into(), "a".into(), "x.y-z_1".into()]));
        for bad in [".dot", "-dash", "spa ce", "é", &"t".repeat(129)] {
            assert!(matches!(sanitize_tags(vec![bad.to_owned()]), Err(SubstError::InvalidTag(_))), "{bad}");
        }
        assert!(sanitize_tags(vec!["t".repeat(128)]).is_ok());
        // Duplicates do not count towards the limit.
        assert!(sanitize_tags((0..100).map(|i| format!("t{}", i % 64)).collect()).is_ok());
    }
}
