//! Which credential goes to which destination: the one place that decides whether a request to a URL
//! carries a bearer token, and which one.
//!
//! The allow-list is the operator's, never the build file's: the server config's `credentials:`, or
//! `--credential ORIGIN=env:VAR` on the command line. Each entry is an origin (scheme, host, port) and
//! where its token comes from. A URL gets the token of the entry whose origin is exactly its own: a
//! host that merely starts or ends like a listed one, a URL with a user in it (`https://listed@other`),
//! or another scheme or port gets nothing, and there is no default token. Untrusted builds get
//! [`Credentials::none`] whatever the server holds (src/engine/phases/mod.rs).

use std::fmt;
use std::sync::Arc;

use reqwest::Url;

use crate::io::secrets::{Secret, SecretSource};

/// Where requests go, as browsers compare them: scheme, host (lowercase, IDNA-normalised by the URL
/// parser, a trailing dot kept, so `example.com.` is another host) and port (the scheme's default
/// when none is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin a request to `url` goes to; `None` when it is not `http(s)` or names a user, so that
    /// such a URL never gets a credential.
    pub fn of(url: &str) -> Option<Origin> {
        Url::parse(url).ok().as_ref().and_then(origin)
    }

    /// An allow-list entry: exactly `scheme://host[:port]` (a trailing `/` allowed).
    pub fn parse(text: &str) -> Result<Origin, CredentialError> {
        let bad = |why: &str| CredentialError::BadOrigin { text: text.to_string(), why: why.to_string() };
        let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme is not `http` or `https`"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("it names a user"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("it has a path, query or fragment, and a credential is for a whole origin"));
        }
        origin(&url).ok_or_else(|| bad("it has no host"))
    }
}

fn origin(url: &Url) -> Option<Origin> {
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    Some(Origin {
        scheme: url.scheme().to_string(),
        host: url.host_str()?.to_string(),
        port: url.port_or_known_default()?,
    })
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = (self.scheme == "https" && self.port == 443) || (self.scheme == "http" && self.port == 80);
        if default {
            write!(f, "{}://{}", self.scheme, self.host)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// One allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub origin: Origin,
    pub token: SecretSource,
}

impl Credential {
    /// Parses `--credential ORIGIN=env:VAR` / `ORIGIN=file:PATH`.
    pub fn parse_flag(spec: &str) -> Result<Credential, CredentialError> {
        // An origin holds no `=`, so the first one ends it; the source may hold more (a path).
        let (origin, source) = spec.split_once('=').ok_or_else(|| CredentialError::BadFlag(spec.to_string()))?;
        let token = match source.split_once(':') {
            Some(("env", var)) if !var.is_empty() => SecretSource::Env(var.to_string()),
            Some(("file", path)) if !path.is_empty() => SecretSource::File(path.to_string()),
            // Not echoed: what follows `=` may be the token itself, written by mistake.
            _ => return Err(CredentialError::BadFlag(format!("{origin}=…"))),
        };
        Ok(Credential { origin: Origin::parse(origin)?, token })
    }
}

/// The allow-list: cheap to clone, `Debug` shows origins and sources, never a token.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    entries: Arc<[Credential]>,
}

impl Credentials {
    /// No credential for anyone: untrusted builds, and a CLI given no `--credential`.
    pub fn none() -> Credentials {
        Credentials::default()
    }

