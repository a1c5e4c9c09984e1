//! Go `text/template` syntax: text and `{{ }}` actions (trim markers, comments, multi-line
//! actions), pipelines, variables and the control structures policies use.

use serde_json::Value;

use super::funcs;

/// A byte offset into the template text (turned into line and column for messages).
pub type Pos = usize;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If { pipe: Pipe, then: Vec<Node>, otherwise: Vec<Node> },
    Range { pipe: Pipe, body: Vec<Node>, otherwise: Vec<Node> },
    With { pipe: Pipe, body: Vec<Node>, otherwise: Vec<Node> },
    Break(Pos),
    Continue(Pos),
}

/// `$a, $b := cmd | cmd`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub pos: Pos,
    pub vars: Vec<String>,
    /// `=` (assign to existing variables) rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    pub pos: Pos,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.a.b` (empty: `.` itself).
    Field(Vec<String>),
    /// `$x.a.b` (`$` is the root data).
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    /// `(pipeline).a.b`
    Sub(Box<Pipe>, Vec<String>),
}

/// A syntax error at a position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError { pos, message: message.into() })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: Pos,
    /// Whitespace came right before it (field chains after `)` must be adjacent).
    spaced: bool,
}

/// One piece of the template: text, or the tokens of one action.
enum Piece {
    Text(String),
    Action { pos: Pos, tokens: Vec<Token> },
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits the template into text and actions, applying `{{-` / `-}}` trimming and dropping
/// comments.
fn split(src: &str) -> Result<Vec<Piece>, SyntaxError> {
    let b = src.as_bytes();
    let mut pieces = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let mut trim_next = false;
    while let Some(off) = src[i..].find("{{") {
        let open = i + off;
        let mut text = &src[text_start..open];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let mut j = open + 2;
        if b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(|c| is_space(*c)) {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            j += 2;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_owned()));
        }
        let (tokens, end, trim) = lex_action(src, j, open)?;
        trim_next = trim;
        if let Some(tokens) = tokens {
            pieces.push(Piece::Action { pos: open, tokens });
        }
        i = end;
        text_start = end;
    }
    let mut text = &src[text_start..];
    if trim_next {
        text = text.trim_start_matches([' ', '\t', '\r', '\n']);
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_owned()));
    }
    Ok(pieces)
}

/// Lexes one action starting at `start` (after `{{` and a trim marker). Returns its tokens
/// (None for a comment), the offset after `}}`, and whether it trims the following text.
fn lex_action(src: &str, start: usize, open: Pos) -> Result<(Option<Vec<Token>>, usize, bool), SyntaxError> {
    let b = src.as_bytes();
    let mut i = start;
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    if src[i..].starts_with("/*") {
        let Some(close) = src[i + 2..].find("*/") else {
            return err(open, "unclosed comment");
        };
        let mut j = i + 2 + close + 2;
        let mut trim = false;
        if b.get(j) == Some(&b' ') && src[j..].trim_start_matches([' ', '\t', '\r', '\n']).starts_with("-}}") {
            j += src[j..].find("-}}").unwrap_or(0) + 1;
            trim = true;
        }
        if !src[j..].starts_with("}}") {
            return err(open, "comment ends before the closing delimiter");
        }
        return Ok((None, j + 2, trim));
    }
    let mut tokens = Vec::new();
    let mut spaced = true;
    loop {
        let Some(&c) = b.get(i) else {
            return err(open, "unclosed action (no closing }})");
        };
        if is_space(c) {
            let ws = i;
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            if src[i..].starts_with("-}}") && i > ws {
                return Ok((Some(tokens), i + 3, true));
            }
            spaced = true;
            continue;
        }
        if src[i..].starts_with("}}") {
            return Ok((Some(tokens), i + 2, false));
        }
        let pos = i;
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Declare
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b'"' => {
                let (s, end) = lex_quoted(src, i)?;
                i = end;
                Tok::Lit(Value::String(s))
            }
            b'`' => {
                let Some(close) = src[i + 1..].find('`') else {
                    return err(pos, "unterminated raw string");
                };
                let s = src[i + 1..i + 1 + close].to_owned();
                i += close + 2;
                Tok::Lit(Value::String(s))
            }
            b'\'' => {
                let rest = &src[i + 1..];
                let mut chars = rest.char_indices();
                let ch = match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => '\n',
                        Some((_, 't')) => '\t',
                        Some((_, c)) => c,
                        None => return err(pos, "unterminated character constant"),
                    },
                    Some((_, c)) => c,
                    None => return err(pos, "unterminated character constant"),
                };
                match chars.next() {
                    Some((end, '\'')) => i += end + 2,
                    _ => return err(pos, "unterminated character constant"),
                }
                Tok::Lit(Value::from(ch as i64))
            }
            b'.' if !b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let (path, end) = lex_fields(src, i);
                i = end;
                Tok::Field(path)
            }
            b'$' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let name = src[i + 1..j].to_owned();
                let (path, end) = if b.get(j) == Some(&b'.') { lex_fields(src, j) } else { (Vec::new(), j) };
                i = end;
                Tok::Var(name, path)
            }
            c if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'.' | b'_' | b'+' | b'-')) {
                    // `-` and `+` only inside an exponent.
                    if matches!(b[j], b'+' | b'-') && !matches!(b[j - 1], b'e' | b'E') {
                        break;
                    }
                    j += 1;
                }
                let text = src[i..j].replace('_', "");
                i = j;
                Tok::Lit(
                    parse_number(&text).ok_or(SyntaxError { pos, message: format!("bad number syntax: {text:?}") })?,
                )
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let word = &src[i..j];
                i = j;
                match word {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "nil" => Tok::Lit(Value::Null),
                    _ => Tok::Ident(word.to_owned()),
                }
            }
            other => return err(pos, format!("unexpected {:?} in action", other as char)),
        };
        tokens.push(Token { tok, pos, spaced });
        spaced = false;
    }
}

