//! The messages whose JSON form is not an object of their fields: timestamps, durations,
//! quantities, int-or-string, embedded JSON.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `{seconds, nanos}` <-> RFC 3339 to the second.
    Time,
    /// `{seconds, nanos}` <-> RFC 3339 to the microsecond.
    MicroTime,
    /// `{duration}` nanoseconds <-> Go's `1h2m3s`.
    Duration,
    /// `{string}` <-> the string.
    Quantity,
    /// `{type, intVal, strVal}` <-> a number or a string.
    IntOrString,
    /// `{raw}` bytes <-> the JSON value they hold (RawExtension, FieldsV1, apiextensions' JSON).
    RawJson,
}

pub fn of(message: &str) -> Option<Special> {
    Some(match message {
        "apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
        "apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
        "apimachinery.pkg.apis.meta.v1.Duration" => Special::Duration,
        "apimachinery.pkg.api.resource.Quantity" => Special::Quantity,
        "apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
        "apimachinery.pkg.runtime.RawExtension"
        | "apimachinery.pkg.apis.meta.v1.FieldsV1"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1.Json" => Special::RawJson,
        _ => return None,
    })
}

/// The union messages of CRD schemas: JSON holds either the schema or the other member.
pub fn is_schema_union(message: &str) -> bool {
    message.starts_with("apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOr")
}

pub fn format_time(seconds: i64, nanos: i64, micro: bool) -> Result<Value, Error> {
    let ts = Timestamp::from_second(seconds).map_err(|e| Error::Malformed(format!("time {seconds}: {e}")))?;
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(Value::String(if micro { format!("{base}.{:06}Z", nanos / 1000) } else { format!("{base}Z") }))
}

/// `(seconds, nanos)` of an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<(i64, i64), Error> {
    let ts: Timestamp = s.parse().map_err(|e| Error::Malformed(format!("time {s:?}: {e}")))?;
    Ok((ts.as_second(), i64::from(ts.subsec_nanosecond())))
}

/// Go's `time.Duration.String()`.
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let frac = |v: u64, unit: u64| {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = unit.ilog10() as usize;
            let f = format!("{rest:0digits$}");
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u, 1_000));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u, 1_000_000));
    }
    let h = u / 3_600_000_000_000;
    let m = (u / 60_000_000_000) % 60;
    let s = frac(u % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// Go's `time.ParseDuration`.
pub fn parse_duration(s: &str) -> Result<i64, Error> {
    let bad = || Error::Malformed(format!("duration {s:?}"));
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let number: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
        total += number * unit;
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_prints_and_parses_them() {
        for (ns, s) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-5_000_000_000, "-5s"),
        ] {
            assert_eq!(format_duration(ns), s);
            assert_eq!(parse_duration(s).unwrap(), ns, "{s}");
        }
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn times_to_the_second_and_the_microsecond() {
        assert_eq!(format_time(1_764_759_600, 0, false).unwrap(), "2025-12-03T11:00:00Z");
        assert_eq!(format_time(1_764_759_600, 123_456_789, true).unwrap(), "2025-12-03T11:00:00.123456Z");
        assert_eq!(parse_time("2025-12-03T11:00:00.5Z").unwrap(), (1_764_759_600, 500_000_000));
        assert!(parse_time("yesterday").is_err());
    }
}
