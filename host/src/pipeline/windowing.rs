//! The windowing stage: each element's event time checked, the watermark
//! told, the element handed to the window engine (or dead-lettered as late,
//! for a closed window, or for a time no window can hold), and for each
//! source event of the batch, how long its windows hold it (what the ack
//! tracker waits for).

use anyhow::Result;

use crate::batch::EventBatch;
use crate::deadletter::{DeadLetters, Reason, Stage};
use crate::plugin::transform::OutputBytes;
use crate::source::SourceBatch;
use crate::telemetry::Counters;
use crate::window::watermark::{TimeRefusal, WatermarkEstimator};
use crate::window::{Admission, WindowEngine};

/// One element offered to windowing.
pub(super) struct Element<'a> {
    pub key: &'a str,
    /// Event time, µs.
    pub ts: i64,
    /// The element's bytes, its source event's as the transform left them:
    /// written out only to be dead-lettered or kept for an aggregate that
    /// reads payloads.
    pub output: OutputBytes<'a>,
    /// Its source event's index in the batch.
    pub source: u32,
}

pub(super) struct WindowStage {
    pub engine: WindowEngine,
    pub watermark: WatermarkEstimator,
    /// Whether the aggregate reads elements' payloads (set per batch).
    pub needs_payload: bool,
    /// The current batch's element payloads (when the aggregate reads them).
    pub agg_events: EventBatch,
    /// For each element of the current batch: its source event's index.
    pub element_sources: Vec<u32>,
    /// For each source event of the current batch: when its windows retire.
    pub hold_until: Vec<i64>,
    /// For sessions: a key and time of each source event, to find its session.
    pub hold_session: Vec<Option<(Box<str>, i64)>>,
    /// When this run started (µs): messages published before it are
    /// redeliveries or a backlog, and extend the watermark's start-up hold.
    pub run_started_us: i64,
}

impl WindowStage {
    pub fn new(engine: WindowEngine, watermark: WatermarkEstimator) -> Self {
        Self {
            engine,
            watermark,
            needs_payload: false,
            agg_events: EventBatch::default(),
            element_sources: Vec::new(),
            hold_until: Vec::new(),
            hold_session: Vec::new(),
            run_started_us: crate::source::now_us(),
        }
    }

    /// Clears the element tables for a batch of `events` source events;
    /// `acked` when they are messages to acknowledge (their holds counted).
    pub fn start_batch(&mut self, events: usize, acked: bool) {
        self.agg_events.clear();
        self.element_sources.clear();
        self.hold_until.clear();
        self.hold_until.resize(events, i64::MIN);
        self.hold_session.clear();
        if acked && self.engine.is_merging() {
            self.hold_session.resize(events, None);
        }
    }

    /// Hands one element to the window engine, dead-lettering it if its
    /// time is refused or it is late.
    pub fn admit(&mut self, e: Element<'_>, batch: &SourceBatch, now: i64, dead: &mut DeadLetters, counters: &mut Counters) -> Result<()> {
        let Element { key, ts, output, source } = e;
        // Checked before the watermark sees it: one event dated 2100 must not
        // make every later event late, nor a time near i64::MAX overflow a window.
        if let Err(refusal) = self.watermark.check_time(ts, now) {
            let code = match refusal {
                TimeRefusal::OutOfRange(_) => Reason::TimeOutOfRange,
                TimeRefusal::Future { .. } => Reason::FutureTime,
            };
            return dead.write((Stage::Window, code), &refusal.to_string(), batch.provenance(source as usize), None, &output.bytes());
        }
        let element = self.element_sources.len() as u32;
        self.element_sources.push(source);
        if self.needs_payload {
            output.push_to(&mut self.agg_events);
        }
        counters.elements += 1;
        self.watermark.observe(ts, now);
        if !batch.ack_tokens.is_empty() && batch.publish_times.get(source as usize).is_some_and(|&p| p < self.run_started_us) {
            self.watermark.observe_earlier(now);
        }
        match self.engine.process(key, ts, element) {
            Admission::Accepted => {
                let s = source as usize;
                let until = self.engine.retire_time(ts);
                if until > self.hold_until[s] {
                    self.hold_until[s] = until;
                    if let Some(slot) = self.hold_session.get_mut(s) {
                        *slot = Some((key.into(), ts));
                    }
                }
                Ok(())
            }
            Admission::Late => {
                counters.late += 1;
                let reason =
                    format!("late: event time {ts} is behind the watermark {} by more than the allowed lateness", self.engine.watermark());
                dead.write((Stage::Window, Reason::Late), &reason, batch.provenance(source as usize), None, &output.bytes())
            }
            Admission::Closed => {
                counters.late += 1;
                dead.write(
                    (Stage::Window, Reason::WindowClosed),
                    "window closed: its trigger has finished (Beam drops such elements)",
                    batch.provenance(source as usize),
                    None,
                    &output.bytes(),
                )
            }
        }
    }
}
