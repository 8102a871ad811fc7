//! The subset of CEL (Common Expression Language) that the KFP compiler writes into IR
//! (`docs/research/kfp.md` §3.5): task conditions over `inputs.parameter_values` and
//! `inputs.artifacts`, and `parameterExpressionSelector`s over one value (`parseJson(string_value)["a"]`,
//! `struct_value["k"]`).
//!
//! Typing follows cel-go as the KFP backend configures it: numbers read from parameter values and
//! from `parseJson` are doubles, literals like `5` are ints, and comparing an int with a double is an
//! error (`no such overload`), which is why the compiler wraps values in `int(…)`. Anything outside
//! the subset is an error, never a panic: the text comes from files we do not control.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

/// Nesting deeper than this is refused: real conditions are a few levels deep, and recursion on
/// crafted input must not exhaust the stack.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CelError {
    pub message: String,
}

fn error<T>(message: impl Into<String>) -> Result<T, CelError> {
    Err(CelError { message: message.into() })
}

/// A CEL value.
#[derive(Clone, Debug, PartialEq)]
pub enum CelValue {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    String(String),
    List(Vec<CelValue>),
    Map(BTreeMap<String, CelValue>),
}

impl CelValue {
    fn type_name(&self) -> &'static str {
        match self {
            CelValue::Null => "null_type",
            CelValue::Bool(_) => "bool",
            CelValue::Int(_) => "int",
            CelValue::Double(_) => "double",
            CelValue::String(_) => "string",
            CelValue::List(_) => "list",
            CelValue::Map(_) => "map",
        }
    }

    /// JSON numbers are doubles, as `google.protobuf.Value` holds them.
    pub fn from_json(value: &Json) -> CelValue {
        match value {
            Json::Null => CelValue::Null,
            Json::Bool(b) => CelValue::Bool(*b),
            Json::Number(n) => CelValue::Double(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => CelValue::String(s.clone()),
            Json::Array(items) => CelValue::List(items.iter().map(CelValue::from_json).collect()),
            Json::Object(map) => CelValue::Map(map.iter().map(|(k, v)| (k.clone(), CelValue::from_json(v))).collect()),
        }
    }

    /// The value as JSON; integral doubles become JSON integers, as protobuf's JSON prints them.
    pub fn to_json(&self) -> Json {
        match self {
            CelValue::Null => Json::Null,
            CelValue::Bool(b) => Json::Bool(*b),
            CelValue::Int(i) => Json::from(*i),
            CelValue::Double(d) => super::ir::number(*d),
            CelValue::String(s) => Json::String(s.clone()),
            CelValue::List(items) => Json::Array(items.iter().map(CelValue::to_json).collect()),
            CelValue::Map(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

impl fmt::Display for CelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CelValue::String(s) => write!(f, "{s:?}"),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

/// Evaluates a task condition against the task's inputs (`inputs.parameter_values`,
/// `inputs.artifacts`). The result must be a boolean.
pub fn condition(expression: &str, inputs: &Json) -> Result<bool, CelError> {
    let variables = BTreeMap::from([("inputs".to_string(), CelValue::from_json(inputs))]);
    match evaluate(expression, &variables)? {
        CelValue::Bool(b) => Ok(b),
        other => error(format!("a condition must be a bool, this one is {} ({other})", other.type_name())),
    }
}

/// Evaluates a `parameterExpressionSelector` over one parameter value. As in the backend, the value is
/// visible as `string_value` (its text; JSON for lists and structs) and under the name of its kind:
/// `number_value`, `bool_value`, `struct_value`, `list_value` or `null_value`.
pub fn select(expression: &str, value: &Json) -> Result<Json, CelError> {
    let mut variables = BTreeMap::new();
    let kind = match value {
        Json::Null => "null_value",
        Json::Bool(_) => "bool_value",
        Json::Number(_) => "number_value",
        Json::String(_) => "string_value",
        Json::Array(_) => "list_value",
        Json::Object(_) => "struct_value",
    };
    variables.insert(kind.to_string(), CelValue::from_json(value));
    variables.insert("string_value".to_string(), CelValue::String(super::ir::text(value)));
    Ok(evaluate(expression, &variables)?.to_json())
}

/// Parses and evaluates `expression` with the given variables.
pub fn evaluate(expression: &str, variables: &BTreeMap<String, CelValue>) -> Result<CelValue, CelError> {
    let tokens = lex(expression)?;
    let mut parser = Parser { tokens, position: 0, depth: 0 };
    let ast = parser.expression()?;
    if let Some(token) = parser.tokens.get(parser.position) {
        return error(format!("unexpected {token} after the end of the expression"));
    }
    eval(&ast, variables)
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Int(i64),
    Double(f64),
    String(String),
    Ident(String),
    /// Operators and punctuation.
    Symbol(&'static str),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Int(i) => write!(f, "`{i}`"),
            Token::Double(d) => write!(f, "`{d}`"),
            Token::String(s) => write!(f, "{s:?}"),
            Token::Ident(i) => write!(f, "`{i}`"),
            Token::Symbol(s) => write!(f, "`{s}`"),
        }
    }
}

const SYMBOLS: [&str; 22] = [
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", "[", "]", "{", "}", ".", ",", ":", "+", "-", "*", "?",
];

fn lex(text: &str) -> Result<Vec<Token>, CelError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let (string, next) = lex_string(&chars, i)?;
            tokens.push(Token::String(string));
            i = next;
        } else if (c == 'r' || c == 'R') && matches!(chars.get(i + 1), Some('"' | '\'')) {
            let quote = chars[i + 1];
            let end = (i + 2..chars.len())
                .find(|j| chars[*j] == quote)
                .ok_or_else(|| CelError { message: "unterminated string literal".into() })?;
            tokens.push(Token::String(chars[i + 2..end].iter().collect()));
            i = end + 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let (token, next) = lex_number(&chars, i)?;
            tokens.push(token);
            i = next;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == '/' || c == '%' {
            tokens.push(Token::Symbol(if c == '/' { "/" } else { "%" }));
            i += 1;
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(symbol) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                return error(format!("unexpected character `{c}`"));
            };
            tokens.push(Token::Symbol(symbol));
            i += symbol.len();
        }
    }
    Ok(tokens)
}

