//! A source slowed to a steady rate (events per second), keeping the
//! events as they are (`runnel demo --rate`, to watch the dashboard live).

use anyhow::Result;
use std::time::{Duration, Instant};

use super::{Source, SourceBatch};

pub struct PacedSource {
    inner: Box<dyn Source>,
    rate: f64,
    started: Option<Instant>,
    sent: u64,
}

impl PacedSource {
    pub fn new(inner: Box<dyn Source>, rate: f64) -> Self {
        Self { inner, rate, started: None, sent: 0 }
    }
}

impl Source for PacedSource {
    fn next_batch(&mut self, max: usize) -> Result<Option<SourceBatch>> {
        let started = *self.started.get_or_insert_with(Instant::now);
        // Small batches, so the stream stays smooth at low rates.
        let max = max.min((self.rate / 10.0).ceil().max(1.0) as usize);
        let due = Duration::from_secs_f64(self.sent as f64 / self.rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let batch = self.inner.next_batch(max)?;
        if let Some(b) = &batch {
            self.sent += b.events.len() as u64;
        }
        Ok(batch)
    }

    fn want_attribute(&mut self, name: &str) {
        self.inner.want_attribute(name)
    }

    fn ack(&mut self, tokens: &[u64]) {
        self.inner.ack(tokens)
    }

    fn unacked(&self) -> usize {
        self.inner.unacked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::memory::MemorySource;

    #[test]
    fn holds_the_rate_and_passes_every_event() {
        let events = (0..300).map(|i| (format!("e{i}"), b"{}".to_vec())).collect();
        let mut paced = PacedSource::new(Box::new(MemorySource::new(events)), 1000.0);
        let started = Instant::now();
        let mut n = 0;
        while let Some(b) = paced.next_batch(256).unwrap() {
            assert!(b.events.len() <= 100, "batches of a tenth of a second");
            n += b.events.len();
        }
        assert_eq!(n, 300);
        // 300 events at 1000/s: the last batch is due after 0.2 s.
        assert!(started.elapsed() >= Duration::from_millis(190), "{:?}", started.elapsed());
    }
}
