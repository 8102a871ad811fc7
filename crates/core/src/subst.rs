//! Cloud Build substitutions: the `$NAME` / `${NAME}` template grammar, validation of substitution maps and of
//! the references in a build's templates, bash-style dynamic substitutions, and post-substitution tag sanitising.
//!
//! The rules are those of `shared/research/cloudbuild.md` §5 and are pinned down by
//! `tests/fixtures/cloudbuild/substitution-vectors.tsv`, which the tests at the bottom of this file replay.
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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;

/// Every built-in substitution name: Cloud Build's (cloudbuild.md §5.1) and the pull-request ones that triggers
/// provide (they look like user keys, hence the leading underscore).
pub const BUILTINS: &[&str] = &[
    "COMMIT_SHA",
    "SHORT_SHA",
    "REVISION_ID",
    "BRANCH_NAME",
    "TAG_NAME",
    "REF_NAME",
    "REPO_NAME",
    "REPO_FULL_NAME",
    "BUILD_ID",
    "PROJECT_ID",
    "PROJECT_NUMBER",
    "LOCATION",
    "TRIGGER_NAME",
    "TRIGGER_BUILD_CONFIG_PATH",
    "SERVICE_ACCOUNT_EMAIL",
    "SERVICE_ACCOUNT",
    "_HEAD_BRANCH",
    "_BASE_BRANCH",
    "_HEAD_REPO_URL",
    "_PR_NUMBER",
];

/// The format of a user-defined substitution key, spelled as Cloud Build spells it in its error messages.
pub const USER_KEY_FORMAT: &str = "^_[A-Z0-9_]+$";

/// At most this many tags survive sanitising (cloudbuild.md §2, `tags`).
pub const MAX_TAGS: usize = 64;

/// The format every build tag must have after substitution (Docker's tag grammar; `\w` is ASCII only).
pub const TAG_FORMAT: &str = r"^[\w][\w.-]{0,127}$";

/// A dynamic expansion that grows beyond this many bytes is an error. Nested pattern replacements can multiply
/// sizes (`${A//?/${B//?/…}}`); the cap keeps memory and time bounded on hostile input.
const MAX_EXPANSION_BYTES: usize = 1 << 20;

/// Deepest `${…${…}…}` nesting the dynamic parser accepts; it recurses per level, so this bounds the stack.
const MAX_NESTING: usize = 32;

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

/// Keeps error messages readable when they quote an expression that may be thousands of bytes long.
fn shorten(text: &str) -> String {
    const KEEP: usize = 40;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
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

/// `^_[A-Z0-9_]+$`.
pub fn is_user_key(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with('_')
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `name` is one of [`BUILTINS`].
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Length of the `[A-Z_][A-Z0-9_]*` run at the start of `s` (0 if none): a reference name.
fn reference_name_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_uppercase() || *b == b'_' => {
            1 + bytes[1..].iter().take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_').count()
        }
        _ => 0,
    }
}

/// Whether all of `name` is a reference name.
fn is_reference_name(name: &str) -> bool {
    !name.is_empty() && reference_name_len(name) == name.len()
}

// ---------------------------------------------------------------------------------------------------------------
// The non-dynamic grammar (cloudbuild.md §5.3)
// ---------------------------------------------------------------------------------------------------------------

/// One `$NAME` / `${NAME}` reference found by the non-dynamic scanner; `range` is the byte range of the whole
/// reference (dollar and braces included) in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    pub name: &'a str,
    pub range: Range<usize>,
}

/// One lexical item of the non-dynamic grammar.
enum Token<'a> {
    Text(&'a str),
    /// `$$`, which stands for a literal `$`.
    Escape,
    Reference(Reference<'a>),
}

/// Splits a template into [`Token`]s, left to right, exactly as cloud-build-local's `FindTemplateParameters`.
struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let src = self.src;
        let rest = src.get(self.pos..).filter(|r| !r.is_empty())?;
        let starts_with_dollar = rest.starts_with('$');
        if starts_with_dollar {
            if rest[1..].starts_with('$') {
                self.pos += 2;
                return Some(Token::Escape);
            }
            if let Some((name, len)) = reference_at(rest) {
                let range = self.pos..self.pos + len;
                self.pos += len;
                return Some(Token::Reference(Reference { name, range }));
            }
        }
        // Text up to the next `$`; a `$` that starts nothing is text too. Skipping it means slicing at 1, which
        // is a char boundary because `$` is ASCII.
        let skip = usize::from(starts_with_dollar);
        let len = rest[skip..].find('$').map_or(rest.len(), |i| i + skip);
        self.pos += len;
        Some(Token::Text(&rest[..len]))
    }
}

/// The reference at the start of `rest` (which starts with `$`), with its length in bytes.
fn reference_at(rest: &str) -> Option<(&str, usize)> {
    let after = rest.get(1..)?;
    if let Some(inner) = after.strip_prefix('{') {
        // `${NAME}` only when the name is followed by `}` at once: `${ _X}`, `${_X` and `${_X:-y}` are text.
        let len = reference_name_len(inner);
        return (len > 0 && inner[len..].starts_with('}')).then(|| (&inner[..len], len + 3));
    }
    let len = reference_name_len(after);
    (len > 0).then(|| (&after[..len], len + 1))
}

/// Every reference in `template`, in order, as the non-dynamic grammar sees it. Escaped ones (`$$NAME`) are
/// not references.
pub fn references(template: &str) -> Vec<Reference<'_>> {
    Scanner { src: template, pos: 0 }
        .filter_map(|token| match token {
            Token::Reference(reference) => Some(reference),
            _ => None,
        })
        .collect()
}

