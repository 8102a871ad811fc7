//! The test vectors of peers.md §5.2 (computed there with Python's `hmac`/`hashlib`; vector 1 is also
//! the example in GitHub's documentation) and the negative vectors it recommends.

use super::*;

fn fixture(file: &str) -> Vec<u8> {
    let path =
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/webhooks").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const DOCS_SECRET: &str = "It's a Secret to Everybody";
const DOCS_SHA256: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
const CI_SECRET: &str = "ci-test-secret";

/// (name, forge, secret, headers, body, expected).
type Case<'a> = (&'a str, Forge, &'a str, Vec<(String, String)>, &'a [u8], Result<(), SignatureError>);

#[test]
fn vectors() {
    use SignatureError::*;
    let hello = b"Hello, World!".to_vec();
    let ping = fixture("github/ping.json");
    let push = fixture("github/push__branch.json");
    let gitea_push = fixture("gitea/push.json");
    assert_eq!((ping.len(), push.len(), gitea_push.len()), (7633, 8556, 2215), "fixture sizes as in peers.md §5.2");
    let reserialised = {
        let value: serde_json::Value = serde_json::from_slice(&push).expect("JSON");
        serde_json::to_vec(&value).expect("serialises")
    };
    let gh_ping = "sha256=c270e8f5c4d5594fcc012758a5a34e2e1a9608bab6784889fe8de37f13c5138e";
    let gh_push = "sha256=b0e140ec3df35617621b669895b0119a33ebb74b78eeeb25e915c12f12e6f055";
    let gitea = "03eeabfa502f6f7c8f2f6c5df43c70db8b158bb059b3cb4c37fb434d55b5dd50";
    let sig256 = "X-Hub-Signature-256";
    let missing = |header| Missing { header };
    let mismatch = |header| Mismatch { header };
    let scheme = |header, found: &str, expected| WrongScheme { header, found: found.to_string(), expected };
    let malformed = |header| Malformed { header, reason: "expected 64 lowercase hex digits" };

    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        // 1. GitHub's documented example.
        ("1 github docs", Forge::GitHub, DOCS_SECRET, headers(&[(sig256, DOCS_SHA256)]), &hello, Ok(())),
        // 2. The legacy SHA-1 header alone is not enough; beside a good SHA-256 one it is ignored.
        ("2 sha1 only", Forge::GitHub, DOCS_SECRET,
            headers(&[("X-Hub-Signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59")]), &hello, Err(missing(sig256))),
        ("2 sha1 beside sha256", Forge::GitHub, DOCS_SECRET,
            headers(&[("X-Hub-Signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"), (sig256, DOCS_SHA256)]), &hello, Ok(())),
        // 3, 4. Corpus files as stored.
        ("3 ping.json", Forge::GitHub, CI_SECRET, headers(&[(sig256, gh_ping)]), &ping, Ok(())),
        ("4 push__branch.json", Forge::GitHub, CI_SECRET, headers(&[(sig256, gh_push)]), &push, Ok(())),
        // 5. Gitea: hex, no prefix; Forgejo's own header name works alike.
        ("5 gitea push.json", Forge::Gitea, CI_SECRET, headers(&[("X-Gitea-Signature", gitea)]), &gitea_push, Ok(())),
        ("5 forgejo header", Forge::Gitea, CI_SECRET, headers(&[("X-Forgejo-Signature", gitea)]), &gitea_push, Ok(())),
        // 6. GitLab: the token itself.
        ("6 gitlab token", Forge::GitLab, CI_SECRET, headers(&[("X-Gitlab-Token", CI_SECRET)]), b"anything", Ok(())),
        // Negative vectors.
        ("body changed", Forge::GitHub, DOCS_SECRET, headers(&[(sig256, DOCS_SHA256)]), b"Hello, World!!", Err(mismatch(sig256))),
        ("wrong secret", Forge::GitHub, "another secret", headers(&[(sig256, DOCS_SHA256)]), &hello, Err(mismatch(sig256))),
        ("JSON re-serialised", Forge::GitHub, CI_SECRET, headers(&[(sig256, gh_push)]), &reserialised, Err(mismatch(sig256))),
        ("signature of another body", Forge::GitHub, CI_SECRET, headers(&[(sig256, gh_ping)]), &push, Err(mismatch(sig256))),
        ("prefix missing", Forge::GitHub, DOCS_SECRET, headers(&[(sig256, &DOCS_SHA256[7..])]), &hello,
            Err(scheme(sig256, "", "sha256=<hex>"))),
        ("prefix uppercase", Forge::GitHub, DOCS_SECRET, headers(&[(sig256, &DOCS_SHA256.replace("sha256", "SHA256"))]), &hello,
            Err(scheme(sig256, "SHA256", "sha256=<hex>"))),
        ("sha1 in the sha256 header", Forge::GitHub, DOCS_SECRET,
            headers(&[(sig256, "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59")]), &hello, Err(scheme(sig256, "sha1", "sha256=<hex>"))),
        ("hex uppercase", Forge::GitHub, DOCS_SECRET, headers(&[(sig256, &DOCS_SHA256.to_uppercase().replace("SHA256", "sha256"))]),
            &hello, Err(malformed(sig256))),
        ("hex too short", Forge::GitHub, DOCS_SECRET, headers(&[(sig256, &DOCS_SHA256[..70])]), &hello, Err(malformed(sig256))),
        ("hex not hex", Forge::GitHub, DOCS_SECRET, headers(&[(sig256, &DOCS_SHA256.replace('7', "g"))]), &hello, Err(malformed(sig256))),
        ("empty signature", Forge::GitHub, DOCS_SECRET, headers(&[(sig256, "")]), &hello, Err(scheme(sig256, "", "sha256=<hex>"))),
        ("two signature headers", Forge::GitHub, DOCS_SECRET, headers(&[(sig256, DOCS_SHA256), ("x-hub-signature-256", DOCS_SHA256)]),
            &hello, Err(Duplicate { header: sig256, count: 2 })),
        ("unsigned", Forge::GitHub, DOCS_SECRET, headers(&[]), &hello, Err(missing(sig256))),
        ("signed but no secret configured", Forge::GitHub, "", headers(&[(sig256, DOCS_SHA256)]), &hello, Err(NoSecret)),
        ("gitea with a github prefix", Forge::Gitea, CI_SECRET, headers(&[("X-Gitea-Signature", &format!("sha256={gitea}"))]),
            &gitea_push, Err(scheme("X-Gitea-Signature", "sha256", "<hex> (no prefix)"))),
        ("gitea body changed", Forge::Gitea, CI_SECRET, headers(&[("X-Gitea-Signature", gitea)]), &push,
            Err(mismatch("X-Gitea-Signature"))),
        ("gitea unsigned", Forge::Gitea, CI_SECRET, headers(&[("X-Gitea-Event", "push")]), &gitea_push,
            Err(missing("X-Gitea-Signature"))),
        ("gitlab token with a newline", Forge::GitLab, CI_SECRET, headers(&[("X-Gitlab-Token", "ci-test-secret\n")]), b"{}",
            Err(mismatch("X-Gitlab-Token"))),
        ("gitlab token prefix", Forge::GitLab, CI_SECRET, headers(&[("X-Gitlab-Token", "ci-test")]), b"{}",
            Err(mismatch("X-Gitlab-Token"))),
        ("gitlab empty token", Forge::GitLab, CI_SECRET, headers(&[("X-Gitlab-Token", "")]), b"{}", Err(mismatch("X-Gitlab-Token"))),
        ("gitlab no token", Forge::GitLab, CI_SECRET, headers(&[]), b"{}", Err(missing("X-Gitlab-Token"))),
        ("gitlab no secret configured", Forge::GitLab, "", headers(&[("X-Gitlab-Token", "")]), b"{}", Err(NoSecret)),
    ];
    for (name, forge, secret, headers, body, expected) in cases {
        assert_eq!(verify(forge, secret.as_bytes(), &headers, body), expected, "{name}");
    }
}

