use runnel_event::FieldScanner;
use std::time::Instant;
fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let reps: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(250);
    let data = std::fs::read("examples/data/floodit-sample-200.ndjson").unwrap();
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let s = FieldScanner::new(["event_date", "user_pseudo_id", "event_timestamp"]);
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..reps { for l in &lines {
        if mode == "serde" { n += serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok() as usize; }
        else if mode == "quotes" { n += l.iter().filter(|&&b| b == b'"').count(); }
        else { n += s.scan(l).unwrap().get(1).unwrap().get().len(); }
    } }
    let e = t.elapsed();
    let events = (reps * lines.len()) as f64;
    println!("{mode}: {:.0} ns/event, {:.0} MB/s ({n})", e.as_nanos() as f64 / events, bytes as f64 * reps as f64 / e.as_secs_f64() / 1e6);
}
