//! A Kubeflow file read as YAML nodes: which kind of spec it is, typed access to its fields with
//! errors that name the line and path, and where its images are.
//!
//! Only fields this module needs are looked at; everything else is left as the file wrote it, since
//! the rewriter edits bytes, not a model.

use crate::yaml::{self, Node, Value};

use super::SpecKind;
use super::error::SpecError;
use super::path::Path;

/// A parsed spec file. `documents[0]` is the spec; a compiled pipeline may carry platform specs after it.
pub(crate) struct Spec<'t> {
    pub label: &'t str,
    pub text: &'t str,
    pub documents: Vec<Node>,
    pub kind: SpecKind,
}

impl<'t> Spec<'t> {
    pub(crate) fn parse(text: &'t str, label: &'t str) -> Result<Spec<'t>, SpecError> {
        let documents = yaml::parse_stream(text).map_err(|e| SpecError::Syntax {
            label: label.to_string(),
            line: e.pos.line,
            col: e.pos.col,
            message: e.message,
        })?;
        let Some(first) = documents.first() else {
            return Err(SpecError::NotKubeflow { label: label.to_string(), found: "the file is empty".into() });
        };
        let kind = detect(first)
            .ok_or_else(|| SpecError::NotKubeflow { label: label.to_string(), found: describe_top(first) })?;
        let spec = Spec { label, text, documents, kind };
        spec.check_extra_documents()?;
        Ok(spec)
    }

    /// The document's top-level mapping.
    pub(crate) fn top(&self) -> Field<'_> {
        Field { node: &self.documents[0], key: None, path: Path::default(), label: self.label }
    }

    /// The `PipelineSpec` mapping: the document itself, or the `pipelineSpec` inside a legacy wrapper.
    pub(crate) fn ir(&self) -> Result<Field<'_>, SpecError> {
        match self.kind {
            SpecKind::ComponentV1 => Err(SpecError::NotAPipeline { label: self.label.to_string() }),
            SpecKind::PipelineSpec => Ok(self.top()),
            SpecKind::LegacyPipelineJob => self.top().require("pipelineSpec"),
        }
    }

    /// Only a compiled pipeline may hold more than one document, and those are its platform specs
    /// (Kubernetes settings per executor), which never name an image.
    fn check_extra_documents(&self) -> Result<(), SpecError> {
        for (index, document) in self.documents.iter().enumerate().skip(1) {
            if document.is_null() {
                continue;
            }
            let problem = if self.kind != SpecKind::PipelineSpec {
                "is one too many: only a compiled pipeline carries a second document (its platform spec)"
            } else if !has_key(document, "platforms") {
                "is not a platform spec (a mapping with `platforms`)"
            } else {
                continue;
            };
            return Err(SpecError::ExtraDocument {
                label: self.label.to_string(),
                line: document.pos.line,
                number: index + 1,
                problem,
            });
        }
        Ok(())
    }
}

fn detect(document: &Node) -> Option<SpecKind> {
    let has = |key: &str| has_key(document, key);
    if has("pipelineSpec") {
        Some(SpecKind::LegacyPipelineJob)
    } else if has("implementation") {
        Some(SpecKind::ComponentV1)
    } else if has("pipelineInfo") || has("deploymentSpec") || (has("root") && has("components")) {
        Some(SpecKind::PipelineSpec)
    } else {
        None
    }
}

fn describe_top(document: &Node) -> String {
    let Value::Map(entries) = &document.value else {
        return format!("the document is {}", document.kind());
    };
    let keys: Vec<String> = entries.iter().take(5).filter_map(|(k, _)| scalar(k)).map(|k| format!("`{k}`")).collect();
    match keys.as_slice() {
        [] => "an empty mapping".to_string(),
        _ => format!("top-level keys {}", keys.join(", ")),
    }
}

fn scalar(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

fn has_key(node: &Node, key: &str) -> bool {
    matches!(&node.value, Value::Map(entries) if entries.iter().any(|(k, _)| scalar(k) == Some(key)))
}

/// A node with the path that led to it, so every accessor can say where a problem is.
#[derive(Clone, Debug)]
pub(crate) struct Field<'a> {
    pub node: &'a Node,
    /// The mapping key the node is the value of, if any (a block scalar's header sits after it).
    pub key: Option<&'a Node>,
    pub path: Path,
    pub label: &'a str,
}

