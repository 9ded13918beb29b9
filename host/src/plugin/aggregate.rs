//! Calling an aggregate plugin: it runs the window engine's accumulator
//! operations, batching consecutive operations of one kind into one call
//! (all the adds of a batch are usually a single `add` call).
//!
//! What the guest reads of each event is its own declaration: nothing (a
//! count), whole events, or some top-level fields, which the host reads
//! natively and sends as values only (contract 0.2).
//!
//! Accumulators live inside the guest instance. If the guest traps, that
//! state is gone, so a failed call is an error for the whole pipeline run
//! (nothing is acknowledged, so an at-least-once source redelivers); a
//! refused add (`Err` from the guest's `add`) only dead-letters its event.

use anyhow::{anyhow, Context, Result};
use wasmtime::Store;

use super::bindings::aggregate::exports::runnel::plugin::aggregator as contract;
use super::bindings::aggregate::runnel::plugin::types as wit;
use super::bindings::aggregate::{Aggregate, AggregatePre};
use super::contract::{load, Kind, Report};
use super::runtime::{Failure, Limits, PluginRuntime, PluginState};
use super::PluginSource;
use crate::accumulate::{Accumulators, EventBatch, RejectedAdd};
use crate::plugin::transform::MAX_DECLARED_FIELDS;
use crate::window::{AccOp, Pane, Value};
use runnel_event::FieldScanner;

/// An aggregate call that failed. The instance, and with it every
/// accumulator it held, is gone: what that costs is the caller's to say
/// (the pipeline stops without acknowledging unwritten input; grading and
/// the room fail the case or the slot).
#[derive(Debug)]
pub struct AggregateFailed {
    pub plugin: String,
    /// The contract function that failed (`add`, `merge`, ...).
    pub call: &'static str,
    pub failure: Failure,
}

impl std::fmt::Display for AggregateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "aggregate plugin {} failed in `{}`: {}", self.plugin, self.call, self.failure)
    }
}

impl std::error::Error for AggregateFailed {}

/// A loaded, initialised aggregate plugin.
pub struct AggregatePlugin {
    store: Store<PluginState>,
    instance: Aggregate,
    info: contract::AggregateInfo,
    pub source: PluginSource,
    pub report: Report,
    limits: Limits,
    adds: Vec<contract::SlotInput>,
    /// The batch event each queued add is for (`adds[i].event` is 0 when
    /// the plugin reads no payloads).
    add_events: Vec<u32>,
    slots: Vec<u32>,
    /// The slots a run of extracts and releases has released so far.
    released: Vec<u32>,
    /// Which slots are in `released` (a run can hold every window's).
    released_set: rustc_hash::FxHashSet<u32>,
    /// Guest calls made so far (each is armed once).
    calls: u64,
    /// For an aggregate that reads fields: the scanner, and each declared
    /// field's index in a scan.
    fields: Option<(FieldScanner, Vec<usize>)>,
}

fn empty_input() -> wit::FieldBatch {
    wit::FieldBatch { count: 0, values: Vec::new(), ends: Vec::new(), events: wit::EventBatch { bytes: Vec::new(), ends: Vec::new() } }
}

