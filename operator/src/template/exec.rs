//! Executes a parsed Go template over JSON data, as text (no HTML escaping).

use serde_json::Value;

use super::format::display;
use super::funcs::{self, truth, type_name};
use super::parse::{Arg, Cmd, Node, Pipe, Pos};

/// Output beyond this is an error (a runaway template, not a PediaCluster).
const MAX_OUTPUT: usize = 4 << 20;
/// Nodes executed beyond this are an error (a runaway loop).
const MAX_STEPS: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct ExecError {
    pub pos: Pos,
    pub message: String,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec {
    vars: Vec<(String, Value)>,
    out: String,
    steps: usize,
}

/// Renders `nodes` with `data` as `.` and `$`.
pub fn execute(nodes: &[Node], data: &Value) -> Result<String, ExecError> {
    let mut e = Exec { vars: vec![(String::new(), data.clone())], out: String::new(), steps: 0 };
    e.walk(nodes, data)?;
    Ok(e.out)
}

fn fail<T>(pos: Pos, message: impl Into<String>) -> Result<T, ExecError> {
    Err(ExecError { pos, message: message.into() })
}

impl Exec {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, ExecError> {
        for node in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return fail(0, format!("the template ran more than {MAX_STEPS} steps"));
            }
            let flow = match node {
                Node::Text(t) => {
                    self.emit(0, t)?;
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot, true)?;
                    if pipe.vars.is_empty() {
                        self.emit(pipe.pos, &display(&v))?;
                    }
                    Flow::Normal
                }
                Node::If { pipe, then, otherwise } => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot, true)?;
                    let flow = if truth(&v) { self.walk(then, dot)? } else { self.walk(otherwise, dot)? };
                    self.vars.truncate(mark);
                    flow
                }
                Node::With { pipe, body, otherwise } => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot, true)?;
                    let flow = if truth(&v) { self.walk(body, &v)? } else { self.walk(otherwise, dot)? };
                    self.vars.truncate(mark);
                    flow
                }
                Node::Range { pipe, body, otherwise } => self.range(pipe, body, otherwise, dot)?,
                Node::Break(_) => return Ok(Flow::Break),
                Node::Continue(_) => return Ok(Flow::Continue),
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn emit(&mut self, pos: Pos, s: &str) -> Result<(), ExecError> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return fail(pos, format!("the output exceeds {} MiB", MAX_OUTPUT >> 20));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn range(&mut self, pipe: &Pipe, body: &[Node], otherwise: &[Node], dot: &Value) -> Result<Flow, ExecError> {
        let v = self.pipe(pipe, dot, false)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::Array(l) => l.iter().enumerate().map(|(i, x)| (Value::from(i), x.clone())).collect(),
            // Go ranges over maps in key order.
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                keys.into_iter().map(|k| (Value::String(k.clone()), m[k.as_str()].clone())).collect()
            }
            Value::Number(n) if n.as_i64().is_some() => {
                (0..n.as_i64().unwrap_or(0).min(MAX_STEPS as i64)).map(|i| (Value::from(i), Value::from(i))).collect()
            }
            Value::Null => Vec::new(),
            other => return fail(pipe.pos, format!("range can't iterate over {}", display(other))),
        };
        if items.is_empty() {
            return self.walk(otherwise, dot);
        }
        let mark = self.vars.len();
        for (key, item) in items {
            self.vars.truncate(mark);
            match pipe.vars.as_slice() {
                [element] => self.vars.push((element.clone(), item.clone())),
                [k, element] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((element.clone(), item.clone()));
                }
                _ => {}
            }
            match self.walk(body, &item)? {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    /// Evaluates a pipeline; with `declare`, binds or assigns its variables.
    fn pipe(&mut self, pipe: &Pipe, dot: &Value, declare: bool) -> Result<Value, ExecError> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.cmd(cmd, dot, value)?);
        }
        let value = value.unwrap_or(Value::Null);
        if declare {
            for name in &pipe.vars {
                if pipe.assign {
                    match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                        Some(slot) => slot.1 = value.clone(),
                        None => return fail(pipe.pos, format!("undefined variable: ${name}")),
                    }
                } else {
                    self.vars.push((name.clone(), value.clone()));
                }
            }
        }
        Ok(value)
    }

    fn cmd(&mut self, cmd: &Cmd, dot: &Value, piped: Option<Value>) -> Result<Value, ExecError> {
        let Some(first) = cmd.args.first() else {
            return fail(cmd.pos, "empty command");
        };
        if let Arg::Func(name) = first {
            return self.call(cmd.pos, name, &cmd.args[1..], dot, piped);
        }
        if cmd.args.len() > 1 || piped.is_some() {
            return fail(cmd.pos, format!("can't give argument to non-function {}", describe(first)));
        }
        self.arg(cmd.pos, first, dot)
    }

    fn call(
        &mut self,
        pos: Pos,
        name: &str,
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, ExecError> {
        if name == "and" || name == "or" {
            // Short-circuit: stop at the first falsy (and) / truthy (or) argument.
            let want_truthy = name == "or";
            let mut last = Value::Null;
            let count = args.len() + usize::from(piped.is_some());
            if count == 0 {
                return fail(pos, format!("error calling {name}: wrong number of args: want at least 1 got 0"));
            }
            for a in args {
                last = self.arg(pos, a, dot)?;
                if truth(&last) == want_truthy {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            return Ok(last);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for a in args {
            values.push(self.arg(pos, a, dot)?);
        }
        values.extend(piped);
        funcs::call(name, &values).or_else(|m| fail(pos, format!("error calling {name}: {m}")))
    }

    fn arg(&mut self, pos: Pos, arg: &Arg, dot: &Value) -> Result<Value, ExecError> {
        match arg {
            Arg::Field(path) => fields(pos, dot, path),
            Arg::Var(name, path) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return fail(pos, format!("undefined variable: ${name}"));
                };
                let v = v.clone();
                fields(pos, &v, path)
            }
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Func(name) => self.call(pos, name, &[], dot, None),
            Arg::Sub(pipe, path) => {
                let v = self.pipe(pipe, dot, false)?;
                fields(pos, &v, path)
            }
        }
    }
}

/// `.a.b` on a value: missing keys (and anything below them) are nil, not errors.
fn fields(pos: Pos, v: &Value, path: &[String]) -> Result<Value, ExecError> {
    let mut cur = v;
    for (i, name) in path.iter().enumerate() {
        cur = match cur {
            Value::Object(m) => match m.get(name) {
                Some(x) => x,
                None => return Ok(Value::Null),
            },
            Value::Null => return Ok(Value::Null),
            other => {
                return fail(
                    pos,
                    format!("can't evaluate field {name} in type {} (at .{})", type_name(other), path[..=i].join(".")),
                );
            }
        };
    }
    Ok(cur.clone())
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Field(p) => format!(".{}", p.join(".")),
        Arg::Var(n, p) if p.is_empty() => format!("${n}"),
        Arg::Var(n, p) => format!("${n}.{}", p.join(".")),
        Arg::Lit(v) => display(v),
        Arg::Func(n) => n.clone(),
        Arg::Sub(..) => "(...)".into(),
    }
}
