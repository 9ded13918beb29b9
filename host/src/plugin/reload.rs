//! Hot reload: new plugin versions are compiled, checked against the
//! contract, instantiated, initialised and smoke-called on a loader thread,
//! off the event path; the pipeline swaps a ready one in between batches, so
//! the batch in flight finishes on the old version and no event is lost or
//! processed twice.
//!
//! - Requests come from the file watcher (a `.wasm` whose content changed and
//!   then stayed the same for one more poll, so a half-written file is never
//!   loaded), from the admin server (`runnel reload`, uploads) or from
//!   [`ReloadHandle::request`].
//! - A plugin that is not a component, implements the wrong contract, traps
//!   or refuses its configuration at start, or fails the smoke call is
//!   refused: the reason is logged, counted and answered to whoever asked,
//!   and the old version keeps running.
//! - What happens to an aggregate's open windows is decided by the pipeline
//!   (see `plugin::handover`).

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::aggregate::AggregatePlugin;
use super::contract::Kind;
use super::runtime::PluginRuntime;
use super::transform::{FieldsSpec, TransformPlugin};
use super::PluginSource;
use crate::accumulate::{Accumulators, EventBatch};
use crate::window::AccOp;

/// What became of a plugin version: serialised (lowercase) for the admin
/// API and the status, compared as a value everywhere else.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It runs from the next batch on.
    Swapped,
    /// That version already runs.
    Unchanged,
    /// Not loaded; the running version stays.
    Refused,
    /// It kept failing on the stream and was taken out (see `pipeline`).
    Quarantined,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Swapped => "swapped",
            Outcome::Unchanged => "unchanged",
            Outcome::Refused => "refused",
            Outcome::Quarantined => "quarantined",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of a reload request, as told to whoever asked.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReloadOutcome {
    /// `transform` or `aggregate`.
    pub kind: Kind,
    /// The new version: `name@hash`.
    pub plugin: String,
    pub outcome: Outcome,
    /// What happened, in words (the refusal's reason).
    pub message: String,
    /// Time spent compiling and checking it, off the event path.
    pub load_ms: f64,
}

/// A new version to load, and where to send the outcome.
pub struct ReloadRequest {
    pub kind: Kind,
    pub source: PluginSource,
    pub reply: Option<Sender<ReloadOutcome>>,
}

/// A loaded plugin, ready to swap in.
pub enum NewPlugin {
    Transform(Box<TransformPlugin>),
    Aggregate(Box<AggregatePlugin>),
}

/// A loader thread's answer.
pub struct Loaded {
    pub kind: Kind,
    /// `name@hash` of the version that was asked for.
    pub label: String,
    /// The plugin, or why it was refused.
    pub plugin: Result<NewPlugin, String>,
    pub load_time: Duration,
    pub reply: Option<Sender<ReloadOutcome>>,
}

impl Loaded {
    /// What happened, for the requester and the history.
    pub fn outcome(&self, outcome: Outcome, message: String) -> ReloadOutcome {
        ReloadOutcome { kind: self.kind, plugin: self.label.clone(), outcome, message, load_ms: self.load_time.as_secs_f64() * 1e3 }
    }

    /// Tells the requester (if any) what happened.
    pub fn answer(&mut self, outcome: &ReloadOutcome) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(outcome.clone());
        }
    }
}

/// Sends reload requests to a pipeline.
#[derive(Clone)]
pub struct ReloadHandle {
    tx: Sender<ReloadRequest>,
    /// Requests sent and not yet loaded or refused by the loader thread.
    loading: Arc<AtomicUsize>,
    /// Versions the loader has handed to the pipeline (loaded or refused).
    delivered: Arc<AtomicUsize>,
}

impl ReloadHandle {
    /// Asks for `source` to replace the running plugin of its kind.
    pub fn request(&self, kind: Kind, source: PluginSource) {
        self.send(ReloadRequest { kind, source, reply: None });
    }

