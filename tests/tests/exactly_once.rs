//! Exactly once against the Pub/Sub emulator (started by scripts/test.sh):
//! Pub/Sub delivers at least once, and runnel counts each message once
//! however often it comes: redelivered while held (its lease lapsed: a
//! paused process), or published twice with the same id attribute (a
//! publisher's retry), or acknowledged and then delivered again.

use base64::Engine as _;
use runnel::cloud::{Cloud, CloudConfig};
use runnel::source::pubsub::{PubsubOptions, PubsubSource};
use runnel::source::Source;
use runnel_tests::emulators::env;
use runnel_tests::running::{self, counter, free_port};
use runnel_tests::{count_per_user_window, pane_counts, read_rows, wait_for};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// A new topic with one subscription whose ack deadline is `ack_deadline_s`.
struct Subscription {
    api: String,
    topic: String,
    name: String,
}

impl Subscription {
    fn new(ack_deadline_s: u32) -> Self {
        let api = format!("http://{}/v1/projects/test-project", env("PUBSUB_EMULATOR_HOST"));
        let (topic, name) = (unique("once_topic"), unique("once_sub"));
        ureq::put(&format!("{api}/topics/{topic}")).send_json(serde_json::json!({})).unwrap();
        ureq::put(&format!("{api}/subscriptions/{name}"))
            .send_json(serde_json::json!({"topic": format!("projects/test-project/topics/{topic}"), "ackDeadlineSeconds": ack_deadline_s}))
            .unwrap();
        Self { api, topic, name }
    }

    /// Publishes messages, each its data and attributes, in one request.
    fn publish(&self, messages: &[(&str, &[(&str, &str)])]) {
        let messages: Vec<_> = messages
            .iter()
            .map(|(data, attributes)| {
                let attributes: serde_json::Map<String, serde_json::Value> =
                    attributes.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
                serde_json::json!({"data": base64::engine::general_purpose::STANDARD.encode(data), "attributes": attributes})
            })
            .collect();
        ureq::post(&format!("{}/topics/{}:publish", self.api, self.topic)).send_json(serde_json::json!({"messages": messages})).unwrap();
    }

    fn source(&self, options: PubsubOptions) -> PubsubSource {
        let cloud = Cloud::resolve(&CloudConfig { project: Some("test-project".into()), ..Default::default() }).unwrap();
        PubsubSource::connect(&cloud, PubsubOptions { subscription: self.name.clone(), ..options }).unwrap()
    }
}

/// What a source handed over: each event's text and its ack token.
#[derive(Default)]
struct Taken {
    events: Vec<String>,
    tokens: Vec<u64>,
}

impl Taken {
    /// One batch from the source into `self`.
    fn poll(&mut self, source: &mut PubsubSource) {
        let batch = source.next_batch(100).unwrap().expect("a Pub/Sub source does not end");
        for i in 0..batch.events.len() {
            self.events.push(String::from_utf8(batch.events.get(i).to_vec()).unwrap());
        }
        self.tokens.extend(batch.ack_tokens);
    }

    /// Each event and how often it was handed over.
    fn counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.events {
            *counts.entry(e.as_str()).or_default() += 1;
        }
        counts
    }
}

