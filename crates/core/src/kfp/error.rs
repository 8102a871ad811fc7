//! What can be wrong with a Kubeflow spec file or with the images asked of it. Every message names
//! the file label and, where there is one, the line and the path to fix.

use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{label}:{line}:{col}: {message}")]
    Syntax { label: String, line: usize, col: usize, message: String },

    #[error(
        "{label}: not a Kubeflow component or pipeline spec ({found})\n\n\
         hint: a KFP v1 component has `implementation`; a compiled pipeline has `pipelineInfo`, `root` and \
         `deploymentSpec`"
    )]
    NotKubeflow { label: String, found: String },

    #[error(
        "{label}: a KFP v1 component, not a compiled pipeline spec\n\n\
         hint: name it as a component `spec`, or compile the pipeline that uses it"
    )]
    NotAPipeline { label: String },

    #[error(
        "{label}:{line}: `implementation.graph`: a KFP v1 graph component runs other components and has no \
         image of its own\n\n\
         hint: point the component's `spec` at the component.yaml files its tasks use"
    )]
    GraphComponent { label: String, line: usize },

    #[error("{label}:{line}: `{path}` is missing")]
    Missing { label: String, line: usize, path: String },

    #[error("{label}:{line}: `{path}` is {found}, expected {expected}")]
    Shape { label: String, line: usize, path: String, expected: &'static str, found: &'static str },

    #[error("{label}:{line}: YAML document {number} {problem}")]
    ExtraDocument { label: String, line: usize, number: usize, problem: &'static str },

    #[error(
        "{label}:{line}: the image at `{path}` is a YAML alias, which cannot be edited in place\n\n\
         hint: write the image out in full at `{path}`"
    )]
    AliasImage { label: String, line: usize, path: String },

    #[error(
        "{label}:{line}: the image at `{path}` is a block scalar, and writing it as a quoted scalar would \
         change the document ({detail})\n\n\
         hint: write the image on one line: `image: <reference>`"
    )]
    BlockImage { label: String, line: usize, path: String, detail: String },

    #[error("{label}: names no image of component `{component}` (repository `{repository}`){}", found_hint(found))]
    NoImageOfComponent { label: String, component: String, repository: String, found: Vec<String> },

    #[error("{label}: names no image of this build's components ({}){}", ticks(repositories), found_hint(found))]
    NoImageOfBuild { label: String, repositories: Vec<String>, found: Vec<String> },

    #[error("{label}:{line}: unknown `schemaVersion` `{found}`\n\nhint: known versions are `2.0.0` and `2.1.0`")]
    UnknownSchemaVersion { label: String, line: usize, found: String },

    #[error("{}", stale_message(label, stale))]
    StaleImage { label: String, stale: Vec<StaleImage> },

    #[error("{label}: component `{component}`: bad `{field}`: {reason}")]
    InvalidTarget { label: String, component: String, field: &'static str, reason: String },

    #[error(
        "{label}: components `{first}` and `{second}` both claim repository `{repository}` but name different \
         images"
    )]
    AmbiguousTarget { label: String, repository: String, first: String, second: String },

    #[error(
        "{label}:{line}: `{path}` and `{other}` are one value in the file (a YAML anchor or merge key) but need \
         different images\n\n\
         hint: write each image out in full"
    )]
    SharedImage { label: String, line: usize, path: String, other: String },

    #[error(
        "{label}:{line}: the rewrite failed its check and was not applied: {detail}\n\n\
         hint: an image shared through a YAML anchor or merge key cannot be edited in place; write it out in full"
    )]
    Verification { label: String, line: usize, detail: String },
}

/// One executor whose image is not the one this build made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleImage {
    pub executor: String,
    pub line: usize,
    pub path: String,
    pub image: String,
    pub expected: String,
}

fn stale_message(label: &str, stale: &[StaleImage]) -> String {
    let mut out = match stale {
        [one] => format!("{label}:{}: executor `{}` uses a stale image", one.line, one.executor),
        _ => format!("{label}: {} executors use a stale image", stale.len()),
    };
    for s in stale {
        let _ = write!(out, "\n  {label}:{}: `{}`: `{}`, expected `{}`", s.line, s.executor, s.image, s.expected);
    }
    out.push_str("\n\nhint: the spec must be compiled after the component specs were rewritten");
    out
}

fn ticks(items: &[String]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

fn found_hint(found: &[String]) -> String {
    if found.is_empty() {
        "\n\nhint: it names no container image at all".to_string()
    } else {
        format!("\n\nhint: the images it names: {}", ticks(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_lists_every_executor() {
        let stale = |executor: &str, line| StaleImage {
            executor: executor.into(),
            line,
            path: format!("deploymentSpec.executors.{executor}.container.image"),
            image: "python:3.11".into(),
            expected: "r/train:abc".into(),
        };
        let err = SpecError::StaleImage { label: "p.yaml".into(), stale: vec![stale("exec-a", 7), stale("exec-b", 9)] };
        let text = err.to_string();
        assert!(text.starts_with("p.yaml: 2 executors use a stale image"), "{text}");
        assert!(text.contains("p.yaml:7: `exec-a`: `python:3.11`, expected `r/train:abc`"), "{text}");
        assert!(text.contains("p.yaml:9: `exec-b`"), "{text}");
    }

    #[test]
    fn no_image_names_what_is_there() {
        let err = SpecError::NoImageOfComponent {
            label: "c.yaml".into(),
            component: "train".into(),
            repository: "r/train".into(),
            found: vec!["python:3.11".into()],
        };
        assert_eq!(
            err.to_string(),
            "c.yaml: names no image of component `train` (repository `r/train`)\n\n\
             hint: the images it names: `python:3.11`"
        );
    }
}
