//! Template functions: Go's builtins and the Sprig functions policies use. Both template
//! engines call these. Nothing here reads the environment, files or the clock.

use std::cmp::Ordering;

use base64::Engine as _;
use serde_json::Value;

use super::format::{display, quote, sprint, sprintf};

type Func = fn(&[Value]) -> Result<Value, String>;

/// `and`/`or` evaluate lazily and live in the executor; they are listed so parsing accepts them.
const LAZY: [&str; 2] = ["and", "or"];

const FUNCS: &[(&str, Func)] = &[
    // Go builtins.
    ("not", |a| one(a).map(|v| Value::Bool(!truth(v)))),
    ("eq", eq),
    ("ne", |a| eq(a).map(|v| Value::Bool(v == Value::Bool(false)))),
    ("lt", |a| compare(a, |o| o == Ordering::Less)),
    ("le", |a| compare(a, |o| o != Ordering::Greater)),
    ("gt", |a| compare(a, |o| o == Ordering::Greater)),
    ("ge", |a| compare(a, |o| o != Ordering::Less)),
    ("index", index),
    ("len", len),
    ("print", |a| Ok(Value::String(sprint(a)))),
    ("println", |a| Ok(Value::String(format!("{}\n", a.iter().map(display).collect::<Vec<_>>().join(" "))))),
    ("printf", |a| {
        let (f, rest) = a.split_first().ok_or("printf needs a format")?;
        Ok(Value::String(sprintf(&text(f), rest)))
    }),
    ("slice", slice),
    // Sprig: strings.
    ("b64enc", |a| Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(text(one(a)?))))),
    ("b64dec", b64dec),
    ("hasPrefix", |a| two(a).map(|(p, s)| Value::Bool(text(s).starts_with(&text(p))))),
    ("hasSuffix", |a| two(a).map(|(p, s)| Value::Bool(text(s).ends_with(&text(p))))),
    ("trimPrefix", |a| {
        two(a).map(|(p, s)| {
            let s = text(s);
            Value::String(s.strip_prefix(text(p).as_str()).unwrap_or(&s).to_owned())
        })
    }),
    ("trimSuffix", |a| {
        two(a).map(|(p, s)| {
            let s = text(s);
            Value::String(s.strip_suffix(text(p).as_str()).unwrap_or(&s).to_owned())
        })
    }),
    ("trim", |a| Ok(Value::String(text(one(a)?).trim().to_owned()))),
    ("trimAll", |a| {
        two(a).map(|(cut, s)| {
            let cut: Vec<char> = text(cut).chars().collect();
            Value::String(text(s).trim_matches(cut.as_slice()).to_owned())
        })
    }),
    ("contains", |a| two(a).map(|(sub, s)| Value::Bool(text(s).contains(&text(sub))))),
    ("lower", |a| Ok(Value::String(text(one(a)?).to_lowercase()))),
    ("upper", |a| Ok(Value::String(text(one(a)?).to_uppercase()))),
    ("title", |a| Ok(Value::String(title(&text(one(a)?))))),
    ("replace", |a| match a {
        [old, new, s] => Ok(Value::String(text(s).replace(&text(old), &text(new)))),
        _ => Err(arity(3, a.len())),
    }),
    ("repeat", |a| {
        two(a).and_then(|(n, s)| {
            let n = int(n)?.clamp(0, 10_000) as usize;
            Ok(Value::String(text(s).repeat(n)))
        })
    }),
    ("substr", |a| match a {
        [start, end, s] => {
            let chars: Vec<char> = text(s).chars().collect();
            let (start, end) = (int(start)?, int(end)?);
            let start = start.clamp(0, chars.len() as i64) as usize;
            let end = if end < 0 { chars.len() } else { (end as usize).clamp(start, chars.len()) };
            Ok(Value::String(chars[start..end].iter().collect()))
        }
        _ => Err(arity(3, a.len())),
    }),
    ("trunc", |a| {
        two(a).and_then(|(n, s)| {
            let s = text(s);
            let n = int(n)?;
            let count = s.chars().count() as i64;
            Ok(Value::String(if n >= 0 {
                s.chars().take(n as usize).collect()
            } else {
                s.chars().skip((count + n).max(0) as usize).collect()
            }))
        })
    }),
    ("cat", |a| Ok(Value::String(a.iter().filter(|v| !v.is_null()).map(display).collect::<Vec<_>>().join(" ")))),
    ("quote", |a| {
        Ok(Value::String(a.iter().filter(|v| !v.is_null()).map(|v| quote(&display(v))).collect::<Vec<_>>().join(" ")))
    }),
    ("squote", |a| {
        Ok(Value::String(
            a.iter().filter(|v| !v.is_null()).map(|v| format!("'{}'", display(v))).collect::<Vec<_>>().join(" "),
        ))
    }),
    ("indent", |a| two(a).and_then(|(n, s)| Ok(Value::String(indent(int(n)?, &text(s)))))),
    ("nindent", |a| two(a).and_then(|(n, s)| Ok(Value::String(format!("\n{}", indent(int(n)?, &text(s))))))),
    ("split", |a| {
        two(a).map(|(sep, s)| {
            let parts = text(s)
                .split(text(sep).as_str())
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::String(p.into())))
                .collect();
            Value::Object(parts)
        })
    }),
    ("splitList", |a| two(a).map(|(sep, s)| text(s).split(text(sep).as_str()).map(Value::from).collect())),
    ("join", |a| {
        two(a).map(|(sep, list)| {
            let items: Vec<String> = match list {
                Value::Array(items) => items.iter().filter(|v| !v.is_null()).map(display).collect(),
                Value::Null => Vec::new(),
                other => vec![display(other)],
            };
            Value::String(items.join(&text(sep)))
        })
    }),
    ("regexMatch", |a| {
        two(a).and_then(|(re, s)| {
            let re = regex::Regex::new(&text(re)).map_err(|e| format!("invalid regular expression: {e}"))?;
            Ok(Value::Bool(re.is_match(&text(s))))
        })
    }),
    ("toString", |a| Ok(Value::String(display(one(a)?)))),
    // Sprig: defaults, logic.
    ("default", |a| match a {
        [d] => Ok(d.clone()),
        [d, v] => Ok(if truth(v) { v.clone() } else { d.clone() }),
        _ => Err(arity(2, a.len())),
    }),
    ("empty", |a| one(a).map(|v| Value::Bool(!truth(v)))),
    ("coalesce", |a| Ok(a.iter().find(|v| truth(v)).cloned().unwrap_or(Value::Null))),
    ("ternary", |a| match a {
        [t, f, cond] => Ok(if truth(cond) { t.clone() } else { f.clone() }),
        _ => Err(arity(3, a.len())),
    }),
    // Sprig: lists and dicts.
    ("list", |a| Ok(Value::Array(a.to_vec()))),
    ("first", |a| Ok(one(a)?.as_array().and_then(|l| l.first()).cloned().unwrap_or(Value::Null))),
    ("last", |a| Ok(one(a)?.as_array().and_then(|l| l.last()).cloned().unwrap_or(Value::Null))),
    ("dict", |a| {
        if a.len() % 2 != 0 {
            return Err("dict needs key/value pairs".into());
        }
        Ok(Value::Object(a.chunks(2).map(|kv| (display(&kv[0]), kv[1].clone())).collect()))
    }),
    ("get", |a| {
        two(a)
            .map(|(d, k)| d.as_object().and_then(|m| m.get(&text(k))).cloned().unwrap_or(Value::String(String::new())))
    }),
    ("hasKey", |a| two(a).map(|(d, k)| Value::Bool(d.as_object().is_some_and(|m| m.contains_key(&text(k)))))),
    ("keys", |a| {
        let mut keys: Vec<String> = a.iter().filter_map(Value::as_object).flat_map(|m| m.keys().cloned()).collect();
        keys.sort();
        Ok(keys.into_iter().map(Value::String).collect())
    }),
    // Sprig: encodings and numbers.
    ("toJson", |a| serde_json::to_string(one(a)?).map(Value::String).map_err(|e| e.to_string())),
    ("toPrettyJson", |a| serde_json::to_string_pretty(one(a)?).map(Value::String).map_err(|e| e.to_string())),
    ("fromJson", |a| serde_json::from_str(&text(one(a)?)).map_err(|e| format!("invalid JSON: {e}"))),
    ("toYaml", |a| {
        serde_yaml::to_string(one(a)?)
            .map(|s| Value::String(s.trim_end_matches('\n').to_owned()))
            .map_err(|e| e.to_string())
    }),
    ("int", |a| int(one(a)?).map(Value::from)),
    ("atoi", |a| Ok(Value::from(text(one(a)?).trim().parse::<i64>().unwrap_or(0)))),
    ("add", |a| a.iter().try_fold(0i64, |acc, v| Ok::<_, String>(acc.saturating_add(int(v)?))).map(Value::from)),
    ("sub", |a| two(a).and_then(|(x, y)| Ok(Value::from(int(x)?.saturating_sub(int(y)?))))),
];

