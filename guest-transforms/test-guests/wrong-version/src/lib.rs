//! `wrong-version`: a transform built against the previous contract,
//! `runnel:plugin@0.1.0` (its own copy of that WIT, in `wit/`), which this
//! runnel (0.2.0) does not speak: loading it must fail with a message that
//! names both versions and says to rebuild.

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
