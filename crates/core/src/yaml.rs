//! YAML documents as trees of nodes that remember where they were written (line, column, bytes, style).
//! Used by the build-file decoder and by the Kubeflow spec rewriter, which edits values in place.
//!
//! The parser is granit-parser (the one serde-saphyr is built on), in its default mode, which accepts
//! what PyYAML and ruamel.yaml accept: gcloud reads build files with those, so files written for Cloud
//! Build parse here too. The build-file decoder needs every value's line and column to report *all* problems at once, so it
//! cannot stop at the first serde error. This module turns the text into [`Node`]s with positions and
//! nothing else: it knows no field names. Aliases are expanded under a node budget, so a "billion laughs"
//! document is an error instead of an out-of-memory kill.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, Span};

/// Most nodes one document may expand to, aliases included.
const NODE_BUDGET: usize = 200_000;
/// Deepest nesting accepted; deeper documents are not build files and would exhaust the stack.
const MAX_DEPTH: usize = 128;

/// Where a node starts: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos { line: span.start.line(), col: span.start.col() + 1 }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar with its text as written; `plain` is false for quoted and block scalars, whose text is
    /// always a string (`"true"` is not a boolean).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// How a node is written, which a surgical edit must keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    #[default]
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// A literal or folded block scalar.
    Block,
    /// A sequence or mapping.
    Collection,
    /// Written as `*alias`: its value lives at the anchor, so it cannot be edited in place.
    Alias,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// The bytes of the source the node was read from (quotes included for quoted scalars).
    pub span: Range<usize>,
    pub style: Style,
}

impl Node {
    /// True for an empty plain scalar, `~` and `null`: YAML's ways of writing "no value".
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true }
            if text.is_empty() || text == "~" || text.eq_ignore_ascii_case("null"))
    }

    /// What kind of value this is, for error messages ("expected a list, found a mapping").
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Scalar { .. } if self.is_null() => "null",
            Value::Scalar { text, plain: true } if parse_bool(text).is_some() => "a boolean",
            Value::Scalar { text, plain: true } if text.parse::<f64>().is_ok() => "a number",
            Value::Scalar { .. } => "a string",
        }
    }
}

/// YAML 1.2 core-schema booleans, plus the capitalised forms YAML 1.1 tools write.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML (or JSON) document. An empty document is a null node at 1:1.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut documents = parse_stream(text)?;
    if documents.len() > 1 {
        return Err(YamlError {
            pos: documents[1].pos,
            message: "a build file holds one YAML document, this is the second".into(),
        });
    }
    Ok(documents.pop().unwrap_or_else(empty_document))
}

