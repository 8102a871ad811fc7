//! The dynamic grammar (cloudbuild.md §5.7).
//!
//! Bash-style parameter expansion, parsed into a small tree so that checking and applying see the same thing.
//!
//! Grammar, on top of the non-dynamic one (`$$`, `$NAME`, `${NAME}` keep their meaning, so `${HOME}` is still
//! a reference and still an invalid built-in: every plain reference stays one in dynamic mode):
//! * `${NAME<op>…}` where NAME is a substitution name (user format, built-in, or set) is an expression, with
//!   bash's semantics for the operators listed on [`Op`];
//! * any other `${…}` (a shell variable, `${!x}`, `${1}`, lower case…) belongs to the shell and is left as is,
//!   except that substitution references inside it are still expanded, as the non-dynamic grammar would;
//! * inside operator words `\c` stands for `c` (and for a literal `c` in patterns), `${` nests and the first
//!   `}` at nesting level 0 closes. Quotes are ordinary characters. Outside braces backslash is not special.
//!
//! Deliberate differences from bash: `:=`/`=` do not assign (values are fixed once resolved); `&` in a
//! replacement is literal (bash 5.2's `patsub_replacement`); offsets are integer constants, not arithmetic;
//! `[!]]` matches any character but `]` as POSIX says (bash's pattern substitution matches nothing with it).

mod glob;
#[cfg(test)]
mod tests;

use glob::Glob;

use super::SubstError;
use super::substitutions::{Lookup, Use};
use super::template::{is_reference_name, reference_name_len};

/// A dynamic expansion that grows beyond this many bytes is an error. Nested pattern replacements can multiply
/// sizes (`${A//?/${B//?/…}}`); the cap keeps memory and time bounded on hostile input.
const MAX_EXPANSION_BYTES: usize = 1 << 20;

/// Deepest `${…${…}…}` nesting the dynamic parser accepts; it recurses per level, so this bounds the stack.
const MAX_NESTING: usize = 32;

