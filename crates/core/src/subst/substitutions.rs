//! The resolved context of a build: built-in and user values, checked against and applied to its templates.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{Limits, Mode, Problem, SubstError, dynamic, expand, is_builtin, is_user_key, references};

/// The substitutions of one build: built-in values plus the user map (user values win), with user values already
/// resolved when dynamic substitutions are on.
#[derive(Debug, Clone)]
pub struct Substitutions {
    /// Every name → value; a user value replaces a built-in of the same name.
    values: BTreeMap<String, String>,
    /// Keys of the user map: the ones MUST_MATCH wants to see referenced.
    user_keys: BTreeSet<String>,
    /// Names the caller supplied as built-ins (they count as known even if not in [`BUILTINS`](super::BUILTINS)).
    builtin_keys: BTreeSet<String>,
    /// Dynamic only: user key → user keys its raw value refers to. Using a key uses those too.
    dependencies: BTreeMap<String, BTreeSet<String>>,
    dynamic: bool,
}

/// One use of a name in a template, as seen by [`Substitutions::check`].
pub(super) struct Use<'t> {
    pub(super) name: &'t str,
    /// Used only through an operator that supplies a value when the name is unset (`:-`, `+`, …).
    pub(super) defaulted: bool,
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
pub(super) trait Lookup {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subst::tests::map;

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
}
