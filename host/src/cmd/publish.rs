//! `runnel publish`: the click-stream generator. Publishes NDJSON events
//! (one message per line, `.gz` read too) to the pipeline's Pub/Sub topic,
//! optionally at a steady rate and in a loop, with a progress bar.

use anyhow::{Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cloud::Cloud;
use crate::config::{PipelineConfig, SourceConfig};
use crate::source::file::FileSource;
use crate::source::Source;

/// The attribute `runnel publish` carries a message's unique id in when the
/// pipeline file names none (`[source] id_attribute`).
pub const DEFAULT_ID_ATTRIBUTE: &str = "runnel_id";

/// Unique ids for one `runnel publish`: a prefix that differs between runs
/// (a second `runnel publish` of the same file is new events, as a `--loop`
/// pass is), then the message's number in this run.
struct MessageIds {
    prefix: String,
}

impl MessageIds {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let run = blake3::hash(format!("{nanos}/{}", std::process::id()).as_bytes());
        Self { prefix: run.to_hex()[..16].to_string() }
    }

    fn id(&self, n: u64) -> String {
        format!("{}-{n}", self.prefix)
    }
}

pub struct PublishOptions<'a> {
    pub file: &'a Path,
    /// Messages per second (none: as fast as possible).
    pub rate: Option<f64>,
    /// Start again at the end of the file, until `limit`.
    pub repeat: bool,
    pub limit: Option<u64>,
    pub quiet: bool,
    /// Rewrite each event's `event_timestamp` to the time it is sent.
    pub retime: bool,
}

/// Publishes; returns the number of messages published.
pub fn run(config: &Path, opts: &PublishOptions) -> Result<u64> {
    let cfg = PipelineConfig::load(config)?;
    let SourceConfig::Pubsub { topic: Some(topic), id_attribute, .. } = &cfg.source else {
        anyhow::bail!("[source] must be type = \"pubsub\" with a topic to publish to");
    };
    let id_attribute = id_attribute.as_deref().unwrap_or(DEFAULT_ID_ATTRIBUTE);
    let ids = MessageIds::new();
    let cloud = Cloud::resolve(&cfg.cloud)?;
    let rt = crate::cloud::runtime()?;
    let bar = if opts.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = match opts.limit {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} messages {per_sec} [{elapsed_precise}] {msg}")
                .expect("a valid template"),
        );
        bar
    };
    rt.block_on(async {
        let publisher = cloud.publisher(topic).await?;
        // Ctrl-C stops sending; what was sent is confirmed and counted, so
        // the count printed is what the pipeline should see.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stopping.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let stopped = || stop.load(std::sync::atomic::Ordering::SeqCst);
        let started = Instant::now();
        let mut sent: u64 = 0;
        'outer: loop {
            let mut source = FileSource::open(opts.file)?;
            let mut any = false;
            while let Some(batch) = source.next_batch(500)? {
                let mut pending = Vec::with_capacity(batch.events.len());
                for i in 0..batch.events.len() {
                    if opts.limit.is_some_and(|l| sent >= l) || stopped() {
                        break;
                    }
                    if let Some(rate) = opts.rate {
                        let due = Duration::from_secs_f64(sent as f64 / rate);
                        let elapsed = started.elapsed();
                        if due > elapsed {
                            tokio::time::sleep(due - elapsed).await;
                        }
                    }
                    let event = batch.events.get(i);
                    let data = if opts.retime {
                        crate::source::synthetic::rewrite_timestamp(event, crate::source::now_us())
                    } else {
                        event.to_vec()
                    };
                    // The client retries a failed publish with this same
                    // message, attribute and all: a pipeline with
                    // `id_attribute` counts it once.
                    let message = google_cloud_pubsub::model::Message::new()
                        .set_data(data)
                        .set_attributes([(id_attribute.to_string(), ids.id(sent))]);
                    pending.push(publisher.publish(message));
                    sent += 1;
                    any = true;
                }
                for p in pending {
                    p.await.with_context(|| format!("publishing to {} failed", cloud.topic_path(topic)))?;
                    bar.inc(1);
                }
                if opts.limit.is_some_and(|l| sent >= l) || stopped() {
                    break 'outer;
                }
            }
            if !opts.repeat || !any {
                break;
            }
        }
        bar.finish_with_message(format!("to {}", cloud.topic_path(topic)));
        Ok(sent)
    })
}
