//! `inspect`: a transform written against the raw contract (no SDK driver)
//! that reports what the host sent it, so tests can see what crosses the
//! boundary. Each event comes back as itself with edits: `"seen"` added, a
//! list of the declared fields' texts as received (`null` for an absent
//! one), and `"bytes"`, the length of the whole event it got (0 when it got
//! none); then the field named by `remove`, if any, is removed.
//!
//! Config (JSON): `{"fields": [NAME, ...], "whole": BOOL, "remove": NAME}`.

use runnel_sdk::bindings::transform::exports::runnel::plugin::transformer::{
    Edit, Emitted, Field, FieldBatch, Guest, TransformInfo, TransformResult,
};
use serde::Deserialize;
use std::cell::RefCell;

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct Config {
    fields: Vec<String>,
    whole: bool,
    remove: Option<String>,
}

thread_local! {
    static CONFIG: RefCell<Config> = RefCell::default();
}

struct Inspect;

impl Guest for Inspect {
    fn init(config: String) -> Result<TransformInfo, String> {
        let config: Config = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let info = TransformInfo { fields: config.fields.clone(), whole_events: config.whole };
        CONFIG.with(|c| *c.borrow_mut() = config);
        Ok(info)
    }

    fn transform(batch: FieldBatch) -> TransformResult {
        let config = CONFIG.with(|c| c.borrow().clone());
        let per_event = config.fields.len();
        let (mut value_start, mut event_start) = (0usize, 0usize);
        let mut emitted = Vec::new();
        for i in 0..batch.count as usize {
            let mut seen = Vec::new();
            for k in i * per_event..(i + 1) * per_event {
                let end = batch.ends[k] as usize;
                let text = String::from_utf8_lossy(&batch.values[value_start..end]).into_owned();
                value_start = end;
                seen.push(if text.is_empty() { None } else { Some(text) });
            }
            let bytes = match batch.events.ends.get(i) {
                Some(&end) => {
                    let len = end as usize - event_start;
                    event_start = end as usize;
                    len
                }
                None => 0,
            };
            let add = |name: &str, value: String| Edit::Add(Field { name: name.into(), value });
            let mut edits = vec![add("seen", serde_json::to_string(&seen).expect("strings")), add("bytes", bytes.to_string())];
            edits.extend(config.remove.clone().map(Edit::Remove));
            emitted.push(Emitted { source: i as u32, payload: None, edits, key: None, event_time_us: None });
        }
        TransformResult { emitted, rejected: Vec::new() }
    }
}

runnel_sdk::bindings::transform::export!(Inspect with_types_in runnel_sdk::bindings::transform);