impl<'a> Field<'a> {
    pub(crate) fn line(&self) -> usize {
        self.node.pos.line
    }

    /// The entries of a mapping. A key that is not a scalar cannot be a field name, so it is skipped.
    pub(crate) fn entries(&self) -> Result<Vec<(&'a str, Field<'a>)>, SpecError> {
        let Value::Map(entries) = &self.node.value else {
            return Err(self.shape("a mapping"));
        };
        Ok(entries
            .iter()
            .enumerate()
            .filter_map(|(index, (key, value))| {
                let name = scalar(key)?;
                Some((name, Field { node: value, key: Some(key), path: self.path.key(index, name), label: self.label }))
            })
            .collect())
    }

    /// The value of `key`; a null value counts as absent, as protobuf's JSON mapping reads it. When a
    /// key is written twice the last one wins, as in PyYAML and JSON parsers.
    pub(crate) fn get(&self, key: &str) -> Result<Option<Field<'a>>, SpecError> {
        Ok(self
            .entries()?
            .into_iter()
            .rev()
            .find(|(name, _)| *name == key)
            .map(|(_, f)| f)
            .filter(|f| !f.node.is_null()))
    }

    pub(crate) fn require(&self, key: &str) -> Result<Field<'a>, SpecError> {
        self.get(key)?.ok_or_else(|| SpecError::Missing {
            label: self.label.to_string(),
            line: self.line(),
            path: self.path.key(0, key).to_string(),
        })
    }

    /// `get(a)`, then `get(b)` on that, and so on; `None` as soon as one is absent.
    pub(crate) fn dig(&self, keys: &[&str]) -> Result<Option<Field<'a>>, SpecError> {
        let mut field = self.clone();
        for key in keys {
            match field.get(key)? {
                Some(next) => field = next,
                None => return Ok(None),
            }
        }
        Ok(Some(field))
    }

    pub(crate) fn items(&self) -> Result<Vec<Field<'a>>, SpecError> {
        let Value::Seq(items) = &self.node.value else {
            return Err(self.shape("a list"));
        };
        Ok(items
            .iter()
            .enumerate()
            .map(|(index, node)| Field { node, key: None, path: self.path.item(index), label: self.label })
            .collect())
    }

    /// A scalar's text, whatever it would resolve to (an image written `3` is still text to us).
    pub(crate) fn text(&self) -> Result<&'a str, SpecError> {
        scalar(self.node).ok_or_else(|| self.shape("a string"))
    }

    pub(crate) fn shape(&self, expected: &'static str) -> SpecError {
        SpecError::Shape {
            label: self.label.to_string(),
            line: self.line(),
            path: self.path.to_string(),
            expected,
            found: self.node.kind(),
        }
    }
}

/// One image in a spec file, where the rewriter may set it.
#[derive(Clone, Debug)]
pub(crate) struct ImageSite<'a> {
    /// The executor label for IR; `None` for a v1 component.
    pub executor: Option<&'a str>,
    pub field: Field<'a>,
    pub image: &'a str,
}

impl ImageSite<'_> {
    pub(crate) fn executor_or_component(&self) -> &str {
        self.executor.unwrap_or("component")
    }
}

/// The image of a KFP v1 component: `implementation.container.image`.
pub(crate) fn component_image<'a>(spec: &'a Spec<'_>) -> Result<ImageSite<'a>, SpecError> {
    let implementation = spec.top().require("implementation")?;
    if let Some(graph) = implementation.get("graph")? {
        return Err(SpecError::GraphComponent { label: spec.label.to_string(), line: graph.line() });
    }
    let image = implementation.require("container")?.require("image")?;
    Ok(ImageSite { executor: None, image: image.text()?, field: image })
}

