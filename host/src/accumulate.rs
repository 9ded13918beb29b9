//! Running the window engine's accumulator operations against an aggregate.
//!
//! The engine emits [`AccOp`]s; an [`Accumulators`] implementation executes
//! them in order and fills each pane's value. The WebAssembly aggregate
//! plugin is one implementation (`plugin::aggregate`); [`NativeCount`] is a
//! plain-Rust count used as the native baseline in benchmarks and as an
//! independent implementation in tests.

use anyhow::Result;

use crate::window::{AccOp, Pane, Value};

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

/// Events packed into one buffer, the layout the plugin contract uses.
#[derive(Clone, Debug, Default)]
pub struct EventBatch {
    pub bytes: Vec<u8>,
    pub ends: Vec<u32>,
}

impl EventBatch {
    pub fn push(&mut self, event: &[u8]) -> u32 {
        self.bytes.extend_from_slice(event);
        self.ends.push(self.bytes.len() as u32);
        (self.ends.len() - 1) as u32
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// A native count of elements per accumulator.
#[derive(Default)]
pub struct NativeCount {
    counts: Vec<u64>,
}

impl NativeCount {
    fn slot(&mut self, slot: u32) -> &mut u64 {
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
