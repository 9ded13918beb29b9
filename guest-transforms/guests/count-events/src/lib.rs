//! `count-events`: the number of events per key and window — the workshop's
//! Dataflow solution ("number of events per user per 1-minute window").
//! It never reads the event, so the host sends it no event bytes.

use runnel_sdk::{export_aggregate, Aggregate, Event, Value};

pub struct CountEvents;

impl Aggregate for CountEvents {
    type Accumulator = u64;
    const STATE_FORMAT: &'static str = "count-u64-le/1";
    const NEEDS_PAYLOAD: bool = false;

    fn new(_config: &str) -> Result<Self, String> {
        Ok(CountEvents)
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
        let bytes: [u8; 8] = bytes.try_into().map_err(|_| format!("a count accumulator is 8 bytes, got {}", bytes.len()))?;
        Ok(u64::from_le_bytes(bytes))
    }
}

export_aggregate!(CountEvents);
