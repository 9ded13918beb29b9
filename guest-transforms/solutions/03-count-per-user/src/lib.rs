//! Exercise 3, reference solution: events per user per window.

use runnel_sdk::{export_aggregate, Aggregate, Event, Value};

pub struct CountPerUser;

impl Aggregate for CountPerUser {
    type Accumulator = u64;
    const STATE_FORMAT: &'static str = "exercise-count-u64-le/1";
    const NEEDS_PAYLOAD: bool = false;

    fn new(_config: &str) -> Result<Self, String> {
        Ok(CountPerUser)
    }

    fn add(&self, acc: &mut u64, _event: &Event<'_>) -> Result<(), String> {
        *acc += 1;
        Ok(())
    }

    fn merge(&self, into: &mut u64, other: u64) {
        *into += other;
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
