//! Swapping the aggregate of a running pipeline, and what happens to the
//! accumulators of its open windows.
//!
//! The rule:
//! - **Same state format** (the `state-format` tag both versions declare in
//!   `init`): every open window's accumulator is exported from the old
//!   instance and imported into the new one, and the new version takes over
//!   at once. If the new version refuses an accumulator, the swap is refused
//!   and the old version keeps running, state untouched.
//! - **Another state format**: the new version's code could not read the old
//!   accumulators, so windows open at the swap are *finished by the old
//!   version* (their adds, extracts and releases still go to it) while every
//!   window opened after the swap goes to the new one. The old instance is
//!   dropped when its last window is released. Merging windows (sessions)
//!   could merge an old window into a new one, so there such a swap is
//!   refused; restart the pipeline to change a session aggregate's format.
//!
//! The rules are generic over [`Version`], what a hand-over needs of an
//! aggregate, so they are tested here with a native count, without guests.

use anyhow::Result;

use super::aggregate::AggregatePlugin;
use crate::accumulate::{Accumulators, EventBatch, RejectedAdd};
use crate::window::{AccOp, Pane};

/// What a hand-over needs of an aggregate version.
pub trait Version: Accumulators {
    /// The tag of its accumulators' byte format.
    fn state_format(&self) -> &str;
    fn export_state(&mut self, slots: &[u32]) -> Result<Vec<Vec<u8>>>;
    fn import_state(&mut self, slots: &[u32], states: Vec<Vec<u8>>) -> Result<()>;
    /// `name@hash`, recorded in the panes it computes.
    fn label(&self) -> String;
}

impl Version for AggregatePlugin {
    fn state_format(&self) -> &str {
        AggregatePlugin::state_format(self)
    }

    fn export_state(&mut self, slots: &[u32]) -> Result<Vec<Vec<u8>>> {
        AggregatePlugin::export_state(self, slots)
    }

    fn import_state(&mut self, slots: &[u32], states: Vec<Vec<u8>>) -> Result<()> {
        AggregatePlugin::import_state(self, slots, states)
    }

    fn label(&self) -> String {
        self.source.label()
    }
}

/// The running aggregate, and the version still finishing its windows.
pub struct Aggregates<A: Version = AggregatePlugin> {
    current: A,
    retiring: Option<Retiring<A>>,
    /// Scratch: the operations routed to each version.
    old_ops: Vec<AccOp>,
    new_ops: Vec<AccOp>,
}

struct Retiring<A> {
    plugin: A,
    /// `name@hash`, recorded in the panes it computes.
    label: std::sync::Arc<str>,
    /// `owns[slot]`: the slot's accumulator lives in the old version.
    owns: Vec<bool>,
    /// How many slots it still owns.
    left: usize,
}

impl<A> Retiring<A> {
    fn owns(&self, slot: u32) -> bool {
        self.owns.get(slot as usize).copied().unwrap_or(false)
    }

    fn disown(&mut self, slot: u32) {
        if let Some(o) = self.owns.get_mut(slot as usize) {
            if std::mem::take(o) {
                self.left -= 1;
            }
        }
    }
}

impl<A: Version> Aggregates<A> {
    pub fn new(plugin: A) -> Self {
        Self { current: plugin, retiring: None, old_ops: Vec::new(), new_ops: Vec::new() }
    }

    /// The version new windows go to.
    pub fn current(&self) -> &A {
        &self.current
    }

    /// The version finishing the windows opened before the last swap, if any.
    pub fn retiring(&self) -> Option<(&A, usize)> {
        self.retiring.as_ref().map(|r| (&r.plugin, r.left))
    }

