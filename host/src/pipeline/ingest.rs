//! The ingest stage: the source built from `[source]`, the size limit every
//! event passes before a plugin sees it, and the acknowledgements (each
//! message held until the windows it went into are written).

use anyhow::Result;
use std::time::Duration;

use crate::ack::AckTracker;
use crate::batch::EventBatch;
use crate::cloud::CloudOnce;
use crate::config::{PipelineConfig, SourceConfig};
use crate::deadletter::{DeadLetters, Reason, Stage};
use crate::source::pubsub::{PubsubOptions, PubsubSource};
use crate::source::{file::FileSource, synthetic::SyntheticSource, Source, SourceBatch};

use super::windowing::WindowStage;
use crate::window::WindowEngine;

pub(super) struct Ingest {
    pub source: Box<dyn Source>,
    batch_size: usize,
    max_bytes: MaxBytes,
    acks: AckTracker,
}

impl Ingest {
    /// The configured source, or `given` in its place.
    pub fn open(cfg: &PipelineConfig, given: Option<Box<dyn Source>>, cloud: &mut CloudOnce) -> Result<Self> {
        let source = match given {
            Some(s) => s,
            None => build(cfg, cloud)?,
        };
        Ok(Self { source, batch_size: cfg.pipeline.batch_size, max_bytes: MaxBytes(cfg.event.max_bytes), acks: AckTracker::default() })
    }

    /// The next batch; `None` when a bounded source ends.
    pub fn next(&mut self) -> Result<Option<SourceBatch>> {
        self.source.next_batch(self.batch_size)
    }

    /// Sends events over `[event] max_bytes` to the dead letters, so no
    /// plugin sees them. Returns, for each event left in the batch, its
    /// index in the batch as read (what provenance and acks refer to).
    pub fn screen(&self, batch: &mut SourceBatch, dead: &mut DeadLetters) -> Result<Vec<u32>> {
        let n = batch.events.len();
        if (0..n).all(|i| self.max_bytes.oversized(batch.events.get(i).len()).is_none()) {
            return Ok((0..n as u32).collect());
        }
        let mut kept = Vec::with_capacity(n);
        let mut smaller = EventBatch::default();
        for i in 0..n {
            let event = batch.events.get(i);
            if let Some(reason) = self.max_bytes.oversized(event.len()) {
                dead.write((Stage::Decode, Reason::Oversized), &reason, batch.provenance(i), None, event)?;
            } else {
                smaller.push(event);
                kept.push(i as u32);
            }
        }
        batch.events = smaller;
        Ok(kept)
    }

    /// Why a transform output of `len` bytes is refused, if it is.
    pub fn oversized_output(&self, len: usize) -> Option<String> {
        self.max_bytes.oversized_output(len)
    }

    /// Holds this batch's messages until their windows retire (what the
    /// windowing stage noted while admitting its elements).
    pub fn hold(&mut self, batch: &SourceBatch, window: &mut WindowStage) {
        for (i, &token) in batch.ack_tokens.iter().enumerate() {
            let session = window.hold_session.get_mut(i).and_then(Option::take);
            self.acks.hold(token, window.hold_until.get(i).copied().unwrap_or(i64::MIN), session);
        }
    }

    /// Acknowledges every held message whose results are written, given
    /// the watermark. Call only once the panes and dead letters it fired
    /// are durable.
    pub fn ack_written(&mut self, engine: &WindowEngine) {
        if self.acks.is_empty() {
            return;
        }
        let done = self.acks.release(engine);
        if !done.is_empty() {
            self.source.ack(&done);
        }
    }
}

/// A source from `[source]`.
fn build(cfg: &PipelineConfig, cloud: &mut CloudOnce) -> Result<Box<dyn Source>> {
    Ok(match &cfg.source {
        SourceConfig::File { path } => Box::new(FileSource::open(&cfg.resolve(path))?),
        SourceConfig::Synthetic { rate, events } => Box::new(SyntheticSource::new(*rate, *events)),
        SourceConfig::Pubsub {
            subscription,
            max_outstanding_messages,
            max_outstanding_mib,
            stop_when_idle_s,
            id_attribute,
            dedup_window_s,
            dedup_max_ids,
            dedup_file,
            streams,
            ..
        } => Box::new(PubsubSource::connect(
            cloud.get()?,
            PubsubOptions {
                subscription: subscription.clone(),
                max_outstanding_messages: *max_outstanding_messages,
                max_outstanding_bytes: max_outstanding_mib << 20,
                stop_when_idle: stop_when_idle_s.map(Duration::from_secs_f64),
                lease_extension: cfg.source.lease_extension().expect("a Pub/Sub source has leases"),
                max_lease: lease_for(cfg),
                id_attribute: id_attribute.clone(),
                dedup_window: Duration::from_secs_f64(*dedup_window_s),
                dedup_max_ids: *dedup_max_ids,
                dedup_file: dedup_file.as_ref().map(|p| cfg.resolve(p)),
                streams: *streams,
            },
        )?),
    })
}

/// How long the client library keeps a held message leased: twice the
/// longest a message can be held (and at least its default of an hour), or
/// without end when windows have no bound (sessions): a lease that ran out
/// first would redeliver a message still held, and it would be counted twice.
fn lease_for(cfg: &PipelineConfig) -> Duration {
    const CLIENT_DEFAULT: Duration = Duration::from_secs(3600);
    match cfg.max_hold() {
        Some(hold) => (hold * 2).max(CLIENT_DEFAULT),
        None => Duration::MAX,
    }
}

/// `[event] max_bytes`: the largest event a plugin sees, and the largest
/// output a transform may emit. Public so runnel on Beam (the `runnel-beam`
/// bridge) refuses exactly what `runnel run` refuses, in the same words.
#[derive(Debug, Clone, Copy)]
pub struct MaxBytes(pub usize);

impl MaxBytes {
    /// Why an event of `len` bytes is refused before any plugin, if it is.
    pub fn oversized(self, len: usize) -> Option<String> {
        (len > self.0).then(|| format!("oversized: {len} bytes, the limit is {} ([event] max_bytes)", self.0))
    }

    /// Why a transform output of `len` bytes is refused, if it is.
    pub fn oversized_output(self, len: usize) -> Option<String> {
        (len > self.0).then(|| format!("oversized output: the transform emitted {len} bytes, the limit is {} ([event] max_bytes)", self.0))
    }
}
