//! The CLI's one error type, and what a command returns.
//!
//! Every command is `fn command(args) -> Result<Outcome, CliError>` (`async` when it needs the
//! runtime). `cli::main` turns the result into the process's exit code, and it is the only place an
//! error is printed:
//!
//! - `Ok(Outcome::Success)`: exit code 0.
//! - `Ok(Outcome::Failure)`: exit code 1. The command did what was asked and the answer is no (a
//!   build failed, a file is invalid under `validate --format json`, two specs differ under
//!   `diff --exit-code`), and its own output already says so in full: the build's summary, the JSON on
//!   stdout. Nothing more is printed.
//! - `Err(CliError)`: the command stopped with a message. `main` prints it on stderr once, with the
//!   [`Printer`]: the text that comes before it as it is (a file's diagnostics), then each
//!   `error: MESSAGE` with its `hint:`. The exit code is the error's [`Code`]:
//!   - 2, [`CliError::unable`]: pipewright could not do what was asked: bad arguments, an unreadable or
//!     invalid file, Docker, a registry or a server unreachable, a build rejected before it ran;
//!   - 1, [`CliError::failed`]: what was asked was tried and failed, or rules refused it: a build file
//!     with problems (`validate`, after its diagnostics), a rewrite, a spec run or an environment's run
//!     that failed, a promotion the environment's rules refused (or a server's 409/502).
//!
//!   [`CliError::reported`] is an error the command has already reported in its own format (the
//!   `github-action` command's annotations on stdout, for the workflow's log): `main` prints nothing
//!   more and exits with its code.

use std::fmt;
use std::process::ExitCode;

use super::output::Printer;
use crate::engine::Rejected;
use crate::io::credentials::CredentialError;
use crate::io::secrets::SecretError;

/// What a command that did its job ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Success,
    /// Exit code 1: the command's output has said what failed.
    Failure,
}

impl Outcome {
    /// `Success` when `ok`, else `Failure`.
    pub fn of(ok: bool) -> Outcome {
        if ok { Outcome::Success } else { Outcome::Failure }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> ExitCode {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Failure => ExitCode::from(1),
        }
    }
}

/// The exit code of an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// 1: what was asked was tried, and it failed or was refused.
    Failed = 1,
    /// 2: pipewright could not do what was asked.
    Unable = 2,
}

/// Why a command stopped: what `main` prints on stderr and the exit code.
#[derive(Debug)]
pub struct CliError {
    code: Code,
    /// Printed as it is before the error lines (a file's diagnostics).
    detail: Option<String>,
    /// The `error:` lines, each with its hint; none when the command has reported the error itself.
    problems: Vec<Problem>,
}

#[derive(Debug)]
struct Problem {
    message: String,
    hint: Option<String>,
}

impl CliError {
    fn new(code: Code, message: String) -> CliError {
        CliError { code, detail: None, problems: vec![Problem { message, hint: None }] }
    }

    /// Exit code 2: pipewright could not do what was asked.
    pub fn unable(message: impl Into<String>) -> CliError {
        CliError::new(Code::Unable, message.into())
    }

    /// Exit code 1: what was asked was tried, and it failed or was refused.
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError::new(Code::Failed, message.into())
    }

    /// An error the command has already reported in its own format: nothing is printed.
    pub fn reported(code: Code) -> CliError {
        CliError { code, detail: None, problems: Vec::new() }
    }

    /// A hint under the (last) error line.
    pub fn with_hint(self, hint: impl Into<String>) -> CliError {
        self.with_optional_hint(Some(hint))
    }

    /// A hint under the (last) error line, when there is one.
    pub fn with_optional_hint(mut self, hint: Option<impl Into<String>>) -> CliError {
        if let Some(last) = self.problems.last_mut() {
            last.hint = hint.map(Into::into);
        }
        self
    }

    /// Text printed as it is before the error lines.
    pub fn with_detail(mut self, detail: impl Into<String>) -> CliError {
        self.detail = Some(detail.into());
        self
    }

    /// Prints the error on stderr (the only place the CLI prints one) and returns the exit code.
    pub fn report(self) -> ExitCode {
        let printer = Printer::stderr();
        if let Some(detail) = &self.detail {
            printer.plain(detail);
        }
        for problem in &self.problems {
            printer.error(&problem.message, problem.hint.as_deref());
        }
        ExitCode::from(self.code as u8)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<&str> = self.problems.iter().map(|p| p.message.as_str()).collect();
        f.write_str(&messages.join("\n"))
    }
}

impl std::error::Error for CliError {}

impl From<CredentialError> for CliError {
    fn from(e: CredentialError) -> CliError {
        CliError::unable(e.to_string())
    }
}

impl From<SecretError> for CliError {
    fn from(e: SecretError) -> CliError {
        let hint = e.hint();
        CliError::unable(e.to_string()).with_optional_hint(hint)
    }
}

/// A build the engine would not start: the file's problems, the secrets without a value, the missing
/// build file, or why not. Exit code 2: nothing was run.
impl From<Rejected> for CliError {
    fn from(rejected: Rejected) -> CliError {
        match &rejected {
            Rejected::Config(diagnostics) => {
                let errors = diagnostics.errors().count();
                CliError::unable(format!(
                    "{}: {errors} problem{}; nothing was run",
                    diagnostics.file,
                    if errors == 1 { "" } else { "s" }
                ))
                .with_detail(diagnostics.to_string())
            }
            // One error line each; none when the list is empty (the engine never rejects with none).
            Rejected::Secrets(errors) => CliError {
                code: Code::Unable,
                detail: None,
                problems: errors.iter().map(|e| Problem { message: e.to_string(), hint: e.hint() }).collect(),
            },
            Rejected::NoConfig { root, tried } => {
                CliError::unable(format!("no build file at the root of the build (`{root}`)"))
                    .with_hint(format!("looked for {}; name another with `--config FILE`", tried.join(", ")))
            }
            other => CliError::unable(crate::error_chain(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(CliError::unable("x").code as u8, 2);
        assert_eq!(CliError::failed("x").code as u8, 1);
        assert_eq!(CliError::reported(Code::Unable).code as u8, 2);
        assert_eq!(ExitCode::from(Outcome::of(true)), ExitCode::SUCCESS);
        assert_eq!(ExitCode::from(Outcome::of(false)), ExitCode::from(1));
    }

    #[test]
    fn a_hint_goes_with_its_error_line() {
        let e = CliError::unable("no file").with_hint("name one").with_detail("file:1:1: problem");
        assert_eq!(e.to_string(), "no file");
        assert_eq!(e.problems[0].hint.as_deref(), Some("name one"));
        assert_eq!(CliError::unable("x").with_optional_hint(None::<String>).problems[0].hint, None);
        assert!(CliError::reported(Code::Failed).to_string().is_empty());
    }

    #[test]
    fn secrets_without_values_are_one_line_each() {
        let missing = |name: &str| SecretError::Missing { name: name.into() };
        let e = CliError::from(Rejected::Secrets(vec![missing("A"), missing("B")]));
        assert_eq!(e.code, Code::Unable);
        assert_eq!(e.problems.len(), 2);
        assert!(e.problems.iter().all(|p| p.hint.as_deref().is_some_and(|h| h.contains("--secret"))));
    }
}
