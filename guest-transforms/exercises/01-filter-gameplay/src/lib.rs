//! Exercise 1: keep only gameplay events.
//!
//! The game sends many kinds of events; the dashboard only wants gameplay.
//! A gameplay event is one whose `event_name` starts with `level_` (e.g.
//! `level_start`, `level_end_quickplay`) or is `post_score`. Keep those,
//! unchanged and in order; emit nothing for the others. An event without an
//! `event_name` is refused with a reason (it goes to the dead letters).
//!
//! Check your work: `runnel try guest-transforms/exercises/01-filter-gameplay`.

// Until the snippets are filled in, parts of this file are unused.
#![allow(unused_imports, unused_variables, unreachable_code)]

use runnel_sdk::{export_transform, Emit, Event, Transform};

pub struct FilterGameplay;

/// Whether `name` is a gameplay event.
fn is_gameplay(name: &str) -> bool {
    // TODO(snippet 1): true for names starting with "level_", and for "post_score".
    todo!("decide whether {name:?} is a gameplay event")
}

impl Transform for FilterGameplay {
    fn new(_config: &str) -> Result<Self, String> {
        Ok(FilterGameplay)
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_name"]
    }

    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        // TODO(snippet 2): read the name with `event.str("event_name")`; refuse
        // an event without one (`.ok_or("event has no event_name")?`); when
        // `is_gameplay(&name)`, keep the event unchanged (`out.keep();`);
        // otherwise emit nothing. Then return Ok(()).
        todo!("keep gameplay events")
    }
}

export_transform!(FilterGameplay);
