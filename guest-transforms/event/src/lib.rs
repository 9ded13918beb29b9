//! The event format runnel's host and guests agree on.
//!
//! Events are UTF-8 JSON objects, one per message. This crate owns the few
//! operations the hot path needs on them, all without building a JSON DOM:
//!
//! - [`FieldScanner`] reads the values of a handful of fields in **one** pass
//!   over an event, borrowing them from the input (skipped values are never
//!   materialised);
//! - [`Pointer`] names a field by JSON pointer (`/user_pseudo_id`, `/geo/country`);
//! - [`parse_event_time`] turns a field into microseconds since the epoch;
//! - [`key_text`] turns a field into a grouping key;
//! - [`append_field`] adds a field to an event by editing its bytes.
//!
//! The guest SDK uses it inside WebAssembly, the host's decode stage uses it
//! natively, so both sides accept and refuse exactly the same events.

mod scan;

pub use scan::{remove_field, FieldScanner, Raw, ScanError, Scanned};
use std::borrow::Cow;

/// How an event-time field is written (mirrors the WIT `time-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// Integer microseconds since the Unix epoch.
    #[default]
    Micros,
    /// Integer milliseconds since the Unix epoch.
    Millis,
    /// Integer or fractional seconds since the Unix epoch.
    Seconds,
    /// An RFC 3339 string.
    Rfc3339,
}

impl TimeFormat {
    /// Parses the names used in pipeline files: `us`, `ms`, `s`, `rfc3339`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "us" | "micros" | "microseconds" => Some(Self::Micros),
            "ms" | "millis" | "milliseconds" => Some(Self::Millis),
            "s" | "seconds" => Some(Self::Seconds),
            "rfc3339" => Some(Self::Rfc3339),
            _ => None,
        }
    }
}

/// A JSON pointer into an event (RFC 6901, without array indexes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
    text: String,
    segments: Vec<String>,
}

impl Pointer {
    /// Parses `/a/b`. A bare name `a` is accepted as `/a`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let body = text.strip_prefix('/').unwrap_or(text);
        if body.is_empty() {
            return Err(format!("field pointer {text:?} is empty: name a field, e.g. \"/user_pseudo_id\""));
        }
        let segments = body.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
        Ok(Self { text: format!("/{body}"), segments })
    }

    /// The top-level field this pointer starts at.
    pub fn top(&self) -> &str {
        &self.segments[0]
    }

    /// The pointer as written, e.g. `/geo/country`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Resolves the rest of the pointer below the top-level value.
    pub fn descend<'a>(&self, top: Raw<'a>) -> Result<Option<Raw<'a>>, String> {
        let mut current = top;
        for segment in &self.segments[1..] {
            let scanner = FieldScanner::new([segment.as_str()]);
            match scanner.scan(current.get().as_bytes()) {
                Ok(found) => match found.get(0) {
                    Some(v) => current = v,
                    None => return Ok(None),
                },
                Err(ScanError::NotAnObject) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(Some(current))
    }
}

/// Reads a raw JSON string without copying when it has no escapes.
pub fn raw_str(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The grouping key a field gives: a string's text, or a number's or
/// boolean's literal. Null, objects and arrays are refused.
pub fn key_text(raw: Raw<'_>) -> Result<Cow<'_, str>, String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => raw_str(raw).ok_or_else(|| format!("key {text} is not a valid string")),
        Some(b'-' | b'0'..=b'9') | Some(b't' | b'f') => Ok(Cow::Borrowed(text)),
        _ => Err(format!("key is {}, expected a string or a number", describe(text))),
    }
}

fn describe(text: &str) -> String {
    const MAX: usize = 60;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    } else {
        text.to_string()
    }
}

/// Turns a time field into microseconds since the Unix epoch.
pub fn parse_event_time(raw: Raw<'_>, format: TimeFormat) -> Result<i64, String> {
    let text = raw.get();
    // Integers are also accepted when quoted ("1533290402351000"), as some
    // exports write 64-bit numbers as strings.
    let unquoted = raw_str(raw);
    let number = unquoted.as_deref().unwrap_or(text);
    let bad = |what: &str| format!("event time {} is not {what}", describe(text));
    match format {
        TimeFormat::Micros => number.parse::<i64>().map_err(|_| bad("an integer number of microseconds")),
        TimeFormat::Millis => {
            number.parse::<i64>().ok().and_then(|ms| ms.checked_mul(1_000)).ok_or_else(|| bad("an integer number of milliseconds"))
        }
        TimeFormat::Seconds => {
            if let Ok(s) = number.parse::<i64>() {
                return s.checked_mul(1_000_000).ok_or_else(|| bad("a number of seconds in range"));
            }
            let s: f64 = number.parse().map_err(|_| bad("a number of seconds"))?;
            if s.is_finite() && s.abs() < 9.2e12 {
                Ok((s * 1e6).round() as i64)
            } else {
                Err(bad("a number of seconds in range"))
            }
        }
        TimeFormat::Rfc3339 => {
            let s = unquoted.ok_or_else(|| bad("an RFC 3339 string"))?;
            chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| t.timestamp_micros())
                .map_err(|e| format!("event time {} is not RFC 3339: {e}", describe(text)))
        }
    }
}

