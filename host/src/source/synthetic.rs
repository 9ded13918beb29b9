//! The synthetic source: the workshop's click-stream generator without a
//! cloud. It replays the bundled Flood It events in a loop at `rate` events
//! per second, rewriting each `event_timestamp` to the current time so the
//! stream looks live.

use anyhow::Result;
use std::io::Read;
use std::time::{Duration, Instant};

use super::{now_us, Origin, Source, SourceBatch};
use crate::batch::EventBatch;

/// The bundled Flood It events (50,000, gzip-compressed NDJSON).
pub const FLOOD_IT_GZ: &[u8] = include_bytes!("../../../examples/data/floodit-events.ndjson.gz");

/// Decompresses the bundled events into lines.
pub fn bundled_events() -> Vec<Vec<u8>> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(FLOOD_IT_GZ).read_to_end(&mut text).expect("the bundled data decompresses");
    text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

pub struct SyntheticSource {
    events: Vec<Vec<u8>>,
    rate: f64,
    limit: Option<u64>,
    sent: u64,
    started: Instant,
}

impl SyntheticSource {
    pub fn new(rate: f64, limit: Option<u64>) -> Self {
        Self { events: bundled_events(), rate, limit, sent: 0, started: Instant::now() }
    }
}

/// Replaces the digits after `"event_timestamp":` with `micros`.
pub fn rewrite_timestamp(event: &[u8], micros: i64) -> Vec<u8> {
    const FIELD: &[u8] = b"\"event_timestamp\":";
    let Some(at) = event.windows(FIELD.len()).position(|w| w == FIELD) else {
        return event.to_vec();
    };
    let start = at + FIELD.len();
    let end = start + event[start..].iter().take_while(|b| b.is_ascii_digit() || **b == b'-').count();
    let mut out = Vec::with_capacity(event.len());
    out.extend_from_slice(&event[..start]);
    out.extend_from_slice(micros.to_string().as_bytes());
    out.extend_from_slice(&event[end..]);
    out
}

impl Source for SyntheticSource {
    fn next_batch(&mut self, max: usize) -> Result<Option<SourceBatch>> {
        if self.limit.is_some_and(|l| self.sent >= l) {
            return Ok(None);
        }
        // Pace: never get ahead of `rate`.
        let due = (self.started.elapsed().as_secs_f64() * self.rate) as u64;
        if due <= self.sent {
            let wait = (self.sent + 1) as f64 / self.rate - self.started.elapsed().as_secs_f64();
            std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.0, 0.1)));
        }
        let due = ((self.started.elapsed().as_secs_f64() * self.rate) as u64).max(self.sent + 1);
        let mut n = (due - self.sent).min(max as u64);
        if let Some(l) = self.limit {
            n = n.min(l - self.sent);
        }
        let now = now_us();
        let mut events = EventBatch::default();
        for i in 0..n {
            let e = &self.events[((self.sent + i) % self.events.len() as u64) as usize];
            events.push(&rewrite_timestamp(e, now));
        }
        let first = self.sent;
        self.sent += n;
        Ok(Some(SourceBatch {
            publish_times: vec![now; events.len()],
            events,
            origin: Origin::Synthetic { first },
            ack_tokens: Vec::new(),
            attributes: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rewritten_in_place() {
        let e = br#"{"event_date":"20180803","event_timestamp":1533279652346001,"x":1}"#;
        assert_eq!(rewrite_timestamp(e, 42), br#"{"event_date":"20180803","event_timestamp":42,"x":1}"#.to_vec());
    }

    #[test]
    fn stops_after_the_requested_number_of_events() {
        let mut s = SyntheticSource::new(1e9, Some(300));
        let mut total = 0;
        while let Some(b) = s.next_batch(256).unwrap() {
            total += b.events.len();
        }
        assert_eq!(total, 300);
    }
}
