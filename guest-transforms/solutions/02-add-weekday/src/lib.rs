//! Exercise 2, reference solution: adds `"weekday"` from `event_date`.

use chrono::{Datelike, NaiveDate, Weekday};
use runnel_sdk::{export_transform, Emit, Event, Transform};

pub struct AddWeekday;

fn weekday_name(date: &str) -> Result<&'static str, String> {
    let day = NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|e| format!("event_date {date:?} is not %Y%m%d: {e}"))?;
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
    fn new(_config: &str) -> Result<Self, String> {
        Ok(AddWeekday)
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_date"]
    }

    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        let date = event.str("event_date").ok_or("event has no event_date")?;
        let weekday = weekday_name(&date)?;
        out.add_field("weekday", &format!("\"{weekday}\""))?;
        Ok(())
    }
}

export_transform!(AddWeekday);
