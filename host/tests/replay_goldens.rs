//! Every scenario in tests/replay/scenarios reproduces its Apache Beam golden
//! (tests/replay/golden), with the engine's native count and with the
//! bundled count-events WebAssembly aggregate.
use runnel::accumulate::{Accumulators, NativeCount};
use runnel::plugin::aggregate::AggregatePlugin;
use runnel::plugin::runtime::{Limits, PluginRuntime};
use runnel::plugin::PluginSource;
use runnel::replay::{compare_ignoring, read_panes, run, PaneRecord, Scenario};
use std::path::PathBuf;

fn replay_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/replay")
}

/// Fields not compared for a scenario, from tests/replay/known-differences.json.
fn ignored_fields(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(replay_dir().join("known-differences.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    all.get(name)
        .and_then(|v| v["ignore"].as_array())
        .map(|a| a.iter().map(|f| f.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn check_all(make: &mut dyn FnMut() -> Box<dyn Accumulators>) {
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(replay_dir().join("scenarios")).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        let golden = replay_dir().join("golden").join(path.file_name().unwrap());
        let scenario = Scenario::from_file(&path).unwrap();
        let panes = run(&scenario, make().as_mut()).unwrap();
        let records: Vec<PaneRecord> = panes.iter().map(PaneRecord::from_pane).collect();
        let name = path.file_stem().unwrap().to_str().unwrap();
        let ignored = ignored_fields(name);
        let ignored: Vec<&str> = ignored.iter().map(String::as_str).collect();
        if let Err(diff) = compare_ignoring(&records, &read_panes(&golden).unwrap(), &ignored) {
            failures.push(format!("{}:\n{diff}", path.display()));
        }
        checked += 1;
    }
    assert!(checked >= 12, "expected the scenarios in {}", replay_dir().display());
    assert!(failures.is_empty(), "{} of {checked} scenarios differ from Beam:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn scenarios_match_beam_goldens_with_native_count() {
    check_all(&mut || Box::new(NativeCount::default()));
}

#[test]
fn scenarios_match_beam_goldens_with_the_count_events_plugin() {
    let runtime = PluginRuntime::new(Limits::default()).unwrap();
    let source = PluginSource::resolve("count-events", std::path::Path::new("")).unwrap();
    check_all(&mut || Box::new(AggregatePlugin::load(&runtime, source.clone(), "").unwrap()));
}
