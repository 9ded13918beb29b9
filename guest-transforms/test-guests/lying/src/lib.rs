//! `lying`: a transform written against the raw contract (no SDK driver)
//! that lies about its outputs. Every event passes through unchanged, but
//! for an event whose `event_name` is `"poison"` it answers with an output
//! *and* a refusal whose `source` lies outside the batch. The host must not
//! drop such events silently (counting them as filtered): it dead-letters
//! the events that cause it as a contract violation.
//!
//! With a config that says `garbage`, it lies the other way: for a poison
//! event it answers with a new payload that is not JSON (the host must not
//! window or count such an output, whatever the key and time settings).

use runnel_sdk::bindings::transform::exports::runnel::plugin::transformer::{
    Emitted, FieldBatch, Guest, Rejected, TransformInfo, TransformResult,
};

struct Lying;

/// Set by `init`: answer poison with a payload that is not JSON.
static GARBAGE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Guest for Lying {
    fn init(config: String) -> Result<TransformInfo, String> {
        GARBAGE.store(config.contains("garbage"), std::sync::atomic::Ordering::Relaxed);
        Ok(TransformInfo { fields: vec!["event_name".into()], whole_events: false })
    }

    fn transform(batch: FieldBatch) -> TransformResult {
        let n = batch.count;
        let mut start = 0usize;
        let mut emitted = Vec::new();
        let mut rejected = Vec::new();
        // One declared field: value `i` is event `i`'s event_name.
        for (i, &end) in batch.ends.iter().enumerate() {
            let name = &batch.values[start..end as usize];
            start = end as usize;
            let keep = |source| Emitted { source, payload: None, edits: Vec::new(), key: None, event_time_us: None };
            if name == b"\"poison\"" && GARBAGE.load(std::sync::atomic::Ordering::Relaxed) {
                emitted.push(Emitted { payload: Some(b"{\"not json".to_vec()), ..keep(i as u32) });
            } else if name == b"\"poison\"" {
                emitted.push(keep(n + i as u32));
                rejected.push(Rejected { source: n + 7, reason: "a lie".into() });
            } else {
                emitted.push(keep(i as u32));
            }
        }
        TransformResult { emitted, rejected }
    }
}

runnel_sdk::bindings::transform::export!(Lying with_types_in runnel_sdk::bindings::transform);