    /// An allow-list; an origin listed twice is refused (which token would win is not obvious).
    pub fn new(entries: Vec<Credential>) -> Result<Credentials, CredentialError> {
        for (i, entry) in entries.iter().enumerate() {
            if entries[..i].iter().any(|e| e.origin == entry.origin) {
                return Err(CredentialError::Duplicate { origin: entry.origin.to_string() });
            }
        }
        Ok(Credentials { entries: entries.into() })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn origins(&self) -> impl Iterator<Item = &Origin> {
        self.entries.iter().map(|e| &e.origin)
    }

    /// Reads every `env:VAR` token now ([`SecretSource::capture`]); returns the variables read, for
    /// [`crate::io::secrets::scrub_environment`].
    pub fn capture(&mut self) -> Vec<String> {
        let mut entries = self.entries.to_vec();
        let vars = entries.iter_mut().filter_map(|e| e.token.capture()).collect();
        self.entries = entries.into();
        vars
    }

    /// The token for a request to `url`: that of the entry with exactly `url`'s origin, or none. A
    /// listed origin whose token cannot be read is an error (the request would fail less clearly
    /// without it); the message names the origin and the source, never a value.
    pub fn for_url(&self, url: &str) -> Result<Option<Secret>, CredentialError> {
        let Some(origin) = Origin::of(url) else { return Ok(None) };
        let Some(entry) = self.entries.iter().find(|e| e.origin == origin) else { return Ok(None) };
        let unreadable = |message: String| CredentialError::Unreadable { origin: origin.to_string(), message };
        let value = entry.token.read_value().map_err(unreadable)?;
        let value = value.trim();
        if value.is_empty() {
            return Err(unreadable(format!("`{}` is empty", entry.token)));
        }
        Ok(Some(Secret::new(value.to_string())))
    }
}

/// Redirects for a client that carries a credential: followed only within the origin of the first
/// request (reqwest drops `Authorization` on a change of host or port, but not of scheme).
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().and_then(origin);
        if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else if first.is_some() && first == origin(attempt.url()) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("`{text}` is not an origin for a credential: {why}")]
    BadOrigin { text: String, why: String },
    #[error("`--credential {0}` is not of the form `ORIGIN=env:VAR` or `ORIGIN=file:PATH`")]
    BadFlag(String),
    #[error("the credential for `{origin}` is given twice")]
    Duplicate { origin: String },
    #[error("the credential for `{origin}`: {message}")]
    Unreadable { origin: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(entries: &[(&str, &str)]) -> Credentials {
        let entries = entries
            .iter()
            .map(|(origin, token)| Credential {
                origin: Origin::parse(origin).expect("a valid origin"),
                token: SecretSource::Captured { var: "T".into(), value: Secret::new(token.to_string()) },
            })
            .collect();
        Credentials::new(entries).expect("no duplicates")
    }

    #[test]
    fn a_url_gets_the_token_of_exactly_its_origin() {
        let credentials = listed(&[("https://kfp.example.com", "kfp"), ("http://127.0.0.1:8888/", "local")]);
        let check = |url: &str, expected: Option<&str>| {
            let token = credentials.for_url(url).expect("readable");
            assert_eq!(token.as_ref().map(Secret::expose), expected, "{url}");
        };
        check("https://kfp.example.com/apis/v2beta1/runs", Some("kfp"));
        check("https://kfp.example.com:443/x", Some("kfp"));
        check("HTTPS://KFP.Example.COM/x", Some("kfp"));
        check("http://127.0.0.1:8888/apis", Some("local"));
        // Look-alikes, other schemes and ports, users, and what does not parse get nothing.
        check("https://kfp.example.com.evil.net/x", None);
        check("https://evil.net/kfp.example.com", None);
        check("https://evilkfp.example.com/", None);
        check("https://example.com/", None);
        check("https://kfp.example.com@evil.net/", None);
        check("https://user:pw@kfp.example.com/", None);
        check("https://kfp.example.com./x", None);
        check("http://kfp.example.com/x", None);
        check("https://kfp.example.com:8443/x", None);
        check("http://127.0.0.1:8889/", None);
        check("http://localhost:8888/", None);
        check("ftp://kfp.example.com/", None);
        check("kfp.example.com", None);
        check("", None);
        assert_eq!(Credentials::none().for_url("https://kfp.example.com/").expect("none"), None);
    }

    #[test]
    fn allow_list_entries_are_whole_origins() {
        for good in ["https://kfp.example.com", "https://kfp.example.com/", "http://[::1]:9000", "http://10.0.0.1:80"] {
            assert!(Origin::parse(good).is_ok(), "{good}");
        }
        assert_eq!(Origin::parse("http://10.0.0.1:80").expect("valid").to_string(), "http://10.0.0.1");
        assert_eq!(Origin::parse("HTTP://[::1]:9000").expect("valid").to_string(), "http://[::1]:9000");
        for (bad, why) in [
            ("kfp.example.com", "relative URL without a base"),
            ("https://kfp.example.com/pipeline", "a credential is for a whole origin"),
            ("https://kfp.example.com/?x=1", "a credential is for a whole origin"),
            ("https://u@kfp.example.com", "it names a user"),
            ("file:///etc/passwd", "the scheme is not"),
            ("unix:/run/x.sock", "the scheme is not"),
        ] {
            let e = Origin::parse(bad).expect_err(bad).to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn flags_and_duplicates() {
        let c = Credential::parse_flag("https://kfp.example.com=env:KFP_TOKEN").expect("valid");
        assert_eq!(c.token, SecretSource::Env("KFP_TOKEN".into()));
        let c = Credential::parse_flag("http://k:1=file:/run/a=b").expect("valid");
        assert_eq!((c.origin.to_string(), c.token), ("http://k:1".into(), SecretSource::File("/run/a=b".into())));
        let e = Credential::parse_flag("https://kfp.example.com=hunter2").expect_err("a literal token").to_string();
        assert!(!e.contains("hunter2") && e.contains("ORIGIN=env:VAR"), "{e}");
        assert!(Credential::parse_flag("https://kfp.example.com").is_err());
        assert!(Credential::parse_flag("https://kfp.example.com/x=env:T").is_err());
        let twice = ["https://a.example=env:A", "https://A.example:443=env:B"]
            .map(|f| Credential::parse_flag(f).expect("valid"))
            .to_vec();
        assert_eq!(
            Credentials::new(twice).expect_err("twice").to_string(),
            "the credential for `https://a.example` is given twice"
        );
    }

    #[test]
    fn an_unreadable_token_names_the_origin_and_never_a_value() {
        let credentials = Credentials::new(vec![Credential {
            origin: Origin::parse("https://kfp.example.com").expect("valid"),
            token: SecretSource::Env("PIPEWRIGHT_TEST_SURELY_UNSET".into()),
        }])
        .expect("valid");
        let e = credentials.for_url("https://kfp.example.com/x").expect_err("unset").to_string();
        assert!(e.contains("https://kfp.example.com") && e.contains("PIPEWRIGHT_TEST_SURELY_UNSET"), "{e}");
        let held = listed(&[("https://kfp.example.com", "s3cret-value")]);
        assert!(!format!("{held:?}").contains("s3cret-value"));
    }
}
