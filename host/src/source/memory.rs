//! A source of events held in memory, with their original provenance (used
//! to re-drive dead letters, and by tests).

use anyhow::Result;

use super::{now_us, Origin, Source, SourceBatch};
use crate::batch::EventBatch;

pub struct MemorySource {
    events: std::vec::IntoIter<(String, Vec<u8>)>,
}

impl MemorySource {
    /// Events with the provenance each should keep.
    pub fn new(events: Vec<(String, Vec<u8>)>) -> Self {
        Self { events: events.into_iter() }
    }
}

impl Source for MemorySource {
    fn next_batch(&mut self, max: usize) -> Result<Option<SourceBatch>> {
        let mut events = EventBatch::default();
        let mut ids = Vec::new();
        for (id, payload) in self.events.by_ref().take(max) {
            events.push(&payload);
            ids.push(id);
        }
        if events.is_empty() {
            return Ok(None);
        }
        Ok(Some(SourceBatch {
            publish_times: vec![now_us(); events.len()],
            events,
            origin: Origin::Messages { source: "dlq".into(), ids },
            ack_tokens: Vec::new(),
            attributes: Vec::new(),
        }))
    }
}
