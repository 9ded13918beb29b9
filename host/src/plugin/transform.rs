//! Calling a transform plugin: one native pass over the batch, one guest
//! call per batch, the guest's edits applied natively, and trap
//! containment.
//!
//! The host scans each event once ([`Reader`]): its key, its event time and
//! the fields the plugin declared at init. The guest gets only those
//! fields' values (contract 0.2: `field-batch`), unless it asked for whole
//! events, and answers with outputs as edits to its input; the host applies
//! them to the input's bytes and gives each output its input's key and time
//! unless the guest set its own. An event that is not a JSON object never
//! reaches the guest.
//!
//! When a batch call fails (a trap, a time budget or memory limit hit), the
//! instance is thrown away and the batch is bisected on fresh instances
//! until each failing event stands alone; those events are rejected with
//! the reason and everything else goes on.

use anyhow::{bail, Context, Result};
use runnel_event::{append_field, push_member, remove_field, AppendPoint, FieldScanner, ScanError, Scanned};
use std::borrow::Cow;
use wasmtime::component::Component;
use wasmtime::Store;

use super::bindings::transform::exports::runnel::plugin::transformer as contract;
use super::bindings::transform::runnel::plugin::types as wit;
use super::bindings::transform::{Transform, TransformPre};
use super::contract::{load, Kind, Report};
use super::runtime::{Failure, PluginRuntime, PluginState};
use super::PluginSource;
use crate::batch::EventBatch;
use crate::deadletter::{Reason, Refusal};
pub use crate::decode::FieldsSpec;
use crate::decode::Reader;

/// The most top-level fields a transform may declare: the host scans for
/// them outside the sandbox, so their number is bounded here.
pub const MAX_DECLARED_FIELDS: usize = 64;

/// One output, as the pipeline takes it: the guest's edits applied, the
/// key and event time its input's unless the guest set them.
#[derive(Clone, Debug, PartialEq)]
pub struct Emitted {
    /// Index (in the batch) of the event it came from.
    pub source: u32,
    /// Its bytes, as the edits left them (see [`Payload`]).
    pub payload: Payload,
    /// `None` when no key field is configured.
    pub key: Option<String>,
    /// The time the transform set, else the event time field's; `None`
    /// when neither (the time then comes from `[event] time`).
    pub event_time_us: Option<i64>,
}

impl Emitted {
    /// This output's bytes paired with its input, from `batch` (the batch
    /// the transform was given).
    pub fn output<'a>(&'a self, batch: &'a EventBatch) -> OutputBytes<'a> {
        OutputBytes { input: batch.get(self.source as usize), payload: &self.payload }
    }
}

/// An output's bytes as the pipeline carries them: its input event and what
/// the transform made of it, kept together so that a payload is never read
/// against another event's bytes.
#[derive(Clone, Copy, Debug)]
pub struct OutputBytes<'a> {
    pub input: &'a [u8],
    pub payload: &'a Payload,
}

impl<'a> OutputBytes<'a> {
    /// An event no transform touched.
    pub fn unchanged(input: &'a [u8]) -> Self {
        OutputBytes { input, payload: &UNCHANGED }
    }

    /// Its length in bytes, without writing it.
    pub fn byte_len(&self) -> usize {
        self.payload.len(self.input)
    }

    /// Its bytes (written out only when fields were appended).
    pub fn bytes(&self) -> Cow<'a, [u8]> {
        self.payload.bytes(self.input)
    }

    /// Adds it to `batch` as one event, written straight into it.
    pub fn push_to(&self, batch: &mut EventBatch) {
        self.payload.push_to(self.input, batch)
    }
}

