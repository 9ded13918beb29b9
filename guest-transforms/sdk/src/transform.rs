//! The [`Transform`] trait and the driver that runs it over the host's batches.

use crate::bindings::transform::exports::runnel::plugin::transformer as contract;
use crate::bindings::transform::runnel::plugin::types as wit;
use crate::event::Event;
use runnel_event::{FieldScanner, KeyAndTime, Pointer, TimeFormat};
use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

/// A per-event transform: zero, one or many outputs per input event.
pub trait Transform: Sized + 'static {
    /// Builds the transform from its configuration string (the pipeline
    /// file's `config = "..."`). An error refuses the plugin at load.
    fn new(config: &str) -> Result<Self, String>;

    /// The top-level fields [`Transform::transform`] reads with
    /// [`Event::str`] and friends. Each event is scanned once for all of them.
    fn fields(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Transforms one event. Emit outputs through `out`; emit nothing to
    /// drop the event. `Err(reason)` sends the event to the dead letters.
    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String>;
}

/// Where a transform puts its outputs for the current event.
pub struct Emit<'a> {
    outputs: &'a mut Vec<Emitted>,
    input: &'a [u8],
}

/// One output; set its key or event time to override the ones read from
/// the input event.
pub struct Emitted {
    payload: Option<Vec<u8>>,
    key: Option<String>,
    event_time_us: Option<i64>,
}

impl Emitted {
    /// Groups this output under `key` instead of the input's key field.
    pub fn set_key(&mut self, key: impl Into<String>) -> &mut Self {
        self.key = Some(key.into());
        self
    }

    /// Gives this output its own event time (µs since the epoch).
    pub fn set_event_time_us(&mut self, micros: i64) -> &mut Self {
        self.event_time_us = Some(micros);
        self
    }
}

impl Emit<'_> {
    fn push(&mut self, payload: Option<Vec<u8>>) -> &mut Emitted {
        self.outputs.push(Emitted { payload, key: None, event_time_us: None });
        self.outputs.last_mut().expect("just pushed")
    }

    /// Emits the input event unchanged (no bytes are copied back).
    pub fn keep(&mut self) -> &mut Emitted {
        self.push(None)
    }

    /// Emits a new payload.
    pub fn replace(&mut self, payload: Vec<u8>) -> &mut Emitted {
        self.push(Some(payload))
    }

    /// Emits the input event with `"name": value_json` appended, editing
    /// bytes rather than re-serialising the event. `value_json` must be a
    /// JSON value, e.g. `"\"Friday\""`.
    pub fn add_field(&mut self, name: &str, value_json: &str) -> Result<&mut Emitted, String> {
        let payload = runnel_event::append_field(self.input, name, value_json).map_err(|e| e.to_string())?;
        Ok(self.push(Some(payload)))
    }
}

struct State<T> {
    plugin: T,
    scanner: FieldScanner,
    key_and_time: KeyAndTime,
    outputs: Vec<Emitted>,
}

thread_local! {
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs a [`Transform`] for the export macro.
#[doc(hidden)]
pub struct Driver<T>(PhantomData<T>);

impl<T: Transform> Driver<T> {
    pub fn init(config: &str, fields: wit::EventFields) -> Result<(), String> {
        let plugin = T::new(config)?;
        let mut scanner = FieldScanner::new(plugin.fields());
        let key = fields.key_pointer.as_deref().map(Pointer::parse).transpose()?;
        let time = fields.time_pointer.as_deref().map(Pointer::parse).transpose()?.map(|p| (p, time_format(fields.time_format)));
        let key_and_time = KeyAndTime::new(&mut scanner, key, time);
        let state = State { plugin, scanner, key_and_time, outputs: Vec::new() };
        STATE.with(|s| *s.borrow_mut() = Some(Box::new(state)));
        Ok(())
    }

    pub fn transform(batch: wit::EventBatch) -> contract::TransformResult {
        STATE.with(|s| {
            let mut guard = s.borrow_mut();
            let state = guard.as_mut().and_then(|b| b.downcast_mut::<State<T>>()).expect("the host calls init before transform");
            let mut result = contract::TransformResult { emitted: Vec::with_capacity(batch.ends.len()), rejected: Vec::new() };
            let mut start = 0usize;
            for (index, &end) in batch.ends.iter().enumerate() {
                let bytes = &batch.bytes[start..end as usize];
                start = end as usize;
                if let Err(reason) = state.one(index as u32, bytes, &mut result.emitted) {
                    result.rejected.push(contract::Rejected { source: index as u32, reason });
                }
            }
            result
        })
    }
}

impl<T: Transform> State<T> {
    fn one(&mut self, source: u32, bytes: &[u8], out: &mut Vec<contract::Emitted>) -> Result<(), String> {
        let scanned = self.scanner.scan(bytes).map_err(|e| e.to_string())?;
        self.outputs.clear();
        let event = Event::new(bytes, &self.scanner, scanned.clone());
        let mut emit = Emit { outputs: &mut self.outputs, input: bytes };
        self.plugin.transform(&event, &mut emit)?;
        if self.outputs.is_empty() {
            return Ok(());
        }
        // Key and time are read only for events that produce output, so a
        // filter never rejects an event it would have dropped anyway.
        let needs_key = self.outputs.iter().any(|o| o.key.is_none());
        let needs_time = self.outputs.iter().any(|o| o.event_time_us.is_none());
        let key = if needs_key { self.key_and_time.key(&scanned)? } else { None };
        let time = if needs_time { self.key_and_time.time(&scanned)? } else { None };
        for o in self.outputs.drain(..) {
            out.push(contract::Emitted {
                source,
                payload: o.payload,
                key: o.key.or_else(|| key.clone()),
                event_time_us: o.event_time_us.or(time),
            });
        }
        Ok(())
    }
}

fn time_format(f: wit::TimeFormat) -> TimeFormat {
    match f {
        wit::TimeFormat::Micros => TimeFormat::Micros,
        wit::TimeFormat::Millis => TimeFormat::Millis,
        wit::TimeFormat::Seconds => TimeFormat::Seconds,
        wit::TimeFormat::Rfc3339 => TimeFormat::Rfc3339,
    }
}
