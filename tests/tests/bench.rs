//! The benchmark's own parts: the looped input, the native baseline and the
//! report must be right for the numbers to mean anything.

use runnel::bench::{input, native::NativeAddWeekday, report, windows, BenchOptions, Plugins, Results};
use runnel::plugin::runtime::{Limits, PluginRuntime};
use runnel::plugin::transform::{FieldsSpec, TransformPlugin};
use runnel::plugin::{bundled, PluginSource};

/// The native add-weekday emits exactly what the WASM one does: the same
/// payload bytes, key and event time for every event.
#[test]
fn native_add_weekday_matches_the_plugin() {
    let lines = input::bundled_lines().unwrap();
    let mut batch = runnel::accumulate::EventBatch::default();
    for line in lines.iter().step_by(97).take(300) {
        batch.push(line.as_bytes());
    }
    batch.push(br#"{"event_date":"2018-08-03","user_pseudo_id":"U","event_timestamp":1}"#);
    let runtime = PluginRuntime::with_cache(Limits::default(), None).unwrap();
    let fields =
        FieldsSpec { key_pointer: Some("/user_pseudo_id".into()), time_pointer: Some("/event_timestamp".into()), ..Default::default() };
    let source = PluginSource::from_bytes("add-weekday.wasm", bundled::find("add-weekday").unwrap());
    let mut wasm = TransformPlugin::load(&runtime, source, "", &fields).unwrap();
    let from_wasm = wasm.transform(&runtime, &batch);
    let from_native = NativeAddWeekday::default().transform(&batch);
    assert_eq!(from_wasm.emitted.len(), 300);
    let parts = |e: &runnel::plugin::transform::Emitted| (e.source, e.payload.clone(), e.key.clone(), e.event_time_us);
    assert_eq!(from_native.emitted.iter().map(parts).collect::<Vec<_>>(), from_wasm.emitted.iter().map(parts).collect::<Vec<_>>());
    assert_eq!(from_native.rejected.len(), 1, "the badly written date is refused");
    assert_eq!(from_wasm.rejected.len(), 1);
    assert!(from_native.emitted[0].output(&batch).bytes().ends_with(b",\"weekday\":\"Friday\"}"));
}

/// Each pass of the looped input opens its own windows: the counts of two
/// passes are those of one pass, twice, a whole number of days apart; and
/// the native pipeline computes the same windows as the WASM one.
#[test]
fn looped_input_repeats_the_windows_of_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let lines = input::bundled_lines().unwrap();
    let one: Vec<String> = lines[..3000].to_vec();
    let once = input::looped(dir.path(), &one, 3000).unwrap();
    let twice = input::looped(dir.path(), &one, 6000).unwrap();
    let a = windows(&once, dir.path(), Plugins::Wasm).unwrap();
    let b = windows(&twice, dir.path(), Plugins::Wasm).unwrap();
    assert_eq!(b.len(), 2 * a.len());
    let counts = |rows: &[String]| -> Vec<String> {
        let mut v: Vec<String> = rows.iter().map(|r| r.rsplit(',').next().unwrap().to_string()).collect();
        v.sort();
        v
    };
    let mut doubled = counts(&a);
    doubled.extend(counts(&a));
    doubled.sort();
    assert_eq!(counts(&b), doubled);
    let starts = |rows: &[String]| -> std::collections::BTreeSet<i64> {
        rows.iter().map(|r| r.split(',').nth(1).unwrap().parse().unwrap()).collect()
    };
    let (first, both) = (starts(&a), starts(&b));
    let shift = both.difference(&first).min().unwrap() - first.iter().min().unwrap();
    assert_eq!(shift % 86_400_000_000, 0, "passes are whole days apart");
    let expected: std::collections::BTreeSet<i64> = first.iter().flat_map(|s| [*s, s + shift]).collect();
    assert_eq!(both, expected);
    assert_eq!(windows(&twice, dir.path(), Plugins::Native).unwrap(), b, "native and WASM windows differ");
    // The limit (one plain loop) does the same work: the same windows.
    assert_eq!(runnel_limit::count_file(&twice).unwrap().rows, b, "the limit's windows differ from runnel's");
}

/// A smoke run measures every case and its report says so, judging nothing.
#[test]
fn smoke_run_reports_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let opts = BenchOptions {
        smoke: true,
        events: Some(3_000),
        rounds: Some(1),
        peers: false,
        python: None,
        repo: dir.path().to_path_buf(),
        work: dir.path().to_path_buf(),
    };
    let results: Results = runnel::bench::run(&opts, &mut |_| {}).unwrap();
    assert!(results.wasm_rate() > 0.0 && results.native_rate() > 0.0 && results.limit_rate() > 0.0);
    assert_eq!(results.calls.iter().map(|c| c.batch).collect::<Vec<_>>(), [1, 16, 256, 4096]);
    let md = report::markdown(&results, "plot.svg");
    assert!(md.contains("| WASM plugins (the product) |"), "{md}");
    assert!(md.contains("| the limit: one plain Rust loop"), "{md}");
    assert!(md.contains("| 4096 |"), "{md}");
    // The time per event is broken down: the WASM run spends time inside
    // the guest, the native twins none, and the parts add up to the total.
    let (w, n) = (results.wasm_breakdown.clone().unwrap(), results.native_breakdown.clone().unwrap());
    assert!(w.transform_guest > 0.0 && n.transform_guest == 0.0 && n.transform_host > 0.0, "{w:?} {n:?}");
    for b in [&w, &n] {
        let parts = b.transform_host + b.transform_guest + b.aggregate + b.rest;
        assert!((parts - b.total).abs() < 1e-6 && b.rest > 0.0 && b.aggregate > 0.0, "{b:?}");
    }
    assert!(md.contains("| inside the transform plugin |"), "{md}");
    assert!(report::summary(&results).iter().all(|l| !l.contains("MISSED") && !l.contains(": met")));
    assert_eq!(report::svg(&results).matches("<rect").count(), 3, "WASM, native twins, the limit");
}
