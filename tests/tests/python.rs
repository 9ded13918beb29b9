//! Plugins written in Python (guest-transforms/python, built by
//! scripts/python-plugin.sh with componentize-py): the Python add-weekday
//! passes its workshop exercise like the Rust solution, and the Python
//! add-weekday and count-events together give exactly the windows of the
//! Rust plugins on the bundled day, computed here without runnel.

use runnel::config::PipelineConfig;
use runnel::grade::{self, Exercise, Which};
use runnel::pipeline::Pipeline;
use runnel::plugin::runtime::PluginRuntime;
use runnel::plugin::PluginSource;
use runnel_tests::{count_per_user_window, flood_it_lines, python_plugin, read_rows, rfc3339_us};
use std::collections::BTreeMap;

#[test]
fn the_python_add_weekday_passes_its_exercise_with_the_held_back_cases() {
    let exercise = Exercise::bundled().into_iter().find(|e| e.name == "02-add-weekday").expect("exercise 2");
    let exercise = exercise.with_held_back(&runnel_tests::repo_root().join("guest-transforms/solutions")).unwrap();
    let runtime = PluginRuntime::new(grade::grading_limits()).unwrap();
    let plugin = PluginSource::from_file(&python_plugin("examples/add_weekday")).unwrap();
    let card = grade::grade(&runtime, &exercise, &plugin, Which::All);
    assert_eq!(card.score, 100, "{}", grade::report::text(&card));
    assert_eq!(card.total, exercise.visible.len() + exercise.held_back.len());
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
