//! pipewright's own top-level keys (docs/SPEC.md §2): `components`, `pipeline`, `run`, `environments`, `triggers`.
//!
//! They are read and shape-checked here so that `validate` covers the whole file; the phases that act on
//! them live elsewhere.

use std::time::Duration;

use super::decode::{Decoder, MapReader, Spanned, Str};
use super::model::{Step, read_step_fields};
use crate::yaml::{Node, Pos, Value, parse_bool};

#[derive(Clone, Debug, Default)]
pub struct Extensions {
    pub components: Option<Components>,
    pub pipeline: Option<PipelineConfig>,
    pub run: Option<RunConfig>,
    pub environments: Vec<EnvironmentConfig>,
    pub triggers: Vec<Trigger>,
}

#[derive(Clone, Debug, Default)]
pub struct Components {
    pub pos: Pos,
    pub registry: Option<Str>,
    pub items: Vec<ComponentConfig>,
}

#[derive(Clone, Debug, Default)]
pub struct ComponentConfig {
    pub pos: Pos,
    pub name: Option<Str>,
    pub context: Option<Str>,
    pub dockerfile: Option<Str>,
    pub specs: Vec<Str>,
    pub build_args: Vec<(Str, Str)>,
    pub target: Option<Str>,
}

#[derive(Clone, Debug, Default)]
pub struct PipelineConfig {
    pub pos: Pos,
    pub name: Option<Str>,
    pub compile: Option<Step>,
    pub spec: Option<Str>,
    pub upload: Vec<Upload>,
}

#[derive(Clone, Debug)]
pub enum Upload {
    Oci(Str),
    Kfp { host: Str, pipeline: Option<Str> },
    ArtifactRegistry(Str),
}

#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    pub pos: Pos,
    pub backend: Option<Str>,
    pub parameters: Vec<(Str, serde_json::Value)>,
    pub wait: Option<bool>,
    pub timeout: Option<Spanned<Duration>>,
    pub metrics: Vec<Str>,
    /// Backend settings (`host`, `project`, `location`, `pipelineRoot`, `serviceAccount`, `tokenEnv`).
    pub settings: Vec<(String, Str)>,
}

#[derive(Clone, Debug, Default)]
pub struct EnvironmentConfig {
    pub pos: Pos,
    pub name: Option<Str>,
    pub branches: Vec<Str>,
    pub tags: Vec<Str>,
    pub auto: bool,
    pub after: Option<Str>,
    pub metric_gates: Vec<MetricGate>,
    pub approval: Option<ApprovalConfig>,
    pub run: Option<RunConfig>,
    pub upload: Vec<Upload>,
}

#[derive(Clone, Debug)]
pub struct MetricGate {
    pub pos: Pos,
    pub name: Str,
    pub op: Option<Str>,
    pub value: Option<Spanned<f64>>,
    /// `improves: {over: current, by: 0.01}`: the minimum gain over the release now in the environment.
    pub improves_by: Option<Spanned<f64>>,
}

