//! A published API definition (Swagger 2.0) used as a request validator, the way the peer's own
//! front end checks requests: grpc-gateway routes by path template and method, reads the query
//! parameters the operation declares, and protojson decodes the JSON body, rejecting unknown fields
//! and wrong types, accepting a field under its proto name or its lowerCamelCase JSON name, and
//! refusing two members of one `oneof` (read from the `.proto` files, which Swagger cannot express).
//!
//! It validates requests, and the fakes' own answers (strictly, with the names exactly as defined),
//! and nothing else: what the peer does with a valid request is the fake's business.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::server::{FormPart, Request};

/// An operation: one method on one path template.
pub struct Operation {
    pub id: String,
    pub method: String,
    pub template: String,
    segments: Vec<Segment>,
    parameters: Vec<Value>,
    responses: Value,
}

/// A path segment of a template: `pipelines`, `{run_id}`, or `{run_id}:terminate`.
enum Segment {
    Literal(String),
    Param { name: String, suffix: String },
}

/// A request path matched to its operation.
pub struct Route<'a> {
    pub operation: &'a Operation,
    pub params: BTreeMap<String, String>,
}

/// How strictly field names are compared.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// Requests: protojson accepts the proto name (`display_name`) and the JSON name (`displayName`).
    Either,
    /// The fakes' answers: exactly the spelling in the definition.
    Exact,
}

pub struct Swagger {
    /// The document's file name, for messages.
    pub source: String,
    definitions: Map<String, Value>,
    operations: Vec<Operation>,
    /// Definition name → its oneofs, each as (oneof name, member fields).
    oneofs: BTreeMap<String, Vec<(String, Vec<String>)>>,
}

