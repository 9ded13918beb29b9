//! The [`Aggregate`] trait (Beam's `CombineFn`) and the driver that keeps its
//! accumulators inside the guest, addressed by the host's slot numbers.

use crate::bindings::aggregate::exports::runnel::plugin::aggregator as contract;
use crate::bindings::aggregate::runnel::plugin::types as wit;
use crate::event::Event;
use runnel_event::{FieldScanner, Raw, Scanned};
use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

/// What an aggregate extracts from an accumulator.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Text(String),
    /// Any JSON document, as text.
    Json(String),
}

/// A per-key aggregation with Beam `CombineFn` semantics.
///
/// `create_accumulator` is `Accumulator::default()`; the rest are methods.
pub trait Aggregate: Sized + 'static {
    /// The per-(key, window) state. Keep it small: there is one per open window.
    type Accumulator: Default;

    /// Names the encoding of [`Aggregate::encode`]; bump it when the encoding
    /// changes so a hot reload does not carry old bytes into new code.
    const STATE_FORMAT: &'static str;

    /// False when [`Aggregate::add`] never looks at the event (a count): the
    /// host then sends no event data at all.
    const NEEDS_PAYLOAD: bool = true;

    /// True when [`Aggregate::add`] reads whole events ([`Event::bytes`]);
    /// by default the host reads the fields named in [`Aggregate::fields`]
    /// natively and sends only their values.
    const WHOLE_EVENTS: bool = false;

    /// Builds the aggregate from its configuration string.
    fn new(config: &str) -> Result<Self, String>;

    /// The top-level fields [`Aggregate::add`] reads (the host sends only
    /// their values).
    fn fields(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Beam's `add_input`. `Err(reason)` dead-letters that event.
    fn add(&self, acc: &mut Self::Accumulator, event: &Event<'_>) -> Result<(), String>;

    /// Beam's `merge_accumulators`, two at a time.
    fn merge(&self, into: &mut Self::Accumulator, other: Self::Accumulator);

    /// Beam's `extract_output`.
    fn extract(&self, acc: &Self::Accumulator) -> Value;

    /// The accumulator's bytes, for checkpoints and hot reloads.
    fn encode(acc: &Self::Accumulator) -> Vec<u8>;

    /// The inverse of [`Aggregate::encode`].
    fn decode(bytes: &[u8]) -> Result<Self::Accumulator, String>;
}

struct State<A: Aggregate> {
    plugin: A,
    scanner: FieldScanner,
    slots: Vec<Option<A::Accumulator>>,
}

/// The accumulator in `slot`, created if the slot is new or was released.
fn slot_mut<T: Default>(slots: &mut Vec<Option<T>>, slot: u32) -> &mut T {
    let i = slot as usize;
    if i >= slots.len() {
        slots.resize_with(i + 1, || None);
    }
    slots[i].get_or_insert_with(Default::default)
}

fn take<T>(slots: &mut [Option<T>], slot: u32) -> Option<T> {
    slots.get_mut(slot as usize).and_then(Option::take)
}

thread_local! {
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn with_state<A: Aggregate, R>(f: impl FnOnce(&mut State<A>) -> R) -> R {
    STATE.with(|s| {
        let mut guard = s.borrow_mut();
        let state = guard.as_mut().and_then(|b| b.downcast_mut::<State<A>>()).expect("the host calls init first");
        f(state)
    })
}

/// Runs an [`Aggregate`] for the export macro.
#[doc(hidden)]
pub struct Driver<A>(PhantomData<A>);

impl<A: Aggregate> Driver<A> {
    pub fn init(config: &str) -> Result<contract::AggregateInfo, String> {
        let plugin = A::new(config)?;
        let scanner = FieldScanner::new(plugin.fields());
        let reads = match (A::NEEDS_PAYLOAD, A::WHOLE_EVENTS) {
            (false, _) => contract::Reads::Nothing,
            (true, true) => contract::Reads::WholeEvents,
            (true, false) => contract::Reads::Fields(scanner.names().to_vec()),
        };
        let state = State::<A> { plugin, scanner, slots: Vec::new() };
        STATE.with(|s| *s.borrow_mut() = Some(Box::new(state)));
        Ok(contract::AggregateInfo { state_format: A::STATE_FORMAT.to_string(), reads })
    }

    pub fn add(events: wit::FieldBatch, adds: Vec<contract::SlotInput>) -> Vec<contract::RejectedAdd> {
        with_state::<A, _>(|state| {
            let mut rejected = Vec::new();
            if A::NEEDS_PAYLOAD && !A::WHOLE_EVENTS {
                let State { plugin, scanner, slots } = state;
                let names = scanner.names();
                let mut values = Vec::with_capacity(names.len());
                for (index, add) in adds.iter().enumerate() {
                    let outcome = match row(&events, add.event, names.len(), &mut values) {
                        Some(()) => plugin.add(slot_mut(slots, add.slot), &Event::new(names, &values, None)),
                        None => Err(format!("host bug: event {} is not in the batch", add.event)),
                    };
                    if let Err(reason) = outcome {
                        rejected.push(contract::RejectedAdd { index: index as u32, reason });
                    }
                }
                return rejected;
            }
            let events = events.events;
            if !A::NEEDS_PAYLOAD {
                let event = Event::new(&[], &[], Some(b"{}"));
                let State { plugin, slots, .. } = state;
                for (index, add) in adds.iter().enumerate() {
                    if let Err(reason) = plugin.add(slot_mut(slots, add.slot), &event) {
                        rejected.push(contract::RejectedAdd { index: index as u32, reason });
                    }
                }
                return rejected;
            }
            let State { plugin, scanner, slots } = state;
            // Adds for one event are usually consecutive (one per window):
            // scan each event once.
            let mut cached: Option<(u32, Result<Scanned<'_>, String>)> = None;
            for (index, add) in adds.iter().enumerate() {
                let Some(bytes) = event_bytes(&events, add.event) else {
                    rejected.push(contract::RejectedAdd {
                        index: index as u32,
                        reason: format!("host bug: event {} is not in the batch", add.event),
                    });
                    continue;
                };
                if cached.as_ref().map(|c| c.0) != Some(add.event) {
                    cached = Some((add.event, scanner.scan(bytes).map_err(|e| e.to_string())));
                }
                let outcome = match &cached.as_ref().expect("just set").1 {
                    Err(e) => Err(e.clone()),
                    Ok(scanned) => {
                        let event = Event::new(scanner.names(), scanned.values(), Some(bytes));
                        plugin.add(slot_mut(slots, add.slot), &event)
                    }
                };
                if let Err(reason) = outcome {
                    rejected.push(contract::RejectedAdd { index: index as u32, reason });
                }
            }
            rejected
        })
    }

    pub fn merge(target: u32, sources: Vec<u32>) {
        with_state::<A, _>(|State { plugin, slots, .. }| {
            for source in sources {
                if source == target {
                    continue;
                }
                if let Some(other) = take(slots, source) {
                    plugin.merge(slot_mut(slots, target), other);
                }
            }
        })
    }

    pub fn extract(slots: Vec<u32>) -> Vec<contract::Value> {
        with_state::<A, _>(|state| {
            slots
                .iter()
                .map(|&slot| {
                    let value = match state.slots.get(slot as usize).and_then(Option::as_ref) {
                        Some(acc) => state.plugin.extract(acc),
                        None => state.plugin.extract(&A::Accumulator::default()),
                    };
                    to_wit(value)
                })
                .collect()
        })
    }

    pub fn release(slots: Vec<u32>) {
        with_state::<A, _>(|state| {
            for slot in slots {
                take(&mut state.slots, slot);
            }
        })
    }

    pub fn export_state(slots: Vec<u32>) -> Vec<Vec<u8>> {
        with_state::<A, _>(|state| {
            slots
                .iter()
                .map(|&slot| match state.slots.get(slot as usize).and_then(Option::as_ref) {
                    Some(acc) => A::encode(acc),
                    None => A::encode(&A::Accumulator::default()),
                })
                .collect()
        })
    }

    pub fn import_state(slot: u32, bytes: Vec<u8>) -> Result<(), String> {
        let acc = A::decode(&bytes)?;
        with_state::<A, _>(|state| {
            *slot_mut(&mut state.slots, slot) = acc;
        });
        Ok(())
    }
}

/// Event `index`'s declared values (`fields` of them) into `values`;
/// `None` if the batch has no such event.
fn row<'a>(batch: &'a wit::FieldBatch, index: u32, fields: usize, values: &mut Vec<Option<Raw<'a>>>) -> Option<()> {
    values.clear();
    if index >= batch.count {
        return None;
    }
    let first = index as usize * fields;
    let mut start = if first == 0 { 0 } else { *batch.ends.get(first - 1)? as usize };
    for k in first..first + fields {
        let end = *batch.ends.get(k)? as usize;
        let text = batch.values.get(start..end)?;
        start = end;
        values.push(if text.is_empty() { None } else { std::str::from_utf8(text).ok().map(Raw::from_json) });
    }
    Some(())
}

fn event_bytes(batch: &wit::EventBatch, index: u32) -> Option<&[u8]> {
    let i = index as usize;
    let end = *batch.ends.get(i)? as usize;
    let start = if i == 0 { 0 } else { batch.ends[i - 1] as usize };
    batch.bytes.get(start..end)
}

fn to_wit(value: Value) -> contract::Value {
    match value {
        Value::Int(v) => contract::Value::Int(v),
        Value::Float(v) => contract::Value::Float(v),
        Value::Text(v) => contract::Value::Text(v),
        Value::Json(v) => contract::Value::Json(v),
    }
}