/// Every image an IR names for its executors: `deploymentSpec.executors.*.container.image`, and the
/// worker-pool images of the deprecated Vertex `customJob` executor. Images elsewhere (parameter
/// defaults, importer metadata, command text) are data, not the executor's image, and are not listed.
pub(crate) fn executor_images<'a>(ir: &Field<'a>) -> Result<Vec<ImageSite<'a>>, SpecError> {
    let mut sites = Vec::new();
    let Some(executors) = ir.dig(&["deploymentSpec", "executors"])? else {
        return Ok(sites);
    };
    for (label, executor) in executors.entries()? {
        if let Some(image) = executor.dig(&["container", "image"])? {
            sites.push(ImageSite { executor: Some(label), image: image.text()?, field: image });
        } else if let Some(container) = executor.get("container")? {
            container.require("image")?;
        }
        let Some(pools) = executor.dig(&["customJob", "customJob", "jobSpec", "workerPoolSpecs"])? else {
            continue;
        };
        for pool in pools.items()? {
            if let Some(image) = pool.dig(&["containerSpec", "imageUri"])? {
                sites.push(ImageSite { executor: Some(label), image: image.text()?, field: image });
            }
        }
    }
    Ok(sites)
}

/// The images a spec file names, whatever its kind.
pub(crate) fn all_images<'a>(spec: &'a Spec<'_>) -> Result<Vec<ImageSite<'a>>, SpecError> {
    match spec.kind {
        SpecKind::ComponentV1 => Ok(vec![component_image(spec)?]),
        SpecKind::PipelineSpec | SpecKind::LegacyPipelineJob => executor_images(&spec.ir()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Result<SpecKind, String> {
        Spec::parse(text, "f.yaml").map(|s| s.kind).map_err(|e| e.to_string())
    }

    #[test]
    fn kinds() {
        assert_eq!(kind("name: x\nimplementation:\n  container: {image: a}\n"), Ok(SpecKind::ComponentV1));
        assert_eq!(kind("pipelineInfo: {name: p}\nroot: {}\n"), Ok(SpecKind::PipelineSpec));
        assert_eq!(kind(r#"{"pipelineSpec": {}, "runtimeConfig": {}}"#), Ok(SpecKind::LegacyPipelineJob));
        assert_eq!(kind("pipelineInfo: {name: p}\n---\nplatforms: {kubernetes: {}}\n"), Ok(SpecKind::PipelineSpec));
        assert_eq!(kind("pipelineInfo: {name: p}\n---\n"), Ok(SpecKind::PipelineSpec));
    }

    #[test]
    fn not_kubeflow() {
        let err = kind("steps:\n- name: x\n").expect_err("not a spec");
        assert!(err.starts_with("f.yaml: not a Kubeflow component or pipeline spec (top-level keys `steps`)"), "{err}");
        assert!(kind("").expect_err("empty").contains("the file is empty"));
        assert!(kind("- a\n").expect_err("list").contains("the document is a list"));
        assert!(kind("a: [\n").expect_err("bad").starts_with("f.yaml:"));
    }

    #[test]
    fn extra_documents() {
        let err = kind("pipelineInfo: {name: p}\n---\nfoo: 1\n").expect_err("not a platform spec");
        assert_eq!(err, "f.yaml:3: YAML document 2 is not a platform spec (a mapping with `platforms`)");
        let err = kind("implementation: {container: {image: a}}\n---\nplatforms: {}\n").expect_err("v1");
        assert!(err.starts_with("f.yaml:3: YAML document 2 is one too many"), "{err}");
    }

    #[test]
    fn fields_say_where_they_are() {
        let spec = Spec::parse("implementation: {}\na:\n  b: [1, {c: x}]\n  d: ~\n", "f.yaml").expect("valid");
        let b = spec.top().dig(&["a", "b"]).expect("map").expect("present");
        let items = b.items().expect("list");
        assert_eq!(items[1].require("c").expect("present").path.to_string(), "a.b[1].c");
        assert_eq!(spec.top().dig(&["a", "d"]).expect("map").map(|f| f.path.to_string()), None);
        let err = items[0].get("x").expect_err("not a mapping").to_string();
        assert_eq!(err, "f.yaml:3: `a.b[0]` is a number, expected a mapping");
        let err = items[1].require("z").expect_err("absent").to_string();
        assert_eq!(err, "f.yaml:3: `a.b[1].z` is missing");
    }

    #[test]
    fn last_duplicate_key_wins() {
        let spec = Spec::parse("implementation: {}\nimage: a\nimage: b\n", "f.yaml").expect("valid");
        assert_eq!(spec.top().require("image").expect("present").text(), Ok("b"));
    }
}
