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

use anyhow::Result;

use super::aggregate::AggregatePlugin;
use crate::accumulate::{Accumulators, EventBatch, RejectedAdd};
use crate::window::{AccOp, Pane};

/// The running aggregate, and the version still finishing its windows.
pub struct Aggregates {
    current: AggregatePlugin,
    retiring: Option<Retiring>,
    /// Scratch: the operations routed to each version.
    old_ops: Vec<AccOp>,
    new_ops: Vec<AccOp>,
}

struct Retiring {
    plugin: AggregatePlugin,
    /// `name@hash`, recorded in the panes it computes.
    label: std::sync::Arc<str>,
    /// `owns[slot]`: the slot's accumulator lives in the old version.
    owns: Vec<bool>,
    /// How many slots it still owns.
    left: usize,
}

impl Retiring {
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

impl Aggregates {
    pub fn new(plugin: AggregatePlugin) -> Self {
        Self { current: plugin, retiring: None, old_ops: Vec::new(), new_ops: Vec::new() }
    }

    /// The version new windows go to.
    pub fn current(&self) -> &AggregatePlugin {
        &self.current
    }

    /// The version finishing the windows opened before the last swap, if any.
    pub fn retiring(&self) -> Option<(&AggregatePlugin, usize)> {
        self.retiring.as_ref().map(|r| (&r.plugin, r.left))
    }

    /// Swaps in `new`; `live` are the slots of every open window. Returns
    /// what happened (`Ok`) or why the swap was refused (`Err`, the old
    /// version keeps running); either way, the version no longer needed
    /// comes back for the caller to drop. An error of the outer `Result`
    /// means the old version failed and its state is lost.
    pub fn swap(
        &mut self,
        mut new: AggregatePlugin,
        live: &[u32],
        merging: bool,
    ) -> Result<(Result<String, String>, Option<AggregatePlugin>)> {
        if new.state_format() == self.current.state_format() {
            let states = self.current.export_state(live)?;
            if let Err(e) = new.import_state(live, states) {
                let reason = format!("the new version could not take over the open windows' accumulators: {e:#}");
                return Ok((Err(reason), Some(new)));
            }
            let old = std::mem::replace(&mut self.current, new);
            let message = format!("{} open windows carried over (state format {:?})", live.len(), self.current.state_format());
            return Ok((Ok(message), Some(old)));
        }
        if merging {
            return Ok((
                Err(format!(
                    "its state format {:?} differs from the running version's {:?}, and merging windows \
                 (sessions) cannot be finished by two versions side by side; give the new version \
                 the same state format, or restart the pipeline to switch",
                    new.state_format(),
                    self.current.state_format()
                )),
                Some(new),
            ));
        }
        if let Some(r) = &self.retiring {
            let reason =
                format!("an earlier version ({}) is still finishing {} windows; try again once they close", r.plugin.source.name, r.left);
            return Ok((Err(reason), Some(new)));
        }
        let old = std::mem::replace(&mut self.current, new);
        if live.is_empty() {
            return Ok((Ok("no open windows to carry over".into()), Some(old)));
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
        let label = old.source.label().into();
        self.retiring = Some(Retiring { plugin: old, label, owns, left: live.len() });
        Ok((Ok(message), None))
    }
}

impl Accumulators for Aggregates {
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
            tracing::info!(plugin = %retiring.plugin.source.name, "the old aggregate version finished its last window");
            self.retiring = None;
        }
        Ok(rejected)
    }
}
