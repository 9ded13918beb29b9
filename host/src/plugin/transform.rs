//! Calling a transform plugin: one instance, one call per batch, and trap
//! containment. When a batch call fails (a trap, a time budget or memory
//! limit hit), the instance is thrown away and the batch is bisected on fresh
//! instances until each failing event stands alone; those events are
//! rejected with the reason and everything else goes on.

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::Store;

use super::bindings::transform::exports::runnel::plugin::transformer as contract;
use super::bindings::transform::runnel::plugin::types as wit;
use super::bindings::transform::{Transform, TransformPre};
use super::contract::{load, Kind, Report};
use super::runtime::{Failure, PluginRuntime, PluginState};
use super::PluginSource;
use crate::batch::EventBatch;
use crate::deadletter::Reason;
use runnel_event::TimeFormat;

pub use contract::Emitted;

/// Where the key and event time of each event are, for the guest SDK.
#[derive(Clone, Debug, Default)]
pub struct FieldsSpec {
    pub key_pointer: Option<String>,
    pub time_pointer: Option<String>,
    pub time_format: TimeFormat,
}

impl FieldsSpec {
    fn to_wit(&self) -> wit::EventFields {
        wit::EventFields {
            key_pointer: self.key_pointer.clone(),
            time_pointer: self.time_pointer.clone(),
            time_format: match self.time_format {
                TimeFormat::Micros => wit::TimeFormat::Micros,
                TimeFormat::Millis => wit::TimeFormat::Millis,
                TimeFormat::Seconds => wit::TimeFormat::Seconds,
                TimeFormat::Rfc3339 => wit::TimeFormat::Rfc3339,
            },
        }
    }
}

/// An event the transform refused (or failed on), with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub source: u32,
    pub code: Reason,
    pub reason: String,
}

/// A batch's result: outputs in input order, and rejections.
#[derive(Debug, Default)]
pub struct TransformOutput {
    pub emitted: Vec<Emitted>,
    pub rejected: Vec<Rejected>,
    /// How many fresh instances the batch needed after failures.
    pub restarts: u32,
}

/// A loaded, initialised transform plugin.
pub struct TransformPlugin {
    pre: TransformPre<PluginState>,
    live: Option<(Store<PluginState>, Transform)>,
    config: String,
    fields: wit::EventFields,
    pub source: PluginSource,
    pub report: Report,
    limits: super::runtime::Limits,
}

impl TransformPlugin {
    /// Compiles, checks and initialises a transform. Any failure refuses it
    /// with a message that says what to fix.
    pub fn load(runtime: &PluginRuntime, source: PluginSource, config: &str, fields: &FieldsSpec) -> Result<Self> {
        let (component, report) = load(runtime, &source, Kind::Transform)?;
        Self::from_component(runtime, source, report, &component, config, fields)
    }

    fn from_component(
        runtime: &PluginRuntime,
        source: PluginSource,
        report: Report,
        component: &Component,
        config: &str,
        fields: &FieldsSpec,
    ) -> Result<Self> {
        let pre = TransformPre::new(runtime.prepare(component, &source)?).map_err(anyhow::Error::from).with_context(|| {
            format!(
                "{} exports the transformer interface with the wrong types; rebuild it with \
                 this repository's guest SDK",
                source.name
            )
        })?;
        let mut plugin =
            Self { pre, live: None, config: config.to_string(), fields: fields.to_wit(), source, report, limits: runtime.limits() };
        let name = plugin.source.name.clone();
        plugin.instance(runtime).map_err(|e| e.context(format!("{name} refused to start")))?;
        Ok(plugin)
    }

    /// The live instance, instantiating and initialising one if needed.
    fn instance(&mut self, runtime: &PluginRuntime) -> Result<&mut (Store<PluginState>, Transform)> {
        if self.live.is_none() {
            let mut store = runtime.new_store();
            let instance = self
                .pre
                .instantiate(&mut store)
                .map_err(|e| Failure::of(&e, self.limits, None))
                .context("instantiating the plugin failed")?;
            runtime.arm(&mut store);
            let init = instance
                .runnel_plugin_transformer()
                .call_init(&mut store, &self.config, &self.fields)
                .map_err(|e| Failure::of(&e, self.limits, None))
                .context("the plugin's init failed")?;
            init.map_err(|reason| anyhow::anyhow!("the plugin's init refused its configuration: {reason}"))?;
            self.live = Some((store, instance));
        }
        Ok(self.live.as_mut().expect("just set"))
    }

    /// One guest call on a batch of `len` events; a trap, a limit or an
    /// answer that names events outside the batch is a [`Failure`].
    fn call(&mut self, runtime: &PluginRuntime, batch: wit::EventBatch) -> (wit::EventBatch, Result<contract::TransformResult, Failure>) {
        let limits = self.limits;
        let len = batch.ends.len();
        let (store, instance) = match self.instance(runtime) {
            Ok(live) => live,
            Err(e) => return (batch, Err(Failure::Host(format!("{e:#}")))),
        };
        runtime.arm(store);
        store.data().stderr.clear();
        let result = instance
            .runnel_plugin_transformer()
            .call_transform(&mut *store, &batch)
            .map_err(|e| Failure::of(&e, limits, Some(store.data())))
            .and_then(|r| within(r, len));
        if result.is_err() {
            // A trapped instance cannot be used again (nor trusted after a
            // broken answer).
            self.live = None;
        }
        (batch, result)
    }

