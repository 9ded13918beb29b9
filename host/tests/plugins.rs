//! The shipped guests behave as documented, and components that do not
//! satisfy the contract are refused with a message that says why.

use runnel::accumulate::{Accumulators, EventBatch};
use runnel::plugin::aggregate::AggregatePlugin;
use runnel::plugin::bundled::built_guest;
use runnel::plugin::runtime::{Limits, PluginRuntime};
use runnel::plugin::transform::{FieldsSpec, TransformPlugin};
use runnel::plugin::PluginSource;
use runnel::window::{AccOp, Pane, Timing, Value, Window};
use runnel_event::TimeFormat;
use std::path::Path;

fn runtime() -> PluginRuntime {
    PluginRuntime::new(Limits::default()).unwrap()
}

fn fields() -> FieldsSpec {
    FieldsSpec {
        key_pointer: Some("/user_pseudo_id".into()),
        time_pointer: Some("/event_timestamp".into()),
        time_format: TimeFormat::Micros,
    }
}

fn event(user: &str, name: &str, ts: i64) -> String {
    format!(
        r#"{{"event_date":"20180803","event_timestamp":{ts},"event_name":"{name}","user_pseudo_id":"{user}","event_value_in_usd":null}}"#
    )
}

fn batch(events: &[String]) -> EventBatch {
    let mut b = EventBatch::default();
    for e in events {
        b.push(e.as_bytes());
    }
    b
}

fn transform(name: &str, config: &str) -> TransformPlugin {
    TransformPlugin::load(&runtime(), PluginSource::resolve(name, Path::new("")).unwrap(), config, &fields()).unwrap()
}

#[test]
fn identity_passes_events_through_with_key_and_time() {
    let rt = runtime();
    let mut t = transform("identity", "");
    let mut b = batch(&[event("U1", "a", 10), event("U2", "b", 20)]);
    let out = t.transform(&rt, &mut b);
    assert!(out.rejected.is_empty());
    assert_eq!(out.emitted.len(), 2);
    assert_eq!(out.emitted[1].source, 1);
    assert_eq!(out.emitted[1].payload, None, "unchanged events are not copied back");
    assert_eq!(out.emitted[1].key.as_deref(), Some("U2"));
    assert_eq!(out.emitted[1].event_time_us, Some(20));
}

#[test]
fn add_weekday_appends_the_weekday_and_refuses_bad_dates() {
    let rt = runtime();
    let mut t = transform("add-weekday", "");
    let bad = r#"{"event_date":"2018-08-03","event_timestamp":1,"user_pseudo_id":"U"}"#.to_string();
    let mut b = batch(&[event("U1", "a", 10), bad]);
    let out = t.transform(&rt, &mut b);
    let payload = out.emitted[0].payload.as_ref().expect("a new payload");
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(v["weekday"], "Friday");
    assert_eq!(v["user_pseudo_id"], "U1", "the original fields are kept");
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].source, 1);
    assert!(out.rejected[0].reason.contains("not a %Y%m%d date"), "{}", out.rejected[0].reason);
}

#[test]
fn filter_events_keeps_only_listed_names_and_needs_a_list() {
    let rt = runtime();
    let mut t = transform("filter-events", r#"{"event_names":["level_start","post_score"]}"#);
    let mut b = batch(&[event("U", "level_start", 1), event("U", "screen_view", 2), event("U", "post_score", 3)]);
    let out = t.transform(&rt, &mut b);
    let kept: Vec<u32> = out.emitted.iter().map(|e| e.source).collect();
    assert_eq!(kept, vec![0, 2]);
    let err = TransformPlugin::load(&rt, PluginSource::resolve("filter-events", Path::new("")).unwrap(), "", &fields()).err().unwrap();
    assert!(format!("{err:#}").contains("needs a list of event names"), "{err:#}");
}

fn pane(slot: usize) -> Pane {
    Pane {
        key: format!("k{slot}"),
        window: Window { start: 0, end: 60 },
        timing: Timing::OnTime,
        index: 0,
        is_last: true,
        value: None,
        computed_by: None,
    }
}

#[test]
fn count_events_counts_merges_and_releases_without_payloads() {
    let rt = runtime();
    let mut agg = AggregatePlugin::load(&rt, PluginSource::resolve("count-events", Path::new("")).unwrap(), "").unwrap();
    assert!(!agg.needs_payload());
    let ops = vec![
        AccOp::Add { slot: 0, event: 0 },
        AccOp::Add { slot: 0, event: 1 },
        AccOp::Add { slot: 1, event: 2 },
        AccOp::Merge { target: 1, sources: [0].into_iter().collect() },
        AccOp::Extract { slot: 1, pane: 0 },
        AccOp::Release { slot: 1 },
        AccOp::Extract { slot: 1, pane: 1 },
    ];
    let mut panes = vec![pane(0), pane(1)];
    agg.apply(&ops, &mut EventBatch::default(), &mut panes).unwrap();
    assert_eq!(panes[0].value, Some(Value::Int(3)));
    assert_eq!(panes[1].value, Some(Value::Int(0)), "a released slot starts from zero");
}

#[test]
fn sum_field_sums_skips_nulls_and_refuses_non_numbers() {
    let rt = runtime();
    let mut agg = AggregatePlugin::load(&rt, PluginSource::resolve("sum-field", Path::new("")).unwrap(), "").unwrap();
    assert!(agg.needs_payload());
    let mut b = batch(&[
        r#"{"event_value_in_usd":0.99}"#.to_string(),
        r#"{"event_value_in_usd":null}"#.to_string(),
        r#"{"event_value_in_usd":"free"}"#.to_string(),
        r#"{"event_value_in_usd":2}"#.to_string(),
    ]);
    let ops: Vec<AccOp> = (0..4).map(|e| AccOp::Add { slot: 7, event: e }).chain([AccOp::Extract { slot: 7, pane: 0 }]).collect();
    let mut panes = vec![pane(0)];
    let rejected = agg.apply(&ops, &mut b, &mut panes).unwrap();
    assert_eq!(panes[0].value, Some(Value::Float(2.99)));
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].event, 2);
    assert!(rejected[0].reason.contains("not a number"), "{}", rejected[0].reason);
}

