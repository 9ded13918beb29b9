//! Decode: the host's own reading of an event's key and event time, in one
//! borrowed pass ([`runnel_event::FieldScanner`]). Used when no transform
//! runs, or when a transform returned an event without them. With a
//! transform, the guest SDK reads them in its own pass instead, so no event
//! is parsed twice.

use std::borrow::Cow;

use crate::config::EventTime;
use crate::deadletter::{Reason, Refusal};
use crate::plugin::transform::FieldsSpec;
use runnel_event::{key_text, parse_event_time, FieldScanner, Pointer, TimeFormat};

/// Reads keys and event times from events.
pub struct Decoder {
    scanner: FieldScanner,
    key: (Pointer, usize),
    time: EventTime,
    time_index: Option<usize>,
}

impl Decoder {
    pub fn new(key: Pointer, time: EventTime) -> Self {
        let mut scanner = FieldScanner::default();
        let key_index = scanner.index_of(key.top());
        let time_index = match &time {
            EventTime::Field(p, _) => Some(scanner.index_of(p.top())),
            _ => None,
        };
        Self { scanner, key: (key, key_index), time, time_index }
    }

    pub fn event_time(&self) -> &EventTime {
        &self.time
    }

    /// What the guest SDK should read for us.
    pub fn fields_spec(&self) -> FieldsSpec {
        let (time_pointer, time_format) = match &self.time {
            EventTime::Field(p, f) => (Some(p.as_str().to_string()), *f),
            _ => (None, TimeFormat::Micros),
        };
        FieldsSpec { key_pointer: Some(self.key.0.as_str().to_string()), time_pointer, time_format }
    }

    /// The key, and the event time when it comes from a field.
    pub fn decode<'a>(&self, event: &'a [u8]) -> Result<(Cow<'a, str>, Option<i64>), Refusal> {
        let malformed = |e: String| Refusal::new(Reason::Malformed, e);
        let scanned = self.scanner.scan(event).map_err(|e| malformed(e.to_string()))?;
        let (pointer, index) = &self.key;
        let raw = scanned
            .get(*index)
            .map(|top| pointer.descend(top))
            .transpose()
            .map_err(malformed)?
            .flatten()
            .ok_or_else(|| Refusal::new(Reason::MissingKey, format!("missing key field {}", pointer.as_str())))?;
        let key = key_text(raw).map_err(|e| Refusal::new(Reason::BadKey, e))?;
        let time = match (&self.time, self.time_index) {
            (EventTime::Field(p, format), Some(i)) => {
                let raw = scanned
                    .get(i)
                    .map(|top| p.descend(top))
                    .transpose()
                    .map_err(malformed)?
                    .flatten()
                    .ok_or_else(|| Refusal::new(Reason::MissingTime, format!("missing event time field {}", p.as_str())))?;
                Some(parse_event_time(raw, *format).map_err(|e| Refusal::new(Reason::BadTime, e))?)
            }
            _ => None,
        };
        Ok((key, time))
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
