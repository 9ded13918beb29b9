//! The [`Transform`] trait and the driver that runs it over the host's
//! batches (contract 0.2: the host sends the declared fields' values, the
//! driver hands them to the plugin as [`Event`]s and returns its outputs as
//! edits the host applies to the input's bytes).

use crate::bindings::transform::exports::runnel::plugin::transformer as contract;
use crate::event::Event;
use runnel_event::Raw;
use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

/// A per-event transform: zero, one or many outputs per input event.
pub trait Transform: Sized + 'static {
    /// Builds the transform from its configuration string (the pipeline
    /// file's `config = "..."`). An error refuses the plugin at load.
    fn new(config: &str) -> Result<Self, String>;

    /// The top-level fields [`Transform::transform`] reads with
    /// [`Event::str`] and friends. The host reads them from each event in
    /// its own (native) pass and sends only their values.
    fn fields(&self) -> Vec<&str> {
        Vec::new()
    }

    /// True when the transform reads whole events with [`Event::bytes`];
    /// the host then sends every event's bytes too (slower: the event
    /// crosses into the sandbox).
    fn whole_events(&self) -> bool {
        false
    }

    /// Transforms one event. Emit outputs through `out`; emit nothing to
    /// drop the event. `Err(reason)` sends the event to the dead letters.
    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String>;
}

/// Where a transform puts its outputs for the current event.
pub struct Emit<'a> {
    outputs: &'a mut Vec<Emitted>,
}

/// One output: the input event (with edits) or a new payload. Set its key
/// or event time to override the input's.
pub struct Emitted {
    payload: Option<Vec<u8>>,
    edits: Vec<contract::Edit>,
    key: Option<String>,
    event_time_us: Option<i64>,
}

impl Emitted {
    /// Groups this output under `key` instead of the input's key.
    pub fn set_key(&mut self, key: impl Into<String>) -> &mut Self {
        self.key = Some(key.into());
        self
    }

    /// Gives this output its own event time (µs since the epoch).
    pub fn set_event_time_us(&mut self, micros: i64) -> &mut Self {
        self.event_time_us = Some(micros);
        self
    }

    /// Appends `"name": value_json` to this output (the host edits the
    /// bytes). `value_json` must be one JSON value, e.g. `"\"Friday\""`;
    /// the host dead-letters the event if it is not.
    pub fn add_field(&mut self, name: &str, value_json: &str) -> &mut Self {
        self.edits.push(contract::Edit::Add(contract::Field { name: name.to_string(), value: value_json.to_string() }));
        self
    }

    /// Appends `"name": "text"`: `text` as a JSON string, quoted and escaped
    /// here (e.g. `add_str("weekday", "Friday")`). The same as
    /// [`Emitted::add_field`] with the quotes written for you, and cheaper
    /// than formatting them: one string is built, not two.
    pub fn add_str(&mut self, name: &str, text: &str) -> &mut Self {
        let value = serde_json::to_string(text).expect("a string always serialises");
        self.edits.push(contract::Edit::Add(contract::Field { name: name.to_string(), value }));
        self
    }

    /// Removes the top-level field `name` from this output.
    pub fn remove_field(&mut self, name: &str) -> &mut Self {
        self.edits.push(contract::Edit::Remove(name.to_string()));
        self
    }
}

impl Emit<'_> {
    fn push(&mut self, payload: Option<Vec<u8>>) -> &mut Emitted {
        self.outputs.push(Emitted { payload, edits: Vec::new(), key: None, event_time_us: None });
        self.outputs.last_mut().expect("just pushed")
    }

    /// Emits the input event unchanged (no bytes cross back).
    pub fn keep(&mut self) -> &mut Emitted {
        self.push(None)
    }

    /// Emits a new payload: one JSON object (the host checks it; anything
    /// else sends the input to the dead letters as a broken contract).
    pub fn replace(&mut self, payload: Vec<u8>) -> &mut Emitted {
        self.push(Some(payload))
    }

    /// Emits the input event with `"name": value_json` appended (see
    /// [`Emitted::add_field`]). `value_json` must be a JSON value, e.g.
    /// `"\"Friday\""`.
    pub fn add_field(&mut self, name: &str, value_json: &str) -> Result<&mut Emitted, String> {
        Ok(self.keep().add_field(name, value_json))
    }

    /// Emits the input event with `"name": "text"` appended, `text` written
    /// as a JSON string (see [`Emitted::add_str`]).
    pub fn add_str(&mut self, name: &str, text: &str) -> Result<&mut Emitted, String> {
        Ok(self.keep().add_str(name, text))
    }
}

