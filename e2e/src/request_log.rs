//! `--log-requests`: one line per API request (cluster, method, path and query, content type,
//! status, response bytes, duration, user), for debugging a client against kubesim.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// Where request lines go.
pub struct RequestLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestLog")
    }
}

/// One request, as logged.
pub struct Entry<'a> {
    pub cluster: &'a str,
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub content_type: &'a str,
    pub status: u16,
    /// `None` for streamed responses (watches), whose length is not known up front.
    pub bytes: Option<u64>,
    /// Until the response headers (a watch's stream goes on after).
    pub duration: Duration,
    pub user: &'a str,
}

/// The log line of a request (pure).
pub fn line(e: &Entry<'_>) -> String {
    let or_dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
    format!(
        "{} {} {} content-type={} status={} bytes={} duration={:.1}ms user={}",
        e.cluster,
        e.method,
        e.path_and_query,
        or_dash(e.content_type),
        e.status,
        e.bytes.map_or_else(|| "-".to_owned(), |b| b.to_string()),
        e.duration.as_secs_f64() * 1000.0,
        or_dash(e.user)
    )
}

impl RequestLog {
    pub fn stderr() -> Self {
        Self { out: Mutex::new(Box::new(std::io::stderr())) }
    }

    /// Appends to `path` (created when missing).
    pub fn file(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { out: Mutex::new(Box::new(f)) })
    }

    /// `--log-requests` without a value logs to stderr, with one to that file.
    pub fn from_flag(flag: Option<&Path>) -> std::io::Result<Self> {
        match flag {
            Some(p) if !p.as_os_str().is_empty() => Self::file(p),
            _ => Ok(Self::stderr()),
        }
    }

    pub fn record(&self, e: &Entry<'_>) {
        let text = line(e);
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A log that cannot be written must not fail the request.
        let _ = writeln!(out, "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_what_happened() {
        let e = Entry {
            cluster: "member-1",
            method: "GET",
            path_and_query: "/api/v1/pods?limit=500",
            content_type: "",
            status: 200,
            bytes: Some(1234),
            duration: Duration::from_micros(2500),
            user: "admin",
        };
        assert_eq!(
            line(&e),
            "member-1 GET /api/v1/pods?limit=500 content-type=- status=200 bytes=1234 duration=2.5ms user=admin"
        );
        let watch = Entry { bytes: None, user: "", ..e };
        assert!(line(&watch).contains("bytes=- ") && line(&watch).ends_with("user=-"));
    }

    #[test]
    fn lines_reach_the_file() {
        let path = std::env::temp_dir().join(format!("kubesim-requests-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = RequestLog::from_flag(Some(&path)).unwrap();
        let e = Entry {
            cluster: "c",
            method: "POST",
            path_and_query: "/api/v1/namespaces",
            content_type: "application/json",
            status: 201,
            bytes: Some(1),
            duration: Duration::ZERO,
            user: "u",
        };
        log.record(&e);
        log.record(&e);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with("c POST /api/v1/namespaces content-type=application/json status=201"));
        let _ = std::fs::remove_file(&path);
    }
}
