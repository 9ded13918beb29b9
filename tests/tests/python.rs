//! Plugins written in Python (guest-transforms/python, built by
//! `runnel build` with componentize-py): the Python references of the five
//! exercises score 100% on the same cases as the Rust ones (held-back cases too)
//! and the untouched Python templates 0, naming the missing snippet; the Python
//! add-weekday and count-events together give exactly the windows of the
//! Rust plugins on the bundled day, computed here without runnel, and
//! they hot-reload (Rust to Python and back) under load without losing or
//! repeating an event. The SDK carries field values across the boundary
//! exactly, both ways, escapes and all.

use runnel::config::PipelineConfig;
use runnel::grade::{self, Exercise, Which};
use runnel::pipeline::Pipeline;
use runnel::plugin::runtime::PluginRuntime;
use runnel::plugin::PluginSource;
use runnel_tests::{count_per_user_window, flood_it_lines, python_plugin, read_rows, rfc3339_us};
use std::collections::BTreeMap;

#[test]
fn python_exercises_grade_like_the_rust_ones() {
    let runtime = PluginRuntime::new(grade::grading_limits()).unwrap();
    let held_back = runnel_tests::repo_root().join("guest-transforms/solutions");
    // The examples are the references of exercises 2 and 3, as the bundled
    // Rust guests are for the Rust exercises.
    let solutions = [
        ("01-filter-gameplay", "solutions/01-filter-gameplay"),
        ("02-add-weekday", "examples/add_weekday"),
        ("03-count-per-user", "examples/count_events"),
        ("04-revenue-per-user", "solutions/04-revenue-per-user"),
        ("05-flag-anomalies", "solutions/05-flag-anomalies"),
    ];
    for (name, solution) in solutions {
        let exercise = Exercise::find(name).unwrap().with_held_back(&held_back).unwrap();
        let solution = PluginSource::from_file(&python_plugin(solution)).unwrap();
        let card = grade::grade(&runtime, &exercise, &solution, Which::All);
        assert_eq!(card.score, 100, "{}", grade::report::text(&card));
        assert_eq!(card.total, exercise.visible.len() + exercise.held_back.len());

        // The untouched template scores 0, and says which snippet is missing.
        let template = PluginSource::from_file(&python_plugin(&format!("exercises/{name}"))).unwrap();
        let card = grade::grade(&runtime, &exercise, &template, Which::All);
        assert_eq!(card.score, 0, "{}", grade::report::text(&card));
        assert!(grade::report::text(&card).contains("NotImplementedError: "), "{}", grade::report::text(&card));
    }
}

#[test]
fn the_python_sdk_carries_field_values_exactly_both_ways() {
    use serde_json::{json, Value};
    let runtime = PluginRuntime::new(grade::grading_limits()).unwrap();
    let source = PluginSource::from_file(&python_plugin("test-guests/echo")).unwrap();
    let events = runnel::config::EventConfig::default();
    let decoder = runnel::decode::Decoder::new(events.key_pointer().unwrap(), events.event_time().unwrap());
    let mut plugin = runnel::plugin::transform::TransformPlugin::load(&runtime, source, "", &decoder.fields_spec()).unwrap();
    // Strings the SDK's shortcut may copy as they are, and every kind it
    // must not: quotes, backslashes, escapes, control characters, non-ASCII.
    let names = ["level_up", "say \"hi\"", r"C:\games", "tab\there", "\u{1}", "café ✓", "😀", "", "twice", "refuse"];
    let values =
        [json!("plain"), json!("a\"b\\c\nd"), json!(-12), json!(1.5e300), json!(true), json!(null), json!({"k": ["v", 1]}), json!("é")];
    let mut inputs: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"user_pseudo_id": "u", "event_timestamp": 1, "event_name": name, "value": values[i % values.len()]}))
        .collect();
    inputs.push(json!({"user_pseudo_id": "u", "event_timestamp": 1, "event_name": 7}));
    let mut batch = runnel::accumulate::EventBatch::default();
    for e in &inputs {
        batch.push(e.to_string().as_bytes());
    }
    let out = plugin.transform_whole(&runtime, &batch).unwrap();

    let refused = names.iter().position(|n| *n == "refuse").unwrap() as u32;
    assert_eq!(out.rejected.iter().map(|r| (r.source, r.reason.as_str())).collect::<Vec<_>>(), [(refused, "refused after emitting")]);
    assert!(out.emitted.iter().all(|e| e.source != refused), "a refused event's earlier outputs are dropped");
    let twice = names.iter().position(|n| *n == "twice").unwrap() as u32;
    let copies: Vec<_> = out.emitted.iter().filter(|e| e.source == twice).collect();
    assert_eq!(copies.iter().map(|e| e.key.as_deref()).collect::<Vec<_>>(), [Some("u"), Some("twice")]);
    assert_eq!(out.emitted.len(), inputs.len(), "one output each, two for twice, none for refuse");

    for e in out.emitted.iter().filter(|e| e.key.as_deref() != Some("twice")) {
        let input = &inputs[e.source as usize];
        let output: Value = serde_json::from_slice(&e.output(&batch).bytes()).unwrap();
        // A string field reads as that string; any other kind as None.
        let name = input["event_name"].as_str().map_or(Value::Null, |s| json!(s));
        assert_eq!(output["name"], name, "{input}");
        assert_eq!(output["value_copy"], input["value"], "{input}");
        // raw: the value's JSON text as the event has it (None when absent).
        let raw = input.get("value").map_or(Value::Null, |v| json!(v.to_string()));
        assert_eq!(output["raw"], raw, "{input}");
        assert_eq!(output["event_name"], input["event_name"], "the input's own fields are kept");
    }
}

