//! Telemetry types every stage records into and the status, the metrics and
//! the dead letters read: a leaf module (it imports no other module of the
//! crate), so none of them has to import another to share a type.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;

/// What a run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counters {
    /// Events read from the source.
    pub events_in: u64,
    /// Input events that produced no output (a filter dropped them).
    pub filtered: u64,
    /// Elements handed to windowing (transform outputs).
    pub elements: u64,
    /// Elements dropped as too late or for a closed window (also dead letters).
    pub late: u64,
    pub dead_letters: u64,
    pub panes: u64,
    pub transform_restarts: u64,
    /// The restarts by the kind of failure that caused them (a dead-letter
    /// reason code, such as `time_budget`).
    pub transform_restarts_by: std::collections::BTreeMap<&'static str, u64>,
    /// The last restart's reason, in full.
    pub last_restart: Option<String>,
    /// Plugin versions swapped in while running.
    pub reloads: u64,
    /// Plugin versions refused (the old one kept running).
    pub refused_reloads: u64,
    /// Transform versions quarantined after failing batch after batch.
    pub quarantines: u64,
    /// Time spent in transform calls (failures and retries included).
    #[serde(skip)]
    pub transform_time: Duration,
    /// The part of `transform_time` inside the guest (the rest is the
    /// host's read of each event and its edits).
    #[serde(skip)]
    pub transform_guest_time: Duration,
    /// Time spent in aggregate calls.
    #[serde(skip)]
    pub aggregate_time: Duration,
    /// How long each swap held up the event path.
    #[serde(skip)]
    pub reload_stalls: Vec<Duration>,
    /// The end (µs) of the latest window a pane was written for.
    #[serde(skip)]
    pub last_window_end: Option<i64>,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl Counters {
    pub fn events_per_second(&self) -> f64 {
        self.events_in as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Transform time per input event, in nanoseconds.
    pub fn transform_ns_per_event(&self) -> f64 {
        self.transform_time.as_nanos() as f64 / self.events_in.max(1) as f64
    }

    /// The part of [`Counters::transform_ns_per_event`] inside the guest.
    pub fn transform_guest_ns_per_event(&self) -> f64 {
        self.transform_guest_time.as_nanos() as f64 / self.events_in.max(1) as f64
    }

    /// Aggregate time per windowed element, in nanoseconds.
    pub fn aggregate_ns_per_event(&self) -> f64 {
        self.aggregate_time.as_nanos() as f64 / self.elements.max(1) as f64
    }
}

/// What the stages of a run record into: one place, read by the status.
#[derive(Clone, Debug, Default)]
pub struct Telemetry {
    pub counters: Counters,
    pub latency: StageLatencies,
    /// Rows the sink wrote, and rows it refused (dead letters).
    pub sink_rows: u64,
    pub sink_rejected: u64,
}

/// Bucket upper bounds, in seconds.
pub const BUCKETS: [f64; 12] = [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0];

/// A latency histogram with Prometheus' cumulative buckets.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Histogram {
    /// Observations at or under each bound of `BUCKETS` (not cumulative).
    pub(crate) counts: [u64; BUCKETS.len()],
    /// Observations over the last bound.
    pub(crate) over: u64,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        match BUCKETS.iter().position(|&b| s <= b) {
            Some(i) => self.counts[i] += 1,
            None => self.over += 1,
        }
        self.count += 1;
        self.sum_seconds += s;
    }
}

/// The stages whose per-batch latency is measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageLatencies {
    /// Waiting for and reading a source batch.
    pub source: Histogram,
    pub transform: Histogram,
    /// Key, event time and window assignment.
    pub window: Histogram,
    pub aggregate: Histogram,
    pub sink: Histogram,
}

/// How many closed windows and dead letters the snapshot keeps.
pub const RECENT: usize = 30;

/// Keeps `item` in a bounded, newest-last queue.
pub fn push_recent<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == RECENT {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// A dead letter, shortened for display.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetterSample {
    pub time: String,
    pub stage: String,
    pub reason: String,
    pub source: String,
    /// The original event, cut to 300 characters.
    pub payload: String,
}