    /// Transforms a batch, containing failures to the events that cause them.
    pub fn transform(&mut self, runtime: &PluginRuntime, batch: &mut EventBatch) -> TransformOutput {
        let mut out = TransformOutput::default();
        if batch.is_empty() {
            return out;
        }
        let wit_batch = wit::EventBatch { bytes: std::mem::take(&mut batch.bytes), ends: std::mem::take(&mut batch.ends) };
        let (wit_batch, result) = self.call(runtime, wit_batch);
        batch.bytes = wit_batch.bytes;
        batch.ends = wit_batch.ends;
        match result {
            Ok(r) => accept(r, &mut out, Some),
            Err(failure) => {
                out.restarts += 1;
                let mut budget = BisectBudget::new(batch.len());
                budget.spend(&failure);
                let all: Vec<u32> = (0..batch.len() as u32).collect();
                self.bisect(runtime, batch, &all, failure, &mut budget, &mut out);
                out.emitted.sort_by_key(|e| e.source);
            }
        }
        out
    }

    /// One call on the whole batch, without isolating failures: a trap or
    /// an exhausted budget fails the batch with the reason (the grader
    /// uses this; the pipeline uses [`transform`](Self::transform)).
    pub fn transform_whole(&mut self, runtime: &PluginRuntime, batch: &mut EventBatch) -> Result<TransformOutput, Failure> {
        let wit_batch = wit::EventBatch { bytes: std::mem::take(&mut batch.bytes), ends: std::mem::take(&mut batch.ends) };
        let (wit_batch, result) = self.call(runtime, wit_batch);
        batch.bytes = wit_batch.bytes;
        batch.ends = wit_batch.ends;
        let mut out = TransformOutput::default();
        accept(result?, &mut out, Some);
        Ok(out)
    }

    /// Splits a failed set of events in halves and calls each on a fresh
    /// instance, until each failing event stands alone, or the batch's
    /// budget is spent: then a failed set is not split again, and its events
    /// go to the dead letters as not tried (a batch in which every event
    /// hangs must not cost 2n-1 full budgets; it costs at most the allowed
    /// time-outs plus one call per level of the split).
    fn bisect(
        &mut self,
        runtime: &PluginRuntime,
        batch: &EventBatch,
        events: &[u32],
        failure: Failure,
        budget: &mut BisectBudget,
        out: &mut TransformOutput,
    ) {
        if events.len() == 1 {
            out.rejected.push(Rejected { source: events[0], code: failure.code(), reason: failure.to_string() });
            return;
        }
        if let Some(why) = budget.exhausted() {
            for &source in events {
                out.rejected.push(Rejected { source, code: Reason::NotTried, reason: format!("{why}; the last failure: {failure}") });
            }
            return;
        }
        // Each half is still called once when the budget runs out meanwhile
        // (its events may well be fine); only a failed set is not split.
        let (left, right) = events.split_at(events.len() / 2);
        for half in [left, right] {
            let mut sub = wit::EventBatch { bytes: Vec::new(), ends: Vec::with_capacity(half.len()) };
            for &i in half {
                sub.bytes.extend_from_slice(batch.get(i as usize));
                sub.ends.push(sub.bytes.len() as u32);
            }
            match self.call(runtime, sub).1 {
                // Map the sub-batch's indexes back to the batch's.
                Ok(r) => accept(r, out, |i| half.get(i as usize).copied()),
                Err(failure) => {
                    out.restarts += 1;
                    budget.spend(&failure);
                    self.bisect(runtime, batch, half, failure, budget, out);
                }
            }
        }
    }
}

/// How much isolating a failing batch may cost, after which the events not
/// run yet are dead-lettered as not tried: enough time-outs to isolate two
/// hanging events ([`max_timeouts`]). That bounds the time too: every
/// other call either answers within its budget or fails fast (a trap, a
/// refused wait), and there are at most two per level of the split.
struct BisectBudget {
    timeouts_left: u32,
    allowed: u32,
}

/// Time-outs a batch of `n` events may cost: isolating one hanging event
/// takes about log2(n) of them; this allows two such events.
pub fn max_timeouts(n: usize) -> u32 {
    2 * (usize::BITS - n.max(1).saturating_sub(1).leading_zeros()) + 1
}

impl BisectBudget {
    fn new(n: usize) -> Self {
        let allowed = max_timeouts(n);
        Self { timeouts_left: allowed, allowed }
    }

    fn spend(&mut self, failure: &Failure) {
        if failure.is_timeout() {
            self.timeouts_left = self.timeouts_left.saturating_sub(1);
        }
    }

    fn exhausted(&self) -> Option<String> {
        (self.timeouts_left == 0).then(|| format!("not run: the plugin ran out of time {} times in this batch", self.allowed))
    }
}

/// Refuses an answer that names an event outside the `len` it was given:
/// which events such an output or refusal was meant for cannot be known, so
/// the call counts as failed (and is bisected down to the events that cause
/// it), rather than dropping them and counting them as filtered.
fn within(r: contract::TransformResult, len: usize) -> Result<contract::TransformResult, Failure> {
    let outside = r.emitted.iter().map(|e| e.source).chain(r.rejected.iter().map(|x| x.source)).find(|&s| s as usize >= len);
    match outside {
        Some(s) => Err(Failure::Contract(format!("its answer names event {s} of a batch of {len}"))),
        None => Ok(r),
    }
}

/// Takes a checked guest result, mapping its indexes with `index`.
fn accept(r: contract::TransformResult, out: &mut TransformOutput, index: impl Fn(u32) -> Option<u32>) {
    for mut e in r.emitted {
        if let Some(i) = index(e.source) {
            e.source = i;
            out.emitted.push(e);
        }
    }
    for rej in r.rejected {
        if let Some(source) = index(rej.source) {
            out.rejected.push(Rejected { source, code: Reason::Refused, reason: rej.reason });
        }
    }
}
