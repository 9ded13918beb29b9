//! The windowing engine: per-(key, window) state, event-time and
//! processing-time timers, and pane emission — Beam's `ReduceFnRunner` and
//! `PaneInfoTracker` rules, with the aggregate kept outside.
//!
//! The engine never calls the aggregate itself. It appends [`AccOp`]s
//! (add / merge / extract / release, in the order Beam would perform them) to
//! a queue; the caller runs the queue against the aggregate plugin in as few
//! calls as possible and puts the extracted values into the panes. That keeps
//! triggers evaluated element by element while the plugin sees whole batches.
//!
//! Rules (Beam Java; see the README's "Beam compatibility" section):
//! - windows are `[start, end)`; the end of a window is reached when the input
//!   watermark is `>= end`;
//! - an element is dropped for a window once the watermark is `>= end +
//!   allowed_lateness` (the same instant the window's state is collected);
//! - a pane is EARLY while the watermark is before the end; the first pane
//!   after it is ON_TIME if the window held the watermark (it received an
//!   element before its end), else LATE; every pane after a non-EARLY one is
//!   LATE; pane indexes count emitted panes per (key, window);
//! - an empty pane is emitted only when it is ON_TIME and the trigger fired;
//!   at garbage collection (watermark `>= end + allowed_lateness`) the
//!   trigger gets its chance to fire, then any elements no pane has carried
//!   yet are flushed as a final pane, so nothing accepted is lost;
//! - a session window stays mergeable until the watermark passes its
//!   `end + gap + allowed_lateness` (as Beam's Python runner, which never
//!   collects windows, shows): a new session overlapping an expired one
//!   merges with it and starts a fresh pane sequence (index 0).

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use smallvec::SmallVec;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::assign::{Window, WindowFn};
use super::pane::{Pane, Timing};
use super::trigger::{Trigger, TriggerContext, TriggerState};

/// One operation on the aggregate's accumulators, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub enum AccOp {
    /// Add event `event` of the current batch to `slot`.
    Add { slot: u32, event: u32 },
    /// Merge `sources` into `target`; the sources are released.
    Merge { target: u32, sources: SmallVec<[u32; 2]> },
    /// Extract `slot`'s value into pane number `pane` of the drained panes.
    Extract { slot: u32, pane: u32 },
    /// Forget `slot`'s accumulator.
    Release { slot: u32 },
}

/// How the engine's windows are configured.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub window_fn: WindowFn,
    pub trigger: Trigger,
    /// Accumulating (each pane carries everything so far) or discarding.
    pub accumulating: bool,
    /// Allowed lateness in microseconds.
    pub allowed_lateness: i64,
}

/// What happened to one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Added to at least one window.
    Accepted,
    /// Too late for every window it belongs to (behind the watermark by more
    /// than the allowed lateness).
    Late,
    /// Every window it belongs to has a finished trigger.
    Closed,
}

/// Counters the engine keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub open_windows: u64,
    pub keys: u64,
    /// (element, window) pairs dropped as too late.
    pub late_window_drops: u64,
    /// (element, window) pairs dropped because the window's trigger finished.
    pub closed_window_drops: u64,
    pub panes: u64,
}

const HELD: u8 = 1;
const CLOSED: u8 = 2;
/// A session window past its garbage-collection time, kept (for at most
/// `gap` more) only because a new session may still merge with it.
const EXPIRED: u8 = 4;
/// The end-of-window timer is scheduled.
const EOW_TIMER: u8 = 8;
/// The garbage-collection timer is scheduled.
const GC_TIMER: u8 = 16;

#[derive(Clone, Debug)]
struct WindowState {
    window: Window,
    slot: u32,
    /// Panes emitted so far (the next pane's index).
    panes: u32,
    /// Elements since the last firing.
    pane_elements: u32,
    flags: u8,
    last_timing: Option<Timing>,
    trigger: TriggerState,
}

struct KeyEntry {
    name: Box<str>,
    windows: OpenWindows,
}

/// A key's open windows, oldest first, read as a slice (indices are
/// positions in it). Removing the oldest, as timers firing in time order
/// do, only moves a start mark: a key can hold thousands of windows (a
/// file's watermark waits for its end), and shifting them all down at
/// each removal made the end of a file quadratic. The states before the
/// mark are dropped once they are as many as the live ones.
#[derive(Default)]
struct OpenWindows {
    all: SmallVec<[WindowState; 1]>,
    /// How many of `all`'s first states are removed.
    front: u32,
}

