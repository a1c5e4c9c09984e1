//! The handlebars dialect (`spec.templateEngine: handlebars`): the same data (`source`,
//! `references`) and the same functions as helpers, rendered without HTML escaping.

use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson};
use serde_json::Value;

use super::funcs;

/// Calls one of our template functions from handlebars (`{{b64dec source.data.token}}`,
/// `{{#if (eq source.kind "Secret")}}`).
struct Func(&'static str);

impl HelperDef for Func {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args: Vec<Value> = h.params().iter().map(|p| p.value().clone()).collect();
        funcs::call(self.0, &args)
            .map(ScopedJson::Derived)
            .map_err(|m| RenderErrorReason::Other(format!("error calling {}: {m}", self.0)).into())
    }
}

/// A registry with our functions as helpers (replacing handlebars' own `eq`, `and`, ... so
/// both dialects agree), handlebars' `gte`/`lte` kept as aliases, and no escaping.
pub fn registry() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.register_escape_fn(handlebars::no_escape);
    for name in funcs::names() {
        hb.register_helper(name, Box::new(Func(name)));
    }
    hb.register_helper("gte", Box::new(Func("ge")));
    hb.register_helper("lte", Box::new(Func("le")));
    hb
}
