//! Exercise 1, reference solution: keep only gameplay events (`level_*`
//! and `post_score`), unchanged and in order.

use runnel_sdk::{export_transform, Emit, Event, Transform};

pub struct FilterGameplay;

fn is_gameplay(name: &str) -> bool {
    name.starts_with("level_") || name == "post_score"
}

impl Transform for FilterGameplay {
    fn new(_config: &str) -> Result<Self, String> {
        Ok(FilterGameplay)
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_name"]
    }

    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        let name = event.str("event_name").ok_or("event has no event_name")?;
        if is_gameplay(&name) {
            out.keep();
        }
        Ok(())
    }
}

export_transform!(FilterGameplay);
