//! Authentication (bearer tokens, client certificates, anonymous) and a simple authorization
//! policy: allow everything, or per-user/group rules.

use std::collections::HashMap;

use serde::Deserialize;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One allow rule; `*` matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<String>,
}

/// A policy file (`--policy FILE`, YAML): tokens and rules.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PolicyFile {
    /// token -> user.
    #[serde(default)]
    pub tokens: HashMap<String, User>,
    /// When present, only what a rule allows is allowed.
    #[serde(default)]
    pub rules: Option<Vec<Rule>>,
    #[serde(default)]
    pub anonymous: Option<bool>,
}

/// Who may do what.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub tokens: HashMap<String, User>,
    /// Requests without credentials act as `system:anonymous`.
    pub anonymous: bool,
    /// `None` allows every authenticated request.
    pub rules: Option<Vec<Rule>>,
}

impl Auth {
    /// Everyone may do everything, credentials or not.
    pub fn open() -> Self {
        Self { tokens: HashMap::new(), anonymous: true, rules: None }
    }

    pub fn from_policy(p: PolicyFile) -> Self {
        Self { anonymous: p.anonymous.unwrap_or(p.tokens.is_empty()), tokens: p.tokens, rules: p.rules }
    }

    pub fn add_token(&mut self, token: &str, user: &str, groups: &[&str]) {
        self.tokens.insert(
            token.to_owned(),
            User { name: user.to_owned(), groups: groups.iter().map(|g| (*g).to_owned()).collect() },
        );
    }

    pub fn user_for_token(&self, token: &str) -> Option<User> {
        self.tokens.get(token).cloned()
    }

    /// Whether the user may use `verb` on `resource`, and why.
    pub fn authorize(&self, user: &str, groups: &[String], verb: &str, resource: &str) -> (bool, String) {
        let Some(rules) = &self.rules else { return (true, "kubesim allows everything".into()) };
        let any = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
        let allowed = rules.iter().any(|r| {
            (any(&r.users, user) || groups.iter().any(|g| any(&r.groups, g)))
                && any(&r.verbs, verb)
                && any(&r.resources, resource)
        });
        if allowed {
            (true, "allowed by a kubesim policy rule".into())
        } else {
            (false, format!("no kubesim policy rule allows user {user:?} to {verb} {resource:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_allow_by_user_or_group() {
        let policy: PolicyFile = serde_yaml::from_str(
            "tokens:\n  t1: {name: alice, groups: [dev]}\nrules:\n  - {users: [bob], verbs: ['*'], resources: ['*']}\n  - {groups: [dev], verbs: [get, list], resources: [pods]}\n",
        )
        .unwrap();
        let auth = Auth::from_policy(policy);
        assert!(!auth.anonymous);
        let alice = auth.user_for_token("t1").unwrap();
        assert!(auth.authorize(&alice.name, &alice.groups, "list", "pods").0);
        let (ok, why) = auth.authorize(&alice.name, &alice.groups, "delete", "pods");
        assert!(!ok && why.contains("alice"));
        assert!(auth.authorize("bob", &[], "delete", "secrets").0);
        assert!(auth.user_for_token("nope").is_none());
        assert!(Auth::open().authorize("x", &[], "delete", "y").0);
    }
}