/// Keeps error messages readable when they quote an expression that may be thousands of bytes long.
fn shorten(text: &str) -> String {
    const KEEP: usize = 40;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[derive(Debug)]
pub(super) enum Piece<'t> {
    Text(&'t str),
    /// `\c` inside braces.
    Escaped(char),
    /// `$$`.
    Dollar,
    /// `$NAME` or `${NAME}`.
    Ref(&'t str),
    Expr(Box<Expr<'t>>),
    /// A `${…}` that is not ours, re-emitted as `${`, body, and `}` if it had one.
    Shell {
        body: Vec<Piece<'t>>,
        closed: bool,
    },
}

#[derive(Debug)]
pub(super) struct Expr<'t> {
    name: &'t str,
    op: Op<'t>,
    /// The whole `${…}`, for error messages.
    text: &'t str,
}

type Word<'t> = Vec<Piece<'t>>;

#[derive(Debug)]
enum Op<'t> {
    /// `${#V}`
    Length,
    /// `${V:-w}`, `${V-w}`, and `${V:=w}`, `${V=w}` (which cannot assign here, so they only substitute).
    Default { word: Word<'t>, null_too: bool },
    /// `${V:+w}`, `${V+w}`
    Alternate { word: Word<'t>, null_too: bool },
    /// `${V:?w}`, `${V?w}`
    Required { word: Word<'t>, null_too: bool },
    /// `${V:off}`, `${V:off:len}`
    Substring { offset: i64, length: Option<i64> },
    /// `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`
    Trim { pattern: Word<'t>, suffix: bool, longest: bool },
    /// `${V/p/r}`, `${V//p/r}`, `${V/#p/r}`, `${V/%p/r}`
    Replace { pattern: Word<'t>, replacement: Word<'t>, anchor: Anchor },
    /// `${V^p}`, `${V^^p}`, `${V,p}`, `${V,,p}` (an empty pattern means every character)
    Case { pattern: Word<'t>, upper: bool, all: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    First,
    All,
    Start,
    End,
}

impl<'t> Op<'t> {
    /// Whether the operator yields a value of its own when the name is unset (so an unset name is no error).
    fn supplies_value(&self) -> bool {
        matches!(self, Op::Default { .. } | Op::Alternate { .. })
    }

    /// The words the operator carries, for finding the names they use.
    fn words(&self) -> Vec<&Word<'t>> {
        match self {
            Op::Length | Op::Substring { .. } => Vec::new(),
            Op::Default { word, .. } | Op::Alternate { word, .. } | Op::Required { word, .. } => vec![word],
            Op::Trim { pattern, .. } | Op::Case { pattern, .. } => vec![pattern],
            Op::Replace { pattern, replacement, .. } => vec![pattern, replacement],
        }
    }
}

/// Where a run of pieces ends and what backslash means there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// The template itself: runs to the end; backslash is an ordinary character.
    Top,
    /// An operator word: ends at `}`; backslash escapes.
    Word,
    /// The pattern of `${V/p/r}`: ends at `/` or `}`; backslash escapes.
    Pattern,
    /// The body of a shell `${…}`: ends at `}`; `\c` is kept verbatim for the shell.
    Shell,
}

impl Ctx {
    fn ends_at(self, byte: u8) -> bool {
        match self {
            Ctx::Top => false,
            Ctx::Word | Ctx::Shell => byte == b'}',
            Ctx::Pattern => byte == b'}' || byte == b'/',
        }
    }

    fn is_special(self, byte: u8) -> bool {
        byte == b'$' || (byte == b'\\' && self != Ctx::Top) || self.ends_at(byte)
    }
}

/// Parses a template. `is_name` tells substitution names (whose `${NAME…}` forms are ours) from others.
pub(super) fn parse<'t>(src: &'t str, is_name: &dyn Fn(&str) -> bool) -> Result<Vec<Piece<'t>>, SubstError> {
    let mut parser = Parser { src, pos: 0, depth: 0, is_name };
    parser.pieces(Ctx::Top)
}

struct Parser<'t, 'n> {
    src: &'t str,
    /// Byte offset; only ever moved past ASCII delimiters or whole chars, so always a char boundary.
    pos: usize,
    depth: usize,
    is_name: &'n dyn Fn(&str) -> bool,
}

impl<'t> Parser<'t, '_> {
    fn rest(&self) -> &'t str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Pieces up to the end of the context (not consumed) or of the input.
    fn pieces(&mut self, ctx: Ctx) -> Result<Vec<Piece<'t>>, SubstError> {
        let mut out = Vec::new();
        while let Some(byte) = self.peek() {
            if ctx.ends_at(byte) {
                break;
            }
            let piece = match byte {
                b'$' => self.dollar()?,
                b'\\' if ctx != Ctx::Top => self.backslash(ctx),
                _ => self.text(ctx),
            };
            out.push(piece);
        }
        Ok(out)
    }

    /// A run of ordinary text; the current byte is known not to be special in `ctx`.
    fn text(&mut self, ctx: Ctx) -> Piece<'t> {
        let rest = self.rest();
        let len = rest.bytes().skip(1).position(|b| ctx.is_special(b)).map_or(rest.len(), |i| i + 1);
        // `len` is the index of an ASCII byte or the end, so a char boundary.
        self.pos += len;
        Piece::Text(&rest[..len])
    }

    fn backslash(&mut self, ctx: Ctx) -> Piece<'t> {
        let rest = self.rest();
        let Some(escaped) = rest[1..].chars().next() else {
            self.pos += 1;
            return Piece::Text("\\");
        };
        let len = 1 + escaped.len_utf8();
        self.pos += len;
        if ctx == Ctx::Shell { Piece::Text(&rest[..len]) } else { Piece::Escaped(escaped) }
    }

    /// At a `$`.
    fn dollar(&mut self) -> Result<Piece<'t>, SubstError> {
        let rest = self.rest();
        match rest.as_bytes().get(1) {
            Some(b'$') => {
                self.pos += 2;
                Ok(Piece::Dollar)
            }
            Some(b'{') => self.braced(),
            _ => {
                let len = reference_name_len(&rest[1..]);
                self.pos += 1 + len;
                Ok(if len > 0 { Piece::Ref(&rest[1..=len]) } else { Piece::Text("$") })
            }
        }
    }

    /// At a `${`.
    fn braced(&mut self) -> Result<Piece<'t>, SubstError> {
        let start = self.pos;
        if self.depth >= MAX_NESTING {
            return Err(self.bad(start, format!("nested deeper than {MAX_NESTING} levels")));
        }
        self.depth += 1;
        let piece = self.braced_body(start);
        self.depth -= 1;
        piece
    }

    fn braced_body(&mut self, start: usize) -> Result<Piece<'t>, SubstError> {
        self.pos = start + 2;
        if self.eat(b'#') {
            let name = self.name();
            if name.is_empty() || !(self.is_name)(name) {
                return self.shell(start);
            }
            if !self.eat(b'}') {
                return Err(self.bad(start, "`${#NAME}` takes no operator".to_owned()));
            }
            return Ok(self.expr(start, name, Op::Length));
        }
        let name = self.name();
        let known = !name.is_empty() && (self.is_name)(name);
        // `${NAME}` is a reference in both grammars, known or not: dynamic mode extends the plain grammar.
        if self.peek() == Some(b'}') && (known || is_reference_name(name)) {
            self.pos += 1;
            return Ok(Piece::Ref(name));
        }
        if !known {
            return self.shell(start);
        }
        let op = self.operator(start)?;
        Ok(self.expr(start, name, op))
    }

    fn expr(&self, start: usize, name: &'t str, op: Op<'t>) -> Piece<'t> {
        let text = self.src.get(start..self.pos).unwrap_or("");
        Piece::Expr(Box::new(Expr { name, op, text }))
    }

    /// A bash name (`[A-Za-z_][A-Za-z0-9_]*`) at the cursor, consumed.
    fn name(&mut self) -> &'t str {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let len = match bytes.first() {
            Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                1 + bytes[1..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count()
            }
            _ => 0,
        };
        self.pos += len;
        &rest[..len]
    }

    /// A `${…}` that is not ours, from just after its `${`.
    fn shell(&mut self, start: usize) -> Result<Piece<'t>, SubstError> {
        self.pos = start + 2;
        let body = self.pieces(Ctx::Shell)?;
        let closed = self.eat(b'}');
        Ok(Piece::Shell { body, closed })
    }

    /// The operator after `${NAME`, through the closing `}`.
    fn operator(&mut self, start: usize) -> Result<Op<'t>, SubstError> {
        let Some(byte) = self.peek() else {
            return Err(self.bad(start, "missing `}`".to_owned()));
        };
        self.pos += 1;
        match byte {
            b':' => {
                let Some(next) = self.peek().filter(|b| b"-=+?".contains(b)) else {
                    return self.substring(start);
                };
                self.pos += 1;
                self.defaulting(start, next, true)
            }
            b'-' | b'=' | b'+' | b'?' => self.defaulting(start, byte, false),
            b'#' | b'%' => {
                let longest = self.eat(byte);
                let pattern = self.word(start)?;
                Ok(Op::Trim { pattern, suffix: byte == b'%', longest })
            }
            b'/' => self.replace(start),
            b'^' | b',' => {
                let all = self.eat(byte);
                let pattern = self.word(start)?;
                Ok(Op::Case { pattern, upper: byte == b'^', all })
            }
            _ => Err(self.bad(start, "unsupported operator".to_owned())),
        }
    }

    fn defaulting(&mut self, start: usize, op: u8, null_too: bool) -> Result<Op<'t>, SubstError> {
        let word = self.word(start)?;
        Ok(match op {
            b'+' => Op::Alternate { word, null_too },
            b'?' => Op::Required { word, null_too },
            _ => Op::Default { word, null_too },
        })
    }

    fn replace(&mut self, start: usize) -> Result<Op<'t>, SubstError> {
        let anchor = if self.eat(b'/') {
            Anchor::All
        } else if self.eat(b'#') {
            Anchor::Start
        } else if self.eat(b'%') {
            Anchor::End
        } else {
            Anchor::First
        };
        let mut pattern = Vec::new();
        // bash: in `${V///…}` the third slash starts the pattern rather than ending it.
        if anchor == Anchor::All && self.eat(b'/') {
            pattern.push(Piece::Text("/"));
        }
        pattern.extend(self.pieces(Ctx::Pattern)?);
        let replacement = if self.eat(b'/') { self.pieces(Ctx::Word)? } else { Vec::new() };
        self.close(start)?;
        Ok(Op::Replace { pattern, replacement, anchor })
    }

    /// `${V:off}` / `${V:off:len}`, from just after the `:`. Offsets are integer constants (bash would take
    /// any arithmetic expression; nothing more is needed for substitutions and it keeps this total).
    fn substring(&mut self, start: usize) -> Result<Op<'t>, SubstError> {
        let rest = self.rest();
        let Some(end) = rest.find([':', '}']) else {
            return Err(self.bad(start, "missing `}`".to_owned()));
        };
        if end == 0 && rest.starts_with('}') {
            return Err(self.bad(start, "missing offset".to_owned()));
        }
        let offset = arithmetic(&rest[..end]).map_err(|reason| self.bad(start, reason))?;
        self.pos += end;
        let length = if self.eat(b':') {
            let rest = self.rest();
            let Some(end) = rest.find('}') else {
                return Err(self.bad(start, "missing `}`".to_owned()));
            };
            let length = arithmetic(&rest[..end]).map_err(|reason| self.bad(start, reason))?;
            self.pos += end;
            Some(length)
        } else {
            None
        };
        self.close(start)?;
        Ok(Op::Substring { offset, length })
    }

    /// An operator word through its closing `}`.
    fn word(&mut self, start: usize) -> Result<Word<'t>, SubstError> {
        let word = self.pieces(Ctx::Word)?;
        self.close(start)?;
        Ok(word)
    }

    fn close(&mut self, start: usize) -> Result<(), SubstError> {
        if self.eat(b'}') { Ok(()) } else { Err(self.bad(start, "missing `}`".to_owned())) }
    }

    /// An error about the expression starting at `start`, quoting it up to its likely end.
    fn bad(&self, start: usize, reason: String) -> SubstError {
        let rest = self.src.get(start..).unwrap_or("");
        let end = rest.find('}').map_or(rest.len(), |i| i + 1);
        SubstError::BadSubstitution { expr: shorten(&rest[..end]), reason }
    }
}

