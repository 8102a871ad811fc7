//! The semantic diff of two compiled pipeline specs (docs/SPEC.md §14): what changed for someone reviewing a
//! pipeline, not which lines moved. Components and executors added or removed, images, commands and
//! arguments, the pipeline's inputs and their defaults, tasks, DAG edges (order and data, in nested
//! DAGs too), caching, trigger conditions and task inputs.
//!
//! It compares two [`PipelineSummary`]s, so a file can be compared with a build record's summary as
//! well as with another file. Nested DAGs are named by their path from the pipeline (`root/for-loop-2`),
//! the way a reader finds them, not by the compiler's component names. Changes come in a fixed order
//! (pipeline, inputs, components, executors, tasks, edges, caching, conditions, task inputs), each
//! group sorted by name, so the same two specs always give the same diff.
//!
//! Pure: values in, values out. The renderers (text, JSON, Markdown) return strings; printing them is
//! the caller's business.
//!
//! JSON shape (`--format json`), stable: `{"changes": [CHANGE…], "summary": {"total": N, "byKind":
//! {KIND: N…}}}`, where every CHANGE has `kind` (camelCase, one of [`Change`]'s variants) and that
//! variant's fields; absent values are `null`, never left out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::summary::{ExecutorKind, ExecutorSummary, PipelineSummary, TaskInput, TaskSummary};
use super::target::repository_of;

/// The changes from one spec (base) to another (head), in a fixed order; empty when they are the same.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpecDiff {
    pub changes: Vec<Change>,
}

/// One change. `dag` is a DAG's path from the pipeline (`root`, `root/condition-1`); `executor` an
/// executor label (`exec-train`); `component` a component name (`comp-train`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Change {
    /// `pipelineInfo.name`.
    PipelineRenamed {
        before: String,
        after: String,
    },
    SdkVersionChanged {
        before: Option<String>,
        after: Option<String>,
    },
    SchemaVersionChanged {
        before: String,
        after: String,
    },
    /// A pipeline input: a parameter (`root.inputDefinitions.parameters`, `type` its `parameterType`)
    /// or an artifact (`root.inputDefinitions.artifacts`, `type` its schema title, no default).
    InputAdded {
        parameter: String,
        r#type: String,
        default: Option<Json>,
    },
    InputRemoved {
        parameter: String,
        r#type: String,
        default: Option<Json>,
    },
    InputTypeChanged {
        parameter: String,
        before: String,
        after: String,
    },
    /// A pipeline input's `defaultValue` (`null`: none).
    DefaultChanged {
        parameter: String,
        before: Option<Json>,
        after: Option<Json>,
    },
    /// `executor` is the component's executor label, or `dag` for a sub-DAG.
    ComponentAdded {
        component: String,
        executor: String,
    },
    ComponentRemoved {
        component: String,
        executor: String,
    },
    /// The component now runs another executor (or became a sub-DAG).
    ComponentChanged {
        component: String,
        before: String,
        after: String,
    },
    ExecutorAdded {
        executor: String,
        image: Option<String>,
    },
    ExecutorRemoved {
        executor: String,
        image: Option<String>,
    },
    /// `container`, `importer`, `resolver`, `custom_job` or `other`.
    ExecutorKindChanged {
        executor: String,
        before: ExecutorKind,
        after: ExecutorKind,
    },
    /// A container image, or a `customJob` worker pool's; `component` is a component that runs the
    /// executor, when one does.
    ImageChanged {
        executor: String,
        component: Option<String>,
        before: Option<String>,
        after: Option<String>,
    },
    CommandChanged {
        executor: String,
        before: Vec<String>,
        after: Vec<String>,
    },
    ArgsChanged {
        executor: String,
        before: Vec<String>,
        after: Vec<String>,
    },
    TaskAdded {
        dag: String,
        task: String,
        component: String,
    },
    TaskRemoved {
        dag: String,
        task: String,
        component: String,
    },
    /// The task runs another component.
    TaskComponentChanged {
        dag: String,
        task: String,
        before: String,
        after: String,
    },
    /// `from` must finish before `to`: a `dependentTasks` entry (`output` and `input` are `null`), or
    /// a data edge, `from`'s output `output` feeding `to`'s input `input`.
    EdgeAdded {
        dag: String,
        from: String,
        to: String,
        output: Option<String>,
        input: Option<String>,
    },
    EdgeRemoved {
        dag: String,
        from: String,
        to: String,
        output: Option<String>,
        input: Option<String>,
    },
    /// `cachingOptions.enableCache` (`null`: no `cachingOptions`).
    CachingChanged {
        dag: String,
        task: String,
        before: Option<bool>,
        after: Option<bool>,
    },
    /// `triggerPolicy.condition` (`null`: none).
    ConditionChanged {
        dag: String,
        task: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// Where a task input comes from, when it is not only a change of data edges: a constant's value,
    /// or another DAG input (`null`: the input is not set).
    TaskInputChanged {
        dag: String,
        task: String,
        input: String,
        before: Option<TaskInput>,
        after: Option<TaskInput>,
    },
}

