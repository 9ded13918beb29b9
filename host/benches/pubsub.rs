//! Pub/Sub ingest against the emulator: runnel's consume rate next to the
//! emulator's own ceiling, measured in the same run by a plain reference
//! consumer (the same client library, streaming pull, ack on receipt), for
//! a backlog published before the consumers start; then, live, runnel's
//! consume rate while messages are published at a fixed rate (as in the
//! workshop), next to that rate. The live case is the one a cancelled
//! stream slowed to 50-80 of 500 messages/s (source/pubsub.rs).
//!
//! Needs the emulator (`eval "$(scripts/emulators.sh start)"`); skips
//! itself without one.
//!
//!   cargo bench -p runnel --bench pubsub            # 20,000 messages; live: 10,000 at 500/s
//!   cargo bench -p runnel --bench pubsub -- --smoke # 2,000; live: 1,000 at 500/s

use runnel::cloud::{Cloud, CloudConfig};
use runnel::config::PipelineConfig;
use runnel::pipeline::{Overrides, Pipeline};
use runnel::source::pubsub::{PubsubOptions, PubsubSource};
use runnel::source::{Source, SourceBatch};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When the first and the last of the events were handed out.
type Span = Arc<Mutex<(Option<Instant>, Option<Instant>)>>;

/// Hands out `limit` events of another source, then ends.
struct FirstN<S> {
    inner: S,
    limit: u64,
    seen: u64,
    span: Span,
}

impl<S: Source> Source for FirstN<S> {
    fn next_batch(&mut self, max: usize) -> anyhow::Result<Option<SourceBatch>> {
        if self.seen >= self.limit {
            self.span.lock().unwrap().1.get_or_insert_with(Instant::now);
            return Ok(None);
        }
        let batch = self.inner.next_batch(max)?;
        if let Some(b) = &batch {
            if !b.events.is_empty() {
                self.span.lock().unwrap().0.get_or_insert_with(Instant::now);
            }
            self.seen += b.events.len() as u64;
        }
        Ok(batch)
    }
    fn ack(&mut self, tokens: &[u64]) {
        self.inner.ack(tokens)
    }
    fn unacked(&self) -> usize {
        self.inner.unacked()
    }
}

fn rest(host: &str, path: &str, body: serde_json::Value) {
    ureq::put(&format!("http://{host}/v1/projects/bench-project/{path}")).send_json(body).expect("the emulator answers");
}