fn parse_number(text: &str) -> Option<Value> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let int = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else {
        digits.parse::<i64>().ok()
    };
    if let Some(n) = int {
        return Some(Value::from(if neg { -n } else { n }));
    }
    let f: f64 = text.parse().ok()?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

/// `.a.b.c` from `start` (at a dot); `.` alone is the empty path.
fn lex_fields(src: &str, start: usize) -> (Vec<String>, usize) {
    let b = src.as_bytes();
    let mut path = Vec::new();
    let mut i = start;
    while b.get(i) == Some(&b'.') {
        let mut j = i + 1;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j == i + 1 {
            if path.is_empty() {
                i = j;
            }
            break;
        }
        path.push(src[i + 1..j].to_owned());
        i = j;
    }
    (path, i)
}

/// A Go double-quoted string with its escapes.
fn lex_quoted(src: &str, start: usize) -> Result<(String, usize), SyntaxError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + off + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    '0' => out.push('\0'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                        let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                        match ch {
                            Some(ch) => out.push(ch),
                            None => return err(start, format!("invalid escape \\{e}{hex} in string")),
                        }
                    }
                    other => return err(start, format!("unknown escape \\{other} in string")),
                }
            }
            c => out.push(c),
        }
    }
    err(start, "unterminated quoted string")
}

/// Parses a whole template.
pub fn parse(src: &str) -> Result<Vec<Node>, SyntaxError> {
    let pieces = split(src)?;
    let mut p = Parser { pieces: pieces.into_iter() };
    let (nodes, stop) = p.list()?;
    match stop {
        None => {
            check_vars(&nodes, &mut vec![String::new()])?;
            Ok(nodes)
        }
        Some(Stop::End(pos)) => err(pos, "unexpected {{end}}"),
        Some(Stop::Else(pos, _)) => err(pos, "unexpected {{else}}"),
    }
}

/// Go rejects variables used outside their scope when parsing; so do we, so `Validated`
/// catches them. `$` (the empty name) is always defined.
fn check_vars(nodes: &[Node], scope: &mut Vec<String>) -> Result<(), SyntaxError> {
    fn pipe(p: &Pipe, scope: &[String]) -> Result<(), SyntaxError> {
        for cmd in &p.cmds {
            for arg in &cmd.args {
                match arg {
                    Arg::Var(name, _) if !scope.contains(name) => {
                        return err(cmd.pos, format!("undefined variable \"${name}\""));
                    }
                    Arg::Sub(inner, _) => pipe(inner, scope)?,
                    _ => {}
                }
            }
        }
        if let Some(name) = p.vars.iter().find(|v| p.assign && !scope.contains(v)) {
            return err(p.pos, format!("undefined variable \"${name}\""));
        }
        Ok(())
    }
    for node in nodes {
        match node {
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
            Node::Action(p) => {
                pipe(p, scope)?;
                if !p.assign {
                    scope.extend(p.vars.iter().cloned());
                }
            }
            Node::If { pipe: p, then: a, otherwise: b }
            | Node::With { pipe: p, body: a, otherwise: b }
            | Node::Range { pipe: p, body: a, otherwise: b } => {
                pipe(p, scope)?;
                let mark = scope.len();
                if !p.assign {
                    scope.extend(p.vars.iter().cloned());
                }
                check_vars(a, scope)?;
                check_vars(b, scope)?;
                scope.truncate(mark);
            }
        }
    }
    Ok(())
}

