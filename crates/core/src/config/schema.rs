//! The JSON Schema (draft 2020-12) of the build file, for editors and other tools (`pipewright schema`).
//!
//! Written by hand beside the decoder (`model`, `extensions`), which reads YAML nodes field by field
//! rather than through serde, and kept in step with it by a test that runs both over the corpus
//! (`tests/integration/schema.rs`). It follows what the decoder accepts, not an idealised file:
//! - every key may be written in lowerCamelCase or snake_case (not both), and unknown keys are errors
//!   (`additionalProperties: false`);
//! - a null value counts as absent, so every optional field may be `null`;
//! - a text field takes any scalar (`3` and `true` are read as their text), an integer may be written
//!   as a string (proto-JSON), and a single value where a list of text belongs is a list of one;
//! - durations are seconds with an `s` suffix.
//!
//! What a schema cannot say is left to `pipewright validate`: substitution references, limits that
//! compare values (a step's timeout under the build's), `waitFor` order, secrets and volumes used
//! consistently, regular expressions and globs that must compile, names that must be unique.

use serde_json::{Map, Value, json};

use super::extensions::{BACKENDS, EVENTS, GATE_OPS};
use super::model::{
    ARTIFACT_UPLOADS, DEFAULT_LOGS_BUCKET_BEHAVIORS, DISK_SIZE_GB, LOG_STREAMING_OPTIONS, LOGGING_MODES, MACHINE_TYPES,
    SOURCE_PROVENANCE_HASHES, SUBSTITUTION_OPTIONS, VERIFY_OPTIONS,
};
use super::validate::{MAX_ARG, MAX_ARGS, MAX_ENV, MAX_ENV_ENTRY, MAX_IMAGES, MAX_NAME, MAX_STEPS, MAX_TAGS};
use crate::subst::Limits;

/// The schema document, `$defs` included.
pub fn schema() -> Value {
    let mut root = build().into_value();
    let object = root.as_object_mut().expect("the build is an object schema");
    let mut head = Map::new();
    head.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    head.insert("title".into(), json!("pipewright build file"));
    head.append(object);
    head.insert("$defs".into(), defs());
    Value::Object(head)
}

/// An object schema: fields under both spellings, `null` allowed for each, unknown keys refused.
struct Obj {
    description: &'static str,
    properties: Map<String, Value>,
    all_of: Vec<Value>,
}

impl Obj {
    fn new(description: &'static str) -> Obj {
        Obj { description, properties: Map::new(), all_of: Vec::new() }
    }

    /// An optional field; `null` means absent.
    fn field(self, camel: &'static str, description: &'static str, schema: Value) -> Obj {
        self.put(camel, json!({"description": description, "anyOf": [schema, {"type": "null"}]}))
    }

    /// A field that may not be `null` when present.
    fn strict_field(self, camel: &'static str, description: &'static str, mut schema: Value) -> Obj {
        schema.as_object_mut().expect("an object schema").insert("description".into(), json!(description));
        self.put(camel, schema)
    }

    fn put(mut self, camel: &'static str, schema: Value) -> Obj {
        let snake = snake_case(camel);
        if snake != camel {
            self.properties.insert(snake.clone(), schema.clone());
            self.all_of.push(json!({"not": {"required": [camel, snake]}}));
        }
        self.properties.insert(camel.to_string(), schema);
        self
    }

    /// The field must be present (in either spelling).
    fn required(mut self, camel: &'static str) -> Obj {
        self.all_of.push(present_key(camel));
        self
    }

    /// A further rule on the whole object.
    fn rule(mut self, rule: Value) -> Obj {
        self.all_of.push(rule);
        self
    }

    fn into_value(self) -> Value {
        let mut out = json!({
            "description": self.description,
            "type": "object",
            "properties": self.properties,
            "additionalProperties": false,
        });
        if !self.all_of.is_empty() {
            out["allOf"] = Value::Array(self.all_of);
        }
        out
    }
}

/// `waitFor` → `wait_for` (the decoder's rule).
fn snake_case(camel: &str) -> String {
    super::decode::snake_case(camel)
}

/// The key is present, in either spelling.
fn present_key(camel: &str) -> Value {
    let snake = snake_case(camel);
    if snake == camel {
        json!({"required": [camel]})
    } else {
        json!({"anyOf": [{"required": [camel]}, {"required": [snake]}]})
    }
}

