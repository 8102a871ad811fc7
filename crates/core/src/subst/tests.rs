//! The substitution vectors of `tests/fixtures/cloudbuild/substitution-vectors.tsv`, replayed through every
//! part of the module, then the hints of [`SubstError`] and a garbage run that must never panic.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/cloudbuild/substitution-vectors.tsv");

// ---------------------------------------------------------------------------------------------------------------
// The TSV vectors (cloudbuild.md §12 describes the columns)
// ---------------------------------------------------------------------------------------------------------------

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
            let applied: Result<Vec<String>, SubstError> = tags.iter().map(|tag| substitutions.apply(tag)).collect();
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

// ---------------------------------------------------------------------------------------------------------------
// Hand-written cases
// ---------------------------------------------------------------------------------------------------------------

/// A substitution map from literal pairs; the tests beside the code use it too.
pub(super) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn hints_suggest_the_usual_fixes() {
    let hint = |e: SubstError| e.hint().unwrap_or_default();
    assert_eq!(hint(SubstError::InvalidBuiltin("FOO".into())), "write `$$FOO` to pass a literal `$FOO` to the shell");
    assert!(
        hint(SubstError::InvalidKeyFormat { key: "my-key".into(), origin: Origin::Config }).ends_with("e.g. `_MY_KEY`")
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
            "", ":-", "-", ":=", "=", ":+", "+", ":?", "?", ":", ":1:", ": -2:", "#", "##", "%", "%%", "/", "//", "/#",
            "/%", "^", "^^", ",", ",,", "@",
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