/// What ended a node list.
enum Stop {
    End(Pos),
    /// `{{else}}` or `{{else if ...}}` / `{{else with ...}}` (the remaining tokens).
    Else(Pos, Vec<Token>),
}

struct Parser {
    pieces: std::vec::IntoIter<Piece>,
}

#[derive(Clone, Copy, PartialEq)]
enum Block {
    If,
    Range,
    With,
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Option<Stop>), SyntaxError> {
        let mut nodes = Vec::new();
        while let Some(piece) = self.pieces.next() {
            match piece {
                Piece::Text(t) => nodes.push(Node::Text(t)),
                Piece::Action { pos, tokens } => {
                    let Some(first) = tokens.first() else {
                        return err(pos, "missing value for command");
                    };
                    match &first.tok {
                        Tok::Ident(k) if k == "end" => {
                            if tokens.len() > 1 {
                                return err(tokens[1].pos, "unexpected token after end");
                            }
                            return Ok((nodes, Some(Stop::End(pos))));
                        }
                        Tok::Ident(k) if k == "else" => {
                            return Ok((nodes, Some(Stop::Else(pos, tokens[1..].to_vec()))));
                        }
                        Tok::Ident(k) if k == "if" => nodes.push(self.block(Block::If, pos, &tokens[1..])?),
                        Tok::Ident(k) if k == "range" => nodes.push(self.block(Block::Range, pos, &tokens[1..])?),
                        Tok::Ident(k) if k == "with" => nodes.push(self.block(Block::With, pos, &tokens[1..])?),
                        Tok::Ident(k) if k == "break" || k == "continue" => {
                            if tokens.len() > 1 {
                                return err(tokens[1].pos, format!("unexpected token after {k}"));
                            }
                            nodes.push(if k == "break" { Node::Break(pos) } else { Node::Continue(pos) });
                        }
                        Tok::Ident(k) if matches!(k.as_str(), "define" | "template" | "block") => {
                            return err(pos, format!("{{{{{k}}}}} is not supported in policy templates"));
                        }
                        _ => nodes.push(Node::Action(pipeline(pos, &tokens, true)?)),
                    }
                }
            }
        }
        Ok((nodes, None))
    }

    fn block(&mut self, kind: Block, pos: Pos, tokens: &[Token]) -> Result<Node, SyntaxError> {
        let name = match kind {
            Block::If => "if",
            Block::Range => "range",
            Block::With => "with",
        };
        if tokens.is_empty() {
            return err(pos, format!("missing value for {name}"));
        }
        let pipe = pipeline(pos, tokens, true)?;
        let (body, stop) = self.list()?;
        let otherwise = match stop {
            None => return err(pos, format!("unexpected end of template: {{{{{name}}}}} has no {{{{end}}}}")),
            Some(Stop::End(_)) => Vec::new(),
            Some(Stop::Else(epos, rest)) if rest.is_empty() => {
                let (otherwise, stop) = self.list()?;
                match stop {
                    Some(Stop::End(_)) => otherwise,
                    Some(Stop::Else(p, _)) => return err(p, "{{else}} after {{else}}"),
                    None => return err(epos, format!("unexpected end of template: {{{{{name}}}}} has no {{{{end}}}}")),
                }
            }
            Some(Stop::Else(epos, rest)) => {
                // `{{else if x}}` / `{{else with x}}`: a nested block sharing this one's {{end}}.
                let chained = match &rest[0].tok {
                    Tok::Ident(k) if k == "if" && kind == Block::If => Block::If,
                    Tok::Ident(k) if k == "with" && kind == Block::With => Block::With,
                    _ => return err(rest[0].pos, format!("unexpected token after else in {name}")),
                };
                vec![self.block(chained, epos, &rest[1..])?]
            }
        };
        Ok(match kind {
            Block::If => Node::If { pipe, then: body, otherwise },
            Block::Range => Node::Range { pipe, body, otherwise },
            Block::With => Node::With { pipe, body, otherwise },
        })
    }
}