impl AggregatePlugin {
    pub fn load(runtime: &PluginRuntime, source: PluginSource, config: &str) -> Result<Self> {
        let (component, report) = load(runtime, &source, Kind::Aggregate)?;
        let pre = AggregatePre::new(runtime.prepare(&component, &source)?).map_err(anyhow::Error::from).with_context(|| {
            format!(
                "{} exports the aggregator interface with the wrong types; rebuild it with \
                 this repository's guest SDK",
                source.name
            )
        })?;
        let limits = runtime.limits();
        // Instantiation and init share the start-up budget the new store is
        // armed with.
        let mut store = runtime.new_store();
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| Failure::of(&e, store.data()))
            .with_context(|| format!("{} refused to start", source.name))?;
        let info = instance
            .runnel_plugin_aggregator()
            .call_init(&mut store, config)
            .map_err(|e| Failure::of(&e, store.data()))
            .with_context(|| format!("{} refused to start", source.name))?
            .map_err(|reason| anyhow!("{} refused its configuration: {reason}", source.name))?;
        let fields = match &info.reads {
            contract::Reads::Fields(names) => {
                anyhow::ensure!(
                    names.len() <= MAX_DECLARED_FIELDS,
                    "{} declares {} fields; at most {MAX_DECLARED_FIELDS} are read for an aggregate (read whole events instead: Aggregate::WHOLE_EVENTS)",
                    source.name,
                    names.len()
                );
                let mut scanner = FieldScanner::default();
                let indexes = names.iter().map(|n| scanner.index_of(n)).collect();
                Some((scanner, indexes))
            }
            _ => None,
        };
        Ok(Self {
            store,
            instance,
            info,
            source,
            report,
            limits,
            adds: Vec::new(),
            add_events: Vec::new(),
            slots: Vec::new(),
            released: Vec::new(),
            released_set: Default::default(),
            calls: 0,
            fields,
        })
    }

    /// Runs the extracts and releases from `ops[start]` on, up to the next
    /// add or merge, in two calls: every extract, then every release. A
    /// window that fires and closes queues an extract and a release or two,
    /// so the end of a file's input (every window at once) made three
    /// guest calls per window when each run of one kind was a call. The
    /// extracts may go first because a release only empties a slot: the
    /// one case where that matters, a slot released and then extracted
    /// again (an empty on-time pane after an early one), ends the run
    /// there, so that extract still sees the fresh accumulator. Returns
    /// where it stopped.
    fn extract_and_release(&mut self, ops: &[AccOp], start: usize, panes: &mut [Pane]) -> Result<usize> {
        self.slots.clear();
        self.released.clear();
        self.released_set.clear();
        let mut i = start;
        let mut extracts = Vec::new();
        while let Some(op) = ops.get(i) {
            match *op {
                AccOp::Extract { slot, pane } if !self.released_set.contains(&slot) => {
                    self.slots.push(slot);
                    extracts.push(pane);
                }
                AccOp::Release { slot } => {
                    self.released.push(slot);
                    self.released_set.insert(slot);
                }
                _ => break,
            }
            i += 1;
        }
        if !self.slots.is_empty() {
            self.arm();
            let values =
                self.instance.runnel_plugin_aggregator().call_extract(&mut self.store, &self.slots).map_err(|e| self.fail("extract", e))?;
            if values.len() != self.slots.len() {
                return Err(anyhow!(
                    "aggregate plugin {} returned {} values for {} accumulators",
                    self.source.name,
                    values.len(),
                    self.slots.len()
                ));
            }
            for (pane, v) in extracts.into_iter().zip(values) {
                panes[pane as usize].value = Some(match v {
                    contract::Value::Int(v) => Value::Int(v),
                    contract::Value::Float(v) => Value::Float(v),
                    contract::Value::Text(v) => Value::Text(v),
                    contract::Value::Json(v) => Value::Json(v),
                });
            }
        }
        if !self.released.is_empty() {
            self.arm();
            self.instance.runnel_plugin_aggregator().call_release(&mut self.store, &self.released).map_err(|e| self.fail("release", e))?;
        }
        Ok(i)
    }

    /// The accumulator encoding the plugin declares (for hot-reload carry-over).
    pub fn state_format(&self) -> &str {
        &self.info.state_format
    }

    /// The accumulators of `slots`, as bytes (for a new plugin version).
    pub fn export_state(&mut self, slots: &[u32]) -> Result<Vec<Vec<u8>>> {
        self.arm();
        self.instance.runnel_plugin_aggregator().call_export_state(&mut self.store, slots).map_err(|e| self.fail("export-state", e))
    }

    /// Loads accumulators exported by another version.
    pub fn import_state(&mut self, slots: &[u32], states: Vec<Vec<u8>>) -> Result<()> {
        for (slot, bytes) in slots.iter().zip(states) {
            self.arm();
            self.instance
                .runnel_plugin_aggregator()
                .call_import_state(&mut self.store, *slot, &bytes)
                .map_err(|e| self.fail("import-state", e))?
                .map_err(|reason| anyhow!("{} refused an accumulator: {reason}", self.source.name))?;
        }
        Ok(())
    }

    /// Starts one call's budget (a batch's: the plugin has started).
    fn arm(&mut self) {
        self.calls += 1;
        super::runtime::arm_store(&mut self.store, self.limits, super::runtime::Phase::Batch);
    }

    /// How many calls into the guest it has made.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    fn fail(&self, call: &'static str, err: wasmtime::Error) -> anyhow::Error {
        AggregateFailed { plugin: self.source.name.clone(), call, failure: Failure::of(&err, self.store.data()) }.into()
    }

    fn call_add(&mut self, input: &wit::FieldBatch) -> wasmtime::Result<Vec<contract::RejectedAdd>> {
        self.arm();
        self.instance.runnel_plugin_aggregator().call_add(&mut self.store, input, &self.adds)
    }

    /// The declared fields' values of every event of the batch, read
    /// natively. An event that cannot be read (a transform's replaced
    /// payload that is not a JSON object) has its adds refused here, with
    /// the reason, and is not sent.
    fn field_values(&mut self, events: &EventBatch, rejected: &mut Vec<RejectedAdd>) -> wit::FieldBatch {
        let (scanner, indexes) = self.fields.as_ref().expect("set for an aggregate that reads fields");
        let mut input = empty_input();
        input.count = events.len() as u32;
        let mut unreadable = Vec::new();
        for i in 0..events.len() {
            match scanner.scan(events.get(i)) {
                Ok(scanned) => {
                    for &field in indexes {
                        if let Some(raw) = scanned.get(field) {
                            input.values.extend_from_slice(raw.get().as_bytes());
                        }
                        input.ends.push(input.values.len() as u32);
                    }
                }
                Err(e) => {
                    unreadable.push((i as u32, e.to_string()));
                    input.ends.extend(std::iter::repeat_n(input.values.len() as u32, indexes.len()));
                }
            }
        }
        if !unreadable.is_empty() {
            let (adds, add_events) = (std::mem::take(&mut self.adds), std::mem::take(&mut self.add_events));
            for (add, event) in adds.into_iter().zip(add_events) {
                match unreadable.iter().find(|(e, _)| *e == event) {
                    Some((_, reason)) => rejected.push(RejectedAdd { event, reason: reason.clone() }),
                    None => {
                        self.adds.push(add);
                        self.add_events.push(event);
                    }
                }
            }
        }
        input
    }

    fn flush_adds(&mut self, events: &mut EventBatch, rejected: &mut Vec<RejectedAdd>) -> Result<()> {
        if self.adds.is_empty() {
            return Ok(());
        }
        let result = match &self.info.reads {
            contract::Reads::Nothing => self.call_add(&empty_input()),
            contract::Reads::WholeEvents => {
                let mut input = empty_input();
                input.count = events.len() as u32;
                input.events = wit::EventBatch { bytes: std::mem::take(&mut events.bytes), ends: std::mem::take(&mut events.ends) };
                let r = self.call_add(&input);
                events.bytes = input.events.bytes;
                events.ends = input.events.ends;
                r
            }
            contract::Reads::Fields(_) => {
                let input = self.field_values(events, rejected);
                if self.adds.is_empty() {
                    return Ok(());
                }
                self.call_add(&input)
            }
        };
        let refused = result.map_err(|e| self.fail("add", e))?;
        for r in refused {
            // A refusal of an add it was not given: which accumulator it
            // left out cannot be known, so its state cannot be trusted.
            let Some(&event) = self.add_events.get(r.index as usize) else {
                anyhow::bail!(
                    "aggregate plugin {} broke the contract in `add`: it refused add {} of {}; its accumulators \
                     cannot be trusted, so the run stops without acknowledging unwritten input",
                    self.source.name,
                    r.index,
                    self.adds.len()
                );
            };
            rejected.push(RejectedAdd { event, reason: r.reason });
        }
        self.adds.clear();
        self.add_events.clear();
        Ok(())
    }
}

impl Accumulators for AggregatePlugin {
    fn needs_payload(&self) -> bool {
        !matches!(self.info.reads, contract::Reads::Nothing)
    }

    fn apply(&mut self, ops: &[AccOp], events: &mut EventBatch, panes: &mut [Pane]) -> Result<Vec<RejectedAdd>> {
        let mut rejected = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            match &ops[i] {
                AccOp::Add { .. } => {
                    while let Some(AccOp::Add { slot, event }) = ops.get(i) {
                        let needs = !matches!(self.info.reads, contract::Reads::Nothing);
                        self.adds.push(contract::SlotInput { slot: *slot, event: if needs { *event } else { 0 } });
                        self.add_events.push(*event);
                        i += 1;
                    }
                    self.flush_adds(events, &mut rejected)?;
                }
                AccOp::Merge { target, sources } => {
                    self.arm();
                    self.instance
                        .runnel_plugin_aggregator()
                        .call_merge(&mut self.store, *target, sources)
                        .map_err(|e| self.fail("merge", e))?;
                    i += 1;
                }
                AccOp::Extract { .. } | AccOp::Release { .. } => i = self.extract_and_release(ops, i, panes)?,
            }
        }
        Ok(rejected)
    }
}