impl Swagger {
    pub fn parse(source: &str, text: &str) -> Swagger {
        let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("`{source}` is not JSON: {e}"));
        let mut operations = Vec::new();
        for (template, methods) in doc["paths"].as_object().expect("a Swagger document has `paths`") {
            for (method, op) in methods.as_object().expect("a path item is an object") {
                operations.push(Operation {
                    id: op["operationId"].as_str().unwrap_or(template).to_string(),
                    method: method.to_uppercase(),
                    template: template.clone(),
                    segments: template.split('/').skip(1).map(Segment::parse).collect(),
                    parameters: op["parameters"].as_array().cloned().unwrap_or_default(),
                    responses: op["responses"].clone(),
                });
            }
        }
        let definitions = doc["definitions"].as_object().cloned().unwrap_or_default();
        Swagger { source: source.to_string(), definitions, operations, oneofs: BTreeMap::new() }
    }

    /// Adds the `oneof`s declared in a `.proto` file; top-level messages are named `{prefix}{Message}`
    /// in the Swagger (`v2beta1Run`), nested ones `{Outer}{Inner}`, as protoc-gen-openapiv2 names them.
    pub fn with_oneofs(mut self, proto: &str, prefix: &str) -> Swagger {
        for (message, oneof, fields) in proto_oneofs(proto) {
            let definition =
                if message.contains('.') { message.replace('.', "") } else { format!("{prefix}{message}") };
            self.oneofs.entry(definition).or_default().push((oneof, fields));
        }
        self
    }

    /// A schema referring to definition `name`, which must exist.
    pub fn definition(&self, name: &str) -> Value {
        assert!(self.definitions.contains_key(name), "no definition `{name}` in `{}`", self.source);
        serde_json::json!({ "$ref": format!("#/definitions/{name}") })
    }

    /// The field names of definition `name`, as defined.
    pub fn json_fields(&self, name: &str) -> Vec<String> {
        let properties = self.definitions[name]["properties"].as_object();
        properties.map(|p| p.keys().cloned().collect()).unwrap_or_default()
    }

    pub fn enum_values(&self, definition: &str) -> Vec<String> {
        self.definitions[definition]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("`{definition}` is not an enum"))
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// The operation for `method` on `path` (as sent: percent-encoded, without the query).
    pub fn route(&self, method: &str, path: &str) -> Result<Route<'_>, String> {
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let mut matches: Vec<(&Operation, BTreeMap<String, String>)> =
            self.operations.iter().filter_map(|op| Some((op, op.match_path(&segments)?))).collect();
        if matches.is_empty() {
            return Err(format!("no path in `{}` matches `{path}`", self.source));
        }
        let allowed: Vec<String> = matches.iter().map(|(op, _)| format!("{} {}", op.method, op.template)).collect();
        matches.retain(|(op, _)| op.method == method);
        matches.sort_by_key(|(op, _)| std::cmp::Reverse(op.specificity()));
        match matches.into_iter().next() {
            Some((operation, params)) => Ok(Route { operation, params }),
            None => {
                Err(format!("`{method}` is not defined for `{path}`; `{}` defines {}", self.source, allowed.join(", ")))
            }
        }
    }

    /// Every way `request` breaks the definition of the operation it was routed to.
    pub fn check_request(&self, route: &Route<'_>, request: &Request) -> Vec<String> {
        let op = route.operation;
        let mut problems = Vec::new();
        for (name, value) in &route.params {
            if value.is_empty() {
                problems.push(format!("path parameter `{name}` is empty"));
            }
        }
        problems.extend(self.check_query(op, &request.query));
        if let Some(schema) = op.body_schema() {
            problems.extend(self.check_json_body(op, schema, request));
        } else if op.has_form() {
            problems.extend(check_form(op, request));
        } else if !request.body.is_empty() && request.body.as_slice() != b"{}" {
            problems.push(format!("`{}` takes no request body, got {} bytes", op.id, request.body.len()));
        }
        problems
    }

    /// Query parameters: declared for the operation, of the declared type, required ones present.
    /// grpc-gateway also accepts a parameter under its lowerCamelCase name; the hand-written multipart
    /// handlers (operations with form parameters) read exactly the declared names.
    fn check_query(&self, op: &Operation, query: &[(String, String)]) -> Vec<String> {
        let names = if op.has_form() { Names::Exact } else { Names::Either };
        let declared: Vec<&Value> = op.parameters.iter().filter(|p| p["in"] == "query").collect();
        let mut problems = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (key, value) in query {
            let Some(param) = declared.iter().find(|p| spelt_as(key, p["name"].as_str().unwrap_or(""), names)) else {
                let known: Vec<&str> = declared.iter().filter_map(|p| p["name"].as_str()).collect();
                problems.push(format!(
                    "unknown query parameter `{key}` for `{}` (it declares: {})",
                    op.id,
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
                continue;
            };
            let name = param["name"].as_str().unwrap_or("");
            *seen.entry(name).or_default() += 1;
            if seen[name] == 2 && param["type"] != "array" {
                problems.push(format!("query parameter `{name}` is repeated"));
            }
            let schema = if param["type"] == "array" { &param["items"] } else { *param };
            if let Some(problem) = scalar_text_problem(schema, value) {
                problems.push(format!("query parameter `{name}`: {problem}"));
            }
        }
        for param in &declared {
            let name = param["name"].as_str().unwrap_or("");
            if param["required"] == true && !seen.contains_key(name) {
                problems.push(format!("required query parameter `{name}` is missing"));
            }
        }
        problems
    }

    fn check_json_body(&self, op: &Operation, schema: &Value, request: &Request) -> Vec<String> {
        let content_type = request.header("content-type").unwrap_or("");
        if !content_type.is_empty() && !content_type.starts_with("application/json") {
            return vec![format!("`{}` takes a JSON body, sent as `{content_type}`", op.id)];
        }
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(body) => self.check_json(schema, &body, "body", Names::Either),
            Err(_) if request.body.is_empty() => vec![format!("`{}` requires a JSON body; none was sent", op.id)],
            Err(e) => vec![format!("the body is not JSON: {e}")],
        }
    }

    /// Checks the fake's own answer against the operation's response schema, with exact names.
    pub fn check_response(&self, op: &Operation, status: u16, body: &[u8]) -> Vec<String> {
        let key = if (200..300).contains(&status) { status.to_string() } else { "default".to_string() };
        let schema = &op.responses[&key]["schema"];
        if schema.is_null() {
            return Vec::new();
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => self.check_json(schema, &value, "response", Names::Exact),
            Err(e) => vec![format!("the {status} answer to `{}` is not JSON: {e}", op.id)],
        }
    }

    /// `value` with every field spelt as defined: protojson reads either spelling and answers with one.
    pub fn canonical(&self, schema: &Value, value: &Value) -> Value {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/definitions/");
            return self.canonical(&self.definitions[name], value);
        }
        match value {
            Value::Object(object) => {
                let properties = schema["properties"].as_object();
                let extra = &schema["additionalProperties"];
                let fields = object.iter().map(|(key, item)| {
                    match properties.and_then(|p| p.iter().find(|(name, _)| spelt_as(key, name, Names::Either))) {
                        Some((name, property)) => (name.clone(), self.canonical(property, item)),
                        None => (key.clone(), self.canonical(extra, item)),
                    }
                });
                Value::Object(fields.collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| self.canonical(&schema["items"], i)).collect()),
            other => other.clone(),
        }
    }

    /// Every way `value` breaks `schema`; `at` names the place (`body.runtime_config`).
    pub fn check_json(&self, schema: &Value, value: &Value, at: &str, names: Names) -> Vec<String> {
        let mut problems = Vec::new();
        self.check_value(schema, None, value, at, names, &mut problems);
        problems
    }

    fn check_value(
        &self,
        schema: &Value,
        definition: Option<&str>,
        value: &Value,
        at: &str,
        names: Names,
        problems: &mut Vec<String>,
    ) {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/definitions/");
            let target = self.definitions.get(name).unwrap_or_else(|| panic!("`{reference}` is not defined"));
            return self.check_value(target, Some(name), value, at, names, problems);
        }
        if value.is_null() && names == Names::Either {
            return; // protojson reads `null` as "not set"
        }
        if let Some(allowed) = schema["enum"].as_array() {
            // protojson also reads an enum from its number
            let by_number = names == Names::Either && value.as_u64().is_some_and(|n| (n as usize) < allowed.len());
            if !allowed.contains(value) && !by_number {
                let list: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                problems.push(format!("`{at}` is {value}, not one of {}", list.join(", ")));
            }
            return;
        }
        match schema["type"].as_str() {
            Some("object") => self.check_object(schema, definition, value, at, names, problems),
            Some("array") => match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check_value(&schema["items"], None, item, &format!("{at}[{i}]"), names, problems);
                    }
                }
                None => problems.push(format!("`{at}` must be an array, got {}", kind(value))),
            },
            Some(_) => {
                if let Some(problem) = scalar_json_problem(schema, value, names) {
                    problems.push(format!("`{at}` {problem}"));
                }
            }
            None => {} // `{}`: a google.protobuf.Value, anything goes
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        definition: Option<&str>,
        value: &Value,
        at: &str,
        names: Names,
        problems: &mut Vec<String>,
    ) {
        let Some(object) = value.as_object() else {
            problems.push(format!("`{at}` must be an object, got {}", kind(value)));
            return;
        };
        let properties = schema["properties"].as_object();
        let extra = schema.get("additionalProperties");
        if properties.is_none() && extra.is_none() {
            return; // a google.protobuf.Struct (`pipeline_spec`): opaque
        }
        let mut fields_seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (key, item) in object {
            let property = properties.and_then(|p| p.iter().find(|(name, _)| spelt_as(key, name, names)));
            match (property, extra) {
                (Some((name, property)), _) => {
                    if let Some(first) = fields_seen.insert(name.as_str(), key.as_str()) {
                        problems.push(format!("`{at}` sets field `{name}` twice (`{first}` and `{key}`)"));
                    }
                    self.check_value(property, None, item, &format!("{at}.{key}"), names, problems);
                }
                (None, Some(extra)) => self.check_value(extra, None, item, &format!("{at}.{key}"), names, problems),
                (None, None) => problems.push(format!(
                    "unknown field `{key}` in `{at}`{}; known fields: {}",
                    definition.map(|d| format!(" (a `{d}`)")).unwrap_or_default(),
                    properties.map(|p| p.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()
                )),
            }
        }
        for (oneof, members) in definition.and_then(|d| self.oneofs.get(d)).into_iter().flatten() {
            let set: Vec<&str> = members
                .iter()
                .filter(|m| object.iter().any(|(k, v)| spelt_as(k, m, names) && !v.is_null()))
                .map(String::as_str)
                .collect();
            if set.len() > 1 {
                problems.push(format!("`{at}` sets {} of oneof `{oneof}`; at most one may be set", set.join(" and ")));
            }
        }
    }
}

