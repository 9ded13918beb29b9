//! `runnel replay`: drives the window engine with a scripted stream, the way
//! Beam's `TestStream` does, and writes every pane it emits.
//!
//! The scenario format is documented in `docs/replay-format.md` (a copy of
//! the conformance format the Beam goldens in `tests/replay/` use): line 1 is
//! the windowing config, then one step per line — an element with its event
//! time, a watermark advance, or a processing-time advance.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::path::Path;

use crate::accumulate::{Accumulators, EventBatch, Pending};
use crate::window::{EngineConfig, Pane, Trigger, TriggerSpec, WindowEngine, WindowFn, WindowSpec};
use runnel_event::{FieldScanner, KeyAndTime, Pointer};

/// Accumulating or discarding fired panes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Accumulation {
    Accumulating,
    #[default]
    Discarding,
}

/// The windowing strategy: Beam's `WindowInto(window, trigger,
/// accumulation_mode, allowed_lateness)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Windowing {
    pub window: WindowSpec,
    #[serde(default = "default_trigger")]
    pub trigger: TriggerSpec,
    #[serde(default)]
    pub accumulation: Accumulation,
    #[serde(default)]
    pub allowed_lateness_s: f64,
}

fn default_trigger() -> TriggerSpec {
    TriggerSpec::Default
}

impl Windowing {
    /// Validates the strategy into an engine configuration.
    pub fn engine_config(&self) -> Result<EngineConfig, String> {
        if !(self.allowed_lateness_s.is_finite() && self.allowed_lateness_s >= 0.0) {
            return Err(format!("allowed_lateness_s must be ≥ 0, got {}", self.allowed_lateness_s));
        }
        Ok(EngineConfig {
            window_fn: WindowFn::from_spec(&self.window)?,
            trigger: Trigger::compile(&self.trigger)?,
            accumulating: self.accumulation == Accumulation::Accumulating,
            allowed_lateness: (self.allowed_lateness_s * 1e6).round() as i64,
        })
    }
}

#[derive(Deserialize)]
struct ConfigLine {
    config: ScenarioConfig,
}

#[derive(Deserialize)]
struct ScenarioConfig {
    #[serde(flatten)]
    windowing: Windowing,
    #[serde(default = "default_aggregate")]
    aggregate: String,
}

fn default_aggregate() -> String {
    "count".into()
}

/// One scripted step.
#[derive(Debug)]
pub enum Step {
    Element { event: Box<RawValue>, ts_us: i64 },
    Watermark(i64),
    ProcessingTime(i64),
}

