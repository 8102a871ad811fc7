//! The layout keeps the architecture (ARCHITECTURE.md "Code map", "Layers"): the rules the crate graph
//! cannot state, checked over the source text. Every module's `crate::…` and `pipewright_core::…` paths
//! (outside its tests) are edges between the top-level modules; the graph has no circle, and no edge goes
//! from a lower layer to a higher one. The core crate has only pure dependencies and makes no file,
//! process or network call; only `cli` prints; each outside system has one module that speaks to it.
//!
//! Needs nothing installed: it reads files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Folders that group modules of one role (`src/io/`): each module inside is a node of its own
/// (`io::docker`), so the rules hold between them too.
const GROUPS: &[&str] = &["io"];

/// The layers, lowest first. A module may use modules of its own layer or lower ones; within a layer
/// the graph must still be acyclic. Every top-level module of either crate must be listed.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "yaml",
            "image_ref",
            "mask",
            "host_path",
            "source",
            "subst",
            "tag",
            "config",
            "limits",
            "trigger",
            "trust",
            "plan",
            "policy",
            "record",
            "kfp",
            "github",
        ],
    ),
    (
        "io",
        &[
            "io::docker",
            "io::source",
            "io::registry",
            "io::store",
            "io::http",
            "io::upload",
            "io::credentials",
            "io::secrets",
            "io::image",
            "io::host_path",
        ],
    ),
    ("executors", &["executor", "publish"]),
    ("runners", &["runner"]),
    ("promotion", &["promote"]),
    ("builds", &["engine"]),
    ("server", &["server"]),
    ("cli", &["cli"]),
];

/// Dependencies a pure crate may have: formats, hashes, patterns. No runtime, no client.
const PURE_DEPENDENCIES: &[&str] = &[
    "base64",
    "globset",
    "granit-parser",
    "hex",
    "hmac",
    "regex",
    "serde",
    "serde_json",
    "sha2",
    "subtle",
    "thiserror",
    "time",
];

/// Calls that reach outside the process; none may appear in the core's code.
const IMPURE_CALLS: &[&str] = &[
    "std::fs",
    "std::process",
    "std::net",
    "std::env::var",
    "std::thread::sleep",
    "File::open",
    "File::create",
    "Command::new",
    "SystemTime::now",
    "tokio",
];