/// An output's bytes as the transform's edits left them. Fields added to
/// the input are kept aside as text until something reads the output's
/// bytes (a dead letter, an aggregate that reads payloads, a grader): most
/// outputs are only keyed, timed and counted, and copying each 2.6 KB
/// event to add ten bytes cost more than the rest of the host's edits.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// The input event, unchanged.
    Input,
    /// The input event with top-level members appended (`members` is their
    /// text, `"a":1,"b":"x"`, never empty), at `at`.
    Appended { at: AppendPoint, members: Vec<u8> },
    /// New bytes: the transform's own payload, or the input after edits
    /// that are not appends.
    Bytes(Vec<u8>),
}

/// [`Payload::Input`], for an event no transform touched.
pub static UNCHANGED: Payload = Payload::Input;

impl Payload {
    /// This payload with `"name": value_json` appended (`value_json` one
    /// JSON value, checked by the caller); refused when the bytes so far are
    /// not an object.
    pub fn append(self, input: &[u8], name: &str, value_json: &str) -> Result<Self, ScanError> {
        Ok(match self {
            Payload::Input => {
                let mut members = Vec::with_capacity(name.len() + value_json.len() + 3);
                push_member(&mut members, name, value_json);
                Payload::Appended { at: AppendPoint::of(input)?, members }
            }
            Payload::Appended { at, mut members } => {
                push_member(&mut members, name, value_json);
                Payload::Appended { at, members }
            }
            Payload::Bytes(bytes) => Payload::Bytes(append_field(&bytes, name, value_json)?),
        })
    }

    /// The output's length in bytes, without writing it.
    pub fn len(&self, input: &[u8]) -> usize {
        match self {
            Payload::Input => input.len(),
            Payload::Appended { at, members } => at.len(members),
            Payload::Bytes(bytes) => bytes.len(),
        }
    }

    /// The output's bytes (written out only when fields were appended).
    pub fn bytes<'a>(&'a self, input: &'a [u8]) -> Cow<'a, [u8]> {
        match self {
            Payload::Input => Cow::Borrowed(input),
            Payload::Appended { at, members } => {
                let mut out = Vec::with_capacity(at.len(members));
                at.write(input, members, &mut out);
                Cow::Owned(out)
            }
            Payload::Bytes(bytes) => Cow::Borrowed(bytes),
        }
    }

    /// The output's bytes when they are not the input's (`None`: the input).
    pub fn into_bytes(self, input: &[u8]) -> Option<Vec<u8>> {
        match self {
            Payload::Input => None,
            Payload::Bytes(bytes) => Some(bytes),
            appended => Some(appended.bytes(input).into_owned()),
        }
    }

    /// Adds the output to `batch` as one event, written straight into it.
    pub fn push_to(&self, input: &[u8], batch: &mut EventBatch) {
        match self {
            Payload::Appended { at, members } => {
                at.write(input, members, &mut batch.bytes);
                batch.seal();
            }
            other => {
                batch.push(&other.bytes(input));
            }
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
    /// Why, one per restart: the failed call's kind and message.
    pub restart_reasons: Vec<(Reason, String)>,
    /// Time inside the guest (its calls); the rest of a batch's transform
    /// time is the host's read and edits.
    pub guest_time: std::time::Duration,
}

impl TransformOutput {
    /// A call failed: its instance is gone, the next call starts a fresh one.
    fn restarted(&mut self, failure: &Failure) {
        self.restarts += 1;
        self.restart_reasons.push((failure.code(), failure.to_string()));
    }

    fn reject(&mut self, source: u32, refusal: Refusal) {
        self.rejected.push(Rejected { source, code: refusal.code, reason: refusal.reason });
    }
}

/// What the plugin reads, from its `init`.
struct Wants {
    reader: Reader,
    /// Indexes of the declared fields in a [`Reader`] scan.
    declared: Vec<usize>,
    whole_events: bool,
}

/// A loaded, initialised transform plugin.
pub struct TransformPlugin {
    pre: TransformPre<PluginState>,
    live: Option<(Store<PluginState>, Transform)>,
    config: String,
    /// The key and time only, before the plugin's fields are added.
    base: Reader,
    /// Set by the first `init`.
    wants: Option<Wants>,
    /// Time inside guest calls since the last batch's result took it.
    guest_time: std::time::Duration,
    pub source: PluginSource,
    pub report: Report,
}

/// A batch's scans: `None` for an event that is not a JSON object.
type Scans<'a> = Vec<Option<Scanned<'a>>>;

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
        let base = Reader::from_spec(fields).map_err(|e| anyhow::anyhow!("the key or event time field: {e}"))?;
        let mut plugin =
            Self { pre, live: None, config: config.to_string(), base, wants: None, guest_time: Default::default(), source, report };
        let name = plugin.source.name.clone();
        plugin.instance(runtime).map_err(|e| e.context(format!("{name} refused to start")))?;
        Ok(plugin)
    }

