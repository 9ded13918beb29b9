//! [`Event`]: one event as a plugin sees it: the values of the fields it
//! declared, which the host read in its own single pass (and the whole
//! event's bytes, for a transform that asks for them).

use runnel_event::{raw_str, Raw};
use std::borrow::Cow;

/// One input event.
pub struct Event<'a> {
    /// The declared field names, in `fields()` order.
    names: &'a [String],
    /// This event's values, in the same order (`None`: absent).
    values: &'a [Option<Raw<'a>>],
    bytes: Option<&'a [u8]>,
}

impl<'a> Event<'a> {
    pub(crate) fn new(names: &'a [String], values: &'a [Option<Raw<'a>>], bytes: Option<&'a [u8]>) -> Self {
        Self { names, values, bytes }
    }

    /// The event's JSON bytes, as received.
    ///
    /// # Panics
    /// Unless the plugin asked for whole events
    /// ([`Transform::whole_events`](crate::Transform::whole_events),
    /// [`Aggregate::WHOLE_EVENTS`](crate::Aggregate::WHOLE_EVENTS)): by
    /// default the host sends only the fields named in `fields()`.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes.unwrap_or_else(|| {
            panic!("Event::bytes() reads the whole event, but the host sends only the fields in fields(); return true from Transform::whole_events() (or set Aggregate::WHOLE_EVENTS), or read fields with Event::str and friends")
        })
    }

    /// The JSON text of a top-level field named in `fields()` (`None` if
    /// absent or null); parse it with `raw.get().parse()` or serde_json.
    ///
    /// # Panics
    /// If `name` is not listed in the plugin's `fields()`: that is a bug in the
    /// plugin, and the panic message says which name to add.
    pub fn raw(&self, name: &str) -> Option<Raw<'a>> {
        let index = self
            .names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("field {name:?} is read but not listed in fields(); add it there"));
        self.values[index].filter(|raw| raw.get() != "null")
    }

    /// A string field's text (`None` if absent, null or not a string).
    pub fn str(&self, name: &str) -> Option<Cow<'a, str>> {
        self.raw(name).and_then(raw_str)
    }

    /// An integer field (`None` if absent, null or not an integer).
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.raw(name).and_then(|raw| raw.get().parse().ok())
    }

    /// A numeric field (`None` if absent, null or not a number).
    pub fn f64(&self, name: &str) -> Option<f64> {
        self.raw(name).and_then(|raw| raw.get().parse().ok())
    }
}