fn refusal(source: PluginSource, as_transform: bool) -> String {
    let rt = runtime();
    let err = if as_transform {
        TransformPlugin::load(&rt, source, "", &fields()).err().unwrap()
    } else {
        AggregatePlugin::load(&rt, source, "").err().unwrap()
    };
    format!("{err:#}")
}

#[test]
fn a_plugin_built_against_another_contract_version_is_refused() {
    let msg = refusal(PluginSource::from_file(&built_guest("wrong-version")).unwrap(), true);
    assert!(msg.contains("runnel:plugin/transformer@0.2.0"), "{msg}");
    assert!(msg.contains("runnel:plugin@0.1.0"), "{msg}");
    assert!(msg.contains("Rebuild"), "{msg}");
}

#[test]
fn non_components_and_wrong_kinds_are_refused_with_the_reason() {
    let random = PluginSource::from_bytes("random.wasm", vec![0x13u8, 0x37, 0, 1, 2, 3]);
    assert!(refusal(random, true).contains("is not a WebAssembly file"));
    let core_module = PluginSource::from_bytes("core.wasm", b"\0asm\x01\0\0\0".to_vec());
    assert!(refusal(core_module, true).contains("not a valid WebAssembly component"));
    let truncated = PluginSource::from_bytes("cut.wasm", {
        let bytes = std::fs::read(built_guest("identity")).unwrap();
        bytes[..bytes.len() / 2].to_vec()
    });
    assert!(refusal(truncated, true).contains("not a valid WebAssembly component"));
    let agg_as_transform = PluginSource::resolve("count-events", Path::new("")).unwrap();
    assert!(refusal(agg_as_transform, true).contains("is an aggregate plugin, but this slot needs a transform"));
    let transform_as_agg = PluginSource::resolve("identity", Path::new("")).unwrap();
    assert!(refusal(transform_as_agg, false).contains("is a transform plugin"));
}

#[test]
fn a_plugin_that_fails_at_start_is_refused_with_its_message() {
    let hostile = || PluginSource::from_file(&built_guest("hostile")).unwrap();
    let rt = runtime();
    let refuse = TransformPlugin::load(&rt, hostile(), r#"{"mode":"init-refuse"}"#, &fields()).err().unwrap();
    assert!(format!("{refuse:#}").contains("refusing to start as configured"), "{refuse:#}");
    let panic = TransformPlugin::load(&rt, hostile(), r#"{"mode":"init-panic"}"#, &fields()).err().unwrap();
    assert!(format!("{panic:#}").contains("panicked"), "{panic:#}");
}

#[test]
fn unknown_bundled_names_list_the_bundled_plugins() {
    let err = PluginSource::resolve("count-evnets", Path::new("")).err().unwrap().to_string();
    assert!(err.contains("count-events") && err.contains("add-weekday"), "{err}");
}

#[test]
fn compiled_plugins_are_cached_on_disk_and_a_damaged_artifact_is_recompiled() {
    use runnel::plugin::runtime::CompiledFrom;
    let dir = tempfile::tempdir().unwrap();
    let source = PluginSource::resolve("add-weekday", Path::new("")).unwrap();
    let first = PluginRuntime::with_cache(Limits::default(), Some(dir.path().to_path_buf())).unwrap();
    assert_eq!(first.compile_traced(&source).unwrap().1, CompiledFrom::Compiled);
    assert_eq!(first.compile_traced(&source).unwrap().1, CompiledFrom::Memory);
    let artifact = first.artifact_path(&source).unwrap();
    assert!(artifact.exists(), "the artifact is written: {}", artifact.display());

    // A restart finds it on disk, and the plugin works from it.
    let second = PluginRuntime::with_cache(Limits::default(), Some(dir.path().to_path_buf())).unwrap();
    assert_eq!(second.compile_traced(&source).unwrap().1, CompiledFrom::Disk);
    let mut plugin = TransformPlugin::load(&second, source.clone(), "", &fields()).unwrap();
    let out = plugin.transform(&second, &mut batch(&[event("u1", "level_start", 1_533_279_652_346_000)]));
    assert_eq!(out.emitted.len(), 1);
    assert!(String::from_utf8(out.emitted[0].payload.clone().unwrap()).unwrap().contains("\"weekday\":\"Friday\""));

    // A damaged artifact is not trusted: compiled again and rewritten.
    std::fs::write(&artifact, b"not an artifact").unwrap();
    let third = PluginRuntime::with_cache(Limits::default(), Some(dir.path().to_path_buf())).unwrap();
    assert_eq!(third.compile_traced(&source).unwrap().1, CompiledFrom::Compiled);
    let fourth = PluginRuntime::with_cache(Limits::default(), Some(dir.path().to_path_buf())).unwrap();
    assert_eq!(fourth.compile_traced(&source).unwrap().1, CompiledFrom::Disk);
}
