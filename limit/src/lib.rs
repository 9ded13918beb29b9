//! The limit: what `runnel bench`'s pipeline does (read the Flood It file,
//! take each event's user, event time and date, work out the weekday, count
//! events per user per 60 s window), written as one plain Rust loop on one
//! thread, with no plugins, no sandbox and no pipeline around it.
//!
//! It is what runnel's design could reach at best: every case of
//! `runnel bench` is reported as a share of it, in the same run, and its
//! windows are checked equal to runnel's (so the comparison is of the same
//! work). The three fields are read by sonic-rs (SIMD JSON, `get_many`),
//! which skips the rest of each 2.6 KB document; the file is streamed in
//! 1 MiB reads (runnel's file source reads 64 KiB at a time; 1 MiB there
//! made no difference beyond the noise of a few runs).

use anyhow::{bail, Context, Result};
use chrono::{Datelike, NaiveDate};
use rustc_hash::FxHashMap;
use sonic_rs::{JsonValueTrait, PointerTree};
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

/// Window size, µs (the benchmark's fixed 60 s windows).
pub const WINDOW_US: i64 = 60_000_000;

/// The three fields the work reads, in this order; sonic-rs skips the rest.
const FIELDS: [&str; 3] = ["user_pseudo_id", "event_timestamp", "event_date"];

/// One run's result.
pub struct Counted {
    pub events: u64,
    pub elapsed: Duration,
    /// `user,window_start_us,count`, sorted (the format `runnel bench`
    /// compares windows in).
    pub rows: Vec<String>,
    /// Events per weekday, Monday first (computed, so not optimised away).
    pub weekdays: [u64; 7],
}

impl Counted {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Counts the events of an NDJSON file per user per window. The clock runs
/// from opening the file to the last count, as runnel's does from its first
/// read to its last pane; turning the counts into rows is not timed.
pub fn count_file(path: &Path) -> Result<Counted> {
    let started = Instant::now();
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut tree = PointerTree::new();
    for field in FIELDS {
        tree.add_path(&[field]);
    }
    // Users get a number once; windows are counted by (number, start).
    let mut users: FxHashMap<String, u32> = FxHashMap::default();
    let mut windows: FxHashMap<(u32, i64), u64> = FxHashMap::default();
    let mut weekdays = [0u64; 7];
    let (mut events, mut n) = (0u64, 0usize);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = || format!("{}:{n}: not a Flood It event (user_pseudo_id, event_timestamp, event_date)", path.display());
        let values = sonic_rs::get_many(line.as_slice(), &tree).with_context(bad)?;
        let [Some(user), Some(ts), Some(date)] = values.as_slice() else { bail!(bad()) };
        let (Some(user), Some(ts), Some(date)) = (user.as_str(), ts.as_i64(), date.as_str()) else { bail!(bad()) };
        let day = NaiveDate::parse_from_str(date, "%Y%m%d").with_context(bad)?;
        weekdays[day.weekday().num_days_from_monday() as usize] += 1;
        let next = users.len() as u32;
        let id = match users.get(user) {
            Some(&id) => id,
            None => *users.entry(user.to_string()).or_insert(next),
        };
        *windows.entry((id, ts - ts.rem_euclid(WINDOW_US))).or_default() += 1;
        events += 1;
    }
    let elapsed = started.elapsed();
    let names: FxHashMap<u32, &str> = users.iter().map(|(name, &id)| (id, name.as_str())).collect();
    let mut rows: Vec<String> = windows.iter().map(|((id, start), count)| format!("{},{start},{count}", names[id])).collect();
    rows.sort();
    Ok(Counted { events, elapsed, rows, weekdays })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_user_per_window_and_refuses_what_is_not_an_event() {
        let dir = std::env::temp_dir().join(format!("runnel-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("events.ndjson");
        let event = |user: &str, ts: i64| {
            format!(r#"{{"event_date":"20180803","event_timestamp":{ts},"user_pseudo_id":"{user}","geo":{{"city":"x"}}}}"#)
        };
        let lines = [event("a", 60_000_000), event("a", 119_999_999), event("b", 120_000_000), event("a", 120_000_001)];
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let counted = count_file(&file).unwrap();
        assert_eq!(counted.rows, vec!["a,120000000,1", "a,60000000,2", "b,120000000,1"]);
        assert_eq!(counted.weekdays[4], 4, "2018-08-03 was a Friday");
        std::fs::write(&file, "{\"user_pseudo_id\": 1}\n").unwrap();
        assert!(count_file(&file).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
