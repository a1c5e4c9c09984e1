//! Where the store lives: `--storage URL`.

use crate::error::StorageError;
use crate::tls::{Tls, extract_tls};

/// The SQL backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        }
    }
}

/// A parsed `--storage` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    pub backend: Backend,
    /// What the driver connects to: a file path for SQLite, the URL otherwise.
    pub target: String,
    /// Connections in the pool (SQLite has one more, for writing).
    pub max_connections: u32,
    /// TLS to PostgreSQL or MySQL (`sslmode`, `sslrootcert`; taken out of `target`).
    pub tls: Tls,
}

impl StorageConfig {
    /// `sqlite://PATH` (relative, or `sqlite:///abs/path`), `sqlite://:memory:`,
    /// `postgres://...` / `postgresql://...`, `mysql://...` / `mariadb://...`.
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        let bad = |reason: &str| StorageError::Config(format!("--storage {url:?}: {reason}"));
        let (scheme, rest) =
            url.split_once("://").ok_or_else(|| bad("expected sqlite://PATH, postgres://... or mysql://..."))?;
        let (backend, target) = match scheme {
            "sqlite" => {
                if rest.is_empty() {
                    return Err(bad("the SQLite path is empty"));
                }
                (Backend::Sqlite, rest.to_owned())
            }
            "postgres" | "postgresql" => (Backend::Postgres, url.to_owned()),
            "mysql" => (Backend::Mysql, url.to_owned()),
            "mariadb" => (Backend::Mysql, format!("mysql://{rest}")),
            other => return Err(bad(&format!("unknown scheme {other:?}; use sqlite, postgres or mysql"))),
        };
        Self::new(backend, target, 8)
    }

    /// A configuration for `target`; `sslmode`/`sslrootcert` become [`Tls`].
    pub fn new(backend: Backend, target: String, max_connections: u32) -> Result<Self, StorageError> {
        let (target, tls) = match backend {
            Backend::Postgres | Backend::Mysql => extract_tls(&target)?,
            Backend::Sqlite => (target, Tls::Disable),
        };
        Ok(Self { backend, target, max_connections, tls })
    }

    /// The URL with any password replaced, for logs and messages.
    pub fn redacted(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("sqlite://{}", self.target),
            // A keyword DSN (`host=... password=...`) from an internalstorage config file.
            Backend::Postgres if !self.target.contains("://") => redact_keyword_dsn(&self.target),
            _ => match url::Url::parse(&self.target) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("***"));
                    }
                    u.to_string()
                }
                Err(_) => "<unparsable url>".into(),
            },
        }
    }
}

/// `... password='a b' ...` -> `... password=*** ...` (values may be quoted with escapes).
fn redact_keyword_dsn(dsn: &str) -> String {
    let Some(start) = dsn.find("password=") else { return dsn.to_owned() };
    let value = &dsn[start + "password=".len()..];
    let end = if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        let mut len = None;
        for (i, c) in quoted.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '\'') => {
                    len = Some(i + 2);
                    break;
                }
                _ => {}
            }
        }
        len.unwrap_or(value.len())
    } else {
        value.find(' ').unwrap_or(value.len())
    };
    format!("{}password=***{}", &dsn[..start], &value[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = StorageConfig::from_url("sqlite://pedia.db").unwrap();
        assert_eq!((c.backend, c.target.as_str()), (Backend::Sqlite, "pedia.db"));
        assert_eq!(StorageConfig::from_url("sqlite:///var/lib/pedia.db").unwrap().target, "/var/lib/pedia.db");
        assert_eq!(StorageConfig::from_url("postgresql://u@h/db").unwrap().backend, Backend::Postgres);
        assert_eq!(StorageConfig::from_url("mariadb://root@h/db").unwrap().target, "mysql://root@h/db");
        assert!(StorageConfig::from_url("redis://x").unwrap_err().to_string().contains("unknown scheme"));
        assert!(StorageConfig::from_url("pedia.db").is_err());
        let c = StorageConfig::from_url("postgres://u:secret@h/db").unwrap();
        assert!(!c.redacted().contains("secret"));
        let kw = StorageConfig::new(Backend::Postgres, r"host=h password='a b\'c' dbname=d".into(), 1).unwrap();
        assert_eq!(kw.redacted(), "host=h password=*** dbname=d");
    }
}
