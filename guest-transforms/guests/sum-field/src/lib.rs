//! `sum-field`: sums a numeric top-level field per key and window, e.g. the
//! revenue in `event_value_in_usd`. Null or absent values count as nothing;
//! a value that is not a number is refused (dead-lettered with the reason).
//!
//! Config (JSON, optional): `{"field": "event_value_in_usd"}`.

use runnel_sdk::{export_aggregate, parse_config, Aggregate, Event, Value};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    field: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { field: "event_value_in_usd".into() }
    }
}

pub struct SumField {
    field: String,
}

impl Aggregate for SumField {
    type Accumulator = f64;
    const STATE_FORMAT: &'static str = "sum-f64-le/1";

    fn new(config: &str) -> Result<Self, String> {
        let config: Config = parse_config(config)?;
        if config.field.is_empty() || config.field.contains('/') {
            return Err(format!("sum-field sums a top-level field; {:?} is not a field name", config.field));
        }
        Ok(Self { field: config.field })
    }

    fn fields(&self) -> Vec<&str> {
        vec![self.field.as_str()]
    }

    fn add(&self, acc: &mut f64, event: &Event<'_>) -> Result<(), String> {
        match event.raw(&self.field) {
            None => Ok(()),
            Some(raw) => {
                let v: f64 = raw.get().parse().map_err(|_| format!("{} is {}, not a number", self.field, raw.get()))?;
                *acc += v;
                Ok(())
            }
        }
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
        let bytes: [u8; 8] = bytes.try_into().map_err(|_| format!("a sum accumulator is 8 bytes, got {}", bytes.len()))?;
        Ok(f64::from_le_bytes(bytes))
    }
}

export_aggregate!(SumField);