/// A quoted string starting at `start`; returns it and the index after its closing quote.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), CelError> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((out, i + 1));
        }
        if c == '\\' {
            let escaped =
                chars.get(i + 1).copied().ok_or_else(|| CelError { message: "unterminated string literal".into() })?;
            i += 2;
            match escaped {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' | '\'' | '"' | '`' | '?' => out.push(escaped),
                'u' | 'U' | 'x' => {
                    let width = match escaped {
                        'u' => 4,
                        'U' => 8,
                        _ => 2,
                    };
                    let hex: String = chars.get(i..i + width).map(|h| h.iter().collect()).unwrap_or_default();
                    let code = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    let Some(code) = code.filter(|_| hex.len() == width) else {
                        return error(format!("invalid escape `\\{escaped}{hex}`"));
                    };
                    out.push(code);
                    i += width;
                }
                other => return error(format!("invalid escape `\\{other}`")),
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    error("unterminated string literal")
}

fn lex_number(chars: &[char], start: usize) -> Result<(Token, usize), CelError> {
    if chars[start] == '0' && matches!(chars.get(start + 1), Some('x' | 'X')) {
        let mut i = start + 2;
        while i < chars.len() && chars[i].is_ascii_hexdigit() {
            i += 1;
        }
        let digits: String = chars[start + 2..i].iter().collect();
        let value = i64::from_str_radix(&digits, 16)
            .map_err(|_| CelError { message: format!("invalid integer `0x{digits}`") })?;
        return Ok((Token::Int(value), skip_unsigned(chars, i)));
    }
    let mut i = start;
    let mut double = false;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
        double = true;
        i += 1;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            double = true;
            i = j;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    let text: String = chars[start..i].iter().collect();
    if double {
        let value = text.parse::<f64>().map_err(|_| CelError { message: format!("invalid number `{text}`") })?;
        return Ok((Token::Double(value), i));
    }
    let value = text.parse::<i64>().map_err(|_| CelError { message: format!("integer `{text}` is out of range") })?;
    Ok((Token::Int(value), skip_unsigned(chars, i)))
}

/// Unsigned literals (`1u`) are read as ints: the compiler never writes them, and they compare alike.
fn skip_unsigned(chars: &[char], i: usize) -> usize {
    if matches!(chars.get(i), Some('u' | 'U')) { i + 1 } else { i }
}

#[derive(Clone, Debug, PartialEq)]
enum Ast {
    Literal(CelValue),
    Ident(String),
    List(Vec<Ast>),
    Map(Vec<(Ast, Ast)>),
    Field(Box<Ast>, String),
    Index(Box<Ast>, Box<Ast>),
    Call { target: Option<Box<Ast>>, function: String, args: Vec<Ast> },
    Unary(&'static str, Box<Ast>),
    Binary(&'static str, Box<Ast>, Box<Ast>),
    Conditional(Box<Ast>, Box<Ast>, Box<Ast>),
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn peek_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol)
    }

    fn eat(&mut self, symbol: &str) -> bool {
        let found = self.peek_symbol(symbol);
        if found {
            self.position += 1;
        }
        found
    }

    fn expect(&mut self, symbol: &str) -> Result<(), CelError> {
        if self.eat(symbol) {
            return Ok(());
        }
        match self.peek() {
            Some(token) => error(format!("expected `{symbol}`, found {token}")),
            None => error(format!("expected `{symbol}`, found the end of the expression")),
        }
    }

    fn expression(&mut self) -> Result<Ast, CelError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return error(format!("the expression nests deeper than {MAX_DEPTH} levels"));
        }
        let condition = self.binary(0)?;
        let result = if self.eat("?") {
            let then = self.expression()?;
            self.expect(":")?;
            let otherwise = self.expression()?;
            Ast::Conditional(Box::new(condition), Box::new(then), Box::new(otherwise))
        } else {
            condition
        };
        self.depth -= 1;
        Ok(result)
    }

    /// Binary operators by precedence level, lowest first.
    fn binary(&mut self, level: usize) -> Result<Ast, CelError> {
        const LEVELS: [&[&str]; 5] =
            [&["||"], &["&&"], &["==", "!=", "<", "<=", ">", ">=", "in"], &["+", "-"], &["*", "/", "%"]];
        let Some(operators) = LEVELS.get(level) else { return self.unary() };
        let mut left = self.binary(level + 1)?;
        loop {
            let operator = match self.peek() {
                Some(Token::Symbol(s)) => operators.iter().find(|o| **o == *s).copied(),
                Some(Token::Ident(i)) if i == "in" => operators.iter().find(|o| **o == "in").copied(),
                _ => None,
            };
            let Some(operator) = operator else { return Ok(left) };
            self.position += 1;
            let right = self.binary(level + 1)?;
            left = Ast::Binary(operator, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Ast, CelError> {
        for operator in ["!", "-"] {
            if self.eat(operator) {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return error(format!("the expression nests deeper than {MAX_DEPTH} levels"));
                }
                let operand = self.unary()?;
                self.depth -= 1;
                return Ok(Ast::Unary(operator, Box::new(operand)));
            }
        }
        self.member()
    }

    fn member(&mut self) -> Result<Ast, CelError> {
        let mut ast = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(Token::Ident(name)) = self.peek().cloned() else {
                    return error("expected a field name after `.`");
                };
                self.position += 1;
                if self.eat("(") {
                    let args = self.arguments(")")?;
                    ast = Ast::Call { target: Some(Box::new(ast)), function: name, args };
                } else {
                    ast = Ast::Field(Box::new(ast), name);
                }
            } else if self.eat("[") {
                let index = self.expression()?;
                self.expect("]")?;
                ast = Ast::Index(Box::new(ast), Box::new(index));
            } else {
                return Ok(ast);
            }
        }
    }

    fn arguments(&mut self, close: &str) -> Result<Vec<Ast>, CelError> {
        let mut args = Vec::new();
        if self.eat(close) {
            return Ok(args);
        }
        loop {
            args.push(self.expression()?);
            if self.eat(close) {
                return Ok(args);
            }
            self.expect(",")?;
            // A trailing comma is allowed in list literals.
            if self.eat(close) {
                return Ok(args);
            }
        }
    }

    fn primary(&mut self) -> Result<Ast, CelError> {
        let Some(token) = self.peek().cloned() else {
            return error("the expression ends too early");
        };
        self.position += 1;
        match token {
            Token::Int(i) => Ok(Ast::Literal(CelValue::Int(i))),
            Token::Double(d) => Ok(Ast::Literal(CelValue::Double(d))),
            Token::String(s) => Ok(Ast::Literal(CelValue::String(s))),
            Token::Ident(name) => match name.as_str() {
                "true" => Ok(Ast::Literal(CelValue::Bool(true))),
                "false" => Ok(Ast::Literal(CelValue::Bool(false))),
                "null" => Ok(Ast::Literal(CelValue::Null)),
                _ if self.eat("(") => Ok(Ast::Call { target: None, function: name, args: self.arguments(")")? }),
                _ => Ok(Ast::Ident(name)),
            },
            Token::Symbol("(") => {
                let inner = self.expression()?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Symbol("[") => Ok(Ast::List(self.arguments("]")?)),
            Token::Symbol("{") => self.map_literal(),
            Token::Symbol(other) => error(format!("unexpected `{other}`")),
        }
    }

    fn map_literal(&mut self) -> Result<Ast, CelError> {
        let mut entries = Vec::new();
        if self.eat("}") {
            return Ok(Ast::Map(entries));
        }
        loop {
            let key = self.expression()?;
            self.expect(":")?;
            entries.push((key, self.expression()?));
            if self.eat("}") {
                return Ok(Ast::Map(entries));
            }
            self.expect(",")?;
        }
    }
}