impl Segment {
    fn parse(text: &str) -> Segment {
        match text.strip_prefix('{').and_then(|t| t.split_once('}')) {
            Some((name, suffix)) => Segment::Param { name: name.to_string(), suffix: suffix.to_string() },
            None => Segment::Literal(text.to_string()),
        }
    }
}

impl Operation {
    fn match_path(&self, segments: &[&str]) -> Option<BTreeMap<String, String>> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (template, actual) in self.segments.iter().zip(segments) {
            match template {
                Segment::Literal(literal) => (literal == actual).then_some(())?,
                Segment::Param { name, suffix } => {
                    let value = actual.strip_suffix(suffix.as_str())?;
                    params.insert(name.clone(), decode(value));
                }
            }
        }
        Some(params)
    }

    /// Literal characters in the template: `runs/{id}:terminate` beats `runs/{id}`.
    fn specificity(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.len(),
                Segment::Param { suffix, .. } => suffix.len(),
            })
            .sum()
    }

    fn body_schema(&self) -> Option<&Value> {
        self.parameters.iter().find(|p| p["in"] == "body").map(|p| &p["schema"])
    }

    pub fn has_form(&self) -> bool {
        self.parameters.iter().any(|p| p["in"] == "formData")
    }
}

/// A multipart body: every part is a declared form parameter, sent once; files have a file name;
/// required parameters are present.
fn check_form(op: &Operation, request: &Request) -> Vec<String> {
    let content_type = request.header("content-type").unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        return vec![format!("`{}` takes multipart/form-data, sent as `{content_type}`", op.id)];
    }
    let declared: Vec<&Value> = op.parameters.iter().filter(|p| p["in"] == "formData").collect();
    let mut problems = Vec::new();
    for (i, part) in request.form.iter().enumerate() {
        let Some(param) = declared.iter().find(|p| p["name"] == part.name.as_str()) else {
            let known: Vec<&str> = declared.iter().filter_map(|p| p["name"].as_str()).collect();
            problems.push(format!("unknown form field `{}` (`{}` declares: {})", part.name, op.id, known.join(", ")));
            continue;
        };
        if request.form[..i].iter().any(|p: &FormPart| p.name == part.name) {
            problems.push(format!("form field `{}` is sent twice", part.name));
        }
        if param["type"] == "file" && part.file_name.is_none() {
            problems.push(format!("form field `{}` must be a file (with a file name)", part.name));
        }
    }
    for param in declared {
        let name = param["name"].as_str().unwrap_or("");
        if param["required"] == true && !request.form.iter().any(|p| p.name == name) {
            problems.push(format!("required form field `{name}` is missing"));
        }
    }
    problems
}

