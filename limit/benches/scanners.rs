//! How fast each way of reading three fields of a Flood It event is, on the
//! bundled 50,000 events (2.6 KB each), one thread: runnel's validating
//! scanner (what the host runs on every event), sonic-rs `get_many` (what
//! the limit runs; it stops at the last field it needs, about a third into
//! an event, so it does not validate the rest), and two full validations
//! for comparison (sonic-rs walking every member, serde_json skipping
//! every value). Prints ns per event for each, best of five passes.
//!
//! `cargo bench -p runnel-limit --bench scanners` (BENCHMARKS.md).

use std::io::Read;
use std::time::Instant;

const FIELDS: [&str; 3] = ["user_pseudo_id", "event_timestamp", "event_date"];

/// Reads one event; how many of the three fields it found.
type ReadFields<'a> = &'a dyn Fn(&[u8]) -> usize;

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/floodit-events.ndjson.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("the bundled events")).read_to_string(&mut text).expect("gzip");
    let events: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
    let bytes: usize = events.iter().map(|e| e.len()).sum();
    println!("{} events, {} bytes each on average", events.len(), bytes / events.len());

    let scanner = runnel_event::FieldScanner::new(FIELDS);
    let mut tree = sonic_rs::PointerTree::new();
    for f in FIELDS {
        tree.add_path(&[f]);
    }
    let cases: [(&str, ReadFields); 4] = [
        ("runnel's scanner (validates the whole event)", &|e| scanner.scan(e).expect("valid").values().iter().flatten().count()),
        ("sonic-rs get_many (the limit; stops after its last field)", &|e| {
            sonic_rs::get_many(e, &tree).expect("valid").iter().flatten().count()
        }),
        ("sonic-rs object iterator (validates the whole event)", &|e| {
            sonic_rs::to_object_iter(e).filter(|m| FIELDS.contains(&&*m.as_ref().expect("valid").0)).count()
        }),
        ("serde_json IgnoredAny (validates the whole event)", &|e| {
            serde_json::from_slice::<serde::de::IgnoredAny>(e).map(|_| 3).expect("valid")
        }),
    ];
    for (name, read) in cases {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            let found: usize = events.iter().map(|e| read(e)).sum();
            assert_eq!(found, 3 * events.len(), "{name}: every field found");
            best = best.min(start.elapsed().as_nanos() as f64 / events.len() as f64);
        }
        println!("{best:>8.0} ns/event  {name}");
    }
}
