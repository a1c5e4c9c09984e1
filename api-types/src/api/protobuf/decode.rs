//! Protobuf -> the JSON kube-apiserver would store for the same object.
//!
//! Go's protobuf marshaller writes every non-pointer field, so an empty `generateName` or a zero
//! `nodePort` arrive on the wire although JSON (`omitempty`) leaves them out. The wire cannot
//! tell a pointer's explicit zero from an unset value; zeros are dropped except in the fields
//! below, pointers whose zero means something (`replicas: 0`, `runAsUser: 0`, `readOnly: false`
//! of a flag that defaults to true...).

use base64::Engine as _;
use serde_json::{Map, Number, Value, json};

use super::Error;
use super::special::{self, Special};
use super::table::{Field, Label, Table, Type};
use super::wire::{self, Reader};

const KEEP_ZERO: &[&str] = &[
    "replicas",
    "automountServiceAccountToken",
    "immutable",
    "allowPrivilegeEscalation",
    "privileged",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "suspend",
    "parallelism",
    "completions",
    "backoffLimit",
    "ttlSecondsAfterFinished",
    "terminationGracePeriodSeconds",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "revisionHistoryLimit",
    "allowVolumeExpansion",
    "shareProcessNamespace",
    "enableServiceLinks",
    "hostUsers",
    "setHostnameAsFQDN",
    "optional",
    "allocateLoadBalancerNodePorts",
    "value",
    "minAvailable",
    "maxUnavailable",
    "maxSurge",
];

/// Decodes `bytes` as the message `name` of `table`.
pub fn message(table: &Table, name: &str, bytes: &[u8]) -> Result<Value, Error> {
    if let Some(s) = special::of(name) {
        return decode_special(s, bytes);
    }
    if special::is_schema_union(name) {
        // Either the schema, or the member beside it (a bool, schemas, names).
        let Value::Object(mut o) = plain(table, name, bytes)? else { return Ok(Value::Null) };
        return Ok(o
            .remove("schema")
            .or_else(|| o.into_iter().next().map(|(_, v)| v))
            .unwrap_or_else(|| if name.ends_with("OrBool") { json!(false) } else { Value::Null }));
    }
    plain(table, name, bytes)
}

fn plain(table: &Table, name: &str, bytes: &[u8]) -> Result<Value, Error> {
    let msg = table.message(name).ok_or_else(|| Error::Malformed(format!("no message {name} in the table")))?;
    let mut out = Map::new();
    let mut r = Reader::new(bytes);
    while !r.done() {
        let (tag, wire_type) = r.key()?;
        let Some(field) = msg.field(tag) else {
            r.skip(wire_type)?;
            continue;
        };
        let context = |e: Error| e.within(&field.json);
        match field.label {
            Label::Optional => {
                let v = value(table, field, wire_type, &mut r).map_err(context)?;
                let keep = KEEP_ZERO.contains(&field.json.as_str()) && !v.is_object() || is_marker(table, &field.ty);
                if keep || !is_zero(&v) {
                    out.insert(field.json.clone(), v);
                } else {
                    out.remove(&field.json);
                }
            }
            Label::Repeated => {
                let Value::Array(items) = out.entry(field.json.clone()).or_insert_with(|| Value::Array(Vec::new()))
                else {
                    return Err(Error::Malformed(format!("{} is repeated and singular", field.json)));
                };
                if wire_type == wire::LEN && is_packable(&field.ty) {
                    let packed = r.bytes()?;
                    let mut p = Reader::new(packed);
                    while !p.done() {
                        items.push(value(table, field, packed_wire(&field.ty), &mut p).map_err(context)?);
                    }
                } else {
                    items.push(value(table, field, wire_type, &mut r).map_err(context)?);
                }
            }
            Label::Inline => {
                if let Value::Object(inner) = value(table, field, wire_type, &mut r).map_err(context)? {
                    out.extend(inner);
                }
            }
            Label::Map => {
                let entry = expect_len(wire_type, &mut r).map_err(context)?;
                let (k, v) = map_entry(table, field, entry).map_err(context)?;
                let map = out.entry(field.json.clone()).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(k, v);
                }
            }
        }
    }
    if msg.wrapper {
        return Ok(out.remove("items").unwrap_or_else(|| Value::Array(Vec::new())));
    }
    Ok(Value::Object(out))
}

