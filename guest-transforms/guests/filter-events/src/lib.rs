//! `filter-events`: keeps events whose `event_name` is in a configured list
//! and drops the rest.
//!
//! Config (JSON): `{"event_names": ["level_start", "level_end"]}`. An empty or
//! missing list is refused: it would drop every event.

use runnel_sdk::{export_transform, parse_config, Emit, Event, Transform};
use serde::Deserialize;
use std::collections::HashSet;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    event_names: Vec<String>,
}

pub struct FilterEvents {
    keep: HashSet<String>,
}

impl Transform for FilterEvents {
    fn new(config: &str) -> Result<Self, String> {
        let config: Config = parse_config(config)?;
        if config.event_names.is_empty() {
            return Err("filter-events needs a list of event names to keep, e.g. {\"event_names\": [\"level_start\"]}".into());
        }
        Ok(Self { keep: config.event_names.into_iter().collect() })
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_name"]
    }

    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        let name = event.str("event_name").ok_or("event has no event_name string")?;
        if self.keep.contains(name.as_ref()) {
            out.keep();
        }
        Ok(())
    }
}

export_transform!(FilterEvents);
