//! Cloud Build substitutions: the `$NAME` / `${NAME}` template grammar, validation of substitution maps and of
//! the references in a build's templates, bash-style dynamic substitutions, and post-substitution tag sanitising.
//!
//! The rules are those of `docs/research/cloudbuild.md` §5 and are pinned down by
//! `tests/fixtures/cloudbuild/substitution-vectors.tsv`, which `tests.rs` in this folder replays.
//!
//! Two grammars exist:
//!
//! * the non-dynamic one (the default), a tiny scanner: `$$` is a literal `$`, `$NAME` and `${NAME}` are references
//!   (`NAME` = `[A-Z_][A-Z0-9_]*`), everything else is text. Values are inserted verbatim, never re-scanned;
//! * the dynamic one (`options.dynamicSubstitutions`, always on for triggered builds), a superset of the first that
//!   adds bash parameter expansion (`${V:-w}`, `${V//p/r}`, …) and lets user values refer to other substitutions.
//!
//! This module is pure: it never reads the environment, the file system or the clock, and it never panics,
//! whatever the input. Every value it works with comes from the caller.
//!
//! The module is split by concept: `template` (the non-dynamic grammar), `validate` (substitution keys and user
//! maps), `tags` (post-substitution tag sanitising), `substitutions` (the resolved [`Substitutions`] of a build)
//! and `dynamic` (the bash-style grammar). The types they share, errors first, are defined here.

mod dynamic;
mod substitutions;
mod tags;
mod template;
mod validate;

#[cfg(test)]
mod tests;

pub use substitutions::Substitutions;
pub use tags::{MAX_TAGS, TAG_FORMAT, sanitize_tags};
pub use template::{Reference, expand, references};
pub use validate::{BUILTINS, USER_KEY_FORMAT, is_builtin, is_user_key, validate_map, validate_map_with};

/// How references are validated (`options.substitutionOption`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Missing user keys and unused map entries are errors (the default for manual builds).
    #[default]
    MustMatch,
    /// Missing user keys expand to `""` and unused entries are fine (forced for triggered builds).
    AllowLoose,
}

/// Where a user substitution map came from. Only the flag (or a trigger) may override built-ins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The config file's own `substitutions:` block.
    Config,
    /// `--substitutions` on the command line, or a trigger's substitutions.
    Flag,
}

/// Size limits of a substitution map. [`Limits::default`] holds cloud-build-local's values; the hosted service
/// is said to allow more entries (cloudbuild.md §5.2), hence the knob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_entries: 100, max_key_bytes: 100, max_value_bytes: 4000 }
    }
}