/// A message without fields (CRD `subresources.status`): being there is its meaning.
fn is_marker(table: &Table, ty: &Type) -> bool {
    matches!(ty, Type::Message(m) if table.message(m).is_some_and(|m| m.fields.is_empty()))
}

fn is_packable(ty: &Type) -> bool {
    matches!(ty, Type::Int32 | Type::Int64 | Type::Bool | Type::Double)
}

fn packed_wire(ty: &Type) -> u8 {
    if *ty == Type::Double { wire::FIXED64 } else { wire::VARINT }
}

fn expect_len<'a>(wire_type: u8, r: &mut Reader<'a>) -> Result<&'a [u8], Error> {
    if wire_type != wire::LEN {
        return Err(Error::Malformed(format!("wire type {wire_type} where a length-delimited value belongs")));
    }
    r.bytes()
}

fn map_entry(table: &Table, field: &Field, entry: &[u8]) -> Result<(String, Value), Error> {
    let mut key = String::new();
    let mut val: Option<Value> = None;
    let mut r = Reader::new(entry);
    while !r.done() {
        match r.key()? {
            (1, wire::LEN) => key = utf8(r.bytes()?)?,
            (2, w) => val = Some(value(table, field, w, &mut r)?),
            (_, w) => r.skip(w)?,
        }
    }
    let empty = match &field.ty {
        Type::String | Type::Bytes => json!(""),
        Type::Int32 | Type::Int64 => json!(0),
        Type::Bool => json!(false),
        Type::Double => json!(0.0),
        Type::Message(m) => message(table, m, &[])?,
    };
    Ok((key, val.unwrap_or(empty)))
}

fn utf8(bytes: &[u8]) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Malformed("a string that is not UTF-8".into()))
}

fn value(table: &Table, field: &Field, wire_type: u8, r: &mut Reader<'_>) -> Result<Value, Error> {
    let mismatch = || Error::Malformed(format!("wire type {wire_type} for a {:?}", field.ty));
    Ok(match (&field.ty, wire_type) {
        (Type::String, wire::LEN) => Value::String(utf8(r.bytes()?)?),
        (Type::Bytes, wire::LEN) => Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
        // int32 negatives are sign-extended to 64 bits on the wire.
        (Type::Int32, wire::VARINT) => json!(r.varint()? as i64 as i32),
        (Type::Int64, wire::VARINT) => json!(r.varint()? as i64),
        (Type::Bool, wire::VARINT) => json!(r.varint()? != 0),
        (Type::Double, wire::FIXED64) => {
            Number::from_f64(f64::from_bits(r.fixed64()?)).map(Value::Number).unwrap_or(Value::Null)
        }
        (Type::Message(m), wire::LEN) => message(table, m, r.bytes()?)?,
        _ => return Err(mismatch()),
    })
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
    }
}

/// The small messages whose JSON is not an object of their fields.
fn decode_special(s: Special, bytes: &[u8]) -> Result<Value, Error> {
    let mut ints = [0i64; 4];
    let mut strings: [Option<String>; 4] = Default::default();
    let mut raws: [Option<&[u8]>; 4] = Default::default();
    let mut r = Reader::new(bytes);
    while !r.done() {
        let (tag, w) = r.key()?;
        let i = tag as usize;
        match w {
            wire::VARINT if i < 4 => ints[i] = r.varint()? as i64,
            wire::LEN if i < 4 => {
                let b = r.bytes()?;
                raws[i] = Some(b);
                strings[i] = std::str::from_utf8(b).ok().map(str::to_owned);
            }
            _ => r.skip(w)?,
        }
    }
    Ok(match s {
        // Go marshals a zero time as an empty message; JSON has no value for it.
        Special::Time | Special::MicroTime if bytes.is_empty() => Value::Null,
        Special::Time => special::format_time(ints[1], 0, false)?,
        Special::MicroTime => special::format_time(ints[1], ints[2], true)?,
        Special::Duration => Value::String(special::format_duration(ints[1])),
        Special::Quantity => Value::String(strings[1].clone().unwrap_or_default()),
        Special::IntOrString if ints[1] == 1 => Value::String(strings[3].clone().unwrap_or_default()),
        Special::IntOrString => json!(ints[2] as i32),
        Special::RawJson => match raws[1] {
            Some(b) if !b.is_empty() => {
                serde_json::from_slice(b).map_err(|e| Error::Malformed(format!("embedded JSON: {e}")))?
            }
            _ => Value::Null,
        },
    })
}
