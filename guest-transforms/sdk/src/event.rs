//! [`Event`]: one event as a plugin sees it — its bytes plus the fields the
//! SDK read from it in a single scan.

use runnel_event::{raw_str, FieldScanner, Raw, Scanned};
use std::borrow::Cow;

/// One input event.
pub struct Event<'a> {
    bytes: &'a [u8],
    scanner: &'a FieldScanner,
    scanned: Scanned<'a>,
}

impl<'a> Event<'a> {
    pub(crate) fn new(bytes: &'a [u8], scanner: &'a FieldScanner, scanned: Scanned<'a>) -> Self {
        Self { bytes, scanner, scanned }
    }

    /// The event's JSON bytes, as received.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The JSON text of a top-level field named in `fields()` (`None` if
    /// absent or null); parse it with `raw.get().parse()` or serde_json.
    ///
    /// # Panics
    /// If `name` is not listed in the plugin's `fields()`: that is a bug in the
    /// plugin, and the panic message says which name to add.
    pub fn raw(&self, name: &str) -> Option<Raw<'a>> {
        let index =
            self.scanner.position(name).unwrap_or_else(|| panic!("field {name:?} is read but not listed in fields(); add it there"));
        self.scanned.get(index).filter(|raw| raw.get() != "null")
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