fn eval(ast: &Ast, variables: &BTreeMap<String, CelValue>) -> Result<CelValue, CelError> {
    match ast {
        Ast::Literal(value) => Ok(value.clone()),
        Ast::Ident(name) => match variables.get(name) {
            Some(value) => Ok(value.clone()),
            None => error(format!("undeclared reference to `{name}`")),
        },
        Ast::List(items) => Ok(CelValue::List(items.iter().map(|i| eval(i, variables)).collect::<Result<_, _>>()?)),
        Ast::Map(entries) => {
            let mut map = BTreeMap::new();
            for (key, value) in entries {
                let CelValue::String(key) = eval(key, variables)? else {
                    return error("map keys must be strings here");
                };
                map.insert(key, eval(value, variables)?);
            }
            Ok(CelValue::Map(map))
        }
        Ast::Field(target, name) => field(eval(target, variables)?, name),
        Ast::Index(target, index) => index_into(eval(target, variables)?, eval(index, variables)?),
        Ast::Call { target, function, args } => {
            let mut values = Vec::with_capacity(args.len() + 1);
            if let Some(target) = target {
                values.push(eval(target, variables)?);
            }
            for arg in args {
                values.push(eval(arg, variables)?);
            }
            call(function, values)
        }
        Ast::Unary(operator, operand) => unary(operator, eval(operand, variables)?),
        Ast::Binary("&&", left, right) => logical(false, left, right, variables),
        Ast::Binary("||", left, right) => logical(true, left, right, variables),
        Ast::Binary(operator, left, right) => binary(operator, eval(left, variables)?, eval(right, variables)?),
        Ast::Conditional(condition, then, otherwise) => match eval(condition, variables)? {
            CelValue::Bool(true) => eval(then, variables),
            CelValue::Bool(false) => eval(otherwise, variables),
            other => error(format!("no such overload: `?:` on {}", other.type_name())),
        },
    }
}

