//! Reading a webhook's JSON with errors that name the field: `pull_request.base.ref is missing` tells
//! the person looking at a rejected delivery exactly what their forge (or proxy) sent wrong, where serde's
//! derive would say `missing field ref at line 1 column 5210`.

use serde_json::Value;

use super::EventError;

/// A JSON value and its path from the root (`pull_request.head.repo`, `commits[2]`).
#[derive(Debug)]
pub struct Node<'a> {
    value: &'a Value,
    path: String,
}

impl<'a> Node<'a> {
    /// The body's root, which must be an object.
    pub fn root(value: &'a Value) -> Result<Node<'a>, EventError> {
        let node = Node { value, path: String::new() };
        node.expect_object()?;
        Ok(node)
    }

    /// The member `key`; `None` when it is absent or `null` (forges send `null` for "not applicable":
    /// `head_commit` of a deletion, `head.repo` of a deleted fork).
    pub fn opt(&self, key: &str) -> Result<Option<Node<'a>>, EventError> {
        let object = self.expect_object()?;
        Ok(object.get(key).filter(|v| !v.is_null()).map(|value| Node { value, path: self.child(key) }))
    }

    /// The member `key`, which must be there and not `null`.
    pub fn req(&self, key: &str) -> Result<Node<'a>, EventError> {
        self.opt(key)?.ok_or_else(|| EventError::Missing { field: self.child(key) })
    }

    /// The member `key` as an object.
    pub fn object(&self, key: &str) -> Result<Node<'a>, EventError> {
        let node = self.req(key)?;
        node.expect_object()?;
        Ok(node)
    }

    /// The member `key` as an object, if present.
    pub fn opt_object(&self, key: &str) -> Result<Option<Node<'a>>, EventError> {
        let Some(node) = self.opt(key)? else { return Ok(None) };
        node.expect_object()?;
        Ok(Some(node))
    }

    pub fn string(&self, key: &str) -> Result<&'a str, EventError> {
        self.req(key)?.as_str()
    }

    pub fn opt_string(&self, key: &str) -> Result<Option<&'a str>, EventError> {
        self.opt(key)?.map(|node| node.as_str()).transpose()
    }

    /// A string that must not be empty: names and URLs that later identify things.
    pub fn name(&self, key: &str) -> Result<&'a str, EventError> {
        let value = self.string(key)?;
        if value.is_empty() {
            return Err(EventError::Invalid { field: self.child(key), message: "is empty".to_string() });
        }
        Ok(value)
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, EventError> {
        match self.opt(key)? {
            None => Ok(None),
            Some(Node { value: Value::Bool(b), .. }) => Ok(Some(*b)),
            Some(node) => Err(node.wrong_type("a boolean")),
        }
    }

    pub fn u64(&self, key: &str) -> Result<u64, EventError> {
        let node = self.req(key)?;
        node.value.as_u64().ok_or_else(|| node.wrong_type("a non-negative integer"))
    }

    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, EventError> {
        match self.opt(key)? {
            None => Ok(None),
            Some(node) => node.value.as_u64().map(Some).ok_or_else(|| node.wrong_type("a non-negative integer")),
        }
    }

    /// The elements of the array `key`; none when it is absent or `null`.
    pub fn items(&self, key: &str) -> Result<Vec<Node<'a>>, EventError> {
        match self.opt(key)? {
            None => Ok(Vec::new()),
            Some(Node { value: Value::Array(items), path }) => {
                Ok(items.iter().enumerate().map(|(i, value)| Node { value, path: format!("{path}[{i}]") }).collect())
            }
            Some(node) => Err(node.wrong_type("an array")),
        }
    }

    /// A commit SHA: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits, as every forge sends them. Checked
    /// because SHAs go on to git commands and URLs.
    pub fn sha(&self, key: &str) -> Result<String, EventError> {
        let value = self.string(key)?;
        let hex = value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !(hex && (value.len() == 40 || value.len() == 64)) {
            return Err(EventError::Invalid {
                field: self.child(key),
                message: format!("`{}` is not a commit SHA (40 or 64 lowercase hex digits)", value.escape_debug()),
            });
        }
        Ok(value.to_string())
    }

    pub fn opt_sha(&self, key: &str) -> Result<Option<String>, EventError> {
        match self.opt(key)? {
            None => Ok(None),
            Some(_) => self.sha(key).map(Some),
        }
    }

    /// Where this value is, from the root (`pull_request.head`); empty for the root.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn as_str(&self) -> Result<&'a str, EventError> {
        self.value.as_str().ok_or_else(|| self.wrong_type("a string"))
    }

    fn expect_object(&self) -> Result<&'a serde_json::Map<String, Value>, EventError> {
        self.value.as_object().ok_or_else(|| self.wrong_type("an object"))
    }

    fn child(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    fn wrong_type(&self, expected: &'static str) -> EventError {
        let found = match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        let field = if self.path.is_empty() { "(the body)".to_string() } else { self.path.clone() };
        EventError::WrongType { field, expected, found }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Value {
        serde_json::from_str(text).expect("test JSON parses")
    }

    #[test]
    fn errors_name_the_path() {
        let v = root(r#"{"a": {"b": [{"c": 1}, {"c": "x"}], "n": null, "s": "", "sha": "ABC"}}"#);
        let r = Node::root(&v).expect("object");
        let a = r.object("a").expect("a");
        let msg = |e: EventError| e.to_string();
        assert_eq!(msg(a.string("missing").unwrap_err()), "`a.missing` is missing");
        assert_eq!(msg(a.string("n").unwrap_err()), "`a.n` is missing");
        assert_eq!(a.opt_string("n").expect("`n` is null, which reads as absent"), None);
        assert_eq!(msg(a.name("s").unwrap_err()), "`a.s`: is empty");
        let items = a.items("b").expect("array");
        assert_eq!(msg(items[0].string("c").unwrap_err()), "`a.b[0].c` should be a string, found a number");
        assert_eq!(items[1].string("c").expect("`c` is text"), "x");
        assert_eq!(msg(a.items("s").unwrap_err()), "`a.s` should be an array, found a string");
        assert!(msg(a.sha("sha").unwrap_err()).contains("`a.sha`: `ABC` is not a commit SHA"));
        assert_eq!(msg(r.u64("a").unwrap_err()), "`a` should be a non-negative integer, found an object");
        let list = root("[1]");
        assert_eq!(
            msg(Node::root(&list).expect_err("a list is not an object")),
            "`(the body)` should be an object, found an array"
        );
    }
}