struct State<T> {
    plugin: T,
    names: Vec<String>,
    whole_events: bool,
    outputs: Vec<Emitted>,
}

thread_local! {
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs a [`Transform`] for the export macro.
#[doc(hidden)]
pub struct Driver<T>(PhantomData<T>);

impl<T: Transform> Driver<T> {
    pub fn init(config: &str) -> Result<contract::TransformInfo, String> {
        let plugin = T::new(config)?;
        let names: Vec<String> = plugin.fields().into_iter().map(str::to_string).collect();
        let whole_events = plugin.whole_events();
        let info = contract::TransformInfo { fields: names.clone(), whole_events };
        let state = State { plugin, names, whole_events, outputs: Vec::new() };
        STATE.with(|s| *s.borrow_mut() = Some(Box::new(state)));
        Ok(info)
    }

    pub fn transform(batch: contract::FieldBatch) -> contract::TransformResult {
        STATE.with(|s| {
            let mut guard = s.borrow_mut();
            let state = guard.as_mut().and_then(|b| b.downcast_mut::<State<T>>()).expect("the host calls init before transform");
            state.batch(&batch)
        })
    }
}

impl<T: Transform> State<T> {
    fn batch(&mut self, batch: &contract::FieldBatch) -> contract::TransformResult {
        let count = batch.count as usize;
        let mut result = contract::TransformResult { emitted: Vec::with_capacity(count), rejected: Vec::new() };
        let fields = self.names.len();
        // One event's values at a time, borrowed from the batch.
        let mut values: Vec<Option<Raw<'_>>> = Vec::with_capacity(fields);
        let (mut value_start, mut event_start) = (0usize, 0usize);
        for index in 0..count {
            values.clear();
            for k in index * fields..(index + 1) * fields {
                let end = batch.ends[k] as usize;
                let text = &batch.values[value_start..end];
                value_start = end;
                values.push(if text.is_empty() { None } else { std::str::from_utf8(text).ok().map(Raw::from_json) });
            }
            let bytes = self.whole_events.then(|| {
                let end = batch.events.ends[index] as usize;
                let bytes = &batch.events.bytes[event_start..end];
                event_start = end;
                bytes
            });
            let source = index as u32;
            let event = Event::new(&self.names, &values, bytes);
            if let Err(reason) = one(&mut self.plugin, &mut self.outputs, source, &event, &mut result.emitted) {
                result.rejected.push(contract::Rejected { source, reason });
            }
        }
        result
    }
}

/// Runs the plugin on one event; its outputs join `out`.
fn one<T: Transform>(
    plugin: &mut T,
    outputs: &mut Vec<Emitted>,
    source: u32,
    event: &Event<'_>,
    out: &mut Vec<contract::Emitted>,
) -> Result<(), String> {
    outputs.clear();
    plugin.transform(event, &mut Emit { outputs })?;
    out.extend(outputs.drain(..).map(|o| contract::Emitted {
        source,
        payload: o.payload,
        edits: o.edits,
        key: o.key,
        event_time_us: o.event_time_us,
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `add_str` must write any text as one JSON string that reads back as
    /// that text, once the host appends it to an event.
    #[test]
    fn add_str_writes_the_text_as_one_json_string() {
        for text in ["Friday", "say \"hi\"", "back\\slash", "line\nbreak\t\u{1}", "café ☕", ""] {
            let mut outputs = Vec::new();
            Emit { outputs: &mut outputs }.add_str("w", text).expect("never refused");
            let [contract::Edit::Add(field)] = outputs[0].edits.as_slice() else { panic!("one field added") };
            let event = runnel_event::append_field(br#"{"a":1}"#, &field.name, &field.value).expect("an object");
            let back: serde_json::Value = serde_json::from_slice(&event).expect("valid JSON");
            assert_eq!(back["w"], text, "{event:?}");
        }
    }
}
