//! Triggers: when a window's pane fires, with the semantics of Apache Beam's
//! Java trigger state machines (which Dataflow follows).
//!
//! A [`TriggerSpec`] (from a pipeline file or a replay scenario) compiles to a
//! [`Trigger`]: a flat tree of nodes. Each (key, window) carries only a small
//! array of [`NodeState`] — one entry per node — so the per-window cost of a
//! trigger is a few bytes, and no trigger object is allocated per window.
//!
//! Supported: `default`, `after_watermark` with optional `early` and `late`
//! firings, `after_count`, `after_processing_time` (delay from the first
//! element of the pane), `repeatedly`, `after_any`, `after_all`.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::assign::seconds_to_us;

/// A trigger as written in configs and scenarios.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerSpec {
    /// Beam's DefaultTrigger: `repeatedly(after_watermark)`, one ON_TIME pane
    /// and one LATE pane per late element.
    Default,
    /// Fires once when the watermark passes the end of the window; with
    /// `early`/`late` sub-triggers that repeat before and after that point.
    AfterWatermark {
        #[serde(default)]
        early: Option<Box<TriggerSpec>>,
        #[serde(default)]
        late: Option<Box<TriggerSpec>>,
    },
    /// Fires once the pane holds at least `count` elements.
    AfterCount { count: u32 },
    /// Fires `delay_s` of processing time after the pane's first element.
    AfterProcessingTime { delay_s: f64 },
    /// Fires every time `of` would fire; never finishes.
    Repeatedly { of: Box<TriggerSpec> },
    /// Fires when any of `of` fires; finishes when any finishes.
    AfterAny { of: Vec<TriggerSpec> },
    /// Fires when all of `of` have fired; finishes when all have finished.
    AfterAll { of: Vec<TriggerSpec> },
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Default,
    /// `after_watermark` with no sub-triggers: a once-trigger.
    EndOfWindow,
    /// `after_watermark` with sub-triggers; `early` is a `Never` node when absent.
    EarlyAndLate {
        early: usize,
        late: Option<usize>,
    },
    Never,
    Count(u32),
    ProcessingTime(i64),
    Repeatedly(usize),
    Any(Vec<usize>),
    All(Vec<usize>),
}

/// A compiled trigger; node 0 is the root.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    nodes: Vec<Node>,
}

/// "No processing-time deadline".
const NO_DEADLINE: i64 = i64::MAX;

/// The state one trigger node keeps for one (key, window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    finished: bool,
    count: u32,
    deadline: i64,
}

impl NodeState {
    /// The processing-time deadline this node waits for, if any.
    pub fn pending_deadline(&self) -> Option<i64> {
        (self.deadline != NO_DEADLINE).then_some(self.deadline)
    }
}

impl Default for NodeState {
    fn default() -> Self {
        Self { finished: false, count: 0, deadline: NO_DEADLINE }
    }
}

/// One (key, window)'s trigger state: inline for one node (`default`,
/// `after_watermark`, `after_count`...), on the heap for composite triggers.
pub type TriggerState = SmallVec<[NodeState; 1]>;

/// What a trigger sees when asked about one window.
pub struct TriggerContext {
    /// The input watermark.
    pub watermark: i64,
    /// The processing-time clock.
    pub processing_time: i64,
    /// The window's end (exclusive).
    pub window_end: i64,
    /// Processing-time timers the trigger asks for (absolute times).
    pub timers: SmallVec<[i64; 1]>,
}

impl TriggerContext {
    pub fn new(watermark: i64, processing_time: i64, window_end: i64) -> Self {
        Self { watermark, processing_time, window_end, timers: SmallVec::new() }
    }

    /// Beam: the input watermark is past the window's max timestamp, i.e.
    /// it has reached the (exclusive) end.
    fn end_of_window_reached(&self) -> bool {
        self.watermark >= self.window_end
    }
}

impl Trigger {
    pub fn compile(spec: &TriggerSpec) -> Result<Self, String> {
        let mut nodes = Vec::new();
        compile_into(spec, &mut nodes)?;
        Ok(Self { nodes })
    }

