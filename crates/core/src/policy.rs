//! The rules of an environment and the one engine that checks them (docs/SPEC.md §11). Pure: the caller gathers
//! the facts (the build, the release now in the environment, the history, the approvals) and gets back
//! either "admitted" or every rule that refused, each naming itself and the value it saw.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::plan::{ApprovalRule, Environment, Gate, GateCheck};

/// How a self-declared local identity is named in every record and audit entry it writes.
pub const UNVERIFIED: &str = " (unverified)";

/// What the rules look at about a build.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildFacts {
    pub id: String,
    pub succeeded: bool,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub commit: String,
    /// The commit's author, as `name <email>` parts: any of them identifies the author.
    pub author_name: String,
    pub author_email: String,
    /// Ran untrusted code (a fork's pull request, crates/core/src/trust.rs): never promotable.
    pub untrusted: bool,
    /// The pipeline run's metrics.
    pub metrics: BTreeMap<String, f64>,
}

/// A recorded approval of a build for an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub approver: String,
    #[serde(default)]
    pub comment: String,
}

/// Everything the check needs besides the environment.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    pub build: &'a BuildFacts,
    /// The build now in the environment, if any (for `improves`).
    pub current: Option<&'a BuildFacts>,
    /// Environments the build is or was in.
    pub been_in: &'a [String],
    pub approvals: &'a [Approval],
    /// Who asks for the promotion.
    pub promoter: &'a str,
}

