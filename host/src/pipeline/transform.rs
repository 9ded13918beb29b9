//! The transform stage: the version that runs, the one before it (restored
//! when the new one is quarantined), the count of failing batches that
//! quarantines a version, and the native stand-in the benchmark's baseline
//! runs instead of WASM.
//!
//! The version bookkeeping ([`Versions`]) is generic over the plugin type,
//! so its rules are tested here without building a guest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::EventBatch;
use crate::deadletter::Reason;
use crate::plugin::contract::Kind;
use crate::plugin::reload::{Outcome, ReloadOutcome};
use crate::plugin::runtime::PluginRuntime;
use crate::plugin::transform::{Rejected, TransformOutput, TransformPlugin};

/// A transform written in plain Rust, called with the same batches.
pub type NativeTransform = Box<dyn FnMut(&EventBatch) -> TransformOutput>;

/// The running version of a plugin, the one before it, and whether it is
/// quarantined.
pub(super) struct Versions<P> {
    current: Option<P>,
    previous: Option<P>,
    /// Consecutive batches in which the current version failed.
    failing: u32,
    /// How many failing batches in a row quarantine a version.
    after: u32,
    /// Set when the current version was quarantined with no earlier one to
    /// go back to: it is not called until a new version is loaded.
    suspended: bool,
}

/// What a quarantine did.
#[derive(Debug, PartialEq)]
pub(super) enum Quarantine<P> {
    /// The version before runs again; `bad` is no longer needed.
    Restored { bad: P },
    /// There was no earlier version: the bad one stays loaded but is not
    /// called; its events go to the dead letters.
    Suspended,
}

impl<P> Versions<P> {
    pub fn new(current: Option<P>, after: u32) -> Self {
        Self { current, previous: None, failing: 0, after: after.max(1), suspended: false }
    }

    /// The version to call, unless there is none or it is suspended.
    pub fn running(&mut self) -> Option<&mut P> {
        if self.suspended {
            return None;
        }
        self.current.as_mut()
    }

    pub fn current(&self) -> Option<&P> {
        self.current.as_ref()
    }

    /// Makes `new` the running version (the batch after runs on it); the
    /// one it replaces is kept to go back to. Returns the version older than
    /// that, no longer needed.
    pub fn swap(&mut self, new: P) -> Option<P> {
        self.failing = 0;
        self.suspended = false;
        let replaced = self.current.replace(new);
        std::mem::replace(&mut self.previous, replaced)
    }

    /// Records whether the running version failed in a batch; after
    /// `after` failing batches in a row it is quarantined.
    pub fn record(&mut self, failed: bool) -> Option<Quarantine<P>> {
        if self.suspended || self.current.is_none() {
            return None;
        }
        self.failing = if failed { self.failing + 1 } else { 0 };
        if self.failing < self.after {
            return None;
        }
        self.failing = 0;
        match self.previous.take() {
            Some(previous) => Some(Quarantine::Restored { bad: self.current.replace(previous).expect("checked above") }),
            None => {
                self.suspended = true;
                Some(Quarantine::Suspended)
            }
        }
    }
}

/// A batch's transform result.
pub(super) struct Transformed {
    pub out: TransformOutput,
    pub took: Duration,
    /// Who produced it (`name@hash`, or `native`), for dead letters.
    pub plugin: String,
}

pub(super) struct TransformStage {
    runtime: Arc<PluginRuntime>,
    versions: Versions<TransformPlugin>,
    native: Option<NativeTransform>,
}

impl TransformStage {
    pub fn new(
        runtime: Arc<PluginRuntime>,
        plugin: Option<TransformPlugin>,
        quarantine_after: u32,
        native: Option<NativeTransform>,
    ) -> Self {
        Self { runtime, versions: Versions::new(plugin, quarantine_after), native }
    }

    /// The running version's `name@hash` (the suspended one's, while it is).
    pub fn label(&self) -> Option<String> {
        self.versions.current().map(|t| t.source.label())
    }

    /// Runs the transform on a batch; `None` when there is none.
    pub fn run(&mut self, events: &mut EventBatch) -> Option<Transformed> {
        let called = Instant::now();
        let (out, plugin) = match (&mut self.native, self.versions.current.is_some()) {
            (Some(native), _) => (native(events), "native".to_string()),
            (None, false) => return None,
            (None, true) => {
                let label = self.label().unwrap_or_default();
                match self.versions.running() {
                    Some(t) => (t.transform(&self.runtime, events), label),
                    None => (quarantined(events.len(), &label), label),
                }
            }
        };
        Some(Transformed { out, took: called.elapsed(), plugin })
    }

