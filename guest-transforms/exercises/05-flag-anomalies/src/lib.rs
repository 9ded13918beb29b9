//! Exercise 5: flag anomalous purchases (real-time ML inference).
//!
//! A purchase is an event with a numeric `event_value_in_usd`. Score each
//! one against a k-means model shipped in the config:
//!
//! ```json
//! {"centroids": [[0.99, 24.0], [4.99, 96.0]], "scale": [5.0, 48.0], "threshold": 1.5}
//! ```
//!
//! Features: `[value in USD, hours since the user's previous event]`, the
//! hours being `(event_timestamp - event_previous_timestamp) / 3.6e9`
//! (timestamps are µs). Divide each feature (and each centroid coordinate)
//! by its `scale`, take the Euclidean distance to the nearest centroid, and
//! emit the purchase with two fields added: `"anomaly": distance > threshold`
//! and `"anomaly_score"`: the distance rounded to 4 decimals. Events that
//! are not purchases are not scored: emit nothing for them.
//!
//! Check your work: `runnel try guest-transforms/exercises/05-flag-anomalies`.

// Until the snippets are filled in, parts of this file are unused.
#![allow(unused_imports, unused_variables, unreachable_code, dead_code)]

use runnel_sdk::{export_transform, parse_config, Emit, Event, Transform};
use serde::Deserialize;

/// The model, from the plugin's config.
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
    /// Distance from `features` to the nearest centroid, in scaled units.
    fn nearest_distance(&self, features: [f64; 2]) -> f64 {
        // TODO(snippet 1): scale `features` and every centroid by `self.scale`,
        // and return the smallest Euclidean distance (f64::hypot helps).
        todo!("distance to the nearest centroid")
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
            return Ok(()); // not a purchase
        };
        let now = event.i64("event_timestamp").ok_or("a purchase without event_timestamp")?;
        let previous = event.i64("event_previous_timestamp").unwrap_or(now);
        let hours = (now - previous) as f64 / 3.6e9;
        // TODO(snippet 2): score `[value, hours]` with `self.model.nearest_distance`,
        // then emit the event with both fields added (the host edits its bytes):
        //   out.keep()
        //       .add_field("anomaly", "true" or "false")
        //       .add_field("anomaly_score", &format!("{}", (d * 1e4).round() / 1e4));
        todo!("score the purchase and add the fields")
    }
}

export_transform!(FlagAnomalies);