/// Non-dynamic expansion: `$$` becomes `$`, each reference becomes `lookup(name)` (absent: `""`), values are
/// inserted verbatim and never re-scanned.
pub fn expand<S: AsRef<str>>(template: &str, mut lookup: impl FnMut(&str) -> Option<S>) -> String {
    let mut out = String::with_capacity(template.len());
    for token in (Scanner { src: template, pos: 0 }) {
        match token {
            Token::Text(text) => out.push_str(text),
            Token::Escape => out.push('$'),
            Token::Reference(reference) => {
                if let Some(value) = lookup(reference.name) {
                    out.push_str(value.as_ref());
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Maps and tags
// ---------------------------------------------------------------------------------------------------------------

/// Validates a user substitution map with the default [`Limits`]; see [`validate_map_with`].
pub fn validate_map<'a>(map: impl IntoIterator<Item = (&'a str, &'a str)>, origin: Origin) -> Vec<SubstError> {
    validate_map_with(map, origin, &Limits::default())
}

/// Validates a user substitution map: entry count, then per key its length, its format (user format, or from
/// the flag an overridable built-in) and its value's length. Returns every problem, at most one per key.
pub fn validate_map_with<'a>(
    map: impl IntoIterator<Item = (&'a str, &'a str)>,
    origin: Origin,
    limits: &Limits,
) -> Vec<SubstError> {
    let mut problems = Vec::new();
    let mut count = 0;
    for (key, value) in map {
        count += 1;
        if let Some(problem) = entry_problem(key, value, origin, limits) {
            problems.push(problem);
        }
    }
    if count > limits.max_entries {
        problems.insert(0, SubstError::TooManySubstitutions { count, max: limits.max_entries });
    }
    problems
}

fn entry_problem(key: &str, value: &str, origin: Origin, limits: &Limits) -> Option<SubstError> {
    if key.len() > limits.max_key_bytes {
        return Some(SubstError::KeyTooLong { key: key.to_owned(), max: limits.max_key_bytes });
    }
    // No source may set a built-in, not even the user-format `_HEAD_BRANCH`, …: `COMMIT_SHA` names
    // the images and the tags promotion trusts, so an override would write another commit's names
    // (THREATS property 3). Cloud Build refuses them the same way ("invalid substitution key").
    // (In the file a non-user-format built-in is reported as a bad key, as the local runner does.)
    if is_builtin(key) && (origin == Origin::Flag || is_user_key(key)) {
        return Some(SubstError::BuiltinNotOverridable(key.to_owned()));
    }
    if !is_user_key(key) {
        return Some(SubstError::InvalidKeyFormat { key: key.to_owned(), origin });
    }
    (value.len() > limits.max_value_bytes).then(|| SubstError::ValueTooLong {
        key: key.to_owned(),
        len: value.len(),
        max: limits.max_value_bytes,
    })
}

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

// ---------------------------------------------------------------------------------------------------------------
// The resolved context of a build
// ---------------------------------------------------------------------------------------------------------------

/// The substitutions of one build: built-in values plus the user map (user values win), with user values already
/// resolved when dynamic substitutions are on.
#[derive(Debug, Clone)]
pub struct Substitutions {
    /// Every name → value; a user value replaces a built-in of the same name.
    values: BTreeMap<String, String>,
    /// Keys of the user map: the ones MUST_MATCH wants to see referenced.
    user_keys: BTreeSet<String>,
    /// Names the caller supplied as built-ins (they count as known even if not in [`BUILTINS`]).
    builtin_keys: BTreeSet<String>,
    /// Dynamic only: user key → user keys its raw value refers to. Using a key uses those too.
    dependencies: BTreeMap<String, BTreeSet<String>>,
    dynamic: bool,
}

/// One use of a name in a template, as seen by [`Substitutions::check`].
struct Use<'t> {
    name: &'t str,
    /// Used only through an operator that supplies a value when the name is unset (`:-`, `+`, …).
    defaulted: bool,
}

impl Substitutions {
    /// `builtins`: values from the source (`COMMIT_SHA`…); `user`: the merged file + flag user map (flag values
    /// already won); `dynamic`: `options.dynamicSubstitutions`. With `dynamic`, user values may refer to other
    /// substitutions and use bash parameter expansion; they are resolved here, each after the values it refers to,
    /// and a cycle is an error. A resolved value longer than the value limit is an error too, as in
    /// cloud-build-local (and it keeps later pattern operations cheap). Built-in values are never expanded.
    pub fn new(
        builtins: BTreeMap<String, String>,
        user: BTreeMap<String, String>,
        dynamic: bool,
    ) -> Result<Self, SubstError> {
        let builtin_keys: BTreeSet<String> = builtins.keys().cloned().collect();
        let user_keys: BTreeSet<String> = user.keys().cloned().collect();
        let (user, dependencies) = if dynamic { resolve(&builtins, &user)? } else { (user, BTreeMap::new()) };
        let mut values = builtins;
        values.extend(user);
        Ok(Self { values, user_keys, builtin_keys, dependencies, dynamic })
    }

    /// Checks a set of templates (every substituted field of the build), each tagged with a caller location.
    /// Returns every problem: a user-format key referenced but not defined (MUST_MATCH; at the first template
    /// referencing it), a map key never referenced (MUST_MATCH; no location), a reference that is neither a user
    /// key nor a built-in (both modes). With dynamic substitutions, names inside `${NAME<op>…}` count as uses,
    /// a name used only with an operator that supplies a value (`:-`, `-`, `:=`, `=`, `:+`, `+`) is not missing,
    /// a key used by a used value is used, and a template that does not parse is a problem of its own.
    pub fn check<'t, L: Clone>(
        &self,
        templates: impl IntoIterator<Item = (L, &'t str)>,
        mode: Mode,
    ) -> Vec<Problem<L>> {
        let mut problems = Vec::new();
        let mut used = BTreeSet::new();
        let mut reported = BTreeSet::new();
        for (location, template) in templates {
            let uses = match self.uses(template) {
                Ok(uses) => uses,
                Err(kind) => {
                    problems.push(Problem { kind, location: Some(location) });
                    continue;
                }
            };
            for found in uses {
                if let Some(key) = self.user_keys.get(found.name) {
                    used.insert(key.as_str());
                } else if let Some(kind) = self.reference_problem(&found, mode) {
                    // One report per name, at its first offending template.
                    if reported.insert(found.name.to_owned()) {
                        problems.push(Problem { kind, location: Some(location.clone()) });
                    }
                }
            }
        }
        if mode == Mode::MustMatch {
            let used = self.with_dependencies(used);
            problems.extend(
                self.user_keys
                    .iter()
                    .filter(|key| !used.contains(key.as_str()))
                    .map(|key| Problem { kind: SubstError::UnusedInTemplate(key.clone()), location: None }),
            );
        }
        problems
    }

    /// Applies the substitutions to one template, with the grammar the build uses.
    pub fn apply(&self, template: &str) -> Result<String, SubstError> {
        if !self.dynamic {
            return Ok(expand(template, |name| self.get(name)));
        }
        let pieces = dynamic::parse(template, &|name: &str| self.is_substitution_name(name))?;
        dynamic::evaluate(&pieces, &self.values)
    }

    /// Every name → value pair, built-ins and user values, sorted by name (for `automapSubstitutions` and the
    /// build record).
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The value of one substitution; `None` if nothing set it (an unset built-in expands to `""`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether dynamic `${NAME…}` forms with this name are ours rather than the shell's.
    fn is_substitution_name(&self, name: &str) -> bool {
        is_user_key(name) || is_builtin(name) || self.values.contains_key(name)
    }

    fn is_known_builtin(&self, name: &str) -> bool {
        is_builtin(name) || self.builtin_keys.contains(name)
    }

    fn uses<'t>(&self, template: &'t str) -> Result<Vec<Use<'t>>, SubstError> {
        if !self.dynamic {
            return Ok(references(template)
                .into_iter()
                .map(|reference| Use { name: reference.name, defaulted: false })
                .collect());
        }
        let pieces = dynamic::parse(template, &|name: &str| self.is_substitution_name(name))?;
        let mut uses = Vec::new();
        dynamic::collect_uses(&pieces, &mut uses);
        Ok(uses)
    }

    /// The problem with a use of a name that is not in the user map, if any.
    fn reference_problem(&self, found: &Use<'_>, mode: Mode) -> Option<SubstError> {
        if self.is_known_builtin(found.name) {
            // A built-in without a value is fine: it expands to "".
            None
        } else if is_user_key(found.name) {
            (mode == Mode::MustMatch && !found.defaulted).then(|| SubstError::MissingInMap(found.name.to_owned()))
        } else {
            Some(SubstError::InvalidBuiltin(found.name.to_owned()))
        }
    }

    /// `used` plus, transitively, the user keys their values refer to (only non-empty with dynamic substitutions).
    fn with_dependencies<'s>(&'s self, used: BTreeSet<&'s str>) -> BTreeSet<&'s str> {
        let mut closure = BTreeSet::new();
        let mut pending: Vec<&str> = used.into_iter().collect();
        while let Some(key) = pending.pop() {
            if closure.insert(key)
                && let Some(dependencies) = self.dependencies.get(key)
            {
                pending.extend(dependencies.iter().map(String::as_str));
            }
        }
        closure
    }
}

/// Something that knows the values of substitutions (set ones only; `None` = unset).
trait Lookup {
    fn value(&self, name: &str) -> Option<&str>;
}

impl Lookup for BTreeMap<String, String> {
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Resolved user values over built-ins: the view user values are resolved against.
struct Layered<'a> {
    top: &'a BTreeMap<String, String>,
    base: &'a BTreeMap<String, String>,
}

impl Lookup for Layered<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.top.get(name).or_else(|| self.base.get(name)).map(String::as_str)
    }
}

type Resolved = (BTreeMap<String, String>, BTreeMap<String, BTreeSet<String>>);

/// Dynamic substitutions: evaluates every user value once, after the user values it refers to, against the
/// built-ins and the already resolved values. Returns the resolved values and the dependency graph.
fn resolve(builtins: &BTreeMap<String, String>, user: &BTreeMap<String, String>) -> Result<Resolved, SubstError> {
    let is_name =
        |name: &str| is_user_key(name) || is_builtin(name) || builtins.contains_key(name) || user.contains_key(name);
    let in_value = |key: &str, error: SubstError| SubstError::InValue { key: key.to_owned(), error: Box::new(error) };
    let mut parsed = BTreeMap::new();
    let mut dependencies = BTreeMap::new();
    for (key, raw) in user {
        let pieces = dynamic::parse(raw, &is_name).map_err(|e| in_value(key, e))?;
        let mut uses = Vec::new();
        dynamic::collect_uses(&pieces, &mut uses);
        let refers_to: BTreeSet<String> =
            uses.iter().filter(|found| user.contains_key(found.name)).map(|found| found.name.to_owned()).collect();
        dependencies.insert(key.clone(), refers_to);
        parsed.insert(key.as_str(), pieces);
    }
    let max = Limits::default().max_value_bytes;
    let mut resolved = BTreeMap::new();
    for key in evaluation_order(&dependencies)? {
        let Some(pieces) = parsed.get(key.as_str()) else {
            continue;
        };
        let view = Layered { top: &resolved, base: builtins };
        let value = dynamic::evaluate(pieces, &view).map_err(|e| in_value(&key, e))?;
        if value.len() > max {
            return Err(SubstError::ValueTooLong { key, len: value.len(), max });
        }
        resolved.insert(key, value);
    }
    Ok((resolved, dependencies))
}

/// A topological order of the keys (dependencies first), or the first cycle found.
fn evaluation_order(dependencies: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<String>, SubstError> {
    // Kahn's algorithm; iterative so that long chains cannot exhaust the stack.
    let mut waiting_on: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, refers_to) in dependencies {
        waiting_on.insert(key, refers_to.len());
        for dependency in refers_to {
            dependents.entry(dependency.as_str()).or_default().push(key);
        }
    }
    let mut ready: VecDeque<&str> = waiting_on.iter().filter(|(_, n)| **n == 0).map(|(k, _)| *k).collect();
    let mut order = Vec::with_capacity(dependencies.len());
    while let Some(key) = ready.pop_front() {
        order.push(key.to_owned());
        for dependent in dependents.get(key).into_iter().flatten() {
            if let Some(count) = waiting_on.get_mut(dependent) {
                *count -= 1;
                if *count == 0 {
                    ready.push_back(dependent);
                }
            }
        }
    }
    if order.len() == dependencies.len() {
        return Ok(order);
    }
    let unresolved: BTreeSet<&str> = waiting_on.into_iter().filter(|(_, n)| *n > 0).map(|(k, _)| k).collect();
    Err(SubstError::Cycle(find_cycle(dependencies, &unresolved)))
}

