//! Authentication (bearer tokens, client certificates, anonymous) and a simple authorization
//! policy: allow everything, or per-user/group rules.

use std::collections::HashMap;

use serde::Deserialize;

/// The group of every authenticated user, as kube-apiserver adds it.
pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";
pub const MASTERS: &str = "system:masters";
/// What every authenticated user may create whatever the rules (the bootstrap role
/// `system:basic-user`, which kube-apiserver always reconciles).
pub const SELF_REVIEWS: [&str; 3] = ["selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"];

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

    /// What a fresh kubeadm cluster's RBAC allows: `system:masters` everything, other users only
    /// their self reviews (always allowed, see [`SELF_REVIEWS`]), anonymous nothing.
    pub fn cluster_default() -> Self {
        let masters = Rule {
            users: Vec::new(),
            groups: vec![MASTERS.to_owned()],
            verbs: vec!["*".to_owned()],
            resources: vec!["*".to_owned()],
        };
        Self { tokens: HashMap::new(), anonymous: false, rules: Some(vec![masters]) }
    }

    /// Whether the user may use `verb` on `resource`, and why. Without rules every
    /// authenticated user may do everything; unauthenticated ones only when anonymous access is
    /// on (a review for `system:anonymous` must not allow what the server refuses it).
    pub fn authorize(&self, user: &str, groups: &[String], verb: &str, resource: &str) -> (bool, String) {
        let anonymous = user == ANONYMOUS || groups.iter().any(|g| g == UNAUTHENTICATED);
        let Some(rules) = &self.rules else {
            return if anonymous && !self.anonymous {
                (false, "kubesim refuses unauthenticated requests (anonymous access is off)".into())
            } else {
                (true, "kubesim allows everything".into())
            };
        };
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

    #[test]
    fn anonymous_reviews_follow_anonymous_access() {
        let closed = Auth { anonymous: false, ..Auth::default() };
        let (ok, why) = closed.authorize(ANONYMOUS, &[UNAUTHENTICATED.into()], "list", "pods");
        assert!(!ok && why.contains("anonymous"), "{why}");
        assert!(!closed.authorize("someone", &[UNAUTHENTICATED.into()], "get", "pods").0);
        assert!(closed.authorize("alice", &[AUTHENTICATED.into()], "get", "pods").0);
        assert!(Auth::open().authorize(ANONYMOUS, &[UNAUTHENTICATED.into()], "get", "pods").0);
    }

    #[test]
    fn a_fresh_cluster_allows_admins_only() {
        let auth = Auth::cluster_default();
        assert!(auth.authorize("admin", &[MASTERS.into(), AUTHENTICATED.into()], "delete", "secrets").0);
        assert!(!auth.authorize("bob", &[AUTHENTICATED.to_owned()], "list", "pods").0);
        assert!(!auth.authorize(ANONYMOUS, &[UNAUTHENTICATED.into()], "get", "pods").0);
    }
}