    /// The fields the plugin declared, and whether it reads whole events.
    pub fn declared(&self) -> (Vec<String>, bool) {
        let Some(wants) = &self.wants else { return (Vec::new(), false) };
        (wants.declared.iter().map(|&i| wants.reader.name(i).to_string()).collect(), wants.whole_events)
    }

    /// The live instance, instantiating and initialising one if needed.
    fn instance(&mut self, runtime: &PluginRuntime) -> Result<&mut (Store<PluginState>, Transform)> {
        if self.live.is_none() {
            // Instantiation and init share the start-up budget the new
            // store is armed with.
            let mut store = runtime.new_store();
            let instance =
                self.pre.instantiate(&mut store).map_err(|e| Failure::of(&e, store.data())).context("instantiating the plugin failed")?;
            let info = instance
                .runnel_plugin_transformer()
                .call_init(&mut store, &self.config)
                .map_err(|e| Failure::of(&e, store.data()))
                .context("the plugin's init failed")?
                .map_err(|reason| anyhow::anyhow!("the plugin's init refused its configuration: {reason}"))?;
            if self.wants.is_none() {
                self.wants = Some(self.wants(info)?);
            }
            self.live = Some((store, instance));
        }
        Ok(self.live.as_mut().expect("just set"))
    }

    /// Checks what `init` declared and makes the reader for it.
    fn wants(&self, info: contract::TransformInfo) -> Result<Wants> {
        if info.fields.len() > MAX_DECLARED_FIELDS {
            bail!(
                "the plugin declares {} fields; at most {MAX_DECLARED_FIELDS} are read for a transform \
                 (ask for whole events instead: Transform::whole_events)",
                info.fields.len()
            );
        }
        if let Some(bad) = info.fields.iter().find(|f| f.is_empty()) {
            bail!("the plugin declares a field with an empty name ({bad:?}); fields() names top-level fields");
        }
        let mut reader = self.base.clone();
        let declared = reader.also(&info.fields);
        Ok(Wants { reader, declared, whole_events: info.whole_events })
    }

    fn wants_ref(&self) -> &Wants {
        self.wants.as_ref().expect("set when the plugin loaded")
    }

    /// One guest call on `input`; a trap, a limit or an answer that names
    /// events outside the batch is a [`Failure`].
    fn call(&mut self, runtime: &PluginRuntime, input: &contract::FieldBatch) -> Result<contract::TransformResult, Failure> {
        let len = input.count as usize;
        let (store, instance) = match self.instance(runtime) {
            Ok(live) => live,
            Err(e) => return Err(Failure::Host(format!("{e:#}"))),
        };
        runtime.arm(store);
        store.data().stderr.clear();
        let called = std::time::Instant::now();
        let answer = instance.runnel_plugin_transformer().call_transform(&mut *store, input);
        let took = called.elapsed();
        let result = answer.map_err(|e| Failure::of(&e, store.data())).and_then(|r| within(r, len));
        self.guest_time += took;
        if result.is_err() {
            // A trapped instance cannot be used again (nor trusted after a
            // broken answer).
            self.live = None;
        }
        result
    }

