//! Hot reload while 100,000 events flow: the transform and the aggregate are
//! swapped several times (open windows carried over, or finished by the old
//! version when the state format changes), broken versions are refused
//! while the old ones keep running, a version that keeps failing is
//! quarantined, a changed file is picked up by the watcher, and the admin
//! server takes uploads only with its token. No event is lost or counted
//! twice.

use runnel::config::PipelineConfig;
use runnel::pipeline::{Overrides, Pipeline};
use runnel::plugin::bundled::{self, built_guest};
use runnel::plugin::contract::Kind;
use runnel::plugin::reload::ReloadHandle;
use runnel::plugin::with_build_tag;
use runnel::plugin::PluginSource;
use runnel::source::file::FileSource;
use runnel_tests::{count_per_user_window, pane_counts, read_rows, two_days, PacedSource};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A pipeline file over `input`, with panes and dead letters in `dir`;
/// `extra` is more of the `[transform]` table, then more tables.
fn pipeline_file(dir: &Path, input: &Path, transform: &str, extra: &str) -> PipelineConfig {
    let (transform_config, extra) = extra.split_once("\n[").map(|(c, e)| (c.to_string(), format!("[{e}"))).unwrap_or_default();
    let text = format!(
        "[source]\ntype = \"file\"\npath = \"{}\"\n[transform]\nplugin = \"{transform}\"\n{transform_config}\n\
         [watermark]\nmode = \"bounded\"\nmax_out_of_orderness_s = 0\n\
         [sink]\ntype = \"ndjson\"\npath = \"{}\"\n[dead_letters]\npath = \"{}\"\n{extra}",
        input.display(),
        dir.join("panes.ndjson").display(),
        dir.join("dead.ndjson").display()
    );
    PipelineConfig::parse(&text).unwrap()
}

fn write_input(dir: &Path, lines: &[String]) -> std::path::PathBuf {
    let input = dir.join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    input
}

fn bundled_source(name: &str) -> PluginSource {
    PluginSource::resolve(name, Path::new("")).unwrap()
}

#[test]
fn plugins_reload_mid_stream_without_losing_or_duplicating_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let lines = two_days();
    let input = write_input(dir.path(), &lines);
    let cfg = pipeline_file(dir.path(), &input, "identity", "");
    let count = bundled::find("count-events").unwrap();
    let decimal = PluginSource::from_file(&built_guest("count-events-decimal")).unwrap();
    let mut plan: BTreeMap<usize, (Kind, PluginSource)> = BTreeMap::from([
        (40, (Kind::Transform, bundled_source("add-weekday"))),
        // Same state format: open windows carried over.
        (80, (Kind::Aggregate, PluginSource::from_bytes("count-events-rebuilt.wasm", with_build_tag(count, "v2")))),
        (120, (Kind::Transform, PluginSource::from_file(&built_guest("wrong-version")).unwrap())),
        // Another state format: the old version finishes its windows.
        (160, (Kind::Aggregate, decimal)),
        (200, (Kind::Transform, bundled_source("identity"))),
        (240, (Kind::Aggregate, bundled_source("count-events"))),
        (280, (Kind::Transform, PluginSource::from_bytes("garbage.wasm", vec![7u8; 64]))),
        (320, (Kind::Transform, bundled_source("identity"))),
    ]);
    let handle: Arc<Mutex<Option<ReloadHandle>>> = Arc::default();
    let hook_handle = handle.clone();
    let source = PacedSource::new(FileSource::open(&input).unwrap(), Duration::ZERO, move |batch| {
        if let Some((kind, plugin)) = plan.remove(&batch) {
            let handle = hook_handle.lock().unwrap().clone().expect("the pipeline is built");
            let verdict = handle.request_with_reply(kind, plugin);
            // Loaded off the event path; swapped in before this batch runs.
            assert!(handle.wait_loaded(Duration::from_secs(120)));
            assert!(verdict.try_recv().is_err(), "the swap happens between batches, not while the source is read");
        }
    });
    let overrides = Overrides { source: Some(Box::new(source)), ..Default::default() };
    let mut pipeline = Pipeline::with_overrides(&cfg, overrides).unwrap();
    *handle.lock().unwrap() = Some(pipeline.reload_handle());
    let status = pipeline.status();
    let counters = pipeline.run().unwrap();

    assert_eq!(counters.events_in, 100_000);
    let history: Vec<(String, String)> =
        status.snapshot().reloads.iter().map(|r| (r.outcome.kind.to_string(), r.outcome.outcome.to_string())).collect();
    let expected: Vec<(String, String)> = [
        ("transform", "swapped"),
        ("aggregate", "swapped"),
        ("transform", "refused"),
        ("aggregate", "swapped"),
        ("transform", "swapped"),
        ("aggregate", "swapped"),
        ("transform", "refused"),
        ("transform", "unchanged"),
    ]
    .iter()
    .map(|(k, o)| (k.to_string(), o.to_string()))
    .collect();
    assert_eq!(history, expected);
    assert_eq!(counters.reloads, 5);
    assert_eq!(counters.refused_reloads, 2);
    assert_eq!(counters.reload_stalls.len(), 5);
    assert_eq!(counters.dead_letters, 0);
    let refusal = &status.snapshot().reloads[2].outcome.message;
    assert!(refusal.contains("0.1.0") || refusal.contains("contract"), "says why: {refusal}");

    let rows = read_rows(&dir.path().join("panes.ndjson"));
    assert_eq!(pane_counts(&rows), count_per_user_window(&lines, 60_000_000), "no event lost or counted twice");
    let transforms: BTreeSet<_> = rows.iter().map(|r| r["plugins"]["transform"].as_str().unwrap().to_string()).collect();
    let aggregates: BTreeSet<_> = rows.iter().map(|r| r["plugins"]["aggregate"].as_str().unwrap().to_string()).collect();
    assert!(transforms.len() >= 2, "panes record the transform versions that produced them: {transforms:?}");
    for version in ["bundled:count-events@", "count-events-rebuilt.wasm@", "count_events_decimal.wasm@"] {
        assert!(aggregates.iter().any(|a| a.contains(version)), "panes record the aggregate versions: {aggregates:?}");
    }
}

