//! The Pub/Sub source: a streaming pull on a subscription with flow control
//! (at most `max_outstanding_messages` / `_bytes` unacknowledged, so memory
//! stays bounded whatever the backlog). The client library extends the lease
//! of every message whose handler is held; the pipeline acknowledges a
//! message only once every pane it contributed to is written (see
//! `pipeline::AckTracker`), so delivery is at-least-once; the duplicate
//! check ([`super::dedup`]) makes the count exactly once within its bound:
//! a message delivered again is handed to the pipeline once.
//!
//! `streams` streaming pulls feed one channel, so they share the duplicate
//! check; each has an equal share of the flow-control budget.
//!
//! The client's `MessageStream::next` must never be cancelled: opening the
//! stream waits for its first response inside `next`, so a timeout around it
//! drops a stream the server has just filled (those messages then wait out
//! their ack deadline) and opens a new one, which the emulator answers
//! slowly. Polling it with a 200 ms timeout made runnel take in 50-80
//! messages/s of a 500/s stream. So one task owns the stream and forwards
//! each message into a channel, and `next_batch` waits on the channel, whose
//! `recv` is safe to time out.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::subscriber::handler::Handler;
use google_cloud_pubsub::subscriber::{ShutdownBehavior, ShutdownToken};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use smallvec::SmallVec;

use super::dedup::{Dedup, DedupStats, Id, Seen};
use super::{now_us, Origin, Source, SourceBatch};
use crate::batch::EventBatch;
use crate::cloud::Cloud;

/// How long one `next_batch` waits for a first message before returning an
/// empty batch (so timers and the idle watermark still advance).
const POLL: Duration = Duration::from_millis(200);
/// After a first message, how long to wait to fill the batch.
const LINGER: Duration = Duration::from_millis(20);
/// Before the first message, `stop_when_idle` waits at least this long: a
/// new subscriber can get nothing for a while (the emulator pauses one that
/// follows a closed subscriber on the same subscription for up to a minute).
const FIRST_MESSAGE_GRACE: Duration = Duration::from_secs(120);

/// Pub/Sub source settings.
#[derive(Clone, Debug)]
pub struct PubsubOptions {
    pub subscription: String,
    pub max_outstanding_messages: i64,
    pub max_outstanding_bytes: i64,
    /// Stop (drain) once no message has arrived for this long.
    pub stop_when_idle: Option<Duration>,
    /// Lease extensions are at most this long (redelivery time after a crash).
    pub lease_extension: Duration,
    /// The client keeps extending a held message's lease for this long in
    /// all (see `PipelineConfig::max_hold`).
    pub max_lease: Duration,
    /// Messages with the same value of this attribute are one message.
    pub id_attribute: Option<String>,
    /// Acknowledged ids are remembered this long, at most `dedup_max_ids`.
    pub dedup_window: Duration,
    pub dedup_max_ids: usize,
    /// Acknowledged ids are journalled here too, for the next run.
    pub dedup_file: Option<std::path::PathBuf>,
    /// Streaming pulls to open (at least 1).
    pub streams: usize,
}

struct Held {
    id: Id,
    handlers: SmallVec<[Handler; 1]>,
}

impl PubsubOptions {
    /// The settings a `[source] type = "pubsub"` with only a subscription
    /// has (the pipeline file's defaults, from `config`).
    pub fn new(subscription: impl Into<String>) -> Self {
        use crate::config as c;
        Self {
            subscription: subscription.into(),
            max_outstanding_messages: c::default_max_outstanding_messages(),
            max_outstanding_bytes: c::default_max_outstanding_mib() << 20,
            stop_when_idle: None,
            lease_extension: Duration::from_secs(c::default_lease_extension_s()),
            // The client library's own default.
            max_lease: Duration::from_secs(3600),
            id_attribute: None,
            dedup_window: Duration::from_secs_f64(c::default_dedup_window_s()),
            dedup_max_ids: c::default_dedup_max_ids(),
            dedup_file: None,
            streams: c::default_streams(),
        }
    }
}

/// What the forwarding task hands over: a message and its handler, or the
/// stream's permanent error.
type Delivery = google_cloud_pubsub::Result<(Message, Handler)>;

