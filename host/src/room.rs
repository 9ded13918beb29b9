//! A room: many participants' plugins side by side on one stream, each in
//! a slot of its own, their outputs compared live with the reference
//! solution's, and a leaderboard (correctness first, then time per event).
//!
//! Every slot has its own instance, store and sandbox limits. A slot that
//! fails (trap, time budget, memory cap) in `QUARANTINE_AFTER` batches in a
//! row, or whose aggregate traps (its state is gone), is quarantined: it
//! gets no more events, and no other slot notices. Transforms are compared
//! event by event (the outputs each input produced, or its refusal);
//! aggregates share one window engine, so every slot gets the same
//! accumulator operations, and are compared pane by pane.

use anyhow::{Context, Result};
use serde::Serialize;
use std::time::{Duration, Instant};

use crate::accumulate::{EventBatch, Pending};
use crate::config::EventConfig;
use crate::decode::Decoder;
use crate::grade::Exercise;
use crate::plugin::aggregate::AggregatePlugin;
use crate::plugin::contract::Kind;
use crate::plugin::runtime::PluginRuntime;
use crate::plugin::transform::{TransformOutput, TransformPlugin};
use crate::plugin::PluginSource;
use crate::source::{now_us, Source};
use crate::window::watermark::{WatermarkEstimator, WatermarkSpec};
use crate::window::{EngineConfig, Pane, Trigger, TriggerSpec, WindowEngine, WindowFn};

/// Batches in a row a transform slot may fail before it is quarantined.
pub const QUARANTINE_AFTER: u32 = 3;

enum Plugin {
    Transform(TransformPlugin),
    Aggregate(AggregatePlugin),
}

/// One participant's slot.
struct Slot {
    name: String,
    plugin: Option<Plugin>,
    stats: SlotStats,
    failing: u32,
}

/// What a slot did, and its verdict.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SlotStats {
    pub name: String,
    /// Events (transforms) or panes (aggregates) compared.
    pub compared: u64,
    /// Of those, equal to the reference's.
    pub matched: u64,
    /// `correct`, `wrong`, `quarantined` or `refused`.
    pub verdict: String,
    /// Why, for the last three; the first difference, for `wrong`.
    pub detail: Option<String>,
    /// Time in the slot's plugin per event.
    pub ns_per_event: f64,
    #[serde(skip)]
    time: Duration,
    #[serde(skip)]
    events: u64,
}

impl SlotStats {
    /// Matched share, in percent.
    pub fn correctness(&self) -> f64 {
        if self.compared == 0 {
            0.0
        } else {
            self.matched as f64 * 100.0 / self.compared as f64
        }
    }
}

/// The room's result.
#[derive(Clone, Debug, Serialize)]
pub struct RoomReport {
    pub exercise: String,
    pub events: u64,
    pub elapsed_s: f64,
    /// Best first.
    pub leaderboard: Vec<SlotStats>,
}

/// Runs `guests` beside `reference` on `source`.
pub struct Room {
    runtime: PluginRuntime,
    exercise: Exercise,
    reference: Plugin,
    slots: Vec<Slot>,
    decoder: Decoder,
    engine: WindowEngine,
    watermark: WatermarkEstimator,
    events: u64,
}

fn load(runtime: &PluginRuntime, exercise: &Exercise, source: PluginSource, decoder: &Decoder) -> Result<Plugin> {
    Ok(match exercise.kind {
        Kind::Transform => Plugin::Transform(TransformPlugin::load(runtime, source, &exercise.config, &decoder.fields_spec())?),
        Kind::Aggregate => Plugin::Aggregate(AggregatePlugin::load(runtime, source, &exercise.config)?),
    })
}