/// An integer constant as bash reads one in `${V:off:len}`: optional parentheses and sign, then decimal,
/// `0x` hexadecimal or `0` octal digits. Empty means 0.
fn arithmetic(text: &str) -> Result<i64, String> {
    let mut t = text.trim();
    while let Some(inner) = t.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        t = inner.trim();
    }
    if t.is_empty() {
        return Ok(0);
    }
    let (negative, digits) = match t.strip_prefix('-') {
        Some(digits) => (true, digits.trim_start()),
        None => (false, t.strip_prefix('+').unwrap_or(t).trim_start()),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    let unsupported = || format!("`{}` is not an integer", text.trim());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unsupported());
    }
    let value = i64::from_str_radix(digits, radix).map_err(|_| unsupported())?;
    Ok(if negative { -value } else { value })
}

/// Names used by the pieces, in order, including inside operator words and shell bodies.
pub(super) fn collect_uses<'t>(pieces: &[Piece<'t>], out: &mut Vec<Use<'t>>) {
    for piece in pieces {
        match piece {
            Piece::Text(_) | Piece::Escaped(_) | Piece::Dollar => {}
            Piece::Ref(name) => out.push(Use { name, defaulted: false }),
            Piece::Shell { body, .. } => collect_uses(body, out),
            Piece::Expr(expr) => {
                out.push(Use { name: expr.name, defaulted: expr.op.supplies_value() });
                for word in expr.op.words() {
                    collect_uses(word, out);
                }
            }
        }
    }
}