/// The key is present with a value other than `null`, in either spelling.
fn present_value(camel: &str) -> Value {
    let snake = snake_case(camel);
    let one = |name: &str| json!({"required": [name], "properties": {name: {"not": {"type": "null"}}}});
    if snake == camel { one(camel) } else { json!({"anyOf": [one(camel), one(&snake)]}) }
}

fn text() -> Value {
    json!({"$ref": "#/$defs/text"})
}

/// Text of at most `max` characters (the limits count bytes, which are never fewer).
fn bounded_text(max: usize) -> Value {
    json!({"allOf": [text(), {"maxLength": max}]})
}

fn text_list() -> Value {
    json!({"$ref": "#/$defs/textList"})
}

fn text_map() -> Value {
    json!({"$ref": "#/$defs/textMap"})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn integer() -> Value {
    json!({"$ref": "#/$defs/integer"})
}

fn duration() -> Value {
    json!({"$ref": "#/$defs/duration"})
}

fn number() -> Value {
    json!({"$ref": "#/$defs/number"})
}

fn one_of(values: &[&str]) -> Value {
    json!({"enum": values})
}

fn list(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn defs() -> Value {
    json!({
        "text": {
            "description": "text; a YAML number or boolean is read as the text it is written with",
            "type": ["string", "number", "boolean"]
        },
        "textList": {
            "description": "a list of text; a single value is read as a list of one (with a warning)",
            "anyOf": [{"type": "array", "items": {"$ref": "#/$defs/text"}}, {"$ref": "#/$defs/text"}]
        },
        "textMap": {
            "description": "a mapping of names to text (`null` is the empty string)",
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]}
        },
        "integer": {
            "description": "an integer, or a string holding one (proto-JSON writes int64 as a string)",
            "anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^\\s*[+-]?[0-9]+\\s*$"}]
        },
        "number": {
            "description": "a number, or a string holding one",
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": "^\\s*[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?\\s*$"}
            ]
        },
        "duration": {
            "description": "a protobuf Duration: seconds with at most nine decimals and an `s` suffix, e.g. `600s`",
            "type": "string",
            "pattern": "^\\s*[0-9]{1,12}(\\.[0-9]{1,9})?s\\s*$"
        },
        "step": step(Obj::new("a build step: a container run in /workspace")).into_value(),
        "volume": Obj::new("a named volume mounted into steps")
            .field("name", "the volume's name", text())
            .field("path", "where it is mounted (absolute)", text())
            .required("name")
            .required("path")
            .into_value(),
        "upload": upload(),
        "run": run(Obj::new("how the pipeline is run after the build")).into_value(),
    })
}

