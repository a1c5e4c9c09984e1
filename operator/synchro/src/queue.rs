//! Per-key compaction of queued events (upstream's pressure-queue rules): a key has at most one
//! pending event, so a burst of changes to one object costs one write. Pure.

use std::collections::HashMap;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Added,
    Updated,
    Deleted,
}

/// Merges a newer event for a key into the one already queued (upstream's `event_test.go` table):
/// the newer object wins, except that Added then Updated stays Added, Deleted then Updated stays
/// the deletion, and Deleted then Added becomes an update.
pub fn merge<T>(older: Option<(Action, T)>, newer: Option<(Action, T)>) -> Option<(Action, T)> {
    use Action::*;
    match (older, newer) {
        (o, None) => o,
        (None, n) => n,
        (Some((Added, _)), Some((Updated, n))) => Some((Added, n)),
        (Some((Deleted, o)), Some((Updated, _))) => Some((Deleted, o)),
        (Some((Deleted, _)), Some((Added, n))) => Some((Updated, n)),
        (Some(_), Some(n)) => Some(n),
    }
}

/// Events compacted per key, in the order keys first appeared.
#[derive(Debug)]
pub struct Compacted<K, T> {
    order: Vec<K>,
    events: HashMap<K, (Action, T)>,
}

impl<K, T> Default for Compacted<K, T> {
    fn default() -> Self {
        Self { order: Vec::new(), events: HashMap::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone, T> Compacted<K, T> {
    pub fn push(&mut self, key: K, action: Action, item: T) {
        match self.events.remove(&key) {
            Some(old) => {
                if let Some(merged) = merge(Some(old), Some((action, item))) {
                    self.events.insert(key, merged);
                }
            }
            None => {
                self.order.push(key.clone());
                self.events.insert(key, (action, item));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// The compacted events, oldest key first.
    pub fn drain(&mut self) -> Vec<(K, Action, T)> {
        let order = std::mem::take(&mut self.order);
        order.into_iter().filter_map(|k| self.events.remove(&k).map(|(a, t)| (k, a, t))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::*;

    #[test]
    fn upstream_compaction_table() {
        let m = |o: Option<(Action, &'static str)>, n: Option<(Action, &'static str)>| merge(o, n);
        assert_eq!(m(Some((Added, "old")), Some((Updated, "new"))), Some((Added, "new")));
        assert_eq!(m(Some((Updated, "old")), None), Some((Updated, "old")));
        assert_eq!(m(None, Some((Updated, "new"))), Some((Updated, "new")));
        assert_eq!(m(Some((Added, "old")), Some((Deleted, "new"))), Some((Deleted, "new")));
        assert_eq!(m(Some((Updated, "old")), Some((Added, "new"))), Some((Added, "new")));
        assert_eq!(m(Some((Deleted, "old")), Some((Updated, "new"))), Some((Deleted, "old")));
        assert_eq!(m(Some((Updated, "old")), Some((Updated, "new"))), Some((Updated, "new")));
        assert_eq!(m(Some((Deleted, "old")), Some((Added, "new"))), Some((Updated, "new")));
        assert_eq!(m(Some((Added, "old")), Some((Added, "new"))), Some((Added, "new")));
    }

    #[test]
    fn compaction_keeps_one_event_per_key_in_first_seen_order() {
        let mut c = Compacted::default();
        c.push("a", Added, 1);
        c.push("b", Updated, 2);
        c.push("a", Updated, 3);
        c.push("b", Deleted, 4);
        c.push("c", Added, 5);
        assert_eq!(c.len(), 3);
        assert_eq!(c.drain(), vec![("a", Added, 3), ("b", Deleted, 4), ("c", Added, 5)]);
        assert!(c.is_empty());
    }
}