/// A parsed scenario.
pub struct Scenario {
    pub windowing: Windowing,
    pub steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepLine {
    event: Option<Box<RawValue>>,
    ts_us: Option<i64>,
    watermark_us: Option<serde_json::Value>,
    processing_time_us: Option<i64>,
}

impl Scenario {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read scenario {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in scenario {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines.next().context("the scenario is empty; line 1 must be {\"config\": ...}")?;
        let config: ConfigLine =
            serde_json::from_str(first).context("line 1 must be {\"config\": {\"window\": ..., \"trigger\": ..., ...}}")?;
        if config.config.aggregate != "count" {
            bail!(
                "line 1: aggregate {:?} is not supported by scenarios; use \"count\" (pass --aggregate PLUGIN.wasm to count with a plugin)",
                config.config.aggregate
            );
        }
        let mut steps = Vec::new();
        for (i, line) in lines {
            let n = i + 1;
            let step: StepLine = serde_json::from_str(line).with_context(|| format!("line {n} is not a scenario step"))?;
            steps.push(match step {
                StepLine { event: Some(event), ts_us: Some(ts_us), watermark_us: None, processing_time_us: None } => {
                    Step::Element { event, ts_us }
                }
                StepLine { event: None, ts_us: None, watermark_us: Some(w), processing_time_us: None } => Step::Watermark(match &w {
                    serde_json::Value::String(s) if s == "inf" => i64::MAX,
                    serde_json::Value::Number(n) if n.is_i64() => n.as_i64().expect("checked"),
                    other => bail!("line {n}: watermark_us must be an integer or \"inf\", got {other}"),
                }),
                StepLine { event: None, ts_us: None, watermark_us: None, processing_time_us: Some(p) } => Step::ProcessingTime(p),
                _ => bail!(
                    "line {n}: a step is {{\"event\": ..., \"ts_us\": N}}, {{\"watermark_us\": N|\"inf\"}} or {{\"processing_time_us\": N}}"
                ),
            });
        }
        Ok(Self { windowing: config.config.windowing, steps })
    }
}

/// Runs a scenario; returns every pane in emission order.
pub fn run(scenario: &Scenario, aggregate: &mut dyn Accumulators) -> Result<Vec<Pane>> {
    let cfg = scenario.windowing.engine_config().map_err(anyhow::Error::msg)?;
    let mut engine = WindowEngine::new(cfg);
    let mut scanner = FieldScanner::default();
    let key_field = KeyAndTime::new(&mut scanner, Some(Pointer::parse("/user_pseudo_id").expect("valid")), None);
    let mut out = Vec::new();
    let mut batch = EventBatch::default();
    engine.advance_processing_time(0);
    for (i, step) in scenario.steps.iter().enumerate() {
        batch.clear();
        match step {
            Step::Element { event, ts_us } => {
                let bytes = event.get().as_bytes();
                let scanned = scanner.scan(bytes).map_err(|e| anyhow::anyhow!("step {}: {e}", i + 2))?;
                let key = key_field.key(&scanned).map_err(|e| anyhow::anyhow!("step {}: {e}", i + 2))?.expect("a key pointer is set");
                let index = if aggregate.needs_payload() { batch.push(bytes) } else { 0 };
                engine.process(&key, *ts_us, index);
            }
            Step::Watermark(w) => engine.advance_watermark(*w),
            Step::ProcessingTime(p) => engine.advance_processing_time(*p),
        }
        let fired = Pending::take(&mut engine).run(aggregate, &mut batch)?;
        if let Some(r) = fired.refused.first() {
            bail!("step {}: the aggregate refused the element: {}", i + 2, r.reason);
        }
        out.extend(fired.panes);
    }
    Ok(out)
}

/// A pane in the replay output format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaneRecord {
    pub key: String,
    pub window_start_us: i64,
    pub window_end_us: i64,
    pub timing: String,
    pub pane_index: u32,
    pub is_last: bool,
    pub value: serde_json::Value,
}

impl PaneRecord {
    pub fn from_pane(p: &Pane) -> Self {
        Self {
            key: p.key.clone(),
            window_start_us: p.window.start,
            window_end_us: p.window.end,
            timing: p.timing.as_str().to_string(),
            pane_index: p.index,
            is_last: p.is_last,
            value: p.value.as_ref().map(|v| v.to_json_value()).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Compares panes with a golden the way the conformance rules say: as
/// sorted sets, on every field but `is_last`. Returns a readable diff.
pub fn compare(actual: &[PaneRecord], golden: &[PaneRecord]) -> Result<(), String> {
    compare_ignoring(actual, golden, &[])
}

/// Like [`compare`], also ignoring the named fields (`timing`,
/// `pane_index`): for the documented differences between Beam runners.
pub fn compare_ignoring(actual: &[PaneRecord], golden: &[PaneRecord], ignore: &[&str]) -> Result<(), String> {
    let norm = |v: &[PaneRecord]| {
        let mut v: Vec<PaneRecord> = v
            .iter()
            .cloned()
            .map(|mut p| {
                p.is_last = false;
                if ignore.contains(&"timing") {
                    p.timing = String::new();
                }
                if ignore.contains(&"pane_index") {
                    p.pane_index = 0;
                }
                p
            })
            .collect();
        v.sort_by_cached_key(|p| (p.key.clone(), p.window_start_us, p.window_end_us, p.pane_index, p.timing.clone(), p.value.to_string()));
        v
    };
    let (a, g) = (norm(actual), norm(golden));
    if a == g {
        return Ok(());
    }
    let missing: Vec<_> = g.iter().filter(|p| !a.contains(p)).collect();
    let extra: Vec<_> = a.iter().filter(|p| !g.contains(p)).collect();
    let show = |p: &PaneRecord| {
        format!("  {} [{}, {}) {} #{} value {}", p.key, p.window_start_us, p.window_end_us, p.timing, p.pane_index, p.value)
    };
    let mut msg = format!("{} panes expected, {} emitted\n", g.len(), a.len());
    if !missing.is_empty() {
        msg += "expected but not emitted:\n";
        msg += &missing.iter().map(|p| show(p)).collect::<Vec<_>>().join("\n");
        msg += "\n";
    }
    if !extra.is_empty() {
        msg += "emitted but not expected:\n";
        msg += &extra.iter().map(|p| show(p)).collect::<Vec<_>>().join("\n");
    }
    Err(msg)
}

/// Reads an NDJSON file of panes (a golden or an earlier output).
pub fn read_panes(path: &Path) -> Result<Vec<PaneRecord>> {
    crate::ndjson::read(path)
}
