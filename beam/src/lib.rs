//! # runnel_beam._bridge: runnel's plugin runtime, for Apache Beam
//!
//! The Python package `runnel_beam` (beside this crate) runs a runnel
//! pipeline file on Apache Beam. Everything that touches a plugin goes
//! through this module, which is the host's own code (`runnel` as a
//! library): the same contract checks, sandbox limits, native one-pass read
//! of key, event time and declared fields, and the same dead-letter reasons,
//! so a plugin that passes `runnel check` behaves the same in both engines.
//!
//! Python crosses into Rust once per bundle, not per event: a bundle's
//! events come in as one bytes buffer and their end offsets, and the GIL is
//! released while the plugin runs.
//!
//! ## Layout
//! - [`Pipeline`]: a pipeline file, validated by the host (`plan()` is what
//!   the Python side builds the Beam graph from), and the pane row format;
//! - [`Stage`]: ingest + transform + decode for a bundle: elements
//!   (key, event time, payload) and dead letters (stage, code, reason);
//! - [`Combine`]: the aggregate as Beam's CombineFn over exported state bytes.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use runnel::batch::EventBatch;
use runnel::config::PipelineConfig;
use runnel::deadletter::{DeadLetter, Reason, Stage as DeadStage};
use runnel::decode::Decoder;
use runnel::pipeline::{key_and_time, MaxBytes};
use runnel::plugin::aggregate::AggregatePlugin;
use runnel::plugin::runtime::PluginRuntime;
use runnel::plugin::transform::TransformPlugin;
use runnel::sink::bigquery::table_row;
use runnel::sink::{row, Provenance};
use runnel::window::{AccOp, Pane, Timing, Value, Window};

fn err(e: anyhow::Error) -> PyErr {
    PyValueError::new_err(format!("{e:#}"))
}

/// One runtime per process and sandbox limits: Beam makes many DoFn and
/// CombineFn instances in a worker; they share one engine and code cache.
fn runtime(cfg: &PipelineConfig) -> Result<Arc<PluginRuntime>> {
    static RUNTIMES: Mutex<Vec<(String, Arc<PluginRuntime>)>> = Mutex::new(Vec::new());
    let limits = cfg.sandbox.limits();
    let id = format!("{limits:?}");
    let mut all = RUNTIMES.lock().expect("not poisoned");
    if let Some((_, r)) = all.iter().find(|(k, _)| *k == id) {
        return Ok(r.clone());
    }
    let r = Arc::new(PluginRuntime::with_cache(limits, cfg.sandbox.cache_dir())?);
    all.push((id, r.clone()));
    Ok(r)
}

/// A pipeline file, read and validated by the host.
#[pyclass(frozen)]
struct Pipeline {
    cfg: PipelineConfig,
}

#[pymethods]
impl Pipeline {
    #[new]
    fn new(path: &str) -> PyResult<Self> {
        let cfg = PipelineConfig::load(std::path::Path::new(path)).map_err(err)?;
        Ok(Self { cfg })
    }

    /// The validated file as JSON (defaults filled in), with relative paths
    /// resolved against the file's folder.
    fn plan(&self) -> PyResult<String> {
        let mut plan = serde_json::to_value(&self.cfg).map_err(|e| err(e.into()))?;
        let resolve = |p: &std::path::Path| self.cfg.resolve(p).display().to_string();
        if let runnel::config::SourceConfig::File { path } = &self.cfg.source {
            plan["source"]["path"] = resolve(path).into();
        }
        if let runnel::config::SinkKind::Ndjson { path } = &self.cfg.sink.kind {
            plan["sink"]["path"] = resolve(path).into();
        }
        plan["dead_letters"]["path"] = resolve(&self.cfg.dead_letters.path).into();
        Ok(plan.to_string())
    }

