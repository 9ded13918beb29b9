//! The benchmark's native baseline: `add-weekday` and `count-events`
//! written in plain Rust inside the host, doing what the plugins do (the
//! same one-pass scanner, the same field append the host makes of the
//! plugin's answer), so the difference to the WASM pipeline is what the
//! sandbox costs.

use chrono::{Datelike, NaiveDate, Weekday};
use runnel_event::{raw_str, FieldScanner, KeyAndTime, Pointer, TimeFormat};

use crate::accumulate::{EventBatch, NativeCount};
use crate::pipeline::NativePlugins;
use crate::plugin::transform::{Emitted, Payload, Rejected, TransformOutput};

/// add-weekday, natively: scan, read `event_date`, append `"weekday"`.
pub struct NativeAddWeekday {
    scanner: FieldScanner,
    date: usize,
    key_and_time: KeyAndTime,
}

impl Default for NativeAddWeekday {
    fn default() -> Self {
        let mut scanner = FieldScanner::new(["event_date"]);
        let key_and_time = KeyAndTime::new(
            &mut scanner,
            Some(Pointer::parse("/user_pseudo_id").expect("a valid pointer")),
            Some((Pointer::parse("/event_timestamp").expect("a valid pointer"), TimeFormat::Micros)),
        );
        Self { scanner, date: 0, key_and_time }
    }
}

impl NativeAddWeekday {
    fn one(&self, source: u32, bytes: &[u8]) -> Result<Emitted, String> {
        let scanned = self.scanner.scan(bytes).map_err(|e| e.to_string())?;
        let date = scanned.get(self.date).and_then(raw_str).ok_or("event has no event_date string")?;
        let day = NaiveDate::parse_from_str(&date, "%Y%m%d").map_err(|e| format!("event_date {date:?}: {e}"))?;
        let weekday = match day.weekday() {
            Weekday::Mon => "\"Monday\"",
            Weekday::Tue => "\"Tuesday\"",
            Weekday::Wed => "\"Wednesday\"",
            Weekday::Thu => "\"Thursday\"",
            Weekday::Fri => "\"Friday\"",
            Weekday::Sat => "\"Saturday\"",
            Weekday::Sun => "\"Sunday\"",
        };
        // The same edit the plugin's answer makes, applied the same way.
        let payload = Payload::Input.append(bytes, "weekday", weekday).map_err(|e| e.to_string())?;
        Ok(Emitted { source, payload, key: self.key_and_time.key(&scanned)?, event_time_us: self.key_and_time.time(&scanned)? })
    }

    pub fn transform(&mut self, batch: &EventBatch) -> TransformOutput {
        let mut out = TransformOutput::default();
        for i in 0..batch.len() {
            match self.one(i as u32, batch.get(i)) {
                Ok(e) => out.emitted.push(e),
                Err(reason) => out.rejected.push(Rejected { source: i as u32, code: crate::deadletter::Reason::Refused, reason }),
            }
        }
        out
    }
}

/// Both native plugins, for [`crate::pipeline::Overrides::native`].
pub fn plugins() -> NativePlugins {
    let mut transform = NativeAddWeekday::default();
    NativePlugins { transform: Box::new(move |batch| transform.transform(batch)), aggregate: Box::new(NativeCount::default()) }
}