/// Evaluates parsed pieces. Unset names expand to `""`; words are only evaluated when bash would.
pub(super) fn evaluate(pieces: &[Piece<'_>], vars: &dyn Lookup) -> Result<String, SubstError> {
    let mut out = String::new();
    append(pieces, vars, false, &mut out)?;
    Ok(out)
}

/// Appends the expansion of `pieces` to `out`. In a pattern (`as_pattern`), escaped characters keep a
/// backslash so that the glob compiler takes them literally.
fn append(pieces: &[Piece<'_>], vars: &dyn Lookup, as_pattern: bool, out: &mut String) -> Result<(), SubstError> {
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Escaped(c) => {
                if as_pattern {
                    out.push('\\');
                }
                out.push(*c);
            }
            Piece::Dollar => out.push('$'),
            Piece::Ref(name) => out.push_str(vars.value(name).unwrap_or("")),
            Piece::Shell { body, closed } => {
                out.push_str("${");
                append(body, vars, as_pattern, out)?;
                if *closed {
                    out.push('}');
                }
            }
            Piece::Expr(expr) => expr.append(vars, out)?,
        }
        check_size(out)?;
    }
    Ok(())
}

fn check_size(out: &str) -> Result<(), SubstError> {
    if out.len() > MAX_EXPANSION_BYTES {
        return Err(SubstError::BadSubstitution {
            expr: shorten(out),
            reason: format!("expansion longer than {MAX_EXPANSION_BYTES} bytes"),
        });
    }
    Ok(())
}

