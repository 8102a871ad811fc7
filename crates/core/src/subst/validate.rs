//! Substitution keys (the user format, the built-ins) and the validation of user substitution maps.

use super::{Limits, Origin, SubstError};

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
    // (docs/THREATS.md property 3). Cloud Build refuses them the same way ("invalid substitution key").
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