pub struct PubsubSource {
    rt: &'static tokio::runtime::Runtime,
    /// Messages the stream's task has received, in order. Unbounded because
    /// the client's flow control already bounds how many are outstanding.
    deliveries: UnboundedReceiver<Delivery>,
    /// One per stream; taken by the first hand-back (a stop, or the drop after it).
    shutdown: Vec<ShutdownToken>,
    /// Held messages by ack token: their id and every delivery's handler
    /// (a message delivered again while held keeps each handle, and all are
    /// acknowledged together: the newest is the one the service honours,
    /// and a nack of an older one could make it deliver the message again).
    handlers: HashMap<u64, Held>,
    dedup: Dedup,
    next_token: u64,
    options: PubsubOptions,
    name: Arc<str>,
    started: Instant,
    attribute: Option<String>,
    last_message: Option<Instant>,
    received: u64,
}

impl PubsubSource {
    pub fn connect(cloud: &Cloud, options: PubsubOptions) -> Result<Self> {
        let rt = crate::cloud::runtime()?;
        let mut dedup = Dedup::new(options.dedup_window, options.dedup_max_ids);
        if let Some(file) = &options.dedup_file {
            dedup = dedup.with_journal(file)?;
        }
        let path = cloud.subscription_path(&options.subscription);
        let streams = options.streams.max(1);
        // One budget: each stream gets its share (rounded up).
        let share = |total: i64| (total + streams as i64 - 1) / streams as i64;
        let subscriber = rt.block_on(cloud.subscriber())?;
        let (tx, deliveries) = unbounded_channel();
        let mut shutdown = Vec::with_capacity(streams);
        // Building a stream spawns its lease loop on the runtime.
        let _in_runtime = rt.enter();
        for _ in 0..streams {
            let mut stream = subscriber
                .subscribe(path.clone())
                .set_max_outstanding_messages(share(options.max_outstanding_messages))
                .set_max_outstanding_bytes(share(options.max_outstanding_bytes))
                .set_max_lease_extension(options.lease_extension)
                .set_max_lease(options.max_lease)
                // On close, whatever the client still leases (delivered
                // to us or not) is handed back at once.
                .set_shutdown_behavior(ShutdownBehavior::NackImmediately)
                .build();
            shutdown.push(stream.shutdown_token());
            let tx = tx.clone();
            // Ends when the stream ends (shutdown, or after a permanent
            // error) or when the source is dropped.
            rt.spawn(async move {
                while let Some(item) = stream.next().await {
                    if tx.send(item).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self {
            rt,
            deliveries,
            shutdown,
            handlers: HashMap::new(),
            dedup,
            next_token: 0,
            name: format!("pubsub:{}", options.subscription).into(),
            options,
            started: Instant::now(),
            attribute: None,
            last_message: None,
            received: 0,
        })
    }

    /// Messages received so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}

impl Source for PubsubSource {
    fn next_batch(&mut self, max: usize) -> Result<Option<SourceBatch>> {
        let mut events = EventBatch::default();
        let mut publish_times = Vec::new();
        let mut ids = Vec::new();
        let mut tokens = Vec::new();
        let mut attributes = Vec::new();
        let deliveries = &mut self.deliveries;
        let received: Vec<_> = self.rt.block_on(async {
            let mut out = Vec::new();
            let mut deadline = tokio::time::Instant::now() + POLL;
            while out.len() < max {
                match tokio::time::timeout_at(deadline, deliveries.recv()).await {
                    Ok(Some(item)) => {
                        if out.is_empty() {
                            deadline = tokio::time::Instant::now() + LINGER;
                        }
                        out.push(item);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            out
        });
        let now = Instant::now();
        let delivered = !received.is_empty();
        for item in received {
            let (message, handler) = item.with_context(|| format!("streaming pull from {} failed", self.name))?;
            let published = message.publish_time.map(|t| t.seconds() * 1_000_000 + i64::from(t.nanos()) / 1_000);
            let id = match self.options.id_attribute.as_ref().and_then(|name| message.attributes.get(name)) {
                Some(value) => Id::of(value),
                None => Id::of_parts(&message.message_id, published),
            };
            match self.dedup.check(id, now) {
                Seen::New => {}
                Seen::Held(token) => {
                    // Counted already, results not written yet: its ack
                    // waits for theirs.
                    self.handlers.get_mut(&token).expect("a held id has its handlers").handlers.push(handler);
                    continue;
                }
                Seen::Acknowledged => {
                    // Its results are written (and its id, if journalled,
                    // was synced before its first ack): done with this one too.
                    handler.ack();
                    continue;
                }
            }
            let token = self.next_token;
            self.next_token += 1;
            self.dedup.hold(id, token);
            self.handlers.insert(token, Held { id, handlers: smallvec::smallvec![handler] });
            events.push(&message.data);
            publish_times.push(published.unwrap_or_else(now_us));
            if let Some(name) = &self.attribute {
                attributes.push(message.attributes.get(name).cloned());
            }
            ids.push(message.message_id);
            tokens.push(token);
        }
        if delivered {
            self.last_message = Some(now);
        }
        if events.is_empty() {
            let idle_for = |idle: Duration| match self.last_message {
                Some(t) => t.elapsed() >= idle,
                None => self.started.elapsed() >= idle.max(FIRST_MESSAGE_GRACE),
            };
            if self.options.stop_when_idle.is_some_and(idle_for) {
                return Ok(None);
            }
        } else {
            self.received += events.len() as u64;
            tracing::debug!(
                messages = events.len(),
                received = self.received,
                since_start_ms = self.started.elapsed().as_millis() as u64,
                "messages from the subscription"
            );
        }
        Ok(Some(SourceBatch {
            events,
            publish_times,
            origin: Origin::Messages { source: self.name.clone(), ids },
            ack_tokens: tokens,
            attributes,
        }))
    }

    fn want_attribute(&mut self, name: &str) {
        self.attribute = Some(name.to_string());
    }

    fn ack(&mut self, tokens: &[u64]) {
        let now = Instant::now();
        let mut done = Vec::with_capacity(tokens.len());
        for t in tokens {
            if let Some(held) = self.handlers.remove(t) {
                self.dedup.acknowledged(held.id, now);
                done.push(held.handlers);
            }
        }
        // The ids are on disk before the service hears of the acks: a crash
        // in between brings back messages the next run still recognises.
        self.dedup.sync(now);
        for h in done.into_iter().flatten() {
            h.ack();
        }
    }

    fn dedup_stats(&self) -> Option<DedupStats> {
        Some(self.dedup.stats(Instant::now()))
    }

    fn unacked(&self) -> usize {
        self.handlers.len()
    }

    fn quiet_for(&self) -> Option<Duration> {
        self.last_message.map(|t| t.elapsed())
    }

    fn close(&mut self) -> usize {
        self.hand_back()
    }
}

/// How long closing waits for the hand-back to reach Pub/Sub.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Three of the client's ack/nack flush periods.
const NACK_FLUSH: Duration = Duration::from_millis(300);

impl PubsubSource {
    fn hand_back(&mut self) -> usize {
        if self.shutdown.is_empty() {
            return 0;
        }
        let tokens = std::mem::take(&mut self.shutdown);
        let mut n = self.handlers.len();
        for (_, held) in self.handlers.drain() {
            self.dedup.released(held.id);
            for h in held.handlers {
                h.nack();
            }
        }
        // Received by the stream's task but not yet handed to the pipeline.
        while let Ok(item) = self.deliveries.try_recv() {
            if let Ok((_, h)) = item {
                h.nack();
                n += 1;
            }
        }
        // Let the client's lease loop send them (it flushes every 100 ms)
        // while the stream is still open: the emulator ignores nacks of a
        // stream's messages once the stream has closed, and they would come
        // back only when their lease ran out. Then close, waiting (bounded)
        // for whatever is still pending, so an exit right after loses none.
        let _ = self.rt.block_on(async {
            if n > 0 {
                tokio::time::sleep(NACK_FLUSH).await;
            }
            // All streams close at once: each on a task of its own.
            let closing: Vec<_> = tokens.into_iter().map(|t| tokio::spawn(async move { t.shutdown().await })).collect();
            tokio::time::timeout(CLOSE_TIMEOUT, async {
                for c in closing {
                    let _ = c.await;
                }
            })
            .await
        });
        n
    }
}

impl Drop for PubsubSource {
    fn drop(&mut self) {
        // Unacknowledged messages are redelivered after their deadline:
        // nack them so that happens now rather than later.
        self.hand_back();
    }
}