impl Room {
    pub fn new(runtime: PluginRuntime, exercise: Exercise, reference: PluginSource, guests: Vec<PluginSource>) -> Result<Self> {
        let events = EventConfig::default();
        let decoder = Decoder::new(events.key_pointer()?, events.event_time()?);
        let reference = load(&runtime, &exercise, reference, &decoder).context("the reference solution")?;
        let slots = guests
            .into_iter()
            .map(|g| {
                let name = g.name.rsplit('/').next().unwrap_or(&g.name).to_string();
                let mut stats = SlotStats { name: name.clone(), ..Default::default() };
                let plugin = match load(&runtime, &exercise, g, &decoder) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        stats.verdict = "refused".into();
                        stats.detail = Some(format!("{e:#}"));
                        None
                    }
                };
                Slot { name, plugin, stats, failing: 0 }
            })
            .collect();
        let engine = WindowEngine::new(EngineConfig {
            window_fn: WindowFn::Fixed { size: 60_000_000 },
            trigger: Trigger::compile(&TriggerSpec::Default).expect("the default trigger"),
            accumulating: false,
            allowed_lateness: 0,
        });
        let watermark = WatermarkEstimator::new(&WatermarkSpec::default()).map_err(anyhow::Error::msg)?;
        Ok(Self { runtime, exercise, reference, slots, decoder, engine, watermark, events: 0 })
    }

    /// Feeds the whole source (at most `limit` events), printing the
    /// leaderboard to stderr every `every` when given.
    pub fn run(&mut self, source: &mut dyn Source, limit: Option<u64>, every: Option<Duration>) -> Result<RoomReport> {
        let started = Instant::now();
        let mut printed = Instant::now();
        while let Some(mut batch) = source.next_batch(256)? {
            self.events += batch.events.len() as u64;
            match self.exercise.kind {
                Kind::Transform => self.transform_batch(&mut batch.events),
                Kind::Aggregate => self.aggregate_batch(&batch.events)?,
            }
            if every.is_some_and(|e| printed.elapsed() >= e) {
                eprintln!("{}\n", leaderboard_text(&self.report(started)));
                printed = Instant::now();
            }
            if limit.is_some_and(|l| self.events >= l) {
                break;
            }
        }
        if self.exercise.kind == Kind::Aggregate {
            self.engine.advance_watermark(i64::MAX);
            self.apply_aggregates(EventBatch::default())?;
        }
        Ok(self.report(started))
    }

    fn report(&self, started: Instant) -> RoomReport {
        let mut board: Vec<SlotStats> = self
            .slots
            .iter()
            .map(|s| {
                let mut st = s.stats.clone();
                st.ns_per_event = st.time.as_nanos() as f64 / st.events.max(1) as f64;
                if st.verdict.is_empty() {
                    st.verdict = if st.compared > 0 && st.matched == st.compared { "correct".into() } else { "wrong".into() };
                }
                st
            })
            .collect();
        let rank = |s: &SlotStats| match s.verdict.as_str() {
            "correct" => 0,
            "wrong" => 1,
            "quarantined" => 2,
            _ => 3,
        };
        board.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(b.correctness().total_cmp(&a.correctness()))
                .then(a.ns_per_event.total_cmp(&b.ns_per_event))
                .then(a.name.cmp(&b.name))
        });
        RoomReport {
            exercise: self.exercise.name.clone(),
            events: self.events,
            elapsed_s: started.elapsed().as_secs_f64(),
            leaderboard: board,
        }
    }

    fn transform_batch(&mut self, events: &mut EventBatch) {
        let Plugin::Transform(reference) = &mut self.reference else { unreachable!("kind checked") };
        let expected = match reference.transform_whole(&self.runtime, events) {
            Ok(out) => by_input(&out, events),
            Err(_) => {
                let out = reference.transform(&self.runtime, events);
                by_input(&out, events)
            }
        };
        for slot in &mut self.slots {
            let Some(Plugin::Transform(plugin)) = &mut slot.plugin else { continue };
            let called = Instant::now();
            let result = plugin.transform_whole(&self.runtime, events);
            slot.stats.time += called.elapsed();
            slot.stats.events += events.len() as u64;
            slot.stats.compared += events.len() as u64;
            match result {
                Ok(out) => {
                    slot.failing = 0;
                    let actual = by_input(&out, events);
                    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
                        if same_outputs(a, e) {
                            slot.stats.matched += 1;
                        } else if slot.stats.detail.is_none() {
                            slot.stats.detail = Some(describe_difference(slot.stats.events as usize - events.len() + i + 1, a, e));
                        }
                    }
                }
                Err(reason) => {
                    slot.failing += 1;
                    if slot.failing >= QUARANTINE_AFTER {
                        quarantine(slot, format!("failed {QUARANTINE_AFTER} batches in a row: {reason}"));
                    }
                }
            }
        }
    }

    fn aggregate_batch(&mut self, events: &EventBatch) -> Result<()> {
        let now = now_us();
        let mut payloads = EventBatch::default();
        for i in 0..events.len() {
            let event = events.get(i);
            if let Ok((key, Some(ts))) = self.decoder.decode(event) {
                let element = payloads.push(event);
                self.watermark.observe(ts, now);
                self.engine.process(&key, ts, element);
            }
        }
        for slot in &mut self.slots {
            slot.stats.events += payloads.len() as u64;
        }
        self.apply_aggregates(payloads.clone())?;
        self.engine.advance_watermark(self.watermark.current(now));
        self.apply_aggregates(payloads)
    }

    /// Runs the engine's pending operations on the reference and each slot,
    /// and compares the panes.
    fn apply_aggregates(&mut self, mut payloads: EventBatch) -> Result<()> {
        if !self.engine.has_output() {
            return Ok(());
        }
        let pending = Pending::take(&mut self.engine);
        let Plugin::Aggregate(reference) = &mut self.reference else { unreachable!("kind checked") };
        let expected = pending.run_copy(reference, &mut payloads).context("the reference solution failed")?.panes;
        for slot in &mut self.slots {
            let Some(Plugin::Aggregate(plugin)) = &mut slot.plugin else { continue };
            let called = Instant::now();
            let result = pending.run_copy(plugin, &mut payloads);
            slot.stats.time += called.elapsed();
            match result {
                Ok(actual) => compare_panes(&mut slot.stats, &actual.panes, &expected),
                Err(e) => quarantine(slot, format!("{e:#}")),
            }
        }
        Ok(())
    }
}