/// What the duplicate check costs one message on its own (digest, check,
/// hold, acknowledge, forget), in ns: the part of the Pub/Sub path the
/// exactly-once work added, too small to see against the emulator's rate.
fn dedup_ns_per_message(n: u64) -> f64 {
    use runnel::source::dedup::{Dedup, Id, Seen};
    let mut dedup = Dedup::new(Duration::from_millis(100), 1_000_000);
    let ids: Vec<String> = (0..n).map(|i| format!("{}", 10_000_000_000_000_000u64 + i * 7919)).collect();
    let start = Instant::now();
    let mut new = 0u64;
    for (token, id) in ids.iter().enumerate() {
        let now = Instant::now();
        let id = Id::of_parts(id, Some(1_533_279_652_346_001));
        if dedup.check(id, now) == Seen::New {
            new += 1;
            dedup.hold(id, token as u64);
            dedup.acknowledged(id, now);
        }
    }
    assert_eq!(new, n, "every id is new");
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let dedup_ns = dedup_ns_per_message(if smoke { 100_000 } else { 2_000_000 });
    let Ok(host) = std::env::var("PUBSUB_EMULATOR_HOST") else {
        println!("pubsub bench skipped: no PUBSUB_EMULATOR_HOST (run under `eval \"$(scripts/emulators.sh start)\"`)");
        return;
    };
    let n: u64 = if smoke { 2_000 } else { 20_000 };
    let tag = std::process::id();
    let topic = format!("bench-topic-{tag}");
    let (sub_ref, sub_runnel) = (format!("bench-ref-{tag}"), format!("bench-runnel-{tag}"));
    // The same backlog for runnel with 2 and 4 streaming pulls.
    let more_streams: Vec<(usize, String)> = [2, 4].iter().map(|&k| (k, format!("bench-runnel-{k}-streams-{tag}"))).collect();
    rest(&host, &format!("topics/{topic}"), serde_json::json!({}));
    for s in [&sub_ref, &sub_runnel].into_iter().chain(more_streams.iter().map(|(_, s)| s)) {
        rest(
            &host,
            &format!("subscriptions/{s}"),
            serde_json::json!({"topic": format!("projects/bench-project/topics/{topic}"), "ackDeadlineSeconds": 60}),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let config = pipeline_file(dir.path(), &topic, &sub_runnel);
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/floodit-events.ndjson.gz");
    let t = Instant::now();
    let opts = runnel::cmd::publish::PublishOptions { file: &events, rate: None, repeat: true, limit: Some(n), quiet: true, retime: false };
    runnel::cmd::publish::run(&config, &opts).unwrap();
    let publish_rate = n as f64 / t.elapsed().as_secs_f64();

    // The reference consumer: receive and ack, nothing else.
    let cloud = Cloud::resolve(&CloudConfig { project: Some("bench-project".into()), ..Default::default() }).unwrap();
    let rt = runnel::cloud::runtime().unwrap();
    let reference_rate = rt.block_on(async {
        let subscriber = cloud.subscriber().await.unwrap();
        let mut stream = subscriber.subscribe(cloud.subscription_path(&sub_ref)).set_max_outstanding_messages(50_000).build();
        let mut got = 0u64;
        let mut first = None;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(120), stream.next()).await {
                Ok(Some(Ok((_message, handler)))) => {
                    first.get_or_insert_with(Instant::now);
                    handler.ack();
                    got += 1;
                }
                other => panic!("the reference consumer stopped after {got} messages: {:?}", other.is_err()),
            }
        }
        n as f64 / first.unwrap().elapsed().as_secs_f64()
    });

    // runnel: the workshop pipeline (add-weekday, count per user per minute).
    let runnel_rate = consume(&cloud, &config, &sub_runnel, n, 1);
    let streams_rates: Vec<(usize, f64)> = more_streams.iter().map(|(k, sub)| (*k, consume(&cloud, &config, sub, n, *k))).collect();

    // Live: runnel waits on an empty subscription; messages are published
    // at a fixed rate meanwhile.
    let (n_live, live_rate) = (if smoke { 1_000 } else { 10_000 }, 500.0);
    let (topic_live, sub_live) = (format!("bench-live-topic-{tag}"), format!("bench-live-{tag}"));
    rest(&host, &format!("topics/{topic_live}"), serde_json::json!({}));
    rest(
        &host,
        &format!("subscriptions/{sub_live}"),
        serde_json::json!({"topic": format!("projects/bench-project/topics/{topic_live}"), "ackDeadlineSeconds": 60}),
    );
    let live_dir = tempfile::tempdir().unwrap();
    let live_config = pipeline_file(live_dir.path(), &topic_live, &sub_live);
    let publisher = {
        let (config, events) = (live_config.clone(), events.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            let t = Instant::now();
            let opts = runnel::cmd::publish::PublishOptions {
                file: &events,
                rate: Some(live_rate),
                repeat: true,
                limit: Some(n_live),
                quiet: true,
                retime: false,
            };
            runnel::cmd::publish::run(&config, &opts).unwrap();
            n_live as f64 / t.elapsed().as_secs_f64()
        })
    };
    let runnel_live = consume(&cloud, &live_config, &sub_live, n_live, 1);
    let published_live = publisher.join().unwrap();

    println!("| Pub/Sub ingest against the emulator ({n} Flood It messages) | msg/s |");
    println!("|---|---|");
    println!("| publish (runnel publish) | {publish_rate:.0} |");
    println!("| reference consumer: streaming pull, ack on receipt (the emulator's ceiling) | {reference_rate:.0} |");
    println!("| runnel: add-weekday + count per user per minute, ack after the panes are written | {runnel_rate:.0} |");
    println!("| runnel / reference | {:.2} |", runnel_rate / reference_rate);
    for (k, rate) in &streams_rates {
        println!("| runnel, `streams = {k}` (the same backlog) | {rate:.0} |");
        println!("| runnel, {k} streams / 1 stream | {:.2} |", rate / runnel_rate);
    }
    println!("| live: published at a fixed rate ({n_live} messages) | {published_live:.0} |");
    println!("| live: runnel, first to last message | {runnel_live:.0} |");
    println!("| live: runnel / publish rate | {:.2} |", runnel_live / published_live);
    println!();
    println!(
        "The duplicate check alone: {dedup_ns:.0} ns per message (BLAKE3 digest of id and publish time, check, hold, \
         acknowledge, forget after the bound); at the emulator's {runnel_rate:.0} msg/s per stream that is {:.3} % of a \
         core.",
        dedup_ns * runnel_rate / 1e7
    );
}

/// The workshop pipeline (add-weekday, count per user per minute, ack after
/// the panes are written) on `topic` / `subscription`, written into `dir`.
fn pipeline_file(dir: &std::path::Path, topic: &str, subscription: &str) -> std::path::PathBuf {
    let config = dir.join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "[cloud]\nproject = \"bench-project\"\n[source]\ntype = \"pubsub\"\ntopic = \"{topic}\"\nsubscription = \"{subscription}\"\n\
             [transform]\nplugin = \"add-weekday\"\n[watermark]\nmode = \"bounded\"\nmax_out_of_orderness_s = 10\nstartup_hold_s = 0\n\
             [sink]\ntype = \"null\"\n[dead_letters]\npath = \"dead.ndjson\"\n"
        ),
    )
    .unwrap();
    config
}

/// Runs the pipeline of `config` on the first `n` messages of
/// `subscription` with `streams` streaming pulls; its rate from the first
/// message to the n-th.
fn consume(cloud: &Cloud, config: &std::path::Path, subscription: &str, n: u64, streams: usize) -> f64 {
    let cfg = PipelineConfig::load(config).unwrap();
    let source = PubsubSource::connect(
        cloud,
        // The settings of a `[source]` that names only its subscription.
        PubsubOptions { streams, ..PubsubOptions::new(subscription) },
    )
    .unwrap();
    let span: Span = Arc::default();
    let limited = FirstN { inner: source, limit: n, seen: 0, span: span.clone() };
    let mut pipeline = Pipeline::with_overrides(&cfg, Overrides { source: Some(Box::new(limited)), ..Default::default() }).unwrap();
    let counters = pipeline.run().unwrap();
    assert!(counters.events_in >= n, "runnel got {} of {n} messages", counters.events_in);
    let (first, last) = *span.lock().unwrap();
    n as f64 / (last.unwrap() - first.unwrap()).as_secs_f64()
}