/// Returns `event` with `"name": value_json` added as its last field.
/// `value_json` must be a JSON value (e.g. `"\"Friday\""` or `42`).
pub fn append_field(event: &[u8], name: &str, value_json: &str) -> Result<Vec<u8>, ScanError> {
    let at = AppendPoint::of(event)?;
    let mut members = Vec::new();
    push_member(&mut members, name, value_json);
    let mut out = Vec::with_capacity(at.len(&members));
    at.write(event, &members, &mut out);
    Ok(out)
}

/// Appends the member text `"name":value_json` to `members` (after a `,`
/// when it already holds one).
pub fn push_member(members: &mut Vec<u8>, name: &str, value_json: &str) {
    if !members.is_empty() {
        members.push(b',');
    }
    serde_json::to_writer(&mut *members, name).expect("a string always serialises");
    members.push(b':');
    members.extend_from_slice(value_json.as_bytes());
}

/// Where members are appended to an object: the length of its text before
/// the closing `}`, and whether a `,` goes first. Found once, so an output
/// with fields added can be kept as its input plus the members' text, and
/// written out (or measured) only when something reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendPoint {
    body: usize,
    comma: bool,
}

impl AppendPoint {
    /// Where `event`'s members end; `NotAnObject` when it does not end with
    /// `}` (the rest of it is the caller's to have checked).
    pub fn of(event: &[u8]) -> Result<Self, ScanError> {
        let end = event.iter().rposition(|b| !b.is_ascii_whitespace()).ok_or(ScanError::NotAnObject)?;
        if event[end] != b'}' {
            return Err(ScanError::NotAnObject);
        }
        let empty = event[..end].iter().rev().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'{');
        Ok(Self { body: end, comma: !empty })
    }

    /// The length of the event with `members` (non-empty) appended.
    pub fn len(&self, members: &[u8]) -> usize {
        self.body + usize::from(self.comma) + members.len() + 1
    }

    /// Writes `event` with `members` (non-empty) appended to `out`.
    pub fn write(&self, event: &[u8], members: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&event[..self.body]);
        if self.comma {
            out.push(b',');
        }
        out.extend_from_slice(members);
        out.push(b'}');
    }
}

/// The key and event-time fields a pipeline groups by, resolved in the same
/// scan as any other fields a caller reads.
#[derive(Clone, Debug)]
pub struct KeyAndTime {
    pub key: Option<(Pointer, usize)>,
    pub time: Option<(Pointer, usize, TimeFormat)>,
}

impl KeyAndTime {
    /// Registers the pointers' top-level fields with `scanner`.
    pub fn new(scanner: &mut FieldScanner, key: Option<Pointer>, time: Option<(Pointer, TimeFormat)>) -> Self {
        Self {
            key: key.map(|p| {
                let i = scanner.index_of(p.top());
                (p, i)
            }),
            time: time.map(|(p, f)| {
                let i = scanner.index_of(p.top());
                (p, i, f)
            }),
        }
    }

    /// Reads the key from a scan; `Ok(None)` when no key field is configured.
    pub fn key(&self, scanned: &Scanned<'_>) -> Result<Option<String>, String> {
        let Some((pointer, index)) = &self.key else {
            return Ok(None);
        };
        let raw = resolve(pointer, *index, scanned)?.ok_or_else(|| format!("missing key field {}", pointer.as_str()))?;
        key_text(raw).map(|k| Some(k.into_owned()))
    }

    /// Reads the event time from a scan; `Ok(None)` when none is configured.
    pub fn time(&self, scanned: &Scanned<'_>) -> Result<Option<i64>, String> {
        let Some((pointer, index, format)) = &self.time else {
            return Ok(None);
        };
        let raw = resolve(pointer, *index, scanned)?.ok_or_else(|| format!("missing event time field {}", pointer.as_str()))?;
        parse_event_time(raw, *format).map(Some)
    }
}

