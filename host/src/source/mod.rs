//! Sources: where events come from. Each yields batches of raw events with
//! their provenance (for dead letters) and publish times.
//!
//! - [`file`]: NDJSON files, optionally gzip-compressed (bounded);
//! - [`synthetic`]: the bundled Flood It events replayed at a chosen rate
//!   with timestamps rewritten to now (unbounded);
//! - [`pubsub`]: a Google Cloud Pub/Sub subscription (unbounded), with
//!   acknowledgements the pipeline releases once results are written;
//! - [`memory`]: events held in memory (re-driven dead letters);
//! - [`paced`]: another source slowed to a steady rate.

pub mod dedup;
pub mod file;
pub mod memory;
pub mod paced;
pub mod pubsub;
pub mod synthetic;

use anyhow::Result;
use std::sync::Arc;

use crate::batch::EventBatch;

/// Where the events of a batch came from.
#[derive(Clone, Debug)]
pub enum Origin {
    /// Consecutive lines of a file, starting at line `first` (1-based).
    Lines { file: Arc<str>, first: u64 },
    /// The synthetic generator; `first` is the sequence number of event 0.
    Synthetic { first: u64 },
    /// Messages, by id.
    Messages { source: Arc<str>, ids: Vec<String> },
}

/// A batch of raw events.
#[derive(Debug)]
pub struct SourceBatch {
    pub events: EventBatch,
    /// Publish (or read) time of each event, µs since the epoch.
    pub publish_times: Vec<i64>,
    pub origin: Origin,
    /// One acknowledgement token per event, for sources that need acks.
    pub ack_tokens: Vec<u64>,
    /// The requested message attribute of each event (see
    /// [`Source::want_attribute`]); empty when none was requested.
    pub attributes: Vec<Option<String>>,
}

impl SourceBatch {
    /// Where event `i` came from, for dead letters (`file.ndjson:17`).
    pub fn provenance(&self, i: usize) -> String {
        match &self.origin {
            Origin::Lines { file, first } => format!("{file}:{}", first + i as u64),
            Origin::Synthetic { first } => format!("synthetic:{}", first + i as u64),
            Origin::Messages { source, ids } => format!("{source}/{}", ids.get(i).map(String::as_str).unwrap_or("?")),
        }
    }
}

/// A source of events.
pub trait Source {
    /// The next batch of at most `max` events; `None` when a bounded source ends.
    fn next_batch(&mut self, max: usize) -> Result<Option<SourceBatch>>;

    /// Asks the source to carry this message attribute with each event
    /// (event time from an attribute). Sources without attributes ignore it.
    fn want_attribute(&mut self, _name: &str) {}

    /// Acknowledges events by their tokens: their results are written.
    fn ack(&mut self, _tokens: &[u64]) {}

    /// Events delivered but not acknowledged yet.
    fn unacked(&self) -> usize {
        0
    }

    /// How long since the last message arrived, for sources that lease
    /// messages (`None`: none has arrived yet, or the source has no leases).
    /// A drain check needs it: messages leased to the client library but
    /// not handed over yet are invisible both to a peek and to `unacked`.
    fn quiet_for(&self) -> Option<std::time::Duration> {
        None
    }

    /// How the duplicate check of an at-least-once source is doing (`None`:
    /// the source delivers each event once).
    fn dedup_stats(&self) -> Option<dedup::DedupStats> {
        None
    }

    /// Hands every event not acknowledged yet back to where it came from at
    /// once (a graceful stop: another or a restarted instance gets them
    /// without waiting out their leases); returns how many.
    fn close(&mut self) -> usize {
        0
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}
