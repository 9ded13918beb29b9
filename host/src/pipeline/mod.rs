//! The pipeline: one event's way through the host.
//!
//! ```text
//! source ─► decode ─► transform (guest) ─► key + event time ─► window + trigger
//!                                                                   │
//!        dead letters ◄── any stage's bad record                    ▼
//!                            sink ◄── panes ◄── aggregate (guest) ◄─┘
//! ```
//!
//! Each source batch goes through the transform in one plugin call; every
//! resulting element is windowed and triggered one by one (Beam's rules);
//! the accumulator operations that produces run against the aggregate in as
//! few calls as possible; then the watermark advances, and fired panes go to
//! the sink. Dead letters are flushed before panes are written.

use anyhow::{Context, Result};
use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::accumulate::{Accumulators, EventBatch};
use crate::ack::AckTracker;
use crate::cloud::Cloud;
use crate::config::{EventTime, PipelineConfig, SinkKind, SourceConfig};
use crate::deadletter::{DeadLetters, Reason, Refusal, Stage};
use crate::decode::Decoder;
use crate::plugin::bundled;
use crate::plugin::contract::Kind;
use crate::plugin::handover::Aggregates;
use crate::plugin::reload::{NewPlugin, Outcome, ReloadHandle, ReloadOutcome, Reloader};
use crate::plugin::runtime::PluginRuntime;
use crate::plugin::transform::{TransformOutput, TransformPlugin};
use crate::plugin::PluginSource;
use crate::sink::{bigquery::BigQuerySink, ndjson::NdjsonSink, stdout::StdoutSink, NullSink, Provenance, Sink};
use crate::source::pubsub::{PubsubOptions, PubsubSource};
use crate::source::{file::FileSource, now_us, synthetic::SyntheticSource, Source, SourceBatch};
use crate::status::LiveStatus;
pub use crate::telemetry::Counters;

mod windowing;
use crate::window::watermark::WatermarkEstimator;
use crate::window::WindowEngine;
use windowing::{Element, WindowStage};