    /// The one native pass: every event's scan; the ones that are not JSON
    /// objects are rejected here and never reach the guest.
    fn scan<'a>(&self, batch: &'a EventBatch, out: &mut TransformOutput) -> (Scans<'a>, Vec<u32>) {
        let reader = &self.wants_ref().reader;
        let mut scans = Vec::with_capacity(batch.len());
        let mut good = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            match reader.scan(batch.get(i)) {
                Ok(scanned) => {
                    scans.push(Some(scanned));
                    good.push(i as u32);
                }
                Err(refusal) => {
                    scans.push(None);
                    out.reject(i as u32, refusal);
                }
            }
        }
        (scans, good)
    }

    /// The guest's input for the events `which` (scanned ones): their
    /// declared fields' values, row by row, and their bytes if it wants them.
    fn input(&self, batch: &EventBatch, scans: &Scans<'_>, which: &[u32]) -> contract::FieldBatch {
        let wants = self.wants_ref();
        let mut values = Vec::new();
        let mut ends = Vec::with_capacity(which.len() * wants.declared.len());
        let mut events = wit::EventBatch { bytes: Vec::new(), ends: Vec::new() };
        for &i in which {
            let scanned = scans[i as usize].as_ref().expect("only scanned events are sent");
            for &field in &wants.declared {
                if let Some(raw) = scanned.get(field) {
                    values.extend_from_slice(raw.get().as_bytes());
                }
                ends.push(values.len() as u32);
            }
            if wants.whole_events {
                events.bytes.extend_from_slice(batch.get(i as usize));
                events.ends.push(events.bytes.len() as u32);
            }
        }
        contract::FieldBatch { count: which.len() as u32, values, ends, events }
    }

    /// Transforms a batch, containing failures to the events that cause them.
    pub fn transform(&mut self, runtime: &PluginRuntime, batch: &EventBatch) -> TransformOutput {
        let mut out = TransformOutput::default();
        let (scans, good) = self.scan(batch, &mut out);
        if good.is_empty() {
            return out;
        }
        let input = self.input(batch, &scans, &good);
        match self.call(runtime, &input) {
            Ok(r) => self.accept(r, &good, batch, &scans, &mut out),
            Err(failure) => {
                out.restarted(&failure);
                let mut budget = BisectBudget::new(good.len());
                budget.spend(&failure);
                self.bisect(runtime, (batch, &scans), &good, failure, &mut budget, &mut out);
            }
        }
        out.emitted.sort_by_key(|e| e.source);
        out.guest_time = std::mem::take(&mut self.guest_time);
        out
    }

    /// One call on the whole batch, without isolating failures: a trap or
    /// an exhausted budget fails the batch with the reason (the grader
    /// uses this; the pipeline uses [`transform`](Self::transform)).
    pub fn transform_whole(&mut self, runtime: &PluginRuntime, batch: &EventBatch) -> Result<TransformOutput, Failure> {
        let mut out = TransformOutput::default();
        let (scans, good) = self.scan(batch, &mut out);
        if !good.is_empty() {
            let input = self.input(batch, &scans, &good);
            let r = self.call(runtime, &input)?;
            self.accept(r, &good, batch, &scans, &mut out);
        }
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
        (batch, scans): (&EventBatch, &Scans<'_>),
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
            let input = self.input(batch, scans, half);
            match self.call(runtime, &input) {
                Ok(r) => self.accept(r, half, batch, scans, out),
                Err(failure) => {
                    out.restarted(&failure);
                    budget.spend(&failure);
                    self.bisect(runtime, (batch, scans), half, failure, budget, out);
                }
            }
        }
    }

    /// Takes a checked guest answer for the events `which` (its index `i`
    /// is the batch's `which[i]`): applies the edits, resolves key and time.
    fn accept(&self, r: contract::TransformResult, which: &[u32], batch: &EventBatch, scans: &Scans<'_>, out: &mut TransformOutput) {
        let reader = &self.wants_ref().reader;
        // An event is rejected once, and then has no outputs.
        let mut refused = Vec::new();
        for rej in r.rejected {
            let source = which[rej.source as usize];
            refused.push(source);
            out.rejected.push(Rejected { source, code: Reason::Refused, reason: rej.reason });
        }
        for e in r.emitted {
            let source = which[e.source as usize];
            if refused.contains(&source) {
                continue;
            }
            let scanned = scans[source as usize].as_ref().expect("only scanned events are sent");
            let output = (|| {
                let payload = edited(batch.get(source as usize), e.payload, e.edits)?;
                let key = match e.key {
                    Some(k) => Some(k),
                    None => reader.key(scanned)?.map(|k| k.into_owned()),
                };
                let event_time_us = match e.event_time_us {
                    Some(t) => Some(t),
                    None => reader.time(scanned)?,
                };
                Ok::<_, Refusal>(Emitted { source, payload, key, event_time_us })
            })();
            match output {
                Ok(emitted) => out.emitted.push(emitted),
                Err(refusal) => {
                    refused.push(source);
                    out.emitted.retain(|o| o.source != source);
                    out.reject(source, refusal);
                }
            }
        }
    }
}

