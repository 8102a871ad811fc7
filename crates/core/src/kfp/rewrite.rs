//! Surgical image rewriting: only the bytes of each image scalar change, then the result is re-parsed
//! and compared with the original, value by value. Anything but "equal except at the image paths,
//! which now read as the new references" is an error, never a silently different file.

use std::collections::HashMap;

use crate::yaml::{self, Node, Style, Value};

use super::SpecKind;
use super::error::SpecError;
use super::path::Path;
use super::scalar::{self, Edit};
use super::spec::{ImageSite, Spec, all_images, component_image};
use super::target::{ImageTarget, Targets};

/// One image set to a component's new reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageChange {
    /// e.g. `deploymentSpec.executors.exec-train.container.image`.
    pub path: String,
    /// The line the image is on (1-based).
    pub line: usize,
    /// The image as it was; equal to `new` when it already was the reference (nothing was edited).
    pub old: String,
    pub new: String,
    pub component: String,
}

/// A spec file with its images rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub kind: SpecKind,
    pub text: String,
    pub changes: Vec<ImageChange>,
}

/// `rewrite_component`: a v1 component's one image is set whatever it was; IR images by repository.
pub(crate) fn component(text: &str, label: &str, target: &ImageTarget) -> Result<Rewrite, SpecError> {
    let targets = Targets::new(std::slice::from_ref(target), label)?;
    let spec = Spec::parse(text, label)?;
    let planned = match spec.kind {
        // The file belongs to this component, so whatever its image says (a placeholder, an empty
        // string, someone else's base image) is what the build replaces.
        SpecKind::ComponentV1 => vec![(component_image(&spec)?, target)],
        SpecKind::PipelineSpec | SpecKind::LegacyPipelineJob => {
            let (planned, found) = claim(&spec, &targets)?;
            if planned.is_empty() {
                return Err(SpecError::NoImageOfComponent {
                    label: label.to_string(),
                    component: target.component.clone(),
                    repository: target.repository.clone(),
                    found,
                });
            }
            planned
        }
    };
    apply(&spec, &planned)
}

/// `rewrite_pipeline`: every executor image that belongs to one of the targets.
pub(crate) fn pipeline(text: &str, label: &str, targets: &[ImageTarget]) -> Result<Rewrite, SpecError> {
    let claimed = Targets::new(targets, label)?;
    let spec = Spec::parse(text, label)?;
    spec.ir()?;
    let (planned, found) = claim(&spec, &claimed)?;
    if planned.is_empty() {
        return Err(SpecError::NoImageOfBuild {
            label: label.to_string(),
            repositories: claimed.repositories(),
            found,
        });
    }
    apply(&spec, &planned)
}

type Planned<'s, 't> = Vec<(ImageSite<'s>, &'t ImageTarget)>;

/// The images the targets claim, and (for the error when there are none) every image named.
fn claim<'s, 't>(spec: &'s Spec<'_>, targets: &Targets<'t>) -> Result<(Planned<'s, 't>, Vec<String>), SpecError> {
    let sites = all_images(spec)?;
    let mut found: Vec<String> = sites.iter().map(|s| s.image.to_string()).collect();
    found.sort();
    found.dedup();
    let planned = sites.into_iter().filter_map(|site| targets.find(site.image).map(|t| (site, t))).collect();
    Ok((planned, found))
}

fn apply(spec: &Spec<'_>, planned: &[(ImageSite<'_>, &ImageTarget)]) -> Result<Rewrite, SpecError> {
    let mut edits = Vec::new();
    for (site, target) in planned {
        if site.image != target.reference {
            edits.push((scalar::edit(spec.text, &site.field, &target.reference)?, site));
        }
    }
    let text = splice(spec, edits.clone())?;
    let expected: HashMap<&Path, &str> =
        planned.iter().map(|(site, target)| (&site.field.path, target.reference.as_str())).collect();
    if let Err(failure) = verify(spec, &text, &expected) {
        return Err(blame(spec, &edits, failure));
    }
    let changes = planned
        .iter()
        .map(|(site, target)| ImageChange {
            path: site.field.path.to_string(),
            line: site.field.line(),
            old: site.image.to_string(),
            new: target.reference.clone(),
            component: target.component.clone(),
        })
        .collect();
    Ok(Rewrite { kind: spec.kind, text, changes })
}