/// A configured, ready-to-run pipeline.
pub struct Pipeline {
    runtime: Arc<PluginRuntime>,
    reloader: Reloader,
    source: Box<dyn Source>,
    decoder: Decoder,
    transform: Option<TransformPlugin>,
    /// The transform version before the last swap, restored if the new one
    /// is quarantined.
    previous_transform: Option<TransformPlugin>,
    /// Consecutive batches in which the transform failed.
    failing_batches: u32,
    /// Set when the transform was quarantined with no earlier version to go
    /// back to: it is not called until a new version is loaded, and events
    /// go to the dead letters (to be replayed once it is fixed).
    suspended: Option<String>,
    quarantine_after: u32,
    /// Plugin files to re-read on `runnel reload`.
    plugin_files: Vec<(Kind, PathBuf)>,
    status: LiveStatus,
    latency: crate::metrics::StageLatencies,
    sink_rows: u64,
    sink_rejected: u64,
    /// Windowing: the engine, the watermark and the batch's element tables.
    window: WindowStage,
    aggregate: Aggregates,
    sink: Box<dyn Sink>,
    dead: DeadLetters,
    provenance: Provenance,
    batch_size: usize,
    max_bytes: usize,
    counters: Counters,
    acks: AckTracker,
    native: Option<NativePlugins>,
    /// The share of recent elements dropped as late.
    late_share: crate::late_share::LateShare,
    /// Set (by a signal) to stop between batches; see [`Pipeline::run`].
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Parts a caller supplies instead of the configured ones (the demo's
/// embedded data and table, tests' sources).
#[derive(Default)]
pub struct Overrides {
    pub source: Option<Box<dyn Source>>,
    pub sink: Option<Box<dyn Sink>>,
    /// Plugins written in plain Rust, run in place of the configured WASM
    /// ones (the benchmark's native baseline: the limit of the design).
    pub native: Option<NativePlugins>,
}

/// A transform and an aggregate compiled into the host.
pub struct NativePlugins {
    /// Called like a transform plugin, with the same batches.
    pub transform: Box<dyn FnMut(&EventBatch) -> TransformOutput>,
    pub aggregate: Box<dyn crate::accumulate::Accumulators>,
}

impl Pipeline {
    /// Builds a pipeline from a validated config.
    pub fn from_config(cfg: &PipelineConfig) -> Result<Self> {
        Self::with_overrides(cfg, Overrides::default())
    }

    /// Builds a pipeline, with some parts supplied by the caller.
    pub fn with_overrides(cfg: &PipelineConfig, overrides: Overrides) -> Result<Self> {
        let runtime = Arc::new(PluginRuntime::with_cache(cfg.sandbox.limits(), cfg.sandbox.cache_dir())?);
        let source: Box<dyn Source> = match (overrides.source, &cfg.source) {
            (Some(s), _) => s,
            (None, SourceConfig::File { path }) => Box::new(FileSource::open(&cfg.resolve(path))?),
            (None, SourceConfig::Synthetic { rate, events }) => Box::new(SyntheticSource::new(*rate, *events)),
            (
                None,
                SourceConfig::Pubsub {
                    subscription,
                    max_outstanding_messages,
                    max_outstanding_mib,
                    stop_when_idle_s,
                    lease_extension_s,
                    ..
                },
            ) => {
                let cloud = Cloud::resolve(&cfg.cloud)?;
                Box::new(PubsubSource::connect(
                    &cloud,
                    PubsubOptions {
                        subscription: subscription.clone(),
                        max_outstanding_messages: *max_outstanding_messages,
                        max_outstanding_bytes: max_outstanding_mib << 20,
                        stop_when_idle: stop_when_idle_s.map(Duration::from_secs_f64),
                        lease_extension: Duration::from_secs((*lease_extension_s).max(10)),
                        max_lease: lease_for(cfg),
                    },
                )?)
            }
        };
        let decoder = Decoder::new(cfg.event.key_pointer()?, cfg.event.event_time()?);
        let mut source = source;
        if let EventTime::Attribute(name, _) = decoder.event_time() {
            source.want_attribute(name);
        }
        let transform = cfg
            .transform
            .as_ref()
            .map(|t| -> Result<TransformPlugin> {
                let source = PluginSource::resolve(&t.plugin, &cfg.base_dir).context("[transform] plugin")?;
                TransformPlugin::load(&runtime, source, &t.config.to_config_string(), &decoder.fields_spec())
                    .context("[transform] plugin refused")
            })
            .transpose()?;
        let transform_config = cfg.transform.as_ref().map(|t| t.config.to_config_string()).unwrap_or_default();
        let reloader = Reloader::start(runtime.clone(), decoder.fields_spec(), transform_config, cfg.aggregate.config.to_config_string())?;
        let mut plugin_files = Vec::new();
        if let Some(t) = &cfg.transform {
            if bundled::find(&t.plugin).is_none() {
                plugin_files.push((Kind::Transform, cfg.resolve(Path::new(&t.plugin))));
            }
        }
        if bundled::find(&cfg.aggregate.plugin).is_none() {
            plugin_files.push((Kind::Aggregate, cfg.resolve(Path::new(&cfg.aggregate.plugin))));
        }
        if cfg.sandbox.watch_plugins {
            reloader.watch(plugin_files.clone(), Duration::from_millis(cfg.sandbox.watch_interval_ms));
        }
        let agg_source = PluginSource::resolve(&cfg.aggregate.plugin, &cfg.base_dir).context("[aggregate] plugin")?;
        let aggregate = crate::plugin::aggregate::AggregatePlugin::load(&runtime, agg_source, &cfg.aggregate.config.to_config_string())
            .context("[aggregate] plugin refused")?;
        let provenance = Provenance { transform: transform.as_ref().map(|t| t.source.label()), aggregate: aggregate.source.label() };
        let columns = cfg.sink.columns();
        let sink: Box<dyn Sink> = match overrides.sink {
            Some(s) => s,
            None => match &cfg.sink.kind {
                SinkKind::Stdout { top } => Box::new(StdoutSink::new(std::io::stdout(), *top, None)),
                SinkKind::Ndjson { path } => {
                    // Behind Pub/Sub, written rows cover acknowledged messages.
                    let durable = matches!(cfg.source, SourceConfig::Pubsub { .. });
                    Box::new(NdjsonSink::open(&cfg.resolve(path), columns, durable)?)
                }
                SinkKind::Null => Box::new(NullSink),
                SinkKind::Bigquery(t) => {
                    let cloud = Cloud::resolve(&cfg.cloud)?;
                    Box::new(BigQuerySink::connect(&cloud, &t.dataset, &t.table, columns, t.window_columns)?)
                }
            },
        };
        let engine_cfg = cfg.windowing.engine_config().map_err(anyhow::Error::msg)?;
        let mut watermark = WatermarkEstimator::new(&cfg.watermark_spec()).map_err(anyhow::Error::msg)?;
        if let SourceConfig::Pubsub { ack_deadline_s, lease_extension_s, .. } = &cfg.source {
            // Messages a previous run held come back once their lease runs
            // out; they must not find their windows closed.
            let redelivery = i64::from(*ack_deadline_s).max(*lease_extension_s as i64);
            watermark.default_startup_hold((redelivery + 5) * 1_000_000);
        }
        let mut dead = DeadLetters::create(&cfg.resolve(&cfg.dead_letters.path))?;
        if let Some(topic) = &cfg.dead_letters.topic {
            dead.publish_to(&Cloud::resolve(&cfg.cloud)?, topic).context("[dead_letters] topic")?;
        }
        let status = LiveStatus::default();
        status.update(|s| {
            s.transform = provenance.transform.clone();
            s.aggregate = provenance.aggregate.clone();
            s.running = true;
        });
        Ok(Self {
            runtime,
            reloader,
            source,
            decoder,
            transform,
            previous_transform: None,
            failing_batches: 0,
            suspended: None,
            quarantine_after: cfg.sandbox.quarantine_after,
            plugin_files,
            status,
            latency: Default::default(),
            sink_rows: 0,
            sink_rejected: 0,
            window: WindowStage::new(WindowEngine::new(engine_cfg), watermark),
            aggregate: Aggregates::new(aggregate),
            sink,
            dead,
            provenance,
            batch_size: cfg.pipeline.batch_size,
            max_bytes: cfg.event.max_bytes,
            counters: Counters::default(),
            acks: AckTracker::default(),
            native: overrides.native,
            late_share: crate::late_share::LateShare::new(cfg.lateness_advice()),
            stop: Arc::default(),
        })
    }

    /// Where to send new plugin versions (the file watcher uses it too).
    pub fn reload_handle(&self) -> ReloadHandle {
        self.reloader.handle()
    }

    /// The live status (for the admin server and tests).
    pub fn status(&self) -> LiveStatus {
        self.status.clone()
    }

    /// The plugin files of the pipeline file (bundled plugins have none).
    pub fn plugin_files(&self) -> &[(Kind, PathBuf)] {
        &self.plugin_files
    }

    /// Swaps in plugin versions the loader has ready, between batches: the
    /// batch before ran wholly on the old version, the next runs wholly on
    /// the new one.
    fn apply_reloads(&mut self) -> Result<()> {
        for mut loaded in self.reloader.ready() {
            let started = Instant::now();
            let outcome = match std::mem::replace(&mut loaded.plugin, Err(String::new())) {
                Err(reason) => {
                    self.counters.refused_reloads += 1;
                    loaded.outcome(Outcome::Refused, format!("the running version stays: {reason}"))
                }
                Ok(_) if self.running_label(loaded.kind) == loaded.label => {
                    loaded.outcome(Outcome::Unchanged, "this version is already running".into())
                }
                Ok(NewPlugin::Transform(p)) => {
                    self.provenance.transform = Some(p.source.label());
                    if let Some(older) = std::mem::replace(&mut self.previous_transform, self.transform.replace(*p)) {
                        self.reloader.retire(older);
                    }
                    self.failing_batches = 0;
                    self.suspended = None;
                    self.counters.reloads += 1;
                    loaded.outcome(Outcome::Swapped, "the next batch runs on it".into())
                }
                Ok(NewPlugin::Aggregate(p)) => {
                    let name = p.source.label();
                    let live = self.window.engine.live_slots();
                    let (verdict, unused) = self.aggregate.swap(*p, &live, self.window.engine.is_merging())?;
                    if let Some(unused) = unused {
                        self.reloader.retire(unused);
                    }
                    match verdict {
                        Ok(message) => {
                            self.provenance.aggregate = name;
                            self.counters.reloads += 1;
                            loaded.outcome(Outcome::Swapped, message)
                        }
                        Err(reason) => {
                            self.counters.refused_reloads += 1;
                            loaded.outcome(Outcome::Refused, format!("the running version stays: {reason}"))
                        }
                    }
                }
            };
            if outcome.outcome == Outcome::Swapped {
                self.counters.reload_stalls.push(started.elapsed());
            }
            // Once on the terminal: a refusal is a warning in the log; a swap
            // is a plain line (and an info record for structured logs).
            if outcome.outcome == Outcome::Refused {
                tracing::warn!(kind = outcome.kind, plugin = %outcome.plugin, "refused: {}", outcome.message);
            } else {
                tracing::info!(kind = outcome.kind, plugin = %outcome.plugin, outcome = %outcome.outcome, "{}", outcome.message);
                eprintln!("{} {} {}: {}", outcome.kind, outcome.plugin, outcome.outcome, outcome.message);
            }
            self.status.record(outcome.clone());
            self.publish_status();
            loaded.answer(&outcome);
        }
        Ok(())
    }

    fn running_label(&self, kind: Kind) -> String {
        match kind {
            Kind::Transform => self.provenance.transform.clone().unwrap_or_default(),
            Kind::Aggregate => self.provenance.aggregate.clone(),
        }
    }

    /// After `quarantine_after` batches in a row in which the transform
    /// failed, the version is quarantined: the one before it is restored
    /// when there is one (poison events are isolated either way).
    fn check_quarantine(&mut self, failed: bool) {
        self.failing_batches = if failed { self.failing_batches + 1 } else { 0 };
        if self.failing_batches < self.quarantine_after {
            return;
        }
        self.failing_batches = 0;
        let bad = self.provenance.transform.clone().unwrap_or_default();
        self.counters.quarantines += 1;
        let Some(previous) = self.previous_transform.take() else {
            // Nothing to go back to: stop calling it (each failing batch can
            // cost several time budgets) and keep every event, as a dead
            // letter, until a fixed version is loaded.
            let message = format!(
                "it failed {} batches in a row and there is no earlier version to go back to: it is not called \
                 until a new version is loaded (runnel reload, an upload, or a changed plugin file); until then \
                 events go to the dead letters, to re-drive with `runnel dlq replay`",
                self.quarantine_after
            );
            tracing::error!(plugin = %bad, "transform quarantined: {message}");
            eprintln!("transform {bad} quarantined: {message}");
            self.suspended = Some(bad.clone());
            self.status.record(ReloadOutcome {
                kind: Kind::Transform.world(),
                plugin: bad,
                outcome: Outcome::Quarantined,
                message,
                load_ms: 0.0,
            });
            return;
        };
        self.provenance.transform = Some(previous.source.label());
        if let Some(bad) = self.transform.replace(previous) {
            self.reloader.retire(bad);
        }
        let outcome = ReloadOutcome {
            kind: Kind::Transform.world(),
            plugin: bad,
            outcome: Outcome::Quarantined,
            message: format!(
                "it failed {} batches in a row; {} is running again",
                self.quarantine_after,
                self.provenance.transform.as_deref().unwrap_or("")
            ),
            load_ms: 0.0,
        };
        tracing::error!(plugin = %outcome.plugin, "transform quarantined: {}", outcome.message);
        self.status.record(outcome);
    }

    /// Publishes the counters and versions to the live status.
    fn publish_status(&self) {
        let retiring = self.aggregate.retiring().map(|(p, left)| (p.source.label(), left));
        let stats = self.window.engine.stats();
        let watermark = self.window.engine.watermark();
        let now = now_us();
        let late_recent = self.late_share.recent(now);
        let by_reason: Vec<(String, String, u64)> =
            self.dead.counts().iter().map(|((stage, code), n)| (stage.as_str().to_string(), code.as_str().to_string(), *n)).collect();
        self.status.update(|s| {
            s.watermark_us = (watermark > i64::MIN && watermark < i64::MAX).then_some(watermark);
            s.processing_time_us = now;
            s.late_recent = late_recent;
            s.open_windows = stats.open_windows;
            s.keys = stats.keys;
            s.sink_rows = self.sink_rows;
            s.sink_rejected = self.sink_rejected;
            s.sink_retries = self.sink.retries();
            s.dead_letters_by_reason = by_reason;
            s.recent_dead_letters = self.dead.recent().clone();
            s.latency = self.latency.clone();
            s.counters = (&self.counters).into();
            s.counters.counts.dead_letters = self.dead.total();
            s.counters.unacked_messages = self.source.unacked() as u64;
            s.counters.source_quiet_s = self.source.quiet_for().map(|d| d.as_secs_f64());
            s.transform = self.provenance.transform.clone();
            s.aggregate = self.provenance.aggregate.clone();
            s.retiring_aggregate = retiring;
        });
    }

    /// Setting it stops the run gracefully between batches.
    pub fn stop_handle(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.stop.clone()
    }

    pub fn dead_letters(&self) -> &DeadLetters {
        &self.dead
    }

    pub fn engine(&self) -> &WindowEngine {
        &self.window.engine
    }

    /// Runs until a bounded source ends; then closes every window.
    ///
    /// A stop (see [`stop_handle`](Self::stop_handle)) ends it between
    /// batches instead: panes already fired are written, dead letters
    /// fsynced, and the windows still open are *not* closed (their panes
    /// would be incomplete); their messages are handed back to the source at
    /// once, for a restarted or another instance to count.
    pub fn run(&mut self) -> Result<Counters> {
        let started = Instant::now();
        self.window.run_started_us = now_us();
        loop {
            if self.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return self.stop_now(started);
            }
            let reading = Instant::now();
            let Some(mut batch) = self.source.next_batch(self.batch_size)? else { break };
            self.latency.source.observe(reading.elapsed());
            self.apply_reloads()?;
            let now = now_us();
            self.window.engine.advance_processing_time(now);
            let (elements, late) = (self.counters.elements, self.counters.late);
            self.process_batch(&mut batch, now)?;
            self.late_share.record(now, self.counters.elements - elements, self.counters.late - late);
            if let Some(warning) = self.late_share.first_warning(now) {
                tracing::warn!("{warning}");
                eprintln!("warning: {warning}");
            }
            self.flush()?;
            self.window.engine.advance_watermark(self.window.watermark.current(now));
            self.flush()?;
            self.release_acks(&batch)?;
            self.publish_status();
        }
        self.apply_reloads()?;
        self.window.engine.advance_watermark(i64::MAX);
        self.flush()?;
        self.sink.finish()?;
        self.dead.flush()?;
        let done = self.acks.release(&self.window.engine);
        self.source.ack(&done);
        self.counters.dead_letters = self.dead.total();
        self.counters.elapsed = started.elapsed();
        self.publish_status();
        self.status.update(|s| s.running = false);
        Ok(self.counters.clone())
    }

    fn stop_now(&mut self, started: Instant) -> Result<Counters> {
        self.flush()?;
        self.sink.finish()?;
        self.dead.flush()?;
        let done = self.acks.release(&self.window.engine);
        self.source.ack(&done);
        let handed_back = self.source.close();
        eprintln!("stopped: windows still open are left to the next run; {handed_back} messages handed back for redelivery");
        self.counters.dead_letters = self.dead.total();
        self.counters.elapsed = started.elapsed();
        self.publish_status();
        self.status.update(|s| s.running = false);
        Ok(self.counters.clone())
    }

    /// Holds this batch's messages until their windows retire, and
    /// acknowledges every message whose results are now written.
    fn release_acks(&mut self, batch: &SourceBatch) -> Result<()> {
        if batch.ack_tokens.is_empty() && self.acks.is_empty() {
            return Ok(());
        }
        for (i, &token) in batch.ack_tokens.iter().enumerate() {
            let session = self.window.hold_session.get_mut(i).and_then(Option::take);
            self.acks.hold(token, self.window.hold_until.get(i).copied().unwrap_or(i64::MIN), session);
        }
        let done = self.acks.release(&self.window.engine);
        if !done.is_empty() {
            self.source.ack(&done);
        }
        Ok(())
    }

    fn process_batch(&mut self, batch: &mut SourceBatch, now: i64) -> Result<()> {
        let windowing = Instant::now();
        let mut transform_took = Duration::ZERO;
        let n = batch.events.len();
        self.counters.events_in += n as u64;
        self.window.start_batch(n, !batch.ack_tokens.is_empty());
        // Oversized events never reach a plugin.
        let mut kept: Vec<u32> = (0..n as u32).collect();
        if (0..n).any(|i| batch.events.get(i).len() > self.max_bytes) {
            let mut smaller = EventBatch::default();
            kept.clear();
            for i in 0..n {
                let event = batch.events.get(i);
                if event.len() > self.max_bytes {
                    let reason = format!("oversized: {} bytes, the limit is {} ([event] max_bytes)", event.len(), self.max_bytes);
                    self.dead.write((Stage::Decode, Reason::Oversized), &reason, batch.provenance(i), None, event)?;
                } else {
                    smaller.push(event);
                    kept.push(i as u32);
                }
            }
            batch.events = smaller;
        }
        let needs_payload = accumulators(&mut self.native, &mut self.aggregate).needs_payload();
        self.window.needs_payload = needs_payload;
        let mut transform_failed = false;
        let called = Instant::now();
        let transformed = match (&mut self.native, &mut self.transform) {
            (None, Some(_)) if self.suspended.is_some() => Some(quarantined(batch.events.len(), self.suspended.as_deref())),
            (Some(native), _) => Some((native.transform)(&batch.events)),
            (None, Some(transform)) => Some(transform.transform(&self.runtime, &mut batch.events)),
            (None, None) => None,
        };
        if let Some(out) = transformed {
            transform_took = called.elapsed();
            self.counters.transform_time += transform_took;
            self.latency.transform.observe(transform_took);
            self.counters.transform_restarts += out.restarts as u64;
            transform_failed = out.restarts > 0;
            let plugin = match (&self.native, &self.transform) {
                (None, Some(t)) => t.source.label(),
                _ => "native".to_string(),
            };
            let mut produced = vec![false; batch.events.len()];
            for r in &out.rejected {
                produced[r.source as usize] = true;
                let orig = kept[r.source as usize] as usize;
                let input = batch.events.get(r.source as usize);
                self.dead.write((Stage::Transform, r.code), &r.reason, batch.provenance(orig), Some(&plugin), input)?;
            }
            for e in &out.emitted {
                produced[e.source as usize] = true;
                let payload = e.payload.as_deref().unwrap_or_else(|| batch.events.get(e.source as usize));
                let orig = kept[e.source as usize];
                if payload.len() > self.max_bytes {
                    let reason = format!(
                        "oversized output: the transform emitted {} bytes, the limit is {} ([event] max_bytes)",
                        payload.len(),
                        self.max_bytes
                    );
                    let input = batch.events.get(e.source as usize);
                    let code = (Stage::Transform, Reason::OversizedOutput);
                    self.dead.write(code, &reason, batch.provenance(orig as usize), Some(&plugin), input)?;
                    continue;
                }
                let decoded = match (&e.key, e.event_time_us) {
                    (Some(k), Some(t)) => Ok((std::borrow::Cow::Borrowed(k.as_str()), Some(t))),
                    _ => self
                        .decoder
                        .decode(payload)
                        .map(|(k, t)| (e.key.as_deref().map(std::borrow::Cow::Borrowed).unwrap_or(k), e.event_time_us.or(t))),
                };
                match decoded.and_then(|(k, t)| Ok((k, event_time(self.decoder.event_time(), t, batch, orig as usize, now)?))) {
                    Ok((key, ts)) => {
                        self.window.admit(
                            Element { key: &key, ts, payload, source: orig },
                            batch,
                            now,
                            &mut self.dead,
                            &mut self.counters,
                        )?;
                    }
                    Err(refused) => {
                        let code = (Stage::Decode, refused.code);
                        self.dead.write(code, &refused.reason, batch.provenance(orig as usize), Some(&plugin), payload)?;
                    }
                }
            }
            self.counters.filtered += produced.iter().filter(|p| !**p).count() as u64;
        } else {
            for (i, &orig) in kept.iter().enumerate() {
                let event = batch.events.get(i);
                match self
                    .decoder
                    .decode(event)
                    .and_then(|(k, t)| Ok((k, event_time(self.decoder.event_time(), t, batch, orig as usize, now)?)))
                {
                    Ok((key, ts)) => {
                        self.window.admit(
                            Element { key: &key, ts, payload: event, source: orig },
                            batch,
                            now,
                            &mut self.dead,
                            &mut self.counters,
                        )?;
                    }
                    Err(refused) => {
                        let code = (Stage::Decode, refused.code);
                        self.dead.write(code, &refused.reason, batch.provenance(orig as usize), None, event)?;
                    }
                }
            }
        }
        if self.transform.is_some() && self.suspended.is_none() {
            self.check_quarantine(transform_failed);
        }
        // The aggregate's refusals name element numbers; map them back.
        let (ops, mut panes) = self.window.engine.drain();
        let called = Instant::now();
        let rejected = accumulators(&mut self.native, &mut self.aggregate)
            .apply(&ops, &mut self.window.agg_events, &mut panes)
            .map_err(stops_the_run)?;
        self.counters.aggregate_time += called.elapsed();
        self.latency.aggregate.observe(called.elapsed());
        self.latency.window.observe(windowing.elapsed().saturating_sub(called.elapsed()).saturating_sub(transform_took));
        for r in rejected {
            let element = r.event as usize;
            let payload = if needs_payload { self.window.agg_events.get(element).to_vec() } else { Vec::new() };
            let source = self.window.element_sources.get(element).map(|&s| batch.provenance(s as usize)).unwrap_or_default();
            self.dead.write((Stage::Aggregate, Reason::Refused), &r.reason, source, Some(&self.provenance.aggregate), &payload)?;
        }
        self.write_panes(panes)
    }

    /// Runs pending accumulator operations and writes the panes they fill.
    fn flush(&mut self) -> Result<()> {
        if !self.window.engine.has_output() {
            return Ok(());
        }
        let (ops, mut panes) = self.window.engine.drain();
        // Only extracts and releases are pending here: no payloads needed.
        let mut none = EventBatch::default();
        let called = Instant::now();
        accumulators(&mut self.native, &mut self.aggregate).apply(&ops, &mut none, &mut panes).map_err(stops_the_run)?;
        self.counters.aggregate_time += called.elapsed();
        self.write_panes(panes)
    }

    /// Keeps the most active keys of each window these panes close.
    fn record_closed_windows(&mut self, panes: &[crate::window::Pane]) {
        use crate::status::{push_recent, WindowTop, TOP_KEYS};
        let mut by_window: std::collections::BTreeMap<(i64, i64), Vec<&crate::window::Pane>> = Default::default();
        // A window has closed when its on-time pane fires (or its last).
        for p in panes.iter().filter(|p| p.is_last || p.timing == crate::window::Timing::OnTime) {
            by_window.entry((p.window.start, p.window.end)).or_default().push(p);
        }
        let time = |us: i64| {
            chrono::DateTime::from_timestamp_micros(us)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| us.to_string())
        };
        for ((start, end), mut list) in by_window {
            let number = |p: &crate::window::Pane| match &p.value {
                Some(crate::window::Value::Int(v)) => *v as f64,
                Some(crate::window::Value::Float(v)) => *v,
                _ => f64::NEG_INFINITY,
            };
            list.sort_by(|a, b| number(b).total_cmp(&number(a)).then_with(|| a.key.cmp(&b.key)));
            let top = list
                .iter()
                .take(TOP_KEYS)
                .map(|p| (p.key.clone(), p.value.as_ref().map(|v| v.to_json_value()).unwrap_or_default()))
                .collect();
            let closed = WindowTop { start: time(start), end: time(end), keys: list.len(), top };
            self.status.update(|s| push_recent(&mut s.recent_windows, closed));
        }
    }

