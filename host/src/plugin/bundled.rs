//! The guests compiled into the `runnel` binary (built by `host/build.rs`
//! from `guest-transforms/guests/`), usable by name in configs.

macro_rules! guest {
    ($name:literal, $file:literal) => {
        ($name, include_bytes!(concat!(env!("RUNNEL_GUEST_DIR"), "/", $file)) as &[u8])
    };
}

/// Name → component bytes.
pub const BUNDLED: &[(&str, &[u8])] = &[
    guest!("identity", "identity.wasm"),
    guest!("add-weekday", "add_weekday.wasm"),
    guest!("filter-events", "filter_events.wasm"),
    guest!("count-events", "count_events.wasm"),
    guest!("sum-field", "sum_field.wasm"),
];

pub fn find(name: &str) -> Option<&'static [u8]> {
    let name = name.strip_prefix("bundled:").unwrap_or(name);
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

pub fn names() -> Vec<&'static str> {
    BUNDLED.iter().map(|(n, _)| *n).collect()
}

/// Where host/build.rs put every guest of the workspace (test guests and
/// exercises included), for tests and tools.
pub const GUEST_DIR: &str = env!("RUNNEL_GUEST_DIR");

/// A built guest by crate name (`hostile` → `GUEST_DIR/hostile.wasm`).
pub fn built_guest(crate_name: &str) -> std::path::PathBuf {
    std::path::Path::new(GUEST_DIR).join(format!("{}.wasm", crate_name.replace('-', "_")))
}
