//! The local secrets map: where the value of each secret env var comes from.
//!
//! A build file names secrets (`availableSecrets`, `secrets`); Google's service would fetch them from
//! Secret Manager or KMS. Here each name is mapped by `--secret NAME=env:VAR` or `--secret NAME=file:PATH`
//! (or the server's config). Values are read once, before any step starts, and only ever leave this
//! module as container env vars and as the masker's list.

use std::collections::BTreeMap;
use std::fmt;

use crate::mask;

/// Where a secret's value is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(String),
    /// An `env:VAR` of the server's config, read at start-up and then removed from the process
    /// environment ([`scrub_environment`]): the value lives here, so children and
    /// `/proc/<pid>/environ` no longer hold it. Shown as `env:VAR`, never as its value.
    Captured {
        var: String,
        value: Secret,
    },
}

impl SecretSource {
    /// Reads an `env:VAR` now and keeps its value (a variable that is not set stays `env:VAR`, and
    /// says so when it is used); returns the variable to remove from the environment.
    pub fn capture(&mut self) -> Option<String> {
        let SecretSource::Env(var) = self else { return None };
        let var = var.clone();
        let value = std::env::var(&var).ok()?;
        *self = SecretSource::Captured { var: var.clone(), value: Secret::new(value) };
        Some(var)
    }

    /// The value now; the error says which variable or file, never a value.
    pub fn read_value(&self) -> Result<String, String> {
        match self {
            SecretSource::Captured { value, .. } => Ok(value.expose().to_string()),
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set"))
            }
            // Files written by editors and `echo` end with a newline that is not part of the secret.
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read `{path}`: {e}")),
        }
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(var) | SecretSource::Captured { var, .. } => write!(f, "env:{var}"),
            SecretSource::File(path) => write!(f, "file:{path}"),
        }
    }
}

/// A secret's value (a token, a key): `Debug` never shows it, and it is only read through
/// [`Secret::expose`], where it goes into a header or a container's environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Removes `vars` from the process environment, first overwriting their values where the kernel
/// keeps the environment the process started with (`/proc/<pid>/environ` reads that memory, which
/// `unsetenv` leaves as it was), so neither a child nor a reader of `/proc` finds them.
///
/// # Safety
///
/// The process must have one thread: nothing may read or write the environment meanwhile (why
/// `std::env::remove_var` is `unsafe` in edition 2024). `cli::main` calls it before the runtime starts.
pub unsafe fn scrub_environment(vars: &[String]) {
    for var in vars {
        let Ok(name) = std::ffi::CString::new(var.as_str()) else { continue };
        // SAFETY: single-threaded (the caller's contract); `getenv` returns the value inside the
        // `NAME=value` entry the environment holds, or null.
        let value = unsafe { libc::getenv(name.as_ptr()) };
        if !value.is_null() {
            // SAFETY: `value` is a NUL-terminated string in writable memory (the initial stack, or a
            // heap copy made by `setenv`), still owned by the environment, which nothing else reads
            // now; it is overwritten before `unsetenv` may free it, up to, not including, its
            // terminator, so the entry stays a valid (empty) string until it is removed.
            unsafe {
                let len = libc::strlen(value);
                for i in 0..len {
                    std::ptr::write_volatile(value.add(i), 0);
                }
            }
        }
        // SAFETY: single-threaded, as above.
        unsafe { std::env::remove_var(var) };
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("`--secret {0}` is not of the form `NAME=env:VAR` or `NAME=file:PATH`")]
    BadSpec(String),
    #[error("secret `{name}` is used by the build but has no value")]
    Missing { name: String },
    #[error("secret `{name}`: environment variable `{var}` is not set")]
    EnvUnset { name: String, var: String },
    #[error("secret `{name}`: cannot read `{path}`: {message}")]
    File { name: String, path: String, message: String },
    #[error("secret `{name}` is longer than 64 KiB")]
    TooLong { name: String },
}

impl SecretError {
    pub fn hint(&self) -> Option<String> {
        match self {
            SecretError::Missing { name } => {
                Some(format!("map it to a local value: `--secret {name}=env:VAR` or `--secret {name}=file:PATH`"))
            }
            _ => None,
        }
    }
}

/// Parses one `NAME=env:VAR` / `NAME=file:PATH` argument.
pub fn parse_spec(spec: &str) -> Result<(String, SecretSource), SecretError> {
    let bad = || SecretError::BadSpec(spec.to_string());
    let (name, source) = spec.split_once('=').ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    let source = match source.split_once(':') {
        Some(("env", var)) if !var.is_empty() => SecretSource::Env(var.to_string()),
        Some(("file", path)) if !path.is_empty() => SecretSource::File(path.to_string()),
        _ => return Err(bad()),
    };
    Ok((name.to_string(), source))
}

/// Secret values by env name. `Debug` never shows a value.
#[derive(Clone, Default)]
pub struct SecretValues {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl SecretValues {
    /// Reads the value of every name in `needed` from `sources`; every problem is returned, not just
    /// the first.
    pub fn resolve<'a>(
        needed: impl IntoIterator<Item = &'a String>,
        sources: &BTreeMap<String, SecretSource>,
    ) -> Result<SecretValues, Vec<SecretError>> {
        let mut values = BTreeMap::new();
        let mut errors = Vec::new();
        for name in needed {
            match sources.get(name) {
                None => errors.push(SecretError::Missing { name: name.clone() }),
                Some(source) => match read(name, source) {
                    Ok(value) => {
                        values.insert(name.clone(), value);
                    }
                    Err(e) => errors.push(e),
                },
            }
        }
        if errors.is_empty() { Ok(SecretValues { values }) } else { Err(errors) }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The masker's view: every value.
    pub fn masks(&self) -> mask::Secrets {
        mask::Secrets::new(self.values.values())
    }
}

fn read(name: &str, source: &SecretSource) -> Result<String, SecretError> {
    let value = match source {
        SecretSource::Captured { value, .. } => value.expose().to_string(),
        SecretSource::Env(var) => {
            std::env::var(var).map_err(|_| SecretError::EnvUnset { name: name.to_string(), var: var.clone() })?
        }
        SecretSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| SecretError::File {
                name: name.to_string(),
                path: path.clone(),
                message: e.to_string(),
            })?;
            // Files written by editors and `echo` end with a newline that is not part of the secret.
            text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_string()
        }
    };
    if value.len() > 64 * 1024 {
        return Err(SecretError::TooLong { name: name.to_string() });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse_spec("TOKEN=env:MY_TOKEN"), Ok(("TOKEN".into(), SecretSource::Env("MY_TOKEN".into()))));
        assert_eq!(parse_spec("K=file:/run/k"), Ok(("K".into(), SecretSource::File("/run/k".into()))));
        for bad in ["TOKEN", "=env:X", "T=env:", "T=vault:x", "T=x"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_reports_every_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s");
        std::fs::write(&file, "from-file\n").expect("write");
        let sources = BTreeMap::from([
            ("A".to_string(), SecretSource::File(file.display().to_string())),
            ("B".to_string(), SecretSource::Env("PIPEWRIGHT_TEST_SURELY_UNSET".into())),
        ]);
        let needed = ["A".to_string(), "B".to_string(), "C".to_string()];
        let errors = SecretValues::resolve(needed.iter(), &sources).expect_err("B and C fail");
        assert_eq!(errors.len(), 2);
        let ok = SecretValues::resolve(needed[..1].iter(), &sources).expect("A resolves");
        assert_eq!(ok.get("A"), Some("from-file"));
        assert!(!format!("{ok:?}").contains("from-file"));
    }
}