    fn write_panes(&mut self, panes: Vec<crate::window::Pane>) -> Result<()> {
        if !panes.is_empty() {
            self.counters.panes += panes.len() as u64;
            let latest = panes.iter().map(|p| p.window.end).max();
            self.counters.last_window_end = self.counters.last_window_end.max(latest);
            self.record_closed_windows(&panes);
            let writing = Instant::now();
            let refused = self.sink.write(&panes, &self.provenance)?;
            self.latency.sink.observe(writing.elapsed());
            self.sink_rejected += refused.len() as u64;
            self.sink_rows += (panes.len() - refused.len()) as u64;
            for r in refused {
                let source = match panes.get(r.pane) {
                    Some(p) => format!("pane {} [{}, {}) #{}", p.key, p.window.start, p.window.end, p.index),
                    None => "pane".into(),
                };
                let code = (Stage::Sink, Reason::SinkRefused);
                self.dead.write(code, &r.reason, source, Some(&self.provenance.aggregate), r.row.as_bytes())?;
            }
        }
        // Dead letters are durable before any input is acknowledged.
        self.dead.flush()
    }
}

/// How long the client library keeps a held message leased: twice the
/// longest a message can be held (and at least its default of an hour), or
/// without end when windows have no bound (sessions): a lease that ran out
/// first would redeliver a message still held, and it would be counted twice.
/// An aggregate failure ends the run: its accumulators are gone, and the
/// input they covered must not be acknowledged.
fn stops_the_run(e: anyhow::Error) -> anyhow::Error {
    e.context("the run stops without acknowledging unwritten input, as the aggregate's accumulators are lost")
}