    /// A fresh state for a new window.
    pub fn new_state(&self) -> TriggerState {
        SmallVec::from_elem(NodeState::default(), self.nodes.len())
    }

    /// Whether the whole trigger has finished (the window is closed).
    pub fn is_finished(&self, state: &TriggerState) -> bool {
        state[0].finished
    }

    pub fn on_element(&self, state: &mut TriggerState, ctx: &mut TriggerContext) {
        self.element(0, state, ctx);
    }

    pub fn should_fire(&self, state: &TriggerState, ctx: &TriggerContext) -> bool {
        !state[0].finished && self.fire_ready(0, state, ctx)
    }

    /// Records a firing; afterwards [`Trigger::is_finished`] tells whether
    /// the window is closed.
    pub fn on_fire(&self, state: &mut TriggerState, ctx: &TriggerContext) {
        self.fire(0, state, ctx);
    }

    /// Combines the states of session windows merging into one.
    pub fn on_merge(&self, into: &mut TriggerState, from: &TriggerState, ctx: &TriggerContext) {
        self.merge(0, into, from, ctx);
    }

    fn element(&self, n: usize, st: &mut TriggerState, ctx: &mut TriggerContext) {
        match &self.nodes[n] {
            Node::Default | Node::EndOfWindow | Node::Never => {}
            Node::EarlyAndLate { early, late } => {
                if !st[*early].finished {
                    self.element(*early, st, ctx);
                } else if let Some(late) = late {
                    self.element(*late, st, ctx);
                }
            }
            Node::Count(_) => st[n].count = st[n].count.saturating_add(1),
            Node::ProcessingTime(delay) => {
                if st[n].deadline == NO_DEADLINE {
                    st[n].deadline = ctx.processing_time.saturating_add(*delay);
                    ctx.timers.push(st[n].deadline);
                }
            }
            Node::Repeatedly(c) => self.element(*c, st, ctx),
            Node::Any(cs) | Node::All(cs) => {
                for &c in cs {
                    if !st[c].finished {
                        self.element(c, st, ctx);
                    }
                }
            }
        }
    }

    fn fire_ready(&self, n: usize, st: &TriggerState, ctx: &TriggerContext) -> bool {
        match &self.nodes[n] {
            Node::Default | Node::EndOfWindow => ctx.end_of_window_reached(),
            Node::Never => false,
            Node::EarlyAndLate { early, late } => {
                if !st[*early].finished {
                    self.fire_ready(*early, st, ctx) || ctx.end_of_window_reached()
                } else {
                    late.is_some_and(|l| self.fire_ready(l, st, ctx))
                }
            }
            Node::Count(k) => st[n].count >= *k,
            Node::ProcessingTime(_) => st[n].deadline != NO_DEADLINE && ctx.processing_time >= st[n].deadline,
            Node::Repeatedly(c) => self.fire_ready(*c, st, ctx),
            Node::Any(cs) => cs.iter().any(|&c| !st[c].finished && self.fire_ready(c, st, ctx)),
            Node::All(cs) => cs.iter().any(|&c| !st[c].finished) && cs.iter().all(|&c| st[c].finished || self.fire_ready(c, st, ctx)),
        }
    }

