//! Parameterised SQL text with its binds, built per backend. Values from requests only ever
//! travel as binds; the text holds only fragments written in this crate.

use crate::config::Backend;

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    OptInt(Option<i64>),
}

/// SQL text plus binds, with the backend's placeholder syntax (`$1` for PostgreSQL, `?` else).
#[derive(Debug, Clone)]
pub struct Sql {
    pub backend: Backend,
    pub text: String,
    pub binds: Vec<Bind>,
    /// Where each bind's placeholder is in `text` (byte range).
    pub placeholders: Vec<(usize, usize)>,
    /// Kept prepared on the connection, see [`Sql::reuse_prepared`].
    pub reused: bool,
}

impl Sql {
    pub fn new(backend: Backend) -> Self {
        Self { backend, text: String::new(), binds: Vec::new(), placeholders: Vec::new(), reused: false }
    }

    /// Keeps this statement prepared on the connection for the next one with the same text,
    /// which the server then neither parses nor plans again (a write of 500 objects is a
    /// statement of 7,000 placeholders). Only for statements whose text takes a few fixed
    /// shapes: a connection keeps every statement so marked for as long as it lives.
    pub fn reuse_prepared(&mut self) -> &mut Self {
        self.reused = true;
        self
    }

    /// Appends trusted SQL text.
    pub fn push(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        let start = self.text.len();
        match self.backend {
            Backend::Postgres => {
                let n = self.binds.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self.placeholders.push((start, self.text.len()));
        self
    }

    pub fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(value.into()))
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        self.bind(Bind::Int(value))
    }

    /// `(?, ?, ?)` for a list of integers (at least one item).
    pub fn int_list(&mut self, values: impl IntoIterator<Item = i64>) -> &mut Self {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.int(v);
        }
        self.push(")")
    }

    /// `(?, ?, ?)` for a list of texts (at least one item).
    pub fn text_list<'a>(&mut self, values: impl IntoIterator<Item = &'a String>) -> &mut Self {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text(v.clone());
        }
        self.push(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_per_backend() {
        let mut pg = Sql::new(Backend::Postgres);
        pg.push("a = ").text("x").push(" AND b IN ").text_list(&["1".to_owned(), "2".to_owned()]);
        assert_eq!(pg.text, "a = $1 AND b IN ($2, $3)");
        let mut my = Sql::new(Backend::Mysql);
        my.push("a = ").int(3);
        assert_eq!(my.text, "a = ?");
        assert_eq!(my.binds, [Bind::Int(3)]);
    }
}
