//! `lying`: a transform written against the raw contract (no SDK driver)
//! that lies about its outputs. Every event passes through unchanged, but
//! for an event whose bytes contain `"event_name":"poison"` it answers with
//! an output *and* a refusal whose `source` lies outside the batch. The
//! host must not drop such events silently (counting them as filtered): it
//! dead-letters the events that cause it as a contract violation.

use runnel_sdk::bindings::transform::exports::runnel::plugin::transformer::{Emitted, Guest, Rejected, TransformResult};
use runnel_sdk::bindings::transform::runnel::plugin::types::{EventBatch, EventFields};

struct Lying;

impl Guest for Lying {
    fn init(_config: String, _fields: EventFields) -> Result<(), String> {
        Ok(())
    }

    fn transform(batch: EventBatch) -> TransformResult {
        let n = batch.ends.len() as u32;
        let mut start = 0usize;
        let mut emitted = Vec::new();
        let mut rejected = Vec::new();
        for (i, &end) in batch.ends.iter().enumerate() {
            let event = &batch.bytes[start..end as usize];
            start = end as usize;
            const POISON: &[u8] = b"\"event_name\":\"poison\"";
            let poison = event.windows(POISON.len()).any(|w| w == POISON);
            if poison {
                emitted.push(Emitted { source: n + i as u32, payload: None, key: None, event_time_us: None });
                rejected.push(Rejected { source: n + 7, reason: "a lie".into() });
            } else {
                emitted.push(Emitted { source: i as u32, payload: None, key: None, event_time_us: None });
            }
        }
        TransformResult { emitted, rejected }
    }
}

runnel_sdk::bindings::transform::export!(Lying with_types_in runnel_sdk::bindings::transform);
