//! What several commands share: `--format`, `--substitutions`, `--credential`, and stopping on a
//! signal.

use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use super::error::CliError;
use crate::engine::PullPolicy;
use crate::io::credentials::{Credential, CredentialError, Credentials};
use crate::subst::{self, Origin, SubstError};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    #[default]
    Human,
    Json,
}

/// The flags of a command that runs a build (`run`, `github-action`).
#[derive(Args, Debug)]
pub(super) struct BuildFlags {
    /// Build file, relative to the build's root (default: the first of pipewright.yaml,
    /// .pipewright.yaml, cloudbuild.yaml, cloudbuild.json)
    #[arg(long)]
    pub config: Option<String>,
    #[command(flatten)]
    pub substitutions: SubstitutionArgs,
    /// Where a secret's value comes from: `NAME=env:VAR` or `NAME=file:PATH` (repeatable)
    #[arg(long = "secret", value_name = "NAME=SOURCE")]
    secrets: Vec<String>,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// When to pull step images
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
}

impl BuildFlags {
    /// The `--secret` values as given.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }
}

#[derive(Args, Debug)]
pub(super) struct SubstitutionArgs {
    /// Substitution values, `_KEY=VALUE[,…]` (user keys only: built-ins such as `COMMIT_SHA` cannot be set);
    /// they win over the file's `substitutions`
    #[arg(long = "substitutions", value_name = "K=V,…")]
    substitutions: Vec<String>,
}

/// A flag's value pipewright cannot use.
#[derive(Debug, thiserror::Error)]
pub(super) enum ArgError {
    #[error("`--substitutions {0}` is not of the form `KEY=VALUE`")]
    SubstitutionForm(String),
    #[error("--substitutions: {0}")]
    Substitution(SubstError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
}

impl From<ArgError> for CliError {
    fn from(e: ArgError) -> CliError {
        CliError::unable(e.to_string())
    }
}

impl SubstitutionArgs {
    pub(super) fn parse(&self) -> Result<Vec<(String, String)>, ArgError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for item in self.substitutions.iter().flat_map(|s| s.split(',')) {
            if item.is_empty() {
                continue;
            }
            let Some((k, v)) = item.split_once('=') else {
                return Err(ArgError::SubstitutionForm(item.to_string()));
            };
            out.retain(|(existing, _)| existing != k);
            out.push((k.to_string(), v.to_string()));
        }
        let problems = subst::validate_map(out.iter().map(|(k, v)| (k.as_str(), v.as_str())), Origin::Flag);
        if let Some(first) = problems.into_iter().next() {
            return Err(ArgError::Substitution(first));
        }
        Ok(out)
    }
}

#[derive(Args, Debug)]
pub(super) struct CredentialArgs {
    /// The token for one origin, `ORIGIN=env:VAR` or `ORIGIN=file:PATH` (repeatable): uploads and
    /// pipeline runs send a token only to a URL of exactly that scheme, host and port
    #[arg(long = "credential", value_name = "ORIGIN=SOURCE")]
    credentials: Vec<String>,
}

impl CredentialArgs {
    pub(super) fn parse(&self) -> Result<Credentials, ArgError> {
        let entries = self.credentials.iter().map(|spec| Credential::parse_flag(spec)).collect::<Result<_, _>>()?;
        Ok(Credentials::new(entries)?)
    }
}

/// Ctrl-C or SIGTERM cancels the build; the engine then stops its containers and cleans up.
pub(super) async fn watch_signals(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("pipewright: stopping the build (cleaning up containers, volumes and network)");
    cancel.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn substitutions(values: &[&str]) -> Result<Vec<(String, String)>, ArgError> {
        SubstitutionArgs { substitutions: values.iter().map(|v| v.to_string()).collect() }.parse()
    }

    #[test]
    fn substitutions_split_on_commas_and_the_last_value_wins() {
        let parsed = substitutions(&["_A=1,_B=2", "_A=3", ""]).expect("valid");
        assert_eq!(parsed, vec![("_B".to_string(), "2".to_string()), ("_A".to_string(), "3".to_string())]);
        let e = substitutions(&["_A"]).expect_err("no value");
        assert_eq!(e.to_string(), "`--substitutions _A` is not of the form `KEY=VALUE`");
    }
}
