//! JSON -> protobuf, for clients that accept nothing else. JSON keys the table does not know
//! (fields of a newer Kubernetes) are left out, as kube-apiserver would drop them.

use base64::Engine as _;
use serde_json::Value;

use super::Error;
use super::special::{self, Special};
use super::table::{Field, Label, Table, Type};
use super::wire::{self, put_bytes, put_key, put_varint};

pub fn message(table: &Table, name: &str, v: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    if let Some(s) = special::of(name) {
        encode_special(s, v, &mut out)?;
        return Ok(out);
    }
    let msg = table.message(name).ok_or_else(|| Error::Malformed(format!("no message {name} in the table")))?;
    if special::is_schema_union(name) {
        // The JSON is either the schema (field "schema") or the other member.
        let target = if v.is_object() {
            msg.fields.iter().find(|f| f.json == "schema")
        } else {
            msg.fields.iter().find(|f| f.json != "schema")
        };
        if let Some(f) = target {
            encode_field(table, f, v, &mut out).map_err(|e| e.within(&f.json))?;
        }
        return Ok(out);
    }
    if msg.wrapper {
        if let Some(f) = msg.fields.first() {
            encode_field(table, f, v, &mut out).map_err(|e| e.within(&f.json))?;
        }
        return Ok(out);
    }
    let Value::Object(o) = v else {
        return Err(Error::Malformed(format!("{name}: an object expected, got {v}")));
    };
    for f in &msg.fields {
        if f.label == Label::Inline {
            // The embedded message's fields are the parent object's own.
            scalar(table, f.tag, &f.ty, v, &mut out).map_err(|e| e.within(&f.json))?;
            continue;
        }
        if let Some(value) = o.get(&f.json).filter(|v| !v.is_null()) {
            encode_field(table, f, value, &mut out).map_err(|e| e.within(&f.json))?;
        }
    }
    Ok(out)
}

fn encode_field(table: &Table, f: &Field, v: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    match f.label {
        Label::Optional | Label::Inline => scalar(table, f.tag, &f.ty, v, out),
        Label::Repeated => {
            let items = v.as_array().ok_or_else(|| Error::Malformed(format!("an array expected, got {v}")))?;
            items.iter().try_for_each(|item| scalar(table, f.tag, &f.ty, item, out))
        }
        Label::Map => {
            let entries = v.as_object().ok_or_else(|| Error::Malformed(format!("an object expected, got {v}")))?;
            for (k, value) in entries {
                let mut entry = Vec::new();
                put_bytes(&mut entry, 1, k.as_bytes());
                scalar(table, 2, &f.ty, value, &mut entry)?;
                put_bytes(out, f.tag, &entry);
            }
            Ok(())
        }
    }
}

fn int(v: &Value) -> Result<i64, Error> {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .ok_or_else(|| Error::Malformed(format!("a number expected, got {v}")))
}

fn scalar(table: &Table, tag: u32, ty: &Type, v: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    match ty {
        Type::String => match v {
            Value::String(s) => put_bytes(out, tag, s.as_bytes()),
            other => return Err(Error::Malformed(format!("a string expected, got {other}"))),
        },
        Type::Bytes => {
            let s = v.as_str().ok_or_else(|| Error::Malformed(format!("base64 expected, got {v}")))?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| Error::Malformed(format!("base64: {e}")))?;
            put_bytes(out, tag, &b);
        }
        Type::Int32 | Type::Int64 => {
            put_key(out, tag, wire::VARINT);
            put_varint(out, int(v)? as u64);
        }
        Type::Bool => {
            let b = v.as_bool().ok_or_else(|| Error::Malformed(format!("a boolean expected, got {v}")))?;
            put_key(out, tag, wire::VARINT);
            put_varint(out, u64::from(b));
        }
        Type::Double => {
            let f = v.as_f64().ok_or_else(|| Error::Malformed(format!("a number expected, got {v}")))?;
            put_key(out, tag, wire::FIXED64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Type::Message(m) => put_bytes(out, tag, &message(table, m, v)?),
    }
    Ok(())
}

fn put_int(out: &mut Vec<u8>, tag: u32, v: i64) {
    put_key(out, tag, wire::VARINT);
    put_varint(out, v as u64);
}

fn encode_special(s: Special, v: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    let text = || v.as_str().ok_or_else(|| Error::Malformed(format!("a string expected, got {v}")));
    match s {
        Special::Time | Special::MicroTime => {
            let (seconds, nanos) = special::parse_time(text()?)?;
            put_int(out, 1, seconds);
            put_int(out, 2, nanos);
        }
        Special::Duration => put_int(out, 1, special::parse_duration(text()?)?),
        Special::Quantity => match v {
            Value::String(q) => put_bytes(out, 1, q.as_bytes()),
            Value::Number(n) => put_bytes(out, 1, n.to_string().as_bytes()),
            other => return Err(Error::Malformed(format!("a quantity expected, got {other}"))),
        },
        Special::IntOrString => match v {
            Value::String(s) => {
                put_int(out, 1, 1);
                put_bytes(out, 3, s.as_bytes());
            }
            other => {
                put_int(out, 1, 0);
                put_int(out, 2, int(other)?);
            }
        },
        Special::RawJson => {
            let raw = serde_json::to_vec(v).map_err(|e| Error::Malformed(e.to_string()))?;
            put_bytes(out, 1, &raw);
        }
    }
    Ok(())
}
