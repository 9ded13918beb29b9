//! Running the window engine's accumulator operations against an aggregate.
//!
//! The engine emits [`AccOp`]s; an [`Accumulators`] implementation executes
//! them in order and fills each pane's value. The WebAssembly aggregate
//! plugin is one implementation (`plugin::aggregate`); [`NativeCount`] is a
//! plain-Rust count used as the native baseline in benchmarks and as an
//! independent implementation in tests.

use anyhow::Result;

pub use crate::batch::EventBatch;
use crate::window::{AccOp, Pane, Value, WindowEngine};

/// An `Add` the aggregate refused, with its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct RejectedAdd {
    /// The event index the `Add` named.
    pub event: u32,
    pub reason: String,
}

/// Executes accumulator operations.
pub trait Accumulators {
    /// Whether `Add`s need the events' bytes (`events`); when false the
    /// caller may pass an empty batch.
    fn needs_payload(&self) -> bool;

    /// Runs `ops` in order; `events` are the batch the `Add`s index into.
    /// Each `Extract { pane }` sets `panes[pane].value`.
    fn apply(&mut self, ops: &[AccOp], events: &mut EventBatch, panes: &mut [Pane]) -> Result<Vec<RejectedAdd>>;
}

/// The window engine's pending work: the accumulator operations its
/// elements and triggers produced, and the panes those operations fill.
/// Every driver of the engine (a run, a replay, a grade, the room) carries
/// it out the same way: take it, run it against an aggregate, write the panes.
pub struct Pending {
    ops: Vec<AccOp>,
    panes: Vec<Pane>,
}

/// Panes with their values, and the adds the aggregate refused.
pub struct Fired {
    pub panes: Vec<Pane>,
    pub refused: Vec<RejectedAdd>,
}

impl Pending {
    /// Takes the engine's pending operations and fired panes.
    pub fn take(engine: &mut WindowEngine) -> Self {
        let (ops, panes) = engine.drain();
        Self { ops, panes }
    }

    /// Runs the operations against `aggregate`; `events` are the elements
    /// the adds index into (see [`Accumulators::needs_payload`]).
    pub fn run(mut self, aggregate: &mut dyn Accumulators, events: &mut EventBatch) -> Result<Fired> {
        let refused = aggregate.apply(&self.ops, events, &mut self.panes)?;
        Ok(Fired { panes: self.panes, refused })
    }

    /// The same, on a copy of the panes: several aggregates can be run on
    /// one engine's operations and their panes compared.
    pub fn run_copy(&self, aggregate: &mut dyn Accumulators, events: &mut EventBatch) -> Result<Fired> {
        let mut panes = self.panes.clone();
        let refused = aggregate.apply(&self.ops, events, &mut panes)?;
        Ok(Fired { panes, refused })
    }
}

/// A native count of elements per accumulator.
#[derive(Default)]
pub struct NativeCount {
    counts: Vec<u64>,
}

impl NativeCount {
    /// The count in `slot` (a slot's accumulator, for export and import).
    pub fn slot(&mut self, slot: u32) -> &mut u64 {
        let i = slot as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        &mut self.counts[i]
    }
}

impl Accumulators for NativeCount {
    fn needs_payload(&self) -> bool {
        false
    }

    fn apply(&mut self, ops: &[AccOp], _events: &mut EventBatch, panes: &mut [Pane]) -> Result<Vec<RejectedAdd>> {
        for op in ops {
            match op {
                AccOp::Add { slot, .. } => *self.slot(*slot) += 1,
                AccOp::Merge { target, sources } => {
                    let total: u64 = sources.iter().map(|s| std::mem::take(self.slot(*s))).sum();
                    *self.slot(*target) += total;
                }
                AccOp::Extract { slot, pane } => {
                    panes[*pane as usize].value = Some(Value::Int(*self.slot(*slot) as i64));
                }
                AccOp::Release { slot } => *self.slot(*slot) = 0,
            }
        }
        Ok(Vec::new())
    }
}
