//! `add-weekday`: adds the day of the week of `event_date` (`%Y%m%d`, e.g.
//! "20180803") as a new field, `"weekday": "Friday"` — the workshop's Cloud
//! Run challenge.
//!
//! Config (JSON, optional): `{"output_field": "weekday"}`.

use chrono::{Datelike, NaiveDate, Weekday};
use runnel_sdk::{export_transform, parse_config, Emit, Event, Transform};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    output_field: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { output_field: "weekday".into() }
    }
}

pub struct AddWeekday {
    output_field: String,
}

/// The English name of `date`'s weekday, from `%Y%m%d`.
pub fn weekday_of(date: &str) -> Result<&'static str, String> {
    let day = NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|e| format!("event_date {date:?} is not a %Y%m%d date: {e}"))?;
    Ok(match day.weekday() {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    })
}

impl Transform for AddWeekday {
    fn new(config: &str) -> Result<Self, String> {
        let config: Config = parse_config(config)?;
        Ok(Self { output_field: config.output_field })
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_date"]
    }

    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        let date = event.str("event_date").ok_or("event has no event_date string")?;
        let weekday = weekday_of(&date)?;
        out.add_str(&self.output_field, weekday)?;
        Ok(())
    }
}

export_transform!(AddWeekday);