#[test]
fn a_message_redelivered_while_held_is_handed_over_once_and_acknowledged_with_it() {
    // The client extends a held message's lease for 1 s only, so the
    // emulator delivers every held message again once its 10 s deadline
    // lapses: what a paused process sees.
    let sub = Subscription::new(10);
    let mut source = sub.source(PubsubOptions { max_lease: Duration::from_secs(1), ..PubsubOptions::new("") });
    let data: Vec<String> = (0..20).map(|i| format!("{{\"n\":{i}}}")).collect();
    let none: &[(&str, &str)] = &[];
    sub.publish(&data.iter().map(|d| (d.as_str(), none)).collect::<Vec<_>>());
    let mut taken = Taken::default();
    let stats = wait_for("every message delivered a second time while held", Duration::from_secs(120), || {
        taken.poll(&mut source);
        let stats = source.dedup_stats().unwrap();
        if taken.events.len() >= data.len() && stats.duplicates_held >= data.len() as u64 {
            Ok(stats)
        } else {
            Err(format!("{} events handed over, {stats:?}", taken.events.len()))
        }
    });
    let counts = taken.counts();
    assert_eq!(counts.len(), data.len(), "every message handed over");
    assert!(counts.values().all(|&n| n == 1), "none handed over twice: {counts:?}");
    assert_eq!(stats.ids_held, data.len() as u64);
    assert_eq!(source.unacked(), data.len(), "one ack token per message, however many deliveries");

    // Acknowledged: every delivery's handle goes with it, so nothing comes
    // back, and the ids are remembered.
    source.ack(&taken.tokens);
    let stats = source.dedup_stats().unwrap();
    assert_eq!((stats.ids_held, stats.ids_remembered), (0, data.len() as u64));
    assert_eq!(source.unacked(), 0);
}

#[test]
fn messages_with_the_same_id_attribute_are_counted_once_whether_held_or_acknowledged() {
    let sub = Subscription::new(60);
    let mut source = sub.source(PubsubOptions { id_attribute: Some("event_id".into()), ..PubsubOptions::new("") });
    let mut taken = Taken::default();
    sub.publish(&[("A", &[("event_id", "a")])]);
    wait_for("the first message", Duration::from_secs(60), || {
        taken.poll(&mut source);
        if taken.events.is_empty() {
            Err("nothing yet")
        } else {
            Ok(())
        }
    });
    source.ack(&taken.tokens); // its results are written

    // A again (a retried publish: another message id, the same attribute),
    // B twice in one go, and C twice without the attribute (then the
    // message ids decide, and they differ).
    sub.publish(&[
        ("A again", &[("event_id", "a")]),
        ("B", &[("event_id", "b")]),
        ("B again", &[("event_id", "b")]),
        ("C", &[]),
        ("C", &[]),
    ]);
    let stats = wait_for("B and both Cs counted, and both duplicates dropped", Duration::from_secs(60), || {
        taken.poll(&mut source);
        let stats = source.dedup_stats().unwrap();
        if taken.events.len() >= 4 && stats.dropped() >= 2 {
            Ok(stats)
        } else {
            Err(format!("handed over {:?}, {stats:?}", taken.events))
        }
    });
    assert_eq!(taken.events.iter().filter(|e| e.starts_with('B')).count(), 1, "{:?}", taken.events);
    let mut events = taken.events.clone();
    events.retain(|e| !e.starts_with('B'));
    assert_eq!(events, ["A", "C", "C"], "A again is not counted; C without the attribute is two messages");
    assert_eq!((stats.duplicates_acknowledged, stats.duplicates_held), (1, 1), "A again after its ack, B again while B was held");
    source.ack(&taken.tokens);
    assert_eq!(source.unacked(), 0);
}

