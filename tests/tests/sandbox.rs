//! Hostile transforms inside a running pipeline: an endless loop,
//! unbounded recursion, unbounded memory growth, a panic on one event, a
//! huge output, a flood of stdout/stderr, a sleep in WASI and a lie about
//! its outputs are each contained. The poison events go to the dead letters
//! with the reason; every other event is counted exactly once. A batch in
//! which every event hangs costs a few budgets, not 2n-1, and a transform
//! quarantined with no earlier version is no longer called. Python
//! plugins (the Python SDK's hostile guest) are contained the same way: an
//! exception, an exception that escapes the SDK, an endless loop, unbounded
//! memory.

use runnel::config::PipelineConfig;
use runnel::pipeline::Pipeline;
use runnel_tests::{count_per_user_window, flood_it_lines, read_rows, rfc3339_us};
use std::collections::BTreeMap;

/// Runs 300 Flood It events plus two events named "poison" through the
/// hostile guest in `mode`; returns the dead letters' reasons.
fn run_hostile(mode: &str, memory_mib: u32) -> Vec<String> {
    run_guest("hostile", mode, memory_mib, "").into_iter().map(|d| d.reason).collect()
}

/// [`run_hostile`] with any test guest and more settings (a `[pipeline]`
/// table); returns the dead letters.
fn run_guest(guest: &str, mode: &str, memory_mib: u32, pipeline: &str) -> Vec<runnel::deadletter::DeadLetter> {
    run_plugin(&runnel::plugin::bundled::built_guest(guest), guest, mode, memory_mib, pipeline)
}

/// [`run_guest`] with a plugin file; `guest` is what its recorded version
/// names.
fn run_plugin(plugin: &std::path::Path, guest: &str, mode: &str, memory_mib: u32, pipeline: &str) -> Vec<runnel::deadletter::DeadLetter> {
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
call_timeout_ms = 1000
max_memory_mib = {memory_mib}
{pipeline}
"#,
        input = input.display(),
        plugin = plugin.display(),
        panes = dir.path().join("panes.ndjson").display(),
        dead = dir.path().join("dead.ndjson").display(),
    );
    let cfg = PipelineConfig::parse(&text).unwrap();
    let counters = Pipeline::from_config(&cfg).unwrap().run().unwrap();
    assert_eq!(counters.events_in, 302);
    assert_eq!(counters.filtered, 0, "nothing is dropped as filtered: {counters:?}");
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
            assert!(d.payload.as_deref().unwrap().contains("\"event_name\":\"poison\""), "only poison is refused: {} {}", d.code, d.reason);
            assert!(d.plugin.as_deref().unwrap().contains(guest), "the plugin version is recorded");
        }
    }
    assert_eq!(actual, count_per_user_window(&expected_lines, 60_000_000), "mode {mode}: good events counted once");
    assert_eq!(reasons.len() as u64, counters.dead_letters);
    dead
}

/// [`run_hostile`] with the Python hostile guest
/// (guest-transforms/python/test-guests/hostile).
fn run_python_hostile(mode: &str, memory_mib: u32) -> Vec<String> {
    let plugin = runnel_tests::python_plugin("test-guests/hostile");
    run_plugin(&plugin, "hostile", mode, memory_mib, "").into_iter().map(|d| d.reason).collect()
}

fn assert_two(reasons: &[String], needle: &str) {
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.iter().all(|r| r.contains(needle)), "expected {needle:?} in {reasons:?}");
}

#[test]
fn an_endless_loop_is_cut_at_its_time_budget() {
    assert_two(&run_hostile("loop", 48), "ran past its time budget of 1000 ms");
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
    // A 16 MiB output takes a while to copy out of the guest: in batches of
    // 8 the calls around it fit their budget on a loaded machine too.
    let dead = run_guest("hostile", "huge", 128, "[pipeline]\nbatch_size = 8");
    let reasons: Vec<String> = dead.into_iter().map(|d| d.reason).collect();
    assert_two(&reasons, "oversized output");
}

#[test]
fn a_flood_of_stdout_and_stderr_is_contained() {
    // 2 MiB of output per event: in batches of 8, each call fits its budget
    // (a whole batch of 256 would not, and would be cut: see below).
    assert!(run_guest("hostile", "print", 48, "[pipeline]\nbatch_size = 8").is_empty());
}

#[test]
fn a_sleep_in_wasi_is_cut_at_the_time_budget() {
    // std::thread::sleep of an hour waits on WASI's monotonic clock, where
    // epoch interruption cannot reach: the wait itself is refused.
    assert_two(&run_hostile("sleep", 48), "asked to wait 3600.000 s");
    // A wait that fits the budget works.
    assert!(run_hostile("nap", 48).is_empty());
}

#[test]
fn a_transform_that_names_events_outside_its_batch_has_them_dead_lettered() {
    let dead = run_guest("lying", "", 48, "");
    assert_eq!(dead.len(), 2, "{dead:?}");
    for d in &dead {
        assert_eq!(d.code, runnel::deadletter::Reason::ContractViolation);
        assert!(d.reason.contains("broke the contract: its answer names event"), "{}", d.reason);
    }
}

