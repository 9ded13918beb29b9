//! A plausible wrong answer to exercise 2: it indexes a Monday-first list
//! of names with a Sunday-first day number, so every weekday is one off.

use chrono::{Datelike, NaiveDate};
use runnel_sdk::{export_transform, Emit, Event, Transform};

const NAMES: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

pub struct OffByOne;

impl Transform for OffByOne {
    fn new(_config: &str) -> Result<Self, String> {
        Ok(OffByOne)
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_date"]
    }

    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        let text = event.str("event_date").ok_or("no date")?;
        let day = NaiveDate::parse_from_str(&text, "%Y%m%d").map_err(|e| e.to_string())?;
        let name = NAMES[day.weekday().num_days_from_sunday() as usize];
        out.add_str("weekday", name)?;
        Ok(())
    }
}

export_transform!(OffByOne);