impl OpenWindows {
    fn push(&mut self, ws: WindowState) {
        self.all.push(ws);
    }

    fn remove(&mut self, w: usize) -> WindowState {
        let removed = self.all.remove(self.front as usize + w);
        self.drop_removed_if_many();
        removed
    }

    /// Removes window `w`, saying which accumulator slot it held; the
    /// oldest without moving the others.
    fn remove_slot(&mut self, w: usize) -> u32 {
        if w != 0 {
            return self.remove(w).slot;
        }
        let slot = self[0].slot;
        self.front += 1;
        self.drop_removed_if_many();
        slot
    }

    /// Keeps fewer removed states than live ones (so at most twice the
    /// memory of the live windows is held).
    fn drop_removed_if_many(&mut self) {
        if self.front > 0 && 2 * self.front as usize >= self.all.len() {
            self.all.drain(..self.front as usize);
            self.front = 0;
        }
    }
}

impl std::ops::Deref for OpenWindows {
    type Target = [WindowState];
    fn deref(&self) -> &[WindowState] {
        &self.all[self.front as usize..]
    }
}

impl std::ops::DerefMut for OpenWindows {
    fn deref_mut(&mut self) -> &mut [WindowState] {
        &mut self.all[self.front as usize..]
    }
}

/// A timer's target: one key's window.
#[derive(Clone, Copy, Debug)]
struct TimerRef {
    key: u32,
    window: Window,
}

/// The windowing engine. See the module docs.
pub struct WindowEngine {
    cfg: EngineConfig,
    watermark: i64,
    processing_time: i64,
    index: HashTable<u32>,
    keys: Vec<Option<KeyEntry>>,
    free_keys: Vec<u32>,
    next_slot: u32,
    free_slots: Vec<u32>,
    event_timers: BTreeMap<i64, Vec<TimerRef>>,
    processing_timers: BTreeMap<i64, Vec<TimerRef>>,
    ops: Vec<AccOp>,
    panes: Vec<Pane>,
    stats: EngineStats,
    assigned: SmallVec<[Window; 4]>,
}

fn hash_key(key: &str) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

