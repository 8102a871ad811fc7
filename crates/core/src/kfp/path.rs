//! Where a node sits in a document: the dotted path that change lists and error messages show
//! (`deploymentSpec.executors.exec-train.container.image`), and the exact entry it came from.

use std::fmt;

/// One step down a document. A mapping step keeps the entry's index as well as its key, so two
/// entries with the same key (YAML lets a file write that) are still two different places.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    Key { index: usize, key: String },
    Item(usize),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Path(Vec<Step>);

impl Path {
    pub(crate) fn key(&self, index: usize, key: &str) -> Path {
        self.with(Step::Key { index, key: key.to_string() })
    }

    pub(crate) fn item(&self, index: usize) -> Path {
        self.with(Step::Item(index))
    }

    fn with(&self, step: Step) -> Path {
        let mut steps = self.0.clone();
        steps.push(step);
        Path(steps)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key { key, .. } if is_bare(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Step::Key { key, .. } => write!(f, "[{key:?}]")?,
                Step::Item(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Keys that read unambiguously between dots; others are written as `["a.b"]`.
fn is_bare(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_the_document() {
        let path = Path::default().key(0, "deploymentSpec").key(3, "executors").key(1, "exec-train");
        assert_eq!(path.to_string(), "deploymentSpec.executors.exec-train");
        let pool = Path::default().key(0, "workerPoolSpecs").item(2).key(0, "containerSpec");
        assert_eq!(pool.to_string(), "workerPoolSpecs[2].containerSpec");
        assert_eq!(Path::default().key(0, "a").key(0, "x.y").to_string(), r#"a["x.y"]"#);
        assert_eq!(Path::default().to_string(), "");
    }

    #[test]
    fn duplicate_keys_are_different_places() {
        assert_ne!(Path::default().key(0, "image"), Path::default().key(1, "image"));
    }
}
