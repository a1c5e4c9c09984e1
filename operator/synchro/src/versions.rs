//! What the store holds of one resource, `(namespace, name) -> resourceVersion`, kept compact:
//! it is the only per-object state a synchro keeps, so its size is most of the engine's memory at
//! 100,000 objects. A key is one string `namespace/name` (neither part can hold a `/`), a
//! resourceVersion a number when it is one (kube-apiserver's always are; other servers' stay
//! text), and the mark of a relist lives in the entry instead of a second set of keys.

use std::collections::HashMap;

/// `(namespace, name)` of an object (`""` namespace for cluster-scoped ones).
pub type Key = (String, String);

/// A stored resourceVersion, with the mark a relist sets on the keys it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rv {
    /// A decimal number written without leading zeros, so it reads back the same.
    Number(u64, bool),
    Text(Box<str>, bool),
}

impl Rv {
    fn new(rv: &str, listed: bool) -> Self {
        match canonical(rv) {
            Some(n) => Rv::Number(n, listed),
            None => Rv::Text(rv.into(), listed),
        }
    }

    fn is(&self, rv: &str) -> bool {
        match self {
            Rv::Number(n, _) => canonical(rv) == Some(*n),
            Rv::Text(t, _) => **t == *rv,
        }
    }

    fn listed(&self) -> bool {
        match self {
            Rv::Number(_, l) | Rv::Text(_, l) => *l,
        }
    }

    fn set_listed(&mut self, on: bool) {
        match self {
            Rv::Number(_, l) | Rv::Text(_, l) => *l = on,
        }
    }
}

/// The number a resourceVersion is when it reads back the same from it (no sign, no leading zero).
fn canonical(rv: &str) -> Option<u64> {
    let n = rv.parse().ok()?;
    (rv.len() == 1 || !rv.starts_with(['0', '+'])).then_some(n)
}

fn joined(namespace: &str, name: &str) -> String {
    let mut k = String::with_capacity(namespace.len() + 1 + name.len());
    k.push_str(namespace);
    k.push('/');
    k.push_str(name);
    k
}

fn split(key: &str) -> Key {
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    (namespace.to_owned(), name.to_owned())
}

/// The resourceVersions one synchro knows the store holds.
#[derive(Debug, Default)]
pub struct Versions {
    map: HashMap<Box<str>, Rv>,
}

/// Whether a listed or watched object needs a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Not stored.
    New,
    /// Stored at another resourceVersion.
    Changed,
    /// Stored at this resourceVersion: nothing to write.
    Same,
}

impl Versions {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.map.contains_key(joined(namespace, name).as_str())
    }

    /// How `rv` compares with what is stored for the key; `listed` marks the key as returned by
    /// the (re)list in progress (one lookup for both).
    pub fn known(&mut self, namespace: &str, name: &str, rv: &str, listed: bool) -> Known {
        match self.map.get_mut(joined(namespace, name).as_str()) {
            None => Known::New,
            Some(stored) => {
                if listed {
                    stored.set_listed(true);
                }
                if stored.is(rv) { Known::Same } else { Known::Changed }
            }
        }
    }

    /// Records a stored object; true when it was not known before.
    pub fn insert(&mut self, namespace: &str, name: &str, rv: &str) -> bool {
        // A write during a relist is of a listed object: it keeps the mark.
        self.map.insert(joined(namespace, name).into_boxed_str(), Rv::new(rv, true)).is_none()
    }

    /// Forgets a deleted object; true when it was known.
    pub fn remove(&mut self, namespace: &str, name: &str) -> bool {
        self.map.remove(joined(namespace, name).as_str()).is_some()
    }

    /// A (re)list starts: no key is marked as listed.
    pub fn begin_list(&mut self) {
        self.map.values_mut().for_each(|rv| rv.set_listed(false));
    }

    /// The keys the finished (re)list did not return: deleted on the member meanwhile.
    pub fn unlisted(&self) -> Vec<Key> {
        self.map.iter().filter(|(_, rv)| !rv.listed()).map(|(k, _)| split(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_text() {
        let mut v = Versions::default();
        assert!(v.insert("ns", "a", "123"));
        assert!(!v.insert("ns", "a", "124"));
        assert!(v.insert("", "node-1", "00042"));
        v.insert("ns", "b", "opaque-rv");
        v.insert("ns", "zero", "0");
        assert_eq!(v.known("ns", "a", "124", false), Known::Same);
        assert_eq!(v.known("ns", "a", "123", false), Known::Changed);
        assert_eq!(v.known("ns", "a", "0124", false), Known::Changed);
        assert_eq!(v.known("ns", "a", "+124", false), Known::Changed);
        assert_eq!(v.known("", "node-1", "00042", false), Known::Same);
        assert_eq!(v.known("", "node-1", "42", false), Known::Changed);
        assert_eq!(v.known("ns", "b", "opaque-rv", false), Known::Same);
        assert_eq!(v.known("ns", "zero", "0", false), Known::Same);
        assert_eq!(v.known("ns", "zero", "00", false), Known::Changed);
        assert_eq!(v.known("other", "a", "124", false), Known::New);
        assert_eq!(v.known("", "a", "124", false), Known::New);
        assert!(v.contains("ns", "b") && !v.contains("ns", "c"));
        assert_eq!(v.len(), 4);
        assert!(v.remove("ns", "b"));
        assert!(!v.remove("ns", "b"));
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn a_relist_finds_what_it_did_not_return() {
        let mut v = Versions::default();
        for (ns, name) in [("a", "x"), ("a", "y"), ("", "cluster-wide"), ("b", "x")] {
            v.insert(ns, name, "1");
        }
        v.begin_list();
        assert_eq!(v.known("a", "x", "1", true), Known::Same);
        assert_eq!(v.known("b", "x", "2", true), Known::Changed);
        assert_eq!(v.known("a", "new", "1", true), Known::New); // not stored: nothing to mark
        assert_eq!(v.known("a", "y", "1", false), Known::Same); // seen, but not by the list
        v.insert("a", "new", "2"); // written during the list
        let mut gone = v.unlisted();
        gone.sort();
        assert_eq!(gone, vec![(String::new(), "cluster-wide".to_owned()), ("a".to_owned(), "y".to_owned())]);
        // The next relist starts over.
        v.begin_list();
        assert_eq!(v.unlisted().len(), 5);
    }
}
