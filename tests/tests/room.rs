//! A room: ten participants' plugins side by side on one stream (good,
//! wrong, hostile and broken ones). Each slot's verdict and the
//! leaderboard are right, the good slots see every event, and a hostile
//! slot is quarantined without touching the others.

use runnel::grade::{self, Exercise};
use runnel::plugin::bundled::built_guest;
use runnel::plugin::runtime::PluginRuntime;
use runnel::plugin::{with_build_tag, PluginSource};
use runnel::room::{leaderboard_text, Room};
use runnel::source::file::FileSource;

fn guest(crate_name: &str, slot: &str) -> PluginSource {
    let bytes = std::fs::read(built_guest(crate_name)).unwrap();
    PluginSource::from_bytes(format!("{slot}.wasm"), with_build_tag(&bytes, slot))
}

fn stream(n: usize) -> FileSource {
    let lines: Vec<String> = runnel_tests::flood_it_lines().into_iter().take(n).collect();
    FileSource::from_reader("test", std::io::Cursor::new(lines.join("\n").into_bytes()), false)
}

#[test]
fn ten_transform_slots_on_one_stream_get_the_right_verdicts() {
    // Exercise 1, with a config that makes the hostile guest loop on the
    // stream's first event (the others ignore their config).
    let mut exercise = Exercise::find("01-filter-gameplay").unwrap();
    exercise.config = r#"{"mode": "loop", "when": "level_end_quickplay"}"#.into();
    let guests = vec![
        guest("solution-01-filter-gameplay", "good-1"),
        guest("solution-01-filter-gameplay", "good-2"),
        guest("solution-01-filter-gameplay", "good-3"),
        guest("solution-01-filter-gameplay", "good-4"),
        guest("identity", "keeps-all"),
        guest("wrong-weekday", "adds-a-field"),
        guest("exercise-01-filter-gameplay", "untouched"),
        guest("hostile", "loops"),
        PluginSource::from_file(&built_guest("wrong-version")).unwrap(),
        PluginSource::from_bytes("garbage.wasm", b"\0asm but not really".to_vec()),
    ];
    let reference = PluginSource::from_file(&built_guest("solution-01-filter-gameplay")).unwrap();
    let runtime = PluginRuntime::new(grade::grading_limits()).unwrap();
    let mut room = Room::new(runtime, exercise, reference, guests).unwrap();
    let report = room.run(&mut stream(3000), None, None).unwrap();
    eprintln!("{}", leaderboard_text(&report));

    assert_eq!(report.events, 3000);
    let board = &report.leaderboard;
    assert_eq!(board.len(), 10);
    let slot = |name: &str| board.iter().find(|s| s.name.starts_with(name)).unwrap_or_else(|| panic!("{name}"));
    for good in ["good-1", "good-2", "good-3", "good-4"] {
        let s = slot(good);
        assert_eq!((s.verdict.as_str(), s.compared, s.matched), ("correct", 3000, 3000), "{s:?}");
    }
    let keeps_all = slot("keeps-all");
    assert_eq!((keeps_all.verdict.as_str(), keeps_all.compared), ("wrong", 3000));
    assert!(keeps_all.matched > 0 && keeps_all.matched < 3000, "gameplay events match, the rest do not: {keeps_all:?}");
    assert!(keeps_all.detail.as_deref().unwrap().contains("expected 0 outputs, got 1"), "{keeps_all:?}");
    let adds = slot("adds-a-field");
    assert_eq!((adds.verdict.as_str(), adds.matched), ("wrong", 0));
    assert!(adds.detail.as_deref().unwrap().contains("unexpected field \"weekday\""), "{adds:?}");
    let untouched = slot("untouched");
    assert_eq!(untouched.verdict, "quarantined");
    assert!(untouched.detail.as_deref().unwrap().contains("panicked"));
    let loops = slot("loops");
    assert_eq!(loops.verdict, "quarantined");
    assert!(loops.detail.as_deref().unwrap().contains("time budget"), "{loops:?}");
    assert_eq!(loops.compared, 3 * 256, "quarantined after three failing batches");
    assert_eq!(slot("wrong_version").verdict, "refused");
    assert!(slot("wrong_version").detail.as_deref().unwrap().contains("0.1.0"));
    assert_eq!(slot("garbage").verdict, "refused");

    // The leaderboard: correct slots first (fastest first among them), then
    // wrong, quarantined, refused.
    let verdicts: Vec<&str> = board.iter().map(|s| s.verdict.as_str()).collect();
    assert_eq!(verdicts[..4], ["correct"; 4]);
    assert_eq!(verdicts[4..6], ["wrong"; 2]);
    assert_eq!(verdicts[6..8], ["quarantined"; 2]);
    assert_eq!(verdicts[8..], ["refused"; 2]);
    assert!(board[..4].windows(2).all(|w| w[0].ns_per_event <= w[1].ns_per_event));
    assert!(board[..4].iter().all(|s| s.ns_per_event > 0.0));
}

#[test]
fn aggregate_slots_share_the_windows_and_are_compared_pane_by_pane() {
    let exercise = Exercise::find("03-count-per-user").unwrap();
    let guests = vec![
        guest("count-events", "good"),
        guest("count-events-decimal", "decimal-count"),
        guest("wrong-revenue", "counts-purchases"),
        guest("exercise-03-count-per-user", "untouched"),
    ];
    let reference = exercise.reference_plugin().unwrap();
    let mut room = Room::new(PluginRuntime::new(grade::grading_limits()).unwrap(), exercise, reference, guests).unwrap();
    let report = room.run(&mut stream(5000), None, None).unwrap();
    eprintln!("{}", leaderboard_text(&report));
    let slot = |name: &str| report.leaderboard.iter().find(|s| s.name.starts_with(name)).unwrap();
    let panes = slot("good").compared;
    assert!(panes > 100, "one comparison per pane");
    assert_eq!((slot("good").verdict.as_str(), slot("good").matched), ("correct", panes));
    assert_eq!((slot("decimal-count").verdict.as_str(), slot("decimal-count").matched), ("correct", panes));
    let wrong = slot("counts-purchases");
    assert_eq!(wrong.verdict, "wrong");
    assert!(wrong.detail.as_deref().unwrap().contains("the reference gives"), "{wrong:?}");
    assert_eq!(slot("untouched").verdict, "quarantined");
}