    /// One pane's row, exactly as `runnel run`'s sink writes it (NDJSON, or
    /// a BigQuery table's columns).
    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        key: String,
        value_json: &str,
        start_us: i64,
        end_us: i64,
        timing: &str,
        index: u32,
        is_last: bool,
        transform: Option<String>,
        aggregate: String,
    ) -> PyResult<String> {
        let timing = match timing {
            "EARLY" => Timing::Early,
            "ON_TIME" => Timing::OnTime,
            "LATE" => Timing::Late,
            other => return Err(PyValueError::new_err(format!("unknown pane timing {other:?}"))),
        };
        let value = value_of(value_json)?;
        let pane =
            Pane { key, window: Window { start: start_us, end: end_us }, timing, index, is_last, value: Some(value), computed_by: None };
        let (columns, provenance) = (self.cfg.sink.columns(), Provenance { transform, aggregate });
        let row = match self.cfg.sink.bigquery() {
            Some(table) => table_row(&pane, &provenance, &columns, table.window_columns),
            None => row(&pane, &provenance, &columns),
        };
        Ok(serde_json::Value::Object(row).to_string())
    }
}

/// A value as the aggregate's `extract` gave it (see [`Combine::extract`]).
fn value_of(json: &str) -> PyResult<Value> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| PyValueError::new_err(format!("a value that is not JSON: {e}")))?;
    Ok(match v {
        serde_json::Value::Number(n) if n.is_i64() => Value::Int(n.as_i64().expect("checked")),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::Text(s),
        other => Value::Json(other.to_string()),
    })
}

/// The events of a bundle: one buffer and each event's end offset.
fn batch(bytes: &[u8], ends: &[u32]) -> PyResult<EventBatch> {
    let mut batch = EventBatch::default();
    let mut start = 0usize;
    for &end in ends {
        let end = end as usize;
        if end < start || end > bytes.len() {
            return Err(PyValueError::new_err(format!("event ends out of order or past the buffer: {end} after {start}")));
        }
        batch.push(&bytes[start..end]);
        start = end;
    }
    Ok(batch)
}

struct StageInner {
    runtime: Arc<PluginRuntime>,
    transform: Option<TransformPlugin>,
    decoder: Decoder,
    max_bytes: MaxBytes,
}

/// An element: (the index of the input it came from, key, event time in µs
/// or None for that input's own timestamp, payload).
type Element = (u32, String, Option<i64>, Py<PyBytes>);
/// A dead letter: (input index, its line as `runnel run` writes it, which
/// `runnel dlq` reads).
type Dead = (u32, String);

/// What happened to one input event, computed without the GIL.
enum Outcome {
    Element { key: String, time: Option<i64>, payload: Option<Vec<u8>>, source: u32 },
    Dead { source: u32, stage: DeadStage, code: Reason, reason: String, plugin: bool, payload: Option<Vec<u8>> },
}

/// Ingest, transform and decode for a bundle, as `runnel run` does them.
#[pyclass(frozen)]
struct Stage {
    inner: Mutex<StageInner>,
    label: Option<String>,
}

#[pymethods]
impl Stage {
    #[new]
    fn new(pipeline: &Pipeline) -> PyResult<Self> {
        let cfg = &pipeline.cfg;
        let open = || -> Result<StageInner> {
            let runtime = runtime(cfg)?;
            let decoder = Decoder::new(cfg.event.key_pointer()?, cfg.event.event_time()?);
            let transform = runnel::pipeline::load_transform(cfg, &runtime, &decoder)?;
            Ok(StageInner { runtime, transform, decoder, max_bytes: MaxBytes(cfg.event.max_bytes) })
        };
        let inner = open().map_err(err)?;
        let label = inner.transform.as_ref().map(|t| t.source.label());
        Ok(Self { inner: Mutex::new(inner), label })
    }

    /// The transform's `name@hash`, if there is one.
    #[getter]
    fn label(&self) -> Option<String> {
        self.label.clone()
    }

    /// Runs a bundle: `ends[i]` is where event i ends in `events`. Returns
    /// (elements, dead letters); a bad event costs only itself.
    /// `origin` names where the bundle came from (a dead letter's `source`).
    fn process(&self, py: Python<'_>, events: &[u8], ends: Vec<u32>, origin: &str) -> PyResult<(Vec<Element>, Vec<Dead>)> {
        let input = batch(events, &ends)?;
        let outcomes = py.detach(|| {
            let mut inner = self.inner.lock().map_err(|_| PyRuntimeError::new_err("a previous bundle panicked in the bridge"))?;
            Ok::<_, PyErr>(inner.run(&input))
        })?;
        let mut elements = Vec::new();
        let mut dead = Vec::new();
        for o in outcomes {
            match o {
                Outcome::Element { key, time, payload, source } => {
                    let bytes = PyBytes::new(py, payload.as_deref().unwrap_or_else(|| input.get(source as usize)));
                    elements.push((source, key, time, bytes.unbind()));
                }
                Outcome::Dead { source, stage, code, reason, plugin, payload } => {
                    let payload = payload.as_deref().unwrap_or_else(|| input.get(source as usize));
                    let plugin = if plugin { self.label.as_deref() } else { None };
                    let letter = DeadLetter::new((stage, code), &reason, origin.to_string(), plugin, payload);
                    dead.push((source, serde_json::to_string(&letter).map_err(|e| err(e.into()))?));
                }
            }
        }
        Ok((elements, dead))
    }
}

