//! Helpers for runnel's end-to-end tests: the bundled data, independent
//! (engine-free) computations to check results against, and reading outputs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the root").to_path_buf()
}

/// The bundled Flood It events, one JSON text per line.
pub fn flood_it_lines() -> Vec<String> {
    let path = repo_root().join("examples/data/floodit-events.ndjson.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("bundled data"))
        .read_to_string(&mut text)
        .expect("gzip");
    text.lines().map(str::to_string).collect()
}

/// Events per (user, window start in µs) for fixed windows of `size_us`,
/// computed directly from the events with plain grouping (no runnel code).
pub fn count_per_user_window(lines: &[String], size_us: i64) -> BTreeMap<(String, i64), i64> {
    let mut counts = BTreeMap::new();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("valid event");
        let user = v["user_pseudo_id"].as_str().expect("user").to_string();
        let ts = v["event_timestamp"].as_i64().expect("timestamp");
        let start = ts - ts.rem_euclid(size_us);
        *counts.entry((user, start)).or_insert(0) += 1;
    }
    counts
}

/// Reads NDJSON rows.
pub fn read_rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect()
}

/// RFC 3339 text (as sinks write window bounds) to µs.
pub fn rfc3339_us(text: &str) -> i64 {
    runnel_event::parse_event_time(
        &serde_json::value::RawValue::from_string(format!("\"{text}\"")).unwrap(),
        runnel_event::TimeFormat::Rfc3339,
    )
    .expect("an RFC 3339 time")
}
