//! A plausible wrong answer to exercise 4: it counts the purchases of a
//! window instead of adding up their values.

use runnel_sdk::{export_aggregate, Aggregate, Event, Value};

pub struct CountsPurchases;

impl Aggregate for CountsPurchases {
    type Accumulator = f64;
    const STATE_FORMAT: &'static str = "wrong-revenue/1";

    fn new(_config: &str) -> Result<Self, String> {
        Ok(CountsPurchases)
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_value_in_usd"]
    }

    fn add(&self, acc: &mut f64, event: &Event<'_>) -> Result<(), String> {
        if event.raw("event_value_in_usd").is_some() {
            *acc += 1.0;
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
        acc.to_bits().to_be_bytes().to_vec()
    }

    fn decode(bytes: &[u8]) -> Result<f64, String> {
        <[u8; 8]>::try_from(bytes).map(|b| f64::from_bits(u64::from_be_bytes(b))).map_err(|e| e.to_string())
    }
}

export_aggregate!(CountsPurchases);
