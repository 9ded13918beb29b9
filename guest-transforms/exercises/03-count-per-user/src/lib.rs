//! Exercise 3: the number of events per user per one-minute window (the
//! workshop's Dataflow challenge: the aggregation snippet).
//!
//! The host keys events by `user_pseudo_id` and assigns them to one-minute
//! windows; this plugin is Beam's `CombineFn`: it keeps one accumulator per
//! (user, window) and says what to do with each event. Fill in `add` and
//! `merge`; `extract`, `encode` and `decode` are given.
//!
//! Check your work: `runnel try guest-transforms/exercises/03-count-per-user`.

// Until the snippets are filled in, parts of this file are unused.
#![allow(unused_imports, unused_variables, unreachable_code)]

use runnel_sdk::{export_aggregate, Aggregate, Event, Value};

pub struct CountPerUser;

impl Aggregate for CountPerUser {
    /// The accumulator: a count. A new one starts at `u64::default()`, 0.
    type Accumulator = u64;
    const STATE_FORMAT: &'static str = "exercise-count-u64-le/1";
    /// A count never reads the event, so the host sends no event bytes.
    const NEEDS_PAYLOAD: bool = false;

    fn new(_config: &str) -> Result<Self, String> {
        Ok(CountPerUser)
    }

    fn add(&self, acc: &mut u64, _event: &Event<'_>) -> Result<(), String> {
        // TODO(snippet 1): one more event in this window.
        todo!("count the event")
    }

    fn merge(&self, into: &mut u64, other: u64) {
        // TODO(snippet 2): two partial counts of one window make one
        // (Beam's merge_accumulators; used when windows merge).
        todo!("merge two counts")
    }

    fn extract(&self, acc: &u64) -> Value {
        Value::Int(*acc as i64)
    }

    fn encode(acc: &u64) -> Vec<u8> {
        acc.to_le_bytes().to_vec()
    }

    fn decode(bytes: &[u8]) -> Result<u64, String> {
        <[u8; 8]>::try_from(bytes).map(u64::from_le_bytes).map_err(|_| "a count is 8 bytes".into())
    }
}

export_aggregate!(CountPerUser);