/// `&&` and `||` as CEL defines them: the deciding operand wins even if the other one is an error.
fn logical(
    decisive: bool,
    left: &Ast,
    right: &Ast,
    variables: &BTreeMap<String, CelValue>,
) -> Result<CelValue, CelError> {
    let operator = if decisive { "||" } else { "&&" };
    let as_bool = |value: Result<CelValue, CelError>| match value? {
        CelValue::Bool(b) => Ok(b),
        other => error(format!("no such overload: `{operator}` on {}", other.type_name())),
    };
    let left = as_bool(eval(left, variables));
    if left == Ok(decisive) {
        return Ok(CelValue::Bool(decisive));
    }
    let right = as_bool(eval(right, variables));
    match (left, right) {
        (_, Ok(b)) if b == decisive => Ok(CelValue::Bool(decisive)),
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(_), Ok(b)) => Ok(CelValue::Bool(b)),
    }
}

fn field(target: CelValue, name: &str) -> Result<CelValue, CelError> {
    match target {
        CelValue::Map(mut map) => match map.remove(name) {
            Some(value) => Ok(value),
            None => error(format!("no such key: {name}")),
        },
        other => error(format!("no such field `{name}` on {}", other.type_name())),
    }
}

fn index_into(target: CelValue, index: CelValue) -> Result<CelValue, CelError> {
    match (target, index) {
        (CelValue::Map(mut map), CelValue::String(key)) => match map.remove(&key) {
            Some(value) => Ok(value),
            None => error(format!("no such key: {key}")),
        },
        (CelValue::List(items), index) => {
            let position = match index {
                CelValue::Int(i) => usize::try_from(i).ok(),
                CelValue::Double(d) if d.fract() == 0.0 && d >= 0.0 => Some(d as usize),
                other => return error(format!("no such overload: list index of type {}", other.type_name())),
            };
            let length = items.len();
            match position.and_then(|p| items.into_iter().nth(p)) {
                Some(value) => Ok(value),
                None => error(format!("index out of range: the list has {length} items")),
            }
        }
        (target, index) => error(format!("no such overload: {}[{}]", target.type_name(), index.type_name())),
    }
}