/// Whether `name` is a function templates may call.
pub fn exists(name: &str) -> bool {
    LAZY.contains(&name) || FUNCS.iter().any(|(n, _)| *n == name)
}

/// Every function name (for docs and tests).
pub fn names() -> impl Iterator<Item = &'static str> {
    LAZY.into_iter().chain(FUNCS.iter().map(|(n, _)| *n))
}

/// Calls a (non-lazy) function.
pub fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    match FUNCS.iter().find(|(n, _)| *n == name) {
        Some((_, f)) => f(args),
        None if LAZY.contains(&name) => Ok(lazy_fold(name, args)),
        None => Err(format!("function {name:?} not defined")),
    }
}

/// `and`/`or` over already evaluated arguments (handlebars evaluates them eagerly).
pub fn lazy_fold(name: &str, args: &[Value]) -> Value {
    let stop = |v: &Value| if name == "and" { !truth(v) } else { truth(v) };
    args.iter().find(|v| stop(v)).or(args.last()).cloned().unwrap_or(Value::Null)
}

/// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
pub fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Go's type names, for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A string argument: strings as they are, a missing value as "", other scalars printed.
fn text(v: &Value) -> String {
    display(v)
}

fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).ok_or_else(|| "number out of range".into())
        }
        Value::String(s) => s.trim().parse().map_err(|_| format!("{s:?} is not an integer")),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Null => Ok(0),
        other => Err(format!("expected an integer, got {}", type_name(other))),
    }
}