impl StageInner {
    fn run(&mut self, input: &EventBatch) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(input.len());
        // Oversized events never reach the plugin ([event] max_bytes).
        let mut kept = EventBatch::default();
        let mut sources = Vec::with_capacity(input.len());
        for i in 0..input.len() {
            let event = input.get(i);
            if let Some(reason) = self.max_bytes.oversized(event.len()) {
                let source = i as u32;
                out.push(Outcome::Dead { source, stage: DeadStage::Decode, code: Reason::Oversized, reason, plugin: false, payload: None });
            } else {
                kept.push(event);
                sources.push(i as u32);
            }
        }
        let Some(transform) = self.transform.as_mut() else {
            for (i, &source) in sources.iter().enumerate() {
                out.push(self.decode(source, kept.get(i), None, None, None));
            }
            return out;
        };
        let result = transform.transform(&self.runtime, &kept);
        for r in result.rejected {
            let source = sources[r.source as usize];
            out.push(Outcome::Dead { source, stage: DeadStage::Transform, code: r.code, reason: r.reason, plugin: true, payload: None });
        }
        for e in result.emitted {
            let source = sources[e.source as usize];
            let input = kept.get(e.source as usize);
            if let Some(reason) = self.max_bytes.oversized_output(e.payload.len(input)) {
                let code = Reason::OversizedOutput;
                out.push(Outcome::Dead { source, stage: DeadStage::Transform, code, reason, plugin: true, payload: None });
                continue;
            }
            out.push(self.decode(source, input, e.payload.into_bytes(input), e.key.as_deref(), e.event_time_us));
        }
        out
    }

    /// An output's key and event time, decided by the pipeline's own
    /// `key_and_time` and `field_time`; `edited` is the output's payload
    /// when it is not the input event (`input`).
    fn decode(&self, source: u32, input: &[u8], edited: Option<Vec<u8>>, key: Option<&str>, time: Option<i64>) -> Outcome {
        let field_time = self.decoder.time_is_field();
        let payload = edited.as_deref().unwrap_or(input);
        let decided = key_and_time(&self.decoder, payload, key, time)
            .and_then(|(key, time)| Ok((key.into_owned(), if field_time { Some(runnel::pipeline::field_time(time)?) } else { time })));
        match decided {
            Ok((key, time)) => Outcome::Element { key, time, payload: edited, source },
            Err(refused) => Outcome::Dead {
                source,
                stage: DeadStage::Decode,
                code: refused.code,
                reason: refused.reason,
                // A missing time is the pipeline file's doing, not the plugin's.
                plugin: refused.code != Reason::MissingTime,
                payload: Some(payload.to_vec()),
            },
        }
    }
}

/// The aggregate plugin as Beam's CombineFn: an accumulator crosses as the
/// bytes of the plugin's `export-state`. Each call works on scratch slots
/// of the one live instance and releases them.
#[pyclass(frozen)]
struct Combine {
    plugin: Mutex<AggregatePlugin>,
    label: String,
    needs_payload: bool,
}

impl Combine {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, AggregatePlugin>> {
        self.plugin.lock().map_err(|_| PyRuntimeError::new_err("a previous call panicked in the bridge"))
    }
}

fn failed(e: anyhow::Error) -> PyErr {
    PyRuntimeError::new_err(format!("{e:#}"))
}

/// Slot 0 holds `state` (or a new accumulator).
fn load_slot(plugin: &mut AggregatePlugin, state: Option<&[u8]>) -> Result<()> {
    use runnel::accumulate::Accumulators;
    match state {
        Some(bytes) => plugin.import_state(&[0], vec![bytes.to_vec()]),
        None => plugin.apply(&[AccOp::Release { slot: 0 }], &mut EventBatch::default(), &mut []).map(drop),
    }
}