impl<'a> Facts<'a> {
    /// The facts of `build` alone: no release in the environment, no history, no approvals.
    pub fn new(build: &'a BuildFacts) -> Facts<'a> {
        Facts { build, current: None, been_in: &[], approvals: &[], promoter: "" }
    }
}

/// A rule that refused, with what it saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The rule, as written: `gate accuracy >= 0.9`, `approval`, `branches`, `after dev`.
    pub rule: String,
    pub detail: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

/// Checks every rule of `env` for a promotion; `Err` lists every refusal (not just the first).
pub fn check(env: &Environment, facts: &Facts<'_>) -> Result<(), Vec<Refusal>> {
    let mut refusals = Vec::new();
    let b = facts.build;
    let mut refuse = |rule: &str, detail: String| refusals.push(Refusal { rule: rule.into(), detail });
    if !b.succeeded {
        refuse("build succeeded", format!("build {} did not succeed", b.id));
    }
    if b.untrusted {
        refuse(
            "trusted builds only",
            "the build ran untrusted code (a pull request from a fork); it can never be promoted".into(),
        );
    }
    if let Some(detail) = ref_refusal(env, b) {
        refuse("branches", detail);
    }
    if let Some(after) = &env.after
        && !facts.been_in.iter().any(|e| e == after)
    {
        refuse(&format!("after {after}"), format!("build {} has not been in `{after}`", short(&b.id)));
    }
    for gate in &env.gates {
        if let Some(detail) = gate_refusal(gate, b, facts.current) {
            refuse(&format!("gate {gate}"), detail);
        }
    }
    if let Some(rule) = &env.approval
        && let Some(detail) = approval_refusal(rule, b, facts.approvals, facts.promoter)
    {
        refuse("approval", detail);
    }
    if refusals.is_empty() { Ok(()) } else { Err(refusals) }
}

/// Whether an approval by `approver` may count at all (checked when it is given, so a refused one is
/// never recorded).
pub fn may_approve(env: &Environment, build: &BuildFacts, approver: &str) -> Result<(), Refusal> {
    let Some(rule) = &env.approval else {
        return Err(Refusal { rule: "approval".into(), detail: format!("`{}` needs no approval", env.name) });
    };
    if !rule.approvers.is_empty() && !rule.approvers.iter().any(|a| same_person(a, approver)) {
        return Err(Refusal {
            rule: "approvers".into(),
            detail: format!("`{approver}` is not one of the approvers ({})", rule.approvers.join(", ")),
        });
    }
    if rule.prevent_self_approval && is_author(build, approver) {
        return Err(Refusal {
            rule: "no self-approval".into(),
            detail: format!(
                "`{approver}` wrote commit {} and cannot approve it",
                &build.commit[..build.commit.len().min(7)]
            ),
        });
    }
    Ok(())
}

fn ref_refusal(env: &Environment, b: &BuildFacts) -> Option<String> {
    if env.branches.is_empty() && env.tags.is_empty() {
        return None;
    }
    let matches = |patterns: &[String], name: &Option<String>| {
        name.as_ref().is_some_and(|n| patterns.iter().any(|p| regex::Regex::new(p).is_ok_and(|re| re.is_match(n))))
    };
    if matches(&env.branches, &b.branch) || matches(&env.tags, &b.tag) {
        return None;
    }
    let what = match (&b.branch, &b.tag) {
        (Some(branch), _) => format!("branch `{branch}`"),
        (None, Some(tag)) => format!("tag `{tag}`"),
        (None, None) => "a detached commit".to_string(),
    };
    let mut allowed: Vec<String> = env.branches.iter().map(|b| format!("branches {b}")).collect();
    allowed.extend(env.tags.iter().map(|t| format!("tags {t}")));
    Some(format!("{what} may not enter `{}` (allowed: {})", env.name, allowed.join(", ")))
}

fn gate_refusal(gate: &Gate, b: &BuildFacts, current: Option<&BuildFacts>) -> Option<String> {
    let Some(value) = b.metrics.get(&gate.metric).copied() else {
        return Some(format!("the build's run reported no `{}`", gate.metric));
    };
    match &gate.check {
        GateCheck::Compare { op, value: bar } => {
            let pass = match op.as_str() {
                ">=" => value >= *bar,
                ">" => value > *bar,
                "<=" => value <= *bar,
                "<" => value < *bar,
                "==" => (value - bar).abs() < f64::EPSILON,
                _ => false,
            };
            (!pass).then(|| format!("{} is {value}", gate.metric))
        }
        GateCheck::Improves { by } => {
            let baseline = current.and_then(|c| c.metrics.get(&gate.metric).copied())?;
            (value < baseline + by).then(|| {
                format!(
                    "{} is {value}; the release in the environment has {baseline} and it must gain {by}",
                    gate.metric
                )
            })
        }
    }
}

fn approval_refusal(rule: &ApprovalRule, b: &BuildFacts, approvals: &[Approval], promoter: &str) -> Option<String> {
    let mut counted: Vec<&str> = Vec::new();
    for a in approvals {
        let listed = rule.approvers.is_empty() || rule.approvers.iter().any(|x| same_person(x, &a.approver));
        let selfish = rule.prevent_self_approval && (is_author(b, &a.approver) || same_person(&a.approver, promoter));
        if listed && !selfish && !counted.iter().any(|c| same_person(c, &a.approver)) {
            counted.push(&a.approver);
        }
    }
    let have = counted.len() as u32;
    (have < rule.required).then(|| {
        let who =
            if rule.approvers.is_empty() { String::new() } else { format!(" from {}", rule.approvers.join(", ")) };
        format!("{have} of {} approval{} given{who}", rule.required, if rule.required == 1 { "" } else { "s" })
    })
}

/// The author is named by their name, their email, or the email's local part.
fn is_author(b: &BuildFacts, person: &str) -> bool {
    let local = b.author_email.split('@').next().unwrap_or_default();
    [b.author_name.as_str(), b.author_email.as_str(), local].iter().any(|id| !id.is_empty() && same_person(id, person))
}

/// Whether two names are one person; the local identity's "(unverified)" mark does not make a
/// different one (`action::Actor::local`), so the self-approval and approver rules still see it.
fn same_person(a: &str, b: &str) -> bool {
    let bare = |name: &str| name.trim().trim_end_matches(UNVERIFIED).trim().to_string();
    bare(a).eq_ignore_ascii_case(&bare(b))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build() -> BuildFacts {
        BuildFacts {
            id: "b1".into(),
            succeeded: true,
            branch: Some("main".into()),
            commit: "0123456789abcdef".into(),
            author_name: "Ada Author".into(),
            author_email: "ada@example.com".into(),
            metrics: BTreeMap::from([("accuracy".into(), 0.93)]),
            ..BuildFacts::default()
        }
    }

    fn env() -> Environment {
        Environment { name: "prod".into(), branches: vec!["^main$".into()], ..Environment::default() }
    }

    #[track_caller]
    fn refused(env: &Environment, facts: &Facts<'_>, expected: &[&str]) {
        let got: Vec<String> = match check(env, facts) {
            Ok(()) => Vec::new(),
            Err(refusals) => refusals.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for (g, e) in got.iter().zip(expected) {
            assert!(g.contains(e), "`{e}` not in `{g}`");
        }
    }

    #[test]
    fn branch_policy_and_build_state() {
        let b = build();
        refused(&env(), &Facts::new(&b), &[]);
        let feature = BuildFacts { branch: Some("feature/x".into()), ..build() };
        refused(&env(), &Facts::new(&feature), &["branches: branch `feature/x` may not enter `prod`"]);
        let failed = BuildFacts { succeeded: false, untrusted: true, ..build() };
        refused(&env(), &Facts::new(&failed), &["did not succeed", "untrusted code"]);
        let tagged = BuildFacts { branch: None, tag: Some("v1.2.0".into()), ..build() };
        let with_tags = Environment { tags: vec!["^v\\d".into()], ..env() };
        refused(&with_tags, &Facts::new(&tagged), &[]);
    }

    #[test]
    fn after_means_been_there() {
        let e = Environment { after: Some("staging".into()), ..env() };
        let b = build();
        refused(
            &e,
            &Facts { been_in: &["dev".into()], ..Facts::new(&b) },
            &["after staging: build b1 has not been in `staging`"],
        );
        refused(&e, &Facts { been_in: &["dev".into(), "staging".into()], ..Facts::new(&b) }, &[]);
    }

    #[test]
    fn gates() {
        let gate = |op: &str, value: f64| Gate {
            metric: "accuracy".into(),
            check: GateCheck::Compare { op: op.into(), value },
        };
        let b = build();
        for (op, bar, pass) in [
            (">=", 0.9, true),
            (">=", 0.95, false),
            (">", 0.93, false),
            ("<", 0.94, true),
            ("==", 0.93, true),
            ("<=", 0.5, false),
        ] {
            let e = Environment { gates: vec![gate(op, bar)], ..env() };
            let expected: &[&str] = if pass { &[] } else { &["accuracy is 0.93"] };
            refused(&e, &Facts::new(&b), expected);
        }
        let e = Environment {
            gates: vec![
                gate(">=", 0.9),
                Gate { metric: "auc".into(), check: GateCheck::Compare { op: ">".into(), value: 0.5 } },
            ],
            ..env()
        };
        refused(&e, &Facts::new(&b), &["gate auc > 0.5: the build's run reported no `auc`"]);
    }

    #[test]
    fn improves_compares_with_the_current_release() {
        let e = Environment {
            gates: vec![Gate { metric: "accuracy".into(), check: GateCheck::Improves { by: 0.01 } }],
            ..env()
        };
        let b = build();
        let worse = BuildFacts { metrics: BTreeMap::from([("accuracy".into(), 0.90)]), ..build() };
        refused(&e, &Facts { current: Some(&worse), ..Facts::new(&b) }, &[]);
        let close = BuildFacts { metrics: BTreeMap::from([("accuracy".into(), 0.925)]), ..build() };
        let b2 = BuildFacts { metrics: BTreeMap::from([("accuracy".into(), 0.93)]), ..build() };
        refused(&e, &Facts { current: Some(&close), ..Facts::new(&b2) }, &["must gain 0.01"]);
        refused(&e, &Facts { current: None, ..Facts::new(&b) }, &[]);
    }

    #[test]
    fn approvals() {
        let rule =
            ApprovalRule { required: 1, approvers: vec!["alice".into(), "bob".into()], prevent_self_approval: true };
        let e = Environment { approval: Some(rule), ..env() };
        let b = build();
        let approve = |who: &str| Approval { approver: who.into(), comment: String::new() };
        refused(&e, &Facts::new(&b), &["approval: 0 of 1 approval given from alice, bob"]);
        refused(&e, &Facts { approvals: &[approve("mallory")], ..Facts::new(&b) }, &["0 of 1"]);
        refused(&e, &Facts { approvals: &[approve("Alice")], promoter: "carol", ..Facts::new(&b) }, &[]);
        refused(&e, &Facts { approvals: &[approve("alice")], promoter: "alice", ..Facts::new(&b) }, &["0 of 1"]);
        assert!(may_approve(&e, &b, "bob").is_ok());
        assert!(may_approve(&e, &b, "mallory").unwrap_err().to_string().contains("not one of the approvers"));
        let self_author = Environment {
            approval: Some(ApprovalRule { required: 1, approvers: vec![], prevent_self_approval: true }),
            ..env()
        };
        for me in ["ada", "Ada Author", "ada@example.com"] {
            let err = may_approve(&self_author, &b, me).unwrap_err().to_string();
            assert!(err.contains("cannot approve it"), "{me}: {err}");
        }
        assert!(may_approve(&env(), &b, "alice").is_err(), "an environment without approval takes none");
    }
}