fn call(function: &str, args: Vec<CelValue>) -> Result<CelValue, CelError> {
    let [arg] = <[CelValue; 1]>::try_from(args)
        .map_err(|args| CelError { message: format!("`{function}` takes one argument, got {}", args.len()) })?;
    match (function, arg) {
        ("int", CelValue::Int(i)) => Ok(CelValue::Int(i)),
        ("int", CelValue::Double(d)) if d.is_finite() && d > -9.3e18 && d < 9.3e18 => {
            Ok(CelValue::Int(d.trunc() as i64))
        }
        ("int", CelValue::String(s)) => s
            .parse::<i64>()
            .map(CelValue::Int)
            .map_err(|_| CelError { message: format!("cannot convert {s:?} to int") }),
        ("int", CelValue::Bool(b)) => Ok(CelValue::Int(i64::from(b))),
        ("double", CelValue::Double(d)) => Ok(CelValue::Double(d)),
        ("double", CelValue::Int(i)) => Ok(CelValue::Double(i as f64)),
        ("double", CelValue::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(CelValue::Double)
            .map_err(|_| CelError { message: format!("cannot convert {s:?} to double") }),
        ("string", CelValue::String(s)) => Ok(CelValue::String(s)),
        ("string", CelValue::Int(i)) => Ok(CelValue::String(i.to_string())),
        ("string", CelValue::Double(d)) => Ok(CelValue::String(d.to_string())),
        ("string", CelValue::Bool(b)) => Ok(CelValue::String(b.to_string())),
        ("bool", CelValue::Bool(b)) => Ok(CelValue::Bool(b)),
        ("bool", CelValue::String(s)) => match s.as_str() {
            "true" | "True" | "TRUE" | "t" | "1" => Ok(CelValue::Bool(true)),
            "false" | "False" | "FALSE" | "f" | "0" => Ok(CelValue::Bool(false)),
            _ => error(format!("cannot convert {s:?} to bool")),
        },
        ("parseJson", CelValue::String(s)) => serde_json::from_str::<Json>(&s)
            .map(|v| CelValue::from_json(&v))
            .map_err(|e| CelError { message: format!("failed to unmarshal JSON: {e}") }),
        ("size", CelValue::String(s)) => Ok(CelValue::Int(s.chars().count() as i64)),
        ("size", CelValue::List(l)) => Ok(CelValue::Int(l.len() as i64)),
        ("size", CelValue::Map(m)) => Ok(CelValue::Int(m.len() as i64)),
        (function @ ("int" | "double" | "string" | "bool" | "parseJson" | "size"), arg) => {
            error(format!("no such overload: {function}({})", arg.type_name()))
        }
        (function, _) => error(format!("undeclared function `{function}`")),
    }
}

fn unary(operator: &str, operand: CelValue) -> Result<CelValue, CelError> {
    match (operator, operand) {
        ("!", CelValue::Bool(b)) => Ok(CelValue::Bool(!b)),
        ("-", CelValue::Int(i)) => {
            i.checked_neg().map(CelValue::Int).ok_or_else(|| CelError { message: "integer overflow".into() })
        }
        ("-", CelValue::Double(d)) => Ok(CelValue::Double(-d)),
        (operator, operand) => error(format!("no such overload: `{operator}` on {}", operand.type_name())),
    }
}

fn binary(operator: &str, left: CelValue, right: CelValue) -> Result<CelValue, CelError> {
    match operator {
        "==" => equal(&left, &right).map(CelValue::Bool),
        "!=" => equal(&left, &right).map(|e| CelValue::Bool(!e)),
        "<" | "<=" | ">" | ">=" => {
            let ordering = compare(&left, &right)?;
            let result = match operator {
                "<" => ordering == Ordering::Less,
                "<=" => ordering != Ordering::Greater,
                ">" => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            };
            Ok(CelValue::Bool(result))
        }
        "in" => match right {
            CelValue::List(items) => Ok(CelValue::Bool(items.iter().any(|item| equal(&left, item).unwrap_or(false)))),
            CelValue::Map(map) => match left {
                CelValue::String(key) => Ok(CelValue::Bool(map.contains_key(&key))),
                other => error(format!("no such overload: {} in map", other.type_name())),
            },
            other => error(format!("no such overload: `in` on {}", other.type_name())),
        },
        _ => arithmetic(operator, left, right),
    }
}

fn arithmetic(operator: &str, left: CelValue, right: CelValue) -> Result<CelValue, CelError> {
    let overflow = || CelError { message: format!("integer overflow in `{operator}`") };
    match (left, right) {
        (CelValue::Int(a), CelValue::Int(b)) => {
            let result = match operator {
                "+" => a.checked_add(b),
                "-" => a.checked_sub(b),
                "*" => a.checked_mul(b),
                "/" if b == 0 => return error("division by zero"),
                "/" => a.checked_div(b),
                "%" if b == 0 => return error("modulus by zero"),
                _ => a.checked_rem(b),
            };
            result.map(CelValue::Int).ok_or_else(overflow)
        }
        (CelValue::Double(a), CelValue::Double(b)) => Ok(CelValue::Double(match operator {
            "+" => a + b,
            "-" => a - b,
            "*" => a * b,
            "/" => a / b,
            _ => return error("no such overload: `%` on double"),
        })),
        (CelValue::String(a), CelValue::String(b)) if operator == "+" => Ok(CelValue::String(a + &b)),
        (CelValue::List(mut a), CelValue::List(b)) if operator == "+" => {
            a.extend(b);
            Ok(CelValue::List(a))
        }
        (a, b) => error(format!("no such overload: {} {operator} {}", a.type_name(), b.type_name())),
    }
}

/// Equality of two values of the same type; null equals only null. Mixed types are an error, as in
/// the backend's cel-go (`inputs.parameter_values['n'] == 1` fails when `n` is a double).
fn equal(left: &CelValue, right: &CelValue) -> Result<bool, CelError> {
    match (left, right) {
        (CelValue::Null, other) | (other, CelValue::Null) => Ok(matches!(other, CelValue::Null)),
        (CelValue::Bool(a), CelValue::Bool(b)) => Ok(a == b),
        (CelValue::Int(a), CelValue::Int(b)) => Ok(a == b),
        (CelValue::Double(a), CelValue::Double(b)) => Ok(a == b),
        (CelValue::String(a), CelValue::String(b)) => Ok(a == b),
        (CelValue::List(a), CelValue::List(b)) => {
            Ok(a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y).unwrap_or(false)))
        }
        (CelValue::Map(a), CelValue::Map(b)) => {
            Ok(a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| equal(v, w).unwrap_or(false))))
        }
        (a, b) => error(format!("no such overload: {} == {}", a.type_name(), b.type_name())),
    }
}

