//! Every scenario in tests/replay/scenarios reproduces its Apache Beam golden.
use runnel::accumulate::NativeCount;
use runnel::replay::{compare, read_panes, run, PaneRecord, Scenario};
use std::path::PathBuf;

fn replay_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/replay")
}

#[test]
fn public_scenarios_match_beam_goldens_with_native_count() {
    let mut checked = 0;
    for entry in std::fs::read_dir(replay_dir().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let golden = replay_dir().join("golden").join(path.file_name().unwrap());
        let scenario = Scenario::from_file(&path).unwrap();
        let panes = run(&scenario, &mut NativeCount::default()).unwrap();
        let records: Vec<PaneRecord> = panes.iter().map(PaneRecord::from_pane).collect();
        if let Err(diff) = compare(&records, &read_panes(&golden).unwrap()) {
            panic!("{}:\n{diff}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 2, "expected the public scenarios in {}", replay_dir().display());
}
