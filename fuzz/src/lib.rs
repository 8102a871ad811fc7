//! What the webhook targets share: building a delivery's headers from a selector byte, and the
//! properties every normalised event must have, whichever forge sent it.

use pipewright::trigger::{self, Event, Forge, Incoming, Kind, Repo};

/// One forge's header names and the event names it sends (plus one it does not build on).
struct Names {
    event_headers: &'static [&'static str],
    delivery_headers: &'static [&'static str],
    events: &'static [&'static str],
}

fn names(forge: Forge) -> Names {
    match forge {
        Forge::GitHub => Names {
            event_headers: &["X-GitHub-Event"],
            delivery_headers: &["X-GitHub-Delivery"],
            events: &[
                "push",
                "pull_request",
                "issue_comment",
                "pull_request_review_comment",
                "ping",
                "create",
                "delete",
                "pull_request_review",
                "issues",
            ],
        },
        Forge::GitLab => Names {
            event_headers: &["X-Gitlab-Event"],
            delivery_headers: &["Idempotency-Key", "X-Gitlab-Event-UUID"],
            events: &["Push Hook", "Tag Push Hook", "Merge Request Hook", "Note Hook", "System Hook", "Issue Hook"],
        },
        Forge::Gitea => Names {
            event_headers: &["X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event"],
            delivery_headers: &["X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery"],
            events: &["push", "pull_request", "issue_comment", "pull_request_comment", "create", "delete", "issues"],
        },
    }
}

/// Runs one delivery to `forge`. `data` is a selector byte, then the body. The selector's low nibble
/// picks the event name; 0x10 adds a delivery id, 0x20 sends the event header twice, 0x40 spells the
/// header names in lower case, 0x80 uses the forge's second header names (Forgejo's, GitLab's UUID).
pub fn webhook(forge: Forge, data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let names = names(forge);
    let event = names.events[usize::from(selector & 0x0F) % names.events.len()];
    let alternative = usize::from(selector & 0x80 != 0);
    let spell = |name: &str| if selector & 0x40 != 0 { name.to_ascii_lowercase() } else { name.to_string() };
    let mut headers = vec![(spell(names.event_headers[alternative % names.event_headers.len()]), event.to_string())];
    if selector & 0x20 != 0 {
        headers.push(headers[0].clone());
    }
    if selector & 0x10 != 0 {
        let name = names.delivery_headers[alternative % names.delivery_headers.len()];
        headers.push((spell(name), "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_string()));
    }
    headers.push(("Content-Type".to_string(), "application/json".to_string()));
    let result = trigger::parse(forge, &headers, body);
    if selector & 0x20 != 0 {
        // An event header sent twice is never read: the delivery is refused whatever its body.
        assert!(
            matches!(result, Err(trigger::EventError::DuplicateHeader { .. })),
            "a duplicated event header was accepted: {result:?}"
        );
    }
    match result {
        Ok(Incoming::Event(event)) => check_event(&event),
        Ok(Incoming::Comment(comment)) => check_repo(&comment.repo),
        Ok(Incoming::Ping | Incoming::Ignored { .. }) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// 40 or 64 lowercase hex digits.
fn is_sha(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A branch or tag name reaches git commands, substitutions and the dashboard: none of the bytes and
/// sequences `git check-ref-format` refuses, whatever the payload said.
fn check_ref_name(name: &str) {
    assert!(!name.is_empty(), "an empty ref name");
    assert!(!name.chars().any(|c| c.is_ascii_control()), "a control character in {name:?}");
    assert!(!name.chars().any(|c| " ~^:?*[\\".contains(c)), "a character git refuses in {name:?}");
    assert!(!name.contains("..") && !name.contains("@{") && !name.contains("//"), "a sequence git refuses in {name:?}");
}

fn check_repo(repo: &Repo) {
    assert!(!repo.full_name.is_empty() && !repo.clone_url.is_empty(), "an unnamed repository: {repo:?}");
    if let Some(branch) = &repo.default_branch {
        check_ref_name(branch);
    }
}

fn check_event(event: &Event) {
    assert!(is_sha(&event.after), "after {:?}", event.after);
    for sha in [&event.before, &event.base].into_iter().flatten() {
        assert!(is_sha(sha), "sha {sha:?}");
    }
    check_ref_name(event.git_ref.name());
    check_repo(&event.repo);
    assert_eq!(event.deleted, event.after.bytes().all(|b| b == b'0'));
    match &event.kind {
        Kind::Tag => assert!(event.git_ref.is_tag()),
        Kind::Push => assert!(!event.git_ref.is_tag()),
        Kind::PullRequest(pr) => {
            check_ref_name(&pr.base_branch);
            check_ref_name(&pr.head_branch);
            assert_eq!(event.git_ref.name(), pr.head_branch);
        }
        Kind::Manual => panic!("a webhook made a manual event"),
    }
}