fn arity(want: usize, got: usize) -> String {
    format!("wrong number of args: want {want} got {got}")
}

fn one(a: &[Value]) -> Result<&Value, String> {
    match a {
        [v] => Ok(v),
        _ => Err(arity(1, a.len())),
    }
}

fn two(a: &[Value]) -> Result<(&Value, &Value), String> {
    match a {
        [x, y] => Ok((x, y)),
        _ => Err(arity(2, a.len())),
    }
}

fn b64dec(a: &[Value]) -> Result<Value, String> {
    let s = text(one(a)?);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("not valid base64 ({e}): {:?}", s.chars().take(20).collect::<String>()))?;
    String::from_utf8(bytes).map(Value::String).map_err(|_| "the decoded value is not UTF-8 text".into())
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

fn indent(n: i64, s: &str) -> String {
    let pad = " ".repeat(n.clamp(0, 1000) as usize);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

fn numbers_equal(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        _ => a == b,
    }
}

/// `eq a b c...`: whether `a` equals any of the others. A missing value equals nothing but
/// another missing value (upstream policies compare missing fields to strings without error).
fn eq(a: &[Value]) -> Result<Value, String> {
    let (first, rest) = a.split_first().ok_or("missing argument for comparison")?;
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    Ok(Value::Bool(rest.iter().any(|b| equal(first, b))))
}

fn compare(a: &[Value], want: fn(Ordering) -> bool) -> Result<Value, String> {
    let (x, y) = two(a)?;
    let order = match (x, y) {
        (Value::Number(p), Value::Number(q)) => match (p.as_i64(), q.as_i64()) {
            (Some(p), Some(q)) => p.cmp(&q),
            _ => p.as_f64().partial_cmp(&q.as_f64()).ok_or("cannot compare NaN")?,
        },
        (Value::String(p), Value::String(q)) => p.cmp(q),
        _ => return Err(format!("incompatible types for comparison: {} and {}", type_name(x), type_name(y))),
    };
    Ok(Value::Bool(want(order)))
}