    fn fire(&self, n: usize, st: &mut TriggerState, ctx: &TriggerContext) {
        match &self.nodes[n] {
            Node::Default | Node::Never => {}
            Node::EndOfWindow | Node::Count(_) | Node::ProcessingTime(_) => st[n].finished = true,
            Node::EarlyAndLate { early, late } => {
                let (early, late) = (*early, *late);
                if !st[early].finished {
                    if !ctx.end_of_window_reached() {
                        // An early firing; the early trigger implicitly repeats.
                        self.fire(early, st, ctx);
                        self.reset(early, st);
                    } else {
                        // The end of the window: the early trigger is done for good.
                        if self.fire_ready(early, st, ctx) {
                            self.fire(early, st, ctx);
                        }
                        self.reset(early, st);
                        st[early].finished = true;
                        match late {
                            None => st[n].finished = true,
                            Some(late) => self.reset(late, st),
                        }
                    }
                } else if let Some(late) = late {
                    // A late firing; the late trigger implicitly repeats.
                    self.fire(late, st, ctx);
                    self.reset(late, st);
                } else {
                    st[n].finished = true;
                }
            }
            Node::Repeatedly(c) => {
                self.fire(*c, st, ctx);
                if st[*c].finished {
                    self.reset(*c, st);
                }
            }
            Node::Any(cs) => {
                for &c in cs {
                    if !st[c].finished && self.fire_ready(c, st, ctx) {
                        self.fire(c, st, ctx);
                    }
                }
                st[n].finished = cs.iter().any(|&c| st[c].finished);
            }
            Node::All(cs) => {
                for &c in cs {
                    if !st[c].finished && self.fire_ready(c, st, ctx) {
                        self.fire(c, st, ctx);
                    }
                }
                st[n].finished = cs.iter().all(|&c| st[c].finished);
            }
        }
    }

    /// Clears a subtree's state and finished bits (Beam's `resetTree`).
    fn reset(&self, n: usize, st: &mut TriggerState) {
        st[n] = NodeState::default();
        match &self.nodes[n] {
            Node::EarlyAndLate { early, late } => {
                self.reset(*early, st);
                if let Some(l) = late {
                    self.reset(*l, st);
                }
            }
            Node::Repeatedly(c) => self.reset(*c, st),
            Node::Any(cs) | Node::All(cs) => {
                for &c in cs {
                    self.reset(c, st);
                }
            }
            _ => {}
        }
    }

    fn merge(&self, n: usize, into: &mut TriggerState, from: &TriggerState, ctx: &TriggerContext) {
        match &self.nodes[n] {
            Node::Count(_) => into[n].count = into[n].count.saturating_add(from[n].count),
            // The merged pane fires at the earliest pending deadline.
            Node::ProcessingTime(_) => into[n].deadline = into[n].deadline.min(from[n].deadline),
            Node::EarlyAndLate { early, late } => {
                let all_early_done = into[*early].finished && from[*early].finished;
                if !all_early_done || !ctx.end_of_window_reached() {
                    // Pending elements of a merged window still get early firings.
                    self.merge(*early, into, from, ctx);
                    into[*early].finished = false;
                    if let Some(l) = late {
                        self.reset(*l, into);
                    }
                } else if let Some(l) = late {
                    self.merge(*l, into, from, ctx);
                }
            }
            Node::Repeatedly(c) => self.merge(*c, into, from, ctx),
            Node::Any(cs) | Node::All(cs) => {
                for &c in cs {
                    self.merge(c, into, from, ctx);
                }
            }
            Node::Default | Node::EndOfWindow | Node::Never => {}
        }
    }
}

