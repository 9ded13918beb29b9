//! The pipeline: one event's way through the host, as stages the driver
//! loop hands each batch to.
//!
//! ```text
//! ingest ─► transform (guest) ─► key + event time ─► windowing + triggers
//!   (size limit, acks)                                      │
//!        dead letters ◄── any stage's bad record            ▼
//!                 output (sink) ◄── panes ◄── aggregate (guest)
//! ```
//!
//! Each stage owns its state (`ingest.rs`, `transform.rs`, `windowing.rs`,
//! `aggregate.rs`, `output.rs`); this module wires them from the pipeline
//! file, swaps plugin versions between batches, and drives the loop. Each
//! source batch goes through the transform in one plugin call; every
//! resulting element is windowed and triggered one by one (Beam's rules);
//! the accumulator operations that produces run against the aggregate in as
//! few calls as possible; then the watermark advances, and fired panes go to
//! the sink. Panes are written and dead letters fsynced before any message
//! they cover is acknowledged.

use anyhow::{Context, Result};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::accumulate::{EventBatch, Pending, RejectedAdd};
use crate::cloud::CloudOnce;
use crate::config::{EventTime, PipelineConfig};
use crate::deadletter::{DeadLetters, Reason, Refusal, Stage};
use crate::decode::Decoder;
use crate::late_share::LateShare;
use crate::plugin::aggregate::AggregatePlugin;
use crate::plugin::bundled;
use crate::plugin::contract::Kind;
use crate::plugin::handover::{Aggregates, Handover};
use crate::plugin::reload::{Loaded, NewPlugin, Outcome, ReloadHandle, ReloadOutcome, Reloader};
use crate::plugin::runtime::PluginRuntime;
use crate::plugin::transform::{OutputBytes, TransformPlugin};
use crate::plugin::PluginSource;
use crate::sink::{Provenance, Sink};
use crate::source::{now_us, Source, SourceBatch};
use crate::status::LiveStatus;
pub use crate::telemetry::Counters;
use crate::telemetry::Telemetry;
use crate::window::watermark::WatermarkEstimator;
use crate::window::{Pane, WindowEngine};

mod aggregate;
mod ingest;
mod output;
mod transform;
mod windowing;

use aggregate::AggregateStage;
use ingest::Ingest;
pub use ingest::MaxBytes;
use output::Output;
use transform::{TransformStage, Transformed};
use windowing::{Element, WindowStage};

/// A turn of the run loop longer than this is a stall of the process (see
/// `WatermarkEstimator::not_running_for`): a turn is a source poll of at
/// most 200 ms and one batch, whose plugin calls have their own budget.
const STALL_US: i64 = 5_000_000;

/// A configured, ready-to-run pipeline.
pub struct Pipeline {
    reloader: Reloader,
    ingest: Ingest,
    decoder: Decoder,
    transform: TransformStage,
    /// Windowing: the engine, the watermark and the batch's element tables.
    window: WindowStage,
    aggregate: AggregateStage,
    output: Output,
    dead: DeadLetters,
    /// The versions that computed what is written now.
    provenance: Provenance,
    /// Plugin files to re-read on `runnel reload`.
    plugin_files: Vec<(Kind, PathBuf)>,
    status: LiveStatus,
    telemetry: Telemetry,
    /// The share of recent elements dropped as late.
    late_share: LateShare,
    /// Set (by a signal) to stop between batches; see [`Pipeline::run`].
    stop: Arc<AtomicBool>,
    /// Set (by `runnel drain`) to end the input between batches; see [`Pipeline::run`].
    drain: Arc<AtomicBool>,
}

/// Parts a caller supplies instead of the configured ones (the demo's
/// embedded data and table, tests' sources).
#[derive(Default)]
pub struct Overrides {
    pub source: Option<Box<dyn Source>>,
    pub sink: Option<Box<dyn Sink>>,
    /// Plugins written in plain Rust, run in place of the configured WASM
    /// ones (the benchmark's native twins, beside `runnel-limit`).
    pub native: Option<NativePlugins>,
}