/// Parses every document of a YAML stream (Kubeflow IR files carry a second one, the platform spec).
pub fn parse_stream(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    while let Some(item) = parser.next_event() {
        let (event, span) = item.map_err(|e| YamlError {
            pos: Pos { line: e.marker().line(), col: e.marker().col() + 1 },
            message: format!("invalid YAML: {}", e.info()),
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.documents)
}

fn empty_document() -> Node {
    Node {
        value: Value::Scalar { text: String::new(), plain: true },
        pos: Pos { line: 1, col: 1 },
        span: 0..0,
        style: Style::Plain,
    }
}

fn bytes(span: &Span) -> Range<usize> {
    // A parser over a `&str` always knows byte offsets.
    span.start.byte_offset().unwrap_or(0)..span.end.byte_offset().unwrap_or(0)
}

enum Open {
    Seq(Node),
    /// A mapping, the key waiting for its value, and which entries came from a merge key.
    Map(Node, Option<Node>, Vec<bool>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Open, usize)>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
    /// Whether the current document has produced its root node.
    has_root: bool,
    nodes: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let pos = Pos::from_span(&span);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    _ => Style::Block,
                };
                let value = Value::Scalar { text: text.into_owned(), plain: style == Style::Plain };
                self.count(1, pos)?;
                self.finish(Node { value, pos, span: bytes(&span), style }, anchor)
            }
            Event::SequenceStart(_, anchor, _) => {
                self.open(Open::Seq(collection(Value::Seq(vec![]), pos, &span)), anchor, pos)
            }
            Event::MappingStart(_, anchor, _) => {
                self.open(Open::Map(collection(Value::Map(vec![]), pos, &span), None, Vec::new()), anchor, pos)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (open, anchor) = self.stack.pop().expect("the parser balances start and end events");
                let mut node = match open {
                    Open::Seq(node) | Open::Map(node, _, _) => node,
                };
                node.span.end = bytes(&span).end.max(node.span.start);
                self.finish(node, anchor)
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| YamlError { pos, message: "alias to an unknown anchor".into() })?;
                self.count(size(&node), pos)?;
                // An alias stands where it is written, not where its anchor was.
                self.finish(Node { pos, span: bytes(&span), style: Style::Alias, ..node }, 0)
            }
            Event::UnresolvedAlias(name) => Err(YamlError { pos, message: format!("alias `*{name}` names no anchor") }),
            Event::DocumentStart(..) => {
                self.has_root = false;
                Ok(())
            }
            Event::DocumentEnd => {
                if !self.has_root {
                    self.documents.push(Node { pos, span: bytes(&span), ..empty_document() });
                }
                Ok(())
            }
            // Anchor names arrive after their node; the ids on node events are all we need.
            _ => Ok(()),
        }
    }

    fn open(&mut self, open: Open, anchor: usize, pos: Pos) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError { pos, message: format!("the document nests deeper than {MAX_DEPTH} levels") });
        }
        self.count(1, pos)?;
        self.stack.push((open, anchor));
        Ok(())
    }

    fn count(&mut self, n: usize, pos: Pos) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > NODE_BUDGET {
            return Err(YamlError {
                pos,
                message: format!(
                    "the document expands to more than {NODE_BUDGET} values (aliases included); \
                     this looks like an alias bomb"
                ),
            });
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.has_root = true;
                self.documents.push(node);
            }
            Some((Open::Seq(seq), _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some((Open::Map(map, pending, merged), _)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let Value::Map(entries) = &mut map.value {
                        merge_or_push(entries, merged, key, node)?;
                    }
                }
            },
        }
        Ok(())
    }
}

fn collection(value: Value, pos: Pos, span: &Span) -> Node {
    Node { value, pos, span: bytes(span), style: Style::Collection }
}

/// YAML 1.1 merge keys (`<<: *defaults`), which gcloud's loader honours: entries of the merged mapping(s)
/// are added unless the mapping has the key itself, before or after the merge. `merged[i]` says whether
/// entry `i` came from a merge (and so gives way to an explicit key).
fn merge_or_push(
    entries: &mut Vec<(Node, Node)>,
    merged: &mut Vec<bool>,
    key: Node,
    value: Node,
) -> Result<(), YamlError> {
    let is_merge = matches!(&key.value, Value::Scalar { text, plain: true } if text == "<<");
    if !is_merge {
        let overridden = entries.iter().position(|(k, _)| same_key(k, &key)).filter(|&i| merged[i]);
        match overridden {
            Some(i) => {
                entries[i] = (key, value);
                merged[i] = false;
            }
            None => {
                entries.push((key, value));
                merged.push(false);
            }
        }
        return Ok(());
    }
    let sources = match value.value {
        Value::Map(_) => vec![value],
        Value::Seq(items) => items,
        Value::Scalar { .. } => {
            return Err(YamlError {
                pos: value.pos,
                message: "a merge key `<<` needs a mapping or a list of mappings".into(),
            });
        }
    };
    for source in sources {
        let Value::Map(from) = source.value else {
            return Err(YamlError {
                pos: source.pos,
                message: "a merge key `<<` needs a mapping or a list of mappings".into(),
            });
        };
        for (k, v) in from {
            if !entries.iter().any(|(existing, _)| same_key(existing, &k)) {
                entries.push((k, v));
                merged.push(true);
            }
        }
    }
    Ok(())
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Scalar { text: x, .. }, Value::Scalar { text: y, .. }) => x == y,
        _ => false,
    }
}