fn word_text(word: &Word<'_>, vars: &dyn Lookup, as_pattern: bool) -> Result<String, SubstError> {
    let mut out = String::new();
    append(word, vars, as_pattern, &mut out)?;
    Ok(out)
}

impl Expr<'_> {
    fn append(&self, vars: &dyn Lookup, out: &mut String) -> Result<(), SubstError> {
        let value = vars.value(self.name);
        let text = value.unwrap_or("");
        let missing = |null_too: bool| value.is_none() || (null_too && text.is_empty());
        match &self.op {
            // bash leaves an unset parameter alone here: no `${V/#/prefix}` insertion, no range error.
            Op::Replace { .. } | Op::Substring { .. } if value.is_none() => {}
            Op::Length => out.push_str(&text.chars().count().to_string()),
            Op::Default { word, null_too } => {
                if missing(*null_too) {
                    append(word, vars, false, out)?;
                } else {
                    out.push_str(text);
                }
            }
            Op::Alternate { word, null_too } => {
                if !missing(*null_too) {
                    append(word, vars, false, out)?;
                }
            }
            Op::Required { word, null_too } => {
                if missing(*null_too) {
                    let message = word_text(word, vars, false)?;
                    return Err(SubstError::ParameterNotSet {
                        name: self.name.to_owned(),
                        message: if message.is_empty() { "parameter null or not set".to_owned() } else { message },
                    });
                }
                out.push_str(text);
            }
            Op::Substring { offset, length } => match substring(text, *offset, *length) {
                Some(part) => out.push_str(part),
                None => {
                    return Err(SubstError::BadSubstitution {
                        expr: shorten(self.text),
                        reason: "substring expression < 0".to_owned(),
                    });
                }
            },
            Op::Trim { pattern, suffix, longest } => {
                let glob = Glob::new(&word_text(pattern, vars, true)?);
                out.push_str(trim(text, &glob, *suffix, *longest));
            }
            Op::Replace { pattern, replacement, anchor } => {
                let pattern = word_text(pattern, vars, true)?;
                if pattern.is_empty() && matches!(anchor, Anchor::First | Anchor::All) {
                    // bash: an empty pattern matches nothing (anchored ones insert, below).
                    out.push_str(text);
                } else {
                    let replacement = word_text(replacement, vars, false)?;
                    replace(text, &Glob::new(&pattern), &replacement, *anchor, out)?;
                }
            }
            Op::Case { pattern, upper, all } => {
                let pattern = word_text(pattern, vars, true)?;
                let glob = (!pattern.is_empty()).then(|| Glob::new(&pattern));
                convert_case(text, glob.as_ref(), *upper, *all, out);
            }
        }
        Ok(())
    }
}

