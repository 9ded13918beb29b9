//! The workshop's path against the local emulators (started by
//! scripts/test.sh): Pub/Sub pull subscription → add-weekday → events per
//! user per minute → BigQuery, with bad messages dead-lettered, every
//! message acknowledged, and rows the table would refuse dead-lettered;
//! the BigQuery emulator itself takes inserts after a partial read.

use base64::Engine as _;
use runnel::config::PipelineConfig;
use runnel::pipeline::Pipeline;
use runnel_tests::emulators::{env as emulator, query};
use runnel_tests::{count_per_user_window, flood_it_lines};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const ACK_DEADLINE_S: u64 = 10;

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

struct Setup {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    subscription: String,
    dataset: String,
}

fn setup(extra: &str) -> Setup {
    emulator("PUBSUB_EMULATOR_HOST");
    emulator("BIGQUERY_EMULATOR_HOST");
    let dir = tempfile::tempdir().unwrap();
    let subscription = unique("sub");
    let dataset = unique("data_journey");
    let text = format!(
        r#"
[cloud]
project = "test-project"

[source]
type = "pubsub"
topic = "{topic}"
subscription = "{subscription}"
ack_deadline_s = {ACK_DEADLINE_S}
stop_when_idle_s = 3

[event]
max_bytes = 4096

[windowing]
window = {{ type = "fixed", size_s = 60 }}

[watermark]
mode = "bounded"
max_out_of_orderness_s = 86400

[sink]
type = "bigquery"
dataset = "{dataset}"
table = "dataflow"

[dead_letters]
path = "{dead}"
{extra}
"#,
        topic = unique("topic"),
        dead = dir.path().join("dead.ndjson").display(),
    );
    let config = dir.path().join("pipeline.toml");
    std::fs::write(&config, text).unwrap();
    runnel::cmd::setup::run(&config).unwrap();
    Setup { dir, config, subscription, dataset }
}