fn size(node: &Node) -> usize {
    match &node.value {
        Value::Scalar { .. } => 1,
        Value::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(k, v)| size(k) + size(v)).sum::<usize>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> &str {
        match &node.value {
            Value::Scalar { text, .. } => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn positions_are_one_based() {
        let doc = parse("steps:\n  - name: busybox\n    args: [a, 'b']\n").expect("valid");
        let Value::Map(top) = &doc.value else { panic!() };
        let (key, steps) = &top[0];
        assert_eq!(key.pos, Pos { line: 1, col: 1 });
        let Value::Seq(items) = &steps.value else { panic!() };
        let Value::Map(step) = &items[0].value else { panic!() };
        assert_eq!(step[0].1.pos, Pos { line: 2, col: 11 });
        let Value::Seq(args) = &step[1].1.value else { panic!() };
        assert_eq!(args[1].pos, Pos { line: 3, col: 15 });
        assert_eq!(args[1].value, Value::Scalar { text: "b".into(), plain: false });
    }

    #[test]
    fn json_is_yaml() {
        let doc = parse(r#"{"steps": [{"name": "x", "args": ["1"]}]}"#).expect("valid");
        assert_eq!(doc.kind(), "a mapping");
    }

    #[test]
    fn aliases_expand_at_their_own_position() {
        let doc = parse("a: &x [1, 2]\nb: *x\n").expect("valid");
        let Value::Map(top) = &doc.value else { panic!() };
        assert_eq!(top[1].1.pos.line, 2);
        assert_eq!(top[1].1.value, top[0].1.value);
    }

    #[test]
    fn merge_keys_keep_explicit_entries() {
        let doc = parse("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n").expect("valid");
        let Value::Map(top) = &doc.value else { panic!() };
        let Value::Map(m) = &top[1].1.value else { panic!() };
        let pairs: Vec<(&str, &str)> = m.iter().map(|(k, v)| (scalar(k), scalar(v))).collect();
        assert!(pairs.contains(&("x", "1")));
        assert!(pairs.contains(&("y", "3")), "{pairs:?}");
        assert_eq!(pairs.len(), 2, "{pairs:?}");
    }

    #[test]
    fn alias_bomb_is_an_error() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&text).expect_err("must be rejected");
        assert!(err.message.contains("alias bomb"), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let text = "[".repeat(10_000);
        let err = parse(&text).expect_err("must be rejected");
        assert!(err.message.contains("nests deeper") || err.message.contains("recursion limit"), "{err}");
    }

    #[test]
    fn bad_yaml_has_a_position() {
        let err = parse("steps:\n  - name: x\n   bad: [").expect_err("invalid");
        assert!(err.pos.line >= 2, "{err:?}");
        assert!(err.message.starts_with("invalid YAML"), "{err}");
    }

    #[test]
    fn two_documents_are_an_error() {
        let err = parse("a: 1\n---\nb: 2\n").expect_err("invalid");
        assert_eq!(err.pos.line, 3);
    }

    #[test]
    fn null_forms() {
        for text in ["a:", "a: ~", "a: null"] {
            let doc = parse(text).expect("valid");
            let Value::Map(top) = &doc.value else { panic!() };
            assert!(top[0].1.is_null(), "{text}");
        }
        let doc = parse("a: 'null'").expect("valid");
        let Value::Map(top) = &doc.value else { panic!() };
        assert!(!top[0].1.is_null());
    }
}

#[cfg(test)]
mod span_tests {
    use super::*;

    #[test]
    fn scalars_know_their_bytes_and_style() {
        let text = "a: 'x y'  # c\nb: \"q\"\nc: plain value\nd: [f, 'g']\n";
        let doc = parse(text).expect("valid");
        let Value::Map(top) = &doc.value else { panic!() };
        let pieces: Vec<(&str, Style)> = top.iter().map(|(_, v)| (&text[v.span.clone()], v.style)).collect();
        assert_eq!(pieces[0], ("'x y'", Style::SingleQuoted));
        assert_eq!(pieces[1], ("\"q\"", Style::DoubleQuoted));
        assert_eq!(pieces[2], ("plain value", Style::Plain));
        assert_eq!(pieces[3], ("[f, 'g']", Style::Collection));
    }

    #[test]
    fn streams_hold_every_document() {
        let docs = parse_stream("# header\na: 1\n---\nb: 2\n").expect("valid");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].pos.line, 4);
        assert!(parse_stream("").expect("valid").is_empty());
    }
}
