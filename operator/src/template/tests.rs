use serde_json::json;

use super::*;

fn go(text: &str, data: &Value) -> String {
    Template::parse("template", text, TemplateEngine::Go)
        .unwrap()
        .render(data)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn go_err(text: &str, data: &Value) -> TemplateError {
    match Template::parse("nameTemplate", text, TemplateEngine::Go) {
        Err(e) => e,
        Ok(t) => t.render(data).expect_err(text),
    }
}

fn data() -> Value {
    json!({
        "source": {
            "metadata": {"name": "vc-one", "namespace": "team", "labels": {"env": "prod"}},
            "data": {"token": "YSs/Yj0=", "config": "eyJhIjogMX0="},
            "spec": {"replicas": 3, "items": ["x", "y"], "enabled": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}
        },
        "references": {"secret": {"data": {"ca": "Q0E+Kw=="}}}
    })
}

#[test]
fn fields_variables_and_missing_keys() {
    let d = data();
    assert_eq!(go("{{ .source.metadata.name }}", &d), "vc-one");
    assert_eq!(go("[{{ .source.missing.deeper }}]", &d), "[]", "missing keys render empty");
    assert_eq!(go("a<no value>b", &d), "ab", "<no value> is stripped");
    assert_eq!(go("{{ $n := .source.metadata.name }}{{ $n }}-{{ $.source.metadata.namespace }}", &d), "vc-one-team");
    assert_eq!(go("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", &d), "2");
    assert_eq!(go("{{ with .source.metadata }}{{ .name }}{{ end }}", &d), "vc-one");
    assert_eq!(go("{{ with .source.nothing }}x{{ else }}none{{ end }}", &d), "none");
    assert_eq!(go("{{ (index .source.status.conditions 0).type }}", &d), "Ready");
    assert_eq!(go("{{/* a comment */}}{{- \"x\" -}}  \n y", &d), "xy");
    assert_eq!(go("{{\n  .source.metadata.name\n  | upper\n}}", &d), "VC-ONE", "multi-line actions");
    assert_eq!(
        go("{{ .source.spec.replicas }} {{ .source.spec.enabled }} {{ .source.spec.items }}", &d),
        "3 true [x y]"
    );
}

#[test]
fn control_structures() {
    let d = data();
    let ready = r#"{{ range .source.status.conditions }}{{ if and (eq .type "Ready") (eq .status "True") }}true{{ end }}{{ end }}"#;
    assert_eq!(go(ready, &d), "true");
    assert_eq!(go("{{ if .source.nope }}a{{ else if .source.spec }}b{{ else }}c{{ end }}", &d), "b");
    assert_eq!(go("{{ range $i, $v := .source.spec.items }}{{ $i }}={{ $v }};{{ end }}", &d), "0=x;1=y;");
    assert_eq!(go("{{ range $v := .source.spec.items }}{{ $v }}{{ end }}", &d), "xy");
    assert_eq!(go("{{ range $k, $v := .source.metadata.labels }}{{ $k }}:{{ $v }}{{ end }}", &d), "env:prod");
    assert_eq!(go("{{ range .source.none }}x{{ else }}empty{{ end }}", &d), "empty");
    assert_eq!(go("{{ range .source.spec.items }}{{ if eq . \"y\" }}{{ break }}{{ end }}{{ . }}{{ end }}", &d), "x");
    assert_eq!(go("{{ range .source.spec.items }}{{ if eq . \"x\" }}{{ continue }}{{ end }}{{ . }}{{ end }}", &d), "y");
    assert_eq!(go("{{ range 3 }}{{ . }}{{ end }}", &d), "012");
    assert_eq!(go("{{ or .source.none \"fallback\" }} {{ and 1 0 }} {{ not true }}", &d), "fallback 0 false");
    assert_eq!(go("{{ .source.metadata.name | trimPrefix \"vc-\" | printf \"%s-%s\" \"x\" }}", &d), "x-one");
}

#[test]
fn base64_with_plus_slash_and_equals_is_not_escaped() {
    let d = data();
    assert_eq!(go("{{ .source.data.token }}", &d), "YSs/Yj0=");
    assert_eq!(go("{{ .source.data.token | b64dec }}", &d), "a+?b=");
    assert_eq!(go("{{ .references.secret.data.ca }} {{ \"<&'>\" }}", &d), "Q0E+Kw== <&'>");
    assert_eq!(go("{{ fromJson (b64dec .source.data.config) | toJson }}", &d), "{\"a\":1}");
}

#[test]
fn conditions() {
    assert!(is_true("  TRUE \n"));
    assert!(is_true("true<no value>"));
    assert!(!is_true("true true"));
    assert!(!is_true(""));
    let t =
        Template::parse("creationCondition", "{{ if .source.spec.enabled }}\n  true\n{{ end }}", TemplateEngine::Go)
            .unwrap();
    assert!(t.holds(&data()).unwrap());
    assert!(!t.holds(&json!({})).unwrap());
}

#[test]
fn errors_name_the_field_the_position_and_the_problem() {
    let e = go_err("line one\n  {{ if .a }}", &json!({}));
    assert_eq!((e.field.as_str(), e.line, e.column), ("nameTemplate", 2, 3), "{e}");
    assert!(e.message.contains("no {{end}}"), "{e}");
    assert_eq!(e.to_string(), format!("nameTemplate: line 2, column 3: {}", e.message));
    let e = go_err("{{ env \"HOME\" }}", &json!({}));
    assert!(e.message.contains("\"env\" not defined"), "no environment access: {e}");
    let e = go_err("x\n{{ .source.data.bad | b64dec }}", &json!({"source": {"data": {"bad": "%%"}}}));
    assert_eq!(e.line, 2);
    assert!(e.message.contains("error calling b64dec") && e.message.contains("not valid base64"), "{e}");
    let e = go_err("{{ .a.b }}", &json!({"a": "text"}));
    assert!(e.message.contains("can't evaluate field b in type string"), "{e}");
    let e = go_err("{{ $nope }}", &json!({}));
    assert!(e.message.contains("undefined variable \"$nope\""), "caught when parsing: {e}");
    let e = go_err("{{ .a 1 }}", &json!({}));
    assert!(e.message.contains("can't give argument to non-function"), "{e}");
    let e = go_err("{{ range .a }}", &json!({}));
    assert!(e.message.contains("{{range}} has no {{end}}"), "{e}");
    let e = go_err("{{ range 10000000 }}x{{ end }}", &json!({}));
    assert!(e.message.contains("more than") || e.message.contains("exceeds"), "runaway templates stop: {e}");
}

#[test]
fn handlebars_dialect_uses_the_same_data_and_helpers() {
    let hb =
        |text: &str| Template::parse("template", text, TemplateEngine::Handlebars).unwrap().render(&data()).unwrap();
    assert_eq!(hb("{{source.metadata.name}}"), "vc-one");
    assert_eq!(hb("{{b64dec source.data.token}}"), "a+?b=", "no HTML escaping");
    assert_eq!(hb("{{trimPrefix \"vc-\" source.metadata.name}}"), "one");
    assert_eq!(hb("{{#if (eq source.metadata.namespace \"team\")}}yes{{else}}no{{/if}}"), "yes");
    assert_eq!(hb("{{#each source.spec.items}}{{this}}{{/each}}"), "xy");
    assert_eq!(hb("[{{source.missing.deeper}}]"), "[]");
    assert_eq!(hb("{{references.secret.data.ca}}"), "Q0E+Kw==");
    let e = Template::parse("template", "{{#if x}}", TemplateEngine::Handlebars).unwrap_err();
    assert_eq!(e.field, "template");
    let e = Template::parse("template", "x\n{{b64dec source.metadata.name}}", TemplateEngine::Handlebars)
        .unwrap()
        .render(&data())
        .unwrap_err();
    assert!(e.message.contains("not valid base64"), "{e}");
}
