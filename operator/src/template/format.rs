//! Go's `fmt` as templates see it: how values print (`%v`) and `printf` verbs.

use serde_json::Value;

/// A float the way Go's `%v` prints a float64 (`1.5`, `1e+06`, `1e-05`).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return "0".into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.5e6".
    let e = format!("{:e}", f);
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // Go's %v is 'g' with the shortest digits: exponent form below 1e-4 and from 1e+06 on.
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let s = format!("{f}");
        s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
    }
}

/// `%v` of a value; nil (a missing key) prints empty, as upstream strips `<no value>`.
pub fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => go_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(nested).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys.iter().map(|k| format!("{k}:{}", nested(&map[k.as_str()]))).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Inside maps and lists Go prints nil as `<nil>`.
fn nested(v: &Value) -> String {
    if v.is_null() { "<nil>".into() } else { display(v) }
}

/// Go's `%q` of a string.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&display(a));
    }
    out
}

/// `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %x %X %f %t %%`, with flags `-`,
/// `0`, `+`, width and precision.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus) = (false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let mut s = match verb {
            'v' | 's' => {
                let s = display(arg);
                match precision {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            'q' => quote(&display(arg)),
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                other => format!("%!t({})", display(other)),
            },
            'd' => match arg.as_i64() {
                Some(i) if plus && i >= 0 => format!("+{i}"),
                Some(i) => i.to_string(),
                None => format!("%!d({})", display(arg)),
            },
            'x' | 'X' => {
                let s = match arg {
                    Value::Number(n) if n.as_i64().is_some() => format!("{:x}", n.as_i64().unwrap_or(0)),
                    Value::String(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                    other => format!("%!x({})", display(other)),
                };
                if verb == 'X' { s.to_uppercase() } else { s }
            }
            'f' | 'F' | 'e' | 'g' => match arg.as_f64() {
                Some(f) if verb == 'e' => format!("{:.*e}", precision.unwrap_or(6), f),
                Some(f) if verb == 'g' => go_float(f),
                Some(f) => format!("{:.*}", precision.unwrap_or(6), f),
                None => format!("%!{verb}({})", display(arg)),
            },
            other => format!("%!{other}({})", display(arg)),
        };
        if let Ok(w) = width.parse::<usize>() {
            let len = s.chars().count();
            if len < w {
                let pad = w - len;
                if left {
                    s.push_str(&" ".repeat(pad));
                } else if zero && !matches!(verb, 's' | 'v' | 'q') {
                    let (sign, digits) = if s.starts_with(['-', '+']) { s.split_at(1) } else { ("", s.as_str()) };
                    s = format!("{sign}{}{digits}", "0".repeat(pad));
                } else {
                    s = format!("{}{s}", " ".repeat(pad));
                }
            }
        }
        out.push_str(&s);
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..].iter().map(display).collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_like_go() {
        assert_eq!(display(&json!(1000000.0)), "1e+06");
        assert_eq!(display(&json!(1.5)), "1.5");
        assert_eq!(display(&json!(0.00001)), "1e-05");
        assert_eq!(display(&json!(123456.0)), "123456");
        assert_eq!(display(&json!(3)), "3");
        assert_eq!(display(&json!({"b": 1, "a": [true, null]})), "map[a:[true <nil>] b:1]");
        assert_eq!(display(&Value::Null), "");
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(sprintf("%s-%d-%q-%v", &[json!("a"), json!(7), json!("x\"y"), json!(true)]), "a-7-\"x\\\"y\"-true");
        assert_eq!(
            sprintf("%05d|%-4s|%4s|%.2f|%x|%%", &[json!(42), json!("ab"), json!("ab"), json!(1.23456), json!(255)]),
            "00042|ab  |  ab|1.23|ff|%"
        );
        assert_eq!(sprintf("%d %d", &[json!(1)]), "1 %!d(MISSING)");
        assert_eq!(sprint(&[json!(1), json!(2), json!("a"), json!(3)]), "1 2a3");
    }
}
