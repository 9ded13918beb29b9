//! A sink that writes to several sinks in turn.

use anyhow::Result;

use super::{Provenance, RejectedRow, Sink};
use crate::window::Pane;

pub struct TeeSink(pub Vec<Box<dyn Sink>>);

impl Sink for TeeSink {
    fn write(&mut self, panes: &[Pane], provenance: &Provenance) -> Result<Vec<RejectedRow>> {
        let mut rejected = Vec::new();
        for s in &mut self.0 {
            rejected.extend(s.write(panes, provenance)?);
        }
        Ok(rejected)
    }

    fn finish(&mut self) -> Result<()> {
        self.0.iter_mut().try_for_each(|s| s.finish())
    }

    fn retries(&self) -> u64 {
        self.0.iter().map(|s| s.retries()).sum()
    }
}
