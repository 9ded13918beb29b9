//! The shipped guests behave as documented, and components that do not
//! satisfy the contract are refused with a message that says why.

use runnel::accumulate::{Accumulators, EventBatch};
use runnel::deadletter::Reason;
use runnel::plugin::aggregate::AggregatePlugin;
use runnel::plugin::bundled::built_guest;
use runnel::plugin::runtime::{Limits, PluginRuntime};
use runnel::plugin::transform::{FieldsSpec, Payload, TransformPlugin, MAX_DECLARED_FIELDS};
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
    let b = batch(&[event("U1", "a", 10), event("U2", "b", 20)]);
    let out = t.transform(&rt, &b);
    assert!(out.rejected.is_empty());
    assert_eq!(out.emitted.len(), 2);
    assert_eq!(out.emitted[1].source, 1);
    assert_eq!(out.emitted[1].payload, Payload::Input, "unchanged events are not copied back");
    assert_eq!(out.emitted[1].key.as_deref(), Some("U2"));
    assert_eq!(out.emitted[1].event_time_us, Some(20));
}

#[test]
fn add_weekday_appends_the_weekday_and_refuses_bad_dates() {
    let rt = runtime();
    let mut t = transform("add-weekday", "");
    let bad = r#"{"event_date":"2018-08-03","event_timestamp":1,"user_pseudo_id":"U"}"#.to_string();
    let b = batch(&[event("U1", "a", 10), bad]);
    let out = t.transform(&rt, &b);
    assert!(matches!(out.emitted[0].payload, Payload::Appended { .. }), "the added field is kept aside until read");
    let v: serde_json::Value = serde_json::from_slice(&out.emitted[0].output(&b).bytes()).unwrap();
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
    let b = batch(&[event("U", "level_start", 1), event("U", "screen_view", 2), event("U", "post_score", 3)]);
    let out = t.transform(&rt, &b);
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
fn windows_firing_together_are_extracted_and_released_in_two_calls() {
    let rt = runtime();
    let mut agg = AggregatePlugin::load(&rt, PluginSource::resolve("count-events", Path::new("")).unwrap(), "").unwrap();
    let windows = 100u32;
    let adds: Vec<AccOp> = (0..windows).flat_map(|slot| (0..=slot % 3).map(move |event| AccOp::Add { slot, event })).collect();
    agg.apply(&adds, &mut EventBatch::default(), &mut []).unwrap();
    // What the engine queues when every window fires and closes at once
    // (the end of a file): per window an extract, then a release as its
    // trigger finishes and another as the window is removed.
    let fired: Vec<AccOp> =
        (0..windows).flat_map(|slot| [AccOp::Extract { slot, pane: slot }, AccOp::Release { slot }, AccOp::Release { slot }]).collect();
    let mut panes: Vec<Pane> = (0..windows as usize).map(pane).collect();
    let before = agg.calls();
    agg.apply(&fired, &mut EventBatch::default(), &mut panes).unwrap();
    assert_eq!(agg.calls() - before, 2, "one extract call and one release call for all {windows} windows");
    let values: Vec<_> = panes.iter().map(|p| p.value.clone()).collect();
    let expected: Vec<_> = (0..windows).map(|slot| Some(Value::Int(i64::from(slot % 3 + 1)))).collect();
    assert_eq!(values, expected);
    // Released: each slot starts again from zero.
    agg.apply(&[AccOp::Extract { slot: 7, pane: 0 }], &mut EventBatch::default(), &mut panes).unwrap();
    assert_eq!(panes[0].value, Some(Value::Int(0)));
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
        // A payload a transform replaced with something that is not JSON:
        // the host cannot read it, so its add is refused before the guest.
        "{\"event_value_in_usd\":".to_string(),
    ]);
    let ops: Vec<AccOp> = (0..5).map(|e| AccOp::Add { slot: 7, event: e }).chain([AccOp::Extract { slot: 7, pane: 0 }]).collect();
    let mut panes = vec![pane(0)];
    let mut rejected = agg.apply(&ops, &mut b, &mut panes).unwrap();
    rejected.sort_by_key(|r| r.event);
    assert_eq!(panes[0].value, Some(Value::Float(2.99)));
    assert_eq!(rejected.iter().map(|r| r.event).collect::<Vec<_>>(), [2, 4]);
    assert!(rejected[0].reason.contains("not a number"), "{}", rejected[0].reason);
    assert!(rejected[1].reason.contains("not valid JSON"), "{}", rejected[1].reason);
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
    assert!(msg.contains("runnel:plugin/transformer@0.1.0"), "{msg}");
    assert!(msg.contains("runnel:plugin@0.2.0") && msg.contains("Rebuild") && msg.contains("Transform::whole_events"), "{msg}");
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
fn starting_a_plugin_has_its_own_time_budget_apart_from_a_batch() {
    use runnel::plugin::runtime::{Failure, Phase};
    use std::time::Duration;
    let hostile = || PluginSource::from_file(&built_guest("hostile")).unwrap();
    let limits = |call_ms, start_ms| Limits {
        call_timeout: Duration::from_millis(call_ms),
        start_timeout: Duration::from_millis(start_ms),
        ..Limits::default()
    };
    // A 300 ms start (an interpreter's) fits the start-up budget though a
    // batch only gets 50 ms; then its batches run.
    let rt = PluginRuntime::new(limits(50, 5_000)).unwrap();
    let mut slow = TransformPlugin::load(&rt, hostile(), r#"{"mode":"init-nap"}"#, &fields()).unwrap();
    assert_eq!(slow.transform(&rt, &batch(&[event("U1", "a", 10), event("U2", "b", 20)])).emitted.len(), 2);

    // A start-up budget it does not fit refuses it, naming that budget.
    let rt = PluginRuntime::new(limits(5_000, 100)).unwrap();
    let err = TransformPlugin::load(&rt, hostile(), r#"{"mode":"init-nap"}"#, &fields()).err().unwrap();
    assert!(format!("{err:#}").contains("time budget of 100 ms for starting (instantiation and init)"), "{err:#}");
    // An endless loop in init is cut by it, and told apart by type.
    let err = TransformPlugin::load(&rt, hostile(), r#"{"mode":"init-loop"}"#, &fields()).err().unwrap();
    let failure = err.downcast_ref::<Failure>().expect("a typed failure");
    assert_eq!(*failure, Failure::TimeBudget { budget: Duration::from_millis(100), phase: Phase::Start });
    assert!(format!("{err:#}").contains("[sandbox] start_timeout_ms"), "{err:#}");
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
    let input = batch(&[event("u1", "level_start", 1_533_279_652_346_000)]);
    let out = plugin.transform(&second, &input);
    assert_eq!(out.emitted.len(), 1);
    assert!(String::from_utf8(out.emitted[0].output(&input).bytes().into_owned()).unwrap().contains("\"weekday\":\"Friday\""));

    // A damaged artifact is not trusted: compiled again and rewritten.
    std::fs::write(&artifact, b"not an artifact").unwrap();
    let third = PluginRuntime::with_cache(Limits::default(), Some(dir.path().to_path_buf())).unwrap();
    assert_eq!(third.compile_traced(&source).unwrap().1, CompiledFrom::Compiled);
    let fourth = PluginRuntime::with_cache(Limits::default(), Some(dir.path().to_path_buf())).unwrap();
    assert_eq!(fourth.compile_traced(&source).unwrap().1, CompiledFrom::Disk);
}

fn inspect(config: serde_json::Value) -> TransformPlugin {
    TransformPlugin::load(&runtime(), PluginSource::from_file(&built_guest("inspect")).unwrap(), &config.to_string(), &fields()).unwrap()
}

fn payload_of(out: &runnel::plugin::transform::TransformOutput, events: &[String], i: usize) -> serde_json::Value {
    let e = &out.emitted[i];
    assert_ne!(e.payload, Payload::Input, "an edited payload");
    serde_json::from_slice(&e.payload.bytes(events[e.source as usize].as_bytes())).unwrap()
}

#[test]
fn only_the_declared_fields_cross_the_boundary() {
    let rt = runtime();
    let events = [event("U1", "level_start", 10)];
    let mut t = inspect(serde_json::json!({"fields": ["event_name", "absent", "user_pseudo_id", "event_value_in_usd"]}));
    assert_eq!(t.declared(), (vec!["event_name".into(), "absent".into(), "user_pseudo_id".into(), "event_value_in_usd".into()], false));
    let out = t.transform(&rt, &batch(&events));
    let v = payload_of(&out, &events, 0);
    assert_eq!(v["seen"], serde_json::json!(["\"level_start\"", null, "\"U1\"", "null"]), "declared order; absent is empty");
    assert_eq!(v["bytes"], 0, "no whole event crosses unless asked for");
    assert_eq!((out.emitted[0].key.as_deref(), out.emitted[0].event_time_us), (Some("U1"), Some(10)), "the host read key and time");

    let mut whole = inspect(serde_json::json!({"fields": [], "whole": true}));
    let out = whole.transform(&rt, &batch(&events));
    assert_eq!(payload_of(&out, &events, 0)["bytes"], events[0].len());
}

#[test]
fn the_host_applies_a_transforms_edits_to_the_input() {
    let rt = runtime();
    let mut t = inspect(serde_json::json!({"fields": ["event_name"], "remove": "event_name"}));
    let events = [event("U1", "level_start", 10)];
    let out = t.transform(&rt, &batch(&events));
    let v = payload_of(&out, &events, 0);
    assert!(v.get("event_name").is_none(), "removed: {v}");
    assert_eq!((v["user_pseudo_id"].as_str(), v["seen"][0].as_str()), (Some("U1"), Some("\"level_start\"")));
    assert_eq!(out.emitted[0].key.as_deref(), Some("U1"));
}

#[test]
fn events_that_are_not_json_objects_never_reach_the_guest() {
    let rt = runtime();
    let mut t = transform("add-weekday", "");
    let out = t.transform(&rt, &batch(&[event("U1", "a", 10), "{not json".into(), "[1]".into()]));
    assert_eq!(out.restarts, 0);
    assert_eq!(out.emitted.iter().map(|e| e.source).collect::<Vec<_>>(), [0]);
    let codes: Vec<(u32, Reason)> = out.rejected.iter().map(|r| (r.source, r.code)).collect();
    assert_eq!(codes, [(1, Reason::Malformed), (2, Reason::Malformed)]);
    assert!(out.rejected[1].reason.contains("not a JSON object"), "{:?}", out.rejected[1]);
}

/// The `hostile` guest in `mode`, misbehaving on events named "poison",
/// run on three events (the second is the poison); what came out, by source.
fn hostile_on_three(mode: &str) -> (Vec<u32>, Vec<runnel::plugin::transform::Rejected>) {
    let rt = runtime();
    let hostile = PluginSource::from_file(&built_guest("hostile")).unwrap();
    let mut t = TransformPlugin::load(&rt, hostile, &format!(r#"{{"mode":"{mode}","when":"poison"}}"#), &fields()).unwrap();
    let out = t.transform(&rt, &batch(&[event("U1", "a", 1), event("U2", "poison", 2), event("U3", "b", 3)]));
    (out.emitted.iter().map(|e| e.source).collect(), out.rejected)
}

#[test]
fn an_edit_that_is_not_json_costs_only_its_event() {
    let (emitted, rejected) = hostile_on_three("bad-edit");
    assert_eq!(emitted, [0, 2]);
    assert_eq!((rejected.len(), rejected[0].source, rejected[0].code), (1, 1, Reason::ContractViolation));
    assert!(rejected[0].reason.contains("\"weekday\" with a value that is not one JSON value"), "{:?}", rejected[0]);
}

#[test]
fn reading_a_whole_event_without_asking_fails_with_advice() {
    let (emitted, rejected) = hostile_on_three("read-bytes");
    assert_eq!(emitted, [0, 2]);
    assert_eq!((rejected.len(), rejected[0].source, rejected[0].code), (1, 1, Reason::PluginFailed));
    assert!(rejected[0].reason.contains("Transform::whole_events"), "{:?}", rejected[0]);
}

#[test]
fn a_transform_declaring_too_many_fields_is_refused() {
    let names: Vec<String> = (0..=MAX_DECLARED_FIELDS).map(|i| format!("f{i}")).collect();
    let source = PluginSource::from_file(&built_guest("inspect")).unwrap();
    let config = serde_json::json!({ "fields": names }).to_string();
    let err = format!("{:#}", TransformPlugin::load(&runtime(), source, &config, &fields()).err().unwrap());
    assert!(err.contains(&format!("at most {MAX_DECLARED_FIELDS}")) && err.contains("whole_events"), "{err}");
}