fn quarantine(slot: &mut Slot, reason: String) {
    tracing::warn!(slot = %slot.name, "{reason}");
    slot.plugin = None;
    slot.stats.verdict = "quarantined".into();
    slot.stats.detail = Some(reason);
}

/// For each input event: its outputs (as JSON), or `None` if refused.
fn by_input(out: &TransformOutput, events: &EventBatch) -> Vec<Option<Vec<serde_json::Value>>> {
    let mut per: Vec<Option<Vec<serde_json::Value>>> = vec![Some(Vec::new()); events.len()];
    for r in &out.rejected {
        per[r.source as usize] = None;
    }
    for e in &out.emitted {
        let bytes = e.output(events).bytes();
        if let Some(list) = per[e.source as usize].as_mut() {
            list.push(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null));
        }
    }
    per
}

fn same_outputs(a: &Option<Vec<serde_json::Value>>, e: &Option<Vec<serde_json::Value>>) -> bool {
    match (a, e) {
        (None, None) => true,
        (Some(a), Some(e)) => a.len() == e.len() && a.iter().zip(e).all(|(x, y)| crate::grade::same(x, y)),
        _ => false,
    }
}

fn describe_difference(input: usize, actual: &Option<Vec<serde_json::Value>>, expected: &Option<Vec<serde_json::Value>>) -> String {
    let what = match (actual, expected) {
        (Some(a), Some(e)) => {
            let mut diff = Vec::new();
            crate::grade::compare_outputs(e, a, &mut diff);
            diff.into_iter().next().unwrap_or_default()
        }
        (None, _) => "refused it; the reference does not".into(),
        (_, None) => "did not refuse it; the reference does".into(),
    };
    format!("event {input}: {what}")
}

fn compare_panes(stats: &mut SlotStats, actual: &[Pane], expected: &[Pane]) {
    for (a, e) in actual.iter().zip(expected) {
        stats.compared += 1;
        let equal = match (&a.value, &e.value) {
            (Some(x), Some(y)) => crate::grade::same(&x.to_json_value(), &y.to_json_value()),
            (x, y) => x == y,
        };
        if equal {
            stats.matched += 1;
        } else if stats.detail.is_none() {
            stats.detail = Some(format!(
                "{} in the window from {}: {}, the reference gives {}",
                e.key,
                e.window.start,
                a.value.as_ref().map(|v| v.to_json()).unwrap_or_default(),
                e.value.as_ref().map(|v| v.to_json()).unwrap_or_default()
            ));
        }
    }
}

/// The leaderboard as a table.
pub fn leaderboard_text(report: &RoomReport) -> String {
    let width = report.leaderboard.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{} — {} events in {:.1} s\n{:>2}  {:<width$}  {:<11}  {:>8}  {:>9}  detail\n",
        report.exercise, report.events, report.elapsed_s, "#", "slot", "verdict", "correct", "ns/event"
    );
    for (i, s) in report.leaderboard.iter().enumerate() {
        let detail: String = s.detail.clone().unwrap_or_default().chars().take(90).collect();
        out.push_str(&format!(
            "{:>2}  {:<width$}  {:<11}  {:>7.1}%  {:>9.0}  {detail}\n",
            i + 1,
            s.name,
            s.verdict,
            s.correctness(),
            s.ns_per_event
        ));
    }
    out.pop();
    out
}
