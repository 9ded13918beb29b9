//! Plugin call cost by batch size: the same events through the WASM
//! transform and aggregate and through their native twins, in batches of
//! 1, 16, 256 and 4096. The difference per event is what crossing the
//! component boundary costs; it shrinks as batches grow.

use anyhow::Result;
use std::time::Instant;

use super::native::NativeAddWeekday;
use crate::accumulate::{Accumulators, EventBatch, NativeCount};
use crate::plugin::aggregate::AggregatePlugin;
use crate::plugin::bundled;
use crate::plugin::runtime::PluginRuntime;
use crate::plugin::transform::{FieldsSpec, TransformPlugin};
use crate::plugin::PluginSource;
use crate::window::AccOp;

pub const BATCH_SIZES: [usize; 4] = [1, 16, 256, 4096];

/// ns per event for one batch size.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CallCost {
    pub batch: usize,
    pub transform_wasm_ns: f64,
    pub transform_native_ns: f64,
    pub aggregate_wasm_ns: f64,
    pub aggregate_native_ns: f64,
}

fn plugin(name: &str) -> PluginSource {
    PluginSource::from_bytes(format!("{name}.wasm"), bundled::find(name).expect("a bundled plugin"))
}

/// Times `per_batch` over `events` events in batches of `size`, ns/event.
fn time(events: usize, size: usize, mut per_batch: impl FnMut(usize) -> Result<()>) -> Result<f64> {
    let batches = events.div_ceil(size).max(1);
    per_batch(0)?; // warm up
    let started = Instant::now();
    for b in 0..batches {
        per_batch(b)?;
    }
    Ok(started.elapsed().as_nanos() as f64 / (batches * size) as f64)
}

pub fn measure(runtime: &PluginRuntime, lines: &[String], events: usize) -> Result<Vec<CallCost>> {
    let fields =
        FieldsSpec { key_pointer: Some("/user_pseudo_id".into()), time_pointer: Some("/event_timestamp".into()), ..Default::default() };
    let mut wasm_t = TransformPlugin::load(runtime, plugin("add-weekday"), "", &fields)?;
    let mut wasm_a = AggregatePlugin::load(runtime, plugin("count-events"), "")?;
    let mut native_t = NativeAddWeekday::default();
    let mut native_a = NativeCount::default();
    let mut out = Vec::new();
    for size in BATCH_SIZES {
        let batches: Vec<EventBatch> = (0..8)
            .map(|b| {
                let mut batch = EventBatch::default();
                for i in 0..size {
                    batch.push(lines[(b * size + i) % lines.len()].as_bytes());
                }
                batch
            })
            .collect();
        let transform_wasm_ns = time(events, size, |b| {
            let out = wasm_t.transform(runtime, &batches[b % 8]);
            anyhow::ensure!(out.emitted.len() == size, "the transform dropped events: {:?}", out.rejected.first());
            Ok(())
        })?;
        let transform_native_ns = time(events, size, |b| {
            let out = native_t.transform(&batches[b % 8]);
            anyhow::ensure!(out.emitted.len() == size, "the native transform dropped events");
            Ok(())
        })?;
        // Adds spread over 1,000 accumulators, as a minute of users would be.
        let ops: Vec<AccOp> = (0..size as u32).map(|i| AccOp::Add { slot: i % 1000, event: i }).collect();
        let mut none = EventBatch::default();
        let aggregate_wasm_ns = time(events, size, |_| wasm_a.apply(&ops, &mut none, &mut []).map(drop))?;
        let aggregate_native_ns = time(events, size, |_| native_a.apply(&ops, &mut none, &mut []).map(drop))?;
        out.push(CallCost { batch: size, transform_wasm_ns, transform_native_ns, aggregate_wasm_ns, aggregate_native_ns });
    }
    Ok(out)
}