#[test]
fn a_transform_that_keeps_failing_is_quarantined_and_the_previous_version_restored() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = two_days().into_iter().take(20_000).collect();
    let input = write_input(dir.path(), &lines);
    // Every version is started with this config; identity ignores it, the
    // hostile guest panics on every user_engagement event.
    let cfg = pipeline_file(
        dir.path(),
        &input,
        "identity",
        "config = { mode = \"panic\", when = \"user_engagement\" }\n[sandbox]\nquarantine_after = 3\n",
    );
    let hostile = PluginSource::from_file(&built_guest("hostile")).unwrap();
    let handle: Arc<Mutex<Option<ReloadHandle>>> = Arc::default();
    let hook = handle.clone();
    let mut hostile = Some(hostile);
    let source = PacedSource::new(FileSource::open(&input).unwrap(), Duration::ZERO, move |batch| {
        if batch == 10 {
            let h = hook.lock().unwrap().clone().unwrap();
            h.request(Kind::Transform, hostile.take().unwrap());
            assert!(h.wait_loaded(Duration::from_secs(120)));
        }
    });
    let mut pipeline = Pipeline::with_overrides(&cfg, Overrides { source: Some(Box::new(source)), ..Default::default() }).unwrap();
    *handle.lock().unwrap() = Some(pipeline.reload_handle());
    let status = pipeline.status();
    let counters = pipeline.run().unwrap();

    assert_eq!(counters.quarantines, 1);
    let snap = status.snapshot();
    let outcomes: Vec<&str> = snap.reloads.iter().map(|r| r.outcome.outcome.as_str()).collect();
    assert_eq!(outcomes, ["swapped", "quarantined"]);
    assert!(snap.transform.as_deref().unwrap().starts_with("bundled:identity@"), "identity runs again: {:?}", snap.transform);

    // The poison events of the failing batches are dead letters with the
    // reason; every other event is counted exactly once.
    let dead = read_rows(&dir.path().join("dead.ndjson"));
    assert!(!dead.is_empty());
    let mut dead_lines = BTreeSet::new();
    for d in &dead {
        assert_eq!(d["stage"], "transform");
        assert!(d["reason"].as_str().unwrap().contains("panicked"), "{d}");
        assert!(d["payload"].as_str().unwrap().contains("\"event_name\":\"user_engagement\""));
        let line: usize = d["source"].as_str().unwrap().rsplit(':').next().unwrap().parse().unwrap();
        dead_lines.insert(line);
    }
    // Three failing batches of 256 events, then the old version is back.
    let (first, last) = (*dead_lines.first().unwrap(), *dead_lines.last().unwrap());
    assert!(first > 9 * 256 && last <= 12 * 256, "only the quarantined version's batches failed: lines {first}..={last}");
    let survivors: Vec<String> = lines.iter().enumerate().filter(|(i, _)| !dead_lines.contains(&(i + 1))).map(|(_, l)| l.clone()).collect();
    let rows = read_rows(&dir.path().join("panes.ndjson"));
    assert_eq!(pane_counts(&rows), count_per_user_window(&survivors, 60_000_000));
}

#[test]
fn a_changed_plugin_file_is_picked_up_even_when_written_slowly() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = two_days().into_iter().take(30_000).collect();
    let input = write_input(dir.path(), &lines);
    let plugin = dir.path().join("transform.wasm");
    std::fs::write(&plugin, bundled::find("identity").unwrap()).unwrap();
    let cfg = pipeline_file(dir.path(), &input, &plugin.display().to_string(), "\n[sandbox]\nwatch_interval_ms = 50\n");
    let path = plugin.clone();
    let live: Arc<Mutex<Option<ReloadHandle>>> = Arc::default();
    let seen = live.clone();
    let source = PacedSource::new(FileSource::open(&input).unwrap(), Duration::from_millis(5), move |batch| {
        if batch == 20 {
            // A new version arrives in two writes, the first one half a file.
            let new = bundled::find("add-weekday").unwrap();
            std::fs::write(&path, &new[..new.len() / 2]).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            std::fs::write(&path, new).unwrap();
        }
        if batch > 20 {
            // Hold the stream until the watcher's version has been loaded.
            let handle = seen.lock().unwrap().clone().unwrap();
            let until = std::time::Instant::now() + Duration::from_secs(120);
            while handle.delivered() == 0 && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    let mut pipeline = Pipeline::with_overrides(&cfg, Overrides { source: Some(Box::new(source)), ..Default::default() }).unwrap();
    let status = pipeline.status();
    *live.lock().unwrap() = Some(pipeline.reload_handle());
    let counters = pipeline.run().unwrap();

    assert_eq!(counters.events_in, 30_000);
    let snap = status.snapshot();
    assert_eq!(counters.reloads, 1, "{:?}", snap.reloads);
    let swapped = snap.reloads.iter().find(|r| r.outcome.outcome == runnel::plugin::reload::Outcome::Swapped).unwrap();
    let hash = PluginSource::from_bytes("", bundled::find("add-weekday").unwrap()).hash;
    assert!(swapped.outcome.plugin.ends_with(&hash), "the complete file was loaded: {swapped:?}");
    let rows = read_rows(&dir.path().join("panes.ndjson"));
    assert_eq!(pane_counts(&rows), count_per_user_window(&lines, 60_000_000));
}
