//! Watermarks: how far event time has surely progressed.
//!
//! - `end_of_input` (bounded sources such as files): the watermark stays at
//!   the beginning of time until the input ends, then jumps to infinity. Exact:
//!   no element is ever late, every window fires once, ON_TIME.
//! - `bounded` (unbounded sources): the estimate is the largest event time
//!   seen minus `max_out_of_orderness_s`; elements further behind than that
//!   are late. When no element arrives for `idle_timeout_s` of processing
//!   time, the estimate advances with the processing-time clock (as if event
//!   time kept flowing), so a quiet stream still closes its windows.

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
    },
}

fn default_bound() -> f64 {
    5.0
}

impl Default for WatermarkSpec {
    fn default() -> Self {
        WatermarkSpec::Bounded {
            max_out_of_orderness_s: default_bound(),
            idle_timeout_s: Some(10.0),
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
}

impl WatermarkEstimator {
    pub fn new(spec: &WatermarkSpec) -> Result<Self, String> {
        let (bound, idle_timeout) = match spec {
            WatermarkSpec::EndOfInput => (None, None),
            WatermarkSpec::Bounded {
                max_out_of_orderness_s,
                idle_timeout_s,
            } => {
                let bound = if *max_out_of_orderness_s == 0.0 {
                    0
                } else {
                    seconds_to_us("max_out_of_orderness_s", *max_out_of_orderness_s)?
                };
                let idle = idle_timeout_s
                    .map(|s| seconds_to_us("idle_timeout_s", s))
                    .transpose()?;
                (Some(bound), idle)
            }
        };
        Ok(Self {
            bound,
            idle_timeout,
            max_event_time: i64::MIN,
            last_arrival: i64::MIN,
        })
    }

    /// Records an element's event time, arriving at processing time `now`.
    pub fn observe(&mut self, event_time: i64, now: i64) {
        self.max_event_time = self.max_event_time.max(event_time);
        self.last_arrival = now;
    }

    /// The watermark at processing time `now`.
    pub fn current(&self, now: i64) -> i64 {
        let Some(bound) = self.bound else {
            return i64::MIN;
        };
        if self.max_event_time == i64::MIN {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_estimate_trails_the_largest_event_time() {
        let spec = WatermarkSpec::Bounded {
            max_out_of_orderness_s: 5.0,
            idle_timeout_s: Some(10.0),
        };
        let mut w = WatermarkEstimator::new(&spec).unwrap();
        assert_eq!(w.current(0), i64::MIN);
        w.observe(100_000_000, 0);
        w.observe(90_000_000, 1);
        assert_eq!(w.current(1), 95_000_000);
        // Quiet for 12 s: 2 s past the idle timeout.
        assert_eq!(w.current(12_000_000), 102_000_000);
    }

    #[test]
    fn end_of_input_never_advances_by_itself() {
        let mut w = WatermarkEstimator::new(&WatermarkSpec::EndOfInput).unwrap();
        w.observe(100, 0);
        assert_eq!(w.current(1_000_000_000), i64::MIN);
    }
}
