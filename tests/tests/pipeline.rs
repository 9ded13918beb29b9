//! Whole pipelines on the bundled Flood It data: the demo's counts equal an
//! independent count, and every kind of bad input is dead-lettered with its
//! reason while nothing else is lost.

use runnel::config::PipelineConfig;
use runnel::deadletter;
use runnel::pipeline::Pipeline;
use runnel_tests::{count_per_user_window, flood_it_lines, read_rows, repo_root, rfc3339_us};
use std::collections::BTreeMap;

fn config(dir: &std::path::Path, source_path: &std::path::Path, extra: &str) -> PipelineConfig {
    let text = format!(
        r#"
[source]
type = "file"
path = "{}"

[transform]
plugin = "add-weekday"

[windowing]
window = {{ type = "fixed", size_s = 60 }}

[sink]
type = "ndjson"
path = "{}"

[dead_letters]
path = "{}"
{extra}
"#,
        source_path.display(),
        dir.join("panes.ndjson").display(),
        dir.join("dead.ndjson").display()
    );
    PipelineConfig::parse(&text).unwrap()
}

fn counts_from_rows(rows: &[serde_json::Value]) -> BTreeMap<(String, i64), i64> {
    let mut out = BTreeMap::new();
    for r in rows {
        assert_eq!(r["timing"], "ON_TIME", "files have an exact watermark: every pane is on time");
        let key = (r["user_pseudo_id"].as_str().unwrap().to_string(), rfc3339_us(r["window_start"].as_str().unwrap()));
        assert!(out.insert(key, r["event_count"].as_i64().unwrap()).is_none(), "one pane per (user, window)");
    }
    out
}

#[test]
fn demo_pipeline_counts_equal_an_independent_count_of_the_bundled_data() {
    let dir = tempfile::tempdir().unwrap();
    let source = repo_root().join("examples/data/floodit-events.ndjson.gz");
    let cfg = config(dir.path(), &source, "");
    let counters = Pipeline::from_config(&cfg).unwrap().run().unwrap();
    assert_eq!(counters.events_in, 50_000);
    assert_eq!(counters.dead_letters, 0);
    let expected = count_per_user_window(&flood_it_lines(), 60_000_000);
    let actual = counts_from_rows(&read_rows(&dir.path().join("panes.ndjson")));
    assert_eq!(actual.len(), expected.len(), "one row per (user, minute) with events");
    assert_eq!(actual, expected);
    // The demo runs exactly this pipeline file.
    let demo = PipelineConfig::parse(runnel::cmd::demo::DEMO_TOML).unwrap();
    assert_eq!(demo.transform.unwrap().plugin, "add-weekday");
    assert_eq!(demo.aggregate.plugin, "count-events");
}

