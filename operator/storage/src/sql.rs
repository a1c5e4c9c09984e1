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

/// `items` in chunks of few sizes: the first of `sizes` (largest first) that fits what is left,
/// then the largest power of two that does. A multi-row statement built per chunk then takes one
/// of a few texts, each parsed once per connection and kept prepared ([`Sql::reuse_prepared`]);
/// a statement of any other size, of up to thousands of placeholders, was parsed again on every
/// write (a tenth of SQLite's writer thread during an initial sync).
pub fn prepared_chunks<'a, T>(items: &'a [T], sizes: &'a [usize]) -> impl Iterator<Item = &'a [T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let preferred = sizes.iter().copied().find(|&n| n > 0 && n <= rest.len());
        let (chunk, tail) = rest.split_at(preferred.unwrap_or(1 << rest.len().ilog2()));
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_chunks_take_few_sizes_and_keep_every_item_in_order() {
        let sizes = |n: usize, preferred: &[usize]| {
            let items: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = prepared_chunks(&items, preferred).collect();
            assert_eq!(chunks.concat(), items, "{n} items in chunks of {preferred:?}");
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        };
        assert_eq!(sizes(0, &[500]), Vec::<usize>::new());
        assert_eq!(sizes(1, &[500]), [1]);
        assert_eq!(sizes(250, &[500]), [128, 64, 32, 16, 8, 2]);
        assert_eq!(sizes(250, &[500, 250]), [250]);
        assert_eq!(sizes(1100, &[500, 250]), [500, 500, 64, 32, 4]);
        assert_eq!(sizes(1000, &[500]), [500, 500]);
        assert_eq!(sizes(3, &[]), [2, 1]);
        assert_eq!(sizes(3, &[0]), [2, 1]);
        // Every size is a preferred one or a power of two: a handful of texts per statement.
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..2100 {
            seen.extend(sizes(n, &[500, 250]));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [1, 2, 4, 8, 16, 32, 64, 128, 250, 500]);
    }

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
