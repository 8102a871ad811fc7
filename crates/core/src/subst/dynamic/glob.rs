//! The shell globs of the dynamic grammar's pattern operators (`#`, `%`, `/`, `^`, `,`).

/// A shell glob (`*`, `?`, `[…]` with `!`/`^`, ranges and `[:class:]`, `\c`), matched by simulating it as
/// an NFA over characters: linear in the text for a given pattern, no backtracking blow-up.
#[derive(Debug, Clone)]
pub(super) struct Glob {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone)]
enum Token {
    Literal(char),
    AnyChar,
    AnyRun,
    Class { negated: bool, items: Vec<ClassItem> },
}

/// A `[:name:]` character class.
type CharTest = fn(char) -> bool;

#[derive(Debug, Clone)]
enum ClassItem {
    Char(char),
    Range(char, char),
    Named(CharTest),
}

impl Token {
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyChar => true,
            Token::AnyRun => false,
            Token::Class { negated, items } => {
                let hit = items.iter().any(|item| match item {
                    ClassItem::Char(x) => *x == c,
                    ClassItem::Range(lo, hi) => (*lo..=*hi).contains(&c),
                    ClassItem::Named(test) => test(c),
                });
                hit != *negated
            }
        }
    }
}

impl Glob {
    pub(super) fn new(pattern: &str) -> Self {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            i += 1;
            let token = match c {
                '\\' => match chars.get(i) {
                    Some(&escaped) => {
                        i += 1;
                        Token::Literal(escaped)
                    }
                    None => Token::Literal('\\'),
                },
                '*' if matches!(tokens.last(), Some(Token::AnyRun)) => continue,
                '*' => Token::AnyRun,
                '?' => Token::AnyChar,
                '[' => match parse_class(&chars, i) {
                    Some((class, next)) => {
                        i = next;
                        class
                    }
                    None => Token::Literal('['),
                },
                _ => Token::Literal(c),
            };
            tokens.push(token);
        }
        Self { tokens }
    }

    /// The same pattern read backwards, for matching suffixes against a reversed text. Every token matches
    /// one character or a run, so reversing the token list is exact.
    pub(super) fn reversed(&self) -> Self {
        Self { tokens: self.tokens.iter().rev().cloned().collect() }
    }

    pub(super) fn matches(&self, text: &[char]) -> bool {
        self.prefix_matches(text).last() == Some(&text.len())
    }

    /// Every `n` (ascending) such that `text[..n]` matches the whole pattern.
    pub(super) fn prefix_matches(&self, text: &[char]) -> Vec<usize> {
        let end = self.tokens.len();
        let mut states = vec![false; end + 1];
        let mut next = vec![false; end + 1];
        states[0] = true;
        self.skip_runs(&mut states);
        let mut found = Vec::new();
        if states[end] {
            found.push(0);
        }
        for (i, &c) in text.iter().enumerate() {
            next.fill(false);
            for (at, token) in self.tokens.iter().enumerate() {
                if !states[at] {
                    continue;
                }
                if matches!(token, Token::AnyRun) {
                    next[at] = true;
                } else if token.accepts(c) {
                    next[at + 1] = true;
                }
            }
            self.skip_runs(&mut next);
            std::mem::swap(&mut states, &mut next);
            if !states.contains(&true) {
                break;
            }
            if states[end] {
                found.push(i + 1);
            }
        }
        found
    }

    /// A `*` may match nothing: every state before one also reaches the state after it.
    fn skip_runs(&self, states: &mut [bool]) {
        for (at, token) in self.tokens.iter().enumerate() {
            if states[at] && matches!(token, Token::AnyRun) {
                states[at + 1] = true;
            }
        }
    }
}

/// A bracket expression starting after its `[`; `None` if it is not closed (then `[` is literal).
fn parse_class(chars: &[char], mut i: usize) -> Option<(Token, usize)> {
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, items }, i + 1));
        }
        first = false;
        if c == '['
            && chars.get(i + 1) == Some(&':')
            && let Some((test, next)) = named_class(chars, i + 2)
        {
            items.push(ClassItem::Named(test));
            i = next;
            continue;
        }
        let (low, next) = class_char(chars, i)?;
        match (chars.get(next), chars.get(next + 1)) {
            (Some('-'), Some(&high)) if high != ']' => {
                let (high, after) = class_char(chars, next + 1)?;
                items.push(ClassItem::Range(low, high));
                i = after;
            }
            _ => {
                items.push(ClassItem::Char(low));
                i = next;
            }
        }
    }
}

fn class_char(chars: &[char], i: usize) -> Option<(char, usize)> {
    match *chars.get(i)? {
        '\\' => chars.get(i + 1).map(|&c| (c, i + 2)),
        c => Some((c, i + 1)),
    }
}

/// `[:name:]` from just after `[:`.
fn named_class(chars: &[char], i: usize) -> Option<(CharTest, usize)> {
    let len = chars.get(i..)?.iter().position(|&c| c == ':')?;
    if chars.get(i + len + 1) != Some(&']') {
        return None;
    }
    let name: String = chars[i..i + len].iter().collect();
    let test: CharTest = match name.as_str() {
        "alpha" => char::is_alphabetic,
        "digit" => |c| c.is_ascii_digit(),
        "alnum" => char::is_alphanumeric,
        "upper" => char::is_uppercase,
        "lower" => char::is_lowercase,
        "space" => char::is_whitespace,
        "blank" => |c| c == ' ' || c == '\t',
        "punct" => |c| c.is_ascii_punctuation(),
        "xdigit" => |c| c.is_ascii_hexdigit(),
        "cntrl" => char::is_control,
        "print" => |c| !c.is_control(),
        "graph" => |c| !c.is_control() && !c.is_whitespace(),
        "word" => |c| c.is_alphanumeric() || c == '_',
        _ => return None,
    };
    Some((test, i + len + 2))
}