#[test]
fn python_plugins_count_every_event_of_the_bundled_day_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[source]\ntype = \"file\"\npath = \"{input}\"\n[transform]\nplugin = \"{transform}\"\n\
         [aggregate]\nplugin = \"{aggregate}\"\n[sink]\ntype = \"ndjson\"\npath = \"{panes}\"\n\
         [dead_letters]\npath = \"{dead}\"\n",
        input = runnel_tests::repo_root().join("examples/data/floodit-events.ndjson.gz").display(),
        transform = python_plugin("examples/add_weekday").display(),
        aggregate = python_plugin("examples/count_events").display(),
        panes = dir.path().join("panes.ndjson").display(),
        dead = dir.path().join("dead.ndjson").display(),
    );
    let counters = Pipeline::from_config(&PipelineConfig::parse(&text).unwrap()).unwrap().run().unwrap();
    assert_eq!((counters.events_in, counters.dead_letters), (50_000, 0), "{counters:?}");
    assert_eq!(counters.transform_restarts, 0, "no restarts: {counters:?}");
    let mut actual = BTreeMap::new();
    for row in read_rows(&dir.path().join("panes.ndjson")) {
        let key = (row["user_pseudo_id"].as_str().unwrap().to_string(), rfc3339_us(row["window_start"].as_str().unwrap()));
        assert!(actual.insert(key, row["event_count"].as_i64().unwrap()).is_none(), "one pane per window");
    }
    assert_eq!(actual, count_per_user_window(&flood_it_lines(), 60_000_000));
}

#[test]
fn python_plugins_hot_reload_under_load_without_losing_an_event() {
    use runnel::plugin::contract::Kind;
    use runnel::plugin::reload::ReloadHandle;
    use runnel::source::file::FileSource;
    use runnel_tests::{pane_counts, two_days, PacedSource};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let lines = two_days();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let text = format!(
        "[source]\ntype = \"file\"\npath = \"{}\"\n[transform]\nplugin = \"add-weekday\"\n\
         [watermark]\nmode = \"bounded\"\nmax_out_of_orderness_s = 0\n\
         [sink]\ntype = \"ndjson\"\npath = \"{}\"\n[dead_letters]\npath = \"{}\"\n",
        input.display(),
        dir.path().join("panes.ndjson").display(),
        dir.path().join("dead.ndjson").display()
    );
    let cfg = PipelineConfig::parse(&text).unwrap();
    let python = |folder: &str| PluginSource::from_file(&python_plugin(folder)).unwrap();
    let bundled = |name: &str| PluginSource::resolve(name, std::path::Path::new("")).unwrap();
    // Rust to Python and back, for both kinds; the aggregates' state
    // formats differ, so the old version finishes its open windows.
    let mut plan: BTreeMap<usize, (Kind, PluginSource)> = BTreeMap::from([
        (40, (Kind::Transform, python("examples/add_weekday"))),
        (80, (Kind::Aggregate, python("examples/count_events"))),
        (120, (Kind::Transform, bundled("add-weekday"))),
        (160, (Kind::Aggregate, bundled("count-events"))),
    ]);
    let handle: Arc<Mutex<Option<ReloadHandle>>> = Arc::default();
    let hook_handle = handle.clone();
    let source = PacedSource::new(FileSource::open(&input).unwrap(), Duration::ZERO, move |batch| {
        if let Some((kind, plugin)) = plan.remove(&batch) {
            let handle = hook_handle.lock().unwrap().clone().expect("the pipeline is built");
            let _verdict = handle.request_with_reply(kind, plugin);
            assert!(handle.wait_loaded(Duration::from_secs(300)), "a Python plugin loads");
        }
    });
    let overrides = runnel::pipeline::Overrides { source: Some(Box::new(source)), ..Default::default() };
    let mut pipeline = Pipeline::with_overrides(&cfg, overrides).unwrap();
    *handle.lock().unwrap() = Some(pipeline.reload_handle());
    let status = pipeline.status();
    let counters = pipeline.run().unwrap();

    assert_eq!((counters.events_in, counters.dead_letters), (100_000, 0), "{counters:?}");
    let outcomes: Vec<String> = status.snapshot().reloads.iter().map(|r| r.outcome.outcome.to_string()).collect();
    assert_eq!(outcomes, ["swapped"; 4], "{:?}", status.snapshot().reloads);
    let rows = read_rows(&dir.path().join("panes.ndjson"));
    assert_eq!(pane_counts(&rows), count_per_user_window(&lines, 60_000_000), "no event lost or counted twice");
    let aggregates: std::collections::BTreeSet<_> = rows.iter().map(|r| r["plugins"]["aggregate"].as_str().unwrap().to_string()).collect();
    assert!(aggregates.iter().any(|a| a.contains("examples-count_events.wasm@")), "the Python aggregate made panes: {aggregates:?}");
}