#[test]
fn a_transform_output_that_is_not_json_is_dead_lettered_not_counted() {
    // The time comes from a field here, so the host needs nothing more from
    // the output: it still checks an output the plugin wrote itself.
    let dead = run_guest("lying", "garbage", 48, "");
    assert_eq!(dead.len(), 2, "{dead:?}");
    for d in &dead {
        assert_eq!((d.stage, d.code), (runnel::deadletter::Stage::Transform, runnel::deadletter::Reason::ContractViolation));
        assert!(d.reason.contains("its output is not a JSON object"), "{}", d.reason);
        assert!(d.payload.as_deref().unwrap().contains("\"event_name\":\"poison\""), "the input is kept: {:?}", d.payload);
    }
}

#[test]
fn a_python_exception_on_one_event_rejects_only_that_event() {
    // A bug, as a panic is in Rust: the call fails, the plugin restarts,
    // and the event's dead letter names the exception and where it was.
    assert_two(&run_python_hostile("raise", 64), "ZeroDivisionError: division by zero (File ");
}

#[test]
fn an_exception_that_escapes_the_python_sdk_is_named() {
    // Not an Exception: the same path, named the same way.
    assert_two(&run_python_hostile("escape", 64), "Escape: hostile: escaping on poison (File ");
}

#[test]
fn an_endless_loop_in_python_is_cut_at_its_time_budget() {
    assert_two(&run_python_hostile("loop", 64), "ran past its time budget of 1000 ms");
}

#[test]
fn unbounded_memory_growth_in_python_hits_the_cap() {
    assert_two(&run_python_hostile("grow", 64), "grow its memory past the limit of 64 MiB");
}

/// A pipeline of `n` poison events in batches of `batch`, through the
/// hostile guest in `mode`, at a 100 ms budget; its counters and dead letters.
fn all_poison(mode: &str, n: usize, batch: usize) -> (runnel::pipeline::Counters, Vec<runnel::deadletter::DeadLetter>) {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = flood_it_lines()
        .into_iter()
        .take(n)
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(&l).unwrap();
            v["event_name"] = "poison".into();
            v.to_string()
        })
        .collect();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let text = format!(
        "[source]\ntype = \"file\"\npath = \"{}\"\n[transform]\nplugin = \"{}\"\nconfig = {{ mode = \"{mode}\", when = \"poison\" }}\n\
         [sink]\ntype = \"null\"\n[dead_letters]\npath = \"{}\"\n[pipeline]\nbatch_size = {batch}\n[sandbox]\ncall_timeout_ms = 100\n",
        input.display(),
        runnel::plugin::bundled::built_guest("hostile").display(),
        dir.path().join("dead.ndjson").display()
    );
    let counters = Pipeline::from_config(&PipelineConfig::parse(&text).unwrap()).unwrap().run().unwrap();
    let dead = runnel::deadletter::read(&dir.path().join("dead.ndjson")).unwrap();
    (counters, dead)
}

#[test]
fn a_batch_in_which_every_event_hangs_stops_bisecting_after_a_few_timeouts() {
    use runnel::deadletter::Reason;
    let (counters, dead) = all_poison("loop", 64, 64);
    assert_eq!(dead.len(), 64, "every event is kept as a dead letter");
    // Bisecting 64 hanging events would take 127 calls; it stops after
    // enough time-outs to isolate two of them, plus one call for each
    // half left on the way back up (6 levels).
    let allowed = runnel::plugin::transform::max_timeouts(64);
    assert_eq!(allowed, 13);
    assert!(counters.transform_restarts <= u64::from(allowed) + 6, "{counters:?}");
    assert_eq!(counters.transform_restarts_by.values().sum::<u64>(), counters.transform_restarts, "each restart has its reason");
    assert!(counters.transform_restarts_by.get(Reason::TimeBudget.as_str()).is_some_and(|&n| n >= 2), "{counters:?}");
    let isolated = dead.iter().filter(|d| d.code == Reason::TimeBudget).count();
    assert!(isolated >= 2, "at least two events isolated before the budget ran out: {isolated}");
    let not_tried: Vec<_> = dead.iter().filter(|d| d.code == Reason::NotTried).collect();
    assert_eq!(not_tried.len(), 64 - isolated, "the rest were not tried");
    assert!(not_tried[0].reason.contains("ran out of time 13 times in this batch"), "{}", not_tried[0].reason);
    assert!(dead[0].reason.contains("time budget of 100 ms"), "{}", dead[0].reason);
}

#[test]
fn a_quarantined_transform_with_no_earlier_version_is_no_longer_called() {
    use runnel::deadletter::Reason;
    // 40 batches of 2 panicking events: quarantined after 5 failing
    // batches; there is nothing to go back to, so it is not called again.
    let (counters, dead) = all_poison("panic", 80, 2);
    assert_eq!(counters.quarantines, 1, "{counters:?}");
    assert_eq!(dead.len(), 80, "every event is kept as a dead letter");
    assert_eq!(counters.transform_restarts, 5 * 3, "three calls per failing batch, five batches: {counters:?}");
    // Every restart is accounted for with its reason.
    assert_eq!(counters.transform_restarts_by.get(Reason::PluginFailed.as_str()), Some(&15), "{counters:?}");
    assert!(counters.last_restart.as_deref().is_some_and(|r| r.contains("hostile: panicking on poison")), "{counters:?}");
    let quarantined = dead.iter().filter(|d| d.code == Reason::Quarantined).count();
    assert_eq!(quarantined, 80 - 10);
    let first = dead.iter().find(|d| d.code == Reason::Quarantined).unwrap();
    assert!(first.reason.contains("is quarantined") && first.reason.contains("runnel dlq replay"), "{}", first.reason);
}
