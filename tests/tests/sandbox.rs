//! Hostile transforms inside a running pipeline: an endless loop,
//! unbounded recursion, unbounded memory growth, a panic on one event, a
//! huge output and a flood of stdout/stderr are each contained. The poison
//! events go to the dead letters with the reason; every other event is
//! counted exactly once.

use runnel::config::PipelineConfig;
use runnel::pipeline::Pipeline;
use runnel_tests::{count_per_user_window, flood_it_lines, read_rows, rfc3339_us};
use std::collections::BTreeMap;

/// Runs 300 Flood It events plus two events named "poison" through the
/// hostile guest in `mode`; returns the dead letters' reasons.
fn run_hostile(mode: &str, memory_mib: u32) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let good: Vec<String> = flood_it_lines().into_iter().take(300).collect();
    let poison = |i: usize| {
        good[i].replacen(
            &format!("\"event_name\":\"{}\"", serde_json::from_str::<serde_json::Value>(&good[i]).unwrap()["event_name"].as_str().unwrap()),
            "\"event_name\":\"poison\"",
            1,
        )
    };
    let mut lines = good.clone();
    lines.insert(50, poison(50));
    lines.insert(201, poison(200));
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let plugin = runnel::plugin::bundled::built_guest("hostile");
    let text = format!(
        r#"
[source]
type = "file"
path = "{input}"
[transform]
plugin = "{plugin}"
config = {{ mode = "{mode}", when = "poison" }}
[sink]
type = "ndjson"
path = "{panes}"
[dead_letters]
path = "{dead}"
[event]
max_bytes = 1048576
[sandbox]
call_timeout_ms = 200
max_memory_mib = {memory_mib}
"#,
        input = input.display(),
        plugin = plugin.display(),
        panes = dir.path().join("panes.ndjson").display(),
        dead = dir.path().join("dead.ndjson").display(),
    );
    let cfg = PipelineConfig::parse(&text).unwrap();
    let counters = Pipeline::from_config(&cfg).unwrap().run().unwrap();
    assert_eq!(counters.events_in, 302);
    // Every good event is counted once, whatever the plugin did to the poison.
    let mut actual = BTreeMap::new();
    for r in read_rows(&dir.path().join("panes.ndjson")) {
        let key = (r["user_pseudo_id"].as_str().unwrap().to_string(), rfc3339_us(r["window_start"].as_str().unwrap()));
        actual.insert(key, r["event_count"].as_i64().unwrap());
    }
    let dead = runnel::deadletter::read(&dir.path().join("dead.ndjson")).unwrap_or_default();
    let reasons: Vec<String> = dead.iter().map(|d| d.reason.clone()).collect();
    let mut expected_lines = good.clone();
    if dead.is_empty() {
        // Nothing refused: the poison events were counted too.
        expected_lines = lines.clone();
    } else {
        for d in &dead {
            assert!(d.payload.as_deref().unwrap().contains("\"event_name\":\"poison\""), "only poison is refused");
            assert!(d.plugin.as_deref().unwrap().contains("hostile"), "the plugin version is recorded");
        }
    }
    assert_eq!(actual, count_per_user_window(&expected_lines, 60_000_000), "mode {mode}: good events counted once");
    reasons
}

fn assert_two(reasons: &[String], needle: &str) {
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.iter().all(|r| r.contains(needle)), "expected {needle:?} in {reasons:?}");
}

#[test]
fn an_endless_loop_is_cut_at_its_time_budget() {
    assert_two(&run_hostile("loop", 48), "ran past its time budget of 200 ms");
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    assert_two(&run_hostile("recurse", 48), "overflowed its stack");
}

#[test]
fn unbounded_memory_growth_hits_the_cap() {
    assert_two(&run_hostile("grow", 48), "grow its memory past the limit of 48 MiB");
}

#[test]
fn a_panic_on_one_event_rejects_only_that_event() {
    // The guest's own panic message is in the reason.
    assert_two(&run_hostile("panic", 48), "panicked at guest-transforms/test-guests/hostile/src/lib.rs");
    assert_two(&run_hostile("panic", 48), "hostile: panicking on poison");
}

#[test]
fn a_huge_output_is_refused_as_oversized() {
    assert_two(&run_hostile("huge", 128), "oversized output");
}

#[test]
fn a_flood_of_stdout_and_stderr_is_contained() {
    assert!(run_hostile("print", 48).is_empty());
}