fn index(a: &[Value]) -> Result<Value, String> {
    let (item, keys) = a.split_first().ok_or("index needs an argument")?;
    let mut cur = item.clone();
    for k in keys {
        cur = match (&cur, k) {
            (Value::Object(m), k) => m.get(&text(k)).cloned().unwrap_or(Value::Null),
            (Value::Array(l), Value::Number(n)) => {
                let i = n.as_i64().ok_or("index must be an integer")?;
                usize::try_from(i).ok().and_then(|i| l.get(i)).cloned().ok_or(format!("index out of range: {i}"))?
            }
            (Value::String(s), Value::Number(n)) => {
                let i = n.as_i64().ok_or("index must be an integer")?;
                let b = usize::try_from(i)
                    .ok()
                    .and_then(|i| s.as_bytes().get(i))
                    .ok_or(format!("index out of range: {i}"))?;
                Value::from(*b)
            }
            (Value::Null, _) => Value::Null,
            (other, k) => return Err(format!("can't index item of type {} with {}", type_name(other), type_name(k))),
        };
    }
    Ok(cur)
}

fn len(a: &[Value]) -> Result<Value, String> {
    Ok(Value::from(match one(a)? {
        Value::String(s) => s.len(),
        Value::Array(l) => l.len(),
        Value::Object(m) => m.len(),
        Value::Null => 0,
        other => return Err(format!("len of type {}", type_name(other))),
    }))
}

