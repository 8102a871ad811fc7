//! The bash parameter expansion of the dynamic grammar, through [`Substitutions::apply`]: operators, shell
//! expressions left alone, and syntax and evaluation errors.

use crate::subst::tests::map;
use crate::subst::{SubstError, Substitutions};

fn dynamic_context() -> Substitutions {
    let builtins = map(&[("PROJECT_ID", "proj"), ("TAG_NAME", "")]);
    let user = map(&[("_V", "abc"), ("_E", ""), ("_X", ""), ("_U", "aBc.Def"), ("_W", "a*c"), ("_T", "é世a")]);
    Substitutions::new(builtins, user, true).expect("a valid dynamic context")
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
    for template in ["${_V:}", "${_V:x}", "${_V@Q}", "${_V", "${_V:-x", "${_V/a", "${_V }", "${#_V:-1}", "${_V:1:2"] {
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