/// `${V:offset:length}` in characters, as bash does in a UTF-8 locale; `None` for bash's
/// "substring expression < 0" (a negative length reaching before the offset).
fn substring(text: &str, offset: i64, length: Option<i64>) -> Option<&str> {
    let count = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    let start = if offset < 0 { offset.saturating_add(count) } else { offset };
    if !(0..=count).contains(&start) {
        return Some("");
    }
    let end = match length {
        None => count,
        Some(length) if length < 0 => {
            let end = count.saturating_add(length);
            if end < start {
                return None;
            }
            end
        }
        Some(length) => start.saturating_add(length).min(count),
    };
    let at = |chars: i64| byte_offset(text, usize::try_from(chars).unwrap_or(usize::MAX));
    text.get(at(start)..at(end))
}

fn trim<'v>(text: &'v str, glob: &Glob, suffix: bool, longest: bool) -> &'v str {
    let chars: Vec<char> = text.chars().collect();
    if suffix {
        let reversed: Vec<char> = chars.iter().rev().copied().collect();
        let lengths = glob.reversed().prefix_matches(&reversed);
        let cut = if longest { lengths.last() } else { lengths.first() };
        cut.map_or(text, |&n| &text[..byte_offset(text, chars.len() - n)])
    } else {
        let lengths = glob.prefix_matches(&chars);
        let cut = if longest { lengths.last() } else { lengths.first() };
        cut.map_or(text, |&n| &text[byte_offset(text, n)..])
    }
}

/// Byte offset of the `chars`-th character (the length if there are fewer).
fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i)
}

/// Pattern replacement, always with the longest match at a position (bash). `&` in the replacement is a
/// plain character (bash 5.2's `patsub_replacement` is not emulated; the hosted Go expander has none).
fn replace(text: &str, glob: &Glob, replacement: &str, anchor: Anchor, out: &mut String) -> Result<(), SubstError> {
    let chars: Vec<char> = text.chars().collect();
    let push_chars = |out: &mut String, part: &[char]| out.extend(part.iter());
    match anchor {
        Anchor::Start => match glob.prefix_matches(&chars).last() {
            Some(&n) => {
                out.push_str(replacement);
                push_chars(out, &chars[n..]);
            }
            None => out.push_str(text),
        },
        Anchor::End => {
            let reversed: Vec<char> = chars.iter().rev().copied().collect();
            match glob.reversed().prefix_matches(&reversed).last() {
                Some(&n) => {
                    push_chars(out, &chars[..chars.len() - n]);
                    out.push_str(replacement);
                }
                None => out.push_str(text),
            }
        }
        Anchor::First | Anchor::All => {
            let mut at = 0;
            // An empty value still gets one try, so that `${E/*/x}` gives `x` as in bash.
            while at < chars.len() || chars.is_empty() {
                let Some(&n) = glob.prefix_matches(&chars[at..]).last() else {
                    // No match here: keep this character (if any) and try the next position.
                    let Some(&c) = chars.get(at) else { break };
                    out.push(c);
                    at += 1;
                    continue;
                };
                out.push_str(replacement);
                // Only `*`s match the empty string, and they match all of a non-empty rest: so an empty
                // match means the value is empty.
                if n == 0 {
                    break;
                }
                at += n;
                if anchor == Anchor::First {
                    push_chars(out, &chars[at..]);
                    break;
                }
                check_size(out)?;
            }
        }
    }
    check_size(out)
}

fn convert_case(text: &str, glob: Option<&Glob>, upper: bool, all: bool, out: &mut String) {
    for (i, c) in text.chars().enumerate() {
        let selected = (all || i == 0) && glob.is_none_or(|g| g.matches(&[c]));
        out.push(if selected { convert_char(c, upper) } else { c });
    }
}

/// One-to-one case mapping like C's `towupper`: characters whose mapping is several characters stay.
fn convert_char(c: char, upper: bool) -> char {
    fn single(mut mapped: impl Iterator<Item = char>) -> Option<char> {
        match (mapped.next(), mapped.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }
    let mapped = if upper { single(c.to_uppercase()) } else { single(c.to_lowercase()) };
    mapped.unwrap_or(c)
}
