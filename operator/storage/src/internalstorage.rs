//! Clusterpedia's internalstorage configuration file (`--storage-config`), so an upstream
//! deployment's ConfigMap and `DB_*` environment work unchanged.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{Backend, StorageConfig};
use crate::error::StorageError;

/// The file's keys pedia uses; others (log, metrics, mysql/postgres tuning) are accepted and
/// ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(rename = "type")]
    kind: Option<String>,
    dsn: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    ssl_mode: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    conn_pool: Option<ConnPool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnPool {
    max_open_conns: Option<u32>,
    max_idle_conns: Option<u32>,
}

fn bad(message: impl Into<String>) -> StorageError {
    StorageError::Config(format!("internalstorage config: {}", message.into()))
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Reads the file (YAML or JSON); `env` supplies `DB_TYPE`, `DB_DSN`, `DB_HOST`, `DB_PORT`,
/// `DB_USER`, `DB_PASSWORD`, `DB_DATABASE`, which win over the file, as upstream.
pub fn from_file(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<StorageConfig, StorageError> {
    let mut f: File = if text.trim().is_empty() {
        File::default()
    } else {
        serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?
    };
    let set = |slot: &mut Option<String>, var: &str| {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            *slot = Some(v);
        }
    };
    set(&mut f.kind, "DB_TYPE");
    set(&mut f.dsn, "DB_DSN");
    set(&mut f.host, "DB_HOST");
    set(&mut f.user, "DB_USER");
    set(&mut f.password, "DB_PASSWORD");
    set(&mut f.database, "DB_DATABASE");
    if let Some(p) = env("DB_PORT").filter(|v| !v.is_empty()) {
        f.port = Some(p.parse().map_err(|_| bad(format!("DB_PORT {p:?} is not a port number")))?);
    }
    let pool = f.conn_pool.as_ref();
    if let Some(p) = pool
        && let (Some(open), Some(idle)) = (p.max_open_conns, p.max_idle_conns)
        && open < idle
    {
        return Err(bad(format!("connPool.maxOpenConns ({open}) is less than maxIdleConns ({idle})")));
    }
    let max_connections = pool.and_then(|p| p.max_open_conns).unwrap_or(40).clamp(1, 200);
    let ssl = f.ssl_mode.clone().unwrap_or_default();
    let kind = f.kind.clone().ok_or_else(|| bad("`type` (or DB_TYPE) is required: mysql, postgres or sqlite"))?;
    let (backend, target) = match kind.as_str() {
        "postgres" => (Backend::Postgres, postgres_target(&f, &ssl)?),
        "mysql" => (Backend::Mysql, mysql_target(&f, &ssl)?),
        "sqlite" | "sqlite3" => {
            let dsn = f.dsn.clone().ok_or_else(|| bad("sqlite needs `dsn` (the database file)"))?;
            (Backend::Sqlite, dsn.trim_start_matches("file:").split('?').next().unwrap_or_default().to_owned())
        }
        other => return Err(bad(format!("unknown type {other:?}: use mysql, postgres or sqlite"))),
    };
    StorageConfig::new(backend, target, max_connections)
}

fn postgres_target(f: &File, ssl: &str) -> Result<String, StorageError> {
    if let Some(dsn) = &f.dsn {
        // tokio-postgres reads both URLs and keyword DSNs; upstream appends DB_PASSWORD when missing.
        return Ok(match &f.password {
            Some(p) if !dsn.contains("password") && !dsn.contains("://") => format!("{dsn} password={p}"),
            _ => dsn.clone(),
        });
    }
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut parts = vec![format!("host={}", quote(f.host.as_deref().unwrap_or("localhost")))];
    parts.push(format!("port={}", f.port.unwrap_or(5432)));
    if let Some(u) = &f.user {
        parts.push(format!("user={}", quote(u)));
    }
    if let Some(p) = &f.password {
        parts.push(format!("password={}", quote(p)));
    }
    let db = f.database.as_deref().ok_or_else(|| bad("postgres needs `database` (or a dsn)"))?;
    parts.push(format!("dbname={}", quote(db)));
    // libpq's modes, as upstream's driver takes them; unset means `prefer`, as there.
    parts.push(format!("sslmode={}", quote(if ssl.is_empty() { "prefer" } else { ssl })));
    for (k, v) in &f.params {
        parts.push(format!("{k}={}", quote(v)));
    }
    Ok(parts.join(" "))
}

fn mysql_target(f: &File, ssl: &str) -> Result<String, StorageError> {
    // The Go driver's `tls` parameter (in the DSN or `params`) wins over `sslMode`.
    let dsn_tls = f
        .dsn
        .as_deref()
        .and_then(|d| d.split_once('?'))
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("tls=")).map(str::to_owned));
    let tls = dsn_tls.or_else(|| f.params.get("tls").cloned()).unwrap_or_else(|| ssl.to_owned());
    let url = if let Some(dsn) = &f.dsn {
        go_mysql_dsn(dsn, f.password.as_deref())?
    } else {
        let db = f.database.as_deref().ok_or_else(|| bad("mysql needs `database` (or a dsn)"))?;
        let auth = match (&f.user, &f.password) {
            (Some(u), Some(p)) => format!("{}:{}@", percent(u), percent(p)),
            (Some(u), None) => format!("{}@", percent(u)),
            _ => String::new(),
        };
        format!("mysql://{auth}{}:{}/{}", f.host.as_deref().unwrap_or("localhost"), f.port.unwrap_or(3306), percent(db))
    };
    Ok(match mysql_ssl_mode(&tls)? {
        Some(mode) => format!("{url}?sslmode={mode}"),
        None => url,
    })
}

