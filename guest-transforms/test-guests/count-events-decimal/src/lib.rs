//! `count-events-decimal`: counts like `count-events`, but keeps its
//! accumulators in another state format (`count-decimal/1`, the count as
//! decimal text). A hot reload from `count-events` to it cannot carry the
//! open windows' counts over, so the old version must finish them.

use runnel_sdk::{export_aggregate, Aggregate, Event, Value};

pub struct CountDecimal;

impl Aggregate for CountDecimal {
    type Accumulator = u64;
    const STATE_FORMAT: &'static str = "count-decimal/1";
    const NEEDS_PAYLOAD: bool = false;

    fn new(_config: &str) -> Result<Self, String> {
        Ok(CountDecimal)
    }

    fn add(&self, acc: &mut u64, _event: &Event<'_>) -> Result<(), String> {
        *acc = acc.checked_add(1).ok_or("count overflow")?;
        Ok(())
    }

    fn merge(&self, into: &mut u64, other: u64) {
        *into = into.saturating_add(other);
    }

    fn extract(&self, acc: &u64) -> Value {
        Value::Int(i64::try_from(*acc).unwrap_or(i64::MAX))
    }

    fn encode(acc: &u64) -> Vec<u8> {
        acc.to_string().into_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<u64, String> {
        std::str::from_utf8(bytes).ok().and_then(|t| t.parse().ok()).ok_or_else(|| "not a count-decimal/1 accumulator".into())
    }
}

export_aggregate!(CountDecimal);