/// Whether `key` names the field defined as `name`: exactly, or (for requests) as either of the two
/// spellings protojson accepts, the proto name and the lowerCamelCase JSON name.
fn spelt_as(key: &str, name: &str, names: Names) -> bool {
    key == name || names == Names::Either && (key == camel(&snake(name)) || key == snake(name))
}

pub fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A query parameter's text against its declared scalar type.
fn scalar_text_problem(schema: &Value, text: &str) -> Option<String> {
    if let Some(allowed) = schema["enum"].as_array() {
        return (!allowed.iter().any(|v| v == text)).then(|| format!("`{text}` is not one of {}", list(allowed)));
    }
    let ok = match schema["type"].as_str() {
        Some("integer") => integer_fits(text, schema["format"].as_str()),
        Some("number") => text.parse::<f64>().is_ok(),
        Some("boolean") => matches!(text, "true" | "false"),
        _ => true,
    };
    (!ok).then(|| format!("`{text}` is not {}", type_name(schema)))
}

/// A JSON scalar against its schema. protojson also reads 64-bit integers (and, leniently, any
/// integer) from strings, and writes 64-bit integers as strings.
fn scalar_json_problem(schema: &Value, value: &Value, names: Names) -> Option<String> {
    let format = schema["format"].as_str();
    let ok = match (schema["type"].as_str(), value) {
        (Some("string"), Value::String(s)) => match format {
            Some("int64" | "uint64") => integer_fits(s, format),
            Some("date-time") => rfc3339(s),
            _ => true,
        },
        (Some("string"), Value::Number(n)) => {
            names == Names::Either && matches!(format, Some("int64" | "uint64")) && n.is_i64()
        }
        (Some("integer"), Value::Number(n)) => integer_fits(&n.to_string(), format),
        (Some("integer"), Value::String(s)) => names == Names::Either && integer_fits(s, format),
        (Some("number"), Value::Number(_)) => true,
        (Some("boolean"), Value::Bool(_)) => true,
        _ => false,
    };
    (!ok).then(|| format!("must be {}, got {value}", type_name(schema)))
}