    /// Swaps in `new`; `live` are the slots of every open window. An error
    /// means the running version failed to export its accumulators: its
    /// state is lost.
    pub fn swap(&mut self, mut new: A, live: &[u32], merging: bool) -> Result<Handover<A>> {
        if new.state_format() == self.current.state_format() {
            let states = self.current.export_state(live)?;
            if let Err(e) = new.import_state(live, states) {
                let reason = format!("the new version could not take over the open windows' accumulators: {e:#}");
                return Ok(Handover::Refused { reason, new });
            }
            let old = std::mem::replace(&mut self.current, new);
            let message = format!("{} open windows carried over (state format {:?})", live.len(), self.current.state_format());
            return Ok(Handover::Swapped { message, retired: Some(old) });
        }
        if merging {
            let reason = format!(
                "its state format {:?} differs from the running version's {:?}, and merging windows \
                 (sessions) cannot be finished by two versions side by side; give the new version \
                 the same state format, or restart the pipeline to switch",
                new.state_format(),
                self.current.state_format()
            );
            return Ok(Handover::Refused { reason, new });
        }
        if let Some(r) = &self.retiring {
            let reason =
                format!("an earlier version ({}) is still finishing {} windows; try again once they close", r.plugin.label(), r.left);
            return Ok(Handover::Refused { reason, new });
        }
        let old = std::mem::replace(&mut self.current, new);
        if live.is_empty() {
            return Ok(Handover::Swapped { message: "no open windows to carry over".into(), retired: Some(old) });
        }
        let mut owns = vec![false; live.iter().max().map_or(0, |&m| m as usize + 1)];
        for &s in live {
            owns[s as usize] = true;
        }
        let message = format!(
            "state format changed ({:?} → {:?}): the {} windows open now are finished by the old version",
            old.state_format(),
            self.current.state_format(),
            live.len()
        );
        let label = old.label().into();
        self.retiring = Some(Retiring { plugin: old, label, owns, left: live.len() });
        Ok(Handover::Swapped { message, retired: None })
    }
}

/// What a swap of the aggregate did.
pub enum Handover<A = AggregatePlugin> {
    /// The new version runs; `retired` is a version no longer needed (none
    /// while the old one finishes its windows).
    Swapped { message: String, retired: Option<A> },
    /// Refused: the running version stays, `new` comes back to be dropped.
    Refused { reason: String, new: A },
}

impl<A: Version> Accumulators for Aggregates<A> {
    fn needs_payload(&self) -> bool {
        self.current.needs_payload() || self.retiring.as_ref().is_some_and(|r| r.plugin.needs_payload())
    }

