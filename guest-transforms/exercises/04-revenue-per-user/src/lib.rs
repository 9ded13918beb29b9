//! Exercise 4: revenue per user per one-minute window.
//!
//! Sum `event_value_in_usd` per user and window. Most events have no value
//! (`null`): they add nothing, but their window still gets a pane (0.0). A
//! value that is not a number is refused with a reason.
//!
//! Check your work: `runnel try guest-transforms/exercises/04-revenue-per-user`.

// Until the snippets are filled in, parts of this file are unused.
#![allow(unused_imports, unused_variables, unreachable_code)]

use runnel_sdk::{export_aggregate, Aggregate, Event, Value};

pub struct RevenuePerUser;

const FIELD: &str = "event_value_in_usd";

impl Aggregate for RevenuePerUser {
    /// The accumulator: dollars so far.
    type Accumulator = f64;
    const STATE_FORMAT: &'static str = "exercise-revenue-f64-le/1";

    fn new(_config: &str) -> Result<Self, String> {
        Ok(RevenuePerUser)
    }

    /// The SDK reads these fields of each event for `add`.
    fn fields(&self) -> Vec<&str> {
        vec![FIELD]
    }

    fn add(&self, acc: &mut f64, event: &Event<'_>) -> Result<(), String> {
        // TODO(snippet 1): `event.raw(FIELD)` is `None` for a missing or null
        // value (add nothing), else the JSON text of the value: parse it as an
        // f64 (`raw.get().parse::<f64>()`), refuse it with Err(reason) if that
        // fails, and add it to `acc`.
        todo!("add the event's value")
    }

    fn merge(&self, into: &mut f64, other: f64) {
        // TODO(snippet 2): two partial sums of one window make one.
        todo!("merge two sums")
    }

    fn extract(&self, acc: &f64) -> Value {
        Value::Float(*acc)
    }

    fn encode(acc: &f64) -> Vec<u8> {
        acc.to_le_bytes().to_vec()
    }

    fn decode(bytes: &[u8]) -> Result<f64, String> {
        <[u8; 8]>::try_from(bytes).map(f64::from_le_bytes).map_err(|_| "a sum is 8 bytes".into())
    }
}

export_aggregate!(RevenuePerUser);