/// A transform and an aggregate compiled into the host.
pub struct NativePlugins {
    /// Called like a transform plugin, with the same batches.
    pub transform: transform::NativeTransform,
    pub aggregate: Box<dyn crate::accumulate::Accumulators>,
}

/// A candidate element: an event as read, or a transform's output for it.
struct Candidate<'a> {
    /// Its bytes: the source event's as the transform left them.
    output: OutputBytes<'a>,
    /// Its source event's index in the batch as read.
    source: u32,
    /// Key and event time when the transform set them (else decoded).
    key: Option<&'a str>,
    time: Option<i64>,
}

impl Pipeline {
    /// Builds a pipeline from a validated config.
    pub fn from_config(cfg: &PipelineConfig) -> Result<Self> {
        Self::with_overrides(cfg, Overrides::default())
    }

    /// Builds a pipeline, with some parts supplied by the caller.
    pub fn with_overrides(cfg: &PipelineConfig, overrides: Overrides) -> Result<Self> {
        let runtime = Arc::new(PluginRuntime::with_cache(cfg.sandbox.limits(), cfg.sandbox.cache_dir())?);
        // Resolved once, and only if a part of the pipeline needs it.
        let mut cloud = CloudOnce::new(&cfg.cloud);
        let mut ingest = Ingest::open(cfg, overrides.source, &mut cloud)?;
        let decoder = Decoder::new(cfg.event.key_pointer()?, cfg.event.event_time()?);
        if let EventTime::Attribute(name, _) = decoder.event_time() {
            ingest.source.want_attribute(name);
        }
        let transform = load_transform(cfg, &runtime, &decoder)?;
        let transform_config = cfg.transform.as_ref().map(|t| t.config.to_config_string()).unwrap_or_default();
        let reloader = Reloader::start(runtime.clone(), decoder.fields_spec(), transform_config, cfg.aggregate.config.to_config_string())?;
        let plugin_files = plugin_files(cfg);
        if cfg.sandbox.watch_plugins {
            reloader.watch(plugin_files.clone(), Duration::from_millis(cfg.sandbox.watch_interval_ms));
        }
        let aggregate = load_aggregate(cfg, &runtime)?;
        let provenance = Provenance { transform: transform.as_ref().map(|t| t.source.label()), aggregate: aggregate.source.label() };
        let output = Output::open(cfg, overrides.sink, &mut cloud)?;
        let window = window_stage(cfg)?;
        let mut dead = DeadLetters::create(&cfg.resolve(&cfg.dead_letters.path))?;
        if let Some(topic) = &cfg.dead_letters.topic {
            dead.publish_to(cloud.get()?, topic).context("[dead_letters] topic")?;
        }
        let status = LiveStatus::default();
        status.update(|s| {
            s.transform = provenance.transform.clone();
            s.aggregate = provenance.aggregate.clone();
            s.running = true;
        });
        let (native_transform, native_aggregate) = overrides.native.map(|n| (n.transform, n.aggregate)).unzip();
        Ok(Self {
            reloader,
            ingest,
            decoder,
            transform: TransformStage::new(runtime, transform, cfg.sandbox.quarantine_after, native_transform),
            window,
            aggregate: AggregateStage::new(Aggregates::new(aggregate), native_aggregate),
            output,
            dead,
            provenance,
            plugin_files,
            status,
            telemetry: Telemetry::default(),
            late_share: LateShare::new(cfg.lateness_advice()),
            stop: Arc::default(),
            drain: Arc::default(),
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

    /// Setting it stops the run gracefully between batches.
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Setting it drains the run: see [`Pipeline::run`].
    pub fn drain_handle(&self) -> Arc<AtomicBool> {
        self.drain.clone()
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
    ///
    /// A drain (see [`drain_handle`](Self::drain_handle); Dataflow's Drain)
    /// ends the input between batches instead, as if a file had ended: no
    /// more pulls, every open window fires and is written, every message
    /// counted is acknowledged, and what the source had pulled but not yet
    /// handed over goes back for redelivery.
    pub fn run(&mut self) -> Result<Counters> {
        let started = Instant::now();
        self.window.run_started_us = now_us();
        let mut drained = false;
        let mut last_tick = now_us();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                self.flush()?;
                let counters = self.finish(started)?;
                let handed_back = self.ingest.source.close();
                eprintln!("stopped: windows still open are left to the next run; {handed_back} messages handed back for redelivery");
                return Ok(counters);
            }
            if self.drain.load(Ordering::SeqCst) {
                drained = true;
                break;
            }
            let reading = Instant::now();
            let Some(mut batch) = self.ingest.next()? else { break };
            self.telemetry.latency.source.observe(reading.elapsed());
            self.apply_reloads()?;
            let now = now_us();
            // One turn of this loop takes a poll (200 ms) and a batch; one
            // that took far longer means the process did not run (paused,
            // starved), and that is not time the input was quiet.
            if now - last_tick > STALL_US {
                self.window.watermark.not_running_for(now - last_tick);
            }
            last_tick = now;
            self.window.engine.advance_processing_time(now);
            let (elements, late) = (self.telemetry.counters.elements, self.telemetry.counters.late);
            self.process_batch(&mut batch, now)?;
            let counters = &self.telemetry.counters;
            self.late_share.record(now, counters.elements - elements, counters.late - late);
            if let Some(warning) = self.late_share.first_warning(now) {
                tracing::warn!("{warning}");
                eprintln!("warning: {warning}");
            }
            self.flush()?;
            self.advance_watermark(self.window.watermark.current(now))?;
            // Panes and dead letters are durable: acknowledge what they cover.
            self.ingest.hold(&batch, &mut self.window);
            self.ingest.ack_written(&self.window.engine);
            self.publish_status();
        }
        self.apply_reloads()?;
        // The end of input fires every window still open (all of them, for
        // a file: its watermark waits for the end); say what that cost.
        let (ending, panes) = (Instant::now(), self.telemetry.counters.panes);
        self.advance_watermark(i64::MAX)?;
        let fired = self.telemetry.counters.panes - panes;
        tracing::info!(
            panes = fired,
            ms = ending.elapsed().as_millis() as u64,
            "end of input: the windows still open fired and were written"
        );
        let counters = self.finish(started)?;
        if drained {
            let handed_back = self.ingest.source.close();
            eprintln!(
                "drained: every open window fired and was written, every message counted acknowledged; \
                 {handed_back} messages pulled but not yet counted handed back for redelivery"
            );
        }
        Ok(counters)
    }

    /// Ends a run: the sink finished, the written input acknowledged.
    fn finish(&mut self, started: Instant) -> Result<Counters> {
        self.output.sink.finish()?;
        self.dead.flush()?;
        self.ingest.ack_written(&self.window.engine);
        self.telemetry.counters.dead_letters = self.dead.total();
        self.telemetry.counters.elapsed = started.elapsed();
        self.publish_status();
        self.status.update(|s| s.running = false);
        Ok(self.telemetry.counters.clone())
    }

    /// One batch through the stages; what it fires is written, what it
    /// refuses is dead-lettered.
    fn process_batch(&mut self, batch: &mut SourceBatch, now: i64) -> Result<()> {
        let started = Instant::now();
        self.telemetry.counters.events_in += batch.events.len() as u64;
        self.window.start_batch(batch.events.len(), !batch.ack_tokens.is_empty());
        self.window.needs_payload = self.aggregate.needs_payload();
        let kept = self.ingest.screen(batch, &mut self.dead)?;
        let transform_took = match self.transform.run(&mut batch.events) {
            Some(transformed) => self.admit_transformed(batch, &kept, transformed, now)?,
            None => {
                for (i, &source) in kept.iter().enumerate() {
                    let event = Candidate { output: OutputBytes::unchanged(batch.events.get(i)), source, key: None, time: None };
                    self.admit(event, batch, None, now)?;
                }
                Duration::ZERO
            }
        };
        let aggregating = Instant::now();
        let fired = self.aggregate.fire(Pending::take(&mut self.window.engine), &mut self.window.agg_events)?;
        let took = aggregating.elapsed();
        self.telemetry.counters.aggregate_time += took;
        self.telemetry.latency.aggregate.observe(took);
        self.telemetry.latency.window.observe(started.elapsed().saturating_sub(took).saturating_sub(transform_took));
        self.dead_letter_refused_adds(&fired.refused, batch)?;
        self.write(&fired.panes)
    }

    /// Admits a transform's outputs; dead-letters its refusals. Returns the
    /// time the transform took.
    fn admit_transformed(&mut self, batch: &SourceBatch, kept: &[u32], t: Transformed, now: i64) -> Result<Duration> {
        let Transformed { out, took, plugin } = t;
        let counters = &mut self.telemetry.counters;
        counters.transform_time += took;
        counters.transform_guest_time += out.guest_time;
        counters.transform_restarts += u64::from(out.restarts);
        for (code, reason) in &out.restart_reasons {
            // Every restart is logged with its reason (the dead letters
            // hold it too, for the events it cost).
            tracing::warn!(plugin = %plugin, kind = %code, "restarting the transform after a failed call: {reason}");
            *counters.transform_restarts_by.entry(code.as_str()).or_default() += 1;
            counters.last_restart = Some(reason.clone());
        }
        self.telemetry.latency.transform.observe(took);
        // The plugin runtime has checked every output's `source` is in the batch.
        let mut produced = vec![false; batch.events.len()];
        for r in &out.rejected {
            produced[r.source as usize] = true;
            let provenance = batch.provenance(kept[r.source as usize] as usize);
            self.dead.write((Stage::Transform, r.code), &r.reason, provenance, Some(&plugin), batch.events.get(r.source as usize))?;
        }
        for e in &out.emitted {
            produced[e.source as usize] = true;
            let output = e.output(&batch.events);
            let source = kept[e.source as usize];
            if let Some(reason) = self.ingest.oversized_output(output.byte_len()) {
                let code = (Stage::Transform, Reason::OversizedOutput);
                self.dead.write(code, &reason, batch.provenance(source as usize), Some(&plugin), output.input)?;
                continue;
            }
            let candidate = Candidate { output, source, key: e.key.as_deref(), time: e.event_time_us };
            self.admit(candidate, batch, Some(&plugin), now)?;
        }
        self.telemetry.counters.filtered += produced.iter().filter(|p| !**p).count() as u64;
        if let Some((outcome, bad)) = self.transform.after_batch(out.restarts > 0) {
            self.quarantined(outcome, bad);
        }
        Ok(took)
    }

    /// Finds an element's key and event time and hands it to windowing, or
    /// dead-letters it with the reason.
    fn admit(&mut self, c: Candidate<'_>, batch: &SourceBatch, plugin: Option<&str>, now: i64) -> Result<()> {
        // The output's bytes are written out here only when its key or time
        // must be read from them.
        let bytes = if reads_payload(&self.decoder, c.key, c.time) { c.output.bytes() } else { Cow::Borrowed(&[][..]) };
        let decoded = key_and_time(&self.decoder, &bytes, c.key, c.time);
        let timed = decoded.and_then(|(k, t)| Ok((k, event_time(self.decoder.event_time(), t, batch, c.source as usize, now)?)));
        match timed {
            Ok((key, ts)) => {
                let element = Element { key: &key, ts, output: c.output, source: c.source };
                self.window.admit(element, batch, now, &mut self.dead, &mut self.telemetry.counters)
            }
            Err(refused) => {
                let provenance = batch.provenance(c.source as usize);
                self.dead.write((Stage::Decode, refused.code), &refused.reason, provenance, plugin, &c.output.bytes())
            }
        }
    }

    /// The aggregate's refusals name element numbers; map them back.
    fn dead_letter_refused_adds(&mut self, refused: &[RejectedAdd], batch: &SourceBatch) -> Result<()> {
        for r in refused {
            let element = r.event as usize;
            let payload = if self.window.needs_payload { self.window.agg_events.get(element).to_vec() } else { Vec::new() };
            let source = self.window.element_sources.get(element).map(|&s| batch.provenance(s as usize)).unwrap_or_default();
            self.dead.write((Stage::Aggregate, Reason::Refused), &r.reason, source, Some(&self.provenance.aggregate), &payload)?;
        }
        Ok(())
    }

    /// Advances the watermark to `watermark` and writes every pane it
    /// fires, a few thousand at a time (see
    /// [`WindowEngine::advance_watermark_within`]).
    fn advance_watermark(&mut self, watermark: i64) -> Result<()> {
        const PANES_PER_FLUSH: usize = 4096;
        while self.window.engine.advance_watermark_within(watermark, PANES_PER_FLUSH) {
            self.flush()?;
        }
        self.flush()
    }

    /// Runs pending accumulator operations and writes the panes they fill.
    fn flush(&mut self) -> Result<()> {
        if !self.window.engine.has_output() {
            return Ok(());
        }
        let called = Instant::now();
        // Only extracts and releases are pending here: no payloads needed.
        let fired = self.aggregate.fire(Pending::take(&mut self.window.engine), &mut EventBatch::default())?;
        self.telemetry.counters.aggregate_time += called.elapsed();
        self.write(&fired.panes)
    }

    /// Writes panes, then makes the dead letters durable: both before any
    /// input is acknowledged.
    fn write(&mut self, panes: &[Pane]) -> Result<()> {
        self.output.write(panes, &self.provenance, &mut self.dead, &mut self.telemetry, &self.status)?;
        self.dead.flush()
    }

    /// Swaps in plugin versions the loader has ready, between batches: the
    /// batch before ran wholly on the old version, the next runs wholly on
    /// the new one.
    fn apply_reloads(&mut self) -> Result<()> {
        for mut loaded in self.reloader.ready() {
            let started = Instant::now();
            let outcome = match std::mem::replace(&mut loaded.plugin, Err(String::new())) {
                Err(reason) => self.refused(&loaded, reason),
                Ok(_) if self.running_label(loaded.kind) == loaded.label => {
                    loaded.outcome(Outcome::Unchanged, "this version is already running".into())
                }
                Ok(NewPlugin::Transform(p)) => {
                    if let Some(older) = self.transform.swap(*p) {
                        self.reloader.retire(older);
                    }
                    self.provenance.transform = self.transform.label();
                    self.swapped(&loaded, "the next batch runs on it".into())
                }
                Ok(NewPlugin::Aggregate(p)) => self.swap_aggregate(&loaded, *p)?,
            };
            if outcome.outcome == Outcome::Swapped {
                self.telemetry.counters.reload_stalls.push(started.elapsed());
            }
            // Once on the terminal: a refusal is a warning in the log; a swap
            // is a plain line (and an info record for structured logs).
            if outcome.outcome == Outcome::Refused {
                tracing::warn!(kind = %outcome.kind, plugin = %outcome.plugin, "refused: {}", outcome.message);
            } else {
                tracing::info!(kind = %outcome.kind, plugin = %outcome.plugin, outcome = %outcome.outcome, "{}", outcome.message);
                eprintln!("{} {} {}: {}", outcome.kind, outcome.plugin, outcome.outcome, outcome.message);
            }
            self.status.record(outcome.clone());
            self.publish_status();
            loaded.answer(&outcome);
        }
        Ok(())
    }

    fn swap_aggregate(&mut self, loaded: &Loaded, new: AggregatePlugin) -> Result<ReloadOutcome> {
        let name = new.source.label();
        let live = self.window.engine.live_slots();
        Ok(match self.aggregate.plugins.swap(new, &live, self.window.engine.is_merging())? {
            Handover::Swapped { message, retired } => {
                if let Some(retired) = retired {
                    self.reloader.retire(retired);
                }
                self.provenance.aggregate = name;
                self.swapped(loaded, message)
            }
            Handover::Refused { reason, new } => {
                self.reloader.retire(new);
                self.refused(loaded, reason)
            }
        })
    }

    fn swapped(&mut self, loaded: &Loaded, message: String) -> ReloadOutcome {
        self.telemetry.counters.reloads += 1;
        loaded.outcome(Outcome::Swapped, message)
    }

    fn refused(&mut self, loaded: &Loaded, reason: String) -> ReloadOutcome {
        self.telemetry.counters.refused_reloads += 1;
        loaded.outcome(Outcome::Refused, format!("the running version stays: {reason}"))
    }

    fn running_label(&self, kind: Kind) -> String {
        match kind {
            Kind::Transform => self.provenance.transform.clone().unwrap_or_default(),
            Kind::Aggregate => self.provenance.aggregate.clone(),
        }
    }

    /// Reports a quarantined transform (see `transform.rs` for the rule).
    fn quarantined(&mut self, outcome: ReloadOutcome, bad: Option<TransformPlugin>) {
        if let Some(bad) = bad {
            self.reloader.retire(bad);
        }
        self.telemetry.counters.quarantines += 1;
        self.provenance.transform = self.transform.label();
        tracing::error!(plugin = %outcome.plugin, "transform quarantined: {}", outcome.message);
        eprintln!("transform {} quarantined: {}", outcome.plugin, outcome.message);
        self.status.record(outcome);
    }

    /// Publishes the counters and versions to the live status.
    fn publish_status(&self) {
        let retiring = self.aggregate.plugins.retiring().map(|(p, left)| (p.source.label(), left));
        let stats = self.window.engine.stats();
        let watermark = self.window.engine.watermark();
        let now = now_us();
        let late_recent = self.late_share.recent(now);
        let by_reason: Vec<(String, String, u64)> =
            self.dead.counts().iter().map(|((stage, code), n)| (stage.as_str().to_string(), code.as_str().to_string(), *n)).collect();
        let t = &self.telemetry;
        self.status.update(|s| {
            s.watermark_us = (watermark > i64::MIN && watermark < i64::MAX).then_some(watermark);
            s.processing_time_us = now;
            s.late_recent = late_recent;
            s.open_windows = stats.open_windows;
            s.keys = stats.keys;
            s.sink_rows = t.sink_rows;
            s.sink_rejected = t.sink_rejected;
            s.sink_retries = self.output.sink.retries();
            s.dead_letters_by_reason = by_reason;
            s.recent_dead_letters = self.dead.recent().clone();
            s.latency = t.latency.clone();
            s.counters = (&t.counters).into();
            s.counters.counts.dead_letters = self.dead.total();
            s.counters.unacked_messages = self.ingest.source.unacked() as u64;
            s.counters.source_quiet_s = self.ingest.source.quiet_for().map(|d| d.as_secs_f64());
            s.counters.source_dedup = self.ingest.source.dedup_stats();
            s.transform = self.provenance.transform.clone();
            s.aggregate = self.provenance.aggregate.clone();
            s.retiring_aggregate = retiring;
        });
    }
}

/// The file's transform plugin, resolved, checked and started (`None`
/// without one); runnel_beam's bridge loads it the same way.
pub fn load_transform(cfg: &PipelineConfig, runtime: &PluginRuntime, decoder: &Decoder) -> Result<Option<TransformPlugin>> {
    let Some(t) = &cfg.transform else { return Ok(None) };
    let source = PluginSource::resolve(&t.plugin, &cfg.base_dir).context("[transform] plugin")?;
    let plugin = TransformPlugin::load(runtime, source, &t.config.to_config_string(), &decoder.fields_spec())
        .context("[transform] plugin refused")?;
    Ok(Some(plugin))
}

/// The file's aggregate plugin, resolved, checked and started.
pub fn load_aggregate(cfg: &PipelineConfig, runtime: &PluginRuntime) -> Result<AggregatePlugin> {
    let source = PluginSource::resolve(&cfg.aggregate.plugin, &cfg.base_dir).context("[aggregate] plugin")?;
    AggregatePlugin::load(runtime, source, &cfg.aggregate.config.to_config_string()).context("[aggregate] plugin refused")
}

/// The plugin files of a pipeline file, to watch and re-read (bundled
/// plugins have none).
fn plugin_files(cfg: &PipelineConfig) -> Vec<(Kind, PathBuf)> {
    let mut files = Vec::new();
    if let Some(t) = cfg.transform.as_ref().filter(|t| bundled::find(&t.plugin).is_none()) {
        files.push((Kind::Transform, cfg.resolve(Path::new(&t.plugin))));
    }
    if bundled::find(&cfg.aggregate.plugin).is_none() {
        files.push((Kind::Aggregate, cfg.resolve(Path::new(&cfg.aggregate.plugin))));
    }
    files
}

/// The windowing stage from `[windowing]` and `[watermark]`.
fn window_stage(cfg: &PipelineConfig) -> Result<WindowStage> {
    let engine_cfg = cfg.windowing.engine_config().map_err(anyhow::Error::msg)?;
    let mut watermark = WatermarkEstimator::new(&cfg.watermark_spec()).map_err(anyhow::Error::msg)?;
    if let Some(hold) = cfg.source.restart_hold() {
        // Messages a previous run held come back once their lease runs
        // out; they must not find their windows closed.
        watermark.default_startup_hold(hold.as_micros() as i64);
    }
    Ok(WindowStage::new(WindowEngine::new(engine_cfg), watermark))
}

/// An element's key and its event time from a field: what the transform
/// set, else read from the payload. Public so runnel on Beam (the
/// `runnel-beam` bridge) decides exactly as `runnel run` does.
pub fn key_and_time<'a>(
    decoder: &Decoder,
    payload: &'a [u8],
    key: Option<&'a str>,
    time: Option<i64>,
) -> Result<(Cow<'a, str>, Option<i64>), Refusal> {
    match key {
        Some(k) if !reads_payload(decoder, key, time) => Ok((Cow::Borrowed(k), time)),
        _ => decoder.decode(payload).map(|(k, t)| (key.map(Cow::Borrowed).unwrap_or(k), time.or(t))),
    }
}

/// Whether [`key_and_time`] reads the payload: not when the transform gave
/// the key and either the time or a time that is not a field's (publish
/// time, an attribute, arrival). The transform stage's one pass gives both,
/// so its outputs are never scanned a second time.
pub fn reads_payload(decoder: &Decoder, key: Option<&str>, time: Option<i64>) -> bool {
    key.is_none() || (time.is_none() && decoder.time_is_field())
}

/// The event time when it comes from a field: refused when the field was
/// not read.
pub fn field_time(field: Option<i64>) -> Result<i64, Refusal> {
    field.ok_or_else(|| Refusal::new(Reason::MissingTime, "the event time field was not read"))
}

/// An element's event time: the one the transform set or its field's
/// (`set`, already decoded), else the message's publish time, a message
/// attribute, or its arrival, as `[event] time` says. A time the transform
/// sets overrides the configured one whatever it is (as the contract says,
/// and as runnel on Beam does).
fn event_time(how: &EventTime, set: Option<i64>, batch: &SourceBatch, i: usize, now: i64) -> Result<i64, Refusal> {
    if let Some(time) = set {
        return Ok(time);
    }
    match how {
        EventTime::Field(..) => field_time(set),
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