/// The diff from `base` to `head`.
pub fn diff(base: &PipelineSummary, head: &PipelineSummary) -> SpecDiff {
    let mut changes = Vec::new();
    pipeline(&mut changes, base, head);
    inputs(&mut changes, base, head);
    components(&mut changes, base, head);
    executors(&mut changes, base, head);
    dags(&mut changes, base, head);
    SpecDiff { changes }
}

fn pipeline(out: &mut Vec<Change>, base: &PipelineSummary, head: &PipelineSummary) {
    if base.name != head.name {
        out.push(Change::PipelineRenamed { before: base.name.clone(), after: head.name.clone() });
    }
    if base.schema_version != head.schema_version {
        out.push(Change::SchemaVersionChanged {
            before: base.schema_version.clone(),
            after: head.schema_version.clone(),
        });
    }
    if base.sdk_version != head.sdk_version {
        out.push(Change::SdkVersionChanged { before: base.sdk_version.clone(), after: head.sdk_version.clone() });
    }
}

/// The pipeline's inputs as (type, default): parameters, and artifacts typed by their schema title.
fn input_types(summary: &PipelineSummary) -> BTreeMap<String, (String, Option<Json>)> {
    let mut out: BTreeMap<String, (String, Option<Json>)> =
        summary.artifacts.iter().map(|(name, title)| (name.clone(), (title.clone(), None))).collect();
    for (name, p) in &summary.parameters {
        out.insert(name.clone(), (p.parameter_type.clone(), p.default.clone()));
    }
    out
}

