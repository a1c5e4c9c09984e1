//! Writes `fields.txt` from k8s-pb's prost bindings (tags, types: the upstream `.proto` files'
//! content) and k8s-openapi's schemas (JSON names, which prost's snake_case loses: `podIP` is
//! `pod_ip`). Run `make protobuf-fields` after upgrading either crate; the test fails while the
//! committed table differs from what it generates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::api::openapi::builtin_definitions;

/// One field as k8s-pb declares it.
#[derive(Debug, Clone)]
struct RawField {
    rust: String,
    tag: u32,
    label: &'static str,
    /// `string`, `bytes`, ... or `message <full name>`.
    ty: String,
}

/// Message full name (`api.core.v1.Pod`: k8s-pb's module path and struct) -> fields.
type Messages = BTreeMap<String, Vec<RawField>>;

/// k8s-pb's sources in cargo's registry, at the version Cargo.lock pins.
fn k8s_pb_src() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"k8s-pb\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"'))
        .expect("k8s-pb in Cargo.lock");
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let registries = home.join("registry/src");
    std::fs::read_dir(&registries)
        .unwrap()
        .map(|e| e.unwrap().path().join(format!("k8s-pb-{version}/src")))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("k8s-pb {version} is not unpacked under {}", registries.display()))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `a::b::super::super::c::Name` seen from module `module` -> `c.Name` (absolute, dotted).
fn resolve(module: &[&str], path: &str) -> String {
    let mut parts: Vec<&str> = module.to_vec();
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    for s in &segments[..segments.len() - 1] {
        if *s == "super" {
            parts.pop();
        } else {
            parts.push(s);
        }
    }
    parts.push(segments[segments.len() - 1]);
    parts.join(".")
}

/// The message type named in a field's Rust type (`Option<Box<X>>`, `Vec<X>`, `BTreeMap<String, X>`).
fn message_path(ty: &str) -> String {
    let ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    let inner = ty.trim_end_matches([',', '>']);
    inner.rsplit(['<', ',']).next().unwrap_or(inner).to_owned()
}

fn parse_file(module: &[&str], text: &str, out: &mut Messages) {
    let lines: Vec<&str> = text.lines().collect();
    let mut current: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.trim_end_matches(" {}").trim_end_matches(" {").trim();
            let full = format!("{}.{name}", module.join("."));
            out.entry(full.clone()).or_default();
            current = if rest.ends_with("{}") { None } else { Some(full) };
        } else if line == "}" {
            current = None;
        } else if let (Some(msg), Some(attr)) = (&current, line.trim().strip_prefix("#[prost(")) {
            let attr = attr.trim_end_matches(")]");
            let tag: u32 = attr.rsplit_once("tag = \"").unwrap().1.trim_end_matches('"').parse().unwrap();
            let mut decl = String::new();
            i += 1;
            while !decl.trim_end().ends_with(',') || decl.matches('<').count() != decl.matches('>').count() {
                decl.push_str(lines[i].trim());
                decl.push(' ');
                i += 1;
            }
            i -= 1;
            let (rust, ty) = decl.trim().trim_start_matches("pub ").split_once(':').unwrap();
            let rust = rust.trim().trim_start_matches("r#").to_owned();
            let kind = attr.split([',', ' ']).next().unwrap();
            let (label, ty) = if kind == "btree_map" {
                let value = attr.split('"').nth(1).unwrap().split(", ").nth(1).unwrap();
                let ty = match value {
                    "message" => format!("message {}", resolve(module, &message_path(ty))),
                    scalar => scalar.to_owned(),
                };
                ("map", ty)
            } else {
                let label = if attr.contains(" repeated,") { "rep" } else { "opt" };
                let ty = match kind {
                    "message" => format!("message {}", resolve(module, &message_path(ty))),
                    "bytes" => "bytes".to_owned(),
                    s @ ("string" | "int32" | "int64" | "bool" | "double") => s.to_owned(),
                    other => panic!("{msg}.{rust}: prost type {other} not handled"),
                };
                (label, ty)
            };
            out.get_mut(msg).unwrap().push(RawField { rust, tag, label, ty });
        }
        i += 1;
    }
}

