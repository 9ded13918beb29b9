//! `wrong-version`: exports `runnel:plugin/transformer@0.2.0`, a contract
//! version this runnel does not speak, so loading it must fail with a
//! message that names both versions.

wit_bindgen::generate!({ path: "wit", world: "transform" });

use exports::runnel::plugin::transformer::{Guest, TransformResult};
use runnel::plugin::types::{EventBatch, EventFields};

struct WrongVersion;

impl Guest for WrongVersion {
    fn init(_config: String, _fields: EventFields) -> Result<(), String> {
        Ok(())
    }
    fn transform(_batch: EventBatch) -> TransformResult {
        TransformResult { emitted: Vec::new(), rejected: Vec::new() }
    }
}

export!(WrongVersion);