/// pedia's `sslmode` for a MySQL `sslMode` or Go driver `tls` value (None: the default, prefer).
fn mysql_ssl_mode(value: &str) -> Result<Option<&'static str>, StorageError> {
    Ok(Some(match value.to_ascii_lowercase().as_str() {
        "" => return Ok(None),
        "false" | "disable" | "disabled" => "disable",
        "preferred" | "prefer" => "prefer",
        "skip-verify" | "require" | "required" => "require",
        "verify-ca" | "verify_ca" => "verify-ca",
        "true" | "verify-full" | "verify_identity" => "verify-full",
        other => {
            return Err(bad(format!(
                "mysql tls {other:?}: use false, preferred, skip-verify, true (verify-full), or a pedia sslmode"
            )));
        }
    }))
}

/// Go's MySQL DSN (`user:pass@tcp(host:port)/db?params`) as a mysql:// URL.
fn go_mysql_dsn(dsn: &str, password: Option<&str>) -> Result<String, StorageError> {
    let (auth, rest) = dsn.rsplit_once('@').map_or(("", dsn), |(a, r)| (a, r));
    let (addr, db) =
        rest.split_once('/').ok_or_else(|| bad(format!("mysql dsn {:?} has no /database", "<redacted>")))?;
    let db = db.split('?').next().unwrap_or_default();
    let host = addr.strip_prefix("tcp(").and_then(|a| a.strip_suffix(')')).unwrap_or(addr);
    let host = if host.is_empty() { "127.0.0.1:3306" } else { host };
    let (user, pass) = auth.split_once(':').map_or((auth, password), |(u, p)| (u, Some(p)));
    let auth = match (user.is_empty(), pass) {
        (true, _) => String::new(),
        (false, Some(p)) => format!("{}:{}@", percent(user), percent(p)),
        (false, None) => format!("{}@", percent(user)),
    };
    Ok(format!("mysql://{auth}{host}/{}", percent(db)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn upstream_postgres_config() {
        let text = "type: \"postgres\"\nhost: \"clusterpedia-internalstorage-postgres\"\nport: 5432\nuser: postgres\ndatabase: \"clusterpedia\"\nsslMode: disable\nconnPool:\n  maxIdleConns: 10\n  maxOpenConns: 100\n  connMaxLifetime: 1h\nlog:\n  stdout: true\n  level: \"Warn\"\n";
        let env = |k: &str| (k == "DB_PASSWORD").then(|| "p@ss word".to_owned());
        let c = from_file(text, &env).unwrap();
        assert_eq!(c.backend, Backend::Postgres);
        assert_eq!(c.max_connections, 100);
        assert_eq!(
            c.target,
            "host='clusterpedia-internalstorage-postgres' port=5432 user='postgres' password='p@ss word' dbname='clusterpedia'"
        );
        assert_eq!(c.tls, crate::tls::Tls::Disable);
        let tls =
            |mode: &str| from_file(&format!("type: postgres\ndatabase: d\nsslMode: {mode}\n"), &no_env).map(|c| c.tls);
        assert_eq!(tls("require").unwrap(), crate::tls::Tls::Require);
        assert_eq!(tls("verify-full").unwrap(), crate::tls::Tls::VerifyFull(None));
        assert_eq!(from_file("type: postgres\ndatabase: d\n", &no_env).unwrap().tls, crate::tls::Tls::Prefer);
        assert!(tls("maybe").unwrap_err().to_string().contains("sslmode \"maybe\""));
    }

    #[test]
    fn upstream_mysql_config_and_dsn() {
        let text = "type: \"mysql\"\nhost: \"clusterpedia-internalstorage-mysql\"\nport: 3306\nuser: root\ndatabase: \"clusterpedia\"\n";
        let env = |k: &str| (k == "DB_PASSWORD").then(|| "s3cr/t".to_owned());
        assert_eq!(
            from_file(text, &env).unwrap().target,
            "mysql://root:s3cr%2Ft@clusterpedia-internalstorage-mysql:3306/clusterpedia"
        );
        let c = from_file("type: mysql\ndsn: \"root:pw@tcp(db:3307)/cp?parseTime=true\"\n", &no_env).unwrap();
        assert_eq!(c.target, "mysql://root:pw@db:3307/cp");
    }

    #[test]
    fn mysql_tls_from_ssl_mode_and_go_dsn() {
        use crate::tls::Tls;
        let tls = |text: &str| from_file(text, &no_env).unwrap();
        assert_eq!(tls("type: mysql\ndatabase: d\n").tls, Tls::Prefer);
        assert_eq!(tls("type: mysql\ndatabase: d\nsslMode: disable\n").tls, Tls::Disable);
        let c = tls("type: mysql\nhost: db\ndatabase: d\nsslMode: \"true\"\n");
        assert_eq!((c.target.as_str(), &c.tls), ("mysql://db:3306/d", &Tls::VerifyFull(None)));
        let c = tls("type: mysql\ndsn: \"u:p@tcp(db:3306)/d?tls=skip-verify&parseTime=true\"\nsslMode: \"true\"\n");
        assert_eq!((c.target.as_str(), &c.tls), ("mysql://u:p@db:3306/d", &Tls::Require));
        assert_eq!(tls("type: mysql\ndatabase: d\nparams:\n  tls: preferred\n").tls, Tls::Prefer);
    }

    #[test]
    fn env_overrides_and_errors() {
        let env = |k: &str| match k {
            "DB_TYPE" => Some("sqlite".to_owned()),
            "DB_DSN" => Some("file:/tmp/x.db?cache=shared".to_owned()),
            _ => None,
        };
        let c = from_file("", &env).unwrap();
        assert_eq!((c.backend, c.target.as_str()), (Backend::Sqlite, "/tmp/x.db"));
        for (text, needle) in [
            ("host: x\n", "`type`"),
            ("type: oracle\n", "unknown type"),
            ("type: postgres\nhost: h\n", "database"),
            ("type: mysql\ndatabase: d\nsslMode: \"maybe\"\n", "mysql tls \"maybe\""),
            ("type: mysql\ndatabase: d\nconnPool: {maxOpenConns: 1, maxIdleConns: 5}\n", "maxOpenConns"),
            ("type: [\n", "internalstorage config"),
        ] {
            let err = from_file(text, &no_env).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