fn normalize(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

fn lower_camel(rust: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in rust.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `io.k8s.api.core.v1.Pod` -> `api.core.v1.pod` (lowercase: k8s-pb renames `JSONSchemaProps` `JsonSchemaProps`).
fn definition_key(def: &str) -> String {
    def.trim_start_matches("io.k8s.").replace('-', "_").to_ascii_lowercase()
}

/// The normalized JSON names a message contributes to an object it is embedded (Go: inlined) in:
/// its fields, with its own embedded messages' names in place of theirs.
fn flat_names(
    messages: &Messages,
    definitions: &HashMap<&String, &Map<String, Value>>,
    name: &str,
) -> BTreeSet<String> {
    let properties = definitions.get(&name.to_owned()).and_then(|d| d.get("properties")).and_then(Value::as_object);
    let mut out = BTreeSet::new();
    for f in messages.get(name).into_iter().flatten() {
        let known = properties.is_none_or(|p| p.keys().any(|k| normalize(k) == normalize(&f.rust)));
        match f.ty.strip_prefix("message ") {
            Some(child) if !known => out.extend(flat_names(messages, definitions, child)),
            _ => {
                out.insert(normalize(&f.rust));
            }
        }
    }
    out
}

fn generate() -> String {
    let src = k8s_pb_src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut messages = Messages::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap().parent().unwrap();
        let module: Vec<&str> = rel.iter().map(|s| s.to_str().unwrap()).collect();
        parse_file(&module, &std::fs::read_to_string(file).unwrap(), &mut messages);
    }
    let by_key: HashMap<String, &String> = messages.keys().map(|k| (k.to_ascii_lowercase(), k)).collect();

    let (definitions, roots) = builtin_definitions();
    let definition_of: HashMap<&String, &Map<String, Value>> = definitions
        .iter()
        .filter_map(|(name, schema)| Some((*by_key.get(&definition_key(name))?, schema.as_object()?)))
        .collect();

    let mut kinds = BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    for (api_version, kind, def) in &roots {
        let message = by_key.get(&definition_key(def)).unwrap_or_else(|| panic!("no k8s-pb message for {def}"));
        kinds.insert(format!("kind {api_version} {kind} {message}"));
        todo.push((*message).clone());
        if let Some(list) = by_key.get(&format!("{}list", message.to_ascii_lowercase())) {
            kinds.insert(format!("kind {api_version} {kind}List {list}"));
            todo.push((*list).clone());
        }
    }
    for extra in ["apimachinery.pkg.apis.meta.v1.Status", "apimachinery.pkg.apis.meta.v1.DeleteOptions"] {
        let kind = extra.rsplit('.').next().unwrap();
        // Clients send these as meta.k8s.io/v1 or, older ones, as the core group's v1.
        kinds.insert(format!("kind v1 {kind} {extra}"));
        kinds.insert(format!("kind meta.k8s.io/v1 {kind} {extra}"));
        todo.push(extra.to_owned());
    }

    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        for f in messages.get(&name).unwrap_or_else(|| panic!("unknown message {name}")) {
            if let Some(m) = f.ty.strip_prefix("message ") {
                todo.push(m.to_owned());
            }
        }
    }

    let mut out = String::from(
        "# Generated by api-types/src/api/protobuf/generate.rs (make protobuf-fields) from k8s-pb and\n\
         # k8s-openapi; do not edit. `kind <apiVersion> <kind> <message>`, `message <name> [wrapper]`,\n\
         # then `<tag> <json name> <opt|rep|map> <type> [<message>]` per field.\n",
    );
    for k in &kinds {
        out.push_str(k);
        out.push('\n');
    }
    for name in &seen {
        let fields = &messages[name];
        let properties = definition_of.get(name).and_then(|d| d.get("properties")).and_then(Value::as_object);
        let wrapper = !definition_of.contains_key(name)
            && fields.len() == 1
            && fields[0].rust == "items"
            && fields[0].label == "rep";
        out.push_str(&format!("message {name}{}\n", if wrapper { " wrapper" } else { "" }));
        let mut fields = fields.clone();
        fields.sort_by_key(|f| f.tag);
        for f in fields {
            let matched = properties.and_then(|p| p.keys().find(|k| normalize(k) == normalize(&f.rust)));
            let inline = match (matched, properties, f.ty.strip_prefix("message ")) {
                (None, Some(p), Some(child)) if f.label == "opt" => {
                    let props: BTreeSet<String> = p.keys().map(|k| normalize(k)).collect();
                    // Most, not all: the child may have fields newer than k8s-openapi's schemas.
                    let names = flat_names(&messages, &definition_of, child);
                    let shared = names.intersection(&props).count();
                    shared > 0 && shared * 4 >= names.len() * 3
                }
                _ => false,
            };
            let json = matched.cloned().unwrap_or_else(|| lower_camel(&f.rust));
            let label = if inline { "inline" } else { f.label };
            out.push_str(&format!("{} {json} {label} {}\n", f.tag, f.ty));
        }
    }
    out
}

#[test]
fn fields_txt_is_generated_from_k8s_pb() {
    let generated = generate();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/protobuf/fields.txt");
    if std::env::var_os("PEDIA_REGENERATE").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == generated, "{} is stale: run `make protobuf-fields`", path.display());
}

#[test]
fn resolves_relative_type_paths() {
    assert_eq!(
        resolve(&["api", "core", "v1"], "super::super::super::apimachinery::pkg::apis::meta::v1::ObjectMeta"),
        "apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(resolve(&["api", "core", "v1"], "Container"), "api.core.v1.Container");
    assert_eq!(message_path("::core::option::Option<::prost::alloc::boxed::Box<JsonSchemaProps>>"), "JsonSchemaProps");
    assert_eq!(
        message_path("::prost::alloc::collections::BTreeMap< ::prost::alloc::string::String, super::Quantity, >"),
        "super::Quantity"
    );
    assert_eq!(lower_camel("pod_ip"), "podIp");
    assert_eq!(normalize("x-kubernetes-list-type"), normalize("x_kubernetes_list_type"));
}
