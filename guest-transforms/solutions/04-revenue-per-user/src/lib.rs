//! Exercise 4, reference solution: the sum of `event_value_in_usd` per user
//! and window; null values add nothing.

use runnel_sdk::{export_aggregate, Aggregate, Event, Value};

pub struct RevenuePerUser;

const FIELD: &str = "event_value_in_usd";

impl Aggregate for RevenuePerUser {
    type Accumulator = f64;
    const STATE_FORMAT: &'static str = "exercise-revenue-f64-le/1";

    fn new(_config: &str) -> Result<Self, String> {
        Ok(RevenuePerUser)
    }

    fn fields(&self) -> Vec<&str> {
        vec![FIELD]
    }

    fn add(&self, acc: &mut f64, event: &Event<'_>) -> Result<(), String> {
        if let Some(raw) = event.raw(FIELD) {
            *acc += raw.get().parse::<f64>().map_err(|_| format!("{FIELD} is {}, not a number", raw.get()))?;
        }
        Ok(())
    }

    fn merge(&self, into: &mut f64, other: f64) {
        *into += other;
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
