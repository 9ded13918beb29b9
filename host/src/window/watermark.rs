//! Watermarks: how far event time has surely progressed.
//!
//! - `end_of_input` (bounded sources such as files): the watermark stays at
//!   the beginning of time until the input ends, then jumps to infinity. Exact:
//!   no element is ever late, every window fires once, ON_TIME.
//! - `bounded` (unbounded sources): the estimate is the largest event time
//!   seen minus `max_out_of_orderness_s`; elements further behind than that
//!   are late. When no element arrives for `idle_timeout_s` of processing
//!   time, the estimate advances with the processing-time clock (as if event
//!   time kept flowing), so a quiet stream still closes its windows. An
//!   element dated more than `max_future_s` ahead of processing time is
//!   refused before it is seen (it would drag the estimate ahead, and every
//!   later element would be late): see [`WatermarkEstimator::check_time`].
//!
//! Whatever the mode, event times must lie in years 1 to 9999
//! ([`MIN_EVENT_TIME_US`], [`MAX_EVENT_TIME_US`]), so window arithmetic
//! cannot overflow and every window bound prints as a date.

use serde::{Deserialize, Serialize};

use super::assign::seconds_to_us;

/// How a pipeline file configures its watermark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum WatermarkSpec {
    EndOfInput,
    Bounded {
        #[serde(default = "default_bound")]
        max_out_of_orderness_s: f64,
        #[serde(default)]
        idle_timeout_s: Option<f64>,
        #[serde(default)]
        startup_hold_s: Option<f64>,
        /// Event times further ahead of processing time are refused.
        #[serde(default = "default_max_future")]
        max_future_s: f64,
    },
}

fn default_bound() -> f64 {
    5.0
}

fn default_max_future() -> f64 {
    300.0
}

/// 0001-01-01T00:00:00Z in µs since the epoch.
pub const MIN_EVENT_TIME_US: i64 = -62_135_596_800_000_000;
/// 9999-12-31T23:59:59.999999Z in µs since the epoch.
pub const MAX_EVENT_TIME_US: i64 = 253_402_300_799_999_999;

impl Default for WatermarkSpec {
    fn default() -> Self {
        WatermarkSpec::Bounded {
            max_out_of_orderness_s: default_bound(),
            idle_timeout_s: Some(10.0),
            startup_hold_s: None,
            max_future_s: default_max_future(),
        }
    }
}

/// Tracks the watermark of one input.
#[derive(Clone, Debug)]
pub struct WatermarkEstimator {
    /// `None` for end-of-input.
    bound: Option<i64>,
    idle_timeout: Option<i64>,
    max_event_time: i64,
    last_arrival: i64,
    hold: i64,
    /// Processing time before which the watermark stays put.
    hold_until: Option<i64>,
    /// How far ahead of processing time an event time may be (bounded only).
    max_future: Option<i64>,
}

impl WatermarkEstimator {
    pub fn new(spec: &WatermarkSpec) -> Result<Self, String> {
        let (bound, idle_timeout, hold, max_future) = match spec {
            WatermarkSpec::EndOfInput => (None, None, 0, None),
            WatermarkSpec::Bounded { max_out_of_orderness_s, idle_timeout_s, startup_hold_s, max_future_s } => {
                let bound =
                    if *max_out_of_orderness_s == 0.0 { 0 } else { seconds_to_us("max_out_of_orderness_s", *max_out_of_orderness_s)? };
                let idle = idle_timeout_s.map(|s| seconds_to_us("idle_timeout_s", s)).transpose()?;
                let hold = match startup_hold_s {
                    Some(s) if *s > 0.0 => seconds_to_us("startup_hold_s", *s)?,
                    _ => 0,
                };
                let max_future = seconds_to_us("[watermark] max_future_s", *max_future_s)?;
                (Some(bound), idle, hold, Some(max_future))
            }
        };
        Ok(Self { bound, idle_timeout, max_event_time: i64::MIN, last_arrival: i64::MIN, hold, hold_until: None, max_future })
    }

    /// Refuses an event time outside years 1 to 9999, or (bounded) more
    /// than `max_future_s` ahead of processing time `now`; the reason says
    /// which, and what to change.
    pub fn check_time(&self, ts: i64, now: i64) -> Result<(), TimeRefusal> {
        if !(MIN_EVENT_TIME_US..=MAX_EVENT_TIME_US).contains(&ts) {
            return Err(TimeRefusal::OutOfRange(ts));
        }
        match self.max_future {
            Some(ahead) if ts > now.saturating_add(ahead) => Err(TimeRefusal::Future { ts, now, ahead }),
            _ => Ok(()),
        }
    }

    /// Sets the start-up hold unless the file configured one.
    pub fn default_startup_hold(&mut self, hold_us: i64) {
        if self.hold == 0 {
            self.hold = hold_us;
        }
    }

    /// Records an element's event time, arriving at processing time `now`.
    pub fn observe(&mut self, event_time: i64, now: i64) {
        self.max_event_time = self.max_event_time.max(event_time);
        self.last_arrival = now;
        self.hold_until.get_or_insert(now.saturating_add(self.hold));
    }

    /// Records an element published before this run started (messages an
    /// earlier run held and did not acknowledge, or a backlog): the start-up
    /// hold lasts until `hold` after the last such element, so messages that
    /// come back late after a crash do not find their windows closed.
    pub fn observe_earlier(&mut self, now: i64) {
        if self.hold > 0 {
            let until = now.saturating_add(self.hold);
            self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
        }
    }