fn build() -> Obj {
    let limits = Limits::default();
    let options = Obj::new("build-wide options")
        .field("env", "`KEY=VALUE` for every step", env_list())
        .field("secretEnv", "secret env names for every step", text_list())
        .field("volumes", "volumes for every step", list(json!({"$ref": "#/$defs/volume"})))
        .field("substitutionOption", "whether unknown substitutions are errors", one_of(SUBSTITUTION_OPTIONS))
        .field("dynamicSubstitutions", "expand bash-style substitutions in substitution values", boolean())
        .field("automapSubstitutions", "substitutions as env vars of every step", boolean())
        .field(
            "sourceProvenanceHash",
            "no effect here",
            json!({"anyOf": [list(one_of(SOURCE_PROVENANCE_HASHES)), one_of(SOURCE_PROVENANCE_HASHES)]}),
        )
        .field("machineType", "the CPUs and memory of each step (Cloud Build's sizes)", one_of(MACHINE_TYPES))
        .field(
            "diskSizeGb",
            "the size of the build's workspace, in GiB",
            json!({"anyOf": [
                {"type": "integer", "minimum": DISK_SIZE_GB.start(), "maximum": DISK_SIZE_GB.end()},
                {"$ref": "#/$defs/integer"}
            ]}),
        )
        .field("logStreamingOption", "no effect here", one_of(LOG_STREAMING_OPTIONS))
        .field("logging", "no effect here", one_of(LOGGING_MODES))
        .field("defaultLogsBucketBehavior", "no effect here", one_of(DEFAULT_LOGS_BUCKET_BEHAVIORS))
        .field("requestedVerifyOption", "no effect here", one_of(VERIFY_OPTIONS))
        .field("enableStructuredLogging", "no effect here", boolean())
        .field("pubsubTopic", "no effect here", text())
        .field("pool", "no effect here", Obj::new("a private pool").field("name", "the pool", text()).into_value())
        .field("workerPool", "no effect here", text());
    let kms_secret = Obj::new("KMS-encrypted secret values (here the values come from the local secrets map)")
        .field("kmsKeyName", "the KMS key", text())
        .strict_field("secretEnv", "env name → encrypted value", json!({"$ref": "#/$defs/textMap", "minProperties": 1}))
        .required("secretEnv");
    let available_secrets = Obj::new("secrets the steps may use")
        .field(
            "secretManager",
            "Secret Manager secrets",
            list(
                Obj::new("a Secret Manager secret")
                    .field("versionName", "`projects/P/secrets/S/versions/V`", text())
                    .field("env", "the env name steps use it by", text())
                    .required("versionName")
                    .required("env")
                    .into_value(),
            ),
        )
        .field(
            "inline",
            "KMS-encrypted values",
            list(
                Obj::new("KMS-encrypted values")
                    .field("kmsKeyName", "the KMS key", text())
                    .field("envMap", "env name → encrypted value", text_map())
                    .into_value(),
            ),
        );
    let upload_fields = |names: &[&'static str], description: &'static str| {
        let mut item = Obj::new(description);
        for name in names {
            item = item.put(name, json!({}));
        }
        list(item.into_value())
    };
    let artifacts = Obj::new("what the build publishes")
        .field("images", "images to push (must equal `images` when both are given)", text_list())
        .field(
            "objects",
            "no effect here",
            Obj::new("files for Cloud Storage")
                .field("location", "`gs://…`", text())
                .field("paths", "files to upload", text_list())
                .into_value(),
        );
    let artifacts = ARTIFACT_UPLOADS.iter().fold(artifacts, |obj, (field, known)| {
        obj.field(field, "no effect here", upload_fields(known, "an upload to a Google registry"))
    });
    let obj = Obj::new("a build file: Cloud Build's `cloudbuild.yaml` plus pipewright's keys")
        .strict_field(
            "steps",
            "the steps, run in order unless `waitFor` says otherwise",
            json!({"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": {"$ref": "#/$defs/step"}}),
        )
        .required("steps")
        .field("timeout", "the build's timeout (at most `86400s`)", duration())
        .field("queueTtl", "how long the build may wait in the queue", duration())
        .field("logsBucket", "no effect here (logs stay in the data directory)", text())
        .field("options", "build-wide options", options.into_value())
        .field(
            "substitutions",
            "user substitutions, `_KEY: value`",
            json!({
                "type": "object",
                "maxProperties": limits.max_entries,
                "propertyNames": {"pattern": "^_[A-Z0-9_]+$", "maxLength": limits.max_key_bytes},
                "additionalProperties": {"anyOf": [
                    {"type": "string", "maxLength": limits.max_value_bytes},
                    {"type": ["number", "boolean", "null"]}
                ]}
            }),
        )
        .field("tags", "tags of the build", json!({"anyOf": [{"type": "array", "maxItems": MAX_TAGS, "items": text()}, text()]}))
        .field("serviceAccount", "no effect here", text())
        .field("secrets", "KMS-encrypted secrets", list(kms_secret.into_value()))
        .field("availableSecrets", "secrets the steps may use", available_secrets.into_value())
        .field("images", "images to push at the end", json!({"anyOf": [{"type": "array", "maxItems": MAX_IMAGES, "items": bounded_text(MAX_NAME)}, bounded_text(MAX_NAME)]}))
        .field("artifacts", "what the build publishes", artifacts.into_value())
        .field("dependencies", "no effect here", list(json!({"type": "object", "maxProperties": 0})))
        .field("gitConfig", "no effect here", json!({"type": "object", "maxProperties": 0}));
    extensions(obj)
}

/// `KEY=VALUE` entries.
fn env_list() -> Value {
    let entry = json!({"type": "string", "pattern": "=", "maxLength": MAX_ENV_ENTRY});
    json!({"anyOf": [{"type": "array", "maxItems": MAX_ENV, "items": entry}, entry]})
}

/// The fields of a step (also `pipeline.compile`).
fn step(obj: Obj) -> Obj {
    obj.field("name", "the container image to run", json!({"allOf": [bounded_text(MAX_NAME), {"not": {"const": ""}}]}))
        .required("name")
        .field(
            "args",
            "arguments (the command when there is no `entrypoint`)",
            json!({"anyOf": [{"type": "array", "maxItems": MAX_ARGS, "items": bounded_text(MAX_ARG)}, bounded_text(MAX_ARG)]}),
        )
        .field("env", "`KEY=VALUE` entries", env_list())
        .field("dir", "working directory, relative to /workspace", bounded_text(MAX_NAME))
        .field("id", "the step's id, for `waitFor`", json!({"allOf": [text(), {"not": {"const": "-"}}]}))
        .field("waitFor", "ids of earlier steps to wait for; `-` starts at once", text_list())
        .field("entrypoint", "the command instead of the image's entrypoint", text())
        .field("secretEnv", "secret env names (from `availableSecrets` or `secrets`)", text_list())
        .field("volumes", "named volumes shared with other steps", list(json!({"$ref": "#/$defs/volume"})))
        .field("timeout", "the step's timeout", duration())
        .field("script", "a script to run instead of `args`", text())
        .field("allowFailure", "the build goes on when the step fails", boolean())
        .field("allowExitCodes", "exit codes that count as success", json!({"anyOf": [list(integer()), integer()]}))
        .field("automapSubstitutions", "substitutions as env vars of this step", boolean())
}

fn upload() -> Value {
    Obj::new("one destination for the compiled spec")
        .field("oci", "an OCI repository to push the spec to as an artifact", text())
        .field(
            "kfp",
            "a Kubeflow Pipelines API to upload a pipeline version to",
            Obj::new("a Kubeflow Pipelines API")
                .field("host", "the API's base URL", text())
                .field("pipeline", "the pipeline name (default: `pipeline.name`)", text())
                .required("host")
                .into_value(),
        )
        .field("artifactRegistry", "an Artifact Registry Kubeflow repository URL", text())
        .rule(json!({"oneOf": [present_value("oci"), present_value("kfp"), present_value("artifactRegistry")]}))
        .into_value()
}

fn run(obj: Obj) -> Obj {
    obj.field("backend", "where the pipeline runs", one_of(BACKENDS))
        .field("parameters", "pipeline parameters (YAML types kept)", json!({"type": "object"}))
        .field("wait", "wait for the run to end", boolean())
        .field("timeout", "the longest the run may take", duration())
        .field("metrics", "run metrics to keep in the build record", text_list())
        .field("host", "the Kubeflow Pipelines API (`kfp`) or an endpoint override (`vertex`)", text())
        .field("project", "the Google Cloud project (`vertex`)", text())
        .field("location", "the Google Cloud region (`vertex`)", text())
        .field("pipelineRoot", "where the run keeps its artifacts", text())
        .field("serviceAccount", "the run's service account (`vertex`)", text())
}

fn extensions(obj: Obj) -> Obj {
    let component = Obj::new("a component image, built from a Docker context")
        .field("name", "the component's name (the image is `<registry>/<name>`)", text())
        .required("name")
        .field("context", "the Docker build context", text())
        .required("context")
        .field("dockerfile", "the Dockerfile, relative to the context", text())
        .field(
            "spec",
            "the component spec(s) whose image is set to the built one",
            json!({"anyOf": [{"type": "array", "items": text()}, text()]}),
        )
        .field("buildArgs", "Docker build arguments", text_map())
        .field("target", "the Dockerfile stage to build", text());
    let components = Obj::new("the component images of the pipeline")
        .field("registry", "the repository prefix of the images", text())
        .strict_field("items", "the components", list(component.into_value()))
        .required("items");
    let pipeline = Obj::new("the Kubeflow pipeline: compile, check and upload its spec")
        .field("name", "the pipeline's name", text())
        .required("name")
        .field("compile", "the step that compiles the spec", step(Obj::new("a step")).into_value())
        .field("spec", "the compiled spec, relative to the build's root", text())
        .required("spec")
        .field("upload", "where the spec goes", list(json!({"$ref": "#/$defs/upload"})));
    let gate = Obj::new("a metric the build's run must reach")
        .field("name", "the metric", text())
        .required("name")
        .field("op", "how the metric compares with `value`", one_of(GATE_OPS))
        .field("value", "the threshold", number())
        .field(
            "improves",
            "the least gain over the release now in the environment",
            Obj::new("an improvement over the current release")
                .field("over", "what to compare with", one_of(&["current"]))
                .field("by", "the least gain", number())
                .into_value(),
        )
        .rule(json!({"anyOf": [present_value("improves"), {"allOf": [present_value("op"), present_value("value")]}]}));
    let environment = Obj::new("an environment builds are promoted to")
        .field("name", "the environment (it becomes an image tag)", text())
        .required("name")
        .field("branches", "regular expressions of the branches it takes builds from", text_list())
        .field("tags", "regular expressions of the tags it takes builds from", text_list())
        .field("auto", "promote at the end of every build that passes the rules", boolean())
        .field("after", "the environment a build must have been in first", text())
        .field(
            "gates",
            "conditions on the build's run",
            Obj::new("gates").field("metrics", "metric gates", list(gate.into_value())).into_value(),
        )
        .field(
            "approval",
            "approvals a promotion needs",
            Obj::new("approvals")
                .field(
                    "required",
                    "how many approvals (default 1)",
                    json!({"anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/integer"}]}),
                )
                .field("approvers", "who may approve", text_list())
                .field("preventSelfApproval", "the commit's author and the promoter may not approve", boolean())
                .into_value(),
        )
        .field("run", "how to run the pipeline in this environment", json!({"$ref": "#/$defs/run"}))
        .field("upload", "where the spec goes on promotion", list(json!({"$ref": "#/$defs/upload"})));
    let trigger = Obj::new("when a forge event starts a build")
        .field("name", "the trigger's name", text())
        .required("name")
        .field("event", "the kind of event", one_of(EVENTS))
        .required("event")
        .field("branch", "a regular expression of branch names", text())
        .field("tag", "a regular expression of tag names", text())
        .field("invertRegex", "match what `branch`/`tag` does not", boolean())
        .field("ignoredFiles", "globs of changed files that do not start a build", text_list())
        .field("includedFiles", "globs, one of which a changed file must match", text_list())
        .field("substitutions", "substitutions for builds of this trigger", text_map())
        .field(
            "concurrency",
            "builds of one group run one at a time",
            Obj::new("a concurrency group")
                .field("group", "the group", text())
                .required("group")
                .field("cancelInProgress", "a new build cancels the running one", boolean())
                .into_value(),
        );
    obj.field("components", "pipewright: component images to build", components.into_value())
        .field("pipeline", "pipewright: the Kubeflow pipeline", pipeline.into_value())
        .field("run", "pipewright: how to run the pipeline", json!({"$ref": "#/$defs/run"}))
        .field("environments", "pipewright: environments and their promotion rules", list(environment.into_value()))
        .field("triggers", "pipewright: triggers", list(trigger.into_value()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema object inside `value`, with its JSON pointer.
    fn walk<'a>(value: &'a Value, pointer: String, out: &mut Vec<(String, &'a Map<String, Value>)>) {
        match value {
            Value::Object(map) => {
                out.push((pointer.clone(), map));
                for (key, child) in map {
                    walk(child, format!("{pointer}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{pointer}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_every_object_is_closed() {
        let schema = schema();
        let mut objects = Vec::new();
        walk(&schema, String::new(), &mut objects);
        for (pointer, map) in &objects {
            if let Some(Value::String(target)) = map.get("$ref") {
                let name = target.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("{pointer}: {target}"));
                assert!(schema["$defs"].get(name).is_some(), "{pointer}: `{target}` does not resolve");
            }
            if map.get("type") == Some(&json!("object")) && map.contains_key("properties") {
                assert_eq!(map.get("additionalProperties"), Some(&json!(false)), "{pointer} is not closed");
            }
        }
    }

    #[test]
    fn fields_have_both_spellings() {
        let schema = schema();
        let step = &schema["$defs"]["step"]["properties"];
        for name in ["waitFor", "wait_for", "secretEnv", "secret_env", "allowExitCodes", "allow_exit_codes", "name"] {
            assert!(step.get(name).is_some(), "step field `{name}`");
        }
        let run = &schema["$defs"]["run"]["properties"];
        for name in super::super::extensions::RUN_SETTINGS {
            assert!(run.get(*name).is_some() && run.get(snake_case(name)).is_some(), "run setting `{name}`");
        }
        assert_eq!(schema["properties"]["queue_ttl"], schema["properties"]["queueTtl"]);
        assert!(schema["properties"].get("source").is_none(), "`source` is refused, as the decoder does");
    }
}
