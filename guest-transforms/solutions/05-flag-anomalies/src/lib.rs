//! Exercise 5, reference solution: k-means anomaly scores for purchases.

use runnel_sdk::{export_transform, parse_config, Emit, Event, Transform};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Model {
    centroids: Vec<[f64; 2]>,
    scale: [f64; 2],
    threshold: f64,
}

pub struct FlagAnomalies {
    model: Model,
}

impl Model {
    fn nearest_distance(&self, features: [f64; 2]) -> f64 {
        let [sx, sy] = self.scale;
        self.centroids.iter().map(|[cx, cy]| (features[0] / sx - cx / sx).hypot(features[1] / sy - cy / sy)).fold(f64::INFINITY, f64::min)
    }
}

impl Transform for FlagAnomalies {
    fn new(config: &str) -> Result<Self, String> {
        let model: Model = parse_config(config)?;
        if model.centroids.is_empty() {
            return Err("the config needs at least one centroid".into());
        }
        Ok(Self { model })
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_value_in_usd", "event_timestamp", "event_previous_timestamp"]
    }

    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        let Some(value) = event.f64("event_value_in_usd") else {
            return Ok(());
        };
        let now = event.i64("event_timestamp").ok_or("a purchase without event_timestamp")?;
        let previous = event.i64("event_previous_timestamp").unwrap_or(now);
        let d = self.model.nearest_distance([value, (now - previous) as f64 / 3.6e9]);
        let flag = if d > self.model.threshold { "true" } else { "false" };
        out.keep().add_field("anomaly", flag).add_field("anomaly_score", &format!("{}", (d * 1e4).round() / 1e4));
        Ok(())
    }
}

export_transform!(FlagAnomalies);
