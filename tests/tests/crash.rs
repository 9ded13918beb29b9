//! Crash safety against the emulators (run by scripts/test.sh): `kill -9`
//! the pipeline mid-stream, start it again, and no window's data is lost.
//! Windows close and messages are acknowledged while the stream flows; the
//! ones not acknowledged at the crash are redelivered and counted again.
//! Duplicate rows are allowed (at-least-once; on BigQuery the insertIds drop
//! them), lost or over-counted ones are not.

use runnel_tests::emulators::{env, query};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_killed_pipeline_restarts_without_losing_a_window() {
    env("PUBSUB_EMULATOR_HOST");
    let dir = tempfile::tempdir().unwrap();
    let tag = std::process::id();
    let (topic, subscription, dataset) = (format!("crash_topic_{tag}"), format!("crash_sub_{tag}"), format!("crash_{tag}"));
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[cloud]
project = "test-project"
[source]
type = "pubsub"
topic = "{topic}"
subscription = "{subscription}"
ack_deadline_s = 10
lease_extension_s = 10
stop_when_idle_s = 75
[windowing]
window = {{ type = "fixed", size_s = 60 }}
[watermark]
mode = "bounded"
max_out_of_orderness_s = 1800
idle_timeout_s = 3600
[sink]
type = "bigquery"
dataset = "{dataset}"
table = "dataflow"
window_columns = true
[pipeline]
batch_size = 64
[dead_letters]
path = "{dead}"
"#,
            dead = dir.path().join("dead.ndjson").display()
        ),
    )
    .unwrap();
    let runnel = || {
        let mut c = Command::new(runnel_tests::runnel_binary());
        c.arg("--log").arg("error");
        c
    };
    assert!(runnel().arg("setup").arg("--config").arg(&config).status().unwrap().success());
    // Two hours of Flood It events.
    let lines: Vec<String> = runnel_tests::flood_it_lines().into_iter().take(4000).collect();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    // Publish at 120 messages/s while the pipeline runs, so the crash comes
    // mid-stream: after some windows closed and their messages were
    // acknowledged, before the rest arrived.
    let mut publisher =
        runnel().arg("publish").arg("--config").arg(&config).arg("--file").arg(&input).arg("--rate").arg("120").spawn().unwrap();

    // Start, wait until some rows are written (windows closed mid-stream), kill -9.
    let mut first = runnel().arg("run").arg("--config").arg(&config).spawn().unwrap();
    let started = Instant::now();
    let count_rows = || query(&format!("SELECT COUNT(*) FROM {dataset}.dataflow"))[0][0].parse::<u64>().unwrap();
    while count_rows() == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no rows written within 60 s");
        assert!(first.try_wait().unwrap().is_none(), "the pipeline ended before the crash");
        std::thread::sleep(Duration::from_millis(100));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let rows_at_crash = count_rows();
    assert!(publisher.try_wait().unwrap().is_none(), "the crash came after the stream ended; publish slower");
    assert!(publisher.wait().unwrap().success());

    let mut expected: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let ts = v["event_timestamp"].as_i64().unwrap();
        *expected.entry((v["user_pseudo_id"].as_str().unwrap().into(), ts - ts.rem_euclid(60_000_000))).or_default() += 1;
    }
    // Restart: it gets the messages the killed run held (once their leases
    // run out), drains once the stream is quiet, and stops. The emulator
    // also pauses a new subscriber on the same subscription for up to a
    // minute, so the restart holds its watermark longer than the default.
    let restart = dir.path().join("restart.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace("idle_timeout_s = 3600", "idle_timeout_s = 3600\nstartup_hold_s = 90");
    std::fs::write(&restart, text).unwrap();
    let mut second = runnel().arg("run").arg("--config").arg(&restart).spawn().unwrap();
    let restarted = Instant::now();
    loop {
        if let Some(status) = second.try_wait().unwrap() {
            assert!(status.success(), "the restarted pipeline failed");
            break;
        }
        if restarted.elapsed() > Duration::from_secs(400) {
            second.kill().unwrap();
            panic!("the restarted pipeline did not finish within 400 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows = query(&format!("SELECT user_pseudo_id, UNIX_MICROS(window_start), event_count FROM {dataset}.dataflow"));
    let mut best: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for r in &rows {
        let e = best.entry((r[0].clone(), r[1].parse().unwrap())).or_default();
        *e = (*e).max(r[2].parse::<i64>().unwrap());
    }
    let dead = std::fs::read_to_string(dir.path().join("dead.ndjson")).unwrap_or_default();
    assert!(dead.is_empty(), "no event is late or refused: {}", &dead[..dead.len().min(500)]);
    // The emulator can deliver a killed stream's messages minutes late (in
    // chunks of up to 100, each a lease period after the last), and only to
    // a streaming pull (a plain pull gets none of them), so some may come
    // after the restart stopped. Such a message was not lost, only late: it
    // is still in the subscription. So a window short of its count must get
    // exactly its missing events from sweeps (runs of the same pipeline
    // into a file, with no event late) within 6 minutes; an event neither
    // counted nor swept was acknowledged without being counted: loss.
    let short = |counted: &BTreeMap<(String, i64), i64>| -> BTreeMap<(String, i64), i64> {
        let have = |k| counted.get(k).copied().unwrap_or(0);
        expected.iter().filter(|(k, v)| have(*k) < **v).map(|(k, v)| (k.clone(), v - have(k))).collect()
    };
    let missing = short(&best);
    let mut swept = best.clone();
    let sweeping = Instant::now();
    for n in 0.. {
        if short(&swept).is_empty() || sweeping.elapsed() > Duration::from_secs(360) {
            break;
        }
        let panes = dir.path().join(format!("sweep-{n}.ndjson"));
        let sweep = dir.path().join("sweep.toml");
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("stop_when_idle_s = 75", "stop_when_idle_s = 30")
            .replace("max_out_of_orderness_s = 1800", "max_out_of_orderness_s = 172800")
            .replace(
                &format!("type = \"bigquery\"\ndataset = \"{dataset}\"\ntable = \"dataflow\"\nwindow_columns = true"),
                &format!("type = \"ndjson\"\npath = \"{}\"", panes.display()),
            );
        assert!(text.contains("type = \"ndjson\""), "a sweep writes to a file: {text}");
        std::fs::write(&sweep, text).unwrap();
        assert!(runnel().arg("run").arg("--config").arg(&sweep).status().unwrap().success(), "a sweep failed");
        if panes.exists() {
            for (k, c) in runnel_tests::pane_counts(&runnel_tests::read_rows(&panes)) {
                *swept.entry(k).or_default() += c;
            }
        }
    }
    let lost = short(&swept);
    assert!(
        lost.is_empty(),
        "{} windows short of their count after the restart, and {} of their events not swept within 6 minutes (lost): e.g. {:?}",
        missing.len(),
        lost.values().sum::<i64>(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    if !missing.is_empty() {
        eprintln!(
            "crash test: {} events of {} windows came from the emulator after the restart stopped; none lost",
            missing.values().sum::<i64>(),
            missing.len()
        );
    }
    let over: Vec<_> = expected.iter().filter(|(k, v)| best.get(*k).is_some_and(|b| b > *v)).take(5).collect();
    assert!(over.is_empty(), "no window over-counted: e.g. {over:?} (expected counts)");
    assert!(best.keys().all(|k| expected.contains_key(k)), "no row for a window without events");
    assert!(rows.len() as u64 >= rows_at_crash, "rows written before the crash stay");
    eprintln!(
        "crash test: {} rows before the kill, {} after the restart for {} windows ({} of them with a row)",
        rows_at_crash,
        rows.len(),
        expected.len(),
        best.len()
    );
}