/// A pipeline, optionally starting with variable declarations.
fn pipeline(pos: Pos, tokens: &[Token], allow_decl: bool) -> Result<Pipe, SyntaxError> {
    let mut rest = tokens;
    let mut vars = Vec::new();
    let mut assign = false;
    if allow_decl {
        let decl_end = match tokens {
            [
                Token { tok: Tok::Var(a, p1), .. },
                Token { tok: Tok::Comma, .. },
                Token { tok: Tok::Var(b, p2), .. },
                Token { tok: t @ (Tok::Declare | Tok::Assign), .. },
                ..,
            ] if p1.is_empty() && p2.is_empty() => {
                vars = vec![a.clone(), b.clone()];
                assign = *t == Tok::Assign;
                3
            }
            [Token { tok: Tok::Var(a, p), .. }, Token { tok: t @ (Tok::Declare | Tok::Assign), .. }, ..]
                if p.is_empty() =>
            {
                vars = vec![a.clone()];
                assign = *t == Tok::Assign;
                1
            }
            _ => 0,
        };
        if decl_end > 0 {
            rest = &tokens[decl_end + 1..];
        }
    }
    let mut cmds = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        let mut depth = 0usize;
        while i < rest.len() {
            match rest[i].tok {
                Tok::LParen => depth += 1,
                Tok::RParen => depth = depth.saturating_sub(1),
                Tok::Pipe if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        let cmd_pos = rest.get(start).map_or(pos, |t| t.pos);
        if start == i {
            return err(cmd_pos, "missing command in pipeline");
        }
        cmds.push(command(cmd_pos, &rest[start..i])?);
        if i >= rest.len() {
            break;
        }
        i += 1;
    }
    Ok(Pipe { pos, vars, assign, cmds })
}

fn command(pos: Pos, tokens: &[Token]) -> Result<Cmd, SyntaxError> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let arg = match &t.tok {
            Tok::Field(p) => Arg::Field(p.clone()),
            Tok::Var(n, p) => Arg::Var(n.clone(), p.clone()),
            Tok::Lit(v) => Arg::Lit(v.clone()),
            Tok::Ident(name) => {
                if !funcs::exists(name) {
                    return err(t.pos, format!("function {name:?} not defined"));
                }
                Arg::Func(name.clone())
            }
            Tok::LParen => {
                let mut depth = 1;
                let mut j = i + 1;
                while j < tokens.len() {
                    match tokens[j].tok {
                        Tok::LParen => depth += 1,
                        Tok::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j >= tokens.len() {
                    return err(t.pos, "unclosed left paren");
                }
                let inner = pipeline(t.pos, &tokens[i + 1..j], false)?;
                i = j;
                let mut fields = Vec::new();
                if let Some(Token { tok: Tok::Field(p), spaced: false, .. }) = tokens.get(i + 1) {
                    fields = p.clone();
                    i += 1;
                }
                Arg::Sub(Box::new(inner), fields)
            }
            Tok::RParen => return err(t.pos, "unexpected right paren"),
            Tok::Pipe | Tok::Comma | Tok::Declare | Tok::Assign => {
                return err(t.pos, "unexpected operator in command");
            }
        };
        if i + 1 < tokens.len() && !tokens[i + 1].spaced && !matches!(tokens[i + 1].tok, Tok::RParen) {
            return err(tokens[i + 1].pos, "missing space between operands");
        }
        args.push(arg);
        i += 1;
    }
    Ok(Cmd { pos, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_markers_comments_and_chains() {
        let nodes = parse("a  {{- .x -}}  b {{/* c */}}{{- /* d */ -}} e").unwrap();
        assert_eq!(nodes.len(), 4, "{nodes:?}");
        assert_eq!(nodes[0], Node::Text("a".into()));
        assert_eq!(nodes[2], Node::Text("b ".into()));
        assert_eq!(nodes[3], Node::Text("e".into()));
        let nodes = parse("{{ (index .a 0).b.c }}").unwrap();
        let Node::Action(p) = &nodes[0] else { panic!() };
        assert!(matches!(&p.cmds[0].args[0], Arg::Sub(_, f) if f == &["b", "c"]));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("ok\n{{ if .a }}x").unwrap_err();
        assert_eq!(e.pos, 3, "{e:?}");
        assert!(e.message.contains("no {{end}}"), "{e:?}");
        let e = parse("{{ nope .a }}").unwrap_err();
        assert!(e.message.contains("\"nope\" not defined"), "{e:?}");
        assert_eq!(parse("{{ .a ").unwrap_err().message, "unclosed action (no closing }})");
        assert!(parse("{{ \"x }}").unwrap_err().message.contains("unterminated"));
        assert!(parse("{{ end }}").unwrap_err().message.contains("unexpected {{end}}"));
        assert!(parse("{{ template \"x\" }}").unwrap_err().message.contains("not supported"));
        assert_eq!(
            parse("a\n{{ $x }}").unwrap_err(),
            SyntaxError { pos: 5, message: "undefined variable \"$x\"".into() }
        );
        assert!(parse("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}").is_err(), "scoped to the block");
        assert!(parse("{{ $y := 1 }}{{ if true }}{{ $y = 2 }}{{ (len $y) }}{{ end }}{{ $ }}").is_ok());
        assert!(parse("{{ range $i, $v := .l }}{{ $i }}{{ $v }}{{ end }}").is_ok());
        assert!(parse("{{ $z = 1 }}").unwrap_err().message.contains("undefined variable"));
    }
}
