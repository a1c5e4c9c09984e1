//! Clusterpedia's enhanced field selector: the label-selector grammar with field-path keys
//! (`status.phase=Running`, `metadata.annotations['a.b/c']=x`, `spec.containers[0].name=web`,
//! `spec.replicas>2`), evaluated on the stored object.

use crate::selector::{LabelSelector, Requirement, SelectorError};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A map key.
    Field(String),
    /// A list index.
    Index(usize),
}

/// A requirement on a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub path: Vec<Segment>,
    pub requirement: Requirement,
}

/// A parsed enhanced field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPathSelector {
    pub requirements: Vec<FieldRequirement>,
}

fn any_value(_: &str) -> Result<(), String> {
    Ok(())
}

fn check_path(key: &str) -> Result<(), String> {
    parse_path(key).map(|_| ())
}

impl FieldPathSelector {
    /// Parses a field selector; errors name the requirement and the problem.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let parsed = LabelSelector::parse_with(selector, check_path, any_value)?;
        let requirements = parsed
            .requirements
            .into_iter()
            .map(|r| {
                let path =
                    parse_path(&r.key).map_err(|reason| SelectorError { selector: selector.to_owned(), reason })?;
                Ok(FieldRequirement { path, requirement: r })
            })
            .collect::<Result<Vec<_>, SelectorError>>()?;
        Ok(Self { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object matches (the in-memory meaning the SQL backends implement): fields read
    /// as text, booleans as `true`/`false`, numbers in decimal; absent fields match `!=`/`notin`.
    pub fn matches(&self, object: &serde_json::Value) -> bool {
        self.requirements.iter().all(|r| {
            let value = value_at(object, &r.path);
            let mut fields = std::collections::BTreeMap::new();
            if let Some(v) = value {
                fields.insert(r.requirement.key.clone(), v);
            }
            r.requirement.matches(&fields)
        })
    }
}

/// The text of the value at a path, if present and not null.
pub fn value_at(object: &serde_json::Value, path: &[Segment]) -> Option<String> {
    let mut cur = object;
    for seg in path {
        cur = match seg {
            Segment::Field(f) => cur.get(f)?,
            Segment::Index(i) => cur.get(*i)?,
        };
    }
    match cur {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn is_field_name(s: &str) -> bool {
    // Kubernetes field names: alphanumerics, '-', '_', '.', '/' (annotation keys), not empty.
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

/// Parses `a.b['c.d'][0].e` into segments. A `[]` (list of any element) is refused: the store
/// cannot search inside lists of unknown position.
pub fn parse_path(key: &str) -> Result<Vec<Segment>, String> {
    let err = |m: &str| format!("invalid field path {key:?}: {m}");
    let mut rest = key.strip_prefix('.').unwrap_or(key);
    let mut out = Vec::new();
    if rest.is_empty() {
        return Err(err("empty path"));
    }
    if rest.starts_with('[') {
        return Err(err("a path must start with a field name"));
    }
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| err("unterminated '['"))?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if inner.is_empty() {
                return Err(err("list fields ('[]') are not supported; use an index such as [0]"));
            }
            if let Some(q) = inner
                .strip_prefix('\'')
                .and_then(|q| q.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')))
            {
                if q.is_empty() {
                    return Err(err("empty quoted field name"));
                }
                if !is_field_name(q) {
                    return Err(err(&format!("{q:?} is not a valid field name")));
                }
                out.push(Segment::Field(q.to_owned()));
            } else {
                let i = inner
                    .parse::<usize>()
                    .map_err(|_| err(&format!("index {inner:?} must be a number; quote names: ['{inner}']")))?;
                out.push(Segment::Index(i));
            }
            rest = rest.strip_prefix('.').map_or(rest, |r| if r.starts_with('[') { rest } else { r });
            if rest.starts_with('.') {
                return Err(err("empty field name"));
            }
            continue;
        }
        let (name, tail) = if let Some(r) = rest.strip_prefix('\'').or_else(|| rest.strip_prefix('"')) {
            let quote = rest.as_bytes()[0] as char;
            let end = r.find(quote).ok_or_else(|| err("unterminated quote"))?;
            if end == 0 {
                return Err(err("empty quoted field name"));
            }
            (&r[..end], &r[end + 1..])
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if name.is_empty() {
            return Err(err("empty field name"));
        }
        if !is_field_name(name) {
            return Err(err(&format!("{name:?} is not a valid field name")));
        }
        out.push(Segment::Field(name.to_owned()));
        rest = match tail.strip_prefix('.') {
            Some("") => return Err(err("trailing '.'")),
            Some(r) => r,
            None if tail.is_empty() || tail.starts_with('[') => tail,
            None => return Err(err("unexpected text after a quoted name")),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::Operator;

    fn f(s: &str) -> Segment {
        Segment::Field(s.to_owned())
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("status.phase").unwrap(), [f("status"), f("phase")]);
        assert_eq!(parse_path(".status.phase").unwrap(), [f("status"), f("phase")]);
        assert_eq!(parse_path("metadata.annotations['a.b/c']").unwrap(), [f("metadata"), f("annotations"), f("a.b/c")]);
        assert_eq!(
            parse_path(r#"metadata.labels."app.kubernetes.io/name""#).unwrap(),
            [f("metadata"), f("labels"), f("app.kubernetes.io/name")]
        );
        assert_eq!(
            parse_path("spec.containers[0].name").unwrap(),
            [f("spec"), f("containers"), Segment::Index(0), f("name")]
        );
        assert_eq!(parse_path("a['b'].c").unwrap(), [f("a"), f("b"), f("c")]);
        for bad in ["", "[0]", "a..b", "a.", "spec.containers[].name", "a[x.y]", "a['b", "a['']", "a.'b'c", "a.b!"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors() {
        let s = FieldPathSelector::parse(
            "status.phase=Running,spec.replicas>2,metadata.annotations['x.io/y'] in (a,b),!spec.nodeName",
        )
        .unwrap();
        assert_eq!(s.requirements.len(), 4);
        assert_eq!(s.requirements[1].requirement.operator, Operator::GreaterThan);
        assert_eq!(s.requirements[2].path[2], f("x.io/y"));
        assert_eq!(s.requirements[3].requirement.operator, Operator::DoesNotExist);
        let e = FieldPathSelector::parse("spec.containers[].image=x").unwrap_err();
        assert!(e.reason.contains("list fields"), "{e}");
        assert!(FieldPathSelector::parse("spec.replicas>x").is_err());
        assert!(FieldPathSelector::parse("status.podIP=10.0.0.1").is_ok(), "values are not label values");
    }

    #[test]
    fn in_memory_matching() {
        let o = serde_json::json!({"status": {"phase": "Running"}, "spec": {"replicas": 3, "flag": true, "c": [{"n": "a"}]},
            "metadata": {"annotations": {"x.io/y": "v"}}});
        let m = |s: &str| FieldPathSelector::parse(s).unwrap().matches(&o);
        assert!(m("status.phase=Running") && m("spec.replicas>2") && m("spec.flag=true") && m("spec.c[0].n=a"));
        assert!(m("metadata.annotations['x.io/y']=v") && m("spec.missing!=x") && m("!spec.missing"));
        assert!(!m("spec.replicas<3") && !m("spec.c[1].n") && !m("status.phase in (Pending)"));
    }
}
