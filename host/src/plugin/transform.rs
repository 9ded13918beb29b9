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
use super::runtime::{describe_failure, describe_failure_in, PluginRuntime, PluginState};
use super::PluginSource;
use crate::accumulate::EventBatch;
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

/// An event the transform refused, with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub source: u32,
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
        let mut plugin = Self {
            pre,
            live: None,
            config: config.to_string(),
            fields: fields.to_wit(),
            source,
            report,
            limits: runtime.limits(),
        };
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
                .map_err(|e| anyhow::anyhow!(describe_failure(&e, self.limits)))
                .context("instantiating the plugin failed")?;
            runtime.arm(&mut store);
            let init = instance
                .runnel_plugin_transformer()
                .call_init(&mut store, &self.config, &self.fields)
                .map_err(|e| anyhow::anyhow!(describe_failure(&e, self.limits)))
                .context("the plugin's init failed")?;
            init.map_err(|reason| anyhow::anyhow!("the plugin's init refused its configuration: {reason}"))?;
            self.live = Some((store, instance));
        }
        Ok(self.live.as_mut().expect("just set"))
    }

    /// One guest call; on failure, the reason in words.
    fn call(&mut self, runtime: &PluginRuntime, batch: wit::EventBatch) -> (wit::EventBatch, Result<contract::TransformResult, String>) {
        let limits = self.limits;
        let (store, instance) = match self.instance(runtime) {
            Ok(live) => live,
            Err(e) => return (batch, Err(format!("{e:#}"))),
        };
        runtime.arm(store);
        store.data().stderr.clear();
        let result = instance
            .runnel_plugin_transformer()
            .call_transform(&mut *store, &batch)
            .map_err(|e| describe_failure_in(&e, limits, store.data()));
        if result.is_err() {
            // A trapped instance cannot be used again.
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
        let wit_batch = wit::EventBatch {
            bytes: std::mem::take(&mut batch.bytes),
            ends: std::mem::take(&mut batch.ends),
        };
        let (wit_batch, result) = self.call(runtime, wit_batch);
        batch.bytes = wit_batch.bytes;
        batch.ends = wit_batch.ends;
        match result {
            Ok(r) => self.accept(r, 0, batch.len(), &mut out),
            Err(reason) => {
                out.restarts += 1;
                let all: Vec<u32> = (0..batch.len() as u32).collect();
                self.bisect(runtime, batch, &all, reason, &mut out);
            }
        }
        out
    }

    /// One call on the whole batch, without isolating failures: a trap or
    /// an exhausted budget fails the batch with the reason (the grader
    /// uses this; the pipeline uses [`transform`](Self::transform)).
    pub fn transform_whole(&mut self, runtime: &PluginRuntime, batch: &mut EventBatch) -> Result<TransformOutput, String> {
        let wit_batch = wit::EventBatch {
            bytes: std::mem::take(&mut batch.bytes),
            ends: std::mem::take(&mut batch.ends),
        };
        let (wit_batch, result) = self.call(runtime, wit_batch);
        batch.bytes = wit_batch.bytes;
        batch.ends = wit_batch.ends;
        let result = result?;
        let mut out = TransformOutput::default();
        self.accept(result, 0, batch.len(), &mut out);
        Ok(out)
    }

    /// Takes a guest result for events `[offset, offset + len)`, checking it.
    fn accept(&self, r: contract::TransformResult, offset: u32, len: usize, out: &mut TransformOutput) {
        for mut e in r.emitted {
            if (e.source as usize) < len {
                e.source += offset;
                out.emitted.push(e);
            }
        }
        for rej in r.rejected {
            if (rej.source as usize) < len {
                out.rejected.push(Rejected {
                    source: rej.source + offset,
                    reason: rej.reason,
                });
            }
        }
    }

    fn bisect(&mut self, runtime: &PluginRuntime, batch: &EventBatch, events: &[u32], reason: String, out: &mut TransformOutput) {
        if events.len() == 1 {
            out.rejected.push(Rejected {
                source: events[0],
                reason,
            });
            return;
        }
        let (left, right) = events.split_at(events.len() / 2);
        for half in [left, right] {
            let mut sub = wit::EventBatch {
                bytes: Vec::new(),
                ends: Vec::with_capacity(half.len()),
            };
            for &i in half {
                sub.bytes.extend_from_slice(batch.get(i as usize));
                sub.ends.push(sub.bytes.len() as u32);
            }
            match self.call(runtime, sub).1 {
                Ok(r) => {
                    // Map the sub-batch's indexes back to the batch's.
                    for mut e in r.emitted {
                        if let Some(&i) = half.get(e.source as usize) {
                            e.source = i;
                            out.emitted.push(e);
                        }
                    }
                    for rej in r.rejected {
                        if let Some(&i) = half.get(rej.source as usize) {
                            out.rejected.push(Rejected { source: i, reason: rej.reason });
                        }
                    }
                }
                Err(reason) => {
                    out.restarts += 1;
                    self.bisect(runtime, batch, half, reason, out);
                }
            }
        }
        out.emitted.sort_by_key(|e| e.source);
    }
}
