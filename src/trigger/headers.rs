//! Reading HTTP headers the way forges send them: names are case-insensitive, and a header that should
//! appear once but appears twice is an attack or a misconfigured proxy, never something to pick from.

/// The value of the header `name`, if sent once. `Err(count)` when it was sent `count` (> 1) times.
pub fn one<'h>(headers: &'h [(String, String)], name: &str) -> Result<Option<&'h str>, usize> {
    let mut found = headers.iter().filter(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str());
    let first = found.next();
    match found.count() {
        0 => Ok(first),
        more => Err(more + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(one(&h(&[("X-GitHub-Event", "push")]), "x-github-event"), Ok(Some("push")));
        assert_eq!(one(&h(&[("x-github-event", "push")]), "X-GitHub-Event"), Ok(Some("push")));
        assert_eq!(one(&h(&[("Other", "x")]), "X-GitHub-Event"), Ok(None));
        assert_eq!(one(&h(&[("A", "1"), ("a", "2"), ("A", "3")]), "a"), Err(3));
    }
}