    fn apply(&mut self, ops: &[AccOp], events: &mut EventBatch, panes: &mut [Pane]) -> Result<Vec<RejectedAdd>> {
        let Some(retiring) = &mut self.retiring else {
            return self.current.apply(ops, events, panes);
        };
        // Route each operation to the version that owns its slot. Operations
        // on different slots are independent, so each version may run its
        // share in one go; a released old slot that the engine reuses
        // belongs to the new version from then on.
        self.old_ops.clear();
        self.new_ops.clear();
        for op in ops {
            let slot = match op {
                AccOp::Add { slot, .. } | AccOp::Extract { slot, .. } | AccOp::Release { slot } => *slot,
                AccOp::Merge { target, .. } => *target,
            };
            if retiring.owns(slot) {
                self.old_ops.push(op.clone());
                if let AccOp::Release { slot } = op {
                    retiring.disown(*slot);
                }
            } else {
                self.new_ops.push(op.clone());
            }
        }
        let mut rejected = retiring.plugin.apply(&self.old_ops, events, panes)?;
        for op in &self.old_ops {
            if let AccOp::Extract { pane, .. } = op {
                panes[*pane as usize].computed_by = Some(retiring.label.clone());
            }
        }
        rejected.extend(self.current.apply(&self.new_ops, events, panes)?);
        if retiring.left == 0 {
            tracing::info!(plugin = %retiring.label, "the old aggregate version finished its last window");
            self.retiring = None;
        }
        Ok(rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accumulate::NativeCount;

    /// A count per slot, with a state format of its choosing.
    struct Count {
        name: &'static str,
        format: &'static str,
        count: NativeCount,
        refuses_imports: bool,
    }

    fn count(name: &'static str, format: &'static str) -> Count {
        Count { name, format, count: NativeCount::default(), refuses_imports: false }
    }

    impl Accumulators for Count {
        fn needs_payload(&self) -> bool {
            false
        }

        fn apply(&mut self, ops: &[AccOp], events: &mut EventBatch, panes: &mut [Pane]) -> Result<Vec<RejectedAdd>> {
            self.count.apply(ops, events, panes)
        }
    }

    impl Version for Count {
        fn state_format(&self) -> &str {
            self.format
        }

        fn export_state(&mut self, slots: &[u32]) -> Result<Vec<Vec<u8>>> {
            Ok(slots.iter().map(|&s| self.count.slot(s).to_le_bytes().to_vec()).collect())
        }

        fn import_state(&mut self, slots: &[u32], states: Vec<Vec<u8>>) -> Result<()> {
            anyhow::ensure!(!self.refuses_imports, "cannot read that state");
            for (slot, bytes) in slots.iter().zip(states) {
                *self.count.slot(*slot) = u64::from_le_bytes(bytes.try_into().map_err(|_| anyhow::anyhow!("not 8 bytes"))?);
            }
            Ok(())
        }

        fn label(&self) -> String {
            self.name.to_string()
        }
    }

    fn add(slot: u32) -> AccOp {
        AccOp::Add { slot, event: 0 }
    }

    /// Extracts each slot into a pane of its own; returns (value, computed_by).
    fn extract(aggs: &mut Aggregates<Count>, slots: &[u32]) -> Vec<(i64, Option<String>)> {
        let ops: Vec<AccOp> = slots.iter().enumerate().map(|(pane, &slot)| AccOp::Extract { slot, pane: pane as u32 }).collect();
        let mut panes = vec![Pane::smoke(); slots.len()];
        aggs.apply(&ops, &mut EventBatch::default(), &mut panes).unwrap();
        panes
            .iter()
            .map(|p| match p.value {
                Some(crate::window::Value::Int(v)) => (v, p.computed_by.as_deref().map(str::to_string)),
                _ => panic!("no value"),
            })
            .collect()
    }

    #[test]
    fn with_the_same_state_format_the_new_version_takes_over_every_open_window() {
        let mut aggs = Aggregates::new(count("v1", "count"));
        aggs.apply(&[add(0), add(0), add(1)], &mut EventBatch::default(), &mut []).unwrap();
        let Handover::Swapped { retired, .. } = aggs.swap(count("v2", "count"), &[0, 1], false).unwrap() else { panic!("refused") };
        assert_eq!(retired.map(|r| r.name), Some("v1"), "the old version is no longer needed");
        aggs.apply(&[add(0)], &mut EventBatch::default(), &mut []).unwrap();
        assert_eq!(extract(&mut aggs, &[0, 1]), vec![(3, None), (1, None)], "nothing lost, nothing counted twice");
        assert_eq!(aggs.current().name, "v2");
    }

    #[test]
    fn a_new_version_that_cannot_import_the_state_is_refused_and_the_old_one_keeps_it() {
        let mut aggs = Aggregates::new(count("v1", "count"));
        aggs.apply(&[add(0), add(0)], &mut EventBatch::default(), &mut []).unwrap();
        let mut bad = count("v2", "count");
        bad.refuses_imports = true;
        let Handover::Refused { reason, new } = aggs.swap(bad, &[0], false).unwrap() else { panic!("swapped") };
        assert_eq!(new.name, "v2", "the refused version comes back to be dropped");
        assert!(reason.contains("cannot read that state"), "{reason}");
        assert_eq!(extract(&mut aggs, &[0]), vec![(2, None)]);
    }

    #[test]
    fn with_another_state_format_the_old_version_finishes_the_windows_open_at_the_swap() {
        let mut aggs = Aggregates::new(count("v1", "count"));
        aggs.apply(&[add(0), add(1)], &mut EventBatch::default(), &mut []).unwrap();
        let Handover::Swapped { retired, .. } = aggs.swap(count("v2", "count-v2"), &[0, 1], false).unwrap() else { panic!() };
        assert!(retired.is_none(), "the old version still has windows to finish");
        // Slot 0 is still the old version's; slot 2 opens on the new one.
        aggs.apply(&[add(0), add(2), add(2)], &mut EventBatch::default(), &mut []).unwrap();
        assert_eq!(extract(&mut aggs, &[0, 2]), vec![(2, Some("v1".into())), (2, None)]);
        assert_eq!(aggs.retiring().map(|(p, left)| (p.name, left)), Some(("v1", 2)));
        // A third version must wait for the second to finish.
        assert!(matches!(aggs.swap(count("v3", "count-v3"), &[0, 1, 2], false).unwrap(), Handover::Refused { .. }));
        aggs.apply(&[AccOp::Release { slot: 0 }, AccOp::Release { slot: 1 }], &mut EventBatch::default(), &mut []).unwrap();
        assert!(aggs.retiring().is_none(), "released with its last window");
        // A released slot the engine reuses belongs to the new version.
        aggs.apply(&[add(0)], &mut EventBatch::default(), &mut []).unwrap();
        assert_eq!(extract(&mut aggs, &[0]), vec![(1, None)]);
    }

    #[test]
    fn merging_windows_refuse_a_change_of_state_format() {
        let mut aggs = Aggregates::new(count("v1", "count"));
        let Handover::Refused { reason, .. } = aggs.swap(count("v2", "other"), &[0], true).unwrap() else { panic!("swapped") };
        assert!(reason.contains("restart the pipeline"), "{reason}");
        assert_eq!(aggs.current().name, "v1");
    }
}
