//! Window assigners: which event-time windows an element belongs to (Beam's
//! `WindowFn`): fixed, sliding, session (merging) and global.
//!
//! Windows are half-open `[start, end)` in microseconds since the epoch.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// Beam's `GlobalWindow` bounds, in microseconds (as the replay format reports them).
pub const GLOBAL_START_US: i64 = -9_223_372_036_854_775_000;
pub const GLOBAL_END_US: i64 = 9_223_371_950_454_775_000;

/// An event-time window `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// Whether the two windows share any instant (touching ends do not).
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn union(&self, other: &Window) -> Window {
        Window { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// How windows are configured in pipeline files and replay scenarios.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowSpec {
    Fixed { size_s: f64 },
    Sliding { size_s: f64, period_s: f64 },
    Session { gap_s: f64 },
    Global,
}

/// A validated window assigner, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowFn {
    Fixed { size: i64 },
    Sliding { size: i64, period: i64 },
    Session { gap: i64 },
    Global,
}

/// Seconds (as written in configs) to microseconds, refusing non-positive values.
pub fn seconds_to_us(what: &str, seconds: f64) -> Result<i64, String> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e12) {
        return Err(format!("{what} must be a positive number of seconds, got {seconds}"));
    }
    Ok((seconds * 1e6).round() as i64)
}

impl WindowFn {
    pub fn from_spec(spec: &WindowSpec) -> Result<Self, String> {
        Ok(match *spec {
            WindowSpec::Fixed { size_s } => WindowFn::Fixed { size: seconds_to_us("window size_s", size_s)? },
            WindowSpec::Sliding { size_s, period_s } => {
                let size = seconds_to_us("window size_s", size_s)?;
                let period = seconds_to_us("window period_s", period_s)?;
                if period > size {
                    return Err(format!(
                        "a sliding window's period_s ({period_s}) must not exceed its size_s ({size_s}); \
                         with a longer period some events would fall in no window"
                    ));
                }
                WindowFn::Sliding { size, period }
            }
            WindowSpec::Session { gap_s } => WindowFn::Session { gap: seconds_to_us("window gap_s", gap_s)? },
            WindowSpec::Global => WindowFn::Global,
        })
    }

    /// Session windows merge; the others never do.
    pub fn is_merging(&self) -> bool {
        matches!(self, WindowFn::Session { .. })
    }

    /// The windows an element with event time `ts` belongs to. For sessions
    /// this is the element's own proto-window `[ts, ts + gap)`, before merging.
    pub fn assign(&self, ts: i64, out: &mut SmallVec<[Window; 4]>) {
        out.clear();
        match *self {
            WindowFn::Fixed { size } => {
                // Saturating: event times are checked to lie in years 1 to
                // 9999 before they get here, this is only a second guard.
                let start = ts - ts.rem_euclid(size);
                out.push(Window { start, end: start.saturating_add(size) });
            }
            WindowFn::Sliding { size, period } => {
                let mut start = ts - ts.rem_euclid(period);
                while start > ts.saturating_sub(size) {
                    out.push(Window { start, end: start.saturating_add(size) });
                    start = start.saturating_sub(period);
                }
            }
            WindowFn::Session { gap } => out.push(Window { start: ts, end: ts.saturating_add(gap) }),
            WindowFn::Global => out.push(Window { start: GLOBAL_START_US, end: GLOBAL_END_US }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign(f: WindowFn, ts: i64) -> Vec<Window> {
        let mut out = SmallVec::new();
        f.assign(ts, &mut out);
        let mut v = out.to_vec();
        v.sort();
        v
    }

    #[test]
    fn fixed_windows_are_half_open_and_handle_negative_times() {
        let f = WindowFn::Fixed { size: 60 };
        assert_eq!(assign(f, 0), vec![Window { start: 0, end: 60 }]);
        assert_eq!(assign(f, 59), vec![Window { start: 0, end: 60 }]);
        assert_eq!(assign(f, 60), vec![Window { start: 60, end: 120 }]);
        assert_eq!(assign(f, -1), vec![Window { start: -60, end: 0 }]);
    }

    #[test]
    fn sliding_windows_start_at_multiples_of_the_period() {
        let f = WindowFn::Sliding { size: 60, period: 15 };
        let w = assign(f, 61);
        assert_eq!(w.len(), 4);
        assert_eq!(w[0], Window { start: 15, end: 75 });
        assert_eq!(w[3], Window { start: 60, end: 120 });
        assert!(w.iter().all(|w| w.start <= 61 && 61 < w.end));
    }

    #[test]
    fn sessions_touching_at_the_gap_do_not_overlap() {
        let a = Window { start: 0, end: 30 };
        let b = Window { start: 30, end: 60 };
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&Window { start: 29, end: 59 }));
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let e = WindowFn::from_spec(&WindowSpec::Sliding { size_s: 10.0, period_s: 20.0 }).unwrap_err();
        assert!(e.contains("must not exceed"));
        assert!(WindowFn::from_spec(&WindowSpec::Fixed { size_s: 0.0 }).is_err());
    }
}
