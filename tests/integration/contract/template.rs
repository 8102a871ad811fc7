//! Just enough of a KFP pipeline spec for the fakes: its `pipelineInfo.name`, which Artifact Registry
//! takes as the package name and whose absence makes Kubeflow Pipelines refuse an upload.
//!
//! Read with a few lines of scanning instead of pipewright's YAML code, so the fakes do not share a
//! parser (or its bugs) with the client under test.

use serde_json::Value;

/// `pipelineInfo.name` of a KFP IR in YAML (block or flow style) or JSON, including the legacy
/// `{pipelineSpec: …}` wrapper.
pub fn pipeline_name(spec: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(spec).ok()?;
    if text.trim_start().starts_with('{') {
        let doc: Value = serde_json::from_str(text).ok()?;
        let info =
            if doc["pipelineSpec"].is_object() { &doc["pipelineSpec"]["pipelineInfo"] } else { &doc["pipelineInfo"] };
        return info["name"].as_str().filter(|n| !n.is_empty()).map(str::to_string);
    }
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("pipelineInfo:") else { continue };
        let rest = strip_comment(rest).trim();
        if let Some(flow) = rest.strip_prefix('{') {
            return flow.trim_end_matches('}').split(',').find_map(|entry| name_entry(entry.trim()));
        }
        for line in lines.by_ref() {
            let content = strip_comment(line);
            if content.trim().is_empty() {
                continue;
            }
            if !content.starts_with([' ', '\t']) {
                return None; // the next top-level key: `pipelineInfo` has no name
            }
            if let Some(name) = name_entry(content.trim()) {
                return Some(name);
            }
        }
    }
    None
}

fn name_entry(entry: &str) -> Option<String> {
    let value = entry.strip_prefix("name:")?.trim();
    let value = value.trim_matches(|c| c == '"' || c == '\'');
    (!value.is_empty()).then(|| value.to_string())
}

fn strip_comment(line: &str) -> &str {
    match line.find(" #") {
        Some(i) => &line[..i],
        None if line.trim_start().starts_with('#') => "",
        None => line,
    }
}

#[test]
fn pipeline_names_are_read_from_yaml_and_json() {
    let cases: &[(&str, Option<&str>)] = &[
        ("pipelineInfo:\n  name: demo-ci\n  description: x\n", Some("demo-ci")),
        ("# header\npipelineInfo:\n  description: x # note\n  name: 'quoted'\nroot: {}\n", Some("quoted")),
        ("pipelineInfo: {description: x, name: flow}\n", Some("flow")),
        ("pipelineInfo:\n  description: no name\nroot:\n  name: not-this\n", None),
        ("{\"pipelineInfo\": {\"name\": \"json\"}}", Some("json")),
        ("{\"pipelineSpec\": {\"pipelineInfo\": {\"name\": \"wrapped\"}}}", Some("wrapped")),
        ("steps: []\n", None),
    ];
    for (text, expected) in cases {
        assert_eq!(pipeline_name(text.as_bytes()).as_deref(), *expected, "{text}");
    }
}