fn compare(left: &CelValue, right: &CelValue) -> Result<Ordering, CelError> {
    let ordering = match (left, right) {
        (CelValue::Int(a), CelValue::Int(b)) => Some(a.cmp(b)),
        (CelValue::Double(a), CelValue::Double(b)) => a.partial_cmp(b),
        (CelValue::String(a), CelValue::String(b)) => Some(a.cmp(b)),
        (CelValue::Bool(a), CelValue::Bool(b)) => Some(a.cmp(b)),
        (a, b) => return error(format!("no such overload: {} < {}", a.type_name(), b.type_name())),
    };
    ordering.ok_or_else(|| CelError { message: "NaN cannot be ordered".into() })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Evaluates `expression` with `inputs` (a JSON object) as the variable `inputs`; `Ok(value)` as
    /// JSON text or `Err(part of the message)`.
    fn check(expression: &str, expected: Result<&str, &str>) {
        let inputs = json!({
            "parameter_values": {
                "s": "heads", "n": 7.0, "half": 0.5, "t": true, "f": false, "num_text": "42",
                "list": [1.0, "a", true], "obj": {"a": {"b": [10.0, 20.0]}}, "json": "{\"A_a\": \"x\", \"n\": [1, 2]}",
                "none": null,
            },
            "artifacts": {"model": {"artifacts": [{"uri": "/r/model", "metadata": {"accuracy": 0.95}}]}},
        });
        let variables = BTreeMap::from([("inputs".to_string(), CelValue::from_json(&inputs))]);
        let got = evaluate(expression, &variables).map(|v| v.to_json().to_string());
        match (got, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{expression}"),
            (Err(got), Err(want)) => {
                assert!(got.message.contains(want), "{expression}: {:?} lacks {want:?}", got.message)
            }
            (got, want) => panic!("{expression}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn literals() {
        check("1", Ok("1"));
        check("-3", Ok("-3"));
        check("0x1F", Ok("31"));
        check("7u", Ok("7"));
        check("1.5", Ok("1.5"));
        check("2.0", Ok("2"));
        check("1e3", Ok("1000"));
        check(".5", Ok("0.5"));
        check("'a'", Ok("\"a\""));
        check(r#""a\"b""#, Ok(r#""a\"b""#));
        check(r"'\u00e9\n'", Ok("\"é\\n\""));
        check(r"r'\n'", Ok(r#""\\n""#));
        check("true", Ok("true"));
        check("null", Ok("null"));
        check("[1, 'a', [true]]", Ok(r#"[1,"a",[true]]"#));
        check("[1, 2,]", Ok("[1,2]"));
        check("{'k': 1}", Ok(r#"{"k":1}"#));
        check("{}", Ok("{}"));
    }

    #[test]
    fn parameter_access() {
        check("inputs.parameter_values['s']", Ok("\"heads\""));
        check(r#"inputs.parameter_values["s"]"#, Ok("\"heads\""));
        check("inputs.parameter_values.s", Ok("\"heads\""));
        check("inputs.parameter_values['obj']['a']['b'][1]", Ok("20"));
        check("inputs.parameter_values['obj'].a.b[0]", Ok("10"));
        check("inputs.parameter_values['list'][1]", Ok("\"a\""));
        check("inputs.parameter_values['list'][1.0]", Ok("\"a\""));
        check("inputs.artifacts['model'].artifacts[0].metadata['accuracy']", Ok("0.95"));
        check("inputs.artifacts['model'].artifacts[0].uri", Ok("\"/r/model\""));
        check("inputs.parameter_values['none']", Ok("null"));
    }

    #[test]
    fn comparisons() {
        check("inputs.parameter_values['s'] == 'heads'", Ok("true"));
        check("inputs.parameter_values['s'] != 'heads'", Ok("false"));
        check("inputs.parameter_values['s'] == \"tails\"", Ok("false"));
        check("int(inputs.parameter_values['n']) > 5", Ok("true"));
        check("int(inputs.parameter_values['n']) <= 5", Ok("false"));
        check("int(inputs.parameter_values['n']) == 7", Ok("true"));
        check("int(inputs.parameter_values['num_text']) >= 42", Ok("true"));
        check("inputs.parameter_values['n'] == 7.0", Ok("true"));
        check("inputs.parameter_values['half'] < 1.0", Ok("true"));
        check("double(inputs.parameter_values['num_text']) > 41.5", Ok("true"));
        check("string(inputs.parameter_values['t']) == 'true'", Ok("true"));
        check("string(7) == '7'", Ok("true"));
        check("inputs.parameter_values['t'] == true", Ok("true"));
        check("inputs.parameter_values['f'] == true", Ok("false"));
        check("'a' < 'b'", Ok("true"));
        check("[1, 2] == [1, 2]", Ok("true"));
        check("{'a': 1} == {'a': 2}", Ok("false"));
        check("inputs.parameter_values['none'] == null", Ok("true"));
        check("inputs.parameter_values['s'] == null", Ok("false"));
        check("inputs.artifacts['model'].artifacts[0].metadata['accuracy']*100.0 > 90.0", Ok("true"));
        check("1 + 2 * 3 - 4 / 2 % 3", Ok("5"));
        check("'a' + 'b'", Ok("\"ab\""));
        check("[1] + [2]", Ok("[1,2]"));
        check("size('héllo') == 5 && size([1]) == 1 && 'x'.size() == 1", Ok("true"));
    }

    #[test]
    fn logic() {
        check("!(inputs.parameter_values['s'] == 'heads')", Ok("false"));
        check("!true", Ok("false"));
        check("!!true", Ok("true"));
        check("!(int(inputs.parameter_values['n']) < 5) && !(int(inputs.parameter_values['n']) > 9)", Ok("true"));
        check("true || false && false", Ok("true"));
        check("(true || false) && false", Ok("false"));
        check("false && inputs.parameter_values['missing'] == 1", Ok("false"));
        check("inputs.parameter_values['missing'] == 1 && false", Ok("false"));
        check("inputs.parameter_values['missing'] == 1 || true", Ok("true"));
        check("true ? 'a' : 'b'", Ok("\"a\""));
        check("1 > 2 ? 'a' : 'b'", Ok("\"b\""));
        check("'a' in ['a', 'b']", Ok("true"));
        check("'c' in ['a', 'b']", Ok("false"));
        check("1 in [1.0, 'x']", Ok("false"));
        check("'a' in {'a': 1}", Ok("true"));
        check("inputs.parameter_values['s'] in ['heads', 'tails']", Ok("true"));
    }

    #[test]
    fn parse_json() {
        check("parseJson(inputs.parameter_values['json'])['A_a']", Ok("\"x\""));
        check("parseJson(inputs.parameter_values['json'])['n'][1]", Ok("2"));
        check("parseJson('[1.1, 1.2]')[0]", Ok("1.1"));
        check("parseJson('{\"a\": 1}').a == 1.0", Ok("true"));
        check("parseJson('not json')", Err("failed to unmarshal JSON"));
    }

    #[test]
    fn errors() {
        check("inputs.parameter_values['n'] == 1", Err("no such overload: double == int"));
        check("inputs.parameter_values['n'] > 1", Err("no such overload"));
        check("inputs.parameter_values['missing']", Err("no such key: missing"));
        check("outputs.x", Err("undeclared reference to `outputs`"));
        check("inputs.parameter_values['list'][5]", Err("index out of range"));
        check("inputs.parameter_values['list']['a']", Err("no such overload"));
        check("int('x')", Err("cannot convert \"x\" to int"));
        check("int(1, 2)", Err("takes one argument"));
        check("foo(1)", Err("undeclared function `foo`"));
        check("'a' + 1", Err("no such overload"));
        check("1 / 0", Err("division by zero"));
        check("9223372036854775807 + 1", Err("overflow"));
        check("-'a'", Err("no such overload"));
        check("!1", Err("no such overload"));
        check("1 ? 2 : 3", Err("no such overload"));
        check("1 +", Err("ends too early"));
        check("(1", Err("expected `)`"));
        check("1 2", Err("unexpected `2` after the end"));
        check("'open", Err("unterminated string"));
        check(r"'\q'", Err("invalid escape"));
        check("a = b", Err("unexpected character `=`"));
        check("99999999999999999999", Err("out of range"));
        check("[1", Err("expected `,`"));
        check("{'a' 1}", Err("expected `:`"));
        check("{1: 2}", Err("map keys must be strings"));
        check("inputs.", Err("field name"));
        check("", Err("ends too early"));
        check(&"(".repeat(500), Err("nests deeper"));
        check(&"!".repeat(500), Err("nests deeper"));
        check(&format!("{}1", "-".repeat(500)), Err("nests deeper"));
    }

    #[test]
    fn conditions_must_be_bool() {
        let inputs = json!({"parameter_values": {"x": "1"}});
        assert_eq!(condition("inputs.parameter_values['x'] == '1'", &inputs), Ok(true));
        let err = condition("inputs.parameter_values['x']", &inputs).expect_err("not a bool");
        assert!(err.message.contains("must be a bool"), "{}", err.message);
    }

    #[test]
    fn selectors() {
        let check = |value: Json, expression: &str, expected: Result<Json, &str>| match (
            select(expression, &value),
            expected,
        ) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{expression}"),
            (Err(got), Err(want)) => assert!(got.message.contains(want), "{expression}: {}", got.message),
            (got, want) => panic!("{expression}: got {got:?}, want {want:?}"),
        };
        check(json!("Hello"), "string_value", Ok(json!("Hello")));
        check(json!(r#"{"A_a": "1", "B_b": "2"}"#), r#"parseJson(string_value)["A_a"]"#, Ok(json!("1")));
        check(json!({"A_a": "1"}), r#"parseJson(string_value)["A_a"]"#, Ok(json!("1")));
        check(json!({"A_a": "1"}), r#"struct_value["A_a"]"#, Ok(json!("1")));
        check(json!({"a": {"b": 2}}), "struct_value.a.b", Ok(json!(2)));
        check(json!([1.5, 2]), "list_value[1]", Ok(json!(2)));
        check(json!(3), "number_value", Ok(json!(3)));
        check(json!(3), "string_value", Ok(json!("3")));
        check(json!(0.5), "string_value", Ok(json!("0.5")));
        check(json!(true), "bool_value", Ok(json!(true)));
        check(json!(null), "string_value", Ok(json!("")));
        check(json!([1, 2]), "string_value", Ok(json!("[1,2]")));
        check(json!("Hello"), "struct_value", Err("undeclared reference to `struct_value`"));
        check(json!({"a": 1}), "struct_value.c", Err("no such key: c"));
        check(json!("invalidjson"), "parseJson(string_value)", Err("failed to unmarshal JSON"));
    }

    #[test]
    fn every_condition_and_selector_in_the_corpus_parses() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/kfp");
        let mut seen = 0;
        for sub in ["pipelines", "components"] {
            for entry in std::fs::read_dir(dir.join(sub)).expect("corpus dir") {
                let path = entry.expect("entry").path();
                let text = std::fs::read_to_string(&path).expect("utf-8 corpus file");
                let Ok(documents) = crate::yaml::parse_stream(&text) else { continue };
                let Some(first) = documents.first() else { continue };
                let mut expressions = Vec::new();
                collect(&super::super::ir::to_json(first), &mut expressions);
                for expression in expressions {
                    let tokens = lex(&expression).unwrap_or_else(|e| panic!("{}: {expression}: {e}", path.display()));
                    let mut parser = Parser { tokens, position: 0, depth: 0 };
                    parser.expression().unwrap_or_else(|e| panic!("{}: {expression}: {e}", path.display()));
                    assert_eq!(parser.position, parser.tokens.len(), "{expression}");
                    seen += 1;
                }
            }
        }
        assert!(seen >= 40, "only {seen} expressions found");
    }

    fn collect(value: &Json, out: &mut Vec<String>) {
        match value {
            Json::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("condition" | "parameterExpressionSelector", Json::String(s)) => out.push(s.clone()),
                        _ => collect(value, out),
                    }
                }
            }
            Json::Array(items) => items.iter().for_each(|i| collect(i, out)),
            _ => {}
        }
    }
}