/// Vector 7: Standard Webhooks v1, the scheme of GitLab's (feature-flagged) signing tokens.
#[test]
fn standard_webhooks_vector() {
    use SignatureError::*;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = br#"{"test": 2432232314}"#;
    let sent = 1674087231;
    let with = |signature: &str| {
        headers(&[
            ("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
            ("webhook-timestamp", "1674087231"),
            ("webhook-signature", signature),
        ])
    };
    let good = "v1,SJVF30Kpi2mR/9mMIvIkhtG4Iz8hWa0S4q2Yt1caIO0=";
    let check =
        |headers: &[(String, String)], body: &[u8], now: i64| verify_standard_webhooks(secret, headers, body, now);
    assert_eq!(check(&with(good), body, sent), Ok(()));
    assert_eq!(
        check(&with(&format!("v1,bm90IGl0 {good}")), body, sent + 299),
        Ok(()),
        "any listed signature may match"
    );
    assert_eq!(check(&with(good), br#"{"test": 2432232315}"#, sent), Err(Mismatch { header: "webhook-signature" }));
    assert_eq!(check(&with(good), body, sent + 301), Err(Stale { seconds: 301 }));
    assert_eq!(check(&with(good), body, sent - 301), Err(Stale { seconds: -301 }));
    assert_eq!(
        check(&with("v2,SJVF30Kpi2mR/9mMIvIkhtG4Iz8hWa0S4q2Yt1caIO0="), body, sent),
        Err(WrongScheme { header: "webhook-signature", found: "v2".to_string(), expected: "v1,<base64>" })
    );
    assert_eq!(check(&with("v1,!!!"), body, sent), Err(Mismatch { header: "webhook-signature" }));
    assert_eq!(check(&headers(&[]), body, sent), Err(Missing { header: "webhook-id" }));
    let mut bad_time = with(good);
    bad_time[1].1 = "yesterday".to_string();
    assert_eq!(
        check(&bad_time, body, sent),
        Err(Malformed { header: "webhook-timestamp", reason: "expected the Unix time in seconds" })
    );
    assert_eq!(verify_standard_webhooks("whsec_***", &with(good), body, sent), Err(BadSecret));
    assert_eq!(verify_standard_webhooks("whsec_", &with(good), body, sent), Err(NoSecret));
}

#[test]
fn messages() {
    assert_eq!(
        SignatureError::Mismatch { header: "X-Hub-Signature-256" }.to_string(),
        "the `X-Hub-Signature-256` header does not match the body\n\nhint: the forge and the server must use the same \
         secret, and nothing between them may change the body"
    );
    assert_eq!(
        SignatureError::Missing { header: "X-Gitlab-Token" }.to_string(),
        "the request has no `X-Gitlab-Token` header\n\nhint: set a secret in the forge's webhook settings"
    );
}
