//! The event batch: events packed into one buffer, the layout the plugin
//! contract uses and every source produces. A leaf module, so sources,
//! plugins and the pipeline share it without importing one another.

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

    /// An empty batch with room for `bytes` of events and `events` ends.
    pub fn with_capacity(bytes: usize, events: usize) -> Self {
        Self { bytes: Vec::with_capacity(bytes), ends: Vec::with_capacity(events) }
    }

    /// Ends an event whose bytes were appended to `bytes` directly (by a
    /// reader writing into the batch, saving a copy).
    pub fn seal(&mut self) {
        self.ends.push(self.bytes.len() as u32);
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