#[derive(Clone, Debug, Default)]
pub struct ApprovalConfig {
    pub pos: Pos,
    pub required: u32,
    pub approvers: Vec<Str>,
    pub prevent_self_approval: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Trigger {
    pub pos: Pos,
    pub name: Option<Str>,
    pub event: Option<Str>,
    pub branch: Option<Str>,
    pub tag: Option<Str>,
    pub invert_regex: bool,
    pub ignored_files: Vec<Str>,
    pub included_files: Vec<Str>,
    pub substitutions: Vec<(Str, Str)>,
    pub concurrency: Option<ConcurrencyConfig>,
}

impl Trigger {
    /// What a build file without `triggers:` means: build every push, tag and pull request (and manual
    /// runs, which need no trigger), with no path filter.
    pub fn every_event() -> Vec<Trigger> {
        let pos = Pos { line: 1, col: 1 };
        ["push", "tag", "pull_request"]
            .iter()
            .map(|event| Trigger {
                pos,
                name: Some(Spanned::new(format!("default-{}", event.replace('_', "-")), pos)),
                event: Some(Spanned::new(event.to_string(), pos)),
                ..Trigger::default()
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct ConcurrencyConfig {
    pub group: Str,
    pub cancel_in_progress: bool,
}

pub(super) const BACKENDS: &[&str] = &["local", "kfp", "vertex"];
pub(super) const EVENTS: &[&str] = &["push", "tag", "pull_request", "manual"];
pub(super) const GATE_OPS: &[&str] = &[">=", ">", "<=", "<", "=="];
pub(super) const RUN_SETTINGS: &[&str] = &["host", "project", "location", "pipelineRoot", "serviceAccount"];

impl Extensions {
    pub fn read(d: &mut Decoder, map: &mut MapReader<'_>) -> Extensions {
        let mut ext = Extensions::default();
        if let Some((node, path)) = map.take(d, "components") {
            ext.components = read_components(d, node, &path);
        }
        if let Some((node, path)) = map.take(d, "pipeline") {
            ext.pipeline = read_pipeline(d, node, &path);
        }
        if let Some((node, path)) = map.take(d, "run") {
            ext.run = read_run(d, node, &path);
        }
        if let Some((node, path)) = map.take(d, "environments") {
            ext.environments = d.list(node, &path, read_environment);
        }
        if let Some((node, path)) = map.take(d, "triggers") {
            ext.triggers = d.list(node, &path, read_trigger);
        }
        ext
    }

    pub fn is_empty(&self) -> bool {
        self.components.is_none()
            && self.pipeline.is_none()
            && self.run.is_none()
            && self.environments.is_empty()
            && self.triggers.is_empty()
    }
}

fn required(d: &mut Decoder, map: &MapReader<'_>, value: &Option<Str>, field: &str, pos: Pos) {
    if value.is_none() && !map.has(field) {
        d.error(pos, &map.child(field), "is required");
    }
}

fn read_components(d: &mut Decoder, node: &Node, path: &str) -> Option<Components> {
    let mut map = d.map(node, path)?;
    let registry = map.string(d, "registry");
    let items = match map.take(d, "items") {
        Some((node, path)) => d.list(node, &path, read_component),
        None => {
            d.error(node.pos, &map.child("items"), "is required: list the components to build");
            Vec::new()
        }
    };
    map.finish(d);
    Some(Components { pos: node.pos, registry, items })
}

fn read_component(d: &mut Decoder, node: &Node, path: &str) -> Option<ComponentConfig> {
    let mut map = d.map(node, path)?;
    let name = map.string(d, "name");
    required(d, &map, &name, "name", node.pos);
    let context = map.string(d, "context");
    required(d, &map, &context, "context", node.pos);
    let dockerfile = map.string(d, "dockerfile");
    let specs = match map.take(d, "spec") {
        Some((n, p)) if matches!(n.value, Value::Seq(_)) => d.string_list(n, &p),
        Some((n, p)) => d.string(n, &p).into_iter().collect(),
        None => Vec::new(),
    };
    let build_args = match map.take(d, "buildArgs") {
        Some((n, p)) => d.string_map(n, &p),
        None => Vec::new(),
    };
    let target = map.string(d, "target");
    map.finish(d);
    Some(ComponentConfig { pos: node.pos, name, context, dockerfile, specs, build_args, target })
}

fn read_pipeline(d: &mut Decoder, node: &Node, path: &str) -> Option<PipelineConfig> {
    let mut map = d.map(node, path)?;
    let name = map.string(d, "name");
    required(d, &map, &name, "name", node.pos);
    let compile = map.take(d, "compile").map(|(n, p)| {
        let mut step = Step { pos: n.pos, ..Step::default() };
        if let Some(mut m) = d.map(n, &p) {
            read_step_fields(d, &mut m, &mut step);
            m.finish(d);
        }
        step
    });
    let spec = map.string(d, "spec");
    required(d, &map, &spec, "spec", node.pos);
    let upload = match map.take(d, "upload") {
        Some((n, p)) => read_uploads(d, n, &p),
        None => Vec::new(),
    };
    map.finish(d);
    Some(PipelineConfig { pos: node.pos, name, compile, spec, upload })
}

fn read_uploads(d: &mut Decoder, node: &Node, path: &str) -> Vec<Upload> {
    d.list(node, path, |d, n, p| {
        let mut m = d.map(n, p)?;
        let mut found = Vec::new();
        if let Some(oci) = m.string(d, "oci") {
            found.push(Upload::Oci(oci));
        }
        if let Some((kn, kp)) = m.take(d, "kfp")
            && let Some(mut km) = d.map(kn, &kp)
        {
            let host = km.string(d, "host");
            required(d, &km, &host, "host", kn.pos);
            let pipeline = km.string(d, "pipeline");
            km.finish(d);
            if let Some(host) = host {
                found.push(Upload::Kfp { host, pipeline });
            }
        }
        if let Some(ar) = m.string(d, "artifactRegistry") {
            found.push(Upload::ArtifactRegistry(ar));
        }
        m.finish(d);
        if found.len() != 1 {
            d.error_hint(
                n.pos,
                p,
                format!("an upload names exactly one destination, found {}", found.len()),
                "write one of `oci: REF`, `kfp: {host: URL}`, `artifactRegistry: URL` per list item",
            );
            return None;
        }
        found.pop()
    })
}

fn read_run(d: &mut Decoder, node: &Node, path: &str) -> Option<RunConfig> {
    let mut map = d.map(node, path)?;
    let run = read_run_fields(d, &mut map, node.pos);
    map.finish(d);
    Some(run)
}

fn read_run_fields(d: &mut Decoder, map: &mut MapReader<'_>, pos: Pos) -> RunConfig {
    let backend = map.take(d, "backend").and_then(|(n, p)| d.one_of(n, &p, BACKENDS));
    let parameters = match map.take(d, "parameters") {
        Some((n, p)) => read_parameters(d, n, &p),
        None => Vec::new(),
    };
    let wait = map.bool(d, "wait");
    let timeout = map.duration(d, "timeout");
    let metrics = map.string_list(d, "metrics");
    // A build file names where a run goes, never which credential goes with it: `tokenEnv` let a build
    // send any variable of the server's environment (its webhook secret) to a host of its choosing.
    if let Some((n, p)) = map.take(d, "tokenEnv") {
        d.error_hint(
            n.pos,
            &p,
            "a build file cannot choose a credential: `tokenEnv` is not supported",
            "remove it; the token for a host comes from the server config's `credentials:` \
             (`pipewright run --credential ORIGIN=env:VAR` on your own machine; README: Credentials)",
        );
    }
    let settings = RUN_SETTINGS.iter().filter_map(|name| map.string(d, name).map(|v| (name.to_string(), v))).collect();
    RunConfig { pos, backend, parameters, wait, timeout, metrics, settings }
}

/// Pipeline parameters keep their YAML type: `3` is a number, `'3'` a string.
fn read_parameters(d: &mut Decoder, node: &Node, path: &str) -> Vec<(Str, serde_json::Value)> {
    let Value::Map(entries) = &node.value else {
        d.error(node.pos, path, format!("expected a mapping, found {}", node.kind()));
        return Vec::new();
    };
    let mut out: Vec<(Str, serde_json::Value)> = Vec::new();
    for (k, v) in entries {
        let Some(key) = d.string(k, path) else { continue };
        if out.iter().any(|(seen, _)| seen.value == key.value) {
            d.error(k.pos, &format!("{path}.{}", key.value), "parameter is given twice");
            continue;
        }
        out.push((key, to_json(v)));
    }
    out
}

/// A YAML node as JSON, typing plain scalars by the YAML 1.2 core schema.
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Scalar { .. } if node.is_null() => J::Null,
        Value::Scalar { text, plain: false } => J::String(text.clone()),
        Value::Scalar { text, plain: true } => {
            if let Some(b) = parse_bool(text) {
                J::Bool(b)
            } else if let Ok(i) = text.parse::<i64>() {
                J::from(i)
            } else if let Some(f) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                J::Number(f)
            } else {
                J::String(text.clone())
            }
        }
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match &k.value {
                        Value::Scalar { text, .. } => text.clone(),
                        _ => String::new(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

fn read_environment(d: &mut Decoder, node: &Node, path: &str) -> Option<EnvironmentConfig> {
    let mut map = d.map(node, path)?;
    let name = map.string(d, "name");
    required(d, &map, &name, "name", node.pos);
    let branches = map.string_list(d, "branches");
    let tags = map.string_list(d, "tags");
    let auto = map.bool(d, "auto").unwrap_or(false);
    let after = map.string(d, "after");
    let metric_gates = match map.take(d, "gates") {
        Some((n, p)) => read_gates(d, n, &p),
        None => Vec::new(),
    };
    let approval = map.take(d, "approval").and_then(|(n, p)| {
        let mut m = d.map(n, &p)?;
        let required = m
            .take(d, "required")
            .and_then(|(rn, rp)| d.int(rn, &rp))
            .map(|v| v.value.clamp(0, i64::from(u32::MAX)) as u32)
            .unwrap_or(1);
        let approvers = m.string_list(d, "approvers");
        let prevent_self_approval = m.bool(d, "preventSelfApproval").unwrap_or(true);
        m.finish(d);
        Some(ApprovalConfig { pos: n.pos, required, approvers, prevent_self_approval })
    });
    let run = map.take(d, "run").and_then(|(n, p)| read_run(d, n, &p));
    let upload = match map.take(d, "upload") {
        Some((n, p)) => read_uploads(d, n, &p),
        None => Vec::new(),
    };
    map.finish(d);
    Some(EnvironmentConfig { pos: node.pos, name, branches, tags, auto, after, metric_gates, approval, run, upload })
}

fn read_gates(d: &mut Decoder, node: &Node, path: &str) -> Vec<MetricGate> {
    let Some(mut map) = d.map(node, path) else {
        return Vec::new();
    };
    let gates = match map.take(d, "metrics") {
        Some((n, p)) => d.list(n, &p, |d, n, p| {
            let mut m = d.map(n, p)?;
            let name = m.string(d, "name");
            required(d, &m, &name, "name", n.pos);
            let op = m.take(d, "op").and_then(|(on, op)| d.one_of(on, &op, GATE_OPS));
            let value = m.take(d, "value").and_then(|(vn, vp)| number(d, vn, &vp));
            let improves_by = m.take(d, "improves").and_then(|(inode, ipath)| {
                let mut im = d.map(inode, &ipath)?;
                if let Some((on, op)) = im.take(d, "over") {
                    d.one_of(on, &op, &["current"]);
                }
                let by = im.take(d, "by").and_then(|(bn, bp)| number(d, bn, &bp));
                im.finish(d);
                Some(by.unwrap_or(Spanned::new(0.0, inode.pos)))
            });
            if improves_by.is_none() && (op.is_none() || value.is_none()) {
                d.error_hint(
                    n.pos,
                    p,
                    "a metric gate needs `op` and `value`, or `improves`",
                    "e.g. `{name: accuracy, op: '>=', value: 0.9}`",
                );
            }
            m.finish(d);
            Some(MetricGate { pos: n.pos, name: name?, op, value, improves_by })
        }),
        None => Vec::new(),
    };
    map.finish(d);
    gates
}

fn number(d: &mut Decoder, node: &Node, path: &str) -> Option<Spanned<f64>> {
    if let Value::Scalar { text, .. } = &node.value
        && let Ok(value) = text.trim().parse::<f64>()
        && value.is_finite()
    {
        return Some(Spanned::new(value, node.pos));
    }
    d.error(node.pos, path, format!("expected a number, found {}", node.kind()));
    None
}

fn read_trigger(d: &mut Decoder, node: &Node, path: &str) -> Option<Trigger> {
    let mut map = d.map(node, path)?;
    let name = map.string(d, "name");
    required(d, &map, &name, "name", node.pos);
    let event = map.take(d, "event").and_then(|(n, p)| d.one_of(n, &p, EVENTS));
    if event.is_none() && !map.has("event") {
        d.error_hint(node.pos, &map.child("event"), "is required", format!("one of {}", EVENTS.join(", ")));
    }
    let branch = map.string(d, "branch");
    let tag = map.string(d, "tag");
    for re in [&branch, &tag].into_iter().flatten() {
        if let Err(e) = regex::Regex::new(&re.value) {
            d.error(re.pos, &map.path, format!("`{}` is not a valid RE2 regular expression: {e}", re.value));
        }
    }
    let invert_regex = map.bool(d, "invertRegex").unwrap_or(false);
    if invert_regex && branch.is_none() && tag.is_none() {
        d.error_hint(node.pos, &map.child("invertRegex"), "has no regex to invert", "add `branch:` or `tag:`");
    }
    let ignored_files = map.string_list(d, "ignoredFiles");
    let included_files = map.string_list(d, "includedFiles");
    for (field, globs) in [("ignoredFiles", &ignored_files), ("includedFiles", &included_files)] {
        for glob in globs {
            if let Err(message) = check_glob(&glob.value) {
                d.error(glob.pos, &map.child(field), message);
            }
        }
    }
    let substitutions = match map.take(d, "substitutions") {
        Some((n, p)) => {
            let entries = d.string_map(n, &p);
            // Checked here, at each key's line, as well as with every build's overrides
            // (`validate::check_substitutions`): a trigger cannot set a built-in such as `COMMIT_SHA`,
            // which names the images and tags promotion trusts (docs/THREATS.md property 3).
            let pairs = entries.iter().map(|(k, v)| (k.value.as_str(), v.value.as_str()));
            for problem in crate::subst::validate_map(pairs, crate::subst::Origin::Flag) {
                let key = problem.key().and_then(|key| entries.iter().find(|(k, _)| k.value == key));
                let (pos, path) = match key {
                    Some((k, _)) => (k.pos, format!("{p}.{}", k.value)),
                    None => (n.pos, p.clone()),
                };
                d.error(pos, &path, problem.to_string());
            }
            entries
        }
        None => Vec::new(),
    };
    let concurrency = map.take(d, "concurrency").and_then(|(n, p)| {
        let mut m = d.map(n, &p)?;
        let group = m.string(d, "group");
        required(d, &m, &group, "group", n.pos);
        let cancel_in_progress = m.bool(d, "cancelInProgress").unwrap_or(false);
        m.finish(d);
        Some(ConcurrencyConfig { group: group?, cancel_in_progress })
    });
    map.finish(d);
    Some(Trigger {
        pos: node.pos,
        name,
        event,
        branch,
        tag,
        invert_regex,
        ignored_files,
        included_files,
        substitutions,
        concurrency,
    })
}

/// The glob rules of trigger path filters (`trigger::PathFilter`: globset with `literal_separator`,
/// repository-relative), checked here so that `validate` reports a bad glob before any event needs it.
fn check_glob(glob: &str) -> Result<(), String> {
    if glob.is_empty() {
        return Err("a glob may not be empty".to_string());
    }
    if let Some(relative) = glob.strip_prefix('/') {
        return Err(format!("`{glob}` starts with `/`; globs are relative to the repository root: write `{relative}`"));
    }
    globset::GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(drop)
        .map_err(|e| format!("`{glob}` is not a valid glob: {}", e.kind()))
}
