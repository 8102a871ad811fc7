//! Reading HTTP headers the way forges send them: names are case-insensitive, and a header that should
//! appear once but appears twice is an attack or a misconfigured proxy, never something to pick from.
//! Which headers of a delivery may be kept is decided here too ([`stored_headers`]).

/// The value of the header `name`, if sent once. `Err(count)` when it was sent `count` (> 1) times.
pub fn one<'h>(headers: &'h [(String, String)], name: &str) -> Result<Option<&'h str>, usize> {
    let mut found = headers.iter().filter(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str());
    let first = found.next();
    match found.count() {
        0 => Ok(first),
        more => Err(more + 1),
    }
}

/// The headers a kept delivery may hold: what [`super::parse`] reads (the event and the delivery id)
/// and metadata that carries no secret. Everything else is dropped before a delivery is stored: GitLab's
/// `X-Gitlab-Token` is the webhook secret itself, signatures (`X-Hub-Signature*`, `X-Gitea-Signature`)
/// are material for guessing it, and `Authorization`, `Cookie` and proxy headers are credentials. An
/// allow-list, so a header a forge adds later is not kept until someone decides it is harmless.
/// The migration `0004_scrub_headers.sql` applies the same list to rows stored before it.
pub const STORED_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-github-hook-installation-target-type",
    "x-gitlab-event",
    "x-gitlab-event-uuid",
    "x-gitlab-webhook-uuid",
    "x-gitlab-instance",
    "idempotency-key",
    "x-gitea-event",
    "x-gitea-event-type",
    "x-gitea-delivery",
    "x-forgejo-event",
    "x-forgejo-event-type",
    "x-forgejo-delivery",
    "x-gogs-event",
    "x-gogs-event-type",
    "x-gogs-delivery",
];

/// `headers` without any header [`STORED_HEADERS`] does not name, in their order; repeated headers stay
/// repeated, so parsing the stored delivery refuses them as it refused the request.
pub fn stored_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| STORED_HEADERS.iter().any(|kept| name.eq_ignore_ascii_case(kept)))
        .cloned()
        .collect()
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

    #[test]
    fn only_secret_free_headers_are_stored() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let received = h(&[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", "the-secret"),
            ("X-Gitlab-Event-UUID", "u-1"),
            ("x-hub-signature-256", "sha256=ab"),
            ("X-Hub-Signature", "sha1=ab"),
            ("X-Gitea-Signature", "ab"),
            ("X-Forgejo-Signature", "ab"),
            ("Authorization", "Bearer t"),
            ("Cookie", "pipewright_token=t"),
            ("Proxy-Authorization", "Basic x"),
            ("X-Unknown-Future-Header", "x"),
            ("content-type", "application/json"),
            ("x-github-delivery", "d-1"),
            ("x-github-delivery", "d-2"),
        ]);
        assert_eq!(
            stored_headers(&received),
            h(&[
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Gitlab-Event-UUID", "u-1"),
                ("content-type", "application/json"),
                ("x-github-delivery", "d-1"),
                ("x-github-delivery", "d-2"),
            ])
        );
        // Everything the parser reads is kept, so a stored delivery parses as it did when it came in.
        for read in [
            "X-GitHub-Event",
            "X-GitHub-Delivery",
            "X-Gitlab-Event",
            "Idempotency-Key",
            "X-Gitea-Event",
            "X-Forgejo-Event",
            "X-Gogs-Event",
            "X-Gitea-Delivery",
            "X-Forgejo-Delivery",
            "X-Gogs-Delivery",
        ] {
            assert_eq!(stored_headers(&h(&[(read, "v")])).len(), 1, "{read}");
        }
    }
}