    fn send(&self, req: ReloadRequest) {
        self.loading.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(req).is_err() {
            self.loading.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// How many versions the loader has handed to the pipeline so far.
    pub fn delivered(&self) -> usize {
        self.delivered.load(Ordering::SeqCst)
    }

    /// How many requested versions the loader is still compiling or checking.
    pub fn loading(&self) -> usize {
        self.loading.load(Ordering::SeqCst)
    }

    /// Waits until the loader has handled every request (the pipeline swaps
    /// them in at its next batch), at most `timeout`.
    pub fn wait_loaded(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while self.loading() > 0 {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Like [`request`](Self::request); the outcome comes back on the
    /// returned channel once the pipeline has swapped or refused it (the
    /// channel closes unanswered if the pipeline ends first).
    pub fn request_with_reply(&self, kind: Kind, source: PluginSource) -> Receiver<ReloadOutcome> {
        let (reply, rx) = channel();
        self.send(ReloadRequest { kind, source, reply: Some(reply) });
        rx
    }
}

/// The loader thread and the channel its results come back on.
pub struct Reloader {
    handle: ReloadHandle,
    loaded: Receiver<Loaded>,
    /// Retired plugin versions go here to be dropped on the loader's side:
    /// tearing down an instance (unmapping its memory) is not free, and
    /// must not stall the event path.
    retired: Sender<Box<dyn Send>>,
    /// Watchers hold only a weak reference: once the pipeline (and this)
    /// is gone, they stop instead of polling its files for ever.
    alive: Arc<()>,
}

impl Reloader {
    /// Starts the loader thread. `transform_config` / `aggregate_config` are
    /// the config strings new versions are initialised with.
    pub fn start(runtime: Arc<PluginRuntime>, fields: FieldsSpec, transform_config: String, aggregate_config: String) -> Result<Self> {
        let (tx, rx) = channel::<ReloadRequest>();
        let (done_tx, done_rx) = channel::<Loaded>();
        let loading = Arc::new(AtomicUsize::new(0));
        let in_flight = loading.clone();
        let delivered = Arc::new(AtomicUsize::new(0));
        let handed = delivered.clone();
        std::thread::Builder::new()
            .name("runnel-reload".into())
            .spawn(move || {
                for req in rx {
                    let started = Instant::now();
                    let label = req.source.label();
                    let plugin = match req.kind {
                        Kind::Transform => {
                            load_transform(&runtime, req.source, &transform_config, &fields).map(|p| NewPlugin::Transform(Box::new(p)))
                        }
                        Kind::Aggregate => {
                            load_aggregate(&runtime, req.source, &aggregate_config).map(|p| NewPlugin::Aggregate(Box::new(p)))
                        }
                    };
                    let loaded = Loaded {
                        kind: req.kind,
                        label,
                        plugin: plugin.map_err(|e| format!("{e:#}")),
                        load_time: started.elapsed(),
                        reply: req.reply,
                    };
                    let gone = done_tx.send(loaded).is_err();
                    handed.fetch_add(1, Ordering::SeqCst);
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    if gone {
                        break;
                    }
                }
            })
            .context("cannot start the plugin loader thread")?;
        let (retired, graveyard) = channel::<Box<dyn Send>>();
        std::thread::Builder::new()
            .name("runnel-retire".into())
            .spawn(move || graveyard.into_iter().for_each(drop))
            .context("cannot start the plugin retirement thread")?;
        Ok(Self { retired, handle: ReloadHandle { tx, loading, delivered }, loaded: done_rx, alive: Arc::new(()) })
    }

    pub fn handle(&self) -> ReloadHandle {
        self.handle.clone()
    }

    /// Drops a retired plugin version off the event path.
    pub fn retire<T: Send + 'static>(&self, old: T) {
        let _ = self.retired.send(Box::new(old));
    }

    /// Versions ready to swap in, or refused (never blocks).
    pub fn ready(&self) -> Vec<Loaded> {
        self.loaded.try_iter().collect()
    }

    /// Watches plugin files; a changed, stable file is sent for loading.
    /// The watcher ends with the pipeline (this `Reloader`); its thread is
    /// returned for tests.
    pub fn watch(&self, files: Vec<(Kind, PathBuf)>, every: Duration) -> Option<std::thread::JoinHandle<()>> {
        if files.is_empty() {
            return None;
        }
        let handle = self.handle();
        let alive = Arc::downgrade(&self.alive);
        let watcher = std::thread::Builder::new().name("runnel-watch".into()).spawn(move || {
            let hash = |p: &PathBuf| std::fs::read(p).ok().map(|b| (blake3::hash(&b), b));
            // A file whose size and modification time are those of the last
            // poll, with nothing pending, is not read again: a Python
            // plugin is 19 MB, polled four times a second.
            let stamp = |p: &PathBuf| std::fs::metadata(p).ok().map(|m| (m.len(), m.modified().ok()));
            let mut stamps: Vec<_> = files.iter().map(|(_, p)| stamp(p)).collect();
            let mut current: Vec<_> = files.iter().map(|(_, p)| hash(p).map(|h| h.0)).collect();
            let mut seen = current.clone();
            loop {
                std::thread::sleep(every);
                if alive.strong_count() == 0 {
                    break;
                }
                for (i, (kind, path)) in files.iter().enumerate() {
                    let now = stamp(path);
                    if now == stamps[i] && seen[i] == current[i] {
                        continue;
                    }
                    stamps[i] = now;
                    let Some((h, bytes)) = hash(path) else { continue };
                    // Load only once the content is the same on two polls.
                    if Some(h) == seen[i] && Some(h) != current[i] {
                        current[i] = Some(h);
                        tracing::info!(path = %path.display(), "plugin file changed; loading the new version");
                        handle.request(*kind, PluginSource::from_bytes(path.display().to_string(), bytes));
                    }
                    seen[i] = Some(h);
                }
            }
        });
        watcher.ok()
    }
}

/// Loads a transform and smoke-calls it: a batch of one empty object must
/// come back without a trap (refusing the event is fine).
pub fn load_transform(runtime: &PluginRuntime, source: PluginSource, config: &str, fields: &FieldsSpec) -> Result<TransformPlugin> {
    let mut plugin = TransformPlugin::load(runtime, source, config, fields)?;
    let mut batch = EventBatch::default();
    batch.push(b"{}");
    let out = plugin.transform(runtime, &batch);
    anyhow::ensure!(
        out.restarts == 0,
        "the plugin failed its smoke call (one `{{}}` event): {}",
        out.rejected.first().map(|r| r.reason.as_str()).unwrap_or("it trapped")
    );
    Ok(plugin)
}

/// The slot the smoke call uses; it is released again, so state imported
/// or added later starts fresh.
const SMOKE_SLOT: u32 = 0;

/// Loads an aggregate and smoke-calls it: add an empty object to a spare
/// accumulator, extract it, release it, all without a trap.
pub fn load_aggregate(runtime: &PluginRuntime, source: PluginSource, config: &str) -> Result<AggregatePlugin> {
    let mut plugin = AggregatePlugin::load(runtime, source, config)?;
    let mut batch = EventBatch::default();
    batch.push(b"{}");
    let ops =
        [AccOp::Add { slot: SMOKE_SLOT, event: 0 }, AccOp::Extract { slot: SMOKE_SLOT, pane: 0 }, AccOp::Release { slot: SMOKE_SLOT }];
    let mut panes = vec![crate::window::Pane::smoke()];
    plugin.apply(&ops, &mut batch, &mut panes).context("the plugin failed its smoke call (add, extract and release of one `{}` event)")?;
    Ok(plugin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watcher_ends_with_its_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugin.wasm");
        std::fs::write(&file, b"not yet a plugin").unwrap();
        let runtime = Arc::new(PluginRuntime::with_cache(Default::default(), None).unwrap());
        let fields = FieldsSpec { key_pointer: None, time_pointer: None, time_format: runnel_event::TimeFormat::Micros };
        let reloader = Reloader::start(runtime, fields, String::new(), String::new()).unwrap();
        let watcher = reloader.watch(vec![(Kind::Transform, file)], Duration::from_millis(5)).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(!watcher.is_finished(), "watching while the pipeline runs");
        drop(reloader);
        let until = Instant::now() + Duration::from_secs(5);
        while !watcher.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(watcher.is_finished(), "the watcher outlived its pipeline");
    }
}