/// Everything that can be wrong with substitutions. Messages follow Cloud Build's own wording so users recognise
/// them; [`SubstError::hint`] suggests a fix where one is obvious.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstError {
    /// A user-format key is referenced but the map does not define it (MUST_MATCH only).
    #[error("key in the template `{0}` is not matched in the substitution data")]
    MissingInMap(String),
    /// A map entry is never referenced (MUST_MATCH only).
    #[error("key `{0}` in the substitution data is not matched in the template")]
    UnusedInTemplate(String),
    /// A reference that is neither a user key nor a built-in, typically a shell variable (`$HOME`).
    #[error("key in the template `{0}` is not a valid built-in substitution")]
    InvalidBuiltin(String),
    /// A map key that is not of the user format (and, from the flag, not an overridable built-in either).
    #[error(
        "substitution key `{key}` does not respect format `{USER_KEY_FORMAT}`{}",
        key_format_suffix(.origin)
    )]
    InvalidKeyFormat { key: String, origin: Origin },
    /// A user map (file, flag, trigger, API) tried to set a built-in that only pipewright sets.
    #[error("built-in substitution `{0}` cannot be overridden (valid keys start with `_` and are not built-ins)")]
    BuiltinNotOverridable(String),
    #[error("substitution key `{key}` too long ({} bytes, max: {max})", .key.len())]
    KeyTooLong { key: String, max: usize },
    #[error("substitution value of `{key}` too long ({len} bytes, max: {max})")]
    ValueTooLong { key: String, len: usize, max: usize },
    #[error("number of substitutions {count} exceeded (max: {max})")]
    TooManySubstitutions { count: usize, max: usize },
    #[error("invalid build tag `{0}`: must match format `{TAG_FORMAT}`")]
    InvalidTag(String),
    #[error("number of tags {count} exceeded (max: {max})")]
    TooManyTags { count: usize, max: usize },
    /// A dynamic `${NAME…}` expression that cannot be parsed or evaluated.
    #[error("bad substitution `{expr}`: {reason}")]
    BadSubstitution { expr: String, reason: String },
    /// `${NAME:?message}` / `${NAME?message}` on an unset (or empty) substitution.
    #[error("`{name}`: {message}")]
    ParameterNotSet { name: String, message: String },
    /// User values that refer to each other in a loop (dynamic substitutions); the names in loop order, the
    /// first repeated at the end.
    #[error("cycle in evaluating substitutions: {}", cycle_text(.0))]
    Cycle(Vec<String>),
    /// An error met while resolving the value of a user substitution (dynamic substitutions).
    #[error("in the value of substitution `{key}`: {error}")]
    InValue { key: String, error: Box<SubstError> },
}

impl SubstError {
    /// The substitution key the problem is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::MissingInMap(key)
            | Self::UnusedInTemplate(key)
            | Self::InvalidBuiltin(key)
            | Self::BuiltinNotOverridable(key)
            | Self::InvalidKeyFormat { key, .. }
            | Self::KeyTooLong { key, .. }
            | Self::ValueTooLong { key, .. }
            | Self::InValue { key, .. } => Some(key),
            _ => None,
        }
    }

    /// A one-line suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::MissingInMap(key) => Some(format!(
                "define `{key}` under `substitutions`, pass `--substitutions {key}=…`, or set \
                 `options.substitutionOption: ALLOW_LOOSE` to let it be empty; write `$${key}` for a literal `${key}`"
            )),
            Self::UnusedInTemplate(key) => Some(format!(
                "reference it as `${{{key}}}` or remove it; operator forms such as `${{{key}:-…}}` count only \
                 with `options.dynamicSubstitutions: true`"
            )),
            Self::InvalidBuiltin(name) => Some(format!("write `$${name}` to pass a literal `${name}` to the shell")),
            Self::InvalidKeyFormat { key, .. } => Some(format!(
                "user-defined keys are `_` followed by upper-case letters, digits and underscores, e.g. `{}`",
                suggest_user_key(key)
            )),
            Self::BuiltinNotOverridable(_) => Some(
                "pipewright sets the built-ins from the commit and the event; user substitutions are keys \
                 starting with `_` that are not built-ins, e.g. `_MY_VALUE`"
                    .to_owned(),
            ),
            Self::BadSubstitution { .. } => {
                Some("write `$${…}` to pass the expression to the shell unchanged".to_owned())
            }
            Self::InValue { error, .. } => error.hint(),
            _ => None,
        }
    }
}

fn key_format_suffix(origin: &Origin) -> &'static str {
    match origin {
        Origin::Config => "",
        Origin::Flag => " (built-ins cannot be set either)",
    }
}

fn cycle_text(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(" -> ")
}

/// `my-key` → `_MY_KEY`: the nearest valid user key, for hints.
fn suggest_user_key(key: &str) -> String {
    let body: String = key
        .trim_start_matches('_')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect();
    if body.is_empty() { "_MY_KEY".to_owned() } else { format!("_{body}") }
}

/// A problem found by [`Substitutions::check`], with the caller's location of the first template it concerns
/// (`None` for problems of the map itself, such as an unused key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem<L> {
    pub kind: SubstError,
    pub location: Option<L>,
}