    /// The pipeline did not run for `gap_us` (a paused or starved process,
    /// a closed laptop lid): that is not quiet time, since nothing could be
    /// seen to arrive, and the source has likely kept what was published
    /// meanwhile; the idle clock resumes where it stood. Without this a
    /// 90 s pause advanced the watermark past everything published in it,
    /// and each such message became a late pane of its own.
    pub fn not_running_for(&mut self, gap_us: i64) {
        if self.last_arrival != i64::MIN {
            self.last_arrival = self.last_arrival.saturating_add(gap_us.max(0));
        }
    }

    /// The watermark at processing time `now`.
    pub fn current(&self, now: i64) -> i64 {
        let Some(bound) = self.bound else {
            return i64::MIN;
        };
        if self.max_event_time == i64::MIN || self.hold_until.is_some_and(|h| now < h) {
            return i64::MIN;
        }
        let mut wm = self.max_event_time.saturating_sub(bound);
        if let Some(idle) = self.idle_timeout {
            let quiet = now.saturating_sub(self.last_arrival);
            if quiet >= idle {
                wm = wm.max(self.max_event_time.saturating_add(quiet - idle));
            }
        }
        wm
    }
}

/// Why an event time is refused before windowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeRefusal {
    /// Outside years 1 to 9999.
    OutOfRange(i64),
    /// More than `ahead` µs ahead of processing time `now`.
    Future { ts: i64, now: i64, ahead: i64 },
}

impl std::fmt::Display for TimeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            TimeRefusal::OutOfRange(ts) => {
                write!(f, "event time {ts} µs is outside years 1 to 9999: check the event's time field and [event] time_format")
            }
            TimeRefusal::Future { ts, now, ahead } => write!(
                f,
                "event time {ts} µs is {:.0} s ahead of processing time, more than [watermark] max_future_s ({:.0} s); \
                 it would move the watermark past every later event",
                (ts - now) as f64 / 1e6,
                ahead as f64 / 1e6
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_far_ahead_or_outside_the_calendar_are_refused() {
        let bounded = WatermarkEstimator::new(&WatermarkSpec::default()).unwrap();
        let now = 1_700_000_000_000_000;
        assert_eq!(bounded.check_time(now + 299_000_000, now), Ok(()));
        let refusal = bounded.check_time(4_102_444_800_000_000, now).unwrap_err();
        assert!(matches!(refusal, TimeRefusal::Future { .. }));
        assert!(refusal.to_string().contains("max_future_s (300 s)"), "{refusal}");
        for ts in [i64::MAX, i64::MIN, MAX_EVENT_TIME_US + 1, MIN_EVENT_TIME_US - 1] {
            assert_eq!(bounded.check_time(ts, now), Err(TimeRefusal::OutOfRange(ts)));
        }
        // A file is read whole: no clock to be ahead of, but the calendar holds.
        let exact = WatermarkEstimator::new(&WatermarkSpec::EndOfInput).unwrap();
        assert_eq!(exact.check_time(4_102_444_800_000_000, now), Ok(()));
        assert!(exact.check_time(i64::MAX, now).is_err());
    }

    #[test]
    fn messages_from_before_the_start_extend_the_hold() {
        let spec =
            WatermarkSpec::Bounded { max_out_of_orderness_s: 0.0, idle_timeout_s: None, startup_hold_s: Some(10.0), max_future_s: 300.0 };
        let mut w = WatermarkEstimator::new(&spec).unwrap();
        w.observe(500_000_000, 0);
        assert_eq!(w.current(9_000_000), i64::MIN, "held");
        w.observe_earlier(8_000_000);
        assert_eq!(w.current(17_000_000), i64::MIN, "held 10 s past the last earlier message");
        assert_eq!(w.current(18_000_000), 500_000_000);
    }

    #[test]
    fn bounded_estimate_trails_the_largest_event_time() {
        let spec =
            WatermarkSpec::Bounded { max_out_of_orderness_s: 5.0, idle_timeout_s: Some(10.0), startup_hold_s: None, max_future_s: 300.0 };
        let mut w = WatermarkEstimator::new(&spec).unwrap();
        assert_eq!(w.current(0), i64::MIN);
        w.observe(100_000_000, 0);
        w.observe(90_000_000, 0);
        assert_eq!(w.current(1), 95_000_000);
        // Quiet for 12 s: 2 s past the idle timeout.
        assert_eq!(w.current(12_000_000), 102_000_000);
    }

    #[test]
    fn time_the_pipeline_did_not_run_is_not_quiet_time() {
        let spec =
            WatermarkSpec::Bounded { max_out_of_orderness_s: 5.0, idle_timeout_s: Some(10.0), startup_hold_s: None, max_future_s: 300.0 };
        let mut w = WatermarkEstimator::new(&spec).unwrap();
        w.observe(100_000_000, 0);
        // Paused from 1 s to 91 s: on waking, 91 s have passed, but only
        // 1 s of them was spent waiting for input.
        w.not_running_for(90_000_000);
        assert_eq!(w.current(91_000_000), 95_000_000, "not idle: the bound still holds");
        assert_eq!(w.current(102_000_000), 102_000_000, "idle once 11 s of running time were quiet");
    }

    #[test]
    fn the_startup_hold_keeps_the_watermark_still() {
        let spec =
            WatermarkSpec::Bounded { max_out_of_orderness_s: 0.0, idle_timeout_s: None, startup_hold_s: Some(15.0), max_future_s: 300.0 };
        let mut w = WatermarkEstimator::new(&spec).unwrap();
        w.observe(100_000_000, 1_000_000);
        assert_eq!(w.current(15_999_999), i64::MIN);
        assert_eq!(w.current(16_000_000), 100_000_000);
    }

    #[test]
    fn end_of_input_never_advances_by_itself() {
        let mut w = WatermarkEstimator::new(&WatermarkSpec::EndOfInput).unwrap();
        w.observe(100, 0);
        assert_eq!(w.current(1_000_000_000), i64::MIN);
    }
}