fn slice(a: &[Value]) -> Result<Value, String> {
    let (item, bounds) = a.split_first().ok_or("slice needs an argument")?;
    let ints = bounds.iter().map(int).collect::<Result<Vec<_>, _>>()?;
    let len = match item {
        Value::String(s) => s.len(),
        Value::Array(l) => l.len(),
        other => return Err(format!("can't slice item of type {}", type_name(other))),
    } as i64;
    let (lo, hi) = match ints.as_slice() {
        [] => (0, len),
        [lo] => (*lo, len),
        [lo, hi] => (*lo, *hi),
        _ => return Err("too many slice indexes".into()),
    };
    if lo < 0 || hi < lo || hi > len {
        return Err(format!("slice bounds out of range [{lo}:{hi}] with length {len}"));
    }
    let (lo, hi) = (lo as usize, hi as usize);
    match item {
        Value::String(s) => s.get(lo..hi).map(Value::from).ok_or_else(|| "slice splits a character".into()),
        Value::Array(l) => Ok(Value::Array(l[lo..hi].to_vec())),
        _ => Ok(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(name: &str, args: Value) -> Value {
        call(name, args.as_array().unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn strings() {
        assert_eq!(c("b64enc", json!(["a+b/c="])), json!("YStiL2M9"));
        assert_eq!(c("b64dec", json!(["YStiL2M9"])), json!("a+b/c="));
        assert!(call("b64dec", &[json!("%%%")]).unwrap_err().contains("not valid base64"));
        assert_eq!(c("hasPrefix", json!(["vc-", "vc-one"])), json!(true));
        assert_eq!(c("hasSuffix", json!(["-x", "vc-one"])), json!(false));
        assert_eq!(c("trimPrefix", json!(["vc-", "vc-one"])), json!("one"));
        assert_eq!(c("trimSuffix", json!([".svc", "a.svc"])), json!("a"));
        assert_eq!(c("trim", json!(["  a \n"])), json!("a"));
        assert_eq!(c("trimAll", json!(["$", "$$a$"])), json!("a"));
        assert_eq!(c("contains", json!(["ell", "hello"])), json!(true));
        assert_eq!(c("lower", json!(["AbC"])), json!("abc"));
        assert_eq!(c("upper", json!(["AbC"])), json!("ABC"));
        assert_eq!(c("title", json!(["hello world"])), json!("Hello World"));
        assert_eq!(c("replace", json!([".", "-", "a.b.c"])), json!("a-b-c"));
        assert_eq!(c("split", json!(["$", "a$b"])), json!({"_0": "a", "_1": "b"}));
        assert_eq!(c("splitList", json!([",", "a,b"])), json!(["a", "b"]));
        assert_eq!(c("join", json!(["-", ["a", 1, null]])), json!("a-1"));
        assert_eq!(c("quote", json!(["a\"b", null, 1])), json!("\"a\\\"b\" \"1\""));
        assert_eq!(c("squote", json!(["a"])), json!("'a'"));
        assert_eq!(c("indent", json!([2, "a\nb"])), json!("  a\n  b"));
        assert_eq!(c("nindent", json!([2, "a"])), json!("\n  a"));
        assert_eq!(c("regexMatch", json!(["^vc-[a-z]+$", "vc-abc"])), json!(true));
        assert!(call("regexMatch", &[json!("("), json!("x")]).unwrap_err().contains("invalid regular expression"));
        assert_eq!(c("substr", json!([1, 3, "abcd"])), json!("bc"));
        assert_eq!(c("trunc", json!([2, "abcd"])), json!("ab"));
        assert_eq!(c("repeat", json!([3, "ab"])), json!("ababab"));
        assert_eq!(c("cat", json!(["a", null, 2])), json!("a 2"));
        assert_eq!(c("printf", json!(["%s=%d", "a", 1])), json!("a=1"));
        assert_eq!(c("print", json!(["a", 1, 2])), json!("a1 2"));
        assert_eq!(c("println", json!(["a", 1])), json!("a 1\n"));
    }

    #[test]
    fn logic_lists_and_dicts() {
        assert_eq!(c("eq", json!(["a", "b", "a"])), json!(true));
        assert_eq!(c("eq", json!([null, "a"])), json!(false), "missing values compare without error");
        assert_eq!(c("ne", json!([null, "a"])), json!(true));
        assert_eq!(c("eq", json!([1, 1.0])), json!(true));
        assert_eq!(c("lt", json!([1, 2])), json!(true));
        assert_eq!(c("ge", json!(["b", "a"])), json!(true));
        assert!(call("lt", &[json!(1), json!("a")]).unwrap_err().contains("incompatible types"));
        assert_eq!(c("not", json!([""])), json!(true));
        assert_eq!(lazy_fold("and", &[json!("a"), json!(""), json!("c")]), json!(""));
        assert_eq!(lazy_fold("or", &[json!(""), json!("b")]), json!("b"));
        assert_eq!(c("default", json!(["d", ""])), json!("d"));
        assert_eq!(c("default", json!(["d", "v"])), json!("v"));
        assert_eq!(c("empty", json!([{}])), json!(true));
        assert_eq!(c("coalesce", json!([null, "", "x"])), json!("x"));
        assert_eq!(c("ternary", json!(["y", "n", false])), json!("n"));
        assert_eq!(c("list", json!([1, "a"])), json!([1, "a"]));
        assert_eq!(c("first", json!([[1, 2]])), json!(1));
        assert_eq!(c("last", json!([[1, 2]])), json!(2));
        assert_eq!(c("dict", json!(["a", 1, "b", 2])), json!({"a": 1, "b": 2}));
        assert_eq!(c("get", json!([{"a": 1}, "a"])), json!(1));
        assert_eq!(c("get", json!([{"a": 1}, "z"])), json!(""));
        assert_eq!(c("hasKey", json!([{"a": 1}, "a"])), json!(true));
        assert_eq!(c("keys", json!([{"b": 1, "a": 2}])), json!(["a", "b"]));
        assert_eq!(c("index", json!([{"a": [1, {"b": 2}]}, "a", 1, "b"])), json!(2));
        assert_eq!(c("index", json!([{"a": 1}, "missing"])), json!(null));
        assert!(call("index", &[json!([1]), json!(3)]).unwrap_err().contains("out of range"));
        assert_eq!(c("len", json!([[1, 2, 3]])), json!(3));
        assert_eq!(c("slice", json!(["abcd", 1, 3])), json!("bc"));
        assert_eq!(c("toJson", json!([{"a": [1]}])), json!("{\"a\":[1]}"));
        assert_eq!(c("fromJson", json!(["{\"a\": 1}"])), json!({"a": 1}));
        assert!(call("fromJson", &[json!("{")]).unwrap_err().contains("invalid JSON"));
        assert_eq!(c("toYaml", json!([{"a": 1}])), json!("a: 1"));
        assert_eq!(c("int", json!(["42"])), json!(42));
        assert_eq!(c("atoi", json!(["x"])), json!(0));
        assert_eq!(c("add", json!([1, 2, 3])), json!(6));
        assert_eq!(c("sub", json!([5, 2])), json!(3));
        assert!(call("replace", &[json!("a")]).unwrap_err().contains("wrong number of args"));
        for name in names() {
            assert!(exists(name));
        }
        assert!(!exists("env") && !exists("expandenv"), "nothing reads the process environment");
    }
}
