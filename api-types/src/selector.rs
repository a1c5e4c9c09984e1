//! Kubernetes label and field selectors: parsing (the full `labels.Parse` grammar) and matching.
//! Both kubesim and the search apiserver use this one implementation.

use std::collections::BTreeMap;
use std::fmt;

/// A selector that cannot be parsed; the message names the position and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement {selector:?}: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

/// Operator of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Exists,
    DoesNotExist,
    Equals,
    NotEquals,
    In,
    NotIn,
    GreaterThan,
    LessThan,
}

/// One `key op values` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

impl Requirement {
    /// Whether a label set satisfies this requirement. As in Kubernetes, `!=` and `notin` also
    /// match objects without the key.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(|v| self.values.contains(v)),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan { v > bound } else { v < bound }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        let v = self.values.join(",");
        match self.operator {
            Operator::Exists => write!(f, "{k}"),
            Operator::DoesNotExist => write!(f, "!{k}"),
            Operator::Equals => write!(f, "{k}={v}"),
            Operator::NotEquals => write!(f, "{k}!={v}"),
            Operator::In => write!(f, "{k} in ({v})"),
            Operator::NotIn => write!(f, "{k} notin ({v})"),
            Operator::GreaterThan => write!(f, "{k}>{v}"),
            Operator::LessThan => write!(f, "{k}<{v}"),
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),!h,i,j>3`. The empty string selects everything.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        Self::parse_with(selector, validate_key, validate_value)
    }

    /// The same grammar with other rules for keys and values (Clusterpedia's field selectors
    /// reuse the label-selector lexer and parser with field-path keys).
    pub fn parse_with(
        selector: &str,
        key: fn(&str) -> Result<(), String>,
        value: fn(&str) -> Result<(), String>,
    ) -> Result<Self, SelectorError> {
        Parser { tokens: lex(selector), pos: 0, input: selector, check_key: key, check_value: value }.parse()
    }

    /// Whether a label set satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

fn lex(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                chars.next();
            }
            '!' | '=' => {
                chars.next();
                let double = chars.peek() == Some(&'=');
                if double {
                    chars.next();
                }
                tokens.push(match (c, double) {
                    ('!', true) => Token::NotEq,
                    ('!', false) => Token::Bang,
                    (_, true) => Token::DoubleEq,
                    _ => Token::Eq,
                });
            }
            '>' | '<' | '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '>' => Token::Gt,
                    '<' => Token::Lt,
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            _ => {
                let mut ident = String::new();
                while let Some(&c) = chars.peek() {
                    if " \t\r\n!=><(),".contains(c) {
                        break;
                    }
                    ident.push(c);
                    chars.next();
                }
                tokens.push(Token::Ident(ident));
            }
        }
    }
    tokens
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    input: &'a str,
    check_key: fn(&str) -> Result<(), String>,
    check_value: fn(&str) -> Result<(), String>,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> SelectorError {
        SelectorError { selector: self.input.to_owned(), reason: reason.into() }
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn parse(mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if self.tokens.is_empty() {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                None => break,
                Some(Token::Comma) => continue,
                Some(t) => return Err(self.err(format!("expected ',' or end of selector, found {t:?}"))),
            }
        }
        Ok(LabelSelector { requirements })
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek() == Some(&Token::Bang) {
            self.next();
            let key = self.key()?;
            return Ok(Requirement { key, operator: Operator::DoesNotExist, values: Vec::new() });
        }
        let key = self.key()?;
        let operator = match self.peek() {
            None | Some(Token::Comma) => {
                return Ok(Requirement { key, operator: Operator::Exists, values: Vec::new() });
            }
            Some(Token::Eq | Token::DoubleEq) => Operator::Equals,
            Some(Token::NotEq) => Operator::NotEquals,
            Some(Token::Gt) => Operator::GreaterThan,
            Some(Token::Lt) => Operator::LessThan,
            Some(Token::Ident(w)) if w == "in" => Operator::In,
            Some(Token::Ident(w)) if w == "notin" => Operator::NotIn,
            Some(t) => return Err(self.err(format!("found {t:?}, expected one of: in, notin, =, ==, !=, >, <"))),
        };
        self.next();
        let values = match operator {
            Operator::In | Operator::NotIn => self.set()?,
            Operator::GreaterThan | Operator::LessThan => {
                let v = self.value()?;
                if v.parse::<i64>().is_err() {
                    return Err(self.err(format!("for '>' and '<' the value must be an integer, got {v:?}")));
                }
                vec![v]
            }
            _ => vec![self.value()?],
        };
        Ok(Requirement { key, operator, values })
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            Some(Token::Ident(k)) => {
                (self.check_key)(&k).map_err(|r| self.err(r))?;
                Ok(k)
            }
            Some(t) => Err(self.err(format!("found {t:?}, expected a key"))),
            None => Err(self.err("expected a key at the end of the selector")),
        }
    }

    /// A single value; empty when the selector ends or a ',' follows (`a=` selects `a` = "").
    fn value(&mut self) -> Result<String, SelectorError> {
        match self.peek().cloned() {
            None | Some(Token::Comma) => Ok(String::new()),
            Some(Token::Ident(v)) => {
                self.next();
                (self.check_value)(&v).map_err(|r| self.err(r))?;
                Ok(v)
            }
            Some(t) => Err(self.err(format!("found {t:?}, expected a value"))),
        }
    }

    fn set(&mut self) -> Result<Vec<String>, SelectorError> {
        if self.next() != Some(Token::Open) {
            return Err(self.err("expected '(' after in/notin"));
        }
        let mut values = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Close) => {
                    self.next();
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Some(Token::Comma) if values.is_empty() => values.push(String::new()),
                _ => {}
            }
            match self.next() {
                Some(Token::Ident(v)) => {
                    (self.check_value)(&v).map_err(|r| self.err(r))?;
                    values.push(v);
                }
                Some(Token::Comma) => {
                    if matches!(self.peek(), Some(Token::Comma | Token::Close)) {
                        values.push(String::new());
                    }
                }
                Some(Token::Close) => return Ok(values),
                Some(t) => return Err(self.err(format!("found {t:?} in a value set"))),
                None => return Err(self.err("missing ')' at the end of a value set")),
            }
        }
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
pub fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !crate::validation::is_dns_subdomain(p))
    {
        return Err(format!("invalid label key {key:?}: prefix must be a DNS subdomain"));
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must be 63 characters or less, alphanumeric, '-', '_' or '.', \
             starting and ending with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A label value: empty, or up to 63 characters of alphanumerics, '-', '_', '.', with alphanumeric ends.
pub fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_qualified_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: must be 63 characters or less, alphanumeric, '-', '_' or '.', \
             starting and ending with an alphanumeric character"
        ))
    }
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// One `field=value` / `field!=value` term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

/// A Kubernetes field selector (`metadata.name=a,status.phase!=Running`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a field selector; `\` escapes `,`, `=`, `!` and `\` in values as in Kubernetes.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let err = |reason: String| SelectorError { selector: selector.to_owned(), reason };
        let mut requirements = Vec::new();
        for term in split_unescaped(selector, ',') {
            if term.trim().is_empty() {
                continue;
            }
            let (field, value, negated) = if let Some(i) = find_unescaped(&term, "!=") {
                (&term[..i], &term[i + 2..], true)
            } else if let Some(i) = find_unescaped(&term, "==") {
                (&term[..i], &term[i + 2..], false)
            } else if let Some(i) = find_unescaped(&term, "=") {
                (&term[..i], &term[i + 1..], false)
            } else {
                return Err(err(format!("invalid field selector term {term:?}: expected field=value or field!=value")));
            };
            let field = field.trim();
            if field.is_empty() {
                return Err(err(format!("invalid field selector term {term:?}: empty field")));
            }
            requirements.push(FieldRequirement { field: field.to_owned(), value: unescape(value.trim()), negated });
        }
        Ok(Self { requirements })
    }

    /// Whether an object matches, reading fields through `get` (absent fields read as "").
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let v = get(&r.field).unwrap_or_default();
            (v == r.value) != r.negated
        })
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if let Some(last) = parts.last_mut() {
                last.push('\\');
                last.push(c);
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i..].starts_with(pat) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = LabelSelector::parse("a=b, c==d,e!=f,g in (h, i),j notin (k),l,!m,n>3,o<4").unwrap();
        let ops: Vec<_> = s.requirements.iter().map(|r| r.operator).collect();
        use Operator::*;
        assert_eq!(ops, [Equals, Equals, NotEquals, In, NotIn, Exists, DoesNotExist, GreaterThan, LessThan]);
        assert_eq!(s.requirements[3].values, ["h", "i"]);
        assert_eq!(s.to_string(), "a=b,c=d,e!=f,g in (h,i),j notin (k),l,!m,n>3,o<4");
    }

    #[test]
    fn matching_follows_kubernetes() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("replicas", "5")]);
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
        assert!(m("") && m("app=web") && m("app in (web,db)") && m("tier") && m("!missing"));
        assert!(m("missing!=x") && m("missing notin (x)"), "absent keys satisfy != and notin");
        assert!(!m("app!=web") && !m("app notin (web)") && !m("!app") && !m("missing"));
        assert!(m("replicas>4") && !m("replicas>5") && m("replicas<6") && !m("app>1"));
        assert!(m("app=web,tier=front") && !m("app=web,tier=back"));
    }

    #[test]
    fn empty_values() {
        let s = LabelSelector::parse("a=,b in ()").unwrap();
        assert_eq!(s.requirements[0].values, [""]);
        assert_eq!(s.requirements[1].values, [""]);
        assert!(s.matches(&labels(&[("a", ""), ("b", "")])));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for bad in ["a=b=c", "a in b", "a in (b", "=b", "a>x", "Bad Key=1", "a=-bad", "a,,b", "a notin", "!"] {
            let e = LabelSelector::parse(bad).unwrap_err();
            assert_eq!(e.selector, bad);
            assert!(!e.reason.is_empty());
        }
        let e = LabelSelector::parse("app=web,a in b").unwrap_err();
        assert!(e.reason.contains("'('"), "{e}");
    }

    #[test]
    fn qualified_keys() {
        assert!(LabelSelector::parse("search.clusterpedia.io/clusters in (a,b)").is_ok());
        assert!(LabelSelector::parse("app.kubernetes.io/name=x").is_ok());
        assert!(LabelSelector::parse("/name=x").is_err());
        assert!(LabelSelector::parse(&format!("{}=x", "a".repeat(64))).is_err());
    }

    #[test]
    fn field_selectors() {
        let s = FieldSelector::parse("metadata.name=a,status.phase!=Running,spec.nodeName==n1").unwrap();
        assert_eq!(s.requirements.len(), 3);
        assert!(s.requirements[1].negated);
        let get = |f: &str| match f {
            "metadata.name" => Some("a".to_owned()),
            "status.phase" => Some("Pending".to_owned()),
            "spec.nodeName" => Some("n1".to_owned()),
            _ => None,
        };
        assert!(s.matches(get));
        assert!(!FieldSelector::parse("metadata.name=b").unwrap().matches(get));
        assert!(FieldSelector::parse("missing=").unwrap().matches(get));
        let esc = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
        assert_eq!(esc.requirements[0].value, "a,b");
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(FieldSelector::parse("=x").is_err());
    }
}
