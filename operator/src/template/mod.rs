//! Policy templates: Go `text/template` with the Sprig functions policies use (the default),
//! or handlebars (`spec.templateEngine: handlebars`), over the same data (`.source`,
//! `.references.<key>`).
//!
//! Output is text: unlike upstream's `html/template`, nothing is HTML-escaped, so base64
//! secrets with `+` stay intact. Missing keys render empty and a literal `<no value>` is
//! stripped; a condition holds when its trimmed, lower-cased output is exactly `true`.

mod exec;
pub mod format;
pub mod funcs;
mod handlebars;
pub mod parse;

use api_types::policy::TemplateEngine;
use serde_json::Value;

/// A template that failed to parse or render: which field, where, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: line {line}, column {column}: {message}")]
pub struct TemplateError {
    pub field: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A parsed template of one policy field.
pub struct Template {
    field: String,
    source: String,
    kind: Kind,
}

enum Kind {
    Go(Vec<parse::Node>),
    Handlebars(Box<::handlebars::Handlebars<'static>>),
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").field("field", &self.field).finish_non_exhaustive()
    }
}

/// Line and column (1-based, in characters) of a byte offset.
fn line_column(src: &str, pos: usize) -> (usize, usize) {
    let before = &src[..pos.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Template {
    /// Parses `text`, the value of the policy field `field` (named in errors).
    pub fn parse(field: &str, text: &str, engine: TemplateEngine) -> Result<Self, TemplateError> {
        let kind = match engine {
            TemplateEngine::Go => Kind::Go(parse::parse(text).map_err(|e| {
                let (line, column) = line_column(text, e.pos);
                TemplateError { field: field.to_owned(), line, column, message: e.message }
            })?),
            TemplateEngine::Handlebars => {
                let mut hb = handlebars::registry();
                hb.register_template_string(field, text).map_err(|e| {
                    let (line, column) = e.pos().unwrap_or((1, 1));
                    TemplateError { field: field.to_owned(), line, column, message: e.reason().to_string() }
                })?;
                Kind::Handlebars(Box::new(hb))
            }
        };
        Ok(Self { field: field.to_owned(), source: text.to_owned(), kind })
    }

    pub fn field(&self) -> &str {
        &self.field
    }

    /// Renders with `data`; a literal `<no value>` is removed, as upstream does.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let out = match &self.kind {
            Kind::Go(nodes) => exec::execute(nodes, data).map_err(|e| {
                let (line, column) = line_column(&self.source, e.pos);
                TemplateError { field: self.field.clone(), line, column, message: e.message }
            })?,
            Kind::Handlebars(hb) => hb.render(&self.field, data).map_err(|e| TemplateError {
                field: self.field.clone(),
                line: e.line_no.unwrap_or(1),
                column: e.column_no.unwrap_or(1),
                message: e.reason().to_string(),
            })?,
        };
        Ok(out.replace("<no value>", ""))
    }

    /// Renders a condition (`selectorTemplate`, `creationCondition`).
    pub fn holds(&self, data: &Value) -> Result<bool, TemplateError> {
        self.render(data).map(|out| is_true(&out))
    }
}

/// The truth rule of selector and creation conditions: the output, with `<no value>`
/// removed, trimmed and lower-cased, is exactly `true`.
pub fn is_true(output: &str) -> bool {
    output.replace("<no value>", "").trim().to_lowercase() == "true"
}

#[cfg(test)]
mod tests;
