//! What a running pipeline tells the outside: its counters, the plugin
//! versions it runs, and the history of reloads, refusals and quarantines.
//! The pipeline updates it between batches; the admin server (and tests)
//! read it.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::plugin::reload::ReloadOutcome;
pub use crate::telemetry::{push_recent, Counters, DeadLetterSample, StageLatencies, RECENT};

/// How many reload events are kept.
const HISTORY: usize = 100;

/// One reload, refusal or quarantine.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadEvent {
    /// RFC 3339, UTC.
    pub time: String,
    #[serde(flatten)]
    pub outcome: ReloadOutcome,
}

/// A snapshot of a running pipeline.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    /// `name@hash` of the running transform, if any.
    pub transform: Option<String>,
    /// `name@hash` of the running aggregate.
    pub aggregate: String,
    /// The aggregate version still finishing windows opened before a swap
    /// to another state format, and how many it has left.
    pub retiring_aggregate: Option<(String, usize)>,
    pub counters: CounterSnapshot,
    /// Newest last.
    pub reloads: VecDeque<ReloadEvent>,
    /// False once the pipeline has ended.
    pub running: bool,
    /// The input watermark (µs), once it has moved.
    pub watermark_us: Option<i64>,
    /// Processing time (µs) when the snapshot was taken.
    pub processing_time_us: i64,
    pub open_windows: u64,
    pub keys: u64,
    /// Rows the sink accepted, and refused.
    pub sink_rows: u64,
    pub sink_rejected: u64,
    pub sink_retries: u64,
    /// (stage, kind of reason, count).
    pub dead_letters_by_reason: Vec<(String, String, u64)>,
    /// The latest dead letters, newest last.
    pub recent_dead_letters: VecDeque<DeadLetterSample>,
    /// The latest closed windows' most active keys, newest last.
    pub recent_windows: VecDeque<WindowTop>,
    pub latency: StageLatencies,
    /// Elements dropped as late over the last minutes, with a warning
    /// naming the setting to change when the share is high.
    pub late_recent: crate::late_share::RecentLateness,
}

/// A closed window's most active keys (its final panes, by value).
#[derive(Clone, Debug, Serialize)]
pub struct WindowTop {
    pub start: String,
    pub end: String,
    /// Keys with a pane in the window.
    pub keys: usize,
    /// The top keys and their values, largest first.
    pub top: Vec<(String, serde_json::Value)>,
}

/// Keys listed per closed window.
pub const TOP_KEYS: usize = 10;

/// The counters, as numbers for JSON: the run's counters plus what is
/// derived from them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CounterSnapshot {
    #[serde(flatten)]
    pub counts: Counters,
    pub transform_ns_per_event: f64,
    pub aggregate_ns_per_event: f64,
    /// Input messages delivered and not acknowledged yet (held for open windows).
    pub unacked_messages: u64,
    /// Seconds since the source last delivered a message (sources with
    /// leases only, once one has arrived).
    pub source_quiet_s: Option<f64>,
    /// The duplicate check of an at-least-once source (Pub/Sub): duplicates
    /// dropped and ids remembered.
    pub source_dedup: Option<crate::source::dedup::DedupStats>,
    /// RFC 3339 end of the latest window a pane was written for.
    pub last_window_end: Option<String>,
}

impl From<&Counters> for CounterSnapshot {
    fn from(c: &Counters) -> Self {
        Self {
            counts: Counters { reload_stalls: Vec::new(), ..c.clone() },
            transform_ns_per_event: c.transform_ns_per_event(),
            aggregate_ns_per_event: c.aggregate_ns_per_event(),
            unacked_messages: 0,
            source_quiet_s: None,
            source_dedup: None,
            last_window_end: c
                .last_window_end
                .and_then(|us| chrono::DateTime::from_timestamp_micros(us).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))),
        }
    }
}

/// The shared, live status.
#[derive(Clone, Default)]
pub struct LiveStatus(Arc<Mutex<Snapshot>>);

impl LiveStatus {
    pub fn snapshot(&self) -> Snapshot {
        self.0.lock().expect("not poisoned").clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self.0.lock().expect("not poisoned"));
    }

    /// Records a reload outcome in the history.
    pub fn record(&self, outcome: ReloadOutcome) {
        self.update(|s| {
            if s.reloads.len() == HISTORY {
                s.reloads.pop_front();
            }
            s.reloads.push_back(ReloadEvent { time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), outcome });
        });
    }
}
