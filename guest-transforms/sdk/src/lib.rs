//! # runnel-sdk: write runnel plugins in Rust
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2`. Writing one
//! takes a trait impl and one export macro:
//!
//! ```ignore
//! use runnel_sdk::{export_transform, Emit, Event, Transform};
//!
//! /// Keeps only events whose `event_name` starts with "level_".
//! struct LevelsOnly;
//!
//! impl Transform for LevelsOnly {
//!     fn new(_config: &str) -> Result<Self, String> {
//!         Ok(LevelsOnly)
//!     }
//!     fn fields(&self) -> Vec<&str> {
//!         vec!["event_name"]
//!     }
//!     fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
//!         let name = event.str("event_name").ok_or("event has no event_name")?;
//!         if name.starts_with("level_") {
//!             out.keep();
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_transform!(LevelsOnly);
//! ```
//!
//! The crate must be a `cdylib`; build it with
//! `cargo build --release --target wasm32-wasip2` and point a pipeline's
//! `[transform] plugin` at the `.wasm` file.
//!
//! ## What the SDK does for you
//! - **Only what you read crosses.** `fields()` names the top-level fields
//!   you read; the host reads them (with the key and event time the pipeline
//!   groups by) in its own single native pass and sends only their values,
//!   not the 2–3 KB event. A transform that needs whole events says so with
//!   [`Transform::whole_events`].
//! - **Edits, not documents.** [`Emit::keep`] passes the input through
//!   without copying it back; [`Emit::add_str`] (a text value, quoted for
//!   you), [`Emit::add_field`] (any JSON value as text) and
//!   [`Emitted::remove_field`] are edits the host applies to the input's
//!   bytes natively.
//! - **Key and event time ride along.** Each output carries the key and event
//!   time the host read from its input event, unless you set them yourself.
//! - **Errors are per event.** Returning `Err(reason)` sends that event to the
//!   dead letters with your reason; the rest of the batch goes on.
//! - **Aggregates keep state in the guest.** [`Aggregate`] is Beam's
//!   `CombineFn`: the SDK stores accumulators by the host's slot numbers and
//!   encodes them only when the host checkpoints or hot-reloads.

pub use runnel_event::{append_field, parse_event_time, raw_str, Raw, TimeFormat};
pub use serde_json::value::RawValue;

mod aggregate;
mod event;
mod transform;

pub use aggregate::{Aggregate, Value};
pub use event::Event;
pub use transform::{Emit, Emitted, Transform};

/// Generated bindings for the contract in `wit/`. Plugin authors rarely need
/// these directly; the export macros use them.
pub mod bindings {
    /// The `transform` world.
    pub mod transform {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "transform",
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "runnel_sdk::bindings::transform",
        });
    }
    /// The `aggregate` world.
    pub mod aggregate {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "aggregate",
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "runnel_sdk::bindings::aggregate",
        });
    }
}

#[doc(hidden)]
pub mod __private {
    pub use crate::aggregate::Driver as AggregateDriver;
    pub use crate::transform::Driver as TransformDriver;
}

/// Exports a [`Transform`] implementation as the component's `transformer`.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        const _: () = {
            use $crate::bindings::transform::exports::runnel::plugin::transformer as contract;
            struct RunnelTransform;
            impl contract::Guest for RunnelTransform {
                fn init(config: String) -> Result<contract::TransformInfo, String> {
                    $crate::__private::TransformDriver::<$ty>::init(&config)
                }
                fn transform(batch: contract::FieldBatch) -> contract::TransformResult {
                    $crate::__private::TransformDriver::<$ty>::transform(batch)
                }
            }
    $crate::bindings::transform::export!(RunnelTransform with_types_in $crate::bindings::transform);
        };
    };
}

/// Exports an [`Aggregate`] implementation as the component's `aggregator`.
#[macro_export]
macro_rules! export_aggregate {
    ($ty:ty) => {
        const _: () = {
            use $crate::bindings::aggregate::exports::runnel::plugin::aggregator as contract;
            use $crate::bindings::aggregate::runnel::plugin::types;
            type D = $crate::__private::AggregateDriver<$ty>;
            struct RunnelAggregate;
            impl contract::Guest for RunnelAggregate {
                fn init(config: String) -> Result<contract::AggregateInfo, String> {
                    D::init(&config)
                }
                fn add(events: types::FieldBatch, adds: Vec<contract::SlotInput>) -> Vec<contract::RejectedAdd> {
                    D::add(events, adds)
                }
                fn merge(target: u32, sources: Vec<u32>) {
                    D::merge(target, sources)
                }
                fn extract(slots: Vec<u32>) -> Vec<contract::Value> {
                    D::extract(slots)
                }
                fn release(slots: Vec<u32>) {
                    D::release(slots)
                }
                fn export_state(slots: Vec<u32>) -> Vec<Vec<u8>> {
                    D::export_state(slots)
                }
                fn import_state(slot: u32, state: Vec<u8>) -> Result<(), String> {
                    D::import_state(slot, state)
                }
            }
    $crate::bindings::aggregate::export!(RunnelAggregate with_types_in $crate::bindings::aggregate);
        };
    };
}

/// Parses a plugin's configuration string as JSON into `T`; an empty string
/// gives `T::default()`. Errors name the plugin's expected shape.
pub fn parse_config<T: serde::de::DeserializeOwned + Default>(config: &str) -> Result<T, String> {
    if config.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(config).map_err(|e| {
        format!("plugin configuration is not valid for {}: {e}", std::any::type_name::<T>().rsplit("::").next().unwrap_or("this plugin"))
    })
}
