//! The aggregate stage: the WASM aggregate versions (one running, maybe one
//! finishing its windows; see `plugin::handover`) or the native stand-in the
//! benchmark's baseline runs instead, and the engine's pending work carried
//! out against whichever runs.

use anyhow::Result;

use crate::accumulate::{Accumulators, EventBatch, Fired, Pending};
use crate::plugin::handover::Aggregates;

pub(super) struct AggregateStage {
    pub plugins: Aggregates,
    native: Option<Box<dyn Accumulators>>,
}

impl AggregateStage {
    pub fn new(plugins: Aggregates, native: Option<Box<dyn Accumulators>>) -> Self {
        Self { plugins, native }
    }

    fn running(&mut self) -> &mut dyn Accumulators {
        match &mut self.native {
            Some(native) => native.as_mut(),
            None => &mut self.plugins,
        }
    }

    pub fn needs_payload(&mut self) -> bool {
        self.running().needs_payload()
    }

    /// Runs the engine's pending work; `events` are the elements its adds
    /// index into. A failure ends the run: the accumulators are gone, and
    /// the input they covered must not be acknowledged.
    pub fn fire(&mut self, pending: Pending, events: &mut EventBatch) -> Result<Fired> {
        pending
            .run(self.running(), events)
            .map_err(|e| e.context("the run stops without acknowledging unwritten input, as the aggregate's accumulators are lost"))
    }
}
