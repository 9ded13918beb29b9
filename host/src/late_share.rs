//! How much of the stream is being dropped as late, lately.
//!
//! Totals since the start hide a problem that starts mid-run (the second
//! pass of a looped replay, a watermark bound that is too tight for how the
//! source delivers), and a share since the start never recovers from a bad
//! first minute. [`LateShare`] keeps per-interval counts of elements that
//! reached windowing and of those refused as late, over a sliding span of
//! processing time, so `runnel status`, the dashboard and `/metrics` can
//! say "x % of the last five minutes' events were dropped as late" and, past
//! a threshold, name the settings that decide it. The run log says so once.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The span the share is computed over.
pub const SPAN_US: i64 = 5 * 60 * 1_000_000;
/// Counts are kept per interval of this length.
const BUCKET_US: i64 = 10 * 1_000_000;
/// Above this share (with at least [`MIN_ELEMENTS`] elements) a warning is raised.
pub const WARN_SHARE: f64 = 0.01;
/// Fewer elements than this in the span say too little to warn about.
const MIN_ELEMENTS: u64 = 100;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    start: i64,
    elements: u64,
    late: u64,
}

/// Sliding counts of elements and late elements.
#[derive(Clone, Debug, Default)]
pub struct LateShare {
    buckets: VecDeque<Bucket>,
    /// What to change, named in the warning (from the pipeline file).
    advice: String,
    warned: bool,
}

/// The share over the span, for the status and the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentLateness {
    /// Elements that reached windowing in the span (late ones included).
    pub elements: u64,
    /// Of those, dropped as late (or for a closed window).
    pub late: u64,
    /// `late / elements`, 0 when there were none.
    pub share: f64,
    /// The span, in seconds (shorter while the run is younger than it).
    pub span_s: u64,
    /// Set when the share is above the threshold: what is happening and
    /// which setting to change.
    pub warning: Option<String>,
}

impl LateShare {
    /// `advice` names the settings that decide lateness in this pipeline.
    pub fn new(advice: String) -> Self {
        Self { advice, ..Self::default() }
    }

    /// Records a batch's counts at processing time `now` (µs).
    pub fn record(&mut self, now: i64, elements: u64, late: u64) {
        let start = now - now.rem_euclid(BUCKET_US);
        match self.buckets.back_mut() {
            Some(b) if b.start == start => {
                b.elements += elements;
                b.late += late;
            }
            _ => self.buckets.push_back(Bucket { start, elements, late }),
        }
        while self.buckets.front().is_some_and(|b| b.start + BUCKET_US <= now - SPAN_US) {
            self.buckets.pop_front();
        }
    }

    /// The share over the span ending at `now`.
    pub fn recent(&self, now: i64) -> RecentLateness {
        let live = self.buckets.iter().filter(|b| b.start + BUCKET_US > now - SPAN_US);
        let (elements, late) = live.fold((0, 0), |(e, l), b| (e + b.elements, l + b.late));
        let first = self.buckets.front().map_or(now, |b| b.start.max(now - SPAN_US));
        let share = if elements == 0 { 0.0 } else { late as f64 / elements as f64 };
        let span_s = ((now - first).max(0) / 1_000_000) as u64;
        let warning = (elements >= MIN_ELEMENTS && share > WARN_SHARE).then(|| {
            format!(
                "{:.1}% of the events of the last {} were dropped as late ({late} of {elements}): {}",
                share * 100.0,
                minutes(span_s),
                self.advice
            )
        });
        RecentLateness { elements, late, share, span_s, warning }
    }

    /// The warning the first time the share crosses the threshold (for the
    /// run log, which says it once), `None` otherwise.
    pub fn first_warning(&mut self, now: i64) -> Option<String> {
        if self.warned {
            return None;
        }
        let warning = self.recent(now).warning?;
        self.warned = true;
        Some(warning)
    }
}

fn minutes(span_s: u64) -> String {
    match span_s {
        0..=89 => format!("{span_s} s"),
        _ => format!("{} minutes", (span_s + 30) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn a_share_below_the_threshold_or_on_few_elements_raises_no_warning() {
        let mut l = LateShare::new("change x".into());
        l.record(0, 50, 10);
        assert_eq!(l.recent(S).warning, None, "50 elements say too little");
        l.record(2 * S, 10_000, 0);
        let r = l.recent(3 * S);
        assert_eq!((r.elements, r.late), (10_050, 10));
        assert!(r.share < WARN_SHARE && r.warning.is_none());
    }

    #[test]
    fn the_warning_names_the_share_and_the_advice_and_is_logged_once() {
        let mut l = LateShare::new("raise [watermark] max_out_of_orderness_s".into());
        l.record(0, 1_000, 300);
        let w = l.recent(60 * S).warning.expect("30% is above the threshold");
        assert!(w.starts_with("30.0% of the events of the last 60 s were dropped as late (300 of 1000)"), "{w}");
        assert!(w.ends_with("raise [watermark] max_out_of_orderness_s"), "{w}");
        assert!(l.first_warning(60 * S).is_some());
        l.record(61 * S, 1_000, 500);
        assert_eq!(l.first_warning(62 * S), None, "the log says it once");
    }

    #[test]
    fn old_intervals_leave_the_span() {
        let mut l = LateShare::new(String::new());
        l.record(0, 1_000, 1_000);
        l.record(SPAN_US + 20 * S, 1_000, 0);
        let r = l.recent(SPAN_US + 20 * S);
        assert_eq!((r.elements, r.late), (1_000, 0), "the first interval has left the span");
        assert_eq!(r.warning, None);
        assert_eq!(l.buckets.len(), 1);
    }
}