fn lease_for(cfg: &PipelineConfig) -> Duration {
    const CLIENT_DEFAULT: Duration = Duration::from_secs(3600);
    match cfg.max_hold() {
        Some(hold) => (hold * 2).max(CLIENT_DEFAULT),
        None => Duration::MAX,
    }
}

/// A batch the quarantined transform `plugin` is not called on: every event
/// a dead letter, to replay once a fixed version runs.
fn quarantined(n: usize, plugin: Option<&str>) -> TransformOutput {
    let reason = format!("not run: the transform {} is quarantined; load a fixed version, then `runnel dlq replay`", plugin.unwrap_or(""));
    let rejected = (0..n as u32)
        .map(|source| crate::plugin::transform::Rejected { source, code: Reason::Quarantined, reason: reason.clone() })
        .collect();
    TransformOutput { rejected, ..Default::default() }
}

/// The aggregate that runs: the native one when supplied, else the plugins.
fn accumulators<'a>(native: &'a mut Option<NativePlugins>, aggregate: &'a mut Aggregates) -> &'a mut dyn Accumulators {
    match native {
        Some(native) => native.aggregate.as_mut(),
        None => aggregate,
    }
}

/// An element's event time: from its field (`field`, already decoded), the
/// message's publish time, a message attribute, or its arrival.
fn event_time(how: &EventTime, field: Option<i64>, batch: &SourceBatch, i: usize, now: i64) -> Result<i64, Refusal> {
    match how {
        EventTime::Field(..) => field.ok_or_else(|| Refusal::new(Reason::MissingTime, "the event time field was not read")),
        EventTime::PublishTime => Ok(batch.publish_times[i]),
        EventTime::Arrival => Ok(now),
        EventTime::Attribute(name, format) => {
            let text = batch
                .attributes
                .get(i)
                .cloned()
                .flatten()
                .ok_or_else(|| Refusal::new(Reason::MissingTime, format!("missing event time attribute {name}")))?;
            let json = if *format == runnel_event::TimeFormat::Rfc3339 {
                serde_json::to_string(&text).expect("a string serialises")
            } else {
                text.clone()
            };
            runnel_event::parse_event_time(runnel_event::Raw::from_json(&json), *format)
                .map_err(|e| Refusal::new(Reason::BadTime, format!("event time attribute {name}: {e}")))
        }
    }
}
