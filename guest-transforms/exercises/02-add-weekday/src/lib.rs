//! Exercise 2: add the weekday (the workshop's Cloud Run challenge).
//!
//! Each event has `event_date` as `%Y%m%d` text, e.g. "20180803". Add a
//! field `"weekday"` with the English name of that day, e.g. "Friday", and
//! keep every other field as it is. An event whose `event_date` is missing
//! or not a `%Y%m%d` date is refused with a reason.
//!
//! Check your work: `runnel try guest-transforms/exercises/02-add-weekday`.

// Until the snippets are filled in, parts of this file are unused.
#![allow(unused_imports, unused_variables, unreachable_code)]

use chrono::{Datelike, NaiveDate, Weekday};
use runnel_sdk::{export_transform, Emit, Event, Transform};

pub struct AddWeekday;

/// "Monday" … "Sunday" for `date` (`%Y%m%d`), or why it is not a date.
fn weekday_name(date: &str) -> Result<&'static str, String> {
    // TODO(snippet 1): parse `date` with `NaiveDate::parse_from_str(date, "%Y%m%d")`
    // (turn its error into a String with `map_err`), then name `day.weekday()`:
    // Weekday::Mon => "Monday", …
    todo!("the weekday of {date:?}")
}

impl Transform for AddWeekday {
    fn new(_config: &str) -> Result<Self, String> {
        Ok(AddWeekday)
    }

    fn fields(&self) -> Vec<&str> {
        vec!["event_date"]
    }

    fn transform(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), String> {
        // TODO(snippet 2): read `event.str("event_date")`, refusing an event
        // without one (`.ok_or("event has no event_date")?`); name its day with
        // `weekday_name(&date)?`; append the field with
        // `out.add_str("weekday", weekday)?;` (a text value; `add_field`
        // takes any JSON value as text instead). Then return Ok(()).
        todo!("add the weekday field")
    }
}

export_transform!(AddWeekday);