    /// Swaps in a new version; returns the one no longer needed.
    pub fn swap(&mut self, new: TransformPlugin) -> Option<TransformPlugin> {
        self.versions.swap(new)
    }

    /// After a batch: quarantines the version after too many failing
    /// batches in a row. Returns what to report, and the version to retire.
    pub fn after_batch(&mut self, failed: bool) -> Option<(ReloadOutcome, Option<TransformPlugin>)> {
        if self.native.is_some() {
            return None;
        }
        let after = self.versions.after;
        // Labels are only made once a version is quarantined, not per batch.
        let (bad, message, retired) = match self.versions.record(failed)? {
            Quarantine::Suspended => (
                self.label().unwrap_or_default(),
                format!(
                    "it failed {after} batches in a row and there is no earlier version to go back to: it is not called \
                     until a new version is loaded (runnel reload, an upload, or a changed plugin file); until then \
                     events go to the dead letters, to re-drive with `runnel dlq replay`"
                ),
                None,
            ),
            Quarantine::Restored { bad } => {
                let message = format!("it failed {after} batches in a row; {} is running again", self.label().unwrap_or_default());
                (bad.source.label(), message, Some(bad))
            }
        };
        let outcome = ReloadOutcome { kind: Kind::Transform, plugin: bad, outcome: Outcome::Quarantined, message, load_ms: 0.0 };
        Some((outcome, retired))
    }
}

/// A batch the quarantined transform `plugin` is not called on: every event
/// a dead letter, to replay once a fixed version runs.
fn quarantined(n: usize, plugin: &str) -> TransformOutput {
    let reason = format!("not run: the transform {plugin} is quarantined; load a fixed version, then `runnel dlq replay`");
    let rejected = (0..n as u32).map(|source| Rejected { source, code: Reason::Quarantined, reason: reason.clone() }).collect();
    TransformOutput { rejected, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_failing_batch_after_batch_gives_way_to_the_one_before() {
        let mut v = Versions::new(Some("v1"), 3);
        assert_eq!(v.swap("v2"), None);
        assert_eq!(v.record(true), None);
        assert_eq!(v.record(true), None);
        assert_eq!(v.record(true), Some(Quarantine::Restored { bad: "v2" }));
        assert_eq!(v.running(), Some(&mut "v1"));
        // v1 has nothing to go back to now: three more failures suspend it.
        for _ in 0..2 {
            assert_eq!(v.record(true), None);
        }
        assert_eq!(v.record(true), Some(Quarantine::Suspended));
        assert_eq!(v.running(), None);
        assert_eq!(v.current(), Some(&"v1"), "suspended, not unloaded");
        assert_eq!(v.record(true), None, "a suspended version is not counted");
    }

    #[test]
    fn a_good_batch_resets_the_count() {
        let mut v = Versions::new(Some("v1"), 2);
        for _ in 0..10 {
            assert_eq!(v.record(true), None);
            assert_eq!(v.record(false), None);
        }
        assert_eq!(v.running(), Some(&mut "v1"));
    }

    #[test]
    fn a_new_version_lifts_a_suspension_and_the_oldest_is_retired() {
        let mut v = Versions::new(Some("v1"), 1);
        assert_eq!(v.record(true), Some(Quarantine::Suspended));
        assert_eq!(v.swap("v2"), None);
        assert_eq!(v.running(), Some(&mut "v2"));
        assert_eq!(v.swap("v3"), Some("v1"), "only one earlier version is kept");
        assert_eq!(v.record(true), Some(Quarantine::Restored { bad: "v3" }));
        assert_eq!(v.current(), Some(&"v2"));
    }

    #[test]
    fn without_a_transform_nothing_is_quarantined() {
        let mut v: Versions<&str> = Versions::new(None, 1);
        assert_eq!(v.record(true), None);
        assert_eq!(v.running(), None);
    }

    #[test]
    fn a_quarantined_batch_is_all_dead_letters_with_the_reason() {
        let out = quarantined(3, "bad@1234");
        assert_eq!(out.rejected.iter().map(|r| r.source).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(out.rejected.iter().all(|r| r.code == Reason::Quarantined && r.reason.contains("bad@1234")));
        assert!(out.emitted.is_empty());
    }
}
