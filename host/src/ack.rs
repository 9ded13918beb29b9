//! Acknowledgements: an input message is acknowledged only once every pane
//! it contributed to has been written (at-least-once delivery).
//!
//! A message's elements are held until the watermark passes the time their
//! windows are collected (end + allowed lateness; for sessions, the session
//! as it grows). Panes and dead letters are written before any release, so a
//! crash never loses an acknowledged message's results; it can only cause
//! redelivery (and duplicate rows, which the BigQuery sink's insertIds let
//! BigQuery drop). Messages that produced no element (filtered or
//! dead-lettered) are released at the next write.

use std::collections::BTreeMap;

use crate::window::WindowEngine;

struct Held {
    token: u64,
    /// For sessions: the key and event time to look the session up again.
    session: Option<(Box<str>, i64)>,
}

/// Messages waiting for their results to be written.
#[derive(Default)]
pub struct AckTracker {
    held: BTreeMap<i64, Vec<Held>>,
    count: usize,
}

impl AckTracker {
    /// Holds `token` until the watermark reaches `until`.
    pub fn hold(&mut self, token: u64, until: i64, session: Option<(Box<str>, i64)>) {
        self.held.entry(until).or_default().push(Held { token, session });
        self.count += 1;
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The tokens whose results are all written, given the engine's
    /// watermark (call after writing the panes that watermark fired).
    pub fn release(&mut self, engine: &WindowEngine) -> Vec<u64> {
        let wm = engine.watermark();
        let mut out = Vec::new();
        let mut again = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > wm {
                break;
            }
            for h in entry.remove() {
                match h.session.as_ref().and_then(|(k, ts)| engine.session_retire(k, *ts)) {
                    Some(later) if later > wm => again.push((later, h)),
                    _ => out.push(h.token),
                }
            }
        }
        for (until, h) in again {
            self.held.entry(until).or_default().push(h);
        }
        self.count -= out.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::AckTracker;
    use crate::window::trigger::{Trigger, TriggerSpec};
    use crate::window::{EngineConfig, WindowEngine, WindowFn};

    fn engine() -> WindowEngine {
        WindowEngine::new(EngineConfig {
            window_fn: WindowFn::Fixed { size: 60 },
            trigger: Trigger::compile(&TriggerSpec::Default).expect("the default trigger"),
            accumulating: false,
            allowed_lateness: 0,
        })
    }

    #[test]
    fn a_message_is_acknowledged_once_the_watermark_passes_its_windows() {
        let mut engine = engine();
        let mut acks = AckTracker::default();
        acks.hold(1, 59, None);
        acks.hold(2, 119, None);
        acks.hold(3, i64::MIN, None); // filtered: nothing to wait for
        assert_eq!(acks.release(&engine), vec![3], "only what produced no element is free at once");
        engine.advance_watermark(59);
        assert_eq!(acks.release(&engine), vec![1]);
        assert_eq!(acks.len(), 1);
        engine.advance_watermark(118);
        assert!(acks.release(&engine).is_empty(), "one microsecond before its window retires, it is still held");
        engine.advance_watermark(i64::MAX);
        assert_eq!(acks.release(&engine), vec![2]);
        assert!(acks.is_empty());
    }
}