fn resolve<'a>(pointer: &Pointer, index: usize, scanned: &Scanned<'a>) -> Result<Option<Raw<'a>>, String> {
    match scanned.get(index) {
        None => Ok(None),
        Some(top) => pointer.descend(top),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"event_date":"20180803","event_timestamp":1533290402351000,"event_name":"a\"b","user_pseudo_id":"A9","geo":{"country":"Brazil","city":null},"n":[1,2]}"#;

    #[test]
    fn scans_wanted_fields_in_one_pass() {
        let scanner = FieldScanner::new(["user_pseudo_id", "event_name", "absent"]);
        let s = scanner.scan(EVENT.as_bytes()).unwrap();
        assert_eq!(s.get(0).unwrap().get(), "\"A9\"");
        assert_eq!(raw_str(s.get(1).unwrap()).unwrap(), "a\"b");
        assert!(s.get(2).is_none());
    }

    #[test]
    fn refuses_bad_json_and_non_objects() {
        let scanner = FieldScanner::new(["a"]);
        assert!(matches!(scanner.scan(b"{\"a\":"), Err(ScanError::NotJson(_))));
        assert!(matches!(scanner.scan(b"{\"a\":1} x"), Err(ScanError::NotJson(_))));
        assert_eq!(scanner.scan(b"[1,2]").err(), Some(ScanError::NotAnObject));
        assert_eq!(scanner.scan(b"\"s\"").err(), Some(ScanError::NotAnObject));
    }

    #[test]
    fn resolves_nested_pointers_and_times() {
        let mut scanner = FieldScanner::default();
        let kt = KeyAndTime::new(
            &mut scanner,
            Some(Pointer::parse("/geo/country").unwrap()),
            Some((Pointer::parse("event_timestamp").unwrap(), TimeFormat::Micros)),
        );
        let s = scanner.scan(EVENT.as_bytes()).unwrap();
        assert_eq!(kt.key(&s).unwrap().as_deref(), Some("Brazil"));
        assert_eq!(kt.time(&s).unwrap(), Some(1533290402351000));
    }

    #[test]
    fn missing_and_null_keys_are_errors() {
        let mut scanner = FieldScanner::default();
        let kt = KeyAndTime::new(&mut scanner, Some(Pointer::parse("/geo/city").unwrap()), None);
        let s = scanner.scan(EVENT.as_bytes()).unwrap();
        assert!(kt.key(&s).unwrap_err().contains("key is null"));
        let mut scanner = FieldScanner::default();
        let kt = KeyAndTime::new(&mut scanner, Some(Pointer::parse("/user_id").unwrap()), None);
        let s = scanner.scan(EVENT.as_bytes()).unwrap();
        assert_eq!(kt.key(&s).unwrap_err(), "missing key field /user_id");
    }

    #[test]
    fn time_formats() {
        let raw = Raw::from_json;
        assert_eq!(parse_event_time(raw("1500"), TimeFormat::Millis), Ok(1_500_000));
        assert_eq!(parse_event_time(raw("\"77\""), TimeFormat::Micros), Ok(77));
        assert_eq!(parse_event_time(raw("1.5"), TimeFormat::Seconds), Ok(1_500_000));
        assert_eq!(parse_event_time(raw("\"2018-08-03T07:00:52.346001Z\""), TimeFormat::Rfc3339), Ok(1_533_279_652_346_001));
        assert!(parse_event_time(raw("\"x\""), TimeFormat::Micros).unwrap_err().contains("not an integer"));
        assert!(parse_event_time(raw("1.5"), TimeFormat::Micros).is_err());
    }

    #[test]
    fn appends_fields_by_editing_bytes() {
        let out = append_field(b"{\"a\":1}\n", "weekday", "\"Friday\"").unwrap();
        assert_eq!(out, b"{\"a\":1,\"weekday\":\"Friday\"}");
        assert_eq!(append_field(b"{ }", "x", "1").unwrap(), b"{ \"x\":1}");
        assert!(append_field(b"[1]", "x", "1").is_err());
    }

    #[test]
    fn removes_every_occurrence_of_a_top_level_field() {
        let out = remove_field(br#"{"a":1, "b":{"a":2},"a":3,"c":[1]}"#, "a").unwrap();
        assert_eq!(out, br#"{"b":{"a":2},"c":[1]}"#);
        assert_eq!(remove_field(br#"{"a":1}"#, "a").unwrap(), b"{}");
        let unchanged = br#"{ "x" : 1 }"#;
        assert_eq!(remove_field(unchanged, "a").unwrap(), unchanged);
        assert_eq!(remove_field(b"[1]", "a").unwrap_err(), ScanError::NotAnObject);
        assert!(matches!(remove_field(br#"{"a":}"#, "a"), Err(ScanError::NotJson(_))));
    }
}
