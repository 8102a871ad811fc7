//! Substitutions (`subst`): the template scanner, expansion, map validation, tag sanitising, and the
//! dynamic (bash-style) grammar through `Substitutions`.
//!
//! Input: a selector byte, then lines. The selector's low 2 bits pick what is exercised; bit 2 picks
//! the map's origin, bit 3 dynamic substitutions. Lines are templates, `KEY=VALUE` entries or tags.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pipewright::subst::{self, Mode, Origin, Substitutions};

/// Cloud Build's tag format, checked independently of `subst`'s hand-written matcher.
fn tag_format() -> &'static regex::Regex {
    static FORMAT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    FORMAT.get_or_init(|| regex::Regex::new(r"^[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}$").expect("valid regex"))
}

fn entries(lines: &[&str]) -> Vec<(String, String)> {
    lines.iter().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let lines: Vec<&str> = text.split('\n').collect();
    let origin = if selector & 4 == 0 { Origin::Config } else { Origin::Flag };
    let dynamic = selector & 8 != 0;
    match selector & 3 {
        0 => templates(text),
        1 => {
            let map = entries(&lines);
            let problems = subst::validate_map(map.iter().map(|(k, v)| (k.as_str(), v.as_str())), origin);
            // At most one problem per entry, plus one for the count.
            assert!(problems.len() <= map.len() + 1, "{} problems for {} entries", problems.len(), map.len());
            // No map, from the file or the flag, may set a built-in (docs/THREATS.md property 3).
            for (key, _) in map.iter().filter(|(key, _)| subst::is_builtin(key)) {
                assert!(
                    problems.iter().any(|p| p.key() == Some(key.as_str())),
                    "built-in `{key}` was accepted from {origin:?}"
                );
            }
        }
        2 => {
            let tags: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            if let Ok(kept) = subst::sanitize_tags(tags.clone()) {
                assert!(kept.len() <= subst::MAX_TAGS);
                let mut unique = kept.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), kept.len(), "duplicate tags kept: {kept:?}");
                for tag in &kept {
                    assert!(tag_format().is_match(tag), "accepted tag {tag:?} does not match {}", subst::TAG_FORMAT);
                    assert!(tags.contains(tag));
                }
            } else {
                // Refused: some distinct non-empty tag is bad, or there are too many.
                let mut distinct: Vec<&String> = tags.iter().filter(|t| !t.is_empty()).collect();
                distinct.sort();
                distinct.dedup();
                assert!(
                    distinct.len() > subst::MAX_TAGS || distinct.iter().any(|t| !tag_format().is_match(t)),
                    "refused good tags: {distinct:?}"
                );
            }
        }
        _ => {
            // The first line is the user map (`K=V;K=V`), the others are templates.
            let (map, templates) =
                lines.split_first().map_or((&[][..], &[][..]), |(m, t)| (std::slice::from_ref(m), t));
            let user: BTreeMap<String, String> = map
                .iter()
                .flat_map(|m| m.split(';'))
                .filter_map(|e| e.split_once('='))
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            let builtins = BTreeMap::from([
                ("COMMIT_SHA".to_string(), "0123456789abcdef0123456789abcdef01234567".to_string()),
                ("BRANCH_NAME".to_string(), "main".to_string()),
                ("PROJECT_ID".to_string(), "fuzz".to_string()),
            ]);
            let Ok(substitutions) = Substitutions::new(builtins, user, dynamic) else { return };
            let mode = if selector & 4 == 0 { Mode::MustMatch } else { Mode::AllowLoose };
            let _ = substitutions.check(templates.iter().enumerate().map(|(i, t)| (i, *t)), mode);
            for template in templates {
                let applied = substitutions.apply(template);
                if !dynamic {
                    // Without dynamic substitutions, applying is plain expansion with the values.
                    let expanded = subst::expand(template, |name| substitutions.get(name));
                    assert_eq!(applied.as_deref(), Ok(expanded.as_str()));
                }
            }
        }
    }
});

/// The scanner and expansion over one template.
fn templates(template: &str) {
    let references = subst::references(template);
    for reference in &references {
        let whole = template.get(reference.range.clone()).expect("a reference's range is a slice of the template");
        assert!(whole.starts_with('$') && whole.contains(reference.name), "{whole:?} for {:?}", reference.name);
    }
    // Expanding with nothing set only removes text.
    let empty = subst::expand(template, |_| None::<&str>);
    assert!(empty.len() <= template.len());
    if !template.contains('$') {
        assert_eq!(empty, template);
    }
    // Writing every reference as `${NAME}` is stable: expanding the result the same way changes nothing,
    // and it holds the same references. (`$$` is excluded: it becomes a `$` that may start a new one.)
    if !template.contains("$$") {
        let braced = |name: &str| Some(format!("${{{name}}}"));
        let once = subst::expand(template, braced);
        let twice = subst::expand(&once, braced);
        assert_eq!(once, twice, "template {template:?}");
        let names = |t: &str| subst::references(t).into_iter().map(|r| r.name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(template), names(&once), "template {template:?}");
    }
}