fn compile_into(spec: &TriggerSpec, nodes: &mut Vec<Node>) -> Result<usize, String> {
    let n = nodes.len();
    nodes.push(Node::Never);
    let node = match spec {
        TriggerSpec::Default => Node::Default,
        TriggerSpec::AfterWatermark { early: None, late: None } => Node::EndOfWindow,
        TriggerSpec::AfterWatermark { early, late } => {
            let early = match early {
                Some(e) => compile_into(e, nodes)?,
                None => {
                    nodes.push(Node::Never);
                    nodes.len() - 1
                }
            };
            let late = late.as_ref().map(|l| compile_into(l, nodes)).transpose()?;
            Node::EarlyAndLate { early, late }
        }
        TriggerSpec::AfterCount { count } => {
            if *count == 0 {
                return Err("after_count needs a count of at least 1".into());
            }
            Node::Count(*count)
        }
        TriggerSpec::AfterProcessingTime { delay_s } => {
            if !(delay_s.is_finite() && *delay_s >= 0.0) {
                return Err(format!("after_processing_time delay_s must be ≥ 0, got {delay_s}"));
            }
            let delay = if *delay_s == 0.0 { 0 } else { seconds_to_us("delay_s", *delay_s)? };
            Node::ProcessingTime(delay)
        }
        TriggerSpec::Repeatedly { of } => Node::Repeatedly(compile_into(of, nodes)?),
        TriggerSpec::AfterAny { of } | TriggerSpec::AfterAll { of } => {
            if of.is_empty() {
                return Err("after_any / after_all need at least one trigger in `of`".into());
            }
            let children = of.iter().map(|c| compile_into(c, nodes)).collect::<Result<Vec<_>, _>>()?;
            if matches!(spec, TriggerSpec::AfterAny { .. }) {
                Node::Any(children)
            } else {
                Node::All(children)
            }
        }
    };
    nodes[n] = node;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Trigger {
        Trigger::compile(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn default_fires_at_the_end_of_the_window_and_never_finishes() {
        let t = spec(r#"{"type":"default"}"#);
        let mut st = t.new_state();
        let before = TriggerContext::new(59, 0, 60);
        assert!(!t.should_fire(&st, &before));
        let at_end = TriggerContext::new(60, 0, 60);
        assert!(t.should_fire(&st, &at_end));
        t.on_fire(&mut st, &at_end);
        assert!(!t.is_finished(&st));
    }

    #[test]
    fn early_processing_time_then_late_count() {
        let t = spec(
            r#"{"type":"after_watermark","early":{"type":"after_processing_time","delay_s":20},
                "late":{"type":"after_count","count":1}}"#,
        );
        let mut st = t.new_state();
        let mut ctx = TriggerContext::new(0, 1_000_000, 60_000_000);
        t.on_element(&mut st, &mut ctx);
        assert_eq!(ctx.timers.as_slice(), &[21_000_000]);
        assert!(!t.should_fire(&st, &TriggerContext::new(0, 20_999_999, 60_000_000)));
        let due = TriggerContext::new(0, 21_000_000, 60_000_000);
        assert!(t.should_fire(&st, &due));
        t.on_fire(&mut st, &due);
        assert!(!t.should_fire(&st, &TriggerContext::new(0, 90_000_000, 60_000_000)));
        // The end of the window moves it to late firings.
        let end = TriggerContext::new(60_000_000, 90_000_000, 60_000_000);
        assert!(t.should_fire(&st, &end));
        t.on_fire(&mut st, &end);
        assert!(!t.is_finished(&st));
        assert!(!t.should_fire(&st, &end));
        let mut late = TriggerContext::new(61_000_000, 90_000_000, 60_000_000);
        t.on_element(&mut st, &mut late);
        assert!(late.timers.is_empty(), "the early trigger is done");
        assert!(t.should_fire(&st, &late));
    }

    #[test]
    fn after_watermark_alone_finishes_at_the_end() {
        let t = spec(r#"{"type":"after_watermark"}"#);
        let mut st = t.new_state();
        let end = TriggerContext::new(60, 0, 60);
        t.on_fire(&mut st, &end);
        assert!(t.is_finished(&st));
    }

    #[test]
    fn repeatedly_after_count_resets() {
        let t = spec(r#"{"type":"repeatedly","of":{"type":"after_count","count":2}}"#);
        let mut st = t.new_state();
        let mut ctx = TriggerContext::new(0, 0, 60);
        t.on_element(&mut st, &mut ctx);
        assert!(!t.should_fire(&st, &ctx));
        t.on_element(&mut st, &mut ctx);
        assert!(t.should_fire(&st, &ctx));
        t.on_fire(&mut st, &ctx);
        assert!(!t.should_fire(&st, &ctx));
        assert!(!t.is_finished(&st));
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(serde_json::from_str::<TriggerSpec>(r#"{"type":"sometimes"}"#).is_err());
        assert!(Trigger::compile(&TriggerSpec::AfterCount { count: 0 }).is_err());
    }
}