struct SourceFile {
    /// Relative to the crate's `src/`.
    path: PathBuf,
    /// The file's code outside its tests, comments removed.
    code: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file whose whole content is tests (`mod tests;` files and their kin).
fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// The code of a file outside its `#[cfg(test)] mod tests { … }` tail (the last item of a file, by our
/// style), without comments. A `#[cfg(test)] mod tests;` line names a test file, which is skipped whole.
fn code_of(text: &str) -> String {
    let tail = text.match_indices("#[cfg(test)]\nmod ").find(|(at, _)| {
        let line = text[at + "#[cfg(test)]\n".len()..].lines().next().unwrap_or_default();
        line.trim_end().ends_with('{')
    });
    let text = match tail {
        Some((at, _)) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                return "";
            }
            match line.find(" // ") {
                Some(at) => &line[..at],
                None => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sources(crate_dir: &Path) -> Vec<SourceFile> {
    let src = crate_dir.join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter(|p| !is_test_file(p))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("UTF-8 source");
            SourceFile { path: p.strip_prefix(&src).expect("under src").to_path_buf(), code: code_of(&text) }
        })
        .collect()
}

/// `cli/mod.rs` → `cli`, `plan.rs` → `plan`, `io/docker/mod.rs` → `io::docker`; `lib.rs`, `main.rs`
/// and a group's `mod.rs` are roots, not modules.
fn module_of(path: &Path) -> Option<String> {
    let mut parts = path.components().map(|c| c.as_os_str().to_str().unwrap_or_default());
    let stem = |part: &str| part.strip_suffix(".rs").unwrap_or(part).to_string();
    let first = stem(parts.next()?);
    if GROUPS.contains(&first.as_str()) {
        let second = stem(parts.next()?);
        return (second != "mod").then(|| format!("{first}::{second}"));
    }
    (first != "lib" && first != "main").then_some(first)
}

/// The top-level modules a piece of code names through `prefix` (`crate::`, `pipewright_core::`).
fn named(code: &str, prefix: &str, into: &mut BTreeSet<String>) {
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let word = |text: &str| -> String { text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
        let mut name = word(rest);
        if GROUPS.contains(&name.as_str())
            && let Some(inner) = rest[name.len()..].strip_prefix("::")
        {
            name = format!("{name}::{}", word(inner));
        }
        if !name.is_empty() {
            into.insert(name);
        }
        // `crate::{a, b}` names several.
        if rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for part in group.split(',') {
                let part: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !part.is_empty() {
                    into.insert(part);
                }
            }
        }
    }
}

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// Edges between top-level modules, each with the files that make it.
fn graph() -> Graph {
    let mut graph = Graph::new();
    let all: BTreeSet<&str> = LAYERS.iter().flat_map(|(_, m)| m.iter().copied()).collect();
    for (crate_dir, label) in [(PathBuf::from(ROOT), "src"), (Path::new(ROOT).join("crates/core"), "crates/core/src")] {
        for file in sources(&crate_dir) {
            let Some(module) = module_of(&file.path) else { continue };
            let mut names = BTreeSet::new();
            named(&file.code, "crate::", &mut names);
            named(&file.code, "pipewright_core::", &mut names);
            let edges = graph.entry(module.clone()).or_default();
            for name in names {
                if name != module && all.contains(name.as_str()) {
                    edges.entry(name).or_default().insert(format!("{label}/{}", file.path.display()));
                }
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, modules)| modules.contains(&module))
}

#[test]
fn layout_every_module_has_a_layer_and_the_layers_match_the_crates() {
    let graph = graph();
    let unlisted: Vec<&String> = graph.keys().filter(|m| layer_of(m).is_none()).collect();
    assert!(unlisted.is_empty(), "modules with no layer in tests/integration/layout.rs LAYERS: {unlisted:?}");
    // The core layer is exactly the core crate.
    let core_dir = Path::new(ROOT).join("crates/core/src");
    let mut in_core: Vec<String> =
        sources(&Path::new(ROOT).join("crates/core")).iter().filter_map(|f| module_of(&f.path)).collect();
    in_core.sort();
    in_core.dedup();
    let mut listed: Vec<String> = LAYERS[0].1.iter().map(|m| m.to_string()).collect();
    listed.sort();
    assert_eq!(in_core, listed, "the core layer and {} differ", core_dir.display());
}

#[test]
fn layout_no_module_uses_a_higher_layer() {
    let mut wrong = Vec::new();
    for (from, edges) in graph() {
        let Some(low) = layer_of(&from) else { continue };
        for (to, files) in edges {
            if layer_of(&to).is_some_and(|high| high > low) {
                wrong.push(format!(
                    "{from} ({}) uses {to} ({}) in {files:?}",
                    LAYERS[low].0,
                    LAYERS[layer_of(&to).unwrap()].0
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "a lower layer uses a higher one:\n{}", wrong.join("\n"));
}

#[test]
fn layout_the_module_graph_has_no_circle() {
    let graph = graph();
    // Depth-first search; a back edge is a circle, reported with the path that closes it.
    fn visit(node: &str, graph: &Graph, stack: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).map(|e| e.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            if let Some(circle) = visit(&next, graph, stack, done) {
                return Some(circle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            let files: Vec<String> =
                circle.windows(2).map(|w| format!("{} -> {}: {:?}", w[0], w[1], graph[&w[0]][&w[1]])).collect();
            panic!("the modules form a circle {}:\n{}", circle.join(" -> "), files.join("\n"));
        }
    }
}

#[test]
fn layout_the_core_crate_is_pure() {
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("crates/core/Cargo.toml")).expect("core manifest");
    let mut section = "";
    let mut impure = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[dependencies]"
            && let Some((name, _)) = line.split_once('=')
        {
            let name = name.trim();
            if !name.starts_with('#') && !PURE_DEPENDENCIES.contains(&name) {
                impure.push(name.to_string());
            }
        }
        assert!(
            !section.starts_with("[target") || !section.contains("dependencies"),
            "crates/core/Cargo.toml: no platform-specific dependencies ({section})"
        );
    }
    assert!(
        impure.is_empty(),
        "crates/core/Cargo.toml depends on {impure:?}; the core may depend only on {PURE_DEPENDENCIES:?}"
    );
    let mut calls = Vec::new();
    for file in sources(&Path::new(ROOT).join("crates/core")) {
        for call in IMPURE_CALLS {
            if file.code.contains(call) {
                calls.push(format!("crates/core/src/{}: {call}", file.path.display()));
            }
        }
    }
    assert!(calls.is_empty(), "the core reaches outside the process:\n{}", calls.join("\n"));
}

/// Files of either crate (outside tests) whose code contains `needle`, as `src/…` paths.
fn files_containing(needle: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (crate_dir, label) in [(PathBuf::from(ROOT), "src"), (Path::new(ROOT).join("crates/core"), "crates/core/src")] {
        for file in sources(&crate_dir) {
            if file.code.contains(needle) {
                found.insert(format!("{label}/{}", file.path.display()));
            }
        }
    }
    found
}

#[test]
fn layout_only_the_cli_prints() {
    let mut printing = BTreeSet::new();
    for call in ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("] {
        printing.extend(files_containing(call));
    }
    printing.retain(|f| !f.starts_with("src/cli/") && f != "src/main.rs");
    assert!(printing.is_empty(), "only src/cli prints (the others return values or events): {printing:?}");
}

#[test]
fn layout_each_outside_system_has_one_module() {
    let owners: &[(&str, &str)] = &[
        ("bollard", "src/io/docker/"),
        ("gix::", "src/io/source/"),
        ("Command::new(\"git\")", "src/io/source/"),
        ("sqlx", "src/io/store/"),
        ("oci_client", "src/io/registry/"),
        ("axum", "src/server/"),
        // One HTTP client (src/io/http.rs); the credential allow-list parses origins with its URL type.
        ("reqwest", "src/io/http.rs"),
    ];
    let mut wrong = Vec::new();
    for (needle, owner) in owners {
        for file in files_containing(needle) {
            let allowed = file.starts_with(owner) || (*needle == "reqwest" && file == "src/io/credentials.rs");
            if !allowed {
                wrong.push(format!("{file} uses {needle} (only {owner} may)"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn layout_upload_knows_nothing_of_builds() {
    let graph = graph();
    let upload: BTreeSet<&String> = graph.get("io::upload").map(|e| e.keys().collect()).unwrap_or_default();
    for forbidden in ["plan", "record", "engine", "promote"] {
        assert!(
            !upload.iter().any(|m| m.as_str() == forbidden),
            "src/io/upload uses {forbidden}: it speaks HTTP to Kubeflow and Artifact Registry and knows no build"
        );
    }
}

#[test]
fn layout_the_checker_sees_edges() {
    // The checks above pass vacuously if the parser finds nothing: it must see the edges we know.
    let graph = graph();
    for (from, to) in [
        ("engine", "plan"),
        ("engine", "io::docker"),
        ("io::upload", "io::http"),
        ("plan", "config"),
        ("server", "engine"),
        ("cli", "server"),
    ] {
        assert!(graph.get(from).is_some_and(|e| e.contains_key(to)), "{from} -> {to} not found");
    }
    let mut names = BTreeSet::new();
    named(
        "use crate::{plan::X, record};\nlet x = crate::kfp::y; foo_crate::zzz; crate::io::docker::D",
        "crate::",
        &mut names,
    );
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["io::docker", "kfp", "plan", "record"]);
}

/// Where a code map row can point: every folder of either crate that holds more than a module's
/// `tests.rs` (data folders such as templates included), and every module file at a crate's top or
/// in a group folder (`src/io/`).
fn mapped_paths() -> BTreeSet<String> {
    fn walk(dir: &Path, label: &str, top: bool, out: &mut BTreeSet<String>) {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(dir).expect("a source folder").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        let grouped = top || GROUPS.iter().any(|g| dir.ends_with(g));
        let mut own = false;
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if path.is_dir() {
                walk(&path, &format!("{label}{name}/"), false, out);
            } else if !is_test_file(&path) {
                own = true;
                if grouped && name.ends_with(".rs") && !["lib.rs", "main.rs", "mod.rs"].contains(&name.as_str()) {
                    out.insert(format!("{label}{name}"));
                }
            }
        }
        if own && !top {
            out.insert(label.to_string());
        }
    }
    let mut out = BTreeSet::new();
    walk(&Path::new(ROOT).join("src"), "src/", true, &mut out);
    walk(&Path::new(ROOT).join("crates/core/src"), "crates/core/src/", true, &mut out);
    out
}

#[test]
fn layout_the_code_map_has_one_row_per_folder() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let start = text.find("\n## Code map").expect("ARCHITECTURE.md has a \"Code map\" section");
    let section = &text[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |at| at + 1)];
    let rows: Vec<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split_once('`').map(|(path, _)| path.to_string()))
        .collect();
    let listed: BTreeSet<String> = rows.iter().cloned().collect();
    assert_eq!(listed.len(), rows.len(), "a path has two rows in ARCHITECTURE.md's code map: {rows:?}");
    let on_disk = mapped_paths();
    let missing: Vec<&String> = on_disk.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&on_disk).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "ARCHITECTURE.md's code map and the folders differ:\n  no row for {missing:?}\n  rows for nothing on disk {stale:?}"
    );
}