#[test]
fn bad_input_is_dead_lettered_with_its_reason_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let good: Vec<String> = flood_it_lines().into_iter().take(500).collect();
    let oversized =
        format!(r#"{{"event_date":"20180803","event_timestamp":1533279652346001,"user_pseudo_id":"BIG","pad":"{}"}}"#, "x".repeat(5000));
    let bad = [
        ("{\"event_date\":\"20180803\", this is not json".to_string(), "transform", "not valid JSON"),
        (r#"{"event_date":"20180803","event_timestamp":1533279652346001}"#.to_string(), "transform", "missing key field /user_pseudo_id"),
        (
            r#"{"event_date":"20180803","event_timestamp":"yesterday","user_pseudo_id":"U"}"#.to_string(),
            "transform",
            "not an integer number of microseconds",
        ),
        (r#"{"event_date":"20180803","event_timestamp":1533279652346001,"user_pseudo_id":null}"#.to_string(), "transform", "key is null"),
        ("[1,2,3]".to_string(), "transform", "not a JSON object"),
        (oversized, "decode", "oversized"),
    ];
    // Interleave the bad lines among the good ones.
    let mut lines = Vec::new();
    for (i, g) in good.iter().enumerate() {
        lines.push(g.clone());
        if i % 80 == 0 {
            if let Some((b, _, _)) = bad.get(i / 80) {
                lines.push(b.clone());
            }
        }
    }
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let cfg = config(dir.path(), &input, "[event]\nmax_bytes = 4096\n");
    let counters = Pipeline::from_config(&cfg).unwrap().run().unwrap();
    assert_eq!(counters.events_in, (good.len() + bad.len()) as u64);
    let dead = deadletter::read(&dir.path().join("dead.ndjson")).unwrap();
    assert_eq!(dead.len(), bad.len(), "{dead:#?}");
    for (payload, stage, reason) in &bad {
        let letter = dead
            .iter()
            .find(|d| d.payload.as_deref() == Some(payload.as_str()))
            .unwrap_or_else(|| panic!("no dead letter for {}", &payload[..40.min(payload.len())]));
        assert_eq!(letter.stage.as_str(), *stage);
        assert!(letter.reason.contains(reason), "{:?} should say {reason:?}", letter.reason);
        assert_eq!(letter.payload.as_deref(), Some(payload.as_str()), "the original event is kept");
        assert!(letter.source.contains("input.ndjson:"), "provenance: {}", letter.source);
    }
    // Every good event is counted, exactly once.
    let expected = count_per_user_window(&good, 60_000_000);
    let actual = counts_from_rows(&read_rows(&dir.path().join("panes.ndjson")));
    assert_eq!(actual, expected);
}

#[test]
fn wrong_configs_stop_with_an_actionable_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.ndjson");
    let err = Pipeline::from_config(&config(dir.path(), &missing, "")).err().unwrap();
    assert!(format!("{err:#}").contains("check [source] path"), "{err:#}");
    let present = dir.path().join("empty.ndjson");
    std::fs::write(&present, "").unwrap();
    let cfg = config(dir.path(), &present, "[aggregate]\nplugin = \"does/not/exist.wasm\"\n");
    let err = Pipeline::from_config(&cfg).err().unwrap();
    assert!(format!("{err:#}").contains("cannot read plugin"), "{err:#}");
    let err = PipelineConfig::load(&dir.path().join("absent.toml")).err().unwrap();
    assert!(format!("{err:#}").contains("examples/ has working ones"), "{err:#}");
}

/// A time the transform sets (`set_event_time_us`) overrides the one
/// `[event] time` names, here the publish time, as the contract says and as
/// runnel on Beam does (`runnel run` used to keep the publish time).
#[test]
fn an_event_time_the_transform_sets_overrides_the_publish_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = runnel::accumulate::EventBatch::default();
    for i in 0..3 {
        events.push(format!(r#"{{"user_pseudo_id":"U","n":{i}}}"#).as_bytes());
    }
    let batch = runnel::source::SourceBatch {
        // All published in the same minute ...
        publish_times: vec![1_533_279_600_000_000; 3],
        events,
        origin: runnel::source::Origin::Synthetic { first: 0 },
        ack_tokens: Vec::new(),
        attributes: Vec::new(),
    };
    // ... the transform dates them a minute apart, and keeps two.
    let transform = Box::new(|batch: &runnel::accumulate::EventBatch| {
        let mut out = runnel::plugin::transform::TransformOutput::default();
        for source in 0..batch.len() as u32 {
            let time = (source != 1).then_some(1_533_279_600_000_000 + 60_000_000 * i64::from(source));
            out.emitted.push(runnel::plugin::transform::Emitted {
                source,
                payload: runnel::plugin::transform::Payload::Input,
                key: Some("U".into()),
                event_time_us: time,
            });
        }
        out
    });
    let text = format!(
        "[source]\ntype = \"file\"\npath = \"unused\"\n[event]\ntime = \"publish_time\"\n\
         [sink]\ntype = \"ndjson\"\npath = \"{}\"\n[dead_letters]\npath = \"{}\"\n",
        dir.path().join("panes.ndjson").display(),
        dir.path().join("dead.ndjson").display()
    );
    let cfg = PipelineConfig::parse(&text).unwrap();
    let native = runnel::pipeline::NativePlugins { transform, aggregate: runnel::bench::native::plugins().aggregate };
    let overrides = runnel::pipeline::Overrides {
        source: Some(Box::new(AttributeSource { batch: Some(batch) })),
        native: Some(native),
        ..Default::default()
    };
    runnel::pipeline::Pipeline::with_overrides(&cfg, overrides).unwrap().run().unwrap();
    let rows = read_rows(&dir.path().join("panes.ndjson"));
    let mut windows: Vec<(&str, i64)> =
        rows.iter().map(|r| (r["window_start"].as_str().unwrap(), r["event_count"].as_i64().unwrap())).collect();
    windows.sort();
    // The event the transform did not date keeps its publish time.
    assert_eq!(windows, vec![("2018-08-03T07:00:00Z", 2), ("2018-08-03T07:02:00Z", 1)]);
}

/// The workshop's pipeline takes the event time from the publish time. An
/// output's key is then still its input's, read in the host's one pass over
/// the input, as the contract says (and as with a time field), not read
/// again from the output: here the transform adds a field named like the
/// key field, which a second read would take as the key.
#[test]
fn an_output_keeps_its_inputs_key_when_the_time_is_the_publish_time() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("events.ndjson");
    let lines = [("A", "20180803"), ("B", "20180804"), ("A", "20180803")]
        .map(|(user, date)| format!(r#"{{"user_pseudo_id":"{user}","event_date":"{date}"}}"#));
    std::fs::write(&source, lines.join("\n")).unwrap();
    let extra = "[event]\ntime = \"publish_time\"\n[transform.config]\noutput_field = \"user_pseudo_id\"\n";
    let counters = Pipeline::from_config(&config(dir.path(), &source, extra)).unwrap().run().unwrap();
    assert_eq!((counters.elements, counters.dead_letters), (3, 0));
    let mut counts: Vec<(String, i64)> = read_rows(&dir.path().join("panes.ndjson"))
        .iter()
        .map(|r| (r["user_pseudo_id"].as_str().unwrap().to_string(), r["event_count"].as_i64().unwrap()))
        .collect();
    counts.sort();
    // Not ("Friday", 2) and ("Saturday", 1): the weekdays the transform wrote.
    assert_eq!(counts, vec![("A".to_string(), 2), ("B".to_string(), 1)]);
}

/// A source with message attributes, like Pub/Sub's.
struct AttributeSource {
    batch: Option<runnel::source::SourceBatch>,
}

impl runnel::source::Source for AttributeSource {
    fn next_batch(&mut self, _max: usize) -> anyhow::Result<Option<runnel::source::SourceBatch>> {
        Ok(self.batch.take())
    }
}

#[test]
fn event_time_can_come_from_a_message_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = runnel::accumulate::EventBatch::default();
    let mut attributes = Vec::new();
    for (i, attr) in [Some("1533279600500"), Some("1533279661000"), None, Some("soon")].iter().enumerate() {
        events.push(format!(r#"{{"user_pseudo_id":"U","n":{i}}}"#).as_bytes());
        attributes.push(attr.map(str::to_string));
    }
    let batch = runnel::source::SourceBatch {
        publish_times: vec![0; 4],
        events,
        origin: runnel::source::Origin::Synthetic { first: 0 },
        ack_tokens: Vec::new(),
        attributes,
    };
    let text = format!(
        "[source]\ntype = \"file\"\npath = \"unused\"\n[event]\ntime = \"attribute:ts\"\ntime_format = \"ms\"\n\
         [sink]\ntype = \"ndjson\"\npath = \"{}\"\n[dead_letters]\npath = \"{}\"\n",
        dir.path().join("panes.ndjson").display(),
        dir.path().join("dead.ndjson").display()
    );
    let cfg = PipelineConfig::parse(&text).unwrap();
    let overrides = runnel::pipeline::Overrides { source: Some(Box::new(AttributeSource { batch: Some(batch) })), ..Default::default() };
    runnel::pipeline::Pipeline::with_overrides(&cfg, overrides).unwrap().run().unwrap();
    let rows = read_rows(&dir.path().join("panes.ndjson"));
    let starts: Vec<&str> = rows.iter().map(|r| r["window_start"].as_str().unwrap()).collect();
    assert_eq!(starts, vec!["2018-08-03T07:00:00Z", "2018-08-03T07:01:00Z"], "one event per minute");
    let dead = deadletter::read(&dir.path().join("dead.ndjson")).unwrap();
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("missing event time attribute ts"), "{reasons:?}");
    assert!(reasons[1].contains("not a time") || reasons[1].contains("not an integer"), "{reasons:?}");
}

#[test]
fn dead_letters_are_replayed_through_fixed_plugins() {
    let dir = tempfile::tempdir().unwrap();
    // Events with a date add-weekday cannot read, among good ones.
    let good: Vec<String> = flood_it_lines().into_iter().take(100).collect();
    let bad: Vec<String> = good[..5].iter().map(|l| l.replace("\"event_date\":\"20180803\"", "\"event_date\":\"2018-08-03\"")).collect();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, good.iter().chain(&bad).cloned().collect::<Vec<_>>().join("\n")).unwrap();
    let cfg_path = dir.path().join("p.toml");
    let write_cfg = |transform: &str| {
        std::fs::write(
            &cfg_path,
            format!(
                "[source]\ntype = \"file\"\npath = \"input.ndjson\"\n[transform]\nplugin = \"{transform}\"\n\
                 [sink]\ntype = \"ndjson\"\npath = \"panes.ndjson\"\n[dead_letters]\npath = \"dead.ndjson\"\n"
            ),
        )
        .unwrap()
    };
    write_cfg("add-weekday");
    runnel::cmd::run::run(&cfg_path, None).unwrap();
    let dead = deadletter::read(&dir.path().join("dead.ndjson")).unwrap();
    assert_eq!(dead.len(), 5);
    assert!(dead[0].reason.contains("not a %Y%m%d date"));

    // A crash mid-write leaves a cut-off last line: it is skipped and said.
    let dead_path = dir.path().join("dead.ndjson");
    let whole = std::fs::read_to_string(&dead_path).unwrap();
    let torn = &whole.lines().last().unwrap()[..40];
    std::fs::write(&dead_path, format!("{whole}{torn}")).unwrap();

    // "Fix" the pipeline (a transform that accepts them) and replay.
    write_cfg("identity");
    let summary = runnel::cmd::dlq::replay(&cfg_path).unwrap();
    assert_eq!(summary.torn_last_line, Some(40));
    assert_eq!(summary.replayed, 5);
    assert_eq!(summary.counters.events_in, 5);
    assert!(summary.kept_aside.exists(), "the originals are kept");
    assert!(!dir.path().join("dead.ndjson").exists() || deadletter::read(&dir.path().join("dead.ndjson")).unwrap().is_empty());
    let replayed = read_rows(&dir.path().join("panes.ndjson"));
    let total: i64 = replayed.iter().map(|r| r["event_count"].as_i64().unwrap()).sum();
    assert_eq!(total, 5, "the replayed events are counted");

    // Replaying again with the broken plugin puts them back, with provenance.
    write_cfg("add-weekday");
    std::fs::rename(&summary.kept_aside, dir.path().join("dead.ndjson")).unwrap();
    runnel::cmd::dlq::replay(&cfg_path).unwrap();
    let again = deadletter::read(&dir.path().join("dead.ndjson")).unwrap();
    assert_eq!(again.len(), 5);
    assert!(
        again.iter().all(|d| d.source.starts_with("dlq/") && d.source.contains("input.ndjson:")),
        "the original provenance is kept: {:?}",
        again[0].source
    );
}

/// A looped replay windowed in the events' own time loses its second pass
/// as late; the live status says how much, and names what to change. In
/// publish time (the workshop's default) nothing is late.
#[test]
fn a_stream_dropped_as_late_is_said_with_the_setting_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let first: Vec<String> = flood_it_lines().into_iter().take(1_000).collect();
    let input = dir.path().join("looped.ndjson");
    std::fs::write(&input, [first.clone(), first].concat().join("\n")).unwrap();
    let bounded = "[watermark]\nmode = \"bounded\"\nmax_out_of_orderness_s = 10\n";

    let mut looped = Pipeline::from_config(&config(dir.path(), &input, bounded)).unwrap();
    let counters = looped.run().unwrap();
    let late = looped.status().snapshot().late_recent;
    assert!(counters.late >= 900, "the second pass is behind the watermark: {counters:?}");
    assert_eq!((late.elements, late.late), (counters.elements, counters.late));
    let warning = late.warning.expect("a warning above 1 %");
    assert!(warning.contains("dropped as late"), "{warning}");
    assert!(warning.contains("[event] time = \"publish_time\""), "{warning}");
    assert!(warning.contains("max_out_of_orderness_s (now 10 s)"), "{warning}");

    let publish_time = format!("[event]\ntime = \"publish_time\"\n{bounded}");
    let mut in_publish_time = Pipeline::from_config(&config(dir.path(), &input, &publish_time)).unwrap();
    let counters = in_publish_time.run().unwrap();
    assert_eq!(counters.late, 0, "{counters:?}");
    assert_eq!(in_publish_time.status().snapshot().late_recent.warning, None);
}

/// One event dated 2100 must not move the watermark past every later event,
/// and a time at the i64 extremes must not overflow a window's bounds: both
/// are refused with the reason, everything else is counted.
#[test]
fn future_and_out_of_range_event_times_are_refused_and_poison_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let event = |user: &str, ts: i64| format!(r#"{{"user_pseudo_id":"{user}","event_timestamp":{ts}}}"#);
    let mut lines = vec![event("A", now - 2_000_000)];
    lines.push(event("F", 4_102_444_800_000_000)); // 2100-01-01
    lines.push(event("X", i64::MAX));
    lines.push(event("N", i64::MIN));
    lines.extend((0..20).map(|i| event("B", now - 1_000_000 + i)));
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let extra = "[watermark]\nmode = \"bounded\"\nmax_out_of_orderness_s = 10\n";
    let mut cfg = config(dir.path(), &input, extra);
    cfg.transform = None;
    let counters = Pipeline::from_config(&cfg).unwrap().run().unwrap();
    assert_eq!(counters.late, 0, "nothing after the 2100 event is late: {counters:?}");
    let rows = read_rows(&dir.path().join("panes.ndjson"));
    let total: i64 = rows.iter().map(|r| r["event_count"].as_i64().unwrap()).sum();
    assert_eq!(total, 21, "A and the 20 B events are counted");
    assert!(rows.iter().all(|r| rfc3339_us(r["window_end"].as_str().unwrap()) > rfc3339_us(r["window_start"].as_str().unwrap())));
    let dead = deadletter::read(&dir.path().join("dead.ndjson")).unwrap();
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("ahead of processing time") && reasons[0].contains("max_future_s"), "{reasons:?}");
    assert!(reasons[1].contains("outside years 1 to 9999") && reasons[2].contains("outside years 1 to 9999"), "{reasons:?}");
}