fn publish(s: &Setup, lines: &[String]) {
    let file = s.dir.path().join("input.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let opts = runnel::cmd::publish::PublishOptions { file: &file, rate: None, repeat: false, limit: None, quiet: true, retime: false };
    assert_eq!(runnel::cmd::publish::run(&s.config, &opts).unwrap(), lines.len() as u64);
}

#[test]
fn workshop_pipeline_from_pubsub_to_bigquery_equals_an_independent_count() {
    let s = setup("[transform]\nplugin = \"add-weekday\"\n");
    let good: Vec<String> = flood_it_lines().into_iter().take(3000).collect();
    let bad = [
        "{\"event_name\": not json".to_string(),
        r#"{"event_date":"20180803","event_timestamp":1533279652346001,"event_name":"x"}"#.to_string(),
        format!(r#"{{"event_date":"20180803","event_timestamp":1533279652346001,"user_pseudo_id":"U","pad":"{}"}}"#, "x".repeat(5000)),
    ];
    let mut lines = good.clone();
    lines.insert(100, bad[0].clone());
    lines.insert(1000, bad[1].clone());
    lines.insert(2000, bad[2].clone());
    publish(&s, &lines);
    // `runnel status` sees the backlog, and peeking leaves it in place.
    let status = |cfg: &Path| {
        runnel::cmd::status::run(&runnel::cmd::status::StatusOptions { config: cfg, admin: None, peek_limit: 10_000 }).unwrap()
    };
    let before = status(&s.config);
    assert_eq!(before.waiting_messages, Some(lines.len()), "{before}");
    assert!(!before.drained());
    assert_eq!(before.rows, Some(0));

    let counters = Pipeline::from_config(&PipelineConfig::load(&s.config).unwrap()).unwrap().run().unwrap();
    assert_eq!(counters.events_in, lines.len() as u64, "the peeked messages were all delivered to the pipeline");

    let rows = query(&format!("SELECT user_pseudo_id, event_count FROM {}.dataflow", s.dataset));
    let expected = count_per_user_window(&good, 60_000_000);
    assert_eq!(rows.len(), expected.len(), "one row per (user, minute)");
    let mut per_user_rows: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &rows {
        per_user_rows.entry(r[0].clone()).or_default().push(r[1].parse().unwrap());
    }
    let mut per_user_expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for ((user, _), n) in &expected {
        per_user_expected.entry(user.clone()).or_default().push(*n);
    }
    for v in per_user_rows.values_mut().chain(per_user_expected.values_mut()) {
        v.sort();
    }
    assert_eq!(per_user_rows, per_user_expected, "every user's per-minute counts");

    let dead = runnel::deadletter::read(&s.dir.path().join("dead.ndjson")).unwrap();
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(dead.len(), 3, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("not valid JSON")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("missing key field /user_pseudo_id")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("oversized")), "{reasons:?}");
    assert!(dead.iter().all(|d| d.source.starts_with(&format!("pubsub:{}/", s.subscription))));

    assert_eq!(
        runnel_tests::emulators::redelivered(&s.subscription, Duration::from_secs(ACK_DEADLINE_S)),
        0,
        "every message was acknowledged"
    );

    let after = status(&s.config);
    assert!(after.drained(), "{after}");
    assert_eq!(after.rows, Some(expected.len() as i64));
    assert_eq!(after.keys, Some(per_user_expected.len() as i64));
    assert_eq!(after.dead_letters.values().sum::<u64>(), 3, "{after}");
    assert!(after.to_string().contains("every message is acknowledged"), "{after}");
}

#[test]
fn rows_the_table_would_refuse_are_dead_lettered_and_their_messages_acknowledged() {
    // sum-field produces FLOAT values; the table's event_count is INTEGER.
    let s = setup("[aggregate]\nplugin = \"sum-field\"\n");
    let lines: Vec<String> = flood_it_lines().into_iter().take(200).collect();
    publish(&s, &lines);
    let counters = Pipeline::from_config(&PipelineConfig::load(&s.config).unwrap()).unwrap().run().unwrap();
    assert!(counters.panes > 0);
    let dead = runnel::deadletter::read(&s.dir.path().join("dead.ndjson")).unwrap();
    assert_eq!(dead.len() as u64, counters.panes, "every row refused");
    assert!(dead.iter().all(|d| d.stage.as_str() == "sink" && d.reason.contains("event_count is INTEGER")), "{:?}", dead[0]);
    assert!(query(&format!("SELECT user_pseudo_id FROM {}.dataflow", s.dataset)).is_empty());
    assert_eq!(
        runnel_tests::emulators::redelivered(&s.subscription, Duration::from_secs(ACK_DEADLINE_S)),
        0,
        "refused rows are dead-lettered, so their messages are acknowledged"
    );
}

#[test]
fn setup_is_idempotent_and_names_what_exists() {
    let s = setup("");
    // A second run finds everything in place.
    runnel::cmd::setup::run(&s.config).unwrap();
    let missing = Path::new("/nonexistent/pipeline.toml");
    assert!(runnel::cmd::setup::run(missing).is_err());
}

#[test]
fn dead_letters_are_also_published_to_a_topic_before_input_is_acknowledged() {
    let dl_topic = unique("dead_letters");
    let s = setup(&format!("topic = \"{dl_topic}\"\n"));
    // A subscription on the dead-letter topic, to read what arrives there.
    let host = emulator("PUBSUB_EMULATOR_HOST");
    let dl_sub = unique("dead_letters_sub");
    ureq::put(&format!("http://{host}/v1/projects/test-project/subscriptions/{dl_sub}"))
        .send_json(serde_json::json!({"topic": format!("projects/test-project/topics/{dl_topic}")}))
        .expect("the dead-letter topic exists after runnel setup");
    let mut lines: Vec<String> = flood_it_lines().into_iter().take(200).collect();
    lines.insert(10, "not json at all".into());
    lines.insert(20, r#"{"event_timestamp":1533279652346001,"event_name":"no_user"}"#.into());
    publish(&s, &lines);
    let counters = Pipeline::from_config(&PipelineConfig::load(&s.config).unwrap()).unwrap().run().unwrap();
    assert_eq!(counters.dead_letters, 2);

    let body: serde_json::Value = ureq::post(&format!("http://{host}/v1/projects/test-project/subscriptions/{dl_sub}:pull"))
        .send_json(serde_json::json!({"maxMessages": 100, "returnImmediately": true}))
        .unwrap()
        .into_json()
        .unwrap();
    let messages = body["receivedMessages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 2, "{body}");
    let mut payloads = Vec::new();
    for m in &messages {
        assert_eq!(m["message"]["attributes"]["stage"], "decode");
        let data = base64::engine::general_purpose::STANDARD.decode(m["message"]["data"].as_str().unwrap()).unwrap();
        let record: runnel::deadletter::DeadLetter = serde_json::from_slice(&data).unwrap();
        assert!(record.source.starts_with(&format!("pubsub:{}/", s.subscription)), "{record:?}");
        payloads.push(record.payload.unwrap());
    }
    payloads.sort();
    let mut expected = vec![lines[10].clone(), lines[20].clone()];
    expected.sort();
    assert_eq!(payloads, expected, "the original messages, whole");
    assert_eq!(runnel_tests::emulators::redelivered(&s.subscription, Duration::from_secs(ACK_DEADLINE_S)), 0);
}

/// Messages published while the source is already waiting on an empty
/// subscription all arrive while they are being published, not after an ack
/// deadline. Before the source kept its stream in a task of its own, each
/// 200 ms poll cancelled the client's stream while it was opening (it opens
/// on its first response): messages the emulator had just put on that
/// stream were leased to nobody until their 60 s deadline ran out, and the
/// reopened streams took in a trickle (50-80 messages/s of 500/s).
#[test]
fn messages_published_to_a_waiting_source_arrive_without_waiting_out_a_deadline() {
    use runnel::cloud::{Cloud, CloudConfig};
    use runnel::source::pubsub::{PubsubOptions, PubsubSource};
    use runnel::source::Source;
    let host = emulator("PUBSUB_EMULATOR_HOST");
    let (topic, subscription) = (unique("live_topic"), unique("live_sub"));
    let api = format!("http://{host}/v1/projects/test-project");
    ureq::put(&format!("{api}/topics/{topic}")).send_json(serde_json::json!({})).unwrap();
    ureq::put(&format!("{api}/subscriptions/{subscription}"))
        .send_json(serde_json::json!({"topic": format!("projects/test-project/topics/{topic}"), "ackDeadlineSeconds": 60}))
        .unwrap();
    let cloud = Cloud::resolve(&CloudConfig { project: Some("test-project".into()), ..Default::default() }).unwrap();
    let mut source = PubsubSource::connect(
        &cloud,
        PubsubOptions {
            max_outstanding_messages: 10_000,
            max_outstanding_bytes: 64 << 20,
            stop_when_idle: None,
            lease_extension: Duration::from_secs(60),
            max_lease: Duration::from_secs(3600),
            ..PubsubOptions::new(subscription)
        },
    )
    .unwrap();
    // Polled empty for a while first, as a pipeline waiting for its stream.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        assert!(source.next_batch(100).unwrap().unwrap().events.is_empty());
    }
    // 40 groups of 25, one every 100 ms, published while the source polls.
    const GROUPS: usize = 40;
    const PER_GROUP: usize = 25;
    let publisher = std::thread::spawn(move || {
        for g in 0..GROUPS {
            let messages: Vec<_> = (0..PER_GROUP)
                .map(|i| serde_json::json!({"data": base64::engine::general_purpose::STANDARD.encode(format!("{{\"n\":{}}}", g * PER_GROUP + i))}))
                .collect();
            ureq::post(&format!("{api}/topics/{topic}:publish")).send_json(serde_json::json!({"messages": messages})).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut seen = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < GROUPS * PER_GROUP && std::time::Instant::now() < deadline {
        let batch = source.next_batch(100).unwrap().unwrap();
        for i in 0..batch.events.len() {
            let v: serde_json::Value = serde_json::from_slice(batch.events.get(i)).unwrap();
            assert!(seen.insert(v["n"].as_u64().unwrap()), "delivered twice: {v}");
        }
        source.ack(&batch.ack_tokens);
    }
    publisher.join().unwrap();
    assert_eq!(
        seen.len(),
        GROUPS * PER_GROUP,
        "received {} of {} within 30 s of publishing them (the ack deadline is 60 s)",
        seen.len(),
        GROUPS * PER_GROUP
    );
}

/// The emulator as scripts/emulators.sh starts it takes a streaming insert
/// after a read that left its result half fetched (bqemulator shares one
/// DuckDB connection, and refused every later `insertAll` with a 500: Beam's
/// WriteToBigQuery then retried for minutes while a test polled the table).
#[test]
fn the_bigquery_emulator_takes_inserts_after_a_partial_read() {
    let base = format!("http://{}/bigquery/v2/projects/test-project", emulator("BIGQUERY_EMULATOR_HOST"));
    let dataset = unique("partial_read");
    ureq::post(&format!("{base}/datasets"))
        .send_json(serde_json::json!({"datasetReference": {"projectId": "test-project", "datasetId": dataset}}))
        .unwrap();
    let table = serde_json::json!({
        "tableReference": {"projectId": "test-project", "datasetId": dataset, "tableId": "t"},
        "schema": {"fields": [{"name": "a", "type": "INTEGER"}]}
    });
    ureq::post(&format!("{base}/datasets/{dataset}/tables")).send_json(table).unwrap();
    let insert = |a: i64| {
        ureq::post(&format!("{base}/datasets/{dataset}/tables/t/insertAll"))
            .send_json(serde_json::json!({"rows": [{"json": {"a": a}}]}))
            .map(|r| r.status())
            .unwrap_or_else(|e| panic!("insertAll of {a} refused: {e}"))
    };
    assert_eq!((insert(1), insert(2)), (200, 200));
    // One row of two: the rest of the result stays on the connection.
    ureq::get(&format!("{base}/datasets/{dataset}/tables/t/data?maxResults=1")).call().unwrap();
    assert_eq!(insert(3), 200);
    let rows = query(&format!("SELECT SUM(a) FROM {dataset}.t"));
    assert_eq!(rows, [["6".to_string()]]);
}