/// Applies edits to the text. Two sites can be one node in the file (an anchor, or a merge key copying
/// an executor): one edit if they need the same value, an error if not.
fn splice(spec: &Spec<'_>, mut edits: Vec<(Edit, &ImageSite<'_>)>) -> Result<String, SpecError> {
    edits.sort_by_key(|(edit, _)| (edit.range.start, edit.range.end));
    edits.dedup_by(|later, earlier| later.0 == earlier.0);
    for pair in edits.windows(2) {
        let [(first, first_site), (second, second_site)] = pair else { continue };
        if second.range.start < first.range.end {
            return Err(SpecError::SharedImage {
                label: spec.label.to_string(),
                line: second_site.field.line(),
                path: first_site.field.path.to_string(),
                other: second_site.field.path.to_string(),
            });
        }
    }
    let mut text = String::with_capacity(spec.text.len() + edits.len() * 64);
    let mut done = 0;
    for (edit, site) in &edits {
        // Spans come from the parser over this text, so this holds; still, no input may panic.
        let Some(kept) = spec.text.get(done..edit.range.start) else {
            return Err(SpecError::Verification {
                label: spec.label.to_string(),
                line: site.field.line(),
                detail: format!("`{}` has no usable position in the text", site.field.path),
            });
        };
        text.push_str(kept);
        text.push_str(&edit.replacement);
        done = edit.range.end;
    }
    text.push_str(spec.text.get(done..).unwrap_or_default());
    Ok(text)
}

/// Why a rewritten text is not the original with new images.
struct Failure {
    line: usize,
    detail: String,
}

/// Re-parses `text` and compares it with the original documents by value (positions and quoting
/// aside): equal everywhere except at the `expected` paths of the first document, which must read
/// back as exactly the new strings.
fn verify(spec: &Spec<'_>, text: &str, expected: &HashMap<&Path, &str>) -> Result<(), Failure> {
    let documents = yaml::parse_stream(text)
        .map_err(|e| Failure { line: e.pos.line, detail: format!("the result is not valid YAML: {}", e.message) })?;
    if documents.len() != spec.documents.len() {
        let detail = format!("it has {} YAML documents instead of {}", documents.len(), spec.documents.len());
        return Err(Failure { line: 1, detail });
    }
    let none = HashMap::new();
    for (index, (old, new)) in spec.documents.iter().zip(&documents).enumerate() {
        compare(old, new, &Path::default(), if index == 0 { expected } else { &none })?;
    }
    Ok(())
}

fn compare(old: &Node, new: &Node, path: &Path, expected: &HashMap<&Path, &str>) -> Result<(), Failure> {
    if let Some(&value) = expected.get(path) {
        return match &new.value {
            Value::Scalar { text, plain } if text == value && (!plain || scalar::plain_is_safe(value)) => Ok(()),
            _ => Err(Failure {
                line: new.pos.line,
                detail: format!("`{path}` reads back as {} instead of `{value}`", describe(new)),
            }),
        };
    }
    let differ = || Failure {
        line: new.pos.line,
        detail: format!("`{path}` changed too: {} became {}", describe(old), describe(new)),
    };
    match (&old.value, &new.value) {
        (Value::Scalar { text: a, plain: pa }, Value::Scalar { text: b, plain: pb }) => {
            if a == b && pa == pb {
                Ok(())
            } else {
                Err(differ())
            }
        }
        (Value::Seq(a), Value::Seq(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().try_for_each(|(i, (x, y))| compare(x, y, &path.item(i), expected))
        }
        (Value::Map(a), Value::Map(b)) if a.len() == b.len() => {
            for (i, ((old_key, old_value), (new_key, new_value))) in a.iter().zip(b).enumerate() {
                let name = match &old_key.value {
                    Value::Scalar { text, .. } => text.as_str(),
                    _ => "?",
                };
                let entry = path.key(i, name);
                compare(old_key, new_key, &entry, &HashMap::new())?;
                compare(old_value, new_value, &entry, expected)?;
            }
            Ok(())
        }
        _ => Err(differ()),
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Scalar { text, .. } if text.chars().count() <= 200 => format!("`{text}`"),
        Value::Scalar { .. } => "a long string".to_string(),
        _ => node.kind().to_string(),
    }
}

/// A failed check is the block scalar's fault when one was rewritten (its edit is the only one that
/// reaches beyond the scalar's own bytes); otherwise the file shares an image between places.
fn blame(spec: &Spec<'_>, edits: &[(Edit, &ImageSite<'_>)], failure: Failure) -> SpecError {
    match edits.iter().find(|(_, site)| site.field.node.style == Style::Block) {
        Some((_, site)) => SpecError::BlockImage {
            label: spec.label.to_string(),
            line: site.field.line(),
            path: site.field.path.to_string(),
            detail: failure.detail,
        },
        None => SpecError::Verification { label: spec.label.to_string(), line: failure.line, detail: failure.detail },
    }
}
