//! JSON value helpers: numbers in protobuf's canonical form, values as command-line text, and YAML
//! nodes as JSON.

use serde_json::{Map, Value};

use crate::yaml;

/// A number as protobuf's JSON mapping prints it: integral values without a fraction (`2`, not
/// `2.0`), so a double parameter of 2 renders as the backend renders it. NaN and infinities, which JSON
/// cannot hold, become null.
pub fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.007_199_254_740_992e15 {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

/// Numbers anywhere in `value` in their canonical form (see [`number`]).
pub fn canonical(value: Value) -> Value {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => n.as_f64().map_or(Value::Number(n), number),
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, canonical(v))).collect()),
        other => other,
    }
}

/// A parameter value as text, as the backend renders it into a command line: strings raw, numbers in
/// the shortest plain decimal (`2`, `0.5`), booleans `true`/`false`, null empty, lists and structs as
/// compact JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => f.to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A YAML node as JSON, resolving plain scalars as YAML's core schema does (`1000.0` is a number,
/// `'1000.0'` a string). Infinities and NaN, which JSON cannot hold, stay strings.
pub(crate) fn to_json(node: &yaml::Node) -> Value {
    match &node.value {
        yaml::Value::Scalar { text, plain: true } => scalar(text, node.is_null()),
        yaml::Value::Scalar { text, .. } => Value::String(text.clone()),
        yaml::Value::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        yaml::Value::Map(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let key = match &key.value {
                    yaml::Value::Scalar { text, .. } => text.clone(),
                    _ => to_json(key).to_string(),
                };
                // A key written twice: the last one wins, as in PyYAML and JSON parsers.
                object.insert(key, to_json(value));
            }
            Value::Object(object)
        }
    }
}

fn scalar(text: &str, null: bool) -> Value {
    if null {
        return Value::Null;
    }
    if let Some(b) = yaml::parse_bool(text) {
        return Value::Bool(b);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if is_float(text)
        && let Some(n) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

/// YAML 1.2 core-schema float syntax, without the special values.
fn is_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (whole.is_empty() || digits(whole))
                && (fraction.is_empty() || digits(fraction))
                && !(whole.is_empty() && fraction.is_empty())
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}