#[pymethods]
impl Combine {
    #[new]
    fn new(pipeline: &Pipeline) -> PyResult<Self> {
        let cfg = &pipeline.cfg;
        let plugin = runtime(cfg).and_then(|runtime| runnel::pipeline::load_aggregate(cfg, &runtime)).map_err(err)?;
        use runnel::accumulate::Accumulators;
        let (label, needs_payload) = (plugin.source.label(), plugin.needs_payload());
        Ok(Self { plugin: Mutex::new(plugin), label, needs_payload })
    }

    #[getter]
    fn label(&self) -> String {
        self.label.clone()
    }

    /// Whether `add` reads the events (when not, Python may send empty ones).
    #[getter]
    fn needs_payload(&self) -> bool {
        self.needs_payload
    }

    /// Beam's add_inputs: `state` (None for a new accumulator) with the
    /// events added. Returns (new state, reasons of the adds it refused).
    fn add(&self, py: Python<'_>, state: Option<&[u8]>, events: &[u8], ends: Vec<u32>) -> PyResult<(Py<PyBytes>, Vec<String>)> {
        use runnel::accumulate::Accumulators;
        let mut input = batch(events, &ends)?;
        let (bytes, refused) = py.detach(|| {
            let mut plugin = self.lock()?;
            let mut run = || -> Result<(Vec<u8>, Vec<String>)> {
                load_slot(&mut plugin, state)?;
                let ops: Vec<AccOp> = (0..ends.len() as u32).map(|event| AccOp::Add { slot: 0, event }).collect();
                let refused = plugin.apply(&ops, &mut input, &mut [])?;
                let state = plugin.export_state(&[0])?.pop().unwrap_or_default();
                Ok((state, refused.into_iter().map(|r| r.reason).collect()))
            };
            run().map_err(failed)
        })?;
        Ok((PyBytes::new(py, &bytes).unbind(), refused))
    }

    /// Beam's merge_accumulators.
    fn merge(&self, py: Python<'_>, states: Vec<Vec<u8>>) -> PyResult<Py<PyBytes>> {
        use runnel::accumulate::Accumulators;
        let bytes = py.detach(|| {
            let mut plugin = self.lock()?;
            let run = || -> Result<Vec<u8>> {
                let n = states.len().max(1) as u32;
                let slots: Vec<u32> = (0..n).collect();
                if states.is_empty() {
                    load_slot(&mut plugin, None)?;
                } else {
                    plugin.import_state(&slots, states)?;
                }
                let ops = [AccOp::Merge { target: 0, sources: slots[1..].iter().copied().collect() }];
                plugin.apply(&ops, &mut EventBatch::default(), &mut [])?;
                let state = plugin.export_state(&[0])?.pop().unwrap_or_default();
                let release: Vec<AccOp> = slots.iter().map(|&slot| AccOp::Release { slot }).collect();
                plugin.apply(&release, &mut EventBatch::default(), &mut [])?;
                Ok(state)
            };
            run().map_err(failed)
        })?;
        Ok(PyBytes::new(py, &bytes).unbind())
    }

    /// Beam's extract_output, as JSON text (what a row is made from).
    fn extract(&self, py: Python<'_>, state: Option<&[u8]>) -> PyResult<String> {
        use runnel::accumulate::Accumulators;
        py.detach(|| {
            let mut plugin = self.lock()?;
            let mut run = || -> Result<String> {
                load_slot(&mut plugin, state)?;
                let mut panes = [Pane::smoke()];
                plugin.apply(&[AccOp::Extract { slot: 0, pane: 0 }, AccOp::Release { slot: 0 }], &mut EventBatch::default(), &mut panes)?;
                Ok(panes[0].value.as_ref().map(|v| v.to_json_value()).unwrap_or(serde_json::Value::Null).to_string())
            };
            run().map_err(failed)
        })
    }
}

/// The bridge: `runnel_beam._bridge`.
#[pymodule]
fn _bridge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Pipeline>()?;
    m.add_class::<Stage>()?;
    m.add_class::<Combine>()?;
    m.add("CONTRACT", runnel::plugin::contract::CONTRACT_VERSION)?;
    Ok(())
}