impl WindowEngine {
    pub fn new(cfg: EngineConfig) -> Self {
        Self {
            cfg,
            watermark: i64::MIN,
            processing_time: 0,
            index: HashTable::new(),
            keys: Vec::new(),
            free_keys: Vec::new(),
            next_slot: 0,
            free_slots: Vec::new(),
            event_timers: BTreeMap::new(),
            processing_timers: BTreeMap::new(),
            ops: Vec::new(),
            panes: Vec::new(),
            stats: EngineStats::default(),
            assigned: SmallVec::new(),
        }
    }

    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    pub fn processing_time(&self) -> i64 {
        self.processing_time
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Whether any aggregate operation or pane is waiting to be drained.
    pub fn has_output(&self) -> bool {
        !self.ops.is_empty() || !self.panes.is_empty()
    }

    /// Takes the queued aggregate operations and the panes they fill.
    /// Run the operations in order; each `Extract` fills `panes[pane].value`.
    pub fn drain(&mut self) -> (Vec<AccOp>, Vec<Pane>) {
        (std::mem::take(&mut self.ops), std::mem::take(&mut self.panes))
    }

    /// Adds one element with event time `ts`; `event` is its index in the
    /// batch the next drained `Add`s refer to.
    pub fn process(&mut self, key: &str, ts: i64, event: u32) -> Admission {
        let mut assigned = std::mem::take(&mut self.assigned);
        self.cfg.window_fn.assign(ts, &mut assigned);
        let before = assigned.len();
        let (wm, lateness) = (self.watermark, self.cfg.allowed_lateness);
        assigned.retain(|w| wm < w.end.saturating_add(lateness));
        self.stats.late_window_drops += (before - assigned.len()) as u64;
        if assigned.is_empty() {
            self.assigned = assigned;
            return Admission::Late;
        }
        let key_id = self.intern(key);
        let mut accepted = false;
        for i in 0..assigned.len() {
            let window = if self.cfg.window_fn.is_merging() { self.merge_session(key_id, assigned[i]) } else { assigned[i] };
            accepted |= self.add_to_window(key_id, window, event);
        }
        self.assigned = assigned;
        if accepted {
            Admission::Accepted
        } else {
            Admission::Closed
        }
    }

    /// The watermark at which every window an element with event time `ts`
    /// belongs to has been collected, so its results are all written. For
    /// sessions this is a lower bound: check [`WindowEngine::session_retire`].
    pub fn retire_time(&self, ts: i64) -> i64 {
        let mut windows = SmallVec::<[Window; 4]>::new();
        self.cfg.window_fn.assign(ts, &mut windows);
        windows.iter().map(|w| self.retire_time_of(*w)).max().unwrap_or(i64::MIN)
    }

    /// For sessions: the retire time of `key`'s live window containing
    /// `ts`, if one is still open (it may have grown since).
    pub fn session_retire(&self, key: &str, ts: i64) -> Option<i64> {
        if !self.cfg.window_fn.is_merging() {
            return None;
        }
        let hash = hash_key(key);
        let id = *self.index.find(hash, |&id| self.keys[id as usize].as_ref().is_some_and(|e| &*e.name == key))?;
        self.key_ref(id)
            .windows
            .iter()
            .filter(|ws| ws.window.start <= ts && ts < ws.window.end)
            .map(|ws| self.retire_time_of(ws.window))
            .max()
    }

    /// Every accumulator slot in use (to carry state to a new aggregate version).
    pub fn live_slots(&self) -> Vec<u32> {
        self.keys.iter().flatten().flat_map(|k| k.windows.iter().map(|w| w.slot)).collect()
    }

    /// Whether windows merge (sessions).
    pub fn is_merging(&self) -> bool {
        self.cfg.window_fn.is_merging()
    }

    /// Advances the input watermark (never backwards) and fires the
    /// event-time timers it passes, in time order.
    pub fn advance_watermark(&mut self, watermark: i64) {
        while self.advance_watermark_within(watermark, usize::MAX) {}
    }

    /// [`advance_watermark`](Self::advance_watermark) in parts: fires due
    /// timers, in time order, until at least `max_panes` panes wait to be
    /// drained; true when due timers are left (drain, then call again).
    /// All the timers of one time fire together, so every pane of a window
    /// end is in one part. Why: the end of a bounded input fires every
    /// window at once, and one list of forty thousand panes cost more in
    /// fresh memory (page faults, copies while it grew) than draining them
    /// in parts that reuse the same memory.
    pub fn advance_watermark_within(&mut self, watermark: i64, max_panes: usize) -> bool {
        self.watermark = self.watermark.max(watermark);
        while let Some(entry) = self.event_timers.first_entry() {
            if *entry.key() > self.watermark {
                break;
            }
            if self.panes.len() >= max_panes {
                return true;
            }
            let (time, due) = entry.remove_entry();
            for t in due {
                self.on_event_timer(time, t);
            }
        }
        false
    }

    /// Advances the processing-time clock and fires the processing-time
    /// timers that are due (at or before it), in time order.
    pub fn advance_processing_time(&mut self, now: i64) {
        if now > self.processing_time {
            self.processing_time = now;
        }
        while let Some(entry) = self.processing_timers.first_entry() {
            if *entry.key() > self.processing_time {
                break;
            }
            for t in entry.remove() {
                let Some((k, w)) = self.find(t.key, t.window) else { continue };
                if self.open_and_ready(k, w) {
                    self.emit(k, w);
                }
            }
        }
    }

    /// Whether window `w` of `key` is open and its trigger wants to fire.
    fn open_and_ready(&self, key: u32, w: usize) -> bool {
        let ws = &self.key_ref(key).windows[w];
        let ctx = TriggerContext::new(self.watermark, self.processing_time, ws.window.end);
        ws.flags & CLOSED == 0 && self.cfg.trigger.should_fire(&ws.trigger, &ctx)
    }

    fn key_ref(&self, key: u32) -> &KeyEntry {
        self.keys[key as usize].as_ref().expect("a live key id")
    }

    fn key_mut(&mut self, key: u32) -> &mut KeyEntry {
        self.keys[key as usize].as_mut().expect("a live key id")
    }

    fn intern(&mut self, key: &str) -> u32 {
        let hash = hash_key(key);
        let keys = &self.keys;
        if let Some(&id) = self.index.find(hash, |&id| keys[id as usize].as_ref().is_some_and(|e| &*e.name == key)) {
            return id;
        }
        let entry = KeyEntry { name: key.into(), windows: OpenWindows::default() };
        let id = match self.free_keys.pop() {
            Some(id) => {
                self.keys[id as usize] = Some(entry);
                id
            }
            None => {
                self.keys.push(Some(entry));
                (self.keys.len() - 1) as u32
            }
        };
        let keys = &self.keys;
        self.index.insert_unique(hash, id, |&id| hash_key(&keys[id as usize].as_ref().expect("indexed keys are live").name));
        self.stats.keys += 1;
        id
    }

    fn forget_key_if_empty(&mut self, key: u32) {
        if !self.key_mut(key).windows.is_empty() {
            return;
        }
        let entry = self.keys[key as usize].take().expect("a live key id");
        let hash = hash_key(&entry.name);
        if let Ok(found) = self.index.find_entry(hash, |&id| id == key) {
            found.remove();
        }
        self.free_keys.push(key);
        self.stats.keys -= 1;
    }

    /// Where `window` is among `key`'s open windows (oldest first). A key
    /// can hold thousands (a file's watermark waits for its end), so the
    /// two common cases are found at once: an element in time order lands
    /// in the newest window, and a timer firing in time order names the
    /// oldest; only what falls between is searched for.
    fn find(&self, key: u32, window: Window) -> Option<(u32, usize)> {
        let windows = &self.keys.get(key as usize)?.as_ref()?.windows;
        let newest = windows.len().checked_sub(1)?;
        let w = if windows[newest].window == window { newest } else { windows.iter().position(|ws| ws.window == window)? };
        Some((key, w))
    }

    fn new_slot(&mut self) -> u32 {
        self.free_slots.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        })
    }

    fn new_window(&mut self, key: u32, window: Window) -> usize {
        let slot = self.new_slot();
        let trigger = self.cfg.trigger.new_state();
        self.stats.open_windows += 1;
        let entry = self.key_mut(key);
        entry.windows.push(WindowState { window, slot, panes: 0, pane_elements: 0, flags: 0, last_timing: None, trigger });
        entry.windows.len() - 1
    }

    /// Merges an element's proto-window with the key's open, overlapping
    /// session windows; returns the window the element now belongs to.
    fn merge_session(&mut self, key: u32, proto: Window) -> Window {
        let entry = self.keys[key as usize].as_mut().expect("a live key id");
        let overlapping: SmallVec<[usize; 4]> = entry
            .windows
            .iter()
            .enumerate()
            .filter(|(_, ws)| ws.flags & CLOSED == 0 && ws.window.overlaps(&proto))
            .map(|(i, _)| i)
            .collect();
        let Some(&first) = overlapping.first() else {
            return proto;
        };
        // An expired window merges as if it were new: fresh panes and trigger.
        for &i in &overlapping {
            let ws = &mut entry.windows[i];
            if ws.flags & EXPIRED != 0 {
                ws.flags &= !(EXPIRED | HELD);
                ws.panes = 0;
                ws.last_timing = None;
                ws.trigger = self.cfg.trigger.new_state();
            }
        }
        let merged = overlapping.iter().fold(proto, |acc, &i| acc.union(&entry.windows[i].window));
        if overlapping.len() == 1 && merged == entry.windows[first].window {
            return merged;
        }
        // Remove the others (highest index first) and fold them into `first`.
        let mut removed: SmallVec<[WindowState; 2]> = SmallVec::new();
        for &i in overlapping[1..].iter().rev() {
            removed.push(entry.windows.remove(i));
        }
        let ctx = TriggerContext::new(self.watermark, self.processing_time, merged.end);
        let trigger = &self.cfg.trigger;
        let target = &mut entry.windows[first];
        target.window = merged;
        // Timers name windows by their bounds: the merged window needs its own.
        target.flags &= !(EOW_TIMER | GC_TIMER);
        let mut sources: SmallVec<[u32; 2]> = SmallVec::new();
        for other in &removed {
            trigger.on_merge(&mut target.trigger, &other.trigger, &ctx);
            target.pane_elements += other.pane_elements;
            target.panes = target.panes.max(other.panes);
            target.flags |= other.flags & HELD;
            target.last_timing = target.last_timing.max(other.last_timing);
            sources.push(other.slot);
        }
        if !sources.is_empty() {
            self.ops.push(AccOp::Merge { target: entry.windows[first].slot, sources: sources.clone() });
            self.free_slots.extend(sources.iter().copied());
            self.stats.open_windows -= sources.len() as u64;
        }
        // A merged pane with a pending processing-time deadline needs a timer
        // pointing at the merged window.
        self.reschedule_processing_timers(key, merged);
        merged
    }

    fn reschedule_processing_timers(&mut self, key: u32, window: Window) {
        if let Some((k, w)) = self.find(key, window) {
            let deadlines: SmallVec<[i64; 2]> = self.key_mut(k).windows[w].trigger.iter().filter_map(|n| n.pending_deadline()).collect();
            for d in deadlines {
                self.processing_timers.entry(d).or_default().push(TimerRef { key, window });
            }
        }
    }

    /// Adds the element to one window; false if the window is closed.
    fn add_to_window(&mut self, key: u32, window: Window, event: u32) -> bool {
        let w = match self.find(key, window) {
            Some((_, w)) => w,
            None => self.new_window(key, window),
        };
        let (wm, pt, lateness) = (self.watermark, self.processing_time, self.cfg.allowed_lateness);
        let trigger = &self.cfg.trigger;
        let entry = self.keys[key as usize].as_mut().expect("a live key id");
        let ws = &mut entry.windows[w];
        if ws.flags & CLOSED != 0 {
            self.stats.closed_window_drops += 1;
            return false;
        }
        self.ops.push(AccOp::Add { slot: ws.slot, event });
        ws.pane_elements += 1;
        if wm < window.end {
            ws.flags |= HELD;
        }
        let mut ctx = TriggerContext::new(wm, pt, window.end);
        trigger.on_element(&mut ws.trigger, &mut ctx);
        // Beam: an end-of-window timer while the window is on time, else a
        // garbage-collection timer at end + allowed lateness.
        let (timer, bit) = if wm < window.end { (window.end, EOW_TIMER) } else { (window.end.saturating_add(lateness), GC_TIMER) };
        let schedule = ws.flags & bit == 0;
        ws.flags |= bit;
        let fire = trigger.should_fire(&ws.trigger, &ctx);
        for t in ctx.timers {
            self.processing_timers.entry(t).or_default().push(TimerRef { key, window });
        }
        if schedule {
            self.event_timers.entry(timer).or_default().push(TimerRef { key, window });
        }
        if fire {
            self.emit(key, w);
        }
        true
    }

    fn on_event_timer(&mut self, time: i64, t: TimerRef) {
        let Some((k, w)) = self.find(t.key, t.window) else { return };
        let lateness = self.cfg.allowed_lateness;
        let gc_time = t.window.end.saturating_add(lateness);
        let flags = self.key_ref(k).windows[w].flags;
        if flags & EXPIRED != 0 {
            if time >= self.retire_time_of(t.window) {
                self.remove_window(k, w);
            }
            return;
        }
        if time >= gc_time {
            // Garbage collection: the trigger may fire one last time; then
            // elements no pane has carried yet go out in a final pane.
            if flags & CLOSED == 0 {
                if self.open_and_ready(k, w) {
                    self.emit(k, w);
                }
                let ws = &self.key_ref(k).windows[w];
                if ws.flags & CLOSED == 0 && ws.pane_elements > 0 {
                    self.on_trigger(k, w, true);
                }
            }
            let retire = self.retire_time_of(t.window);
            let ws = &mut self.key_mut(k).windows[w];
            if retire > gc_time && ws.flags & CLOSED == 0 {
                ws.flags |= EXPIRED;
                self.event_timers.entry(retire).or_default().push(t);
            } else {
                self.remove_window(k, w);
            }
        } else if time >= t.window.end {
            if self.open_and_ready(k, w) {
                self.emit(k, w);
            }
            let ws = &mut self.key_mut(k).windows[w];
            if ws.flags & GC_TIMER == 0 {
                ws.flags |= GC_TIMER;
                self.event_timers.entry(gc_time).or_default().push(t);
            }
        }
    }

    /// When a window's state can go for good: its garbage-collection time,
    /// plus the session gap for sessions (no later element can merge with it).
    fn retire_time_of(&self, window: Window) -> i64 {
        let gc = window.end.saturating_add(self.cfg.allowed_lateness);
        match self.cfg.window_fn {
            WindowFn::Session { gap } => gc.saturating_add(gap),
            _ => gc,
        }
    }

    fn remove_window(&mut self, k: u32, w: usize) {
        let slot = self.key_mut(k).windows.remove_slot(w);
        self.ops.push(AccOp::Release { slot });
        self.free_slots.push(slot);
        self.stats.open_windows -= 1;
        self.forget_key_if_empty(k);
    }

    /// A trigger fired: record it, emit the pane, and discard or close.
    fn emit(&mut self, key: u32, w: usize) {
        let ctx = TriggerContext::new(self.watermark, self.processing_time, self.key_ref(key).windows[w].window.end);
        let trigger = &self.cfg.trigger;
        let ws = &mut self.keys[key as usize].as_mut().expect("a live key id").windows[w];
        trigger.on_fire(&mut ws.trigger, &ctx);
        let finished = trigger.is_finished(&ws.trigger);
        self.on_trigger(key, w, finished);
        let accumulating = self.cfg.accumulating;
        let new_state = finished.then(|| self.cfg.trigger.new_state());
        let ws = &mut self.keys[key as usize].as_mut().expect("a live key id").windows[w];
        if !accumulating || finished {
            self.ops.push(AccOp::Release { slot: ws.slot });
        }
        if let Some(fresh) = new_state {
            ws.flags |= CLOSED;
            ws.trigger = fresh;
        }
    }

    /// Beam's `onTrigger`: describe the pane and emit it if it is due.
    fn on_trigger(&mut self, key: u32, w: usize, is_finished: bool) {
        let wm = self.watermark;
        let entry = self.keys[key as usize].as_mut().expect("a live key id");
        let name = &entry.name;
        let ws = &mut entry.windows[w];
        let timing = match ws.last_timing {
            Some(t) if t != Timing::Early => Timing::Late,
            _ if wm < ws.window.end => Timing::Early,
            _ if ws.flags & HELD == 0 => Timing::Late,
            _ => Timing::OnTime,
        };
        let empty = ws.pane_elements == 0;
        ws.pane_elements = 0;
        if empty && timing != Timing::OnTime {
            return;
        }
        self.ops.push(AccOp::Extract { slot: ws.slot, pane: self.panes.len() as u32 });
        self.panes.push(Pane {
            key: name.to_string(),
            window: ws.window,
            timing,
            index: ws.panes,
            is_last: is_finished,
            value: None,
            computed_by: None,
        });
        ws.panes += 1;
        ws.last_timing = Some(timing);
        self.stats.panes += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: i64) -> WindowState {
        let window = Window { start: n, end: n + 1 };
        WindowState { window, slot: n as u32, panes: 0, pane_elements: 0, flags: 0, last_timing: None, trigger: SmallVec::new() }
    }

    /// A key's windows read the same as a plain vector under any mix of
    /// pushes and removals (oldest, newest, in between), across the
    /// moments the removed prefix is dropped.
    #[test]
    fn open_windows_read_as_a_vector_whatever_is_removed() {
        let (mut ours, mut model) = (OpenWindows::default(), Vec::<i64>::new());
        let mut seed = 0x2545f4914f6cdd1du64;
        for n in 0..20_000i64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            match seed % 5 {
                0 | 1 => {
                    ours.push(state(n));
                    model.push(n);
                }
                _ if model.is_empty() => {}
                2 | 3 => assert_eq!(ours.remove_slot(0), model.remove(0) as u32, "the oldest"),
                _ => {
                    let w = (seed >> 8) as usize % model.len();
                    assert_eq!(ours.remove_slot(w), model.remove(w) as u32, "window {w}");
                }
            }
            let read: Vec<i64> = ours.iter().map(|ws| ws.window.start).collect();
            assert_eq!(read, model);
            assert!(ours.all.len() <= 2 * model.len(), "removed states are dropped: {} kept for {}", ours.all.len(), model.len());
        }
    }
}