/// `runnel run` paused with SIGSTOP mid-stream for longer than its leases
/// (a starved process, a closed laptop lid), then continued: every message
/// held during the pause comes again, and each window is still exact.
/// Before the duplicate check this counted each of them again.
fn paused_pipeline_counts_every_message_once(streams: usize) {
    const MESSAGES: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Nothing closes before the drain (a bound of two days), so every
    // message is held throughout, and its lease lapses in the pause.
    let config = runnel_tests::emulators::holding_pipeline(dir.path(), "paused", 10, &format!("streams = {streams}"), port);
    let (lines, input) = runnel_tests::emulators::input_file(dir.path(), MESSAGES);
    let (panes, dead) = (dir.path().join("panes.ndjson"), dir.path().join("dead.ndjson"));

    let run = running::spawn(&config);
    wait_for("the pipeline's admin server", Duration::from_secs(60), || running::status(port).ok_or("no answer"));
    // 100 messages/s: 20 s of stream, the pause in the middle of it.
    let mut publisher = std::process::Command::new(runnel_tests::runnel_binary())
        .args(["--log", "error", "publish", "--rate", "100", "--config"])
        .arg(&config)
        .arg("--file")
        .arg(&input)
        .spawn()
        .unwrap();
    wait_for("a tenth of the stream counted", Duration::from_secs(120), || match counter(port, "events_in") {
        n if n >= MESSAGES as u64 / 10 => Ok(()),
        n => Err(format!("{n} events in")),
    });
    running::signal(&run, "-STOP");
    // The pause is the scenario itself: past the 10 s leases of what the
    // pipeline holds, and past the end of publishing.
    let paused = Instant::now();
    let published = wait_for("the publisher done and the held leases lapsed (25 s paused)", Duration::from_secs(120), || {
        match (publisher.try_wait().unwrap(), paused.elapsed()) {
            (Some(status), t) if t >= Duration::from_secs(25) => Ok(status),
            (done, t) => Err(format!("publisher finished: {}, paused {t:?}", done.is_some())),
        }
    });
    running::signal(&run, "-CONT");
    assert!(published.success(), "runnel publish failed");

    let dedup = wait_for("every message counted and the redeliveries recognised", Duration::from_secs(240), || {
        let status = running::status(port).ok_or_else(|| "no answer".to_string())?;
        let counted = status["counters"]["events_in"].as_u64().unwrap_or(0);
        let dedup = &status["counters"]["source_dedup"];
        let dropped = dedup["duplicates_held"].as_u64().unwrap_or(0) + dedup["duplicates_acknowledged"].as_u64().unwrap_or(0);
        if counted >= MESSAGES as u64 && dropped > 0 {
            Ok(dedup.clone())
        } else {
            Err(format!("{counted} of {MESSAGES} counted, duplicates: {dedup}"))
        }
    });
    let said = runnel::cmd::drain::run(&config, None).unwrap();
    assert!(said.starts_with("draining"), "{said}");
    let out = run.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");

    assert_eq!(pane_counts(&read_rows(&panes)), count_per_user_window(&lines, 60_000_000), "every window exact ({dedup})");
    assert!(!dead.exists() || runnel::deadletter::read(&dead).unwrap().is_empty(), "no dead letter");
    eprintln!("{streams} stream(s): duplicates dropped {dedup}");
}

#[test]
fn a_pipeline_paused_past_its_leases_counts_every_message_once() {
    paused_pipeline_counts_every_message_once(1);
}

#[test]
fn four_streams_paused_past_their_leases_count_every_message_once() {
    paused_pipeline_counts_every_message_once(4);
}

#[test]
fn a_restart_on_the_same_dedup_file_recognises_what_the_last_run_acknowledged() {
    // A message whose acknowledgement a crash lost comes back to the next
    // run; the same event published again with the same id attribute
    // stands in for it here (the emulator has no way to lose an ack).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state/acknowledged-ids");
    let sub = Subscription::new(60);
    let options = || PubsubOptions { id_attribute: Some("event_id".into()), dedup_file: Some(file.clone()), ..PubsubOptions::new("") };
    let mut first = sub.source(options());
    sub.publish(&[("X", &[("event_id", "x")])]);
    let mut taken = Taken::default();
    wait_for("X in the first run", Duration::from_secs(60), || {
        taken.poll(&mut first);
        taken.events.first().cloned().ok_or("nothing yet")
    });
    first.ack(&taken.tokens); // journalled before the ack is sent
    drop(first); // closes its stream, so the next run gets every message

    let mut second = sub.source(options());
    sub.publish(&[("X again", &[("event_id", "x")]), ("Y", &[("event_id", "y")])]);
    let mut again = Taken::default();
    let stats = wait_for("Y counted and X recognised", Duration::from_secs(60), || {
        again.poll(&mut second);
        let stats = second.dedup_stats().unwrap();
        if !again.events.is_empty() && stats.duplicates_acknowledged >= 1 {
            Ok(stats)
        } else {
            Err(format!("handed over {:?}, {stats:?}", again.events))
        }
    });
    assert_eq!(again.events, ["Y"], "X was acknowledged by the first run");
    assert_eq!(stats.duplicates_acknowledged, 1);
    second.ack(&again.tokens);
}
