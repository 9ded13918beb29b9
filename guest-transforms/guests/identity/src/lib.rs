//! `identity`: passes every event through unchanged (no bytes are copied
//! back to the host). Useful to measure the pipeline without a transform cost.

use runnel_sdk::{export_transform, Emit, Event, Transform};

pub struct Identity;

impl Transform for Identity {
    fn new(_config: &str) -> Result<Self, String> {
        Ok(Identity)
    }

    fn transform(&mut self, _event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        out.keep();
        Ok(())
    }
}

export_transform!(Identity);