fn inputs(out: &mut Vec<Change>, base: &PipelineSummary, head: &PipelineSummary) {
    let (base, head) = (input_types(base), input_types(head));
    for (name, pair) in pairs(&base, &head) {
        let parameter = name.to_string();
        match pair {
            (None, Some((r#type, default))) => {
                out.push(Change::InputAdded { parameter, r#type: r#type.clone(), default: default.clone() })
            }
            (Some((r#type, default)), None) => {
                out.push(Change::InputRemoved { parameter, r#type: r#type.clone(), default: default.clone() })
            }
            (Some((b_type, b_default)), Some((h_type, h_default))) => {
                if b_type != h_type {
                    out.push(Change::InputTypeChanged {
                        parameter: parameter.clone(),
                        before: b_type.clone(),
                        after: h_type.clone(),
                    });
                }
                if b_default != h_default {
                    out.push(Change::DefaultChanged { parameter, before: b_default.clone(), after: h_default.clone() });
                }
            }
            (None, None) => {}
        }
    }
}

fn components(out: &mut Vec<Change>, base: &PipelineSummary, head: &PipelineSummary) {
    for (name, pair) in pairs(&base.components, &head.components) {
        let component = name.to_string();
        match pair {
            (None, Some(executor)) => out.push(Change::ComponentAdded { component, executor: executor.clone() }),
            (Some(executor), None) => out.push(Change::ComponentRemoved { component, executor: executor.clone() }),
            (Some(b), Some(h)) if b != h => {
                out.push(Change::ComponentChanged { component, before: b.clone(), after: h.clone() })
            }
            _ => {}
        }
    }
}

fn executors(out: &mut Vec<Change>, base: &PipelineSummary, head: &PipelineSummary) {
    for (label, pair) in pairs(&base.executors, &head.executors) {
        let executor = label.to_string();
        match pair {
            (None, Some(e)) => out.push(Change::ExecutorAdded { executor, image: e.image.clone() }),
            (Some(e), None) => out.push(Change::ExecutorRemoved { executor, image: e.image.clone() }),
            (Some(b), Some(h)) => executor_changes(out, executor, b, h, component_of(label, head, base)),
            (None, None) => {}
        }
    }
}

fn executor_changes(
    out: &mut Vec<Change>,
    executor: String,
    b: &ExecutorSummary,
    h: &ExecutorSummary,
    component: Option<String>,
) {
    if b.kind != h.kind {
        out.push(Change::ExecutorKindChanged { executor, before: b.kind, after: h.kind });
        return;
    }
    if b.image != h.image {
        out.push(Change::ImageChanged {
            executor: executor.clone(),
            component: component.clone(),
            before: b.image.clone(),
            after: h.image.clone(),
        });
    }
    let pools = b.worker_pool_images.len().max(h.worker_pool_images.len());
    for i in 0..pools {
        let (before, after) = (b.worker_pool_images.get(i), h.worker_pool_images.get(i));
        if before != after {
            out.push(Change::ImageChanged {
                executor: executor.clone(),
                component: component.clone(),
                before: before.cloned(),
                after: after.cloned(),
            });
        }
    }
    if b.command != h.command {
        out.push(Change::CommandChanged {
            executor: executor.clone(),
            before: b.command.clone(),
            after: h.command.clone(),
        });
    }
    if b.args != h.args {
        out.push(Change::ArgsChanged { executor, before: b.args.clone(), after: h.args.clone() });
    }
}

/// The first component (by name) that runs `executor`, in head, else in base.
fn component_of(executor: &str, head: &PipelineSummary, base: &PipelineSummary) -> Option<String> {
    [head, base].iter().find_map(|s| s.components.iter().find(|(_, e)| *e == executor).map(|(c, _)| c.clone()))
}

type Tasks = BTreeMap<String, TaskSummary>;

fn dags(out: &mut Vec<Change>, base: &PipelineSummary, head: &PipelineSummary) {
    let (base_dags, head_dags) = (dag_paths(base), dag_paths(head));
    let empty = Tasks::new();
    let paths: BTreeSet<&String> = base_dags.keys().chain(head_dags.keys()).collect();
    let all: Vec<(&str, &Tasks, &Tasks)> = paths
        .into_iter()
        .map(|path| {
            (
                path.as_str(),
                base_dags.get(path).copied().unwrap_or(&empty),
                head_dags.get(path).copied().unwrap_or(&empty),
            )
        })
        .collect();
    // Tasks in both specs, as (dag, task, before, after).
    let common: Vec<(&str, &str, &TaskSummary, &TaskSummary)> = all
        .iter()
        .flat_map(|&(dag, b, h)| {
            pairs(b, h).into_iter().filter_map(move |(task, pair)| match pair {
                (Some(bt), Some(ht)) => Some((dag, task, bt, ht)),
                _ => None,
            })
        })
        .collect();

    for &(dag, b, h) in &all {
        for (name, pair) in pairs(b, h) {
            let (dag, task) = (dag.to_string(), name.to_string());
            match pair {
                (None, Some(t)) => out.push(Change::TaskAdded { dag, task, component: t.component.clone() }),
                (Some(t), None) => out.push(Change::TaskRemoved { dag, task, component: t.component.clone() }),
                (Some(bt), Some(ht)) if bt.component != ht.component => out.push(Change::TaskComponentChanged {
                    dag,
                    task,
                    before: bt.component.clone(),
                    after: ht.component.clone(),
                }),
                _ => {}
            }
        }
    }
    for &(dag, b, h) in &all {
        let (before, after) = (edges(b), edges(h));
        for Edge { from, to, output, input } in before.difference(&after).cloned() {
            out.push(Change::EdgeRemoved { dag: dag.to_string(), from, to, output, input });
        }
        for Edge { from, to, output, input } in after.difference(&before).cloned() {
            out.push(Change::EdgeAdded { dag: dag.to_string(), from, to, output, input });
        }
    }
    for &(dag, task, bt, ht) in &common {
        if bt.caching != ht.caching {
            let (dag, task) = (dag.to_string(), task.to_string());
            out.push(Change::CachingChanged { dag, task, before: bt.caching, after: ht.caching });
        }
    }
    for &(dag, task, bt, ht) in &common {
        if bt.condition != ht.condition {
            let (dag, task) = (dag.to_string(), task.to_string());
            out.push(Change::ConditionChanged { dag, task, before: bt.condition.clone(), after: ht.condition.clone() });
        }
    }
    for &(dag, task, bt, ht) in &common {
        for (input, (before, after)) in pairs(&bt.inputs, &ht.inputs) {
            if before == after || (is_edge(before) && is_edge(after)) {
                continue;
            }
            out.push(Change::TaskInputChanged {
                dag: dag.to_string(),
                task: task.to_string(),
                input: input.to_string(),
                before: before.cloned(),
                after: after.cloned(),
            });
        }
    }
}

/// An input that is absent or another task's output: its changes are edge changes.
fn is_edge(input: Option<&TaskInput>) -> bool {
    matches!(input, None | Some(TaskInput::TaskOutput { .. }))
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    output: Option<String>,
    input: Option<String>,
}

fn edges(tasks: &Tasks) -> BTreeSet<Edge> {
    let mut out = BTreeSet::new();
    for (name, task) in tasks {
        for upstream in &task.dependent_tasks {
            out.insert(Edge { from: upstream.clone(), to: name.clone(), output: None, input: None });
        }
        for (input, source) in &task.inputs {
            if let TaskInput::TaskOutput { task: from, output } = source {
                out.insert(Edge {
                    from: from.clone(),
                    to: name.clone(),
                    output: Some(output.clone()),
                    input: Some(input.clone()),
                });
            }
        }
    }
    out
}

/// Each DAG's tasks by the DAG's path: `root`, then `root/<task>` for a task that runs a sub-DAG, and
/// so on down. A DAG component no task reaches keeps its component name.
fn dag_paths(summary: &PipelineSummary) -> BTreeMap<String, &Tasks> {
    let mut out = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([("root".to_string(), "root")]);
    while let Some((path, key)) = queue.pop_front() {
        let Some(tasks) = summary.dags.get(key) else { continue };
        if !seen.insert(key) {
            continue;
        }
        for (name, task) in tasks {
            if task.component != "root" && summary.dags.contains_key(&task.component) {
                queue.push_back((format!("{path}/{name}"), task.component.as_str()));
            }
        }
        out.insert(path, tasks);
    }
    for (key, tasks) in &summary.dags {
        if !seen.contains(key.as_str()) {
            out.insert(key.clone(), tasks);
        }
    }
    out
}

type Pair<'a, V> = (Option<&'a V>, Option<&'a V>);

/// Every key of either map, sorted, with its value on each side.
fn pairs<'a, V>(base: &'a BTreeMap<String, V>, head: &'a BTreeMap<String, V>) -> Vec<(&'a str, Pair<'a, V>)> {
    let keys: BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    keys.into_iter().map(|k| (k.as_str(), (base.get(k), head.get(k)))).collect()
}

impl SpecDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The JSON document of `pipewright diff --format json` (see the module documentation).
    pub fn to_json(&self) -> Json {
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        let changes: Vec<Json> =
            self.changes.iter().map(|c| serde_json::to_value(c).expect("a change serialises")).collect();
        for change in &changes {
            *by_kind.entry(change["kind"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        }
        serde_json::json!({"changes": changes, "summary": {"total": self.changes.len(), "byKind": by_kind}})
    }

    /// One line per change, `~ image      exec-train: repo/train:abc → …:def`; `no changes` when empty.
    pub fn to_text(&self) -> String {
        if self.is_empty() {
            return "no changes\n".to_string();
        }
        let mut out = String::new();
        for row in self.changes.iter().map(Row::of) {
            let _ = write!(out, "{} {:<10} {}", row.sign, row.what, row.subject);
            match (&row.before, &row.after) {
                (Some(b), Some(a)) if row.image => {
                    let _ = write!(out, ": {b} → {}", abbreviate_after(b, a));
                }
                (Some(b), Some(a)) => {
                    let _ = write!(out, ": {b} → {a}");
                }
                (Some(only), None) | (None, Some(only)) => {
                    let _ = write!(out, " ({only})");
                }
                (None, None) => {}
            }
            out.push('\n');
        }
        out
    }
}

/// The diff as a Markdown table (for a GitHub Actions step summary or the dashboard); a sentence when
/// there are no changes.
pub fn to_markdown(diff: &SpecDiff) -> String {
    if diff.is_empty() {
        return "No changes to the pipeline spec.\n".to_string();
    }
    let n = diff.changes.len();
    let mut out = format!("{n} change{} to the pipeline spec:\n\n", if n == 1 { "" } else { "s" });
    out.push_str("| | change | where | before | after |\n| --- | --- | --- | --- | --- |\n");
    for row in diff.changes.iter().map(Row::of) {
        let cell = |text: &Option<String>| text.as_deref().map(code).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            row.sign,
            row.what,
            code(&row.subject),
            cell(&row.before),
            cell(&row.after)
        );
    }
    out
}

/// A Markdown code span that survives a table cell: `|` escaped, backticks fenced by longer runs.
fn code(text: &str) -> String {
    let text = text.replace('|', "\\|").replace('\n', " ");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if longest > 0 { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// The new image without the repository both sides share: `…:def` after `repo/train:abc`.
fn abbreviate_after(before: &str, after: &str) -> String {
    match (repository_of(before), repository_of(after)) {
        (Some(b), Some(a)) if b == a && after.len() > a.len() && after.starts_with(&a) => {
            format!("…{}", &after[a.len()..])
        }
        _ => after.to_string(),
    }
}

/// A change as the renderers show it.
struct Row {
    sign: char,
    what: &'static str,
    subject: String,
    before: Option<String>,
    after: Option<String>,
    /// Before and after are images (the text form shortens the repository they share).
    image: bool,
}

impl Row {
    fn of(change: &Change) -> Row {
        let row = |sign, what, subject: String, before: Option<String>, after: Option<String>| Row {
            sign,
            what,
            subject,
            before,
            after,
            image: false,
        };
        let changed =
            |what, subject: String, before: String, after: String| row('~', what, subject, Some(before), Some(after));
        let at = |dag: &str, task: &str| format!("{dag}/{task}");
        match change {
            Change::PipelineRenamed { before, after } => {
                changed("pipeline", "name".into(), before.clone(), after.clone())
            }
            Change::SdkVersionChanged { before, after } => {
                changed("sdk", "sdkVersion".into(), or_none(before.as_deref()), or_none(after.as_deref()))
            }
            Change::SchemaVersionChanged { before, after } => {
                changed("schema", "schemaVersion".into(), before.clone(), after.clone())
            }
            Change::InputAdded { parameter, r#type, default } => {
                row('+', "input", parameter.clone(), None, Some(typed(r#type, default.as_ref())))
            }
            Change::InputRemoved { parameter, r#type, default } => {
                row('-', "input", parameter.clone(), Some(typed(r#type, default.as_ref())), None)
            }
            Change::InputTypeChanged { parameter, before, after } => {
                changed("input type", parameter.clone(), before.clone(), after.clone())
            }
            Change::DefaultChanged { parameter, before, after } => {
                changed("default", parameter.clone(), json_or_none(before.as_ref()), json_or_none(after.as_ref()))
            }
            Change::ComponentAdded { component, executor } => {
                row('+', "component", component.clone(), None, Some(executor.clone()))
            }
            Change::ComponentRemoved { component, executor } => {
                row('-', "component", component.clone(), Some(executor.clone()), None)
            }
            Change::ComponentChanged { component, before, after } => {
                changed("component", component.clone(), before.clone(), after.clone())
            }
            Change::ExecutorAdded { executor, image } => row('+', "executor", executor.clone(), None, image.clone()),
            Change::ExecutorRemoved { executor, image } => row('-', "executor", executor.clone(), image.clone(), None),
            Change::ExecutorKindChanged { executor, before, after } => {
                changed("executor", executor.clone(), kind(*before), kind(*after))
            }
            Change::ImageChanged { executor, before, after, .. } => Row {
                image: true,
                ..changed("image", executor.clone(), or_none(before.as_deref()), or_none(after.as_deref()))
            },
            Change::CommandChanged { executor, before, after } => list_change("command", executor, before, after),
            Change::ArgsChanged { executor, before, after } => list_change("args", executor, before, after),
            Change::TaskAdded { dag, task, component } => {
                row('+', "task", at(dag, task), None, Some(component.clone()))
            }
            Change::TaskRemoved { dag, task, component } => {
                row('-', "task", at(dag, task), Some(component.clone()), None)
            }
            Change::TaskComponentChanged { dag, task, before, after } => {
                changed("task", at(dag, task), before.clone(), after.clone())
            }
            Change::EdgeAdded { dag, from, to, output, input } => {
                row('+', "edge", edge(dag, from, to, output, input), None, None)
            }
            Change::EdgeRemoved { dag, from, to, output, input } => {
                row('-', "edge", edge(dag, from, to, output, input), None, None)
            }
            Change::CachingChanged { dag, task, before, after } => {
                changed("caching", at(dag, task), caching(*before), caching(*after))
            }
            Change::ConditionChanged { dag, task, before, after } => {
                changed("condition", at(dag, task), or_none(before.as_deref()), or_none(after.as_deref()))
            }
            Change::TaskInputChanged { dag, task, input, before, after } => changed(
                "task input",
                format!("{}.{input}", at(dag, task)),
                source(before.as_ref()),
                source(after.as_ref()),
            ),
        }
    }
}

const NONE: &str = "(none)";

fn or_none(text: Option<&str>) -> String {
    text.unwrap_or(NONE).to_string()
}

fn json_or_none(value: Option<&Json>) -> String {
    value.map_or_else(|| NONE.to_string(), Json::to_string)
}

fn typed(parameter_type: &str, default: Option<&Json>) -> String {
    match default {
        Some(d) => format!("{parameter_type}, default {d}"),
        None => parameter_type.to_string(),
    }
}

fn kind(kind: ExecutorKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn caching(enabled: Option<bool>) -> String {
    match enabled {
        Some(true) => "on".into(),
        Some(false) => "off".into(),
        None => "(unset)".into(),
    }
}

fn edge(dag: &str, from: &str, to: &str, output: &Option<String>, input: &Option<String>) -> String {
    match (output, input) {
        (Some(output), Some(input)) => format!("{dag}: {from}.{output} → {to}.{input}"),
        _ => format!("{dag}: {from} → {to}"),
    }
}

fn source(input: Option<&TaskInput>) -> String {
    match input {
        None => NONE.to_string(),
        Some(TaskInput::Constant(value)) => value.to_string(),
        Some(TaskInput::TaskOutput { task, output }) => format!("{task}.{output}"),
        Some(TaskInput::ComponentInput(name)) => format!("input {name}"),
        Some(TaskInput::TaskFinalStatus(task)) => format!("final status of {task}"),
        Some(TaskInput::Other(json)) => json.clone(),
    }
}

/// A list change shown by its first differing item, `exec-a[2]: "x" → "y"`, as JSON strings cut to a
/// window that starts shortly before the first character that differs.
fn list_change(what: &'static str, executor: &str, before: &[String], after: &[String]) -> Row {
    let first = (0..before.len().max(after.len())).find(|&i| before.get(i) != after.get(i)).unwrap_or(0);
    let (b, a) = (before.get(first), after.get(first));
    let (b_json, a_json) =
        (b.map(|t| Json::String(t.clone()).to_string()), a.map(|t| Json::String(t.clone()).to_string()));
    let skip = match (&b_json, &a_json) {
        (Some(x), Some(y)) => x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count().saturating_sub(20),
        _ => 0,
    };
    let item = |text: Option<String>| match text {
        Some(text) if skip > 0 => shorten(&format!("…{}", text.chars().skip(skip).collect::<String>()), 60),
        Some(text) => shorten(&text, 60),
        None => NONE.to_string(),
    };
    let mut subject = format!("{executor}[{first}]");
    if before.len() != after.len() {
        let _ = write!(subject, " ({} → {} items)", before.len(), after.len());
    }
    Row { sign: '~', what, subject, before: Some(item(b_json)), after: Some(item(a_json)), image: false }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}
