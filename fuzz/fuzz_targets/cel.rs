//! The CEL subset (`runner::cel`): task conditions and parameter selectors from IR we do not control.
//!
//! Input: a selector byte (0: `condition`, 1: `select`, else `evaluate`), the expression, then
//! optionally a NUL and a JSON value (the task's inputs, or the selected parameter value).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pipewright::runner::cel::{self, CelValue};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (expression, value) = match rest.iter().position(|b| *b == 0) {
        Some(at) => (&rest[..at], serde_json::from_slice::<Value>(&rest[at + 1..]).ok()),
        None => (rest, None),
    };
    let Ok(expression) = std::str::from_utf8(expression) else { return };
    match selector % 3 {
        0 => {
            let inputs = value.unwrap_or_else(|| {
                json!({"parameter_values": {"n": 3, "s": "a", "b": true, "l": [1, "x"], "m": {"k": 1.5}},
                       "artifacts": {"a": {"artifacts": [{"uri": "x"}]}}})
            });
            let result = cel::condition(expression, &inputs);
            // `condition` is `evaluate` with `inputs` bound, narrowed to a bool.
            let variables = BTreeMap::from([("inputs".to_string(), CelValue::from_json(&inputs))]);
            match (&result, cel::evaluate(expression, &variables)) {
                (Ok(b), Ok(CelValue::Bool(e))) => assert_eq!(*b, e),
                (Ok(_), other) => panic!("condition gave a bool, evaluate gave {other:?}"),
                (Err(_), Ok(CelValue::Bool(b))) => panic!("condition failed, evaluate gave {b}"),
                (Err(e), _) => assert!(!e.message.is_empty()),
            }
        }
        1 => {
            let value = value.unwrap_or_else(|| json!({"a": [1, 2.5, "x"], "b": {"c": null}}));
            let first = cel::select(expression, &value);
            assert_eq!(first, cel::select(expression, &value), "select is not deterministic");
        }
        _ => {
            let mut variables = BTreeMap::new();
            if let Some(value) = &value {
                variables.insert("x".to_string(), CelValue::from_json(value));
            }
            variables.insert("i".to_string(), CelValue::Int(i64::MIN));
            variables.insert("d".to_string(), CelValue::Double(f64::NAN));
            if let Err(e) = cel::evaluate(expression, &variables) {
                assert!(!e.message.is_empty());
            }
        }
    }
});