/// An output's bytes: `payload` (or the input) with `edits` applied.
fn edited(input: &[u8], payload: Option<Vec<u8>>, edits: Vec<contract::Edit>) -> Result<Payload, Refusal> {
    let broke = |e: String| Refusal::new(Reason::ContractViolation, Failure::Contract(e).to_string());
    // A payload the plugin wrote itself is checked here, once: the host's
    // edits keep an object an object, and nothing after this stage reads an
    // output again just to find its key and time (they are its input's).
    if let Some(bytes) = &payload {
        FieldScanner::default().scan(bytes).map_err(|e| broke(format!("its output is not a JSON object ({e})")))?;
    }
    let mut current = payload.map_or(Payload::Input, Payload::Bytes);
    for edit in edits {
        current = match edit {
            contract::Edit::Add(field) => {
                serde_json::from_str::<serde::de::IgnoredAny>(&field.value)
                    .map_err(|e| broke(format!("its edit adds field {:?} with a value that is not one JSON value ({e})", field.name)))?;
                current.append(input, &field.name, &field.value).map_err(|e| broke(format!("its edit adds to a payload that is {e}")))?
            }
            contract::Edit::Remove(name) => Payload::Bytes(
                remove_field(&current.bytes(input), &name).map_err(|e| broke(format!("its edit removes from a payload that is {e}")))?,
            ),
        };
    }
    Ok(current)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends kept aside are the bytes `append_field` writes, whatever
    /// the object looks like, and so is their length.
    #[test]
    fn an_append_kept_aside_writes_what_append_field_writes() {
        for input in [&br#"{"a":1}"#[..], b"{}", b" { } \n", br#"{"a":[1,{"b":2}]}  "#] {
            let edits = [("w", "\"Friday\""), ("n", "42"), ("o", r#"{"x":null}"#)];
            let mut lazy = Payload::Input;
            let mut eager = input.to_vec();
            for (name, value) in edits {
                lazy = lazy.append(input, name, value).unwrap();
                eager = append_field(&eager, name, value).unwrap();
                assert_eq!(lazy.bytes(input).as_ref(), eager.as_slice());
                assert_eq!(lazy.len(input), eager.len());
                let mut batch = EventBatch::default();
                batch.push(b"{}");
                lazy.push_to(input, &mut batch);
                assert_eq!((batch.len(), batch.get(1)), (2, eager.as_slice()));
                assert_eq!(lazy.clone().into_bytes(input), Some(eager.clone()));
            }
            serde_json::from_slice::<serde_json::Value>(&lazy.bytes(input)).expect("still JSON");
        }
        assert_eq!(Payload::Input.into_bytes(b"{}"), None);
        assert!(Payload::Input.append(b"[1]", "w", "1").is_err(), "not an object");
    }
}
