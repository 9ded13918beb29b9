//! Decode: the host's own reading of an event, in one borrowed native pass
//! ([`runnel_event::FieldScanner`]): its key, its event time, and the
//! top-level fields a transform declared ([`Reader`]). With a transform,
//! that pass is the only one: the guest gets the declared fields' values
//! and the host keeps the key and time for the outputs (contract 0.2).

use std::borrow::Cow;

use crate::config::EventTime;
use crate::deadletter::{Reason, Refusal};
use runnel_event::{key_text, parse_event_time, FieldScanner, Pointer, Raw, Scanned, TimeFormat};

/// Where the key and event time of each event are.
#[derive(Clone, Debug, Default)]
pub struct FieldsSpec {
    pub key_pointer: Option<String>,
    pub time_pointer: Option<String>,
    pub time_format: TimeFormat,
}

/// Reads an event's key, its event time (when it comes from a field) and
/// any other top-level fields, in one pass.
#[derive(Clone, Debug)]
pub struct Reader {
    scanner: FieldScanner,
    key: Option<(Pointer, usize)>,
    time: Option<(Pointer, usize, TimeFormat)>,
}

impl Reader {
    pub fn new(key: Option<Pointer>, time: Option<(Pointer, TimeFormat)>) -> Self {
        let mut scanner = FieldScanner::default();
        let key = key.map(|p| {
            let i = scanner.index_of(p.top());
            (p, i)
        });
        let time = time.map(|(p, f)| {
            let i = scanner.index_of(p.top());
            (p, i, f)
        });
        Self { scanner, key, time }
    }

    /// A reader for where a [`FieldsSpec`] says the key and time are.
    pub fn from_spec(spec: &FieldsSpec) -> Result<Self, String> {
        let key = spec.key_pointer.as_deref().map(Pointer::parse).transpose()?;
        let time = spec.time_pointer.as_deref().map(Pointer::parse).transpose()?.map(|p| (p, spec.time_format));
        Ok(Self::new(key, time))
    }

    /// Also reads `names`; returns their indexes in a scan's values.
    pub fn also(&mut self, names: &[String]) -> Vec<usize> {
        names.iter().map(|n| self.scanner.index_of(n)).collect()
    }

    /// The `index`-th name it reads.
    pub fn name(&self, index: usize) -> &str {
        &self.scanner.names()[index]
    }

    /// Scans one event (validating all of it).
    pub fn scan<'a>(&self, event: &'a [u8]) -> Result<Scanned<'a>, Refusal> {
        self.scanner.scan(event).map_err(|e| Refusal::new(Reason::Malformed, e.to_string()))
    }

    /// The key from a scan; `None` when no key is configured.
    pub fn key<'a>(&self, scanned: &Scanned<'a>) -> Result<Option<Cow<'a, str>>, Refusal> {
        let Some((pointer, index)) = &self.key else { return Ok(None) };
        let raw = resolve(pointer, *index, scanned)?
            .ok_or_else(|| Refusal::new(Reason::MissingKey, format!("missing key field {}", pointer.as_str())))?;
        key_text(raw).map(Some).map_err(|e| Refusal::new(Reason::BadKey, e))
    }

    /// The event time from a scan; `None` when it does not come from a field.
    pub fn time(&self, scanned: &Scanned<'_>) -> Result<Option<i64>, Refusal> {
        let Some((pointer, index, format)) = &self.time else { return Ok(None) };
        let raw = resolve(pointer, *index, scanned)?
            .ok_or_else(|| Refusal::new(Reason::MissingTime, format!("missing event time field {}", pointer.as_str())))?;
        parse_event_time(raw, *format).map(Some).map_err(|e| Refusal::new(Reason::BadTime, e))
    }
}

fn resolve<'a>(pointer: &Pointer, index: usize, scanned: &Scanned<'a>) -> Result<Option<Raw<'a>>, Refusal> {
    let malformed = |e: String| Refusal::new(Reason::Malformed, e);
    scanned.get(index).map(|top| pointer.descend(top)).transpose().map_err(malformed).map(Option::flatten)
}

/// Reads keys and event times from events, as the pipeline file says.
pub struct Decoder {
    reader: Reader,
    key: Pointer,
    time: EventTime,
}

impl Decoder {
    pub fn new(key: Pointer, time: EventTime) -> Self {
        let field = match &time {
            EventTime::Field(p, f) => Some((p.clone(), *f)),
            _ => None,
        };
        Self { reader: Reader::new(Some(key.clone()), field), key, time }
    }

    pub fn event_time(&self) -> &EventTime {
        &self.time
    }

    /// Whether the event time is read from a field of the event (else it
    /// comes from the message: publish time, an attribute, arrival).
    pub fn time_is_field(&self) -> bool {
        matches!(self.time, EventTime::Field(..))
    }

    /// Where a transform's host-side pass finds the key and time.
    pub fn fields_spec(&self) -> FieldsSpec {
        let (time_pointer, time_format) = match &self.time {
            EventTime::Field(p, f) => (Some(p.as_str().to_string()), *f),
            _ => (None, TimeFormat::Micros),
        };
        FieldsSpec { key_pointer: Some(self.key.as_str().to_string()), time_pointer, time_format }
    }

    /// The key, and the event time when it comes from a field.
    pub fn decode<'a>(&self, event: &'a [u8]) -> Result<(Cow<'a, str>, Option<i64>), Refusal> {
        let scanned = self.reader.scan(event)?;
        let key = self.reader.key(&scanned)?.expect("a decoder always has a key");
        Ok((key, self.reader.time(&scanned)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> Decoder {
        Decoder::new(
            Pointer::parse("/user_pseudo_id").unwrap(),
            EventTime::Field(Pointer::parse("/event_timestamp").unwrap(), TimeFormat::Micros),
        )
    }

    #[test]
    fn decodes_key_and_time() {
        let (k, t) = decoder().decode(br#"{"user_pseudo_id":"U1","event_timestamp":5}"#).unwrap();
        assert_eq!((k.as_ref(), t), ("U1", Some(5)));
    }

    #[test]
    fn each_bad_input_has_its_reason() {
        let d = decoder();
        let e = d.decode(b"{not json").unwrap_err();
        assert!(e.reason.starts_with("not valid JSON") && e.code == Reason::Malformed, "{e:?}");
        assert_eq!(d.decode(b"[1]").unwrap_err(), Refusal::new(Reason::Malformed, "not a JSON object"));
        assert_eq!(
            d.decode(br#"{"event_timestamp":5}"#).unwrap_err(),
            Refusal::new(Reason::MissingKey, "missing key field /user_pseudo_id")
        );
        let e = d.decode(br#"{"user_pseudo_id":"U","event_timestamp":"soon"}"#).unwrap_err();
        assert!(e.reason.contains("not an integer number of microseconds") && e.code == Reason::BadTime, "{e:?}");
        let e = d.decode(br#"{"user_pseudo_id":"U"}"#).unwrap_err();
        assert_eq!(e.code, Reason::MissingTime);
    }
}