/// A cycle among `unresolved`, each of which waits on at least one other member (that is why Kahn's algorithm
/// left it), so walking "some unresolved dependency" from any member must come back to a visited key.
fn find_cycle(dependencies: &BTreeMap<String, BTreeSet<String>>, unresolved: &BTreeSet<&str>) -> Vec<String> {
    let mut path: Vec<&str> = Vec::new();
    let mut current = unresolved.first().copied();
    while let Some(key) = current {
        if let Some(start) = path.iter().position(|k| *k == key) {
            let mut cycle: Vec<String> = path[start..].iter().map(|k| (*k).to_owned()).collect();
            cycle.push(key.to_owned());
            return cycle;
        }
        path.push(key);
        current = dependencies
            .get(key)
            .and_then(|refers_to| refers_to.iter().map(String::as_str).find(|d| unresolved.contains(d)));
    }
    // Unreachable by the argument above; report the keys involved rather than panic.
    path.into_iter().map(str::to_owned).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// The dynamic grammar (cloudbuild.md §5.7)
// ---------------------------------------------------------------------------------------------------------------

/// Bash-style parameter expansion, parsed into a small tree so that checking and applying see the same thing.
///
/// Grammar, on top of the non-dynamic one (`$$`, `$NAME`, `${NAME}` keep their meaning, so `${HOME}` is still
/// a reference and still an invalid built-in: every plain reference stays one in dynamic mode):
/// * `${NAME<op>…}` where NAME is a substitution name (user format, built-in, or set) is an expression, with
///   bash's semantics for the operators listed on [`Op`];
/// * any other `${…}` (a shell variable, `${!x}`, `${1}`, lower case…) belongs to the shell and is left as is,
///   except that substitution references inside it are still expanded, as the non-dynamic grammar would;
/// * inside operator words `\c` stands for `c` (and for a literal `c` in patterns), `${` nests and the first
///   `}` at nesting level 0 closes. Quotes are ordinary characters. Outside braces backslash is not special.
///
/// Deliberate differences from bash: `:=`/`=` do not assign (values are fixed once resolved); `&` in a
/// replacement is literal (bash 5.2's `patsub_replacement`); offsets are integer constants, not arithmetic;
/// `[!]]` matches any character but `]` as POSIX says (bash's pattern substitution matches nothing with it).
mod dynamic {
    use super::{Lookup, MAX_EXPANSION_BYTES, MAX_NESTING, SubstError, Use, is_reference_name, reference_name_len};

    #[derive(Debug)]
    pub(super) enum Piece<'t> {
        Text(&'t str),
        /// `\c` inside braces.
        Escaped(char),
        /// `$$`.
        Dollar,
        /// `$NAME` or `${NAME}`.
        Ref(&'t str),
        Expr(Box<Expr<'t>>),
        /// A `${…}` that is not ours, re-emitted as `${`, body, and `}` if it had one.
        Shell {
            body: Vec<Piece<'t>>,
            closed: bool,
        },
    }

    #[derive(Debug)]
    pub(super) struct Expr<'t> {
        name: &'t str,
        op: Op<'t>,
        /// The whole `${…}`, for error messages.
        text: &'t str,
    }

    type Word<'t> = Vec<Piece<'t>>;

    #[derive(Debug)]
    enum Op<'t> {
        /// `${#V}`
        Length,
        /// `${V:-w}`, `${V-w}`, and `${V:=w}`, `${V=w}` (which cannot assign here, so they only substitute).
        Default { word: Word<'t>, null_too: bool },
        /// `${V:+w}`, `${V+w}`
        Alternate { word: Word<'t>, null_too: bool },
        /// `${V:?w}`, `${V?w}`
        Required { word: Word<'t>, null_too: bool },
        /// `${V:off}`, `${V:off:len}`
        Substring { offset: i64, length: Option<i64> },
        /// `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`
        Trim { pattern: Word<'t>, suffix: bool, longest: bool },
        /// `${V/p/r}`, `${V//p/r}`, `${V/#p/r}`, `${V/%p/r}`
        Replace { pattern: Word<'t>, replacement: Word<'t>, anchor: Anchor },
        /// `${V^p}`, `${V^^p}`, `${V,p}`, `${V,,p}` (an empty pattern means every character)
        Case { pattern: Word<'t>, upper: bool, all: bool },
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Anchor {
        First,
        All,
        Start,
        End,
    }

    impl<'t> Op<'t> {
        /// Whether the operator yields a value of its own when the name is unset (so an unset name is no error).
        fn supplies_value(&self) -> bool {
            matches!(self, Op::Default { .. } | Op::Alternate { .. })
        }

        /// The words the operator carries, for finding the names they use.
        fn words(&self) -> Vec<&Word<'t>> {
            match self {
                Op::Length | Op::Substring { .. } => Vec::new(),
                Op::Default { word, .. } | Op::Alternate { word, .. } | Op::Required { word, .. } => vec![word],
                Op::Trim { pattern, .. } | Op::Case { pattern, .. } => vec![pattern],
                Op::Replace { pattern, replacement, .. } => vec![pattern, replacement],
            }
        }
    }

    /// Where a run of pieces ends and what backslash means there.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ctx {
        /// The template itself: runs to the end; backslash is an ordinary character.
        Top,
        /// An operator word: ends at `}`; backslash escapes.
        Word,
        /// The pattern of `${V/p/r}`: ends at `/` or `}`; backslash escapes.
        Pattern,
        /// The body of a shell `${…}`: ends at `}`; `\c` is kept verbatim for the shell.
        Shell,
    }

    impl Ctx {
        fn ends_at(self, byte: u8) -> bool {
            match self {
                Ctx::Top => false,
                Ctx::Word | Ctx::Shell => byte == b'}',
                Ctx::Pattern => byte == b'}' || byte == b'/',
            }
        }

        fn is_special(self, byte: u8) -> bool {
            byte == b'$' || (byte == b'\\' && self != Ctx::Top) || self.ends_at(byte)
        }
    }

    /// Parses a template. `is_name` tells substitution names (whose `${NAME…}` forms are ours) from others.
    pub(super) fn parse<'t>(src: &'t str, is_name: &dyn Fn(&str) -> bool) -> Result<Vec<Piece<'t>>, SubstError> {
        let mut parser = Parser { src, pos: 0, depth: 0, is_name };
        parser.pieces(Ctx::Top)
    }

    struct Parser<'t, 'n> {
        src: &'t str,
        /// Byte offset; only ever moved past ASCII delimiters or whole chars, so always a char boundary.
        pos: usize,
        depth: usize,
        is_name: &'n dyn Fn(&str) -> bool,
    }

    impl<'t> Parser<'t, '_> {
        fn rest(&self) -> &'t str {
            self.src.get(self.pos..).unwrap_or("")
        }

        fn peek(&self) -> Option<u8> {
            self.src.as_bytes().get(self.pos).copied()
        }

        fn eat(&mut self, byte: u8) -> bool {
            let found = self.peek() == Some(byte);
            if found {
                self.pos += 1;
            }
            found
        }

        /// Pieces up to the end of the context (not consumed) or of the input.
        fn pieces(&mut self, ctx: Ctx) -> Result<Vec<Piece<'t>>, SubstError> {
            let mut out = Vec::new();
            while let Some(byte) = self.peek() {
                if ctx.ends_at(byte) {
                    break;
                }
                let piece = match byte {
                    b'$' => self.dollar()?,
                    b'\\' if ctx != Ctx::Top => self.backslash(ctx),
                    _ => self.text(ctx),
                };
                out.push(piece);
            }
            Ok(out)
        }

        /// A run of ordinary text; the current byte is known not to be special in `ctx`.
        fn text(&mut self, ctx: Ctx) -> Piece<'t> {
            let rest = self.rest();
            let len = rest.bytes().skip(1).position(|b| ctx.is_special(b)).map_or(rest.len(), |i| i + 1);
            // `len` is the index of an ASCII byte or the end, so a char boundary.
            self.pos += len;
            Piece::Text(&rest[..len])
        }

        fn backslash(&mut self, ctx: Ctx) -> Piece<'t> {
            let rest = self.rest();
            let Some(escaped) = rest[1..].chars().next() else {
                self.pos += 1;
                return Piece::Text("\\");
            };
            let len = 1 + escaped.len_utf8();
            self.pos += len;
            if ctx == Ctx::Shell { Piece::Text(&rest[..len]) } else { Piece::Escaped(escaped) }
        }

        /// At a `$`.
        fn dollar(&mut self) -> Result<Piece<'t>, SubstError> {
            let rest = self.rest();
            match rest.as_bytes().get(1) {
                Some(b'$') => {
                    self.pos += 2;
                    Ok(Piece::Dollar)
                }
                Some(b'{') => self.braced(),
                _ => {
                    let len = reference_name_len(&rest[1..]);
                    self.pos += 1 + len;
                    Ok(if len > 0 { Piece::Ref(&rest[1..=len]) } else { Piece::Text("$") })
                }
            }
        }

        /// At a `${`.
        fn braced(&mut self) -> Result<Piece<'t>, SubstError> {
            let start = self.pos;
            if self.depth >= MAX_NESTING {
                return Err(self.bad(start, format!("nested deeper than {MAX_NESTING} levels")));
            }
            self.depth += 1;
            let piece = self.braced_body(start);
            self.depth -= 1;
            piece
        }

        fn braced_body(&mut self, start: usize) -> Result<Piece<'t>, SubstError> {
            self.pos = start + 2;
            if self.eat(b'#') {
                let name = self.name();
                if name.is_empty() || !(self.is_name)(name) {
                    return self.shell(start);
                }
                if !self.eat(b'}') {
                    return Err(self.bad(start, "`${#NAME}` takes no operator".to_owned()));
                }
                return Ok(self.expr(start, name, Op::Length));
            }
            let name = self.name();
            let known = !name.is_empty() && (self.is_name)(name);
            // `${NAME}` is a reference in both grammars, known or not: dynamic mode extends the plain grammar.
            if self.peek() == Some(b'}') && (known || is_reference_name(name)) {
                self.pos += 1;
                return Ok(Piece::Ref(name));
            }
            if !known {
                return self.shell(start);
            }
            let op = self.operator(start)?;
            Ok(self.expr(start, name, op))
        }

        fn expr(&self, start: usize, name: &'t str, op: Op<'t>) -> Piece<'t> {
            let text = self.src.get(start..self.pos).unwrap_or("");
            Piece::Expr(Box::new(Expr { name, op, text }))
        }

        /// A bash name (`[A-Za-z_][A-Za-z0-9_]*`) at the cursor, consumed.
        fn name(&mut self) -> &'t str {
            let rest = self.rest();
            let bytes = rest.as_bytes();
            let len = match bytes.first() {
                Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                    1 + bytes[1..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count()
                }
                _ => 0,
            };
            self.pos += len;
            &rest[..len]
        }

        /// A `${…}` that is not ours, from just after its `${`.
        fn shell(&mut self, start: usize) -> Result<Piece<'t>, SubstError> {
            self.pos = start + 2;
            let body = self.pieces(Ctx::Shell)?;
            let closed = self.eat(b'}');
            Ok(Piece::Shell { body, closed })
        }

        /// The operator after `${NAME`, through the closing `}`.
        fn operator(&mut self, start: usize) -> Result<Op<'t>, SubstError> {
            let Some(byte) = self.peek() else {
                return Err(self.bad(start, "missing `}`".to_owned()));
            };
            self.pos += 1;
            match byte {
                b':' => {
                    let Some(next) = self.peek().filter(|b| b"-=+?".contains(b)) else {
                        return self.substring(start);
                    };
                    self.pos += 1;
                    self.defaulting(start, next, true)
                }
                b'-' | b'=' | b'+' | b'?' => self.defaulting(start, byte, false),
                b'#' | b'%' => {
                    let longest = self.eat(byte);
                    let pattern = self.word(start)?;
                    Ok(Op::Trim { pattern, suffix: byte == b'%', longest })
                }
                b'/' => self.replace(start),
                b'^' | b',' => {
                    let all = self.eat(byte);
                    let pattern = self.word(start)?;
                    Ok(Op::Case { pattern, upper: byte == b'^', all })
                }
                _ => Err(self.bad(start, "unsupported operator".to_owned())),
            }
        }

        fn defaulting(&mut self, start: usize, op: u8, null_too: bool) -> Result<Op<'t>, SubstError> {
            let word = self.word(start)?;
            Ok(match op {
                b'+' => Op::Alternate { word, null_too },
                b'?' => Op::Required { word, null_too },
                _ => Op::Default { word, null_too },
            })
        }

        fn replace(&mut self, start: usize) -> Result<Op<'t>, SubstError> {
            let anchor = if self.eat(b'/') {
                Anchor::All
            } else if self.eat(b'#') {
                Anchor::Start
            } else if self.eat(b'%') {
                Anchor::End
            } else {
                Anchor::First
            };
            let mut pattern = Vec::new();
            // bash: in `${V///…}` the third slash starts the pattern rather than ending it.
            if anchor == Anchor::All && self.eat(b'/') {
                pattern.push(Piece::Text("/"));
            }
            pattern.extend(self.pieces(Ctx::Pattern)?);
            let replacement = if self.eat(b'/') { self.pieces(Ctx::Word)? } else { Vec::new() };
            self.close(start)?;
            Ok(Op::Replace { pattern, replacement, anchor })
        }

        /// `${V:off}` / `${V:off:len}`, from just after the `:`. Offsets are integer constants (bash would take
        /// any arithmetic expression; nothing more is needed for substitutions and it keeps this total).
        fn substring(&mut self, start: usize) -> Result<Op<'t>, SubstError> {
            let rest = self.rest();
            let Some(end) = rest.find([':', '}']) else {
                return Err(self.bad(start, "missing `}`".to_owned()));
            };
            if end == 0 && rest.starts_with('}') {
                return Err(self.bad(start, "missing offset".to_owned()));
            }
            let offset = arithmetic(&rest[..end]).map_err(|reason| self.bad(start, reason))?;
            self.pos += end;
            let length = if self.eat(b':') {
                let rest = self.rest();
                let Some(end) = rest.find('}') else {
                    return Err(self.bad(start, "missing `}`".to_owned()));
                };
                let length = arithmetic(&rest[..end]).map_err(|reason| self.bad(start, reason))?;
                self.pos += end;
                Some(length)
            } else {
                None
            };
            self.close(start)?;
            Ok(Op::Substring { offset, length })
        }

        /// An operator word through its closing `}`.
        fn word(&mut self, start: usize) -> Result<Word<'t>, SubstError> {
            let word = self.pieces(Ctx::Word)?;
            self.close(start)?;
            Ok(word)
        }

        fn close(&mut self, start: usize) -> Result<(), SubstError> {
            if self.eat(b'}') { Ok(()) } else { Err(self.bad(start, "missing `}`".to_owned())) }
        }

        /// An error about the expression starting at `start`, quoting it up to its likely end.
        fn bad(&self, start: usize, reason: String) -> SubstError {
            let rest = self.src.get(start..).unwrap_or("");
            let end = rest.find('}').map_or(rest.len(), |i| i + 1);
            SubstError::BadSubstitution { expr: super::shorten(&rest[..end]), reason }
        }
    }

    /// An integer constant as bash reads one in `${V:off:len}`: optional parentheses and sign, then decimal,
    /// `0x` hexadecimal or `0` octal digits. Empty means 0.
    fn arithmetic(text: &str) -> Result<i64, String> {
        let mut t = text.trim();
        while let Some(inner) = t.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
            t = inner.trim();
        }
        if t.is_empty() {
            return Ok(0);
        }
        let (negative, digits) = match t.strip_prefix('-') {
            Some(digits) => (true, digits.trim_start()),
            None => (false, t.strip_prefix('+').unwrap_or(t).trim_start()),
        };
        let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
            (16, hex)
        } else if digits.len() > 1 && digits.starts_with('0') {
            (8, &digits[1..])
        } else {
            (10, digits)
        };
        let unsupported = || format!("`{}` is not an integer", text.trim());
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unsupported());
        }
        let value = i64::from_str_radix(digits, radix).map_err(|_| unsupported())?;
        Ok(if negative { -value } else { value })
    }

    /// Names used by the pieces, in order, including inside operator words and shell bodies.
    pub(super) fn collect_uses<'t>(pieces: &[Piece<'t>], out: &mut Vec<Use<'t>>) {
        for piece in pieces {
            match piece {
                Piece::Text(_) | Piece::Escaped(_) | Piece::Dollar => {}
                Piece::Ref(name) => out.push(Use { name, defaulted: false }),
                Piece::Shell { body, .. } => collect_uses(body, out),
                Piece::Expr(expr) => {
                    out.push(Use { name: expr.name, defaulted: expr.op.supplies_value() });
                    for word in expr.op.words() {
                        collect_uses(word, out);
                    }
                }
            }
        }
    }

    /// Evaluates parsed pieces. Unset names expand to `""`; words are only evaluated when bash would.
    pub(super) fn evaluate(pieces: &[Piece<'_>], vars: &dyn Lookup) -> Result<String, SubstError> {
        let mut out = String::new();
        append(pieces, vars, false, &mut out)?;
        Ok(out)
    }

    /// Appends the expansion of `pieces` to `out`. In a pattern (`as_pattern`), escaped characters keep a
    /// backslash so that the glob compiler takes them literally.
    fn append(pieces: &[Piece<'_>], vars: &dyn Lookup, as_pattern: bool, out: &mut String) -> Result<(), SubstError> {
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Escaped(c) => {
                    if as_pattern {
                        out.push('\\');
                    }
                    out.push(*c);
                }
                Piece::Dollar => out.push('$'),
                Piece::Ref(name) => out.push_str(vars.value(name).unwrap_or("")),
                Piece::Shell { body, closed } => {
                    out.push_str("${");
                    append(body, vars, as_pattern, out)?;
                    if *closed {
                        out.push('}');
                    }
                }
                Piece::Expr(expr) => expr.append(vars, out)?,
            }
            check_size(out)?;
        }
        Ok(())
    }

    fn check_size(out: &str) -> Result<(), SubstError> {
        if out.len() > MAX_EXPANSION_BYTES {
            return Err(SubstError::BadSubstitution {
                expr: super::shorten(out),
                reason: format!("expansion longer than {MAX_EXPANSION_BYTES} bytes"),
            });
        }
        Ok(())
    }

    fn word_text(word: &Word<'_>, vars: &dyn Lookup, as_pattern: bool) -> Result<String, SubstError> {
        let mut out = String::new();
        append(word, vars, as_pattern, &mut out)?;
        Ok(out)
    }

    impl Expr<'_> {
        fn append(&self, vars: &dyn Lookup, out: &mut String) -> Result<(), SubstError> {
            let value = vars.value(self.name);
            let text = value.unwrap_or("");
            let missing = |null_too: bool| value.is_none() || (null_too && text.is_empty());
            match &self.op {
                // bash leaves an unset parameter alone here: no `${V/#/prefix}` insertion, no range error.
                Op::Replace { .. } | Op::Substring { .. } if value.is_none() => {}
                Op::Length => out.push_str(&text.chars().count().to_string()),
                Op::Default { word, null_too } => {
                    if missing(*null_too) {
                        append(word, vars, false, out)?;
                    } else {
                        out.push_str(text);
                    }
                }
                Op::Alternate { word, null_too } => {
                    if !missing(*null_too) {
                        append(word, vars, false, out)?;
                    }
                }
                Op::Required { word, null_too } => {
                    if missing(*null_too) {
                        let message = word_text(word, vars, false)?;
                        return Err(SubstError::ParameterNotSet {
                            name: self.name.to_owned(),
                            message: if message.is_empty() { "parameter null or not set".to_owned() } else { message },
                        });
                    }
                    out.push_str(text);
                }
                Op::Substring { offset, length } => match substring(text, *offset, *length) {
                    Some(part) => out.push_str(part),
                    None => {
                        return Err(SubstError::BadSubstitution {
                            expr: super::shorten(self.text),
                            reason: "substring expression < 0".to_owned(),
                        });
                    }
                },
                Op::Trim { pattern, suffix, longest } => {
                    let glob = Glob::new(&word_text(pattern, vars, true)?);
                    out.push_str(trim(text, &glob, *suffix, *longest));
                }
                Op::Replace { pattern, replacement, anchor } => {
                    let pattern = word_text(pattern, vars, true)?;
                    if pattern.is_empty() && matches!(anchor, Anchor::First | Anchor::All) {
                        // bash: an empty pattern matches nothing (anchored ones insert, below).
                        out.push_str(text);
                    } else {
                        let replacement = word_text(replacement, vars, false)?;
                        replace(text, &Glob::new(&pattern), &replacement, *anchor, out)?;
                    }
                }
                Op::Case { pattern, upper, all } => {
                    let pattern = word_text(pattern, vars, true)?;
                    let glob = (!pattern.is_empty()).then(|| Glob::new(&pattern));
                    convert_case(text, glob.as_ref(), *upper, *all, out);
                }
            }
            Ok(())
        }
    }

    /// `${V:offset:length}` in characters, as bash does in a UTF-8 locale; `None` for bash's
    /// "substring expression < 0" (a negative length reaching before the offset).
    fn substring(text: &str, offset: i64, length: Option<i64>) -> Option<&str> {
        let count = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
        let start = if offset < 0 { offset.saturating_add(count) } else { offset };
        if !(0..=count).contains(&start) {
            return Some("");
        }
        let end = match length {
            None => count,
            Some(length) if length < 0 => {
                let end = count.saturating_add(length);
                if end < start {
                    return None;
                }
                end
            }
            Some(length) => start.saturating_add(length).min(count),
        };
        let at = |chars: i64| byte_offset(text, usize::try_from(chars).unwrap_or(usize::MAX));
        text.get(at(start)..at(end))
    }

    fn trim<'v>(text: &'v str, glob: &Glob, suffix: bool, longest: bool) -> &'v str {
        let chars: Vec<char> = text.chars().collect();
        if suffix {
            let reversed: Vec<char> = chars.iter().rev().copied().collect();
            let lengths = glob.reversed().prefix_matches(&reversed);
            let cut = if longest { lengths.last() } else { lengths.first() };
            cut.map_or(text, |&n| &text[..byte_offset(text, chars.len() - n)])
        } else {
            let lengths = glob.prefix_matches(&chars);
            let cut = if longest { lengths.last() } else { lengths.first() };
            cut.map_or(text, |&n| &text[byte_offset(text, n)..])
        }
    }

    /// Byte offset of the `chars`-th character (the length if there are fewer).
    fn byte_offset(text: &str, chars: usize) -> usize {
        text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i)
    }

    /// Pattern replacement, always with the longest match at a position (bash). `&` in the replacement is a
    /// plain character (bash 5.2's `patsub_replacement` is not emulated; the hosted Go expander has none).
    fn replace(text: &str, glob: &Glob, replacement: &str, anchor: Anchor, out: &mut String) -> Result<(), SubstError> {
        let chars: Vec<char> = text.chars().collect();
        let push_chars = |out: &mut String, part: &[char]| out.extend(part.iter());
        match anchor {
            Anchor::Start => match glob.prefix_matches(&chars).last() {
                Some(&n) => {
                    out.push_str(replacement);
                    push_chars(out, &chars[n..]);
                }
                None => out.push_str(text),
            },
            Anchor::End => {
                let reversed: Vec<char> = chars.iter().rev().copied().collect();
                match glob.reversed().prefix_matches(&reversed).last() {
                    Some(&n) => {
                        push_chars(out, &chars[..chars.len() - n]);
                        out.push_str(replacement);
                    }
                    None => out.push_str(text),
                }
            }
            Anchor::First | Anchor::All => {
                let mut at = 0;
                // An empty value still gets one try, so that `${E/*/x}` gives `x` as in bash.
                while at < chars.len() || chars.is_empty() {
                    let Some(&n) = glob.prefix_matches(&chars[at..]).last() else {
                        // No match here: keep this character (if any) and try the next position.
                        let Some(&c) = chars.get(at) else { break };
                        out.push(c);
                        at += 1;
                        continue;
                    };
                    out.push_str(replacement);
                    // Only `*`s match the empty string, and they match all of a non-empty rest: so an empty
                    // match means the value is empty.
                    if n == 0 {
                        break;
                    }
                    at += n;
                    if anchor == Anchor::First {
                        push_chars(out, &chars[at..]);
                        break;
                    }
                    check_size(out)?;
                }
            }
        }
        check_size(out)
    }

    fn convert_case(text: &str, glob: Option<&Glob>, upper: bool, all: bool, out: &mut String) {
        for (i, c) in text.chars().enumerate() {
            let selected = (all || i == 0) && glob.is_none_or(|g| g.matches(&[c]));
            out.push(if selected { convert_char(c, upper) } else { c });
        }
    }

    /// One-to-one case mapping like C's `towupper`: characters whose mapping is several characters stay.
    fn convert_char(c: char, upper: bool) -> char {
        fn single(mut mapped: impl Iterator<Item = char>) -> Option<char> {
            match (mapped.next(), mapped.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        }
        let mapped = if upper { single(c.to_uppercase()) } else { single(c.to_lowercase()) };
        mapped.unwrap_or(c)
    }

    /// A shell glob (`*`, `?`, `[…]` with `!`/`^`, ranges and `[:class:]`, `\c`), matched by simulating it as
    /// an NFA over characters: linear in the text for a given pattern, no backtracking blow-up.
    #[derive(Debug, Clone)]
    struct Glob {
        tokens: Vec<Token>,
    }

    #[derive(Debug, Clone)]
    enum Token {
        Literal(char),
        AnyChar,
        AnyRun,
        Class { negated: bool, items: Vec<ClassItem> },
    }

    /// A `[:name:]` character class.
    type CharTest = fn(char) -> bool;

    #[derive(Debug, Clone)]
    enum ClassItem {
        Char(char),
        Range(char, char),
        Named(CharTest),
    }

    impl Token {
        fn accepts(&self, c: char) -> bool {
            match self {
                Token::Literal(l) => *l == c,
                Token::AnyChar => true,
                Token::AnyRun => false,
                Token::Class { negated, items } => {
                    let hit = items.iter().any(|item| match item {
                        ClassItem::Char(x) => *x == c,
                        ClassItem::Range(lo, hi) => (*lo..=*hi).contains(&c),
                        ClassItem::Named(test) => test(c),
                    });
                    hit != *negated
                }
            }
        }
    }

    impl Glob {
        fn new(pattern: &str) -> Self {
            let chars: Vec<char> = pattern.chars().collect();
            let mut tokens = Vec::new();
            let mut i = 0;
            while let Some(&c) = chars.get(i) {
                i += 1;
                let token = match c {
                    '\\' => match chars.get(i) {
                        Some(&escaped) => {
                            i += 1;
                            Token::Literal(escaped)
                        }
                        None => Token::Literal('\\'),
                    },
                    '*' if matches!(tokens.last(), Some(Token::AnyRun)) => continue,
                    '*' => Token::AnyRun,
                    '?' => Token::AnyChar,
                    '[' => match parse_class(&chars, i) {
                        Some((class, next)) => {
                            i = next;
                            class
                        }
                        None => Token::Literal('['),
                    },
                    _ => Token::Literal(c),
                };
                tokens.push(token);
            }
            Self { tokens }
        }

        /// The same pattern read backwards, for matching suffixes against a reversed text. Every token matches
        /// one character or a run, so reversing the token list is exact.
        fn reversed(&self) -> Self {
            Self { tokens: self.tokens.iter().rev().cloned().collect() }
        }

        fn matches(&self, text: &[char]) -> bool {
            self.prefix_matches(text).last() == Some(&text.len())
        }

        /// Every `n` (ascending) such that `text[..n]` matches the whole pattern.
        fn prefix_matches(&self, text: &[char]) -> Vec<usize> {
            let end = self.tokens.len();
            let mut states = vec![false; end + 1];
            let mut next = vec![false; end + 1];
            states[0] = true;
            self.skip_runs(&mut states);
            let mut found = Vec::new();
            if states[end] {
                found.push(0);
            }
            for (i, &c) in text.iter().enumerate() {
                next.fill(false);
                for (at, token) in self.tokens.iter().enumerate() {
                    if !states[at] {
                        continue;
                    }
                    if matches!(token, Token::AnyRun) {
                        next[at] = true;
                    } else if token.accepts(c) {
                        next[at + 1] = true;
                    }
                }
                self.skip_runs(&mut next);
                std::mem::swap(&mut states, &mut next);
                if !states.contains(&true) {
                    break;
                }
                if states[end] {
                    found.push(i + 1);
                }
            }
            found
        }

        /// A `*` may match nothing: every state before one also reaches the state after it.
        fn skip_runs(&self, states: &mut [bool]) {
            for (at, token) in self.tokens.iter().enumerate() {
                if states[at] && matches!(token, Token::AnyRun) {
                    states[at + 1] = true;
                }
            }
        }
    }

    /// A bracket expression starting after its `[`; `None` if it is not closed (then `[` is literal).
    fn parse_class(chars: &[char], mut i: usize) -> Option<(Token, usize)> {
        let negated = matches!(chars.get(i), Some('!' | '^'));
        if negated {
            i += 1;
        }
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let c = *chars.get(i)?;
            if c == ']' && !first {
                return Some((Token::Class { negated, items }, i + 1));
            }
            first = false;
            if c == '['
                && chars.get(i + 1) == Some(&':')
                && let Some((test, next)) = named_class(chars, i + 2)
            {
                items.push(ClassItem::Named(test));
                i = next;
                continue;
            }
            let (low, next) = class_char(chars, i)?;
            match (chars.get(next), chars.get(next + 1)) {
                (Some('-'), Some(&high)) if high != ']' => {
                    let (high, after) = class_char(chars, next + 1)?;
                    items.push(ClassItem::Range(low, high));
                    i = after;
                }
                _ => {
                    items.push(ClassItem::Char(low));
                    i = next;
                }
            }
        }
    }

    fn class_char(chars: &[char], i: usize) -> Option<(char, usize)> {
        match *chars.get(i)? {
            '\\' => chars.get(i + 1).map(|&c| (c, i + 2)),
            c => Some((c, i + 1)),
        }
    }

    /// `[:name:]` from just after `[:`.
    fn named_class(chars: &[char], i: usize) -> Option<(CharTest, usize)> {
        let len = chars.get(i..)?.iter().position(|&c| c == ':')?;
        if chars.get(i + len + 1) != Some(&']') {
            return None;
        }
        let name: String = chars[i..i + len].iter().collect();
        let test: CharTest = match name.as_str() {
            "alpha" => char::is_alphabetic,
            "digit" => |c| c.is_ascii_digit(),
            "alnum" => char::is_alphanumeric,
            "upper" => char::is_uppercase,
            "lower" => char::is_lowercase,
            "space" => char::is_whitespace,
            "blank" => |c| c == ' ' || c == '\t',
            "punct" => |c| c.is_ascii_punctuation(),
            "xdigit" => |c| c.is_ascii_hexdigit(),
            "cntrl" => char::is_control,
            "print" => |c| !c.is_control(),
            "graph" => |c| !c.is_control() && !c.is_whitespace(),
            "word" => |c| c.is_alphanumeric() || c == '_',
            _ => return None,
        };
        Some((test, i + len + 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/cloudbuild/substitution-vectors.tsv");

    // -----------------------------------------------------------------------------------------------------------
    // The TSV vectors (cloudbuild.md §12 describes the columns)
    // -----------------------------------------------------------------------------------------------------------

    struct Row {
        line: usize,
        template: String,
        substitutions: String,
        options: String,
        expected: String,
    }

    fn rows() -> Vec<Row> {
        let text = std::fs::read_to_string(VECTORS).expect("the substitution vectors are readable");
        text.lines()
            .enumerate()
            .skip(1)
            .filter(|(_, line)| !line.is_empty())
            .map(|(index, line)| {
                let fields: Vec<&str> = line.split('\t').collect();
                assert_eq!(fields.len(), 4, "line {}: expected 4 tab-separated columns", index + 1);
                Row {
                    line: index + 1,
                    template: fields[0].to_owned(),
                    substitutions: fields[1].to_owned(),
                    options: fields[2].to_owned(),
                    expected: fields[3].to_owned(),
                }
            })
            .collect()
    }

    /// What a row's `options` column asks for.
    #[derive(Debug)]
    enum Action {
        /// Validate (unless `mode` is `None`, i.e. `substitute-only`) and then substitute.
        Expand {
            mode: Option<Mode>,
            dynamic: bool,
        },
        ValidateMap(Origin),
        Tags,
    }

    fn action(options: &str) -> Action {
        let mut mode = Some(Mode::MustMatch); // Cloud Build's default when a row names no mode.
        let mut dynamic = false;
        let mut validate_map = false;
        let mut origin = Origin::Config;
        let mut tags = false;
        for option in options.split(';') {
            if option.starts_with("basis=") {
                break; // free text, always last
            }
            match option.split_once('=') {
                Some(("mode", "MUST_MATCH")) => mode = Some(Mode::MustMatch),
                Some(("mode", "ALLOW_LOOSE")) => mode = Some(Mode::AllowLoose),
                Some(("mode", "substitute-only")) => mode = None,
                Some(("dynamic", value)) => dynamic = value == "true",
                Some(("origin", "config")) => origin = Origin::Config,
                Some(("origin", "flag")) => origin = Origin::Flag,
                None if option == "validate-map" => validate_map = true,
                None if option == "tags" => tags = true,
                _ => panic!("unknown option `{option}` in `{options}`"),
            }
        }
        if validate_map {
            Action::ValidateMap(origin)
        } else if tags {
            Action::Tags
        } else {
            Action::Expand { mode, dynamic }
        }
    }

    /// Expands the generated-input placeholders (`<4001 chars>`, `<_ + 100 chars>`, `<101 distinct _KEYS>`,
    /// `<65 tags>`) into the items they stand for; any other text stands for itself.
    fn expand_placeholder(text: &str) -> Vec<String> {
        let Some(inner) = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else {
            return vec![text.to_owned()];
        };
        let count = |n: &str| -> usize { n.parse().expect("placeholder counts are numbers") };
        match inner.split_whitespace().collect::<Vec<_>>().as_slice() {
            [n, "chars"] => vec!["a".repeat(count(n))],
            ["_", "+", n, "chars"] => vec![format!("_{}", "A".repeat(count(n)))],
            [n, "distinct", "_KEYS"] => (0..count(n)).map(|i| format!("_KEY_{i}")).collect(),
            [n, "tags"] => (0..count(n)).map(|i| format!("tag{i}")).collect(),
            _ => panic!("unknown placeholder `{text}`"),
        }
    }

    fn string_map(json: &Value) -> BTreeMap<String, String> {
        let object = json.as_object().expect("`builtin` and `user` are JSON objects");
        let mut map = BTreeMap::new();
        for (key, value) in object {
            let value = value.as_str().expect("substitution values are strings");
            let value = expand_placeholder(value).concat();
            for key in expand_placeholder(key) {
                map.insert(key, value.clone());
            }
        }
        map
    }

    #[derive(Debug)]
    enum Outcome {
        Text(String),
        Errors(Vec<SubstError>),
        /// The row panicked (in the harness or the module); caught so that every row still gets reported.
        Panicked(String),
    }

    fn run(row: &Row) -> Outcome {
        let substitutions: Value = serde_json::from_str(&row.substitutions).expect("the substitutions column is JSON");
        let builtins = string_map(&substitutions["builtin"]);
        let user = string_map(&substitutions["user"]);
        match action(&row.options) {
            Action::ValidateMap(origin) => {
                let entries = user.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                Outcome::Errors(validate_map(entries, origin))
            }
            Action::Tags => {
                let tags: Vec<String> = serde_json::from_str(&row.template).expect("tag rows hold a JSON list");
                let tags: Vec<String> = tags.iter().flat_map(|t| expand_placeholder(t)).collect();
                let substitutions = Substitutions::new(builtins, user, false).expect("non-dynamic never fails");
                let applied: Result<Vec<String>, SubstError> =
                    tags.iter().map(|tag| substitutions.apply(tag)).collect();
                match applied.and_then(sanitize_tags) {
                    Ok(tags) => Outcome::Text(serde_json::to_string(&tags).expect("strings serialise")),
                    Err(error) => Outcome::Errors(vec![error]),
                }
            }
            Action::Expand { mode, dynamic } => {
                let substitutions = match Substitutions::new(builtins, user, dynamic) {
                    Ok(substitutions) => substitutions,
                    Err(error) => return Outcome::Errors(vec![error]),
                };
                if let Some(mode) = mode {
                    let problems = substitutions.check([(row.line, row.template.as_str())], mode);
                    if !problems.is_empty() {
                        return Outcome::Errors(problems.into_iter().map(|p| p.kind).collect());
                    }
                }
                match substitutions.apply(&row.template) {
                    Ok(text) => Outcome::Text(text),
                    Err(error) => Outcome::Errors(vec![error]),
                }
            }
        }
    }

    /// The TSV's name for an error kind, and the key it is about when the TSV spells one out.
    fn tsv_kind(error: &SubstError) -> (&'static str, Option<&str>) {
        match error {
            SubstError::MissingInMap(key) => ("missing_in_map", Some(key)),
            SubstError::UnusedInTemplate(key) => ("unused_in_template", Some(key)),
            SubstError::InvalidBuiltin(key) => ("invalid_builtin_in_template", Some(key)),
            SubstError::InvalidKeyFormat { .. } => ("invalid_key_format", None),
            SubstError::BuiltinNotOverridable(_) => ("builtin_not_overridable", None),
            SubstError::KeyTooLong { .. } => ("key_too_long", None),
            SubstError::ValueTooLong { .. } => ("value_too_long", None),
            SubstError::TooManySubstitutions { .. } => ("too_many_substitutions", None),
            SubstError::InvalidTag(_) => ("invalid_tag", None),
            SubstError::TooManyTags { .. } => ("too_many_tags", None),
            _ => ("(no TSV kind)", None),
        }
    }

    /// `ERROR:kind(arg)+kind(arg)…`: the errors in that order; `arg` is the key for kinds about a key, and
    /// otherwise a note that the error message must contain (`invalid_key_format(not an overridable built-in)`).
    fn errors_match(errors: &[SubstError], expected: &str) -> bool {
        let items: Vec<&str> = expected.split('+').collect();
        items.len() == errors.len()
            && items.iter().zip(errors).all(|(item, error)| {
                let (kind, argument) = match item.split_once('(') {
                    Some((kind, rest)) => (kind, rest.strip_suffix(')')),
                    None => (*item, None),
                };
                let (actual_kind, key) = tsv_kind(error);
                actual_kind == kind
                    && match (argument, key) {
                        (None, _) => true,
                        (Some(argument), Some(key)) => argument == key,
                        (Some(note), None) => error.to_string().contains(note),
                    }
            })
    }

    fn outcome_matches(outcome: &Outcome, expected: &str, tags: bool) -> bool {
        match (outcome, expected.strip_prefix("ERROR:")) {
            (Outcome::Errors(errors), Some(expected)) => errors_match(errors, expected),
            (Outcome::Errors(errors), None) => expected == "OK" && errors.is_empty(),
            (Outcome::Text(text), None) if tags => {
                serde_json::from_str::<Value>(text).ok() == serde_json::from_str::<Value>(expected).ok()
            }
            (Outcome::Text(text), None) => text == expected,
            (Outcome::Text(_), Some(_)) | (Outcome::Panicked(_), _) => false,
        }
    }

    fn describe(outcome: &Outcome) -> String {
        match outcome {
            Outcome::Text(text) => format!("{text:?}"),
            Outcome::Panicked(message) => format!("PANIC {message}"),
            Outcome::Errors(errors) if errors.is_empty() => "OK".to_owned(),
            Outcome::Errors(errors) => {
                let shown: Vec<String> =
                    errors.iter().map(|e| format!("{}({}): {e}", tsv_kind(e).0, tsv_kind(e).1.unwrap_or(""))).collect();
                format!("ERROR {}", shown.join(" + "))
            }
        }
    }

    /// Vectors whose expectation contradicts the primary sources: (line, expectation as written, expectation
    /// replayed instead, why). An erratum applies only while the row still says what it describes, so a fixed
    /// fixture is replayed as written.
    const ERRATA: &[(usize, &str, &str, &str)] = &[(
        81,
        r#"["repo=my-repo","unchanged"]"#,
        "ERROR:invalid_tag(repo=my-repo)",
        "`=` is outside the tag grammar `^[\\w][\\w.-]{0,127}$` that cloud-build-local's sanitizeBuildTags and \
         the hosted service enforce; the cited cbl test (TestBranch) checks substitution only, never sanitising",
    )];

    fn expectation(row: &Row) -> &str {
        ERRATA
            .iter()
            .find(|(line, written, _, _)| *line == row.line && *written == row.expected)
            .map_or(row.expected.as_str(), |(_, _, replayed, _)| replayed)
    }

    #[test]
    fn tsv_vectors_all_pass() {
        let rows = rows();
        assert_eq!(rows.len(), 85, "the fixture has 85 vectors");
        let failures: Vec<String> = rows
            .iter()
            .filter_map(|row| {
                let outcome = std::panic::catch_unwind(|| run(row)).unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|m| (*m).to_owned()));
                    Outcome::Panicked(message.unwrap_or_default())
                });
                let tags = matches!(action(&row.options), Action::Tags);
                let expected = expectation(row);
                (!outcome_matches(&outcome, expected, tags)).then(|| {
                    format!(
                        "line {}: template {:?} options {:?}\n    expected {:?}\n    got      {}",
                        row.line,
                        row.template,
                        row.options,
                        expected,
                        describe(&outcome)
                    )
                })
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} substitution vectors failed:\n{}",
            failures.len(),
            rows.len(),
            failures.join("\n")
        );
    }

    // -----------------------------------------------------------------------------------------------------------
    // Hand-written cases
    // -----------------------------------------------------------------------------------------------------------

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn dynamic_context() -> Substitutions {
        let builtins = map(&[("PROJECT_ID", "proj"), ("TAG_NAME", "")]);
        let user = map(&[("_V", "abc"), ("_E", ""), ("_X", ""), ("_U", "aBc.Def"), ("_W", "a*c"), ("_T", "é世a")]);
        Substitutions::new(builtins, user, true).expect("a valid dynamic context")
    }

    #[test]
    fn references_report_names_and_ranges() {
        let template = "a$_X-${PROJECT_ID}$$_Y${_Z $ ${lower}$";
        let found: Vec<(&str, &str)> = references(template).into_iter().map(|r| (r.name, &template[r.range])).collect();
        assert_eq!(found, [("_X", "$_X"), ("PROJECT_ID", "${PROJECT_ID}")]);
    }

    #[test]
    fn expand_accepts_borrowed_and_owned_values() {
        let values = map(&[("_A", "1")]);
        assert_eq!(expand("$_A$$_A$_B", |n| values.get(n).map(String::as_str)), "1$_A");
        assert_eq!(expand("${_A}", |n| Some(n.to_lowercase())), "_a");
    }

    /// Each expectation was checked against GNU bash 5.2 with the same values.
    #[test]
    fn dynamic_operators_follow_bash() {
        let context = dynamic_context();
        let cases = [
            ("${_V/*/x}", "x"),
            ("${_E/*/x}", "x"),
            ("${_E//*/x}", "x"),
            ("${_V//?/x}", "xxx"),
            ("${_V//b*/X}", "aX"),
            ("${_V//x*/Y}", "abc"),
            ("${_V::2}", "ab"),
            ("${_V:1:-1}", "b"),
            ("${_V: -2}", "bc"),
            ("${_V:(-2)}", "bc"),
            ("${_V: -5}", ""),
            ("${_V:5}", ""),
            ("${_V:3}", ""),
            ("${_V:1:}", ""),
            ("${_V:0:0}", ""),
            ("${_V:1:100}", "bc"),
            ("${_V:-1}", "abc"),
            ("${_V:01}", "bc"),
            ("${_V:0x1}", "bc"),
            ("${_V:010}", ""),
            ("${_V: +1}", "bc"),
            ("${_V//}", "abc"),
            ("${_V/}", "abc"),
            ("${_V//b}", "ac"),
            ("${_V/#/P}", "Pabc"),
            ("${_V/%/S}", "abcS"),
            ("${_E/#/P}", "P"),
            ("${_V/#a*/Z}", "Z"),
            ("${_V/%*c/Z}", "Z"),
            ("${_V/%b*/Z}", "aZ"),
            ("${_V^^[ab]}", "ABc"),
            ("${_V^}", "Abc"),
            ("${_U,,}", "abc.def"),
            ("${_U^^[[:lower:]]}", "ABC.DEF"),
            ("${_U,,[A-C]}", "abc.Def"),
            ("${_U//[[:punct:]]/_}", "aBc_Def"),
            ("${_V/[ab]/Z}", "Zbc"),
            ("${_V//[^b]/Z}", "ZbZ"),
            ("${_V/\\*/Z}", "abc"),
            ("${_W/\\*/Z}", "aZc"),
            ("${_W#a\\*}", "c"),
            ("${_V#a\\*}", "abc"),
            ("${_V/[/x}", "abc"),
            ("${_V/[]abc]/x}", "xbc"),
            ("${_V#}", "abc"),
            ("${_V##*}", ""),
            ("${_V%%*}", ""),
            ("${_V%*}", "abc"),
            ("${_V#*}", "abc"),
            ("${_V-d}", "abc"),
            ("${_UNSET-d}", "d"),
            ("${_E-d}", ""),
            ("${_E:-d}", "d"),
            ("${_E:=d}", "d"),
            ("${_V:+alt}", "alt"),
            ("${_E+alt}", "alt"),
            ("${_E:+alt}", ""),
            ("${_UNSET+alt}", ""),
            ("${#_V}", "3"),
            ("${#_UNSET}", "0"),
            ("${#_T}", "3"),
            ("${_T:1:1}", "世"),
            ("${_T^^}", "É世A"),
            ("${_T/?/x}", "x世a"),
            ("${_V/b/\\/}", "a/c"),
            ("${_V/b/\\\\}", "a\\c"),
            ("${_V/b/a\\b}", "aabc"),
            ("${_V/\\b/x}", "axc"),
            ("${_X:-{a}b}", "{ab}"),
            ("${_X:-a\\}b}", "a}b"),
            ("${_X:-\\$_V}", "$_V"),
            ("${_X:-$_V}", "abc"),
            ("${_X:-a${_V}b}", "aabcb"),
            ("${_X:-${_UNSET:-${_V}}}", "abc"),
            ("${TAG_NAME:-latest}-${PROJECT_ID^^}", "latest-PROJ"),
            ("${BRANCH_NAME:-main}", "main"),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(template, expected)| match context.apply(template) {
                Ok(actual) if actual == *expected => None,
                other => Some(format!("{template:?}: expected {expected:?}, got {other:?}")),
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn dynamic_leaves_shell_expressions_alone() {
        let context = dynamic_context();
        let cases = [
            (r#"echo "${URL/https:\/\//latest---}""#, r#"echo "${URL/https:\/\//latest---}""#),
            ("${HOME:-/root} ${lower} ${!ref} ${1} ${#} ${ _V}", "${HOME:-/root} ${lower} ${!ref} ${1} ${#} ${ _V}"),
            // Substitutions inside a shell expression are still ours, as in the plain grammar.
            ("${URL:-$_V} ${URL:-${_V}}", "${URL:-abc} ${URL:-abc}"),
            ("$${HOME} $$_V \\$_V ${url", "${HOME} $_V \\abc ${url"),
            ("${url:-${_V:-x}", "${url:-abc"),
        ];
        for (template, expected) in cases {
            assert_eq!(context.apply(template).as_deref(), Ok(expected), "{template}");
        }
    }

    #[test]
    fn dynamic_syntax_and_evaluation_errors() {
        let context = dynamic_context();
        for template in ["${_V:}", "${_V:x}", "${_V@Q}", "${_V", "${_V:-x", "${_V/a", "${_V }", "${#_V:-1}", "${_V:1:2"]
        {
            match context.apply(template) {
                Err(SubstError::BadSubstitution { .. }) => {}
                other => panic!("{template}: expected a bad substitution, got {other:?}"),
            }
        }
        let error = context.apply("${_V:2:-3}").expect_err("negative length before the offset");
        assert_eq!(error.to_string(), "bad substitution `${_V:2:-3}`: substring expression < 0");
        assert_eq!(
            context.apply("${_UNSET:?set it}"),
            Err(SubstError::ParameterNotSet { name: "_UNSET".to_owned(), message: "set it".to_owned() })
        );
        assert_eq!(context.apply("${_E?}").as_deref(), Ok(""));
        let deep = format!("{}x{}", "${_X:-".repeat(40), "}".repeat(40));
        assert!(matches!(context.apply(&deep), Err(SubstError::BadSubstitution { .. })));
        let fine = format!("{}x{}", "${_X:-".repeat(20), "}".repeat(20));
        assert_eq!(context.apply(&fine).as_deref(), Ok("x"));
    }

    #[test]
    fn dynamic_values_resolve_in_dependency_order() {
        let builtins = map(&[("SHORT_SHA", "abc1234"), ("COMMIT_SHA", "abc1234ffff")]);
        let user = map(&[
            ("_A", "${_B}-$_C"),
            ("_B", "${_C^^}"),
            ("_C", "${SHORT_SHA:0:3}"),
            ("_LITERAL", "$$_A"),
            ("COMMIT_SHA", "${COMMIT_SHA}"),
        ]);
        // `COMMIT_SHA` in the user map refers to itself: a cycle, not the built-in.
        assert!(matches!(
            Substitutions::new(builtins.clone(), user.clone(), true),
            Err(SubstError::Cycle(names)) if names == ["COMMIT_SHA", "COMMIT_SHA"]
        ));
        let mut user = user;
        user.remove("COMMIT_SHA");
        let context = Substitutions::new(builtins, user, true).expect("no cycle");
        assert_eq!(context.get("_A"), Some("ABC-abc"));
        assert_eq!(context.get("_LITERAL"), Some("$_A"));
        // Resolved values are not re-scanned when applied.
        assert_eq!(context.apply("$_LITERAL").as_deref(), Ok("$_A"));
        let all: Vec<(&str, &str)> = context.all().collect();
        assert_eq!(all.first(), Some(&("COMMIT_SHA", "abc1234ffff")));
        assert_eq!(all.len(), 6);
    }

    #[test]
    fn dynamic_cycles_are_reported_with_their_path() {
        let user = map(&[("_A", "${_B:-x}"), ("_B", "$_C"), ("_C", "${_D}${_A}"), ("_D", "d")]);
        let error = Substitutions::new(BTreeMap::new(), user, true).expect_err("a cycle");
        assert_eq!(error, SubstError::Cycle(vec!["_A".into(), "_B".into(), "_C".into(), "_A".into()]));
        assert_eq!(error.to_string(), "cycle in evaluating substitutions: `_A` -> `_B` -> `_C` -> `_A`");
        // Non-dynamic maps are never evaluated, so the same map is fine there.
        let user = map(&[("_A", "$_A")]);
        assert!(Substitutions::new(BTreeMap::new(), user, false).is_ok());
    }

    #[test]
    fn dynamic_growth_is_bounded() {
        // Each value doubles the previous one: the resolved value limit stops it.
        let mut user = map(&[("_K0", &"x".repeat(1000))]);
        for i in 1..30 {
            user.insert(format!("_K{i}"), format!("$_K{0}$_K{0}", i - 1));
        }
        assert!(matches!(
            Substitutions::new(BTreeMap::new(), user, true),
            Err(SubstError::ValueTooLong { key, .. }) if key == "_K3"
        ));
        // Nested replacements in a template multiply; the expansion cap stops them.
        let context =
            Substitutions::new(BTreeMap::new(), map(&[("_V", &"v".repeat(4000))]), true).expect("a valid context");
        let template = "${_V//?/${_V//?/${_V//?/x}}}";
        assert!(matches!(context.apply(template), Err(SubstError::BadSubstitution { .. })));
        // A long dependency chain resolves without deep recursion.
        let mut user = map(&[("_C0", "x")]);
        for i in 1..5000 {
            user.insert(format!("_C{i}"), format!("${{_C{}}}", i - 1));
        }
        let context = Substitutions::new(BTreeMap::new(), user, true).expect("a long chain");
        assert_eq!(context.get("_C4999"), Some("x"));
    }

    #[test]
    fn check_reports_every_problem_once_with_its_first_location() {
        let context = Substitutions::new(
            map(&[("PROJECT_ID", "p")]),
            map(&[("_USED", "u"), ("_UNUSED", "x"), ("COMMIT_SHA", "c")]),
            false,
        )
        .expect("non-dynamic never fails");
        let templates = [
            ("args[0]", "$_USED $FOO $_MISSING $COMMIT_SHA"),
            ("args[1]", "$FOO $_MISSING $BAR ${LOCATION} $_PR_NUMBER $$_UNUSED"),
        ];
        let problems = context.check(templates, Mode::MustMatch);
        let found: Vec<(String, Option<&str>)> = problems.iter().map(|p| (p.kind.to_string(), p.location)).collect();
        assert_eq!(
            found,
            [
                ("key in the template `FOO` is not a valid built-in substitution".to_owned(), Some("args[0]")),
                ("key in the template `_MISSING` is not matched in the substitution data".to_owned(), Some("args[0]")),
                ("key in the template `BAR` is not a valid built-in substitution".to_owned(), Some("args[1]")),
                ("key `_UNUSED` in the substitution data is not matched in the template".to_owned(), None),
            ]
        );
        let loose: Vec<String> =
            context.check(templates, Mode::AllowLoose).iter().map(|p| p.kind.to_string()).collect();
        assert_eq!(loose.len(), 2, "{loose:?}");
    }

    #[test]
    fn dynamic_check_counts_operator_uses() {
        let context = Substitutions::new(
            BTreeMap::new(),
            map(&[("_IN_OP", "x"), ("_VIA_VALUE", "v"), ("_HOLDER", "${_VIA_VALUE}")]),
            true,
        )
        .expect("a valid context");
        let templates = [
            ("a", "${_IN_OP//x/y} ${_ABSENT:-d} ${_ABSENT2:+alt} $_HOLDER"),
            ("b", "${_GONE^^} ${#_GONE2} ${HOME:-/} ${_BAD:}"),
        ];
        let found: Vec<(String, Option<&str>)> =
            context.check(templates, Mode::MustMatch).iter().map(|p| (p.kind.to_string(), p.location)).collect();
        assert_eq!(
            found,
            [("bad substitution `${_BAD:}`: missing offset".to_owned(), Some("b"))],
            "a template that does not parse is reported alone"
        );
        let templates = [("a", templates[0].1), ("b", "${_GONE^^} ${#_GONE2} ${HOME:-/}")];
        let found: Vec<String> = context.check(templates, Mode::MustMatch).iter().map(|p| p.kind.to_string()).collect();
        assert_eq!(
            found,
            [
                "key in the template `_GONE` is not matched in the substitution data",
                "key in the template `_GONE2` is not matched in the substitution data",
            ]
        );
    }

    #[test]
    fn validate_map_reports_every_key() {
        let long_key = format!("_{}", "K".repeat(100));
        let long_value = "v".repeat(4001);
        let entries = [
            ("_OK", "fine"),
            ("lower", "x"),
            ("PROJECT_ID", "x"),
            ("BRANCH_NAME", "x"),
            (long_key.as_str(), "x"),
            ("_BIG", long_value.as_str()),
        ];
        let flag: Vec<String> = validate_map(entries, Origin::Flag).iter().map(ToString::to_string).collect();
        assert_eq!(
            flag,
            [
                "substitution key `lower` does not respect format `^_[A-Z0-9_]+$` (built-ins cannot be set either)",
                "built-in substitution `PROJECT_ID` cannot be overridden (valid keys start with `_` and are not \
                 built-ins)",
                "built-in substitution `BRANCH_NAME` cannot be overridden (valid keys start with `_` and are not \
                 built-ins)",
                &format!("substitution key `{long_key}` too long (101 bytes, max: 100)"),
                "substitution value of `_BIG` too long (4001 bytes, max: 4000)",
            ]
        );
        let config = validate_map(entries, Origin::Config);
        assert_eq!(config.len(), 5, "built-ins are not allowed in the file: {config:?}");
        // The user-format built-ins of a pull request are refused too, from every source.
        for origin in [Origin::Config, Origin::Flag] {
            let problems = validate_map([("_HEAD_BRANCH", "main"), ("_PR_NUMBER", "1")], origin);
            assert!(
                problems.iter().all(|p| matches!(p, SubstError::BuiltinNotOverridable(_))) && problems.len() == 2,
                "{problems:?}"
            );
        }
        let limits = Limits { max_entries: 1, ..Limits::default() };
        let counted = validate_map_with([("_A", "1"), ("_B", "2")], Origin::Config, &limits);
        assert_eq!(counted, [SubstError::TooManySubstitutions { count: 2, max: 1 }]);
    }

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

    #[test]
    fn hints_suggest_the_usual_fixes() {
        let hint = |e: SubstError| e.hint().unwrap_or_default();
        assert_eq!(
            hint(SubstError::InvalidBuiltin("FOO".into())),
            "write `$$FOO` to pass a literal `$FOO` to the shell"
        );
        assert!(
            hint(SubstError::InvalidKeyFormat { key: "my-key".into(), origin: Origin::Config })
                .ends_with("e.g. `_MY_KEY`")
        );
        assert!(hint(SubstError::MissingInMap("_X".into())).contains("--substitutions _X=…"));
        assert_eq!(SubstError::Cycle(vec![]).hint(), None);
    }

    /// Fragments garbage is made of: the grammar's special characters and operators, names, multi-byte text.
    const PIECES: &str = r#"$ $ $ { { } } : - + = ? # % / ^ , \ * [ ] ! ( ) _ A _V _E _A _B PROJECT_ID HOME a 0
        1 -3 é 世 🦀 @ ' " [:alpha:] ${_V ${_E ${_X ${# ${url $_V // /# /% :- :+ ## %% ^^ ,, [! [^"#;

    /// A small deterministic generator (xorshift) of garbage strings.
    struct Garbage {
        state: u64,
        pieces: Vec<&'static str>,
    }

    impl Garbage {
        fn new(seed: u64) -> Self {
            let mut pieces: Vec<&str> = PIECES.split_whitespace().collect();
            pieces.extend([" ", "\u{301}"]);
            Self { state: seed, pieces }
        }

        fn below(&mut self, n: usize) -> usize {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            usize::try_from(self.state % n as u64).unwrap_or(0)
        }

        fn string(&mut self) -> String {
            let len = self.below(24);
            (0..len)
                .map(|_| {
                    let index = self.below(self.pieces.len());
                    self.pieces[index]
                })
                .collect()
        }

        fn pick(&mut self, choices: &[&'static str]) -> &'static str {
            choices[self.below(choices.len())]
        }

        /// Text and mostly well-formed `${…}` expressions, nested up to `depth`, sometimes left unclosed.
        fn template(&mut self, depth: usize) -> String {
            const NAMES: &[&str] = &["_V", "_E", "_X", "_UNSET", "TAG_NAME", "HOME", "url", "#_V", "!x"];
            const OPS: &[&str] = &[
                "", ":-", "-", ":=", "=", ":+", "+", ":?", "?", ":", ":1:", ": -2:", "#", "##", "%", "%%", "/", "//",
                "/#", "/%", "^", "^^", ",", ",,", "@",
            ];
            let parts = self.below(4);
            let mut out = String::new();
            for _ in 0..parts {
                if depth > 0 && self.below(2) == 0 {
                    let name = self.pick(NAMES);
                    let op = self.pick(OPS);
                    let word = self.template(depth - 1);
                    let replacement = if op.starts_with('/') && self.below(2) == 0 {
                        format!("/{}", self.template(depth - 1))
                    } else {
                        String::new()
                    };
                    let close = if self.below(8) == 0 { "" } else { "}" };
                    out.push_str(&format!("${{{name}{op}{word}{replacement}{close}"));
                } else {
                    out.push_str(&self.string()[..].chars().take(3).collect::<String>());
                }
            }
            out
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut garbage = Garbage::new(0x9E37_79B9_7F4A_7C15);
        let builtins = map(&[("PROJECT_ID", "p"), ("TAG_NAME", "v1.2.3")]);
        for round in 0..20_000 {
            let template = if round % 2 == 0 { garbage.string() } else { garbage.template(3) };
            let value = garbage.string();
            for reference in references(&template) {
                let text = template.get(reference.range.clone()).expect("ranges are char boundaries");
                assert!(text.starts_with('$') && text.contains(reference.name));
            }
            let _ = expand(&template, |name| Some(name.repeat(2)));
            let _ = validate_map([(template.as_str(), value.as_str())], Origin::Flag);
            let _ = validate_map([(value.as_str(), template.as_str())], Origin::Config);
            let _ = sanitize_tags(vec![template.clone(), String::new(), value.clone(), template.clone()]);
            let user = map(&[("_V", &value), ("_E", ""), ("_A", "${_V:-$_B}"), ("_B", &template)]);
            for dynamic in [false, true] {
                let Ok(context) = Substitutions::new(builtins.clone(), user.clone(), dynamic) else {
                    continue;
                };
                for mode in [Mode::MustMatch, Mode::AllowLoose] {
                    let _ = context.check([((), template.as_str()), ((), value.as_str())], mode);
                }
                let applied = context.apply(&template);
                if !dynamic || !template.contains('{') {
                    // Without braces the dynamic grammar is the plain one.
                    assert_eq!(applied, Ok(expand(&template, |name| context.get(name))), "{template:?}");
                }
                let _ = context.apply(&value);
                let _ = context.all().count();
                let _ = context.get(&template);
            }
        }
    }
}