fn integer_fits(text: &str, format: Option<&str>) -> bool {
    match format {
        Some("int32") => text.parse::<i32>().is_ok(),
        Some("uint32") => text.parse::<u32>().is_ok(),
        Some("uint64") => text.parse::<u64>().is_ok(),
        _ => text.parse::<i64>().is_ok(),
    }
}

fn rfc3339(text: &str) -> bool {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok()
}

fn type_name(schema: &Value) -> String {
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some(t), Some(f)) => format!("{t} ({f})"),
        (Some(t), None) => t.to_string(),
        _ => "a value".to_string(),
    }
}

fn list(values: &[Value]) -> String {
    values.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The `oneof`s of a `.proto` file as (message path `Outer.Inner`, oneof name, member fields), read by
/// following braces line by line; enough for the protoc-formatted files in the corpus.
fn proto_oneofs(proto: &str) -> Vec<(String, String, Vec<String>)> {
    enum Block {
        Message(String),
        Oneof(String, Vec<String>),
        Other,
    }
    let mut stack: Vec<Block> = Vec::new();
    let mut found = Vec::new();
    for line in proto.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["message", name, "{", ..] => stack.push(Block::Message(name.to_string())),
            ["oneof", name, "{", ..] => stack.push(Block::Oneof(name.to_string(), Vec::new())),
            [_, name, "=", ..] if matches!(stack.last(), Some(Block::Oneof(..))) => {
                if let Some(Block::Oneof(_, fields)) = stack.last_mut() {
                    fields.push(name.to_string());
                }
            }
            _ => {
                for c in line.chars() {
                    match c {
                        '{' => stack.push(Block::Other),
                        '}' => {
                            if let Some(Block::Oneof(name, fields)) = stack.pop() {
                                let message: Vec<&str> = stack
                                    .iter()
                                    .filter_map(|b| match b {
                                        Block::Message(m) => Some(m.as_str()),
                                        _ => None,
                                    })
                                    .collect();
                                found.push((message.join("."), name, fields));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    found
}
